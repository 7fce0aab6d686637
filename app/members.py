"""Members of a shift and their ломбарьерчики (always derived: the count of approved reports)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.models import Report, ReportStatus


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
