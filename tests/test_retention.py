"""Photos of long-finished shifts are deleted (objects and rows, on the folder and on S3);
everything else stays."""

from datetime import datetime, timedelta

from sqlmodel import select

from app import clock, scheduler, storage
from app.models import JobRun, Report, ReportPhoto, ReportStatus, ShiftStatus
from tests import factories


def _photo_files(db, report):
    photos = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).all()
    return [k for p in photos for k in (p.storage_key, p.thumb_key)]


def test_old_finished_shift_photos_are_deleted_once_a_day(store, db, settings):
    today = clock.local_today()
    old = factories.make_shift(
        db, status=ShiftStatus.finished, start=today - timedelta(days=500), days=30
    )
    recent = factories.make_shift(
        db, status=ShiftStatus.finished, start=today - timedelta(days=60), days=30
    )
    running = factories.make_shift(db, start=today - timedelta(days=5))
    old_report = factories.make_report(
        db, factories.make_member(db, old), 3, ReportStatus.approved, photos=2
    )
    kept = [
        factories.make_report(db, factories.make_member(db, s), 1, ReportStatus.approved)
        for s in (recent, running)
    ]
    old_files = _photo_files(db, old_report)
    assert all(storage.exists(key) for key in old_files)

    now = datetime.combine(today, datetime.min.time(), tzinfo=settings.tz) + timedelta(hours=12)
    assert scheduler.purge_expired_photos(now) == 2
    assert scheduler.purge_expired_photos(now) == 0  # once a day
    assert all(storage.exists(key) for key in old_files)  # queued with the rows…
    scheduler.tick(now)  # …and removed by the worker's next tick
    db.expire_all()
    assert not any(storage.exists(key) for key in old_files)
    assert db.exec(select(ReportPhoto).where(ReportPhoto.report_id == old_report.id)).all() == []
    assert db.get(Report, old_report.id).status == ReportStatus.approved  # results keep counting it
    for report in kept:
        assert all(storage.exists(key) for key in _photo_files(db, report))
    assert db.exec(select(JobRun).where(JobRun.job == "retention")).one().day is not None
