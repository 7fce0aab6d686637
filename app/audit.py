"""The audit log: every decision and every admin change, with who, when, before and after."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlmodel import Session

from app.models import AuditEvent, Staff


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record(
    session: Session,
    actor: Staff | None,
    action: str,
    object_type: str,
    object_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event; `actor` None means the system (a job, the bot, a family's form)."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before={k: _plain(v) for k, v in before.items()} if before else None,
        after={k: _plain(v) for k, v in after.items()} if after else None,
    )
    session.add(event)
    return event
