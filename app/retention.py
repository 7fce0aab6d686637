"""Photo retention (product.md §7): photos of shifts finished more than PHOTO_RETENTION_DAYS ago
are deleted — their rows now, their objects through the deletion queue (app.media) queued in the
same transaction. Reports and results stay; only the pictures go."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from app import media
from app.models import Report, ReportPhoto, Shift, ShiftStatus
from app.settings import get_settings

BATCH = 5000  # photos per run: a large backlog is worked off over several days, never in one huge transaction


def purge_photos(session: Session, today: date, limit: int = BATCH) -> int:
    """Delete the rows of expired photos and queue their objects; returns how many photos."""
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
        return 0
    session.execute(sa.delete(ReportPhoto).where(col(ReportPhoto.id).in_([row[0] for row in rows])))
    media.delete_later(session, [key for row in rows for key in (row[1], row[2])])
    return len(rows)
