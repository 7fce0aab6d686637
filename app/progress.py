"""A family's progress in the shift (product.md §6a), for the «Мой прогресс» WebApp page.

One function, `find`, builds everything the page shows for the Telegram user the signed initData
names: the shift calendar with each day's outcome ("пауза" for paused days), the balance of
ломбарьерчики (the count of approved reports), the current run of days done, today's task and the
curators' decline reasons. A handful of small queries; takes a session, never commits.

The run of days done: counting back from today, each day with a photo accepted or still under
review adds one; today does not break the run while it is still open (waiting for a photo, or
declined with the day still open); a paused day or a day without a report (before joining, or a day
the service did not give a task) neither adds nor breaks; a skipped or declined past day ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import clock, days, pause_days
from app.models import (
    Member,
    MemberPause,
    MemberStatus,
    Participant,
    Report,
    Shift,
    ShiftDay,
    ShiftStatus,
    Task,
)
from app.settings import get_settings

# What a family sees for a day (never "отклонено" alone: a declined day shows the curator's words).
LABELS = {
    "approved": "засчитано",
    "reviewing": "на проверке",
    "waiting": "ждём фото",
    "declined": "не засчитано",
    "skipped": "пропущено",
    "paused": "пауза",
    "none": "без задания",
    "future": "впереди",
}
# Plain symbols every phone font has (an emoji may show as an empty box in a WebView).
ICONS = {
    "approved": "✓",
    "reviewing": "…",
    "waiting": "○",
    "declined": "↻",
    "skipped": "–",
    "paused": "‖",
    "none": "·",
    "future": "",
}
DONE = ("approved", "reviewing")
# A membership to show: the running shift first, then one about to start, then the last one.
PRIORITY = {
    ShiftStatus.started: 0,
    ShiftStatus.finishing: 0,
    ShiftStatus.preparing: 1,
    ShiftStatus.finished: 2,
}


@dataclass(frozen=True)
class Day:
    number: int
    date: date
    status: str  # a key of LABELS
    is_today: bool
    task_title: str = ""
    reason: str | None = None  # the curator's words on a declined day

    @property
    def label(self) -> str:
        return LABELS[self.status]

    @property
    def icon(self) -> str:
        return ICONS[self.status]


@dataclass(frozen=True)
class Today:
    task_id: int
    title: str
    has_picture: bool
    status: str  # a key of LABELS
    reason: str | None
    attempts_left: int


@dataclass(frozen=True)
class Progress:
    name: str
    shift_title: str
    shift_status: str
    shift_start: date
    active: bool  # not excluded
    day_number: int | None  # today's day of the shift, None outside it
    length: int
    balance: int
    run: int
    days: list[Day]
    today: Today | None
    reasons: list[Day] = field(default_factory=list)  # declined days, newest first
    pause: MemberPause | None = None  # the current or next pause
    pause_now: bool = False  # that pause has begun


def _membership(session: Session, participant_id: int) -> tuple[Member, Shift] | None:
    rows = session.exec(
        select(Member, Shift)
        .join(Shift, col(Shift.id) == col(Member.shift_id))
        .where(
            col(Member.participant_id) == participant_id,
            col(Shift.status).in_(list(PRIORITY)),
        )
    ).all()
    if not rows:
        return None
    member, shift = min(rows, key=lambda r: (PRIORITY[r[1].status], -r[1].started_at.toordinal()))
    return member, shift


def find(session: Session, telegram_id: int) -> Progress | None:
    """The progress of the participant with this Telegram id, or None when they are not (or not
    yet) a member of any shift."""
    participant = session.exec(
        select(Participant).where(
            col(Participant.telegram_id) == telegram_id, col(Participant.deleted_at).is_(None)
        )
    ).first()
    if participant is None or participant.id is None:
        return None
    found = _membership(session, participant.id)
    if found is None:
        return None
    member, shift = found
    assert member.id is not None and shift.id is not None
    reports = _reports(session, member.id)
    member_pauses = pause_days.of_member(session, member.id)
    paused = pause_days.paused_days(member_pauses)
    today = days.report_day(clock.now())
    number = days.day_number(shift, today)
    in_shift = 1 <= number <= shift.length_days
    today_task = _today_task_id(session, shift, number, reports) if in_shift else None
    titles = _titles(session, {r.task_id for r in reports.values()} | {today_task or 0})

    calendar = _calendar(shift, reports, paused, titles, today, number)
    balance = sum(1 for r in reports.values() if _value(r.status) == "approved")
    pause = _current_pause(member_pauses, today)
    return Progress(
        name=participant.name,
        shift_title=shift.title,
        shift_status=_value(shift.status),
        shift_start=shift.started_at,
        active=member.status == MemberStatus.active,
        day_number=number if in_shift else None,
        length=shift.length_days,
        balance=balance,
        run=run_of_days(calendar, number),
        days=calendar,
        today=_today(session, calendar, number, today_task, titles, reports)
        if in_shift and member.status == MemberStatus.active
        else None,
        reasons=[d for d in reversed(calendar) if d.status == "declined"],
        pause=pause,
        pause_now=pause is not None and pause.first_day <= today,
    )


def _reports(session: Session, member_id: int) -> dict[int, Any]:
    """The member's reports by day number (only the columns the page shows)."""
    rows = session.execute(
        sa.select(
            col(Report.day_number),
            col(Report.status),
            col(Report.task_id),
            col(Report.photo_count),
            col(Report.decline_reason),
        ).where(col(Report.member_id) == member_id)
    ).all()
    return {r.day_number: r for r in rows}


def _calendar(
    shift: Shift,
    reports: dict[int, Any],
    paused: set[date],
    titles: dict[int, str],
    today: date,
    number: int,
) -> list[Day]:
    """Every day of the shift with its outcome ("future" for days still to come)."""
    calendar = []
    for n in range(1, shift.length_days + 1):
        day = days.shift_date(shift, n)
        report = reports.get(n)
        if report is not None:
            status = _value(report.status)
        else:
            status = "future" if day > today else "none"
        status = pause_days.shown_status(status, day in paused)
        calendar.append(
            Day(
                n,
                day,
                status,
                n == number,
                titles.get(report.task_id, "") if report else "",
                _reason(report) if status == "declined" else None,
            )
        )
    return calendar


def _reason(report: Any) -> str | None:
    return (report.decline_reason or "").strip() or None


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def _titles(session: Session, task_ids: set[int]) -> dict[int, str]:
    rows = session.execute(
        sa.select(col(Task.id), col(Task.title)).where(col(Task.id).in_(task_ids))
    )
    return {int(task_id): title for task_id, title in rows}


def _today_task_id(session: Session, shift: Shift, number: int, reports: dict) -> int | None:
    if number in reports:
        return int(reports[number].task_id)
    planned = session.exec(
        select(ShiftDay.task_id).where(
            col(ShiftDay.shift_id) == shift.id, col(ShiftDay.day_number) == number
        )
    ).first()
    return int(planned) if planned is not None else None


def _today(
    session: Session,
    calendar: list[Day],
    number: int,
    task_id: int | None,
    titles: dict[int, str],
    reports: dict,
) -> Today | None:
    if task_id is None:
        return None
    task = session.get(Task, task_id)
    report = reports.get(number)
    used = int(report.photo_count) if report is not None else 0
    day = calendar[number - 1]
    return Today(
        task_id=task_id,
        title=titles.get(task_id, ""),
        has_picture=bool(task and task.image_key),
        status=day.status,
        reason=day.reason,
        attempts_left=max(get_settings().max_photo_attempts - used, 0),
    )


def run_of_days(calendar: list[Day], today_number: int) -> int:
    """Days done in a row, counting back from today (see the module docstring)."""
    run = 0
    last = min(today_number, len(calendar))
    for day in reversed(calendar[: max(last, 0)]):
        still_open = day.is_today and day.status in ("waiting", "declined")
        if day.status in DONE:
            run += 1
        elif not (day.status in ("paused", "none") or still_open):
            break
    return run


def _current_pause(member_pauses: list[MemberPause], today: date) -> MemberPause | None:
    ahead = [p for p in member_pauses if not p.cancelled and p.last_day >= today]
    return min(ahead, key=lambda p: p.first_day) if ahead else None
