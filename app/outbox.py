"""The outbox (product.md §6): every message to a family is a row written in the same transaction
as the change that causes it; a background sender delivers it later.

`enqueue` renders the text now, from `templates/bot/<kind>.txt`, so the sender needs no domain
knowledge. The dedupe key makes one event produce one message, ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col

from app import clock
from app.db import dialect_insert
from app.models import OutboxStatus, OutgoingMessage, Participant
from app.settings import PROJECT_ROOT
from app.text import fmt_date, plural

bot_texts = Environment(
    loader=FileSystemLoader(str(PROJECT_ROOT / "templates" / "bot")),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
bot_texts.filters["date"] = fmt_date
bot_texts.globals["plural"] = plural


def render_text(kind: str, **context: Any) -> str:
    return bot_texts.get_template(f"{kind}.txt").render(**context).strip()


def enqueue(
    session: Session,
    participant: Participant,
    kind: str,
    dedupe_key: str,
    *,
    context: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    send_after: datetime | None = None,
) -> bool:
    """Queue a message to `participant`; False if it is already queued (same key) or cannot be sent.

    `payload` may carry `photo_task_id` (send the task picture with the text as caption) and
    `keyboard` (a named reply keyboard the sender knows, e.g. "task").
    """
    if participant.telegram_id is None:
        return False
    body = dict(payload or {})
    body["text"] = render_text(kind, participant=participant, **(context or {}))
    values = {
        "dedupe_key": dedupe_key,
        "chat_id": participant.telegram_id,
        "participant_id": participant.id,
        "kind": kind,
        "payload": body,
        "status": OutboxStatus.pending,
        "send_after": send_after or clock.now(),
        "attempts": 0,
        "created_at": clock.now(),
    }
    table = OutgoingMessage.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT … ON CONFLICT DO NOTHING.
    return session.execute(stmt).first() is not None


def cancel(session: Session, dedupe_key: str) -> bool:
    """Remove a message that has not been sent yet (an undone decision), so the key can be reused."""
    result = session.execute(
        sa.delete(OutgoingMessage).where(
            col(OutgoingMessage.dedupe_key) == dedupe_key,
            col(OutgoingMessage.status) == OutboxStatus.pending,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def backlog(session: Session) -> dict[str, Any]:
    """Due rows waiting to be sent and the oldest one's age (for the health endpoint)."""
    now = clock.now()
    count, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(col(OutgoingMessage.send_after))).where(
            col(OutgoingMessage.status) == OutboxStatus.pending,
            col(OutgoingMessage.send_after) <= now,
        )
    ).one()
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return {"backlog": int(count), "oldest_due_seconds": round(max(age, 0.0), 1)}
