"""The start page's numbers (product.md §4): what is waiting, since when, who decided what today
(administrators only), which families cannot be reached, and whether messages and the daily jobs
are running.

Read-only; every number is something a curator can act on from a filtered list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, outbox, report_queue, schedule, text
from app.models import (
    Application,
    ApplicationStatus,
    Member,
    MemberStatus,
    OutboxStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportStatus,
    Shift,
    ShiftStatus,
    Staff,
)

RUNNING = (ShiftStatus.preparing, ShiftStatus.started, ShiftStatus.finishing)
DECIDED_WINDOW = 3  # days: today's decisions are counted among photos sent this recently


@dataclass
class Curator:
    name: str
    approved: int
    declined: int

    @property
    def total(self) -> int:
        return self.approved + self.declined


@dataclass
class Dashboard:
    reviewing: report_queue.Count
    flagged: report_queue.Count
    oldest_submitted_at: datetime | None
    applications: int
    participants: int
    blocked: int  # members of running shifts whose family blocked the bot
    shifts: list[Any]
    curators: list[Curator]  # each curator's decisions today (empty unless `everyone`)
    team_today: Curator  # the whole team's decisions today, shown to everyone
    outbox_backlog: int
    outbox_oldest_seconds: float
    outbox_failed_today: int
    jobs: list[tuple[str, str]]  # (job in words, its last run in words)


def _count(session: Session, query: Any) -> int:
    return int(session.execute(query).scalar_one())


def build(session: Session, *, everyone: bool) -> Dashboard:
    """`everyone`: today's decisions of each curator (administrators only, as for the pace);
    without it `curators` stays empty and only the team's total is shown."""
    today_start = clock.local_midnight()
    reviewing = report_queue.count(session, report_queue.Filters())
    flagged = report_queue.count(session, report_queue.Filters(flagged=True))
    oldest = session.execute(
        sa.select(sa.func.min(col(Report.submitted_at))).where(
            col(Report.status) == ReportStatus.reviewing
        )
    ).scalar_one()
    applications = _count(
        session,
        sa.select(sa.func.count())
        .select_from(Application)
        .where(col(Application.status) == ApplicationStatus.pending),
    )
    participants = _count(
        session,
        sa.select(sa.func.count())
        .select_from(Participant)
        .where(col(Participant.deleted_at).is_(None)),
    )
    blocked = _count(
        session,
        sa.select(sa.func.count(sa.distinct(col(Participant.id))))
        .select_from(Member)
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .join(Shift, col(Shift.id) == col(Member.shift_id))
        .where(
            col(Member.status) == MemberStatus.active,
            col(Shift.status).in_([ShiftStatus.started, ShiftStatus.finishing]),
            col(Participant.is_bot_blocked).is_(True),
        ),
    )
    shifts = session.execute(
        sa.select(
            col(Shift.id),
            col(Shift.number),
            col(Shift.title),
            col(Shift.status),
            col(Shift.started_at),
            col(Shift.finished_at),
        )
        .where(col(Shift.status).in_(RUNNING))
        .order_by(col(Shift.started_at))
    ).all()
    curators = _curators(session, today_start)
    team_today = Curator("", sum(c.approved for c in curators), sum(c.declined for c in curators))
    backlog = outbox.backlog(session)
    failed = _count(
        session,
        sa.select(sa.func.count())
        .select_from(OutgoingMessage)
        .where(
            col(OutgoingMessage.status) == OutboxStatus.failed,
            col(OutgoingMessage.send_after) >= today_start,
        ),
    )
    return Dashboard(
        reviewing=reviewing,
        flagged=flagged,
        oldest_submitted_at=oldest,
        applications=applications,
        participants=participants,
        blocked=blocked,
        shifts=list(shifts),
        curators=curators if everyone else [],
        team_today=team_today,
        outbox_backlog=int(backlog["backlog"]),
        outbox_oldest_seconds=float(backlog["oldest_due_seconds"]),
        outbox_failed_today=failed,
        jobs=_jobs(session),
    )


def _curators(session: Session, today_start: datetime) -> list[Curator]:
    return [
        Curator(f"{name} {surname}".strip(), int(approved), int(declined))
        for name, surname, approved, declined in session.execute(
            sa.select(
                col(Staff.name),
                col(Staff.surname),
                sa.func.sum(sa.case((col(Report.status) == ReportStatus.approved, 1), else_=0)),
                sa.func.sum(sa.case((col(Report.status) == ReportStatus.declined, 1), else_=0)),
            )
            .join(Staff, col(Staff.id) == col(Report.decided_by_id))
            .where(
                col(Report.status).in_([ReportStatus.approved, ReportStatus.declined]),
                # The queue index bounds the walk: photos sent in the last DECIDED_WINDOW days
                # (a photo waits hours, not days). No index has decided_at; scanning every
                # decided report took 4 s on 1,000,000 reports.
                col(Report.submitted_at) >= today_start - timedelta(days=DECIDED_WINDOW),
                col(Report.decided_at) >= today_start,
            )
            .group_by(col(Staff.id), col(Staff.name), col(Staff.surname))
            .order_by(sa.func.count().desc())
        ).all()
    ]


JOB_NAMES = {
    "daily": "Задания на день",
    "reminder": "Напоминания",
    "transitions": "Переходы смен",
}


def _jobs(session: Session) -> list[tuple[str, str]]:
    today = clock.local_today()
    out = []
    for job, run in schedule.last_runs(session).items():
        name = JOB_NAMES.get(job, job)
        if run is None:
            out.append((name, "ещё ни разу не запускались"))
        elif run.finished_at is None:
            out.append((name, f"идут с {text.fmt_time(run.started_at)}"))
        elif run.day == today:
            out.append((name, f"сегодня в {text.fmt_time(run.finished_at)} — готово"))
        else:
            out.append((name, f"последний раз {text.fmt_date(run.day)} — сегодня ещё не было"))
    return out


def waited(since: datetime | None) -> str:
    """ "2 дня 3 часа" / "40 минут": how long the oldest photo has been waiting."""
    if since is None:
        return ""
    minutes = max(int((clock.now() - since).total_seconds() // 60), 0)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        out = f"{days} {text.plural(days, 'день', 'дня', 'дней')}"
        return out + (f" {hours} {text.plural(hours, 'час', 'часа', 'часов')}" if hours else "")
    if hours:
        return f"{hours} {text.plural(hours, 'час', 'часа', 'часов')}" + (
            f" {mins} мин" if mins else ""
        )
    return f"{mins} {text.plural(mins, 'минуту', 'минуты', 'минут')}"
