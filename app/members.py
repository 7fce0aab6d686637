"""Members of a shift and their ломбарьерчики (always derived: the count of approved reports)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.models import Member, MemberStatus, Report, ReportStatus, Shift, ShiftStatus


def balance(session: Session, member_id: int) -> int:
    query = select(sa.func.count()).where(
        col(Report.member_id) == member_id, col(Report.status) == ReportStatus.approved
    )
    return int(session.exec(query).one())


def balances(session: Session, member_ids: list[int]) -> dict[int, int]:
    """Ломбарьерчики of many members in one query (members without approved reports get 0)."""
    if not member_ids:
        return {}
    rows = session.exec(
        select(Report.member_id, sa.func.count())
        .where(col(Report.member_id).in_(member_ids), col(Report.status) == ReportStatus.approved)
        .group_by(col(Report.member_id))
    ).all()
    found = {member_id: int(count) for member_id, count in rows}
    return {member_id: found.get(member_id, 0) for member_id in member_ids}


def current(session: Session, participant_id: int) -> tuple[Member, Shift] | None:
    """The participant's active membership in a running (started or finishing) shift."""
    row = session.exec(
        select(Member, Shift)
        .join(Shift, col(Shift.id) == col(Member.shift_id))
        .where(
            col(Member.participant_id) == participant_id,
            col(Member.status) == MemberStatus.active,
            col(Shift.status).in_([ShiftStatus.started, ShiftStatus.finishing]),
        )
        .order_by(col(Shift.started_at).desc())
    ).first()
    return (row[0], row[1]) if row else None
