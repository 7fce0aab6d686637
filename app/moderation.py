"""Curators' decisions on reports (product.md §4.2): accept, decline, undo.

A decision is a conditional `UPDATE … WHERE status = 'reviewing'`; zero rows means someone else
decided first, and the caller gets the current state instead of an error. The family's message goes
to the outbox with `send_after` at the end of the undo window, so an undo can still withdraw it.
What curators see (the queue, the cards) lives in `app.report_queue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import audit, clock, days, outbox
from app.errors import Invalid, NotFound, Refused
from app.members import balance
from app.models import (
    Application,
    Member,
    OutboxStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportStatus,
    Staff,
    Task,
)
from app.settings import get_settings
from app.text import lombaryers, seconds, to_int

MAX_REASON = 500


def parse_reason(preset: Any, text: Any, reasons: tuple[str, ...] | None = None) -> str:
    """The decline reason from a preset number (1–9) and/or free text; Invalid with a message."""
    reasons = reasons if reasons is not None else get_settings().decline_reasons
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
        raise Invalid("Выберите причину или напишите её — семья увидит это сообщение.")
    return chosen or free


def decision_key(report_id: int, attempt: int) -> str:
    # One message per decision on one photo; an undo deletes the pending row so the key is free again.
    return f"report:{report_id}:{attempt}:decision"


@dataclass
class Outcome:
    report_id: int
    won: bool
    notice: str | None = None


def _refuse_for(status: ReportStatus) -> str:
    if status == ReportStatus.waiting:
        return "Фото за этот день ещё не прислали — решать пока нечего."
    if status == ReportStatus.skipped:
        return "Этот день пропущен — за пропущенный день ломбарьерчик не начисляется."
    return "Этот отчёт сейчас нельзя проверить."


def decide(
    session: Session, report_id: int, actor: Staff, approve: bool, reason: str | None = None
) -> Outcome:
    """Approve or decline a report in review. Zero rows updated → someone else was first."""
    now = clock.now()
    status = ReportStatus.approved if approve else ReportStatus.declined
    if not approve and not reason:
        raise Invalid("Выберите причину или напишите её — семья увидит это сообщение.")
    result = session.execute(
        sa.update(Report)
        .where(col(Report.id) == report_id, col(Report.status) == ReportStatus.reviewing)
        .values(
            status=status,
            decided_by_id=actor.id,
            decided_at=now,
            decline_reason=None if approve else reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        current = session.execute(
            sa.select(col(Report.status), col(Report.decided_by_id)).where(
                col(Report.id) == report_id
            )
        ).first()
        if current is None:
            raise NotFound(report_id)
        current_status = ReportStatus(current[0])
        if current_status in (ReportStatus.approved, ReportStatus.declined):
            verb = "принято" if current_status == ReportStatus.approved else "отклонено"
            who = "Вы уже" if current[1] == actor.id else "Другой куратор уже"
            return Outcome(report_id, False, f"{who} проверил это фото: {verb}.")
        raise Refused(_refuse_for(current_status))

    report, participant, task_title = session.execute(
        sa.select(Report, Participant, col(Task.title))
        .join(Member, col(Member.id) == col(Report.member_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .join(Task, col(Task.id) == col(Report.task_id))
        .where(col(Report.id) == report_id)
        .execution_options(populate_existing=True)
    ).one()
    settings = get_settings()
    context: dict[str, Any] = {"task_title": task_title, "day_number": report.day_number}
    if approve:
        context["balance_text"] = lombaryers(balance(session, report.member_id))
    else:
        deadline = days.deadline(report.task_date)
        left = settings.max_photo_attempts - report.photo_count
        context.update(
            reason=reason,
            attempts_left=left if deadline > now and left > 0 else 0,
            deadline_time=f"{deadline.astimezone(settings.tz).hour}:00",
            deadline_date=deadline,
        )
    outbox.enqueue(
        session,
        participant,
        "report_approved" if approve else "report_declined",
        decision_key(report.id, report.photo_count),
        context=context,
        send_after=now + timedelta(seconds=settings.undo_seconds),
    )
    audit.record(
        session,
        actor,
        "report.approve" if approve else "report.decline",
        "report",
        report.id,
        before={"status": ReportStatus.reviewing},
        after={"status": status, "decline_reason": reason},
    )
    return Outcome(report_id, True)


def revert_decision(
    session: Session,
    model: type[Report] | type[Application],
    object_id: int,
    status: Any,
    back_to: Any,
    actor: Staff,
    cutoff: datetime,
    now: datetime,
) -> None:
    """The guarded undo UPDATE shared by reports and requests (they have the same decision columns):
    only while the decision is still `status`, by `staff`, after `cutoff`; else Refused."""
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


def undo_cutoff(
    session: Session,
    actor: Staff,
    decided_by_id: int | None,
    decided_at: datetime | None,
    message_key: str,
    now: datetime,
) -> datetime:
    """Check that `staff` may still undo a decision (their own, within UNDO_SECONDS, the family's
    message not yet on its way); return the cutoff for the guarded UPDATE. Shared by reports and
    requests."""
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


def undo(session: Session, report_id: int, actor: Staff) -> Outcome:
    """Put a report back in review: only the deciding curator, only within UNDO_SECONDS."""
    now = clock.now()
    row = session.execute(
        sa.select(
            col(Report.status),
            col(Report.decided_by_id),
            col(Report.decided_at),
            col(Report.photo_count),
            col(Report.decline_reason),
        ).where(col(Report.id) == report_id)
    ).first()
    if row is None:
        raise NotFound(report_id)
    status, decided_by_id, decided_at, attempt, reason = row
    status = ReportStatus(status)
    if status not in (ReportStatus.approved, ReportStatus.declined):
        raise Refused("Отменять нечего: решения по этому фото нет.")
    key = decision_key(report_id, attempt)
    cutoff = undo_cutoff(session, actor, decided_by_id, decided_at, key, now)
    revert_decision(session, Report, report_id, status, ReportStatus.reviewing, actor, cutoff, now)
    outbox.cancel(session, key)
    audit.record(
        session,
        actor,
        "report.undo",
        "report",
        report_id,
        before={"status": status, "decline_reason": reason},
        after={"status": ReportStatus.reviewing},
    )
    return Outcome(report_id, True)
