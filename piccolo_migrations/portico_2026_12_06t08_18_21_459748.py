from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T08:18:21:459748"
VERSION = "1.38.0"
DESCRIPTION = "portal stamp"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="portico", description=DESCRIPTION
    )

    manager.add_table(
        class_name="PortalStamp",
        tablename="portal_stamp",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="PortalStamp",
        tablename="portal_stamp",
        column_name="scope",
        db_column_name="scope",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="PortalStamp",
        tablename="portal_stamp",
        column_name="version",
        db_column_name="version",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
