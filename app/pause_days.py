"""Which days of a member are paused (the read side of `app.pauses`): the SQL conditions the set-based
jobs use, and what a calendar shows for a paused day. Imports only the models, so every module that
shows or schedules days can use it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.models import MemberPause

_pause = MemberPause.__table__  # type: ignore[attr-defined]


def covering(member_id: Any, day: Any) -> Any:
    """SQL: the member has a pause covering `day`, for a day that differs from row to row (a
    correlated EXISTS, probed through ix_member_pause_member_days). For one fixed day prefer
    `member_id IN paused_on(day)`: an uncorrelated subquery, hashed once, whatever the planner
    believes about the outer rows (a fresh day's reports are not in its statistics yet)."""
    return sa.exists().where(
        _pause.c.member_id == member_id,
        _pause.c.cancelled == sa.false(),
        _pause.c.first_day <= day,
        _pause.c.last_day >= day,
    )


def paused_between(first: date, last: date) -> Any:
    """SQL: the ids of members with a pause covering any day from `first` to `last`."""
    return sa.select(_pause.c.member_id).where(
        _pause.c.cancelled == sa.false(),
        _pause.c.first_day <= last,
        _pause.c.last_day >= first,
    )


def paused_on(day: date) -> Any:
    """SQL: the ids of members with a pause covering `day`."""
    return paused_between(day, day)


def of_member(session: Session, member_id: int) -> list[MemberPause]:
    """All pauses of a member (cancelled ones too), earliest first."""
    return list(
        session.exec(
            select(MemberPause)
            .where(col(MemberPause.member_id) == member_id)
            .order_by(col(MemberPause.first_day), col(MemberPause.id))
        ).all()
    )


def paused_days(pauses: list[MemberPause]) -> set[date]:
    """The days the (not cancelled) pauses cover."""
    covered: set[date] = set()
    for pause in pauses:
        if pause.cancelled:
            continue
        day = pause.first_day
        while day <= pause.last_day:
            covered.add(day)
            day += timedelta(days=1)
    return covered


def is_paused(session: Session, member_id: int, day: date) -> bool:
    return bool(session.execute(sa.select(covering(member_id, day))).scalar())


def shown_status(status: str, paused: bool) -> str:
    """What a calendar shows for a day: a paused day without a photo is "paused" (a photo sent
    anyway keeps its own status: the child's effort counts)."""
    if paused and status in ("none", "future", "waiting", "skipped", "paused"):
        return "paused"
    return status
