"""Photo retention (product.md §7): photos of shifts finished more than PHOTO_RETENTION_DAYS ago
are deleted — the files and their rows. Reports and results stay; only the pictures go."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from app.models import Report, ReportPhoto, Shift, ShiftStatus
from app.settings import get_settings

BATCH = 5000  # photos per run: a large backlog is worked off over several days, never in one huge transaction


def purge_photos(session: Session, today: date, limit: int = BATCH) -> list[str]:
    """Delete the rows of expired photos; return their file keys for deletion after the commit."""
    cutoff = today - timedelta(days=get_settings().photo_retention_days)
    expired_shifts = sa.select(col(Shift.id)).where(
        col(Shift.status).in_([ShiftStatus.finished, ShiftStatus.cancelled]),
        col(Shift.finished_at) < cutoff,
    )
    rows = session.execute(
        sa.select(col(ReportPhoto.id), col(ReportPhoto.storage_key), col(ReportPhoto.thumb_key))
        .join(Report, col(Report.id) == col(ReportPhoto.report_id))
        .where(col(Report.shift_id).in_(expired_shifts))
        .order_by(col(ReportPhoto.id))
        .limit(limit)
    ).all()
    if not rows:
        return []
    session.execute(sa.delete(ReportPhoto).where(col(ReportPhoto.id).in_([row[0] for row in rows])))
    return [key for row in rows for key in (row[1], row[2])]
