"""Which actions a subscription offers, and why not (a code and its message)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.billing.queries import SubscriptionView
from app.configuration.features import Features
from app.i18n import gettext as _
from app.portal.subscriptions.plans import ChangeOption, has_choice

# Only these can change plan (Stripe's portal rule).
UPDATABLE_STATUSES = ("active", "trialing", "past_due")
PAUSABLE_STATUSES = ("active", "trialing")


def update_blocker(sub: SubscriptionView) -> str | None:
    """Why the portal cannot change this subscription's plan (a code), or None."""
    if sub.status not in UPDATABLE_STATUSES:
        return "status"
    if sub.is_canceling:
        return "canceling"
    if len(sub.items) != 1:
        return "several_items"
    if sub.items[0].usage_type == "metered":
        return "metered"
    if sub.collection_method == "send_invoice":
        return "send_invoice"
    if sub.schedule or sub.pending is not None:
        return "scheduled_change"
    return None


def blocker_message(code: str) -> str:
    return {
        "status": _("This subscription can't be changed in its current state."),
        "canceling": _("This subscription is set to cancel. Renew it to change your plan."),
        "several_items": _(
            "This subscription has several items, so its plan can't be changed here."
        ),
        "metered": _("This subscription is billed by usage, so its plan can't be changed here."),
        "send_invoice": _(
            "This subscription is paid by invoice, so its plan can't be changed here."
        ),
        "scheduled_change": _(
            "A change is already scheduled for this subscription, so its plan can't be changed "
            "until then."
        ),
        "no_options": _("There are no other plans or quantities to choose from."),
        "already_canceled": _("This subscription is already set to cancel."),
        "not_active": _("This subscription has ended."),
        "already_paused": _("Payments for this subscription are already paused."),
        "not_pausable": _("Payments for this subscription can't be paused."),
        "not_paused": _("Payments for this subscription are not paused."),
        "not_canceling": _("This subscription is not set to cancel."),
        "no_offer": _("This offer is no longer available."),
    }[code]


def cancel_blocker(sub: SubscriptionView) -> str | None:
    if not sub.is_active:
        return "not_active"
    if sub.is_canceling:
        return "already_canceled"
    return None


def renew_blocker(sub: SubscriptionView, now: datetime) -> str | None:
    """Renewing undoes a scheduled cancellation while the subscription has not ended."""
    if not sub.is_active:
        return "not_active"
    if not sub.is_canceling or (sub.access_ends is not None and sub.access_ends <= now):
        return "not_canceling"
    return None


def pause_blocker(sub: SubscriptionView) -> str | None:
    if not sub.is_active:
        return "not_active"
    if sub.is_paused:
        return "already_paused"
    if sub.is_canceling:
        return "already_canceled"
    if sub.status not in PAUSABLE_STATUSES:
        return "not_pausable"
    return None


def resume_blocker(sub: SubscriptionView) -> str | None:
    if not sub.is_active:
        return "not_active"
    if not sub.is_paused:
        return "not_paused"
    return None


class Actions(msgspec.Struct, frozen=True, kw_only=True):
    change: bool = False
    change_blocked: str | None = None  # why not, when changing plans is on but not possible
    cancel: bool = False
    renew: bool = False
    pause: bool = False
    resume: bool = False


def actions(
    features: Features, sub: SubscriptionView, options: list[ChangeOption], now: datetime
) -> Actions:
    """The controls a subscription shows: a switched-off feature shows none."""
    if not sub.is_active:
        return Actions()
    change, blocked = False, None
    if features.subscription_update.enabled:
        code = update_blocker(sub)
        if code is None and not has_choice(features.subscription_update, options):
            code = "no_options"
        change, blocked = code is None, (blocker_message(code) if code else None)
    pause_on = features.subscription_pause.enabled
    return Actions(
        change=change,
        change_blocked=blocked,
        cancel=features.subscription_cancel.enabled and cancel_blocker(sub) is None,
        renew=renew_blocker(sub, now) is None,
        pause=pause_on and pause_blocker(sub) is None,
        resume=pause_on and resume_blocker(sub) is None,
    )
