"""Finding customers for the merchant: which customer an email address signs in as, and why.

- ``explain(email)``: every customer with exactly that email (case-insensitive), newest first,
  each with the sign-in rule's verdict (``app.billing.queries.explain_choice``, the same code
  sign-in uses) and their subscriptions.
- ``search(text)``: customers whose email starts with ``text``, or whose name (or a word of it)
  does, case-insensitive; at most ``SEARCH_LIMIT``.

Reads the local mirror only; a fixed number of queries whatever the number of customers.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec
from piccolo.query import WhereRaw

from app.billing.queries import ACTIVE_STATUSES, explain_choice
from app.billing.tables import Customer, Subscription, SubscriptionItem
from app.i18n import gettext as _

SEARCH_LIMIT = 20
QUERY_MAX = 254


class PlanLine(msgspec.Struct, frozen=True, kw_only=True):
    product_name: str
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int
    unit_label: str | None
    quantity: int


class SubscriptionLine(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    created: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    items: list[PlanLine]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    email: str | None
    created: datetime
    deleted: bool
    chosen: bool
    reason: str
    subscriptions: list[SubscriptionLine]


class Match(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    email: str | None
    created: datetime
    deleted: bool


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    matches: list[Match]
    more: bool  # there were more than SEARCH_LIMIT


# explain_choice's sentences (English) → the same sentence through gettext.
_FIXED = {
    "Not chosen: deleted customer.": lambda: _("Not chosen: deleted customer."),
    "Chosen: no customer has an active subscription, so the newest one.": lambda: _(
        "Chosen: no customer has an active subscription, so the newest one."
    ),
    "Not chosen: no active subscription, and another customer has one.": lambda: _(
        "Not chosen: no active subscription, and another customer has one."
    ),
    "Not chosen: a newer customer has the same email.": lambda: _(
        "Not chosen: a newer customer has the same email."
    ),
}
_WITH_STATUSES = (
    (
        re.compile(r"^Chosen: the newest customer with an active subscription \((.+)\)\.$"),
        lambda listed: (
            _("Chosen: the newest customer with an active subscription (%(statuses)s).")
            % {"statuses": listed}
        ),
    ),
    (
        re.compile(
            r"^Not chosen: has an active subscription \((.+)\), but a newer one does too\.$"
        ),
        lambda listed: (
            _("Not chosen: has an active subscription (%(statuses)s), but a newer one does too.")
            % {"statuses": listed}
        ),
    ),
)


def translated_reason(reason: str) -> str:
    """``explain_choice``'s reason in the page's language (unchanged if it is a new sentence)."""
    if reason in _FIXED:
        return _FIXED[reason]()
    for pattern, message in _WITH_STATUSES:
        found = pattern.match(reason)
        if found:
            return message(found.group(1))
    return reason


async def _subscriptions(customer_ids: list[str]) -> dict[str, list[SubscriptionLine]]:
    """Every subscription of these customers with its items: two queries. Active ones first,
    newest first."""
    if not customer_ids:
        return {}
    subs = await Subscription.select(
        Subscription.id,
        Subscription.customer,
        Subscription.status,
        Subscription.created,
        Subscription.current_period_end,
        Subscription.cancel_at_period_end,
    ).where(Subscription.customer.is_in(customer_ids))
    if not subs:
        return {}
    price = SubscriptionItem.price
    rows = await SubscriptionItem.select(
        SubscriptionItem.id,
        SubscriptionItem.subscription,
        SubscriptionItem.quantity,
        price.currency.as_alias("currency"),
        price.unit_amount.as_alias("unit_amount"),
        price.recurring_interval.as_alias("interval"),
        price.recurring_interval_count.as_alias("interval_count"),
        price.product.name.as_alias("product_name"),
        price.product.unit_label.as_alias("unit_label"),
    ).where(SubscriptionItem.subscription.is_in([s["id"] for s in subs]))
    items: dict[str, list[PlanLine]] = {}
    for row in sorted(rows, key=lambda r: (r["product_name"] or "", r["id"])):
        subscription_id = row.pop("subscription")
        row.pop("id")
        items.setdefault(subscription_id, []).append(PlanLine(**row))
    found: dict[str, list[SubscriptionLine]] = {}
    for sub in sorted(subs, key=lambda s: s["created"], reverse=True):
        customer_id = sub.pop("customer")
        found.setdefault(customer_id, []).append(
            SubscriptionLine(**sub, items=items.get(sub["id"], []))
        )
    for lines in found.values():
        lines.sort(key=lambda line: not line.is_active)
    return found


async def explain(email: str) -> list[Candidate]:
    """Every customer with this email, newest first, with the sign-in verdict and why."""
    explained = await explain_choice(email)
    subscriptions = await _subscriptions([customer.id for customer, _reason in explained])
    return [
        Candidate(
            id=customer.id,
            name=customer.name,
            email=customer.email,
            created=customer.created,
            deleted=customer.deleted,
            chosen=reason.startswith("Chosen"),
            reason=translated_reason(reason),
            subscriptions=subscriptions.get(customer.id, []),
        )
        for customer, reason in explained
    ]


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


async def search(text: str, limit: int = SEARCH_LIMIT) -> SearchResult:
    """Customers whose email, name or a word of their name starts with ``text``."""
    text = text.strip().lower()[:QUERY_MAX]
    if not text:
        return SearchResult(matches=[], more=False)
    prefix = _like_prefix(text)
    rows = (
        await Customer.select(
            Customer.id, Customer.name, Customer.email, Customer.created, Customer.deleted
        )
        .where(
            WhereRaw(
                "(lower(email) LIKE {} ESCAPE '\\' OR lower(name) LIKE {} ESCAPE '\\' "
                "OR lower(name) LIKE {} ESCAPE '\\')",
                prefix,
                prefix,
                f"% {prefix}",
            )
        )
        .order_by(Customer.email, Customer.created, Customer.id)
        .limit(limit + 1)
    )
    return SearchResult(
        matches=[Match(**row) for row in rows[:limit]],
        more=len(rows) > limit,
    )
