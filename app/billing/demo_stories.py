"""The demo merchant's customers and what happened to them.

``scripted`` adds the customers the README and the tests rely on, with exactly the state they
describe; ``generic`` adds the rest of the crowd from ``demo_people`` with seeded-random stories.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from app.billing import demo_people as people
from app.billing.demo_data import Builder, DemoRows, add_months, slug
from app.billing.tables import Subscription
from app.configuration.features import CANCELLATION_REASONS

# The scripted customers' emails, in the order the README lists them.
SCRIPTED_EMAILS = (
    "jenny.rosen@example.com",
    "sam.shared@example.com",
    "pat.trial@example.com",
    "lee.canceling@example.com",
    "max.noplan@example.com",
)


def build(now: datetime, rng: random.Random) -> DemoRows:
    builder = Builder(now, rng)
    builder.catalogue()
    scripted(builder)
    generic(builder)
    builder.number_invoices()
    return builder.rows


def scripted(b: Builder) -> None:
    now, rng = b.now, b.rng
    us = people.US_ADDRESSES

    # Jenny: Team monthly, 5 seats, Visa 4242 by default, a long paid history, one open invoice.
    created = b.ago(425, 440)
    jenny = b.customer(
        "Jenny Rosen", SCRIPTED_EMAILS[0], created, us[0], card="visa", last4="4242", shipping=True
    )
    b.subscribe(jenny, "team", "month", created + timedelta(minutes=12), quantity=5)
    b.one_off(jenny, now - timedelta(days=5, hours=3), status="open", item=1)

    # Two customers share an email: the older one has a plan, the newer one only an invoice.
    created = b.ago(560, 600)
    older = b.customer("Sam Older", SCRIPTED_EMAILS[1], created, us[2])
    b.subscribe(older, "starter", "month", created + timedelta(hours=2))
    created = b.ago(60, 90)
    newer = b.customer("Sam Newer", SCRIPTED_EMAILS[1], created, us[2], card="mastercard")
    b.one_off(newer, created + timedelta(days=1), item=4)

    # Pat: a 14-day Business trial that ends in 10 days.
    created = now - timedelta(days=4)
    pat = b.customer("Pat Trial", SCRIPTED_EMAILS[2], created, us[3], card="visa")
    b.subscribe(pat, "business", "month", created, status="trialing", trial_days=14)

    # Lee: Starter yearly, asked six days ago to cancel at the end of the period.
    created = b.ago(520, 540)
    lee = b.customer("Lee Canceling", SCRIPTED_EMAILS[3], created, us[4], card="amex")
    sub = b.subscribe(lee, "starter", "year", created + timedelta(minutes=30))
    _cancel_at_period_end(sub, now - timedelta(days=6, hours=rng.randint(0, 12)), "unused")

    # Max: no plan and no card, a few one-off invoices paid by bank transfer.
    created = b.ago(300, 330)
    max_ = b.customer("Max Noplan", SCRIPTED_EMAILS[4], created, us[6], card=None)
    for days, item in ((2, 0), (95, 2), (210, 5)):
        b.one_off(max_, created + timedelta(days=days, hours=rng.randint(0, 8)), item=item)


def _cancel_at_period_end(sub: Subscription, requested: datetime, feedback: str) -> None:
    sub.cancel_at_period_end = True
    sub.cancel_at = sub.current_period_end
    sub.canceled_at = requested
    sub.cancellation_details_reason = "cancellation_requested"
    sub.cancellation_details_feedback = feedback


def _canceled(sub: Subscription, requested: datetime, reason: str, rng: random.Random) -> None:
    sub.canceled_at = requested
    sub.cancellation_details_reason = reason
    if reason == "cancellation_requested":
        sub.cancellation_details_feedback = rng.choice(CANCELLATION_REASONS)


def _plan(rng: random.Random) -> tuple[str, str, int]:
    key = rng.choices(("starter", "team", "business"), weights=(4, 4, 2))[0]
    interval = "year" if rng.random() < 0.3 else "month"
    quantity = rng.randint(3, 20) if key == "team" else 1
    return key, interval, quantity


def generic(b: Builder) -> None:
    now, rng = b.now, b.rng
    scenarios = list(people.SCENARIOS)
    rng.shuffle(scenarios)
    counts: dict[str, int] = {}
    for person, scenario in zip(people.PEOPLE, scenarios, strict=True):
        nth = counts[scenario] = counts.get(scenario, -1) + 1
        email = f"{slug(person.name)}@{rng.choice(people.DOMAINS)}"
        address = b.address(person.country)
        key, interval, quantity = _plan(rng)
        shipping = key == "team" and rng.random() < 0.5

        if scenario == "active":
            created = b.ago(20, 720)
            customer = b.customer(person.name, email, created, address, shipping=shipping)
            start = created + timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            b.subscribe(customer, key, interval, start, quantity=quantity)
            if nth < 2:  # sent twice by mistake: the copy was voided
                b.one_off(customer, start + timedelta(days=3), status="void", item=nth)
                b.one_off(customer, start + timedelta(days=3, minutes=8), item=nth)
            elif rng.random() < 0.2:
                b.one_off(customer, b.ago(5, (now - start).days))
            if rng.random() < 0.2:
                b.card(customer, "mastercard", b.ago(1, (now - created).days))

        elif scenario in ("past_due", "unpaid"):
            # The newest renewal failed: recently (past_due) or weeks ago (unpaid).
            phase = rng.randint(2, 12) if scenario == "past_due" else rng.randint(16, 25)
            interval = "month" if scenario == "unpaid" else interval
            back = rng.randint(3, 15) if interval == "month" else 12
            start = add_months(now - timedelta(days=phase, hours=rng.randint(0, 20)), -back)
            customer = b.customer(person.name, email, start - timedelta(minutes=20), address)
            b.subscribe(
                customer, key, interval, start, quantity=quantity, status=scenario,
                last_invoice="open",
            )  # fmt: skip

        elif scenario in ("canceled_recent", "canceled_old"):
            ended = b.ago(10, 55) if scenario == "canceled_recent" else b.ago(150, 400)
            months = rng.randint(2, 10)
            start = add_months(ended, -months)
            customer = b.customer(person.name, email, start - timedelta(hours=3), address)
            if scenario == "canceled_old" and nth == 0:
                # Every retry of the last renewal failed, so the subscription was canceled.
                ended_at = add_months(start, months) - timedelta(days=rng.randint(5, 10))
                sub = b.subscribe(
                    customer, key, "month", start, quantity=quantity, status="canceled",
                    ended_at=ended_at, last_invoice="uncollectible",
                )  # fmt: skip
                _canceled(sub, ended_at, "payment_failed", rng)
            else:
                ended_at = add_months(start, months)
                sub = b.subscribe(
                    customer, key, "month", start, quantity=quantity, status="canceled",
                    ended_at=ended_at,
                )  # fmt: skip
                requested = ended_at - timedelta(days=rng.randint(2, 20), hours=rng.randint(0, 9))
                _canceled(sub, requested, "cancellation_requested", rng)

        elif scenario == "trialing":
            created = b.ago(1, 9)
            customer = b.customer(person.name, email, created, address)
            b.subscribe(customer, key, "month", created, status="trialing", trial_days=14)

        elif scenario == "one_off":
            created = b.ago(100, 400)
            customer = b.customer(person.name, email, created, address)
            b.one_off(customer, created + timedelta(days=1), item=3)
            b.one_off(customer, created + timedelta(days=40), status="void", item=0)
            b.one_off(customer, created + timedelta(days=41), item=0)

        else:  # "new": signed up this week, nothing bought yet
            b.customer(person.name, email, b.ago(1, 7), address, card=None)
