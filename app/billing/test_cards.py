"""Stripe's published test card numbers, as the sandbox's card form understands them.

The sandbox accepts only these numbers (https://docs.stripe.com/testing#cards), so nobody types a
real card into a demo. A real-looking number is refused with a hint to use 4242 4242 4242 4242.
What is kept of a card is what Stripe's ``payment_method.card`` exposes (brand, last 4 digits,
expiry, funding, country): never the number or the CVC, and nothing here logs them.

Validation order follows Stripe's card form: number (digits, length, Luhn), expiry, CVC (3 digits,
4 for American Express), then the test number's behaviour (decline numbers raise ``CardDeclined``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.billing.gateway import CardDeclined, CardInput, GatewayError

EXAMPLE = "4242 4242 4242 4242"


@dataclass(frozen=True)
class SandboxCard:
    brand: str
    funding: str = "credit"
    country: str = "US"
    # Declines at attach time: (code, message, field). None attaches fine.
    decline: tuple[str, str, str] | None = None
    # Attaches fine, but every later charge declines (Stripe's 4000 0000 0000 0341).
    charges_decline: bool = False


_DECLINED = ("card_declined", "Your card was declined.", "number")

# Successful cards by brand, then Stripe's decline numbers.
TEST_CARDS: dict[str, SandboxCard] = {
    "4242424242424242": SandboxCard("visa"),
    "4000056655665556": SandboxCard("visa", "debit"),
    "5555555555554444": SandboxCard("mastercard"),
    "2223003122003222": SandboxCard("mastercard"),
    "5200828282828210": SandboxCard("mastercard", "debit"),
    "5105105105105100": SandboxCard("mastercard", "prepaid"),
    "378282246310005": SandboxCard("amex"),
    "371449635398431": SandboxCard("amex"),
    "6011111111111117": SandboxCard("discover"),
    "6011000990139424": SandboxCard("discover"),
    "6011981111111113": SandboxCard("discover", "debit"),
    "3056930009020004": SandboxCard("diners"),
    "36227206271667": SandboxCard("diners"),
    "3566002020360505": SandboxCard("jcb"),
    "6200000000000005": SandboxCard("unionpay"),
    "6200000000000047": SandboxCard("unionpay", "debit"),
    "4000000000000002": SandboxCard("visa", decline=_DECLINED),
    "4000000000009995": SandboxCard(
        "visa", decline=("insufficient_funds", "Your card has insufficient funds.", "number")
    ),
    "4000000000009987": SandboxCard("visa", decline=_DECLINED),  # lost_card
    "4000000000009979": SandboxCard("visa", decline=_DECLINED),  # stolen_card
    "4000000000000069": SandboxCard(
        "visa", decline=("expired_card", "Your card has expired.", "exp_month")
    ),
    "4000000000000127": SandboxCard(
        "visa", decline=("incorrect_cvc", "Your card's security code is incorrect.", "cvc")
    ),
    "4000000000000119": SandboxCard(
        "visa",
        decline=(
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
            "number",
        ),
    ),
    "4000000000000341": SandboxCard("visa", charges_decline=True),
}


@dataclass(frozen=True)
class CardDetails:
    """What the sandbox stores about an accepted card."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int
    funding: str
    country: str
    charges_decline: bool


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _brand_guess(digits: str) -> str:
    """Enough of the IIN ranges to know the CVC length of a number that is not a test card."""
    return "amex" if digits[:2] in ("34", "37") else "other"


def check_card(card: CardInput, now: datetime) -> CardDetails:
    """Validate the typed card and return what may be stored; raise ``GatewayError`` (with the
    form ``field``: number, exp_month, exp_year or cvc) or ``CardDeclined``."""
    digits = "".join(ch for ch in card.number if ch not in " -")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise GatewayError(
            "Your card number is incorrect.", code="incorrect_number", field="number"
        )
    if not 1 <= card.exp_month <= 12:
        raise GatewayError(
            "Your card's expiration month is invalid.",
            code="invalid_expiry_month",
            field="exp_month",
        )
    year = card.exp_year + 2000 if 0 <= card.exp_year < 100 else card.exp_year
    if year < now.year or year > now.year + 50:
        message = (
            "Your card's expiration year is in the past."
            if year < now.year
            else "Your card's expiration year is invalid."
        )
        raise GatewayError(message, code="invalid_expiry_year", field="exp_year")
    if (year, card.exp_month) < (now.year, now.month):
        raise GatewayError(
            "Your card's expiration date is in the past.",
            code="invalid_expiry_month",
            field="exp_month",
        )
    test_card = TEST_CARDS.get(digits)
    brand = test_card.brand if test_card else _brand_guess(digits)
    cvc = card.cvc.strip()
    if not cvc.isdigit() or len(cvc) != (4 if brand == "amex" else 3):
        raise GatewayError("Your card's security code is invalid.", code="invalid_cvc", field="cvc")
    if test_card is None:
        raise CardDeclined(
            f"Use one of Stripe's test card numbers in the sandbox, for example {EXAMPLE}.",
            code="invalid_number",
            field="number",
        )
    if test_card.decline is not None:
        code, message, field = test_card.decline
        raise CardDeclined(message, code=code, field=field)
    return CardDetails(
        brand=test_card.brand,
        last4=digits[-4:],
        exp_month=card.exp_month,
        exp_year=year,
        funding=test_card.funding,
        country=test_card.country,
        charges_decline=test_card.charges_decline,
    )
