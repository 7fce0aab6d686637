"""Pauses (product.md §6a): a member paused for a range of days — illness, holidays.

On a paused day the daily job gives the member a `paused` report instead of a waiting one, so no task
message and no reminder go out, and a waiting report whose day turns out paused (the pause was set
after the day's task had gone out) becomes `paused`, not `skipped`, at its deadline. Paused days
never count toward exclusion: a paused day is a day on which the member was not skipped, so it
breaks a chain of skipped days (see docs/schedule.md). Everything here is a plain function taking
a session; nothing commits. Pausing and ending a pause are audited and the family is told kindly.

Dates are report days (app.days): "today" is the report day open now. Which days are paused — the
SQL conditions the jobs use and what calendars show — is `app.pause_days`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import audit, clock, days, outbox, pause_days
from app.errors import FormErrors
from app.models import (
    Member,
    MemberPause,
    MemberStatus,
    Participant,
    Report,
    ReportStatus,
    Shift,
    ShiftStatus,
    Staff,
)
from app.settings import get_settings
from app.text import fmt_date

REASON_MAX = 300
PAUSABLE = (ShiftStatus.preparing, ShiftStatus.started)


@dataclass(frozen=True)
class Row:
    """A pause as the member page lists it."""

    pause: MemberPause
    state: str  # "upcoming" | "current" | "over" | "ended" (resumed early) | "cancelled"
    can_end: bool
    created_by: str
    ended_by: str


def rows(session: Session, member_id: int) -> list[Row]:
    today = days.report_day(clock.now())
    found = pause_days.of_member(session, member_id)
    staff_ids = {p.created_by_id for p in found} | {p.ended_by_id for p in found}
    names = {
        staff_id: f"{name} {surname}".strip()
        for staff_id, name, surname in session.exec(
            select(Staff.id, Staff.name, Staff.surname).where(
                col(Staff.id).in_({i for i in staff_ids if i is not None} or {0})
            )
        ).all()
    }
    result = []
    for pause in found:
        if pause.cancelled:
            state = "cancelled"
        elif pause.ended_at is not None:
            state = "ended"
        elif pause.last_day < today:
            state = "over"
        elif pause.first_day > today:
            state = "upcoming"
        else:
            state = "current"
        result.append(
            Row(
                pause,
                state,
                state in ("upcoming", "current") and _endable(pause),
                names.get(pause.created_by_id, ""),
                names.get(pause.ended_by_id, ""),
            )
        )
    return result


def _endable(pause: MemberPause) -> bool:
    today = days.report_day(clock.now())
    return not pause.cancelled and pause.ended_at is None and pause.last_day > today


# --- pausing --------------------------------------------------------------------------------------


def _parse(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def _refusal(member: Member, shift: Shift) -> str | None:
    if member.status != MemberStatus.active:
        return "Участник исключён из смены — сначала верните его, потом ставьте паузу."
    if shift.status not in PAUSABLE:
        return "Смена уже закончилась — ставить паузу поздно."
    return None


def _check(
    session: Session,
    member: Member,
    shift: Shift,
    first: date | None,
    last: date | None,
    reason: str,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    today = days.report_day(clock.now())
    earliest = max(today, shift.started_at)
    if first is None:
        errors["first_day"] = "Укажите первый день паузы."
    elif first < today:
        errors["first_day"] = (
            f"Этот день уже прошёл: пауза может начаться не раньше {fmt_date(today)}."
        )
    elif not shift.started_at <= first <= shift.finished_at:
        errors["first_day"] = (
            f"Смена идёт с {fmt_date(shift.started_at)} по {fmt_date(shift.finished_at)}: "
            "выберите день внутри смены."
        )
    if last is None:
        errors["last_day"] = "Укажите последний день паузы."
    elif first is not None and last < first:
        errors["last_day"] = "Последний день не может быть раньше первого."
    elif last > shift.finished_at or last < earliest:
        errors["last_day"] = (
            f"Смена идёт с {fmt_date(shift.started_at)} по {fmt_date(shift.finished_at)}: "
            "выберите день внутри смены."
        )
    if not reason:
        errors["reason"] = "Напишите причину — например, «болеет» или «каникулы»."
    elif len(reason) > REASON_MAX:
        errors["reason"] = f"Причина — не длиннее {REASON_MAX} символов."
    if first is not None and last is not None and not errors.keys() & {"first_day", "last_day"}:
        overlap = _overlapping(session, member, first, last)
        if overlap is not None:
            errors["first_day"] = (
                f"На эти дни уже есть пауза: с {fmt_date(overlap.first_day)} "
                f"по {fmt_date(overlap.last_day)}. Выберите другие дни."
            )
    return errors


def _overlapping(session: Session, member: Member, first: date, last: date) -> MemberPause | None:
    return session.exec(
        select(MemberPause).where(
            col(MemberPause.member_id) == member.id,
            col(MemberPause.cancelled).is_(False),
            col(MemberPause.first_day) <= last,
            col(MemberPause.last_day) >= first,
        )
    ).first()


def _locked_member(session: Session, member: Member) -> Member:
    """The member row, locked until commit: two pauses set at once cannot both pass the overlap
    check (PostgreSQL; SQLite serialises writers anyway)."""
    locked = session.exec(select(Member).where(col(Member.id) == member.id).with_for_update()).one()
    return locked


def create(
    session: Session,
    actor: Staff | None,
    member: Member,
    first_raw: Any,
    last_raw: Any,
    reason_raw: Any,
) -> MemberPause:
    """Pause `member` from `first_raw` to `last_raw` (ISO dates, inclusive); FormErrors in Russian,
    keyed by field ("" for the whole form)."""
    shift = session.get(Shift, member.shift_id)
    assert shift is not None
    member = _locked_member(session, member)
    refusal = _refusal(member, shift)
    if refusal:
        raise FormErrors({"": refusal})
    first, last = _parse(first_raw), _parse(last_raw)
    reason = " ".join(str(reason_raw or "").split())
    errors = _check(session, member, shift, first, last, reason)
    if errors:
        raise FormErrors(errors)
    assert first is not None and last is not None and member.id is not None
    pause = MemberPause(
        member_id=member.id,
        first_day=first,
        last_day=last,
        reason=reason,
        created_by_id=actor.id if actor else None,
    )
    session.add(pause)
    session.flush()
    # Today may be in the pause and already skipped by the family: it is a paused day now. (A
    # waiting report of today stays open — a photo is still welcome — and becomes `paused` at its
    # deadline; see app.schedule.)
    session.execute(
        sa.update(Report)
        .where(
            col(Report.member_id) == member.id,
            col(Report.task_date) >= first,
            col(Report.task_date) <= last,
            col(Report.status) == ReportStatus.skipped,
        )
        .values(status=ReportStatus.paused, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor,
        "member.pause",
        "member",
        member.id,
        None,
        {"pause_id": pause.id, "first_day": first, "last_day": last, "reason": reason},
    )
    _tell(session, member, shift, pause, "member_paused", f"pause:{pause.id}:set")
    return pause


# --- ending a pause early -------------------------------------------------------------------------


def get(session: Session, member: Member, pause_id: int | None) -> MemberPause | None:
    """The member's pause with this id (None for another member's or a made-up id)."""
    pause = session.get(MemberPause, pause_id) if pause_id is not None else None
    return pause if pause is not None and pause.member_id == member.id else None


def end(session: Session, actor: Staff | None, member: Member, pause: MemberPause) -> MemberPause:
    """End a pause early: one that has begun ends with today (today stays paused; tasks come again
    from tomorrow), one that has not begun is cancelled. A guarded UPDATE: a second click (or a
    second curator) changes nothing and is told so."""
    shift = session.get(Shift, member.shift_id)
    assert shift is not None
    if not _endable(pause):
        raise FormErrors({"": "Эта пауза уже закончилась или её уже сняли."})
    today = days.report_day(clock.now())
    before = {"first_day": pause.first_day, "last_day": pause.last_day}
    cancelled = pause.first_day > today
    values: dict[str, Any] = {
        "ended_at": clock.now(),
        "ended_by_id": actor.id if actor else None,
    }
    if cancelled:
        values["cancelled"] = True
    else:
        values["last_day"] = today
    changed = session.execute(
        sa.update(MemberPause)
        .where(
            col(MemberPause.id) == pause.id,
            col(MemberPause.ended_at).is_(None),
            col(MemberPause.cancelled).is_(False),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise FormErrors({"": "Эту паузу уже сняли."})
    session.refresh(pause)
    audit.record(
        session,
        actor,
        "member.pause_cancel" if cancelled else "member.resume",
        "member",
        member.id,
        before,
        {"pause_id": pause.id, "last_day": pause.last_day, "cancelled": cancelled},
    )
    _tell(
        session,
        member,
        shift,
        pause,
        "member_resumed",
        f"pause:{pause.id}:end",
        {"cancelled": cancelled},
    )
    return pause


# --- telling the family ---------------------------------------------------------------------------


def _tell(
    session: Session,
    member: Member,
    shift: Shift,
    pause: MemberPause,
    kind: str,
    key: str,
    extra: dict[str, Any] | None = None,
) -> None:
    participant = session.get(Participant, member.participant_id)
    if participant is None or participant.deleted_at is not None:
        return
    today = days.report_day(clock.now())
    next_day = max(pause.last_day + timedelta(days=1), shift.started_at)
    outbox.enqueue(
        session,
        participant,
        kind,
        key,
        context={
            "shift_title": shift.title,
            "first_day": pause.first_day,
            "last_day": pause.last_day,
            "includes_today": pause.first_day <= today <= pause.last_day,
            "next_day": next_day,
            "next_in_shift": next_day <= shift.finished_at,
            "hour": get_settings().send_new_task_hour,
            **(extra or {}),
        },
    )
