"""Demo-like billing data in the Stripe test server, for the Stripe-mode journeys.

The demo's plans (Starter, Team, Business; monthly and yearly, from ``app.billing.demo_people``)
and customers shaped like the demo's Jenny Rosen: a default card, 5 seats of Team monthly (its first
invoice paid) and one open one-off invoice. Each journey (and each JavaScript mode) gets its own
customer, so the journeys change nothing another one looks at. The demo's retention coupon
(``STAY20``, 20% off for 3 months) and promotion code (``WELCOME10``, 10% off the next invoice)
are in Stripe too, so the sync brings them into the mirror; the configuration offers the coupon
only where a journey turns it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.billing.demo_offers import RETENTION_COUPON, WELCOME_CODE, WELCOME_COUPON
from app.billing.demo_people import PLANS
from tests.stripe_api import StripeAPIServer

JOURNEYS = (
    "plan",
    "later",
    "promo",
    "invoice_now",
    "trial",
    "quantity",
    "cancel",
    "offer",
    "cancel_now",
    "pause",
    "card",
    "cards",
    "faults",
    "pay",
    "pdf",
    "details",
)
OPEN_INVOICE = ("Extra seats for March", 5800)  # description, amount in cents


@dataclass
class StripeWorld:
    products: dict[str, str] = field(default_factory=dict)  # plan name → prod_ id
    prices: dict[str, str] = field(default_factory=dict)  # "team_month" → price_ id
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # email → ids

    def price(self, plan: str, interval: str = "month") -> str:
        return self.prices[f"{plan.lower()}_{interval}"]


def journey_email(journey: str, js: bool) -> str:
    return f"{journey}.{'js' if js else 'nojs'}@example.com"


def seed_catalog(server: StripeAPIServer, world: StripeWorld) -> None:
    for plan in PLANS:
        product = server.create_product(
            name=plan.name,
            description=plan.description,
            **({"unit_label": plan.unit_label} if plan.unit_label else {}),
        )
        world.products[plan.name] = product["id"]
        for interval, amount in (("month", plan.monthly), ("year", plan.yearly)):
            price = server.create_price(
                product=product["id"],
                currency="usd",
                unit_amount=amount,
                recurring={"interval": interval},
            )
            world.prices[f"{plan.key}_{interval}"] = price["id"]


def seed_offers(server: StripeAPIServer) -> None:
    """The demo's retention coupon and promotion code, with the demo's ids and terms."""
    server.create_coupon(
        id=RETENTION_COUPON,
        name="20% off for 3 months",
        percent_off=20,
        duration="repeating",
        duration_in_months=3,
    )
    server.create_coupon(
        id=WELCOME_COUPON, name="10% off your next invoice", percent_off=10, duration="once"
    )
    server.create_promotion_code(
        promotion={"type": "coupon", "coupon": WELCOME_COUPON}, code=WELCOME_CODE
    )


def seed_customer(
    server: StripeAPIServer,
    world: StripeWorld,
    email: str,
    name: str,
    *,
    plan: str = "team",
    quantity: int = 5,
    card: str = "pm_card_visa",
    open_invoice: bool = True,
    trial_days: int | None = None,
) -> dict[str, Any]:
    """A customer like the demo's Jenny: a default card, a paid subscription, an open invoice."""
    customer = server.create_customer(
        email=email,
        name=name,
        address={"line1": "510 Townsend St", "city": "San Francisco", "country": "US"},
    )
    pm = server.create_payment_method(customer["id"], card=card, default=True)
    subscription = server.create_subscription(
        customer=customer["id"],
        items=[{"price": world.price(plan), "quantity": quantity}],
        **({"trial_period_days": trial_days} if trial_days else {}),
    )
    invoice = None
    if open_invoice:
        description, amount = OPEN_INVOICE
        invoice = server.create_invoice(customer["id"], amount=amount, description=description)
    ids = {
        "customer": customer["id"],
        "payment_method": pm["id"],
        "subscription": subscription["id"],
        "invoice": invoice["id"] if invoice else None,
        "invoice_number": invoice["number"] if invoice else None,
    }
    world.customers[email] = ids
    return ids


def seed(server: StripeAPIServer) -> StripeWorld:
    """The catalogue and one customer per journey and JavaScript mode (synced into Portico)."""
    world = StripeWorld()
    seed_catalog(server, world)
    seed_offers(server)
    for journey in JOURNEYS:
        for js in (True, False):
            # The card journey adds a Visa through Checkout: start it with a Mastercard. The plan
            # journey upgrades: start it on Starter. The trial journey ends a 14-day trial.
            card = "pm_card_mastercard" if journey == "card" else "pm_card_visa"
            plan, quantity = ("starter", 1) if journey == "plan" else ("team", 5)
            trial_days = 14 if journey == "trial" else None
            ids = seed_customer(
                server,
                world,
                journey_email(journey, js),
                f"Jenny Rosen ({journey}, {'JS' if js else 'no JS'})",
                plan=plan,
                quantity=quantity,
                card=card,
                trial_days=trial_days,
            )
            if journey == "faults":  # a second card, to make default while Stripe fails
                second = server.create_payment_method(ids["customer"], card="pm_card_mastercard")
                ids["second_payment_method"] = second["id"]
            if journey == "cards":  # two more cards, to make default and to remove
                second = server.create_payment_method(ids["customer"], card="pm_card_mastercard")
                third = server.create_payment_method(ids["customer"], card="pm_card_amex")
                ids["second_payment_method"] = second["id"]
                ids["third_payment_method"] = third["id"]
    return world
