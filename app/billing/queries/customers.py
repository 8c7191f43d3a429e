"""Sign-in: which customer an email address opens."""

from __future__ import annotations

from piccolo.query import WhereRaw

from app.billing.queries.subscriptions import ACTIVE_STATUSES
from app.billing.tables import Customer, Subscription


async def _candidates(email: str) -> list[tuple[Customer, list[str]]]:
    """Every customer with this email (case-insensitive), newest first, with the statuses of
    their active subscriptions (newest first). Two queries."""
    address = email.strip().lower()
    if not address:
        return []
    customers = (
        await Customer.objects()
        .where(WhereRaw("lower(email) = {}", address))
        .order_by(Customer.created, Customer.id, ascending=False)
    )
    if not customers:
        return []
    rows = (
        await Subscription.select(Subscription.customer, Subscription.status)
        .where(
            Subscription.customer.is_in([c.id for c in customers])
            & Subscription.status.is_in(list(ACTIVE_STATUSES))
        )
        .order_by(Subscription.created, ascending=False)
    )
    statuses: dict[str, list[str]] = {}
    for row in rows:
        statuses.setdefault(row["customer"], []).append(row["status"])
    return [(customer, statuses.get(customer.id, [])) for customer in customers]


def _pick(candidates: list[tuple[Customer, list[str]]]) -> Customer | None:
    live = [(customer, statuses) for customer, statuses in candidates if not customer.deleted]
    for customer, statuses in live:
        if statuses:
            return customer
    return live[0][0] if live else None


async def choose_customer(email: str) -> Customer | None:
    """The customer an email signs in as: among non-deleted customers with that email, the most
    recently created one with a subscription in ACTIVE_STATUSES; if none has one, the most recently
    created one; None when no customer has that email."""
    return _pick(await _candidates(email))


async def explain_choice(email: str) -> list[tuple[Customer, str]]:
    """Every customer with that email (deleted ones included), newest first, each with a short
    reason why it is or is not the one the email signs in as."""
    candidates = await _candidates(email)
    chosen = _pick(candidates)
    any_active = any(statuses and not c.deleted for c, statuses in candidates)
    explained: list[tuple[Customer, str]] = []
    for customer, statuses in candidates:
        listed = ", ".join(dict.fromkeys(statuses))
        if customer.deleted:
            reason = "Not chosen: deleted customer."
        elif chosen is not None and customer.id == chosen.id:
            if statuses:
                reason = f"Chosen: the newest customer with an active subscription ({listed})."
            else:
                reason = "Chosen: no customer has an active subscription, so the newest one."
        elif statuses:
            reason = f"Not chosen: has an active subscription ({listed}), but a newer one does too."
        elif any_active:
            reason = "Not chosen: no active subscription, and another customer has one."
        else:
            reason = "Not chosen: a newer customer has the same email."
        explained.append((customer, reason))
    return explained
