"""Reading the activity log: filters, pages, CSV export and the cancellation summary.

Filters: actor email (a case-insensitive "contains"), action (one of the known actions), and a
date range in UTC (``date_from`` and ``date_to`` both included). Results are newest first.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
from piccolo.columns.combination import WhereRaw

from app import clock, db
from app.audit.tables import AuditEvent
from app.configuration.features import reason_labels  # noqa: F401 (used by the activity page)
from app.i18n import gettext as _

PER_PAGE = 50
EXPORT_BATCH = 500
MAX_EMAIL_FILTER = 320
CANCELED = "subscription.canceled"
# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HIDDEN_DETAILS = ("idempotency_key",)
CSV_COLUMNS = (
    "created_at",
    "actor_type",
    "actor_id",
    "actor_email",
    "configuration",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "ip",
    "user_agent",
)


def action_labels() -> dict[str, str]:
    """Every action Portico records, in the order the filter lists them."""
    return {
        "customer.signed_in": _("Customer signed in"),
        "customer.signed_out": _("Customer signed out"),
        "customer.details_updated": _("Customer updated billing details"),
        "customer.tax_id_added": _("Customer added a tax ID"),
        "customer.tax_id_removed": _("Customer removed a tax ID"),
        "subscription.plan_changed": _("Subscription plan changed"),
        "subscription.canceled": _("Subscription canceled"),
        "subscription.renewed": _("Subscription renewed"),
        "subscription.paused": _("Subscription paused"),
        "subscription.resumed": _("Subscription resumed"),
        "subscription.retention_offered": _("Retention offer shown"),
        "subscription.retention_accepted": _("Retention offer accepted"),
        "payment_method.added": _("Payment method added"),
        "payment_method.default_set": _("Default payment method set"),
        "payment_method.removed": _("Payment method removed"),
        "invoice.paid": _("Invoice paid"),
        "invoice.payment_redirected": _("Invoice payment needed another step"),
        "configuration.created": _("Portal configuration created"),
        "configuration.profile_updated": _("Business profile updated"),
        "configuration.branding_updated": _("Branding updated"),
        "configuration.login_link_activated": _("Login link activated"),
        "configuration.login_link_deactivated": _("Login link deactivated"),
        "configuration.login_link_rotated": _("Login link replaced"),
        "merchant.account_created": _("Merchant account created"),
        "merchant.password_changed": _("Merchant password changed"),
        "merchant.signed_in": _("Merchant signed in"),
        "merchant.signed_out": _("Merchant signed out"),
        "merchant.sign_in_failed": _("Merchant sign-in failed"),
        "merchant.sign_in_locked": _("Merchant sign-in locked"),
        "mail.settings_updated": _("Email delivery settings updated"),
        "mail.test_email_queued": _("Test email queued"),
    }


async def known_actions() -> dict[str, str]:
    """The labelled actions plus any other action found in the log (shown as recorded)."""
    labels = action_labels()
    rows = await AuditEvent.select(AuditEvent.action).distinct()
    extra = sorted({row["action"] for row in rows} - labels.keys())
    return {**labels, **{action: action for action in extra}}


# -- filters ------------------------------------------------------------------------------------
class Filters(msgspec.Struct, frozen=True, kw_only=True):
    email: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def query(self) -> dict[str, str]:
        """As URL query parameters (for pagination links and the export)."""
        values = {
            "email": self.email,
            "action": self.action,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in values.items() if value}


def parse_date(value: str) -> date | None:
    """A ``YYYY-MM-DD`` date (what ``<input type="date">`` sends), else None."""
    value = value.strip()
    if len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_range(
    date_from: str, date_to: str, *, from_name: str = "date_from", to_name: str = "date_to"
) -> tuple[date | None, date | None, dict[str, str]]:
    errors: dict[str, str] = {}
    start = parse_date(date_from) if date_from.strip() else None
    end = parse_date(date_to) if date_to.strip() else None
    if date_from.strip() and start is None:
        errors[from_name] = _("Enter the start date as a real date, like 2026-11-01.")
    if date_to.strip() and end is None:
        errors[to_name] = _("Enter the end date as a real date, like 2026-11-30.")
    if start and end and start > end:
        errors[to_name] = _("The end date must be the same as or after the start date.")
    return start, end, errors


def parse_filters(
    email: str, action: str, date_from: str, date_to: str, actions: dict[str, str]
) -> tuple[Filters, dict[str, str]]:
    errors: dict[str, str] = {}
    email = email.strip()
    if len(email) > MAX_EMAIL_FILTER:
        errors["email"] = _("Email must be 320 characters or fewer.")
    action = action.strip()
    if action and action not in actions:
        errors["action"] = _("Choose an action from the list.")
    start, end, date_errors = parse_range(date_from, date_to)
    errors.update(date_errors)
    if errors:
        return Filters(), errors
    return Filters(email=email, action=action, date_from=start, date_to=end), {}


def day_start(value: date) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


def _where(filters: Filters) -> Any:
    clauses: list[Any] = []
    if filters.email:
        column = '"audit_event"."actor_email"'
        if db.is_postgres():
            sql = f"strpos(lower({column}), {{}}::text) > 0"
        else:
            sql = f"instr(lower({column}), {{}}) > 0"
        clauses.append(WhereRaw(sql, filters.email.lower()))
    if filters.action:
        clauses.append(AuditEvent.action == filters.action)
    if filters.date_from:
        clauses.append(AuditEvent.created_at >= day_start(filters.date_from))
    if filters.date_to:
        clauses.append(AuditEvent.created_at < day_start(filters.date_to + timedelta(days=1)))
    where = None
    for clause in clauses:
        where = clause if where is None else where & clause
    return where


# -- pages --------------------------------------------------------------------------------------
class Event(msgspec.Struct, frozen=True):
    id: int
    created_at: datetime
    actor_type: str
    actor_id: str
    actor_email: str
    configuration: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    ip: str
    user_agent: str

    def details(self, limit: int = 120) -> list[tuple[str, str]]:
        """What changed, as short ``(name, text)`` pairs: ``before → after`` where both exist."""
        shown: list[tuple[str, str]] = []
        for name, value in self.after.items():
            if name in HIDDEN_DETAILS:
                continue
            text = _text(value)
            if name in self.before and self.before[name] != value:
                text = f"{_text(self.before[name])} → {text}"
            shown.append((name, text if len(text) <= limit else text[: limit - 1] + "…"))
        for name, value in self.before.items():
            if name not in self.after and name not in HIDDEN_DETAILS:
                shown.append((name, f"{_text(value)} → —"))
        return shown


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class EventPage(msgspec.Struct, frozen=True):
    rows: list[Event]
    page: int
    pages: int
    total: int

    @property
    def has_newer(self) -> bool:
        return self.page > 1

    @property
    def has_older(self) -> bool:
        return self.page < self.pages


def _event(row: dict[str, Any]) -> Event:
    row = {**row, "before": row.get("before") or {}, "after": row.get("after") or {}}
    for name in ("before", "after"):
        if not isinstance(row[name], dict):
            row[name] = {"value": row[name]}
    return msgspec.convert(row, Event)


def _select() -> Any:
    return (
        AuditEvent.select()
        .order_by(AuditEvent.created_at, ascending=False)
        .order_by(AuditEvent.id, ascending=False)
        .output(load_json=True)
    )


async def events(filters: Filters, page: int = 1, per_page: int = PER_PAGE) -> EventPage:
    where = _where(filters)
    count = AuditEvent.count()
    if where is not None:
        count = count.where(where)
    total = await count
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    query = _select().limit(per_page).offset((page - 1) * per_page)
    if where is not None:
        query = query.where(where)
    return EventPage(rows=[_event(row) for row in await query], page=page, pages=pages, total=total)


# -- CSV ----------------------------------------------------------------------------------------
def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading quote."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_row(event: Event) -> list[str]:
    values = {
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "configuration": event.configuration or "",
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": json.dumps(event.before, ensure_ascii=False, sort_keys=True),
        "after": json.dumps(event.after, ensure_ascii=False, sort_keys=True),
        "ip": event.ip,
        "user_agent": event.user_agent,
    }
    return [neutralise(values[name]) for name in CSV_COLUMNS]


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def export_csv(filters: Filters, batch: int = EXPORT_BATCH) -> AsyncIterator[bytes]:
    """The matching events as CSV (UTF-8, header first), in batches read by keyset, so a long
    log streams without being held in memory and rows added meanwhile shift nothing."""
    yield _csv_text([list(CSV_COLUMNS)]).encode()
    where = _where(filters)
    last: Event | None = None
    while True:
        query = _select().limit(batch)
        clause = where
        if last is not None:
            after_last = (AuditEvent.created_at < last.created_at) | (
                (AuditEvent.created_at == last.created_at) & (AuditEvent.id < last.id)
            )
            clause = after_last if clause is None else clause & after_last
        if clause is not None:
            query = query.where(clause)
        found = [_event(row) for row in await query]
        if not found:
            return
        yield _csv_text([csv_row(event) for event in found]).encode()
        if len(found) < batch:
            return
        last = found[-1]


def export_filename(now: datetime | None = None) -> str:
    return f"portico-activity-{(now or clock.now()).strftime('%Y-%m-%d')}.csv"


# -- cancellations ------------------------------------------------------------------------------
class CancellationComment(msgspec.Struct, frozen=True):
    created_at: datetime
    email: str
    reason: str
    comment: str


class CancellationSummary(msgspec.Struct, frozen=True):
    total: int
    counts: dict[str, int]  # reason ("" when none was given) → cancellations
    comments: list[CancellationComment]  # newest first
    comment_total: int


def default_period(today: date | None = None, days: int = 30) -> tuple[date, date]:
    today = today or clock.now().astimezone(UTC).date()
    return today - timedelta(days=days - 1), today


async def cancellation_summary(
    date_from: date, date_to: date, comment_limit: int = 200
) -> CancellationSummary:
    """Cancellations (``subscription.canceled``) between the two dates, both included: how many
    gave each reason, and the comments customers left, newest first."""
    rows = (
        await AuditEvent.select(AuditEvent.created_at, AuditEvent.actor_email, AuditEvent.after)
        .where(
            (AuditEvent.action == CANCELED)
            & (AuditEvent.created_at >= day_start(date_from))
            & (AuditEvent.created_at < day_start(date_to + timedelta(days=1)))
        )
        .order_by(AuditEvent.created_at, ascending=False)
        .order_by(AuditEvent.id, ascending=False)
        .output(load_json=True)
    )
    counts: dict[str, int] = {}
    comments: list[CancellationComment] = []
    comment_total = 0
    for row in rows:
        after = row["after"] if isinstance(row["after"], dict) else {}
        reason = after.get("reason") or ""
        reason = reason if isinstance(reason, str) else str(reason)
        counts[reason] = counts.get(reason, 0) + 1
        comment = after.get("comment") or ""
        if isinstance(comment, str) and comment.strip():
            comment_total += 1
            if len(comments) < comment_limit:
                comments.append(
                    CancellationComment(
                        created_at=row["created_at"],
                        email=row["actor_email"],
                        reason=reason,
                        comment=comment.strip(),
                    )
                )
    return CancellationSummary(
        total=len(rows), counts=counts, comments=comments, comment_total=comment_total
    )
