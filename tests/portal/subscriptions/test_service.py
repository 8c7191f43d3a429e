"""Subscription rules: eligibility, options from the configuration, quantities, downgrades at the
period end, feature switches, cancellation input, pause dates and the retention offer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from app.audit import service as audit
from app.billing.tables import Coupon, Subscription, SubscriptionSchedule
from app.configuration import features as f
from app.portal.subscriptions import service
from app.portal.subscriptions.forms import CancelForm, ChangeForm, PauseForm
from app.portal.subscriptions.service import (
    CatalogueRow,
    ChangeOption,
    Item,
    SubscriptionDetail,
)
from tests.helpers import JENNY, LEE
from tests.portal.subscriptions.support import (
    customer_by_email,
    features_of,
    set_features,
    subscription_of,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

TEAM_MONTH = Item(
    id="si_1",
    price_id="price_team_month",
    product_id="prod_team",
    product_name="Team",
    unit_label="seat",
    unit_amount=2900,
    currency="usd",
    interval="month",
    interval_count=1,
    quantity=5,
    usage_type="licensed",
)


def make_sub(**changes) -> SubscriptionDetail:
    sub = SubscriptionDetail(
        id="sub_1",
        status="active",
        currency="usd",
        collection_method="charge_automatically",
        created=NOW - timedelta(days=100),
        current_period_start=NOW - timedelta(days=10),
        current_period_end=NOW + timedelta(days=20),
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_end=None,
        pause_collection_behavior=None,
        pause_collection_resumes_at=None,
        schedule=None,
        items=[TEAM_MONTH],
    )
    return msgspec.structs.replace(sub, **changes)


def row(price_id: str, product: str, interval: str, amount: int, **changes) -> CatalogueRow:
    values = {
        "price_id": price_id,
        "product_id": f"prod_{product.lower()}",
        "product_name": product,
        "product_active": True,
        "unit_label": None,
        "price_active": True,
        "type": "recurring",
        "currency": "usd",
        "unit_amount": amount,
        "interval": interval,
        "interval_count": 1,
        "usage_type": "licensed",
        **changes,
    }
    return CatalogueRow(**values)


CATALOGUE = [
    row("price_starter_month", "Starter", "month", 900),
    row("price_starter_year", "Starter", "year", 9000),
    row("price_team_month", "Team", "month", 2900, unit_label="seat"),
    row("price_team_year", "Team", "year", 29000, unit_label="seat"),
    row("price_business_month", "Business", "month", 9900),
]


def update_config(
    allowed=("price", "quantity", "promotion_code"),
    conditions=(),
    products=None,
) -> f.SubscriptionUpdate:
    if products is None:
        products = [
            f.UpdatableProduct(
                product="prod_starter", prices=["price_starter_month", "price_starter_year"]
            ),
            f.UpdatableProduct(
                product="prod_team",
                prices=["price_team_month", "price_team_year"],
                adjustable_quantity=f.AdjustableQuantity(enabled=True, minimum=2, maximum=50),
            ),
            f.UpdatableProduct(product="prod_business", prices=["price_business_month"]),
        ]
    return f.SubscriptionUpdate(
        enabled=True,
        default_allowed_updates=list(allowed),
        products=products,
        proration_behavior="create_prorations",
        schedule_at_period_end_conditions=list(conditions),
        trial_update_behavior="end_trial",
    )


def option(price_id: str, options: list[ChangeOption]) -> ChangeOption:
    return next(o for o in options if o.price_id == price_id)


# --- eligibility --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"status": "trialing"}, None),
        ({"status": "past_due"}, None),
        ({"status": "unpaid"}, "status"),
        ({"status": "paused"}, "status"),
        ({"status": "canceled"}, "status"),
        ({"cancel_at_period_end": True}, "canceling"),
        ({"items": [TEAM_MONTH, msgspec.structs.replace(TEAM_MONTH, id="si_2")]}, "several_items"),
        ({"items": [msgspec.structs.replace(TEAM_MONTH, usage_type="metered")]}, "metered"),
        ({"collection_method": "send_invoice"}, "send_invoice"),
        ({"schedule": "sub_sched_1"}, "scheduled_change"),
    ],
)
def test_update_blocker(changes, reason) -> None:
    assert service.update_blocker(make_sub(**changes)) == reason
    if reason:
        assert service.blocker_message(reason)


def test_cancel_renew_pause_resume_eligibility() -> None:
    active = make_sub()
    canceling = make_sub(cancel_at_period_end=True, cancel_at=active.current_period_end)
    canceling = msgspec.structs.replace(canceling, access_ends=canceling.current_period_end)
    ended = make_sub(status="canceled", ended_at=NOW - timedelta(days=1))
    paused = make_sub(pause_collection_behavior="void")
    assert service.cancel_blocker(active) is None
    assert service.cancel_blocker(canceling) == "already_canceled"
    assert service.cancel_blocker(ended) == "not_active"
    assert service.renew_blocker(canceling, NOW) is None
    assert service.renew_blocker(canceling, canceling.current_period_end) == "not_canceling"
    assert service.renew_blocker(active, NOW) == "not_canceling"
    assert service.renew_blocker(ended, NOW) == "not_active"
    assert service.pause_blocker(active) is None
    assert service.pause_blocker(paused) == "already_paused"
    assert service.pause_blocker(canceling) == "already_canceled"
    assert service.pause_blocker(make_sub(status="past_due")) == "not_pausable"
    assert service.resume_blocker(paused) is None
    assert service.resume_blocker(active) == "not_paused"


def test_actions_follow_the_feature_switches() -> None:
    sub = make_sub()
    options = service.build_options(update_config(), sub, CATALOGUE)
    on = f.Features(
        subscription_update=update_config(),
        subscription_pause=f.SubscriptionPause(enabled=True),
    )
    acts = service.actions(on, sub, options, NOW)
    assert (acts.change, acts.cancel, acts.pause, acts.resume, acts.renew) == (
        True,
        True,
        True,
        False,
        False,
    )
    off = f.Features(
        subscription_update=f.SubscriptionUpdate(enabled=False),
        subscription_cancel=f.SubscriptionCancel(enabled=False),
        subscription_pause=f.SubscriptionPause(enabled=False),
    )
    acts = service.actions(off, make_sub(schedule="sub_sched_1"), [], NOW)
    assert acts == service.Actions()  # no control, not even the reason it can't change
    paused = service.actions(off, make_sub(pause_collection_behavior="void"), [], NOW)
    assert not paused.resume
    blocked = service.actions(on, make_sub(collection_method="send_invoice"), [], NOW)
    assert not blocked.change
    assert "invoice" in (blocked.change_blocked or "")
    assert blocked.cancel
    assert service.actions(on, make_sub(status="canceled"), options, NOW) == service.Actions()


# --- options -----------------------------------------------------------------------------------


def test_options_follow_the_configuration() -> None:
    options = service.build_options(update_config(), make_sub(), CATALOGUE)
    assert [o.price_id for o in options] == [
        "price_starter_month",
        "price_starter_year",
        "price_team_month",
        "price_team_year",
        "price_business_month",
    ]
    current = option("price_team_month", options)
    assert current.current
    assert (current.adjustable, current.minimum, current.maximum) == (True, 2, 50)
    assert not option("price_starter_month", options).adjustable


def test_at_most_ten_products_and_one_price_per_product_and_interval() -> None:
    rows = [row(f"price_{n}", f"P{n}", "month", 100 * n) for n in range(12)]
    rows.append(row("price_0_other_month", "P0", "month", 50))
    rows.append(row("price_0_year", "P0", "year", 500))
    products = [f.UpdatableProduct(product=f"prod_p{n}", prices=[f"price_{n}"]) for n in range(12)]
    products[0].prices += ["price_0_other_month", "price_0_year"]
    options = service.build_options(
        update_config(products=products), make_sub(), rows + CATALOGUE[2:3]
    )
    chosen = [o.price_id for o in options if not o.current]
    assert chosen == ["price_0", "price_0_year"] + [f"price_{n}" for n in range(1, 10)]
    assert "price_10" not in chosen
    assert "price_0_other_month" not in chosen
    # The current price (not configured here) stays an option.
    assert options[0].price_id == "price_team_month"
    assert options[0].current


def test_unusable_prices_are_left_out() -> None:
    rows = [
        row("price_inactive", "Starter", "month", 900, price_active=False),
        row("price_eur", "Starter", "year", 9000, currency="eur"),
        row("price_metered", "Business", "month", 10, usage_type="metered"),
        row("price_archived_product", "Business", "year", 99000, product_active=False),
        CATALOGUE[2],
    ]
    products = [
        f.UpdatableProduct(product="prod_starter", prices=["price_inactive", "price_eur"]),
        f.UpdatableProduct(
            product="prod_business", prices=["price_metered", "price_archived_product"]
        ),
        f.UpdatableProduct(product="prod_team", prices=["price_team_month"]),
        # A price configured under the wrong product is ignored.
        f.UpdatableProduct(product="prod_other", prices=["price_team_month"]),
    ]
    options = service.build_options(update_config(products=products), make_sub(), rows)
    assert [o.price_id for o in options] == ["price_team_month"]


def test_allowed_updates_limit_the_choice() -> None:
    sub = make_sub()
    only_quantity = service.build_options(update_config(allowed=["quantity"]), sub, CATALOGUE)
    assert [o.price_id for o in only_quantity] == ["price_team_month"]
    assert only_quantity[0].adjustable
    only_price = service.build_options(update_config(allowed=["price"]), sub, CATALOGUE)
    assert len(only_price) == 5
    assert not any(o.adjustable for o in only_price)
    nothing = update_config(allowed=[])
    assert not service.has_choice(nothing, service.build_options(nothing, sub, CATALOGUE))
    promo_only = update_config(allowed=["promotion_code"])
    assert service.has_choice(promo_only, service.build_options(promo_only, sub, CATALOGUE))


def test_quantity_hint() -> None:
    options = service.build_options(update_config(), make_sub(), CATALOGUE)
    assert service.quantity_hint(options) == (
        "For Team, enter a number between 2 and 50. Other plans do not use this quantity."
    )
    team_only = [o for o in options if o.product_id == "prod_team"]
    assert service.quantity_hint(team_only) == "Enter a number between 2 and 50."
    assert service.quantity_hint([o for o in options if not o.adjustable]) is None


# --- validating a change -------------------------------------------------------------------------


def check_change(update, sub, **values):
    form = ChangeForm(**values)
    errors = form.check()
    options = service.build_options(update, sub, CATALOGUE)
    return service.validate_change(update, sub, options, form, errors), errors


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("", "Enter a quantity."),
        ("abc", "Enter the quantity as a whole number, like 5."),
        ("-3", "Enter the quantity as a whole number, like 5."),
        ("1", "Enter a quantity between 2 and 50."),
        ("51", "Enter a quantity between 2 and 50."),
    ],
)
def test_quantity_bounds(quantity, message) -> None:
    change, errors = check_change(
        update_config(), make_sub(), price="price_team_year", quantity=quantity
    )
    assert change is None
    assert errors == {"quantity": message}


def test_valid_change_and_its_defaults() -> None:
    sub = make_sub()
    change, errors = check_change(update_config(), sub, price="price_team_month", quantity="50")
    assert errors == {}
    assert change is not None
    assert (change.price_id, change.quantity, change.promotion_code) == (
        "price_team_month",
        50,
        None,
    )
    assert change.proration_behavior == "create_prorations"
    assert change.trial_update_behavior == "end_trial"
    # Another product without adjustable quantity: the quantity is 1 whatever was typed.
    change, errors = check_change(
        update_config(), sub, price="price_business_month", quantity="7", promotion_code=" SAVE "
    )
    assert errors == {}
    assert (change.quantity, change.promotion_code) == (1, "SAVE")


def test_invalid_change_choices() -> None:
    sub = make_sub()
    assert check_change(update_config(), sub, price="")[1] == {"price": "Choose a plan."}
    assert check_change(update_config(), sub, price="price_elsewhere")[1] == {
        "price": "Choose one of the plans shown."
    }
    same = check_change(update_config(), sub, price="price_team_month", quantity="5")
    assert same[0] is None
    assert "different plan" in same[1]["price"]
    bad_code = check_change(
        update_config(), sub, price="price_starter_month", promotion_code="no spaces!"
    )
    assert set(bad_code[1]) == {"promotion_code"}
    # Promotion codes not allowed: the field is ignored.
    ignored = check_change(
        update_config(allowed=["price"]), sub, price="price_starter_month", promotion_code="x y"
    )
    assert ignored[1] == {}
    assert ignored[0].promotion_code is None


# --- downgrades at the period end ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "price", "quantity", "expected"),
    [
        ([], "price_starter_month", 1, False),
        (["decreasing_item_amount"], "price_starter_month", 1, True),  # 9 * 1 < 29 * 5
        (["decreasing_item_amount"], "price_team_month", 4, True),
        (["decreasing_item_amount"], "price_team_month", 6, False),
        (["decreasing_item_amount"], "price_business_month", 1, True),  # 99 < 145
        (["decreasing_item_amount"], "price_team_year", 5, False),
        (["shortening_interval"], "price_starter_month", 1, False),
        (["shortening_interval"], "price_team_year", 5, False),
    ],
)
def test_schedule_at_period_end_from_a_monthly_plan(conditions, price, quantity, expected) -> None:
    options = service.build_options(update_config(), make_sub(), CATALOGUE)
    assert (
        service.schedule_at_period_end(conditions, TEAM_MONTH, option(price, options), quantity)
        is expected
    )


def test_shortening_interval_schedules_year_to_month() -> None:
    yearly = msgspec.structs.replace(
        TEAM_MONTH, price_id="price_team_year", unit_amount=29000, interval="year"
    )
    sub = make_sub(items=[yearly])
    options = service.build_options(update_config(), sub, CATALOGUE)
    monthly_team = option("price_team_month", options)
    assert service.schedule_at_period_end(["shortening_interval"], yearly, monthly_team, 5)
    assert not service.schedule_at_period_end(["decreasing_item_amount"], yearly, monthly_team, 50)
    change, errors = check_change(
        update_config(conditions=["shortening_interval"]),
        sub,
        price="price_team_month",
        quantity="50",
    )
    assert errors == {}
    assert change.schedule_at_period_end


# --- cancelling ----------------------------------------------------------------------------------


def test_cancel_reasons_follow_the_configuration() -> None:
    features = f.Features()
    reasons = service.cancel_reasons(features)
    assert [code for code, _label in reasons] == list(f.CANCELLATION_REASONS)
    assert dict(reasons)["too_expensive"] == "It's too expensive"
    assert dict(reasons)["too_complex"] == "Ease of use was less than expected"
    features.subscription_cancel.cancellation_reason.options = ["other", "unused"]
    assert service.cancel_reasons(features) == [
        ("unused", "I no longer need it"),
        ("other", "Other reason"),
    ]
    features.subscription_cancel.cancellation_reason.enabled = False
    assert service.cancel_reasons(features) == []


def test_validate_cancel() -> None:
    features = f.Features()
    form = CancelForm(reason="unused", comment="  Too busy.  ")
    request = service.validate_cancel(features, form, form.check())
    assert request == service.CancelRequest(
        at_period_end=True, proration_behavior="none", reason="unused", comment="Too busy."
    )
    errors: dict[str, str] = {}
    assert service.validate_cancel(features, CancelForm(reason="bored"), errors) is None
    assert errors == {"reason": "Choose one of the reasons shown."}
    long = CancelForm(comment="x" * 501)
    assert set(long.check()) == {"comment"}
    assert CancelForm(comment="x" * 500).check() == {}
    features.subscription_cancel.mode = "immediately"
    features.subscription_cancel.proration_behavior = "create_prorations"
    features.subscription_cancel.cancellation_reason.enabled = False
    request = service.validate_cancel(features, CancelForm(reason="bored", comment="hi"), {})
    assert request == service.CancelRequest(
        at_period_end=False, proration_behavior="create_prorations", reason=None, comment=None
    )


# --- pausing --------------------------------------------------------------------------------------


def check_pause(mode: str, resume_on: str = "", tz: str | None = None):
    form = PauseForm(mode=mode, resume_on=resume_on)
    errors = form.check()
    return service.validate_pause(form, NOW, tz, errors), errors


def test_pause_dates() -> None:
    assert check_pause("") == (None, {"mode": "Choose how long to pause payments."})
    assert check_pause("indefinitely") == (None, {})
    assert check_pause("date")[1] == {"resume_on": "Enter the date payments resume."}
    assert check_pause("date", "26/12/2026")[1] == {
        "resume_on": "Enter a real date, like 2027-01-15."
    }
    assert check_pause("date", "2026-02-30")[1] == {
        "resume_on": "Enter a real date, like 2027-01-15."
    }
    assert "future" in check_pause("date", "2026-11-26")[1]["resume_on"]
    assert "on or before 26 Feb 2027" in check_pause("date", "2027-02-27")[1]["resume_on"]
    assert check_pause("date", "2027-02-26") == (datetime(2027, 2, 26, tzinfo=UTC), {})
    resumes, errors = check_pause("date", "2026-11-27", tz="America/New_York")
    assert errors == {}
    assert resumes == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def test_add_months_clamps_the_day() -> None:
    assert service.add_months(datetime(2026, 11, 30).date(), 3).isoformat() == "2027-02-28"


# --- with the demo data -------------------------------------------------------------------------


async def test_list_and_find_through_the_customer(demo) -> None:
    jenny = await customer_by_email(JENNY)
    subs = await service.list_subscriptions(jenny.id)
    assert len(subs) == 1
    sub = subs[0]
    assert sub.title == "Team"
    assert sub.next_charge is not None
    assert sub.next_charge.amount == 5 * 2900
    assert await service.find(jenny.id, sub.id) == sub
    lee = await customer_by_email(LEE)
    assert await service.find(lee.id, sub.id) is None
    assert await service.find(jenny.id, "") is None


async def test_pending_change_and_discount_shape_the_next_charge(demo) -> None:
    jenny = await customer_by_email(JENNY)
    row_ = await subscription_of(JENNY)
    catalogue = await service.catalogue((await features_of(demo)).subscription_update)
    starter = next(r for r in catalogue if r.product_name == "Starter" and r.interval == "month")
    await SubscriptionSchedule.insert(
        SubscriptionSchedule(
            id="sub_sched_test",
            customer=jenny.id,
            subscription=row_["id"],
            status="active",
            next_phase_start=row_["current_period_end"],
            next_phase_price=starter.price_id,
            next_phase_quantity=2,
        )
    )
    await Subscription.update(
        {Subscription.schedule: "sub_sched_test", Subscription.discount_coupon: "STAY20"}
    ).where(Subscription.id == row_["id"])
    sub = await service.find(jenny.id, row_["id"])
    assert sub.pending is not None
    assert (sub.pending.product_name, sub.pending.quantity) == ("Starter", 2)
    assert sub.discount is not None
    assert sub.discount.percent_off == 20
    assert sub.next_charge.amount == 2 * 900 - round(2 * 900 * 0.2)
    assert service.update_blocker(sub) == "scheduled_change"
    assert service.change_message(sub, None).startswith("Your plan will change on ")


def test_discount_terms() -> None:
    def discount(**values):
        base = {
            "coupon_id": "c",
            "name": None,
            "percent_off": None,
            "amount_off": None,
            "currency": None,
            "duration": "once",
            "duration_in_months": None,
        }
        return service.Discount(**{**base, **values})

    assert (
        service.discount_terms(discount(percent_off=20, duration="repeating", duration_in_months=3))
        == "20% off for 3 months"
    )
    assert (
        service.discount_terms(discount(percent_off=20, duration="repeating", duration_in_months=1))
        == "20% off for 1 month"
    )
    assert service.discount_terms(discount(amount_off=1000, currency="usd")) == (
        "$10.00 off your next invoice"
    )
    assert service.discount_terms(discount(percent_off=5, duration="forever")) == (
        "5% off for as long as you stay subscribed"
    )
    assert discount(amount_off=1000, currency="usd").apply(500, "usd") == 0
    assert discount(amount_off=1000, currency="eur").apply(500, "usd") == 500


async def test_retention_offer_is_shown_once(demo) -> None:
    features = await features_of(demo)
    assert features.subscription_cancel.retention_coupon == "STAY20"
    jenny = await customer_by_email(JENNY)
    sub = (await service.list_subscriptions(jenny.id))[0]
    offer = await service.offer_to_show(features, sub)
    assert offer is not None
    assert (offer.coupon_id, offer.name, offer.terms) == (
        "STAY20",
        "20% off for 3 months",
        "20% off for 3 months",
    )
    who = service.Who(actor=audit.Actor(type="customer", id=jenny.id), configuration="bpc")
    await service.offer_shown(who, sub, offer)
    assert await service.offer_to_show(features, sub) is None
    # It can still be accepted from the page that showed it.
    assert await service.available_offer(features, sub) is not None


async def test_retention_offer_conditions(demo) -> None:
    features = await features_of(demo)
    jenny = await customer_by_email(JENNY)
    sub = (await service.list_subscriptions(jenny.id))[0]
    applied = msgspec.structs.replace(
        sub,
        discount=service.Discount(
            coupon_id="STAY20",
            name=None,
            percent_off=20,
            amount_off=None,
            currency=None,
            duration="once",
            duration_in_months=None,
        ),
    )
    assert await service.available_offer(features, applied) is None
    canceling = msgspec.structs.replace(sub, cancel_at_period_end=True)
    assert await service.available_offer(features, canceling) is None
    await Coupon.update({Coupon.valid: False}).where(Coupon.id == "STAY20")
    assert await service.available_offer(features, sub) is None
    await Coupon.update({Coupon.valid: True}).where(Coupon.id == "STAY20")
    await set_features(demo, subscription_cancel={"retention_coupon": None})
    assert await service.available_offer(await features_of(demo), sub) is None
    await set_features(demo, subscription_cancel={"retention_coupon": "STAY20"})
    who = service.Who(actor=audit.Actor(type="customer", id=jenny.id), configuration="bpc")
    await audit.record(
        who.actor, service.OFFER_ACCEPTED, object_type="subscription", object_id=sub.id
    )
    assert await service.available_offer(await features_of(demo), sub) is None
