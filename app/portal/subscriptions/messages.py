"""The subscription actions (their audit names) and what the customer is told: after each
action, and about a discount's terms."""

from __future__ import annotations

from app.billing.queries import Discount, SubscriptionView
from app.i18n import gettext as _
from app.i18n import ngettext
from app.web import formatting

CHANGED = "subscription.plan_changed"
CANCELED = "subscription.canceled"
RENEWED = "subscription.renewed"
PAUSED = "subscription.paused"
RESUMED = "subscription.resumed"
OFFER_SHOWN = "subscription.retention_offered"
OFFER_ACCEPTED = "subscription.retention_accepted"


def discount_terms(discount: Discount) -> str:
    """``20% off for 3 months``, ``$10.00 off your next invoice``…"""
    if discount.percent_off:
        amount = f"{discount.percent_off}%"
    else:
        amount = formatting.money(discount.amount_off or 0, discount.currency or "usd")
    if discount.duration == "forever":
        return _("%(amount)s off for as long as you stay subscribed") % {"amount": amount}
    if discount.duration == "repeating" and discount.duration_in_months:
        months = discount.duration_in_months
        return ngettext(
            "%(amount)s off for %(n)d month", "%(amount)s off for %(n)d months", months
        ) % {"amount": amount, "n": months}
    return _("%(amount)s off your next invoice") % {"amount": amount}


def change_message(sub: SubscriptionView, tz: str | None, *, scheduled: bool = False) -> str:
    if sub.pending is not None or scheduled:
        when = sub.pending.starts if sub.pending is not None else sub.current_period_end
        return _("Your plan will change on %(date)s.") % {"date": formatting.day(when, tz)}
    return _("Your plan was changed.")


def cancel_message(sub: SubscriptionView, tz: str | None) -> str:
    if not sub.is_active or sub.access_ends is None:
        return _("Your subscription was canceled immediately.")
    return _("Your subscription was canceled. You have access until %(date)s.") % {
        "date": formatting.day(sub.access_ends, tz)
    }


def renew_message(sub: SubscriptionView, tz: str | None) -> str:
    return _("Your subscription was renewed.")


def pause_message(sub: SubscriptionView, tz: str | None) -> str:
    if sub.pause_collection_resumes_at is not None:
        return _("Payments are paused until %(date)s.") % {
            "date": formatting.day(sub.pause_collection_resumes_at, tz)
        }
    return _("Payments are paused until you resume them.")


def resume_message(sub: SubscriptionView, tz: str | None) -> str:
    return _("Payments have resumed.")


def offer_message(sub: SubscriptionView, tz: str | None) -> str:
    if sub.discount is not None:
        return _("Thank you for staying: %(offer)s has been applied to your subscription.") % {
            "offer": discount_terms(sub.discount)
        }
    return _("Thank you for staying: the offer has been applied to your subscription.")


MESSAGES = {
    CHANGED: change_message,
    CANCELED: cancel_message,
    RENEWED: renew_message,
    PAUSED: pause_message,
    RESUMED: resume_message,
    OFFER_ACCEPTED: offer_message,
}
