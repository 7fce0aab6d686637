"""The application queue (product.md §4.3): pending applications, approve, decline, undo.

Same rules as report decisions: a conditional `UPDATE … WHERE status = 'pending'`, the family's
message waits in the outbox until the undo window has passed, every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, days, decisions
from app.decisions import Outcome
from app.errors import Invalid, NotFound, Refused
from app.members import balances
from app.models import (
    Application,
    ApplicationStatus,
    Member,
    MemberStatus,
    Participant,
    Report,
    Shift,
    ShiftStatus,
    Staff,
)
from app.settings import get_settings

OPEN_SHIFTS = (ShiftStatus.preparing, ShiftStatus.started)
MAX_ROWS = 500
MAX_REASON = 500
DECLINE_REASONS = (
    "Набор на эту смену уже закончен",
    "Программа подходит для другого возраста",
    "Не получилось связаться с семьёй",
    "Заявка подана по ошибке",
)


@dataclass
class HistoryItem:
    shift_number: int
    shift_title: str
    status: ApplicationStatus
    member_status: MemberStatus | None
    balance: int | None


@dataclass
class Row:
    id: int
    status: ApplicationStatus
    attempts: int
    created_at: datetime
    decided_at: datetime | None
    decided_by_id: int | None
    decline_reason: str | None
    participant_id: int
    name: str
    surname: str
    date_of_birth: date | None
    city: str
    phone: str | None
    consent_at: datetime | None
    shift_id: int
    shift_number: int
    shift_title: str
    decider_name: str | None = None
    history: list[HistoryItem] = field(default_factory=list)

    def can_undo(self, staff_id: int) -> bool:
        return (
            self.status != ApplicationStatus.pending
            and self.decided_by_id == staff_id
            and self.decided_at is not None
            and clock.now() < self.decided_at + timedelta(seconds=get_settings().undo_seconds)
        )


def _row_select() -> sa.Select:
    return (
        sa.select(
            col(Application.id),
            col(Application.status),
            col(Application.attempts),
            col(Application.created_at),
            col(Application.decided_at),
            col(Application.decided_by_id),
            col(Application.decline_reason),
            col(Participant.id),
            col(Participant.name),
            col(Participant.surname),
            col(Participant.date_of_birth),
            col(Participant.city),
            col(Participant.phone),
            col(Participant.consent_at),
            col(Shift.id),
            col(Shift.number),
            col(Shift.title),
            col(Staff.name),
        )
        .select_from(Application)
        .join(Participant, col(Participant.id) == col(Application.participant_id))
        .join(Shift, col(Shift.id) == col(Application.shift_id))
        .outerjoin(Staff, col(Staff.id) == col(Application.decided_by_id))
    )


def _row(values: Any) -> Row:
    (*head, decider_name) = values
    row = Row(*head)
    row.status = ApplicationStatus(row.status)
    row.decider_name = decider_name
    return row


def pending(session: Session, shift_id: int | None = None) -> list[Row]:
    """Pending applications of the preparing/started shift(s), oldest first, with each child's history.

    Three statements whatever the number of rows: the rows, the history, the balances.
    """
    query = _row_select().where(
        col(Application.status) == ApplicationStatus.pending, col(Shift.status).in_(OPEN_SHIFTS)
    )
    if shift_id is not None:
        query = query.where(col(Application.shift_id) == shift_id)
    rows = [
        _row(r)
        for r in session.execute(
            query.order_by(col(Application.created_at), col(Application.id)).limit(MAX_ROWS)
        )
    ]
    attach_history(session, rows)
    return rows


def attach_history(session: Session, rows: list[Row]) -> None:
    if not rows:
        return
    participant_ids = {r.participant_id for r in rows}
    history = session.execute(
        sa.select(
            col(Application.participant_id),
            col(Application.shift_id),
            col(Shift.number),
            col(Shift.title),
            col(Application.status),
            col(Member.id),
            col(Member.status),
        )
        .join(Shift, col(Shift.id) == col(Application.shift_id))
        .outerjoin(
            Member,
            sa.and_(
                col(Member.participant_id) == col(Application.participant_id),
                col(Member.shift_id) == col(Application.shift_id),
            ),
        )
        .where(col(Application.participant_id).in_(participant_ids))
        .order_by(col(Shift.number))
    ).all()
    points = balances(session, [h[5] for h in history if h[5] is not None])
    by_participant = {r.participant_id: r for r in rows}
    for participant_id, shift_id, number, title, status, member_id, member_status in history:
        row = by_participant[participant_id]
        if shift_id == row.shift_id:
            continue
        row.history.append(
            HistoryItem(
                number,
                title,
                ApplicationStatus(status),
                MemberStatus(member_status) if member_status else None,
                points.get(member_id) if member_id is not None else None,
            )
        )


def row(session: Session, application_id: int) -> Row:
    found = session.execute(_row_select().where(col(Application.id) == application_id)).first()
    if found is None:
        raise NotFound(application_id)
    result = _row(found)
    attach_history(session, [result])
    return result


def open_shifts(session: Session) -> list[Any]:
    return list(
        session.execute(
            sa.select(col(Shift.id), col(Shift.number), col(Shift.title))
            .where(col(Shift.status).in_(OPEN_SHIFTS))
            .order_by(col(Shift.number))
        ).all()
    )


def first_task_date(shift: Shift, moment: datetime | None = None) -> date:
    """The day of a new member's first task: the shift start, or the next task day if it started."""
    moment = moment or clock.now()
    local = moment.astimezone(get_settings().tz)
    upcoming = (
        local.date() if moment < days.task_moment(local.date()) else local.date() + timedelta(1)
    )
    return max(shift.started_at, upcoming)


def parse_reason(preset: Any, text: Any) -> str:
    """The decline reason from a preset application reason (1–4) and/or free text."""
    return decisions.parse_reason(preset, text, DECLINE_REASONS)


def decision_key(application_id: int, attempts: int) -> str:
    return f"application:{application_id}:{attempts}:decision"


def _lost(session: Session, application_id: int, actor: Staff) -> Outcome:
    """The decision lost: say who decided and how, or why the application cannot be decided."""
    current = session.execute(
        sa.select(col(Application.status), col(Application.decided_by_id)).where(
            col(Application.id) == application_id
        )
    ).first()
    if current is None:
        raise NotFound(application_id)
    if current[0] == ApplicationStatus.pending:
        raise Refused("Смена уже закончилась или отменена — по этой заявке решить нельзя.")
    verb = "одобрена" if current[0] == ApplicationStatus.approved else "отклонена"
    return Outcome(
        application_id,
        False,
        decisions.someone_was_first(actor, current[1], f"решил по этой заявке: {verb}"),
    )


def _join(session: Session, participant: Participant, shift: Shift) -> None:
    """Make the participant a member of the shift (kept if they already are one)."""
    exists = session.execute(
        sa.select(col(Member.id)).where(
            col(Member.participant_id) == participant.id, col(Member.shift_id) == shift.id
        )
    ).first()
    if exists is None:
        assert participant.id is not None and shift.id is not None
        session.add(
            Member(participant_id=participant.id, shift_id=shift.id, joined_at=clock.local_today())
        )
        session.flush()


def _decide(
    session: Session,
    application_id: int,
    actor: Staff,
    status: ApplicationStatus,
    reason: str | None,
) -> Outcome:
    now = clock.now()
    open_shift = sa.select(col(Shift.id)).where(col(Shift.status).in_(OPEN_SHIFTS))
    won = decisions.decide(
        session,
        Application,
        application_id,
        actor,
        open_status=ApplicationStatus.pending,
        status=status,
        reason=reason,
        now=now,
        also=(col(Application.shift_id).in_(open_shift),),
    )
    if not won:
        return _lost(session, application_id, actor)
    application, participant, shift = session.execute(
        sa.select(Application, Participant, Shift)
        .join(Participant, col(Participant.id) == col(Application.participant_id))
        .join(Shift, col(Shift.id) == col(Application.shift_id))
        .where(col(Application.id) == application_id)
        .execution_options(populate_existing=True)
    ).one()
    if status == ApplicationStatus.approved:
        _join(session, participant, shift)
        kind = "application_approved"
        context: dict[str, Any] = {
            "shift_title": shift.title,
            "first_date": first_task_date(shift, now),
            "hour": f"{get_settings().send_new_task_hour}:00",
        }
    else:
        kind = "application_declined"
        context = {"shift_title": shift.title, "reason": reason}
    key = decision_key(application_id, application.attempts)
    decisions.tell_family(session, participant, kind, key, context, now)
    decisions.record(
        session,
        actor,
        "application",
        "approve" if status == ApplicationStatus.approved else "decline",
        application_id,
        before={"status": ApplicationStatus.pending},
        after={"status": status, "decline_reason": reason},
    )
    return Outcome(application_id, True)


def approve(session: Session, application_id: int, actor: Staff) -> Outcome:
    return _decide(session, application_id, actor, ApplicationStatus.approved, None)


def decline(session: Session, application_id: int, actor: Staff, reason: str) -> Outcome:
    if not reason:
        raise Invalid(decisions.NO_REASON)
    return _decide(session, application_id, actor, ApplicationStatus.declined, reason)


def approve_many(session: Session, application_ids: list[int], actor: Staff) -> tuple[int, int]:
    """Approve the selected applications; returns (approved now, already decided or not possible)."""
    done = skipped = 0
    for application_id in dict.fromkeys(application_ids):
        try:
            outcome = approve(session, application_id, actor)
        except (NotFound, Refused):
            skipped += 1
            continue
        if outcome.won:
            done += 1
        else:
            skipped += 1
    return done, skipped


def _membership_to_undo(session: Session, participant_id: int, shift_id: int) -> int | None:
    """The member row an approval made (None if there is none); Refused once the child has sent a
    photo. Checked before anything is written."""
    member_id = session.execute(
        sa.select(col(Member.id)).where(
            col(Member.participant_id) == participant_id, col(Member.shift_id) == shift_id
        )
    ).scalar_one_or_none()
    if member_id is None:
        return None
    sent = session.execute(
        sa.select(sa.func.count()).where(
            col(Report.member_id) == member_id, col(Report.photo_count) > 0
        )
    ).scalar_one()
    if sent:
        raise Refused("Участник уже прислал фото — отменить одобрение нельзя.")
    return member_id


def undo(session: Session, application_id: int, actor: Staff) -> Outcome:
    """Back to pending: only the deciding curator, only within UNDO_SECONDS; removes the new member."""
    now = clock.now()
    found = session.execute(
        sa.select(
            col(Application.status),
            col(Application.decided_by_id),
            col(Application.decided_at),
            col(Application.attempts),
            col(Application.participant_id),
            col(Application.shift_id),
            col(Application.decline_reason),
        ).where(col(Application.id) == application_id)
    ).first()
    if found is None:
        raise NotFound(application_id)
    status, decided_by_id, decided_at, attempts, participant_id, shift_id, reason = found
    status = ApplicationStatus(status)
    if status == ApplicationStatus.pending:
        raise Refused("Отменять нечего: по заявке ещё нет решения.")
    key = decision_key(application_id, attempts)
    cutoff = decisions.undo_cutoff(session, actor, decided_by_id, decided_at, key, now)
    member_id = None
    if status == ApplicationStatus.approved:
        member_id = _membership_to_undo(session, participant_id, shift_id)
    decisions.revert(
        session,
        Application,
        application_id,
        status,
        ApplicationStatus.pending,
        actor,
        cutoff,
        now,
        key,
    )
    if member_id is not None:
        for model, column in ((Report, Report.member_id), (Member, Member.id)):
            session.execute(
                sa.delete(model)
                .where(col(column) == member_id)
                .execution_options(synchronize_session=False)
            )
    decisions.record(
        session,
        actor,
        "application",
        "undo",
        application_id,
        before={"status": status, "decline_reason": reason},
        after={"status": ApplicationStatus.pending},
    )
    return Outcome(application_id, True)
