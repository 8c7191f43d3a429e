"""Hand-written: indexes Piccolo's auto migrations cannot express (works on SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T01:06:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "case-insensitive customer email index; attempt lookups by email and time"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portico", description=DESCRIPTION)

    # engine_finder() at run time: the engine the migration is being applied to.
    async def run():
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE INDEX billing_customer_email_lower ON billing_customer (lower(email))"
        )
        await engine.run_ddl(
            "CREATE INDEX login_attempt_email_created ON login_attempt (email, created_at)"
        )
        await engine.run_ddl(
            "CREATE INDEX billing_invoice_customer_created ON billing_invoice (customer, created)"
        )
        await engine.run_ddl(
            "CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at)"
        )

    async def run_backwards():
        engine = engine_finder()
        for name in (
            "billing_customer_email_lower",
            "login_attempt_email_created",
            "billing_invoice_customer_created",
            "mail_outbox_due",
        ):
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
