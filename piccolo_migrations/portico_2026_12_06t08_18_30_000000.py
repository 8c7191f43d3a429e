"""Hand-written: triggers that bump ``portal_stamp`` on every change to what portal pages show.

A customer's counter (scope = customer id) moves with any insert, update or delete of their
customer row, subscriptions (and items), invoices (and lines), cards, tax ids, pending invoice
items and subscription schedules; the shared counter (scope ``*``) with products, prices,
coupons, promotion codes, portal configurations and brand assets. Being triggers, they see every
writer: the gateways, webhooks, sync, the CLI, a migration, someone with ``psql``. The portal's
page cache serves a page only while both counters it was rendered under are unchanged.

The SQL is written out here (not imported from the app) so this migration stays what it was when
it landed. Works on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-06T08:18:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "portal_stamp triggers"

EVERYONE = "*"
# table -> (the column that leads to the customer, the table it points to; None: it is the id)
PER_CUSTOMER = {
    "billing_customer": ("id", None),
    "billing_subscription": ("customer", None),
    "billing_invoice": ("customer", None),
    "billing_payment_method": ("customer", None),
    "billing_tax_id": ("customer", None),
    "billing_invoice_item": ("customer", None),
    "billing_subscription_schedule": ("customer", None),
    "billing_subscription_item": ("subscription", "billing_subscription"),
    "billing_invoice_line": ("invoice", "billing_invoice"),
}
SHARED = [
    "billing_product",
    "billing_price",
    "billing_coupon",
    "billing_promotion_code",
    "portal_configuration",
    "brand_asset",
]

POSTGRES_FUNCTIONS = [
    """
    CREATE FUNCTION portal_stamp_bump(key text) RETURNS void LANGUAGE sql AS $$
      INSERT INTO portal_stamp (scope, version) VALUES (key, 1)
      ON CONFLICT (scope) DO UPDATE SET version = portal_stamp.version + 1
    $$
    """,
    # TG_ARGV[0]: the column leading to the customer; TG_ARGV[1] (optional): the table that
    # column points to, whose "customer" column is the customer id.
    """
    CREATE FUNCTION portal_stamp_row() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      old_key text;
      new_key text;
    BEGIN
      IF TG_OP <> 'INSERT' THEN old_key := to_jsonb(OLD) ->> TG_ARGV[0]; END IF;
      IF TG_OP <> 'DELETE' THEN new_key := to_jsonb(NEW) ->> TG_ARGV[0]; END IF;
      IF TG_NARGS > 1 THEN
        IF old_key IS NOT NULL THEN
          EXECUTE format('SELECT customer FROM %I WHERE id = $1', TG_ARGV[1])
            INTO old_key USING old_key;
        END IF;
        IF new_key IS NOT NULL THEN
          EXECUTE format('SELECT customer FROM %I WHERE id = $1', TG_ARGV[1])
            INTO new_key USING new_key;
        END IF;
      END IF;
      IF old_key IS NOT NULL THEN PERFORM portal_stamp_bump(old_key); END IF;
      IF new_key IS NOT NULL AND new_key IS DISTINCT FROM old_key THEN
        PERFORM portal_stamp_bump(new_key);
      END IF;
      RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE FUNCTION portal_stamp_everyone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM portal_stamp_bump('{EVERYONE}');
      RETURN NULL;
    END
    $$
    """,
]


# PostgreSQL: the counters are bumped at COMMIT (deferred constraint triggers), after every row
# lock the transaction takes. Bumped at each statement instead, a counter row would be locked
# from the first write to the commit: two transactions writing different rows of one customer
# (two webhooks at once) or of the shared tables would then wait for each other's counter while
# holding rows the other one needs next, and deadlock.
def postgres_statements() -> list[str]:
    statements = list(POSTGRES_FUNCTIONS)
    for table, (column, parent) in PER_CUSTOMER.items():
        arguments = f"'{column}'" + (f", '{parent}'" if parent else "")
        statements.append(
            f"CREATE CONSTRAINT TRIGGER portal_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION portal_stamp_row({arguments})"
        )
    for table in SHARED:
        statements.append(
            f"CREATE CONSTRAINT TRIGGER portal_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION portal_stamp_everyone()"
        )
    # TRUNCATE fires no row triggers (and cannot be deferred): it touches everyone at once.
    for table in [*PER_CUSTOMER, *SHARED]:
        statements.append(
            f"CREATE TRIGGER portal_stamp_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION portal_stamp_everyone()"
        )
    return statements


def postgres_backwards() -> list[str]:
    statements = []
    for table in [*PER_CUSTOMER, *SHARED]:
        statements.append(f"DROP TRIGGER IF EXISTS portal_stamp ON {table}")
        statements.append(f"DROP TRIGGER IF EXISTS portal_stamp_truncate ON {table}")
    statements += [
        "DROP FUNCTION IF EXISTS portal_stamp_row()",
        "DROP FUNCTION IF EXISTS portal_stamp_everyone()",
        "DROP FUNCTION IF EXISTS portal_stamp_bump(text)",
    ]
    return statements


def _sqlite_bump(value: str) -> str:
    """One statement bumping the scope ``value`` (an SQL expression) when it is not NULL."""
    return (
        f"INSERT INTO portal_stamp (scope, version) SELECT stamp_key, 1 FROM (SELECT {value} AS stamp_key) "
        "WHERE stamp_key IS NOT NULL ON CONFLICT (scope) DO UPDATE SET version = version + 1;"
    )


def sqlite_statements() -> list[str]:
    statements = []
    for table, (column, parent) in PER_CUSTOMER.items():

        def key(row: str, column: str = column, parent: str | None = parent) -> str:
            if parent is None:
                return f"{row}.{column}"
            return f"(SELECT customer FROM {parent} WHERE id = {row}.{column})"

        statements += [
            f"CREATE TRIGGER portal_stamp_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {_sqlite_bump(key('NEW'))} END",
            f"CREATE TRIGGER portal_stamp_{table}_update AFTER UPDATE ON {table} "
            f"BEGIN {_sqlite_bump(key('OLD'))} "
            + _sqlite_bump(f"CASE WHEN {key('NEW')} IS NOT {key('OLD')} THEN {key('NEW')} END")
            + " END",
            f"CREATE TRIGGER portal_stamp_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {_sqlite_bump(key('OLD'))} END",
        ]
    for table in SHARED:
        for event in ("insert", "update", "delete"):
            statements.append(
                f"CREATE TRIGGER portal_stamp_{table}_{event} AFTER {event.upper()} ON {table} "
                f"BEGIN {_sqlite_bump(repr(EVERYONE))} END"
            )
    return statements


def sqlite_backwards() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS portal_stamp_{table}_{event}"
        for table in [*PER_CUSTOMER, *SHARED]
        for event in ("insert", "update", "delete")
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portico", description=DESCRIPTION)

    # engine_finder() at run time: the engine the migration is being applied to.
    async def run():
        engine = engine_finder()
        postgres = isinstance(engine, PostgresEngine)
        for statement in postgres_statements() if postgres else sqlite_statements():
            await engine.run_ddl(statement)

    async def run_backwards():
        engine = engine_finder()
        postgres = isinstance(engine, PostgresEngine)
        for statement in postgres_backwards() if postgres else sqlite_backwards():
            await engine.run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
