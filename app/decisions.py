"""The skeleton shared by curators' decisions on reports (`app.moderation`) and on applications
(`app.applications`): decide, tell the family after the undo window, undo.

Both tables have the same decision columns (status, decided_by_id, decided_at, decline_reason,
updated_at). A decision is a guarded `UPDATE … WHERE status = <open>`: zero rows means someone else
decided first, and the caller shows the current state instead of an error. The family's message is
written to the outbox with `send_after` at the end of the undo window; an undo — only one's own
decision, only within UNDO_SECONDS, only while that message has not started on its way — is a
guarded UPDATE back and withdraws the message. Every step is audited. Takes a session, never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import audit, outbox
from app.errors import Invalid, Refused
from app.models import Application, OutboxStatus, OutgoingMessage, Participant, Report, Staff
from app.settings import get_settings
from app.text import seconds, to_int

MAX_REASON = 500
NO_REASON = "Выберите причину или напишите её — семья увидит это сообщение."

Decided = type[Report] | type[Application]


@dataclass
class Outcome:
    object_id: int
    won: bool
    notice: str | None = None


def parse_reason(preset: Any, text: Any, reasons: tuple[str, ...]) -> str:
    """The decline reason from a preset number (1–9) and/or free text; Invalid with a message."""
    chosen = ""
    raw = str(preset or "").strip()
    if raw:
        number = to_int(raw, bits=32)
        if number is None or not 1 <= number <= len(reasons):
            raise Invalid("Такой причины нет в списке — выберите причину из списка.")
        chosen = reasons[number - 1]
    free = " ".join(str(text or "").split())
    if len(free) > MAX_REASON:
        raise Invalid(
            f"Причина слишком длинная: {len(free)} символов, можно не больше {MAX_REASON}."
        )
    if chosen and free:
        return f"{chosen}. {free}"
    if not chosen and not free:
        raise Invalid(NO_REASON)
    return chosen or free


def decide(
    session: Session,
    model: Decided,
    object_id: int,
    actor: Staff,
    *,
    open_status: Any,
    status: Any,
    reason: str | None,
    now: datetime,
    also: tuple[Any, ...] = (),
) -> bool:
    """The guarded UPDATE: True if this decision won (the object was still `open_status` and
    matched `also`), False if someone or something else changed it first."""
    result = session.execute(
        sa.update(model)
        .where(col(model.id) == object_id, col(model.status) == open_status, *also)
        .values(
            status=status,
            decided_by_id=actor.id,
            decided_at=now,
            decline_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def tell_family(
    session: Session,
    participant: Participant,
    kind: str,
    key: str,
    context: dict[str, Any],
    now: datetime,
) -> None:
    """Queue the family's message for the end of the undo window (an undo can still withdraw it)."""
    send_after = now + timedelta(seconds=get_settings().undo_seconds)
    outbox.enqueue(session, participant, kind, key, context=context, send_after=send_after)


def record(
    session: Session,
    actor: Staff,
    noun: str,
    verb: str,
    object_id: int,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """The audit event of a decision or an undo ("report.approve", "application.undo", …)."""
    audit.record(session, actor, f"{noun}.{verb}", noun, object_id, before=before, after=after)


def undo_cutoff(
    session: Session,
    actor: Staff,
    decided_by_id: int | None,
    decided_at: datetime | None,
    message_key: str,
    now: datetime,
) -> datetime:
    """Check that `actor` may still undo a decision (their own, within UNDO_SECONDS, the family's
    message not yet on its way); return the cutoff for the guarded UPDATE in `revert`."""
    settings = get_settings()
    if decided_by_id != actor.id:
        raise Refused("Отменить можно только своё решение.")
    cutoff = now - timedelta(seconds=settings.undo_seconds)
    if decided_at is None or decided_at <= cutoff:
        raise Refused(
            f"Отменить можно только в первые {seconds(settings.undo_seconds)} после решения."
        )
    message = session.execute(
        sa.select(col(OutgoingMessage.status), col(OutgoingMessage.claimed_until)).where(
            col(OutgoingMessage.dedupe_key) == message_key
        )
    ).first()
    if message is not None and (
        message[0] != OutboxStatus.pending or (message[1] is not None and message[1] > now)
    ):
        raise Refused("Сообщение семье уже отправлено — отменить решение нельзя.")
    return cutoff


def revert(
    session: Session,
    model: Decided,
    object_id: int,
    status: Any,
    back_to: Any,
    actor: Staff,
    cutoff: datetime,
    now: datetime,
    message_key: str,
) -> None:
    """The guarded undo UPDATE: only while the decision is still `status`, by `actor`, after
    `cutoff` (else Refused); then the family's pending message is withdrawn."""
    result = session.execute(
        sa.update(model)
        .where(
            col(model.id) == object_id,
            col(model.status) == status,
            col(model.decided_by_id) == actor.id,
            col(model.decided_at) > cutoff,
        )
        .values(
            status=back_to, decided_by_id=None, decided_at=None, decline_reason=None, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Refused("Решение уже изменилось — обновите страницу.")
    outbox.cancel(session, message_key)


def someone_was_first(actor: Staff, decided_by_id: int | None, what: str) -> str:
    """ "Вы уже …" / "Другой куратор уже …" for a decision that lost."""
    who = "Вы уже" if decided_by_id == actor.id else "Другой куратор уже"
    return f"{who} {what}."
