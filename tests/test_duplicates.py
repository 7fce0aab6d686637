"""Duplicate flags: exact copies and near-duplicates are flagged, unrelated photos are not."""

import io

from PIL import Image

from app import duplicates
from app.models import PhotoFlag, ReportPhoto, ReportStatus
from tests import factories


def _photo(db, report):
    return db.exec(ReportPhoto.__table__.select().where(ReportPhoto.report_id == report.id)).first()


def _reencoded(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60)
    return out.getvalue()


def test_exact_near_and_unrelated(db):
    shift = factories.make_shift(db)
    original = factories.jpeg_bytes(seed=42)
    first = factories.make_report(
        db,
        factories.make_member(db, shift),
        day=1,
        status=ReportStatus.approved,
        photo_bytes=original,
    )
    copy = factories.make_report(
        db,
        factories.make_member(db, shift),
        day=1,
        status=ReportStatus.reviewing,
        photo_bytes=original,
    )
    near = factories.make_report(
        db,
        factories.make_member(db, shift),
        day=1,
        status=ReportStatus.reviewing,
        photo_bytes=_reencoded(original),
    )
    other = factories.make_report(
        db,
        factories.make_member(db, shift),
        day=1,
        status=ReportStatus.reviewing,
        photo_bytes=factories.jpeg_bytes(seed=7),
    )
    first_photo = _photo(db, first)

    flag = duplicates.flag_photo(db, db.get(ReportPhoto, _photo(db, copy).id))
    assert flag is not None and flag.kind == PhotoFlag.exact and flag.photo_id == first_photo.id

    flag = duplicates.flag_photo(db, db.get(ReportPhoto, _photo(db, near).id))
    assert (
        flag is not None and flag.kind == PhotoFlag.near and flag.distance <= duplicates.PHASH_MAX
    )

    assert duplicates.flag_photo(db, db.get(ReportPhoto, _photo(db, other).id)) is None
    db.commit()
    stored = db.get(ReportPhoto, _photo(db, other).id)
    assert stored.flags_checked and stored.flag is None


def test_photos_of_another_shift_are_not_compared(db):
    from app.models import ShiftStatus

    one = factories.make_shift(db, status=ShiftStatus.finished, days=10)
    two = factories.make_shift(db)
    data = factories.jpeg_bytes(seed=3)
    factories.make_report(
        db, factories.make_member(db, one), status=ReportStatus.approved, photo_bytes=data
    )
    report = factories.make_report(
        db, factories.make_member(db, two), status=ReportStatus.reviewing, photo_bytes=data
    )
    assert duplicates.flag_photo(db, db.get(ReportPhoto, _photo(db, report).id)) is None
