"""The merchant's view of the outbox: recent messages and what happened to them.

Only delivery facts are read (who, what kind, subject, status, attempts, last error): never the
sealed secrets, the template context or a rendered body, so a passcode cannot reach the page.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.mail.tables import OutboxMessage

PER_PAGE = 25
STATUSES = ("queued", "sending", "sent", "failed", "skipped", "expired")


class OutboxRow(msgspec.Struct, frozen=True):
    id: int
    created_at: datetime
    to_address: str
    kind: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class OutboxPage(msgspec.Struct, frozen=True):
    rows: list[OutboxRow]
    page: int
    pages: int
    total: int

    @property
    def has_newer(self) -> bool:
        return self.page > 1

    @property
    def has_older(self) -> bool:
        return self.page < self.pages


COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.created_at,
    OutboxMessage.to_address,
    OutboxMessage.kind,
    OutboxMessage.subject,
    OutboxMessage.status,
    OutboxMessage.attempts,
    OutboxMessage.last_error,
    OutboxMessage.sent_at,
)


async def recent(page: int = 1, status: str = "", per_page: int = PER_PAGE) -> OutboxPage:
    """One page of messages, newest first (``status`` narrows it to one status)."""
    where = OutboxMessage.status == status if status in STATUSES else None
    count = OutboxMessage.count()
    if where is not None:
        count = count.where(where)
    total = await count
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    query = (
        OutboxMessage.select(*COLUMNS)
        .order_by(OutboxMessage.created_at, ascending=False)
        .order_by(OutboxMessage.id, ascending=False)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    if where is not None:
        query = query.where(where)
    rows = [msgspec.convert(row, OutboxRow) for row in await query]
    return OutboxPage(rows=rows, page=page, pages=pages, total=total)
