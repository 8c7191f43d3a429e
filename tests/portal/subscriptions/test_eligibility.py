"""Which actions a subscription offers, and why not."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from app.configuration import features as f
from app.portal.subscriptions import eligibility, plans
from tests.portal.subscriptions.examples import CATALOGUE, NOW, TEAM_MONTH, make_sub, update_config


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
    assert eligibility.update_blocker(make_sub(**changes)) == reason
    if reason:
        assert eligibility.blocker_message(reason)


def test_cancel_renew_pause_resume_eligibility() -> None:
    active = make_sub()
    canceling = make_sub(cancel_at_period_end=True, cancel_at=active.current_period_end)
    ended = make_sub(status="canceled", ended_at=NOW - timedelta(days=1))
    paused = make_sub(pause_collection_behavior="void")
    assert eligibility.cancel_blocker(active) is None
    assert eligibility.cancel_blocker(canceling) == "already_canceled"
    assert eligibility.cancel_blocker(ended) == "not_active"
    assert eligibility.renew_blocker(canceling, NOW) is None
    assert eligibility.renew_blocker(canceling, canceling.current_period_end) == "not_canceling"
    assert eligibility.renew_blocker(active, NOW) == "not_canceling"
    assert eligibility.renew_blocker(ended, NOW) == "not_active"
    assert eligibility.pause_blocker(active) is None
    assert eligibility.pause_blocker(paused) == "already_paused"
    assert eligibility.pause_blocker(canceling) == "already_canceled"
    assert eligibility.pause_blocker(make_sub(status="past_due")) == "not_pausable"
    assert eligibility.resume_blocker(paused) is None
    assert eligibility.resume_blocker(active) == "not_paused"


def test_actions_follow_the_feature_switches() -> None:
    sub = make_sub()
    options = plans.build_options(update_config(), sub, CATALOGUE)
    on = f.Features(
        subscription_update=update_config(),
        subscription_pause=f.SubscriptionPause(enabled=True),
    )
    acts = eligibility.actions(on, sub, options, NOW)
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
    acts = eligibility.actions(off, make_sub(schedule="sub_sched_1"), [], NOW)
    assert acts == eligibility.Actions()  # no control, not even the reason it can't change
    paused = eligibility.actions(off, make_sub(pause_collection_behavior="void"), [], NOW)
    assert not paused.resume
    blocked = eligibility.actions(on, make_sub(collection_method="send_invoice"), [], NOW)
    assert not blocked.change
    assert "invoice" in (blocked.change_blocked or "")
    assert blocked.cancel
    assert (
        eligibility.actions(on, make_sub(status="canceled"), options, NOW) == eligibility.Actions()
    )
