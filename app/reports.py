"""A member's report of one day (product.md §2, §3.3–3.5): today's report and skipping it.

Answers are the names of the bot's texts (`templates/bot/<kind>.txt`), as in `app.photos`: the
adapter only sends what the domain decided. Takes a session, never commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import clock, pause_days
from app.days import report_day
from app.models import Member, Report, ReportStatus


def todays_report(session: Session, member: Member, *, lock: bool = False) -> Report | None:
    """The member's report for the day open now (None before the first task or after the last)."""
    query = select(Report).where(
        col(Report.member_id) == member.id, col(Report.task_date) == report_day(clock.now())
    )
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def ask_skip(session: Session, member: Member) -> tuple[str, Report | None]:
    """What to answer when a member asks to skip today: confirm first, or why not."""
    report = todays_report(session, member)
    if report is None:
        return "photo_no_task", None
    if _paused(session, report):
        return "skip_paused", report
    if report.status != ReportStatus.waiting:
        return "skip_not_possible", report
    return "skip_confirm", report


def _paused(session: Session, report: Report) -> bool:
    """Today is inside a pause: nothing to skip (the day never counts as missed)."""
    return report.status == ReportStatus.paused or pause_days.is_paused(
        session, report.member_id, report.task_date
    )


def skip(session: Session, member: Member | None, report_id: int | None, confirmed: bool) -> str:
    """Skip today's report after the member confirmed. Only today's report of this member, and
    only while it still waits for a photo (a guarded UPDATE: a photo that arrived meanwhile wins)."""
    report = session.get(Report, report_id) if member is not None and report_id else None
    if (
        member is None
        or report is None
        or report.member_id != member.id
        or report.task_date != report_day(clock.now())
    ):
        return "skip_too_late"
    if not confirmed:
        return "skip_cancelled"
    if _paused(session, report):
        return "skip_paused"
    changed = session.execute(
        sa.update(Report)
        .where(col(Report.id) == report.id, col(Report.status) == ReportStatus.waiting)
        .values(status=ReportStatus.skipped, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return "skip_done" if changed.rowcount else "skip_too_late"  # type: ignore[attr-defined]
