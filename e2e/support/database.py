"""Direct access to the live server's SQLite file (stdlib sqlite3) to set up and check states.

Piccolo stores timestamps as text like ``2026-11-26 01:15:49.497743+00:00`` (compared as text by
SQLite), so values written here use exactly that format.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


class PorticoDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with closing(self._connect()) as connection:
            return connection.execute(sql, params).fetchall()

    def execute(self, sql: str, *params: Any) -> int:
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                cursor = connection.execute(sql, params)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return cursor.rowcount

    # -- sign-in attempts ---------------------------------------------------------------------
    def forget_sign_in_attempts(self, email: str) -> None:
        """A fresh start for ``email``: no cooldown, no hourly or daily counts. A passcode email
        still queued for a deleted attempt is skipped by the delivery worker."""
        self.execute("DELETE FROM login_attempt WHERE email = ?", email.lower())

    def latest_attempt(self, email: str) -> sqlite3.Row:
        rows = self.query(
            "SELECT * FROM login_attempt WHERE email = ? ORDER BY created_at DESC LIMIT 1",
            email.lower(),
        )
        assert rows, f"no sign-in attempt for {email}"
        return rows[0]

    def expire_attempt(self, attempt_id: str, moment: datetime) -> None:
        changed = self.execute(
            "UPDATE login_attempt SET expires_at = ? WHERE id = ?", timestamp(moment), attempt_id
        )
        assert changed == 1, f"no sign-in attempt {attempt_id}"

    # -- mail outbox --------------------------------------------------------------------------
    def pending_mail(self, address: str) -> int:
        rows = self.query(
            "SELECT COUNT(*) AS n FROM mail_outbox "
            "WHERE to_address = ? AND status IN ('queued', 'sending')",
            address.lower(),
        )
        return rows[0]["n"]

    def wait_for_no_pending_mail(self, address: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending_mail(address):
            if time.monotonic() > deadline:
                raise AssertionError(f"mail to {address} still queued after {timeout:.0f} s")
            time.sleep(0.05)

    def outbox_statuses(self, address: str) -> list[str]:
        rows = self.query(
            "SELECT status FROM mail_outbox WHERE to_address = ? ORDER BY id", address.lower()
        )
        return [row["status"] for row in rows]

    # -- sessions -----------------------------------------------------------------------------
    def session_count(self, subject: str | None = None) -> int:
        if subject is None:
            return self.query("SELECT COUNT(*) AS n FROM web_session")[0]["n"]
        return self.query("SELECT COUNT(*) AS n FROM web_session WHERE subject = ?", subject)[0][
            "n"
        ]
