"""The outbox (product.md §6): every message to a family is a row written in the same transaction
as the change that causes it; a background sender delivers it later.

`enqueue` (one message) and `enqueue_many` (a set, in one statement — the daily jobs) render the
text now, from `templates/bot/<kind>.txt`, so the sender needs no domain knowledge. The dedupe key
makes one event produce one message, ever: INSERT … ON CONFLICT (dedupe_key) DO NOTHING.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col

from app import clock
from app.db import dialect_insert
from app.models import OutboxStatus, OutgoingMessage
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


class Recipient(Protocol):
    """What a bot text needs of a participant (a Participant row, or a row of selected columns)."""

    id: int | None
    telegram_id: int | None
    name: str
    surname: str


@dataclass(frozen=True)
class Message:
    """One message for `enqueue_many`."""

    participant: Recipient
    key: str  # the dedupe key: one event → one message, ever
    context: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


def _values(
    kind: str, message: Message, send_after: datetime | None, now: datetime
) -> dict[str, Any] | None:
    participant = message.participant
    if participant.telegram_id is None:
        return None
    body = dict(message.payload)
    body["text"] = render_text(kind, participant=participant, **message.context)
    return {
        "dedupe_key": message.key,
        "chat_id": participant.telegram_id,
        "participant_id": participant.id,
        "kind": kind,
        "payload": body,
        "status": OutboxStatus.pending,
        "send_after": send_after or now,
        "attempts": 0,
        "created_at": now,
    }


def _insert(session: Session) -> Any:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING for this session's dialect."""
    table = OutgoingMessage.__table__  # type: ignore[attr-defined]
    return dialect_insert(session, table).on_conflict_do_nothing(index_elements=["dedupe_key"])


def enqueue(
    session: Session,
    participant: Recipient,
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
    message = Message(participant, dedupe_key, context or {}, payload or {})
    values = _values(kind, message, send_after, clock.now())
    if values is None:
        return False
    table = OutgoingMessage.__table__  # type: ignore[attr-defined]
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT … ON CONFLICT DO NOTHING.
    stmt = _insert(session).values(**values).returning(table.c.id)
    return session.execute(stmt).first() is not None


def enqueue_many(
    session: Session,
    kind: str,
    messages: Iterable[Message],
    *,
    now: datetime | None = None,
    send_after: datetime | None = None,
) -> int:
    """Queue many messages of one kind with one statement (executemany); a message whose key is
    already queued is left alone. Returns how many were offered (participants without a Telegram
    id are skipped). `now` is the job's moment (default: the clock)."""
    now = now or clock.now()
    rows = [v for v in (_values(kind, m, send_after, now) for m in messages) if v is not None]
    if rows:
        session.execute(_insert(session), rows)
    return len(rows)


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
