"""The delivery worker: claims due outbox rows, renders and sends them, retries with backoff.

Safe with several workers and instances: a row is claimed by a conditional update (and, on
PostgreSQL, ``FOR UPDATE SKIP LOCKED``), and a claim is a lease: if a worker dies mid-delivery the
row becomes due again when the lease runs out, so no message is lost. Retries back off
exponentially but never past the message's ``expires_at`` (a passcode is useless after its
lifetime).

A sick SMTP server never holds a worker: every step of a conversation has a timeout and the whole
conversation a deadline shorter than the lease (``app.mail.transport``); a message whose lease
has too little time left for a whole conversation is put back rather than sent (another worker
may claim it once the lease ends); and once the server is unreachable (refused, timed out,
disconnected), the rest of the batch is rescheduled with the same error instead of waiting for
the same failure message after message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiosmtplib
from jinja2 import Environment

from app import clock, db
from app.mail import service
from app.mail.tables import OutboxMessage
from app.mail.transport import SmtpConfig, build_message, send

log = logging.getLogger("portico.mail")

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
BATCH = 10
POLL_SECONDS = 2.0
STOP_SECONDS = 10.0  # at shutdown, how long the message in hand may take before it is cancelled


# Errors that say the server cannot be reached at all (rather than "this message was refused").
UNREACHABLE = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPServerDisconnected,
    TimeoutError,
    OSError,
)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, 40 s … capped at 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


class DeliveryWorker:
    def __init__(
        self,
        settings,
        environment: Environment,
        smtp: Callable[[], SmtpConfig],
    ) -> None:
        self.settings = settings
        self.environment = environment
        self.smtp = smtp
        self.wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        service.attach_wakeup(self.wakeup)
        self._task = asyncio.create_task(self._run(), name="portico-mail-worker")

    async def stop(self) -> None:
        """Let the worker finish what it holds, then end it. Cancelling is only the fallback for
        a delivery that hangs: on Python 3.11 a cancel that lands as an SMTP reply arrives is
        swallowed (``asyncio.wait_for`` inside aiosmtplib), so a loop that relied on it never
        ended; and a cancelled SQLite query leaves its connection (and any lock) open."""
        service.attach_wakeup(None)
        task = self._task
        if task is None or task.done():
            return
        self._stopping = True
        self.wakeup.set()
        await asyncio.wait({task}, timeout=STOP_SECONDS)
        while not task.done():
            task.cancel()  # again, should a cancel be swallowed
            await asyncio.wait({task}, timeout=1.0)
        if not task.cancelled() and task.exception() is not None:
            log.error("mail worker ended with an error", exc_info=task.exception())

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before looking, so a notify() that comes while this pass runs is kept and
            # the next pass starts at once (cleared after, it was lost until the next poll).
            self.wakeup.clear()
            try:
                delivered = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep the worker alive whatever one batch does
                if db.is_unavailable(error):  # an outage, not a bug: one line, no traceback
                    log.warning("mail worker: database unavailable (%s)", type(error).__name__)
                else:
                    log.exception("mail worker batch failed")
                delivered = 0
            if delivered or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=POLL_SECONDS)

    # -- one pass ------------------------------------------------------------------------------
    async def claim(self, limit: int = BATCH) -> list[OutboxMessage]:
        now = clock.now()
        due = (OutboxMessage.status == "queued") | (OutboxMessage.status == "sending")
        async with db.write():
            query = (
                OutboxMessage.select(OutboxMessage.id)
                .where(due & (OutboxMessage.next_attempt_at <= now))
                .order_by(OutboxMessage.next_attempt_at)
                .limit(limit)
            )
            if db.is_postgres():
                query = query.lock_rows("UPDATE", skip_locked=True)
            ids = [row["id"] for row in await query]
            if not ids:
                return []
            claimed = (
                await OutboxMessage.update(
                    {
                        OutboxMessage.status: "sending",
                        OutboxMessage.attempts: OutboxMessage.attempts + 1,
                        OutboxMessage.next_attempt_at: now + LEASE,
                    }
                )
                .where(OutboxMessage.id.is_in(ids) & due & (OutboxMessage.next_attempt_at <= now))
                .returning(OutboxMessage.id)
            )
        claimed_ids = [row["id"] for row in claimed]
        if not claimed_ids:
            return []
        return (
            await OutboxMessage.objects()
            .where(OutboxMessage.id.is_in(claimed_ids))
            .output(load_json=True)
        )

    async def deliver_due(self) -> int:
        messages = await self.claim()
        for index, message in enumerate(messages):
            error = await self.deliver(message)
            if isinstance(error, UNREACHABLE):
                for rest in messages[index + 1 :]:
                    await self._retry(rest, error)
                break
        return len(messages)

    async def deliver(self, message: OutboxMessage) -> Exception | None:
        """Send one claimed message; returns the error when sending failed (it is then
        rescheduled), else None."""
        now = clock.now()
        if message.expires_at and now >= message.expires_at:
            await self._finish(message, "expired", "expired before it could be delivered")
            return None
        secrets = service.unseal(self.settings, message.sealed)
        context: dict[str, Any] = dict(message.context or {})
        subject = message.subject
        sender_name = ""
        prepare = service.preparer(message.kind)
        if prepare is not None:
            prepared = await prepare(message, secrets)
            if prepared is None:
                await self._finish(message, "skipped", None)
                return None
            subject = prepared.subject or subject
            context.update(prepared.context)
            sender_name = prepared.context.get("sender_name", "")
        context.update(secrets)
        try:
            config = self.smtp()
            lease_end = message.next_attempt_at  # set by the claim
            if lease_end is not None and now + timedelta(seconds=config.deadline) > lease_end:
                await self._put_back(message)
                return None
            text = self.environment.get_template(f"mail/{message.template}.txt").render(context)
            html = self.environment.get_template(f"mail/{message.template}.html").render(context)
            email = build_message(
                config,
                to=message.to_address,
                subject=subject,
                text=text,
                html=html,
                sender_name=sender_name,
            )
            await send(config, email)
        except Exception as error:  # SMTP, network, template: retry later, say why
            await self._retry(message, error)
            return error
        await self._finish(message, "sent", None, sent=True)
        return None

    async def _put_back(self, message: OutboxMessage) -> None:
        """Unclaim a message this worker will not send now (its claimed attempt is not counted)."""
        await OutboxMessage.update(
            {
                OutboxMessage.status: "queued",
                OutboxMessage.attempts: OutboxMessage.attempts - 1,
                OutboxMessage.next_attempt_at: clock.now(),
            }
        ).where((OutboxMessage.id == message.id) & (OutboxMessage.status == "sending"))

    async def _retry(self, message: OutboxMessage, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"[:500]
        next_at = clock.now() + backoff(message.attempts)
        gives_up = message.attempts >= MAX_ATTEMPTS or (
            message.expires_at is not None and next_at >= message.expires_at
        )
        if gives_up:
            await self._finish(message, "failed", reason)
            return
        log.warning("mail %s to outbox retry %s: %s", message.id, message.attempts, reason)
        await OutboxMessage.update(
            {
                OutboxMessage.status: "queued",
                OutboxMessage.next_attempt_at: next_at,
                OutboxMessage.last_error: reason,
            }
        ).where(OutboxMessage.id == message.id)

    async def _finish(
        self, message: OutboxMessage, status: str, error: str | None, sent: bool = False
    ) -> None:
        values: dict[Any, Any] = {
            OutboxMessage.status: status,
            OutboxMessage.sealed: None,  # the secret is no longer needed
            OutboxMessage.last_error: error,
        }
        if sent:
            values[OutboxMessage.sent_at] = clock.now()
        await OutboxMessage.update(values).where(OutboxMessage.id == message.id)
