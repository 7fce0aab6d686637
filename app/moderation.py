"""Curators' decisions on reports (product.md §4.2): accept, decline, undo.

The skeleton — guarded UPDATE, the family's message after the undo window, undo, audit — is
`app.decisions`, shared with applications. What curators see (the queue, the cards) lives in
`app.report_queue`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import claims, clock, days, decisions, live
from app.decisions import Outcome
from app.errors import Invalid, NotFound, Refused
from app.members import balance
from app.models import Member, Participant, Report, ReportStatus, Staff, Task
from app.settings import get_settings
from app.text import lombaryers


def parse_reason(preset: Any, text: Any) -> str:
    """The decline reason from a preset report reason (1–9, DECLINE_REASONS) and/or free text."""
    return decisions.parse_reason(preset, text, get_settings().decline_reasons)


def decision_key(report_id: int, attempt: int) -> str:
    # One message per decision on one photo; an undo deletes the pending row so the key is free again.
    return f"report:{report_id}:{attempt}:decision"


def _refuse_for(status: ReportStatus) -> str:
    if status == ReportStatus.waiting:
        return "Фото за этот день ещё не прислали — решать пока нечего."
    if status == ReportStatus.skipped:
        return "Этот день пропущен — за пропущенный день ломбарьерчик не начисляется."
    return "Этот отчёт сейчас нельзя проверить."


def _lost(session: Session, report_id: int, actor: Staff) -> Outcome:
    """The decision lost: say who decided and how, or why the report cannot be decided."""
    current = session.execute(
        sa.select(col(Report.status), col(Report.decided_by_id)).where(col(Report.id) == report_id)
    ).first()
    if current is None:
        raise NotFound(report_id)
    status = ReportStatus(current[0])
    if status not in (ReportStatus.approved, ReportStatus.declined):
        raise Refused(_refuse_for(status))
    verb = "принято" if status == ReportStatus.approved else "отклонено"
    return Outcome(
        report_id,
        False,
        decisions.someone_was_first(actor, current[1], f"проверил это фото: {verb}"),
    )


def decide(
    session: Session, report_id: int, actor: Staff, approve: bool, reason: str | None = None
) -> Outcome:
    """Approve or decline a report in review. Someone else first → their decision, not an error."""
    now = clock.now()
    status = ReportStatus.approved if approve else ReportStatus.declined
    if not approve and not reason:
        raise Invalid(decisions.NO_REASON)
    reason = None if approve else reason
    won = decisions.decide(
        session,
        Report,
        report_id,
        actor,
        open_status=ReportStatus.reviewing,
        status=status,
        reason=reason,
        now=now,
    )
    if not won:
        return _lost(session, report_id, actor)
    claims.drop(session, report_id)
    live.notify(session, live.DECIDED, report_id)
    report, participant, task_title = session.execute(
        sa.select(Report, Participant, col(Task.title))
        .join(Member, col(Member.id) == col(Report.member_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .join(Task, col(Task.id) == col(Report.task_id))
        .where(col(Report.id) == report_id)
        .execution_options(populate_existing=True)
    ).one()
    context: dict[str, Any] = {"task_title": task_title, "day_number": report.day_number}
    if approve:
        context["balance_text"] = lombaryers(balance(session, report.member_id))
    else:
        settings = get_settings()
        deadline = days.deadline(report.task_date)
        left = settings.max_photo_attempts - report.photo_count
        context.update(
            reason=reason,
            attempts_left=left if deadline > now and left > 0 else 0,
            deadline_time=f"{deadline.astimezone(settings.tz).hour}:00",
            deadline_date=deadline,
        )
    decisions.tell_family(
        session,
        participant,
        "report_approved" if approve else "report_declined",
        decision_key(report_id, report.photo_count),
        context,
        now,
    )
    decisions.record(
        session,
        actor,
        "report",
        "approve" if approve else "decline",
        report_id,
        before={"status": ReportStatus.reviewing},
        after={"status": status, "decline_reason": reason},
    )
    return Outcome(report_id, True)


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
    cutoff = decisions.undo_cutoff(session, actor, decided_by_id, decided_at, key, now)
    decisions.revert(
        session, Report, report_id, status, ReportStatus.reviewing, actor, cutoff, now, key
    )
    assert actor.id is not None
    claims.claim(session, actor.id, [report_id])  # back on this curator's screen, not others'
    live.notify(session, live.UNDONE, report_id)
    decisions.record(
        session,
        actor,
        "report",
        "undo",
        report_id,
        before={"status": status, "decline_reason": reason},
        after={"status": ReportStatus.reviewing},
    )
    return Outcome(report_id, True)
