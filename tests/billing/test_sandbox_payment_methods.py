"""Cards in the sandbox: only Stripe's test numbers, stored without the number or the CVC."""

from __future__ import annotations

import logging

import pytest

from app.billing.gateway import AddPaymentMethodStart, CardDeclined, GatewayError
from app.billing.tables import Customer, PaymentMethod, Subscription
from app.billing.test_cards import TEST_CARDS, luhn_valid
from tests.billing.sandbox_world import card, key

pytestmark = pytest.mark.usefixtures("db")

BRANDS = [
    ("4242424242424242", "visa", "credit"),
    ("4000056655665556", "visa", "debit"),
    ("5555555555554444", "mastercard", "credit"),
    ("2223003122003222", "mastercard", "credit"),
    ("378282246310005", "amex", "credit"),
    ("6011111111111117", "discover", "credit"),
    ("3056930009020004", "diners", "credit"),
    ("3566002020360505", "jcb", "credit"),
    ("6200000000000005", "unionpay", "credit"),
]


def test_every_test_card_number_is_luhn_valid():
    assert all(luhn_valid(number) for number in TEST_CARDS)
    assert not luhn_valid("4242424242424241")


async def _customer_default(world) -> str | None:
    row = (
        await Customer.select(Customer.invoice_settings_default_payment_method)
        .where(Customer.id == world.customer)
        .first()
    )
    return row["invoice_settings_default_payment_method"]


@pytest.mark.parametrize(("number", "brand", "funding"), BRANDS)
async def test_test_cards_attach(world, number, brand, funding):
    cvc = "1234" if brand == "amex" else "123"
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    pm_id = await world.gateway.add_card(
        world.customer, card(spaced, cvc=cvc), make_default=False, idempotency_key=key()
    )
    assert pm_id.startswith("pm_")
    row = await PaymentMethod.select().where(PaymentMethod.id == pm_id).first()
    assert row["customer"] == world.customer
    assert (row["card_brand"], row["card_funding"], row["card_country"]) == (brand, funding, "US")
    assert (row["card_last4"], row["card_exp_month"], row["card_exp_year"]) == (
        number[-4:],
        12,
        2030,
    )
    assert number not in repr(row)
    assert cvc not in str(row.get("metadata"))
    assert await _customer_default(world) == world.card  # not made default


async def test_make_default(world):
    pm_id = await world.gateway.add_card(
        world.customer, card("5555555555554444"), make_default=True, idempotency_key=key()
    )
    assert await _customer_default(world) == pm_id


@pytest.mark.parametrize(
    ("number", "code", "message", "field"),
    [
        ("4000000000000002", "card_declined", "Your card was declined.", "number"),
        ("4000000000009995", "insufficient_funds", "Your card has insufficient funds.", "number"),
        ("4000000000000069", "expired_card", "Your card has expired.", "exp_month"),
        ("4000000000000127", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"),
        (
            "4111111111111111",
            "invalid_number",
            "Use one of Stripe's test card numbers in the sandbox, for example "
            "4242 4242 4242 4242.",
            "number",
        ),
    ],
)
async def test_declines(world, number, code, message, field):
    with pytest.raises(CardDeclined) as raised:
        await world.gateway.add_card(
            world.customer, card(number), make_default=True, idempotency_key=key()
        )
    assert (raised.value.code, raised.value.message, raised.value.field) == (code, message, field)
    assert await PaymentMethod.count() == 1  # only the world's Visa
    assert await _customer_default(world) == world.card


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"number": "4242424242424241"}, "number"),  # fails the Luhn check
        ({"number": "4242"}, "number"),
        ({"number": "4242-4242-abcd-4242"}, "number"),
        ({"month": 13}, "exp_month"),
        ({"year": 2025}, "exp_year"),
        ({"month": 2, "year": 2026}, "exp_month"),  # February 2026 ended before 11 Mar 2026
        ({"cvc": "12"}, "cvc"),
        ({"cvc": "12a"}, "cvc"),
        ({"number": "378282246310005", "cvc": "123"}, "cvc"),  # Amex needs 4 digits
    ],
)
async def test_invalid_card_input(world, overrides, field):
    overrides = dict(overrides)
    number = overrides.pop("number", "4242424242424242")
    with pytest.raises(GatewayError) as raised:
        await world.gateway.add_card(
            world.customer, card(number, **overrides), make_default=False, idempotency_key=key()
        )
    assert raised.value.field == field
    assert not isinstance(raised.value, CardDeclined)


async def test_card_expiring_this_month_is_accepted(world):
    pm_id = await world.gateway.add_card(
        world.customer, card(month=3, year=26), make_default=False, idempotency_key=key()
    )
    row = await PaymentMethod.select().where(PaymentMethod.id == pm_id).first()
    assert (row["card_exp_month"], row["card_exp_year"]) == (3, 2026)


async def test_card_number_never_logged(world, caplog):
    caplog.set_level(logging.DEBUG)
    number, cvc = "4000056655665556", "987"
    await world.gateway.add_card(
        world.customer, card(number, cvc=cvc), make_default=True, idempotency_key=key()
    )
    with pytest.raises(CardDeclined) as raised:
        await world.gateway.add_card(
            world.customer,
            card("4000000000000002", cvc=cvc),
            make_default=True,
            idempotency_key=key(),
        )
    logging.getLogger("test").info("attempt %r", card(number, cvc=cvc))
    assert number not in caplog.text
    assert "4000000000000002" not in caplog.text
    assert "5556" in caplog.text  # the repr shows the last 4 only
    assert "4000000000000002" not in str(raised.value) + repr(raised.value)


async def test_double_submit_adds_one_card(world):
    same = key()
    first = await world.gateway.add_card(
        world.customer, card("5555555555554444"), make_default=False, idempotency_key=same
    )
    second = await world.gateway.add_card(
        world.customer, card("5555555555554444"), make_default=False, idempotency_key=same
    )
    assert first == second
    assert await PaymentMethod.count() == 2


async def test_set_default_and_detach(world):
    other = await world.gateway.add_card(
        world.customer, card("5555555555554444"), make_default=False, idempotency_key=key()
    )
    await Subscription.update({Subscription.default_payment_method: world.card}).where(
        Subscription.id == world.subscription
    )
    await world.gateway.set_default_payment_method(world.customer, other, idempotency_key=key())
    assert await _customer_default(world) == other

    await world.gateway.detach_payment_method(world.customer, other, idempotency_key=key())
    assert await _customer_default(world) is None
    detached = await PaymentMethod.select().where(PaymentMethod.id == other).first()
    assert detached["customer"] is None

    await world.gateway.detach_payment_method(world.customer, world.card, idempotency_key=key())
    assert (await world.sub()).default_payment_method is None

    with pytest.raises(GatewayError, match="no longer on your account"):
        await world.gateway.set_default_payment_method(world.customer, other, idempotency_key=key())
    with pytest.raises(GatewayError):
        await world.gateway.detach_payment_method(world.customer, "pm_nope", idempotency_key=key())


async def test_stripe_only_steps(world):
    start = await world.gateway.start_add_payment_method(
        world.customer, success_url="http://x/ok", cancel_url="http://x/no", idempotency_key=key()
    )
    assert start == AddPaymentMethodStart(redirect_url=None)
    with pytest.raises(GatewayError):
        await world.gateway.complete_add_payment_method(
            world.customer, session_id="cs_test", make_default=True
        )
