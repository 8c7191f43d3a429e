"""Recording activity: who did what, to which object, before and after, when and from where."""

from __future__ import annotations

from typing import Any

import msgspec

from app import clock
from app.audit.tables import AuditEvent


class Actor(msgspec.Struct, frozen=True):
    type: str  # customer | merchant | system
    id: str = ""
    email: str = ""
    ip: str = ""
    user_agent: str = ""


async def record(
    actor: Actor,
    action: str,
    *,
    configuration: str | None = None,
    object_type: str = "",
    object_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await AuditEvent.insert(
        AuditEvent(
            created_at=clock.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            actor_email=actor.email,
            configuration=configuration,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before or {},
            after=after or {},
            ip=actor.ip[:64],
            user_agent=actor.user_agent[:1000],
        )
    )
