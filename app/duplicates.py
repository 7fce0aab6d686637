"""Duplicate flags for report photos — one function used by the moderation queue and the bot.

A flag is a hint for the curator, never an automatic rejection (a child photographing the same sink
every day looks alike). Rules, measured in tech-notes.md:
- exact: the same SHA-256 or the same Telegram `file_unique_id` as another photo in the shift;
- near: pHash distance ≤ 8 and dHash distance ≤ 10 to the child's own earlier photos or to anyone's
  photo in the same shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col

from app.models import PhotoFlag, Report, ReportPhoto, phash_bands_sql
from app.storage import hamming, media_path, open_image, perceptual_hashes

PHASH_MAX = 8
DHASH_MAX = 10


@dataclass(frozen=True)
class Flag:
    kind: PhotoFlag
    photo_id: int
    distance: int


def _shift_photos(session: Session, shift_id: int, exclude_photo_id: int | None):
    query = (
        sa.select(
            col(ReportPhoto.id),
            col(ReportPhoto.sha256),
            col(ReportPhoto.telegram_file_unique_id),
            col(ReportPhoto.phash),
            col(ReportPhoto.dhash),
        )
        .join(Report, col(Report.id) == col(ReportPhoto.report_id))
        .where(col(Report.shift_id) == shift_id)
    )
    if exclude_photo_id is not None:
        query = query.where(col(ReportPhoto.id) != exclude_photo_id)
    return query


def find_flag(
    session: Session,
    shift_id: int,
    *,
    sha256: str | None,
    file_unique_id: str | None,
    phash: int | None,
    dhash: int | None,
    exclude_photo_id: int | None = None,
    exclude_report_id: int | None = None,
) -> Flag | None:
    """The strongest duplicate flag for a photo with these hashes among the shift's other photos.

    Photos of the same report (earlier attempts) are excluded with `exclude_report_id`: re-sending
    after a decline is expected, not a duplicate.
    """
    base = _shift_photos(session, shift_id, exclude_photo_id)
    if exclude_report_id is not None:
        base = base.where(col(ReportPhoto.report_id) != exclude_report_id)
    exact_terms = []
    if sha256:
        exact_terms.append(col(ReportPhoto.sha256) == sha256)
    if file_unique_id:
        exact_terms.append(col(ReportPhoto.telegram_file_unique_id) == file_unique_id)
    if exact_terms:
        row = session.execute(
            base.where(sa.or_(*exact_terms)).order_by(col(ReportPhoto.id)).limit(1)
        ).first()
        if row is not None:
            return Flag(PhotoFlag.exact, row[0], 0)
    if phash is None or dhash is None:
        return None
    return _nearest(session, base, phash, dhash)


def phash_bands(phash: int) -> list[int]:
    """The same 9 tagged bands as models.phash_bands_sql, computed in Python."""
    return [((phash >> (band * 7)) & (255 if band == 8 else 127)) + band * 256 for band in range(9)]


def _nearest(session: Session, base, phash: int, dhash: int) -> Flag | None:
    if session.get_bind().dialect.name == "postgresql":
        # Candidates share a pHash band (GIN index, pigeonhole: distance ≤ 8 → one of 9 bands is
        # equal); then the exact Hamming distances: XOR, bytes, count the set bits.
        bands: Any = sa.literal_column(phash_bands_sql("report_photo.phash"))
        candidates = bands.op("&&")(sa.cast(sa.literal(phash_bands(phash)), ARRAY(sa.Integer)))
        pd = sa.func.bit_count(sa.func.int8send(col(ReportPhoto.phash).op("#")(phash)))
        dd = sa.func.bit_count(sa.func.int8send(col(ReportPhoto.dhash).op("#")(dhash)))
        query = (
            base.add_columns(pd.label("pd"))
            .where(candidates, pd <= PHASH_MAX, dd <= DHASH_MAX)
            .order_by(pd, col(ReportPhoto.id))
            .limit(1)
        )
        # A parallel plan costs more to start than this index lookup takes (measured).
        session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        row = session.execute(query).first()
        return Flag(PhotoFlag.near, row[0], int(row[-1])) if row is not None else None
    best: Flag | None = None
    for row in session.execute(base.where(col(ReportPhoto.phash).is_not(None))):
        pd_, dd_ = hamming(row[3], phash), hamming(row[4], dhash)
        if pd_ <= PHASH_MAX and dd_ <= DHASH_MAX and (best is None or pd_ < best.distance):
            best = Flag(PhotoFlag.near, row[0], pd_)
    return best


def flag_photo(session: Session, photo: ReportPhoto) -> Flag | None:
    """Compute (if missing) the photo's hashes and its flag, store them on the row, and return the flag."""
    report = session.get(Report, photo.report_id)
    assert report is not None
    if photo.phash is None or photo.dhash is None:
        image = open_image(media_path(photo.thumb_key).read_bytes())
        photo.phash, photo.dhash = perceptual_hashes(image)
    flag = find_flag(
        session,
        report.shift_id,
        sha256=photo.sha256,
        file_unique_id=photo.telegram_file_unique_id,
        phash=photo.phash,
        dhash=photo.dhash,
        exclude_photo_id=photo.id,
        exclude_report_id=photo.report_id,
    )
    for name, value in flag_values(flag).items():
        setattr(photo, name, value)
    session.add(photo)
    return flag


def flag_values(flag: Flag | None) -> dict[str, Any]:
    """The ReportPhoto columns that record a (possibly absent) flag."""
    return {
        "flag": flag.kind if flag else None,
        "flag_photo_id": flag.photo_id if flag else None,
        "flag_distance": flag.distance if flag else None,
        "flags_checked": True,
    }
