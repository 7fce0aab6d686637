"""A curator's own pace (product.md §6a): decisions on photos today and this week, seconds per
decision, the share declined — per staff member, for the whole team in one statement.

What counts: a staff member's decisions on report photos (accept, decline) as the audit log keeps
them. The log, not the report row: a declined photo followed by a new one makes the report
undecided again, and the decline must still count. A decision undone within the undo window is not
counted. Decisions on applications are not counted either: a few a day, each read at length — a
different kind of work, whose pace would blur the queue's.

Seconds per decision: the time from a counted decision to the same person's previous counted
decision. A gap longer than BREAK_SECONDS is a break (tea, a phone call, the night) and is left
out, so is the first decision of the week. The page shows the median of this week's gaps: one long
look at a hard photo does not move it the way it moves an average. An undone decision's time stays
in the gap to the next one: that photo took that long.

"Today" starts at local midnight (TIME_ZONE); "this week" at local midnight on Monday.

Index: `ix_audit_action_at` (action, at) bounds the read by the week's decisions, whatever the
size of the whole log. The median is computed in SQL (row_number and count over each person's
gaps), so the answer is one row per person however busy the week was.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, db
from app.models import AuditEvent, Staff, StaffStatus

BREAK_SECONDS = 600  # a longer gap between two decisions is a break, not time spent on a photo
DECISIONS = ("report.approve", "report.decline")
DECLINE = "report.decline"
UNDO = "report.undo"


@dataclass(frozen=True)
class Pace:
    staff_id: int
    name: str
    today: int  # decisions since local midnight
    week: int  # decisions since Monday
    declined: int  # of this week's
    median_seconds: int | None  # this week; None until there are two decisions in a row

    @property
    def declined_percent(self) -> int | None:
        return round(100 * self.declined / self.week) if self.week else None


def week_start(today_start: datetime) -> datetime:
    return today_start - timedelta(days=today_start.weekday())


def team(session: Session, staff_ids: Collection[int] | None = None) -> list[Pace]:
    """Everyone's pace (active staff and anyone who decided this week), busiest first; or only
    the staff in `staff_ids`, whatever their status. One statement."""
    today_start = clock.local_midnight()
    since = week_start(today_start)
    events_where = [
        col(AuditEvent.object_type) == "report",
        col(AuditEvent.action).in_([*DECISIONS, UNDO]),
        col(AuditEvent.at) >= since,
    ]
    if staff_ids is not None:
        # An undo is always its author's own, so one person's events are enough to pair them.
        events_where.append(col(AuditEvent.actor_id).in_(list(staff_ids)))
    events = (
        sa.select(
            col(AuditEvent.id).label("id"),
            col(AuditEvent.actor_id).label("staff_id"),
            col(AuditEvent.at).label("at"),
            col(AuditEvent.action).label("action"),
            sa.func.lead(col(AuditEvent.action))
            .over(
                partition_by=col(AuditEvent.object_id),
                order_by=(col(AuditEvent.at), col(AuditEvent.id)),
            )
            .label("next_action"),
        )
        .where(*events_where)
        .subquery("events")
    )
    # The decisions that stand; each with the time of the same person's previous one.
    counted = (
        sa.select(
            events.c.staff_id,
            events.c.at,
            events.c.action,
            sa.func.lag(events.c.at)
            .over(partition_by=events.c.staff_id, order_by=(events.c.at, events.c.id))
            .label("prev_at"),
        )
        .where(
            events.c.action != UNDO,
            sa.or_(events.c.next_action.is_(None), events.c.next_action != UNDO),
            events.c.staff_id.is_not(None),
        )
        .cte("counted")
    )
    totals = (
        sa.select(
            counted.c.staff_id,
            sa.func.count().label("week"),
            sa.func.sum(sa.case((counted.c.at >= today_start, 1), else_=0)).label("today"),
            sa.func.sum(sa.case((counted.c.action == DECLINE, 1), else_=0)).label("declined"),
        )
        .group_by(counted.c.staff_id)
        .subquery("totals")
    )
    gap = db.seconds_between(session, counted.c.at, counted.c.prev_at)
    gaps = (
        sa.select(
            counted.c.staff_id,
            gap.label("seconds"),
            sa.func.row_number().over(partition_by=counted.c.staff_id, order_by=gap).label("n"),
            sa.func.count().over(partition_by=counted.c.staff_id).label("total"),
        )
        .where(counted.c.prev_at.is_not(None), gap <= BREAK_SECONDS)
        .subquery("gaps")
    )
    # The middle gap, or the mean of the two middle ones.
    medians = (
        sa.select(gaps.c.staff_id, sa.func.avg(gaps.c.seconds).label("median"))
        .where(gaps.c.n.between((gaps.c.total + 1) // 2, (gaps.c.total + 2) // 2))
        .group_by(gaps.c.staff_id)
        .subquery("medians")
    )
    query = (
        sa.select(
            col(Staff.id),
            col(Staff.name),
            col(Staff.surname),
            totals.c.today,
            totals.c.week,
            totals.c.declined,
            medians.c.median,
        )
        .outerjoin(totals, totals.c.staff_id == col(Staff.id))
        .outerjoin(medians, medians.c.staff_id == col(Staff.id))
        .order_by(
            sa.func.coalesce(totals.c.week, 0).desc(),
            col(Staff.name),
            col(Staff.surname),
            col(Staff.id),
        )
    )
    if staff_ids is not None:
        query = query.where(col(Staff.id).in_(list(staff_ids)))
    else:
        query = query.where(
            sa.or_(col(Staff.status) == StaffStatus.active, totals.c.week.is_not(None))
        )
    return [
        Pace(
            staff_id=staff_id,
            name=f"{name} {surname}".strip(),
            today=int(today or 0),
            week=int(week or 0),
            declined=int(declined or 0),
            median_seconds=round(float(median)) if median is not None else None,
        )
        for staff_id, name, surname, today, week, declined, median in session.execute(query)
    ]


def of(session: Session, staff_id: int) -> Pace:
    """One staff member's pace (zeros for someone who has not decided anything this week)."""
    found = team(session, [staff_id])
    return found[0] if found else Pace(staff_id, "", 0, 0, 0, None)


@dataclass(frozen=True)
class Board:
    """What a page shows (templates/staff/_pace.html): the team as a table, or one person."""

    team: bool
    rows: list[Pace]
    break_minutes: int = BREAK_SECONDS // 60


def board(session: Session, person: Staff, *, whole_team: bool = False) -> Board:
    """The whole team (an administrator's start page) or one staff member's line."""
    assert person.id is not None
    rows = team(session) if whole_team else [of(session, person.id)]
    return Board(whole_team, rows)
