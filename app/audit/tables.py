"""Append-only activity log."""

from piccolo.columns import JSON, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    actor_type = Varchar(length=16)  # customer | merchant | system
    actor_id = Varchar(length=64, default="")
    actor_email = Varchar(length=320, default="", index=True)
    configuration = Varchar(length=64, null=True, default=None)
    action = Varchar(length=64, index=True)
    object_type = Varchar(length=32, default="")
    object_id = Varchar(length=64, default="")
    before = JSON(default={})
    after = JSON(default={})
    ip = Varchar(length=64, default="")
    user_agent = Text(default="")
