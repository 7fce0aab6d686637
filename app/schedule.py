"""The daily schedule (product.md §2, §3.3, §3.6, §4.4, §5): task, reminder and shift transitions.

Each job is a domain function that takes a session and a `now`, never commits, and works on sets:
a constant number of SQL statements per shift whatever the number of members (INSERT … SELECT,
UPDATE … WHERE … IN (subquery), one SELECT + one multi-row INSERT for the outbox).

Exactly once: `daily` and `reminder` first claim their (job, day) row in `job_run`
(INSERT … ON CONFLICT DO NOTHING) in the same transaction as their effects and outbox rows. A second
run — a restart, a second app instance, a hand run — inserts nothing and does nothing; on PostgreSQL
a concurrent second insert waits for the first transaction and then finds the row. A crash rolls the
claim back with everything else, so the job runs again. `transitions` is checked on every tick; its
once-only guarantee is the guarded `UPDATE shift … WHERE status = 'finishing'` plus the outbox dedupe
keys. See docs/schedule.md for the rules, including catch-up after downtime.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import days, final_message, outbox, pause_days
from app.db import dialect_insert
from app.members import balances
from app.models import (
    JobRun,
    Member,
    MemberStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportStatus,
    Shift,
    ShiftDay,
    ShiftStatus,
    Task,
)
from app.outbox import Message
from app.settings import get_settings

JOBS = ("daily", "reminder", "transitions")
# A reminder is sent at most this many hours after SEND_NO_REPORT_REMINDER_HOUR; later it is
# skipped (recorded as such), so a family is never woken up by a late reminder.
REMINDER_GRACE_HOURS = 3

_report = Report.__table__  # type: ignore[attr-defined]
_member = Member.__table__  # type: ignore[attr-defined]
_participant = Participant.__table__  # type: ignore[attr-defined]
_shift_day = ShiftDay.__table__  # type: ignore[attr-defined]
_job_run = JobRun.__table__  # type: ignore[attr-defined]
_outbox = OutgoingMessage.__table__  # type: ignore[attr-defined]
_shift = Shift.__table__  # type: ignore[attr-defined]


# --- bookkeeping -------------------------------------------------------------------------------


def claim(session: Session, job: str, day: date, now: datetime) -> bool:
    """Take the (job, day) run; False if it was already taken (then do nothing)."""
    stmt = (
        dialect_insert(session, _job_run)
        .values(job=job, day=day, started_at=now, details={})
        .on_conflict_do_nothing(index_elements=["job", "day"])
        .returning(_job_run.c.id)
    )
    # Not rowcount: with psycopg an INSERT that returns the new id reports -1.
    return session.execute(stmt).first() is not None


def _finish_run(
    session: Session, job: str, day: date, now: datetime, details: dict[str, Any]
) -> None:
    session.execute(
        sa.update(_job_run)
        .where(_job_run.c.job == job, _job_run.c.day == day)
        .values(finished_at=now, details=details)
    )


def has_run(session: Session, job: str, day: date) -> bool:
    found = session.exec(
        select(JobRun.id).where(col(JobRun.job) == job, col(JobRun.day) == day)
    ).first()
    return found is not None


def last_runs(session: Session) -> dict[str, JobRun | None]:
    """The latest run of each job (by day, then start)."""
    result: dict[str, JobRun | None] = {}
    for job in JOBS:
        result[job] = session.exec(
            select(JobRun)
            .where(col(JobRun.job) == job)
            .order_by(col(JobRun.day).desc(), col(JobRun.started_at).desc())
            .limit(1)
        ).first()
    return result


def recent_runs(session: Session, limit: int = 20) -> list[JobRun]:
    return list(
        session.exec(
            select(JobRun)
            .order_by(col(JobRun.day).desc(), col(JobRun.started_at).desc())
            .limit(limit)
        ).all()
    )


def _participant_columns() -> list[Any]:
    """The participant columns a bot text needs (`participant.name` in templates)."""
    return [
        _participant.c.id,
        _participant.c.telegram_id,
        _participant.c.name,
        _participant.c.surname,
    ]


def _reachable() -> Any:
    """Participants the bot may write to."""
    return sa.and_(
        _participant.c.is_bot_blocked == sa.false(),
        _participant.c.telegram_id.is_not(None),
        _participant.c.deleted_at.is_(None),
    )


# --- the daily task job ------------------------------------------------------------------------


def _skip_overdue(session: Session, shift_id: int, day: date, now: datetime) -> int:
    """Reports of this shift for days before `day` still waiting: their deadline has passed. A day
    inside a pause (set after that day's task had gone out) becomes `paused`, not `skipped`."""
    closed = sa.case(
        (pause_days.covering(_report.c.member_id, _report.c.task_date), ReportStatus.paused.value),
        else_=ReportStatus.skipped.value,
    )
    result = session.execute(
        sa.update(_report)
        .where(
            _report.c.shift_id == shift_id,
            _report.c.status == ReportStatus.waiting,
            _report.c.task_date < day,
        )
        .values(status=sa.cast(closed, _report.c.status.type), updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _exclude(session: Session, shift: Shift, day: date, now: datetime) -> int:
    """Exclude active members skipped on each of the last N days the shift gave tasks; message them.

    "Days the shift gave tasks" are the day numbers that have reports (a day missed while the app
    was down has none: it neither counts nor breaks the chain). A member needs a skipped report on
    every one of those N days, so days before joining do not count (no report), and a declined,
    reviewing, approved or paused day breaks the chain (so does a pause over any day of the window,
    even one the family skipped before the pause was set). Test participants are never excluded.
    Two statements whatever the size: a loose index scan for the last N report days, then an
    UPDATE … WHERE id IN (grouped subquery); then the messages.
    """
    n = get_settings().skips_to_exclude
    today_number = days.day_number(shift, day)
    assert shift.id is not None
    last_days = _last_task_days(session, shift.id, today_number, n)
    if len(last_days) < n:
        return 0
    chain = (
        sa.select(_report.c.member_id)
        .where(
            _report.c.shift_id == shift.id,
            _report.c.day_number >= min(last_days),
            _report.c.day_number < today_number,
            _report.c.status == ReportStatus.skipped,
        )
        .group_by(_report.c.member_id)
        .having(sa.func.count() == n)
    )
    not_test = sa.select(_participant.c.id).where(_participant.c.is_test == sa.false())
    result = session.execute(
        sa.update(_member)
        .where(
            _member.c.shift_id == shift.id,
            _member.c.status == MemberStatus.active,
            _member.c.id.in_(chain),
            # A pause within the window breaks the chain (its days are `paused`, not skipped; a
            # day skipped before its pause was set counts as paused too).
            _member.c.id.not_in(
                pause_days.paused_between(
                    days.shift_date(shift, min(last_days)), days.shift_date(shift, today_number - 1)
                )
            ),
            _member.c.participant_id.in_(not_test),
        )
        .values(status=MemberStatus.excluded, excluded_at=now, updated_at=now)
    )
    excluded = int(result.rowcount)  # type: ignore[attr-defined]
    if excluded:
        _tell_excluded(session, shift, n, now)
    return excluded


def _last_task_days(session: Session, shift_id: int, before: int, n: int) -> list[int]:
    """The last `n` day numbers before `before` that have reports in the shift: a loose index scan
    (a recursive CTE stepping down ix_report_shift_day_status), not a scan of the shift's reports."""

    def previous(below: Any) -> Any:
        r = _report.alias()
        return (
            sa.select(sa.func.max(r.c.day_number))
            .where(r.c.shift_id == shift_id, r.c.day_number < below)
            .scalar_subquery()
        )

    opened = sa.select(previous(sa.literal(before)).label("n"), sa.literal(1).label("k")).cte(
        "opened", recursive=True
    )
    opened = opened.union_all(
        sa.select(previous(opened.c.n), opened.c.k + 1).where(
            opened.c.n.is_not(None), opened.c.k < n
        )
    )
    query = sa.select(opened.c.n).where(opened.c.n.is_not(None))
    return [int(day) for day in session.execute(query).scalars()]


def _tell_excluded(session: Session, shift: Shift, skips: int, now: datetime) -> None:
    """The message to every reachable member excluded by this run (excluded_at == now)."""
    rows = session.execute(
        sa.select(_member.c.id.label("member_id"), *_participant_columns())
        .join(_participant, _participant.c.id == _member.c.participant_id)
        .where(
            _member.c.shift_id == shift.id,
            _member.c.status == MemberStatus.excluded,
            _member.c.excluded_at == now,
            _reachable(),
        )
    ).all()
    outbox.enqueue_many(
        session,
        "excluded",
        [
            Message(
                r,
                f"excluded:{r.member_id}",
                context={"skips": skips, "shift_title": shift.title},
            )
            for r in rows
        ],
        now=now,
    )


def _open_day(session: Session, shift: Shift, day: date, now: datetime) -> dict[str, int]:
    """Create day N's waiting reports for active members and queue their task messages."""
    number = days.day_number(shift, day)
    plan = sa.select(_shift_day.c.task_id).where(
        _shift_day.c.shift_id == shift.id, _shift_day.c.day_number == number
    )
    task_id = session.execute(plan).scalar()
    if task_id is None:
        return {"reports": 0, "tasks_queued": 0, "missing_plan": 1}
    created = _create_reports(session, shift, number, day, task_id, now)
    queued = _queue_tasks(session, shift, number, task_id, now)
    return {"reports": created, "tasks_queued": queued}


def _create_reports(
    session: Session, shift: Shift, number: int, day: date, task_id: int, now: datetime
) -> int:
    """INSERT … SELECT: a report of day `number` for every active member who joined by `day` and
    has none yet — waiting, or `paused` for a member whose pause covers the day (no task then)."""
    status_type = _report.c.status.type
    status = sa.case(
        (_member.c.id.in_(pause_days.paused_on(day)), ReportStatus.paused.value),
        else_=ReportStatus.waiting.value,
    )
    source = sa.select(
        _member.c.id,
        sa.literal(shift.id),
        sa.literal(task_id),
        sa.literal(number),
        sa.literal(day, sa.Date),
        sa.cast(status, status_type),
        sa.literal(0),
        sa.literal(now, _report.c.created_at.type),
        sa.literal(now, _report.c.updated_at.type),
    ).where(
        _member.c.shift_id == shift.id,
        _member.c.status == MemberStatus.active,
        _member.c.joined_at <= day,
        ~sa.exists().where(_report.c.member_id == _member.c.id, _report.c.day_number == number),
    )
    columns = [
        "member_id",
        "shift_id",
        "task_id",
        "day_number",
        "task_date",
        "status",
        "photo_count",
        "created_at",
        "updated_at",
    ]
    result = session.execute(
        sa.insert(_report).from_select(columns, source),
        execution_options={"preserve_rowcount": True},  # else psycopg's INSERT reports -1
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _queue_tasks(session: Session, shift: Shift, number: int, task_id: int, now: datetime) -> int:
    """The task message to every reachable active member with a waiting report of day `number`,
    mentioning kindly how yesterday went."""
    task_title = session.exec(select(Task.title).where(col(Task.id) == task_id)).one()
    yesterday = _report.alias("yesterday")
    rows = session.execute(
        sa.select(
            _report.c.id.label("report_id"),
            yesterday.c.status.label("yesterday"),
            *_participant_columns(),
        )
        .join(_member, _member.c.id == _report.c.member_id)
        .join(_participant, _participant.c.id == _member.c.participant_id)
        .outerjoin(
            yesterday,
            sa.and_(
                yesterday.c.member_id == _report.c.member_id,
                yesterday.c.day_number == number - 1,
            ),
        )
        .where(
            _report.c.shift_id == shift.id,
            _report.c.day_number == number,
            _report.c.status == ReportStatus.waiting,
            _member.c.status == MemberStatus.active,
            _reachable(),
        )
    ).all()
    settings = get_settings()
    queued = outbox.enqueue_many(
        session,
        "task",
        [
            Message(
                r,
                f"task:{r.report_id}",
                context={
                    "task_title": task_title,
                    "day_number": number,
                    "yesterday": str(r.yesterday) if r.yesterday else None,
                    "deadline_hour": settings.send_new_task_hour,
                },
                payload={"photo_task_id": task_id, "keyboard": "task"},
            )
            for r in rows
        ],
        now=now,
    )
    return queued


def daily(session: Session, now: datetime) -> dict[str, Any]:
    """The daily task job for the report day open at `now`. Returns what it did (or why not)."""
    day = days.report_day(now)
    later = session.exec(
        select(JobRun.id).where(col(JobRun.job) == "daily", col(JobRun.day) > day)
    ).first()
    if later is not None:
        return {"ran": False, "day": day.isoformat(), "reason": "a later day already ran"}
    if not claim(session, "daily", day, now):
        return {"ran": False, "day": day.isoformat(), "reason": "already ran"}
    details: dict[str, Any] = {"shifts": []}

    # Close the running shift first: it must stop being `started` before the next one starts.
    for shift in session.exec(select(Shift).where(col(Shift.status) == ShiftStatus.started)).all():
        info: dict[str, Any] = {"shift_id": shift.id}
        info["skipped"] = _skip_overdue(session, shift.id, day, now)  # type: ignore[arg-type]
        info["excluded"] = _exclude(session, shift, day, now)
        if shift.finished_at < day:
            session.execute(
                sa.update(Shift)
                .where(col(Shift.id) == shift.id, col(Shift.status) == ShiftStatus.started)
                .values(status=ShiftStatus.finishing, updated_at=now)
            )
            info["now"] = "finishing"
        details["shifts"].append(info)

    started = session.execute(
        sa.update(Shift)
        .where(col(Shift.status) == ShiftStatus.preparing, col(Shift.started_at) <= day)
        .values(status=ShiftStatus.started, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    details["started"] = int(started)

    for shift in session.exec(
        select(Shift).where(
            col(Shift.status) == ShiftStatus.started,
            col(Shift.started_at) <= day,
            col(Shift.finished_at) >= day,
        )
    ).all():
        opened = _open_day(session, shift, day, now)
        opened["shift_id"] = shift.id  # type: ignore[assignment]
        opened["day_number"] = days.day_number(shift, day)
        details["shifts"].append(opened)

    details["ran"] = True
    details["day"] = day.isoformat()
    _finish_run(session, "daily", day, now, details)
    return details


# --- the reminder job --------------------------------------------------------------------------


def reminder_moment(day: date) -> datetime:
    """When the reminder for report day `day` is due: the first reminder hour after its task."""
    settings = get_settings()
    moment = datetime.combine(day, time(settings.send_no_report_reminder_hour), tzinfo=settings.tz)
    if moment <= days.task_moment(day):
        moment = datetime.combine(
            day + timedelta(days=1),
            time(settings.send_no_report_reminder_hour),
            tzinfo=settings.tz,
        )
    return moment


def reminder(session: Session, now: datetime, *, late_ok: bool = False) -> dict[str, Any]:
    """One reminder to members whose report for the open report day is still waiting (not to a
    member paused that day: the report may have been created before the pause was set).

    More than REMINDER_GRACE_HOURS late (unless `late_ok`, a hand run) the reminder is skipped and
    the run is recorded as such.
    """
    day = days.report_day(now)
    due = reminder_moment(day)
    if now < due:
        return {"ran": False, "day": day.isoformat(), "reason": "not yet"}
    if not claim(session, "reminder", day, now):
        return {"ran": False, "day": day.isoformat(), "reason": "already ran"}
    if not late_ok and now > due + timedelta(hours=REMINDER_GRACE_HOURS):
        details: dict[str, Any] = {"ran": True, "day": day.isoformat(), "skipped": "too late"}
        _finish_run(session, "reminder", day, now, details)
        return details
    rows = session.execute(
        sa.select(_report.c.id.label("report_id"), *_participant_columns())
        .join(_member, _member.c.id == _report.c.member_id)
        .join(_participant, _participant.c.id == _member.c.participant_id)
        .join(_shift, _shift.c.id == _report.c.shift_id)
        .where(
            _report.c.task_date == day,
            _report.c.status == ReportStatus.waiting,
            _member.c.status == MemberStatus.active,
            _shift.c.status.in_([ShiftStatus.started, ShiftStatus.finishing]),
            _report.c.member_id.not_in(pause_days.paused_on(day)),
            _reachable(),
        )
    ).all()
    settings = get_settings()
    queued = outbox.enqueue_many(
        session,
        "reminder",
        [
            Message(
                r,
                f"reminder:{r.report_id}",
                context={"deadline_hour": settings.send_new_task_hour},
                payload={"keyboard": "task"},
            )
            for r in rows
        ],
        now=now,
    )
    details = {"ran": True, "day": day.isoformat(), "reminders_queued": queued}
    _finish_run(session, "reminder", day, now, details)
    return details


# --- shift transitions -------------------------------------------------------------------------


def finishable_shifts(session: Session, now: datetime) -> list[Shift]:
    """Finishing shifts whose last day's deadline has passed (reviews may still be pending)."""
    shifts = session.exec(select(Shift).where(col(Shift.status) == ShiftStatus.finishing)).all()
    return [s for s in shifts if days.deadline(s.finished_at) <= now]


def transitions(session: Session, now: datetime) -> dict[str, Any]:
    """Finish the finishing shifts whose deadline passed and whose queue is empty; send finals."""
    finished: list[dict[str, Any]] = []
    waiting_review: list[int] = []
    for shift in finishable_shifts(session, now):
        assert shift.id is not None
        if _finish(session, shift, now):
            finished.append(
                {"shift_id": shift.id, "finals_queued": _send_finals(session, shift, now)}
            )
        else:
            waiting_review.append(shift.id)
    details = {"ran": True, "finished": finished, "waiting_review": waiting_review}
    if finished:
        # Bookkeeping only (the guarded UPDATE in _finish is the once-only guarantee): a row a day.
        day = days.report_day(now)
        stmt = dialect_insert(session, _job_run).values(
            job="transitions", day=day, started_at=now, finished_at=now, details=details
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["job", "day"], set_={"finished_at": now, "details": details}
        )
        session.execute(stmt)
    return details


def _finish(session: Session, shift: Shift, now: datetime) -> bool:
    """finishing → finished, only when nothing is left to review (a guarded UPDATE); the last
    day's still-waiting reports are skipped first."""
    assert shift.id is not None
    _skip_overdue(session, shift.id, shift.finished_at + timedelta(days=1), now)
    reviewing = sa.exists().where(
        _report.c.shift_id == shift.id, _report.c.status == ReportStatus.reviewing
    )
    changed = session.execute(
        sa.update(Shift)
        .where(col(Shift.id) == shift.id, col(Shift.status) == ShiftStatus.finishing, ~reviewing)
        .values(status=ShiftStatus.finished, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return bool(changed)


def _send_finals(session: Session, shift: Shift, now: datetime) -> int:
    """The shift's final message, with each member's balance, to every reachable active member."""
    rows = session.execute(
        sa.select(_member.c.id.label("member_id"), *_participant_columns())
        .join(_participant, _participant.c.id == _member.c.participant_id)
        .where(
            _member.c.shift_id == shift.id,
            _member.c.status == MemberStatus.active,
            _reachable(),
        )
    ).all()
    points = balances(session, [r.member_id for r in rows])
    template = shift.final_message or final_message.DEFAULT
    return outbox.enqueue_many(
        session,
        "shift_final",
        [
            Message(
                r,
                f"final:{r.member_id}",
                context={
                    "text": final_message.render(
                        template,
                        name=r.name,
                        surname=r.surname,
                        balance=points[r.member_id],
                        shift=shift.title,
                    )
                },
            )
            for r in rows
        ],
        now=now,
    )


def run(session: Session, job: str, now: datetime, *, by_hand: bool = False) -> dict[str, Any]:
    if job == "daily":
        return daily(session, now)
    if job == "reminder":
        return reminder(session, now, late_ok=by_hand)
    if job == "transitions":
        return transitions(session, now)
    raise ValueError(f"unknown job {job!r}")
