"""Cancelling: the survey's reasons and answers, and the retention offer."""

from __future__ import annotations

import msgspec

from app.audit import service as audit
from app.billing import queries
from app.billing.tables import Coupon
from app.configuration import features as f
from app.portal.activity import Who
from app.portal.subscriptions import cancellation, messages, writes
from app.portal.subscriptions.forms import CancelForm
from tests.helpers import JENNY
from tests.portal.support import customer_by_email, features_of, set_features


def test_cancel_reasons_follow_the_configuration() -> None:
    features = f.Features()
    reasons = cancellation.cancel_reasons(features)
    assert [code for code, _label in reasons] == list(f.CANCELLATION_REASONS)
    assert dict(reasons)["too_expensive"] == "It's too expensive"
    assert dict(reasons)["too_complex"] == "Ease of use was less than expected"
    features.subscription_cancel.cancellation_reason.options = ["other", "unused"]
    assert cancellation.cancel_reasons(features) == [
        ("unused", "I no longer need it"),
        ("other", "Other reason"),
    ]
    features.subscription_cancel.cancellation_reason.enabled = False
    assert cancellation.cancel_reasons(features) == []


def test_validate_cancel() -> None:
    features = f.Features()
    form = CancelForm(reason="unused", comment="  Too busy.  ")
    request = cancellation.validate_cancel(features, form, form.check())
    assert request == cancellation.CancelRequest(
        at_period_end=True, proration_behavior="none", reason="unused", comment="Too busy."
    )
    errors: dict[str, str] = {}
    assert cancellation.validate_cancel(features, CancelForm(reason="bored"), errors) is None
    assert errors == {"reason": "Choose one of the reasons shown."}
    long = CancelForm(comment="x" * 501)
    assert set(long.check()) == {"comment"}
    assert CancelForm(comment="x" * 500).check() == {}
    features.subscription_cancel.mode = "immediately"
    features.subscription_cancel.proration_behavior = "create_prorations"
    features.subscription_cancel.cancellation_reason.enabled = False
    request = cancellation.validate_cancel(features, CancelForm(reason="bored", comment="hi"), {})
    assert request == cancellation.CancelRequest(
        at_period_end=False, proration_behavior="create_prorations", reason=None, comment=None
    )


async def test_retention_offer_is_shown_once(demo) -> None:
    features = await features_of(demo)
    assert features.subscription_cancel.retention_coupon == "STAY20"
    jenny = await customer_by_email(JENNY)
    sub = (await queries.subscriptions(jenny.id))[0]
    offer = await cancellation.offer_to_show(features, sub)
    assert offer is not None
    assert (offer.coupon_id, offer.name, offer.terms) == (
        "STAY20",
        "20% off for 3 months",
        "20% off for 3 months",
    )
    who = Who(actor=audit.Actor(type="customer", id=jenny.id), configuration="bpc")
    await writes.offer_shown(who, sub, offer)
    assert await cancellation.offer_to_show(features, sub) is None
    # It can still be accepted from the page that showed it.
    assert await cancellation.available_offer(features, sub) is not None


async def test_retention_offer_conditions(demo) -> None:
    features = await features_of(demo)
    jenny = await customer_by_email(JENNY)
    sub = (await queries.subscriptions(jenny.id))[0]
    applied = msgspec.structs.replace(
        sub,
        discount=queries.Discount(
            coupon_id="STAY20",
            name=None,
            percent_off=20,
            amount_off=None,
            currency=None,
            duration="once",
            duration_in_months=None,
        ),
    )
    assert await cancellation.available_offer(features, applied) is None
    canceling = msgspec.structs.replace(sub, cancel_at_period_end=True)
    assert await cancellation.available_offer(features, canceling) is None
    await Coupon.update({Coupon.valid: False}).where(Coupon.id == "STAY20")
    assert await cancellation.available_offer(features, sub) is None
    await Coupon.update({Coupon.valid: True}).where(Coupon.id == "STAY20")
    await set_features(demo, subscription_cancel={"retention_coupon": None})
    assert await cancellation.available_offer(await features_of(demo), sub) is None
    await set_features(demo, subscription_cancel={"retention_coupon": "STAY20"})
    who = Who(actor=audit.Actor(type="customer", id=jenny.id), configuration="bpc")
    await audit.record(
        who.actor, messages.OFFER_ACCEPTED, object_type="subscription", object_id=sub.id
    )
    assert await cancellation.available_offer(await features_of(demo), sub) is None
