"""Hand-written: indexes Piccolo's auto migrations cannot express (works on SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-26T01:06:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "case-insensitive customer email index; attempt lookups by email and time"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portico", description=DESCRIPTION)

    async def run():
        await RawTable.raw(
            "CREATE INDEX billing_customer_email_lower ON billing_customer (lower(email))"
        )
        await RawTable.raw(
            "CREATE INDEX login_attempt_email_created ON login_attempt (email, created_at)"
        )
        await RawTable.raw(
            "CREATE INDEX billing_invoice_customer_created ON billing_invoice (customer, created)"
        )
        await RawTable.raw(
            "CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at)"
        )

    async def run_backwards():
        for name in (
            "billing_customer_email_lower",
            "login_attempt_email_created",
            "billing_invoice_customer_created",
            "mail_outbox_due",
        ):
            await RawTable.raw(f"DROP INDEX {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
