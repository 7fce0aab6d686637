"""Duplicate flags for report photos — one function used by the moderation queue and the bot.

A flag is a hint for the curator, never an automatic rejection (a child photographing the same sink
every day looks alike). Rules, measured in tech-notes.md:
- exact: the same SHA-256 or the same Telegram `file_unique_id` as another photo in the shift;
- near: pHash distance ≤ 8 and dHash distance ≤ 10 to the child's own earlier photos or to anyone's
  photo in the same shift.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col

from app import storage
from app.db import is_postgres
from app.images import hamming, open_image, perceptual_hashes
from app.models import PhotoFlag, Report, ReportPhoto, phash_bands_sql

PHASH_MAX = 8
DHASH_MAX = 10


@dataclass(frozen=True)
class Flag:
    kind: PhotoFlag
    photo_id: int
    distance: int


def _in_shift(*columns: Any) -> Any:
    """`columns` of the shift's photos except the excluded photo and report (parameters
    `shift_id`, `exclude_photo_id`, `exclude_report_id`; ids are positive, so None excludes none)."""
    return (
        sa.select(*columns)
        .join(Report, col(Report.id) == col(ReportPhoto.report_id))
        .where(
            col(Report.shift_id) == sa.bindparam("shift_id", type_=sa.Integer),
            col(ReportPhoto.id)
            != sa.func.coalesce(sa.bindparam("exclude_photo_id", type_=sa.Integer), 0),
            col(ReportPhoto.report_id)
            != sa.func.coalesce(sa.bindparam("exclude_report_id", type_=sa.Integer), 0),
        )
    )


# The statements are built once: building them costs more than these index lookups take.


@functools.cache
def _exact_query() -> Any:
    """Parameters as _in_shift, plus `sha256` and `unique_id` (None matches nothing)."""
    return (
        _in_shift(col(ReportPhoto.id))
        .where(
            sa.or_(
                col(ReportPhoto.sha256) == sa.bindparam("sha256", type_=sa.String),
                col(ReportPhoto.telegram_file_unique_id)
                == sa.bindparam("unique_id", type_=sa.String),
            )
        )
        .order_by(col(ReportPhoto.id))
        .limit(1)
    )


@functools.cache
def _near_query_pg() -> Any:
    """Candidates share a pHash band (GIN index, pigeonhole: distance ≤ 8 → one of 9 bands is
    equal); then the exact Hamming distances: XOR, bytes, count the set bits. Parameters as
    _in_shift, plus `bands`, `phash`, `dhash`."""
    bands: Any = sa.literal_column(phash_bands_sql("report_photo.phash"))
    wanted = sa.cast(sa.bindparam("bands", type_=ARRAY(sa.Integer)), ARRAY(sa.Integer))
    xor_p = col(ReportPhoto.phash).op("#")(sa.bindparam("phash", type_=sa.BigInteger))
    xor_d = col(ReportPhoto.dhash).op("#")(sa.bindparam("dhash", type_=sa.BigInteger))
    pd = sa.func.bit_count(sa.func.int8send(xor_p))
    dd = sa.func.bit_count(sa.func.int8send(xor_d))
    return (
        _in_shift(col(ReportPhoto.id), pd.label("pd"))
        .where(bands.op("&&")(wanted), pd <= PHASH_MAX, dd <= DHASH_MAX)
        .order_by(pd, col(ReportPhoto.id))
        .limit(1)
    )


@functools.cache
def _hashes_query() -> Any:
    return _in_shift(col(ReportPhoto.id), col(ReportPhoto.phash), col(ReportPhoto.dhash)).where(
        col(ReportPhoto.phash).is_not(None), col(ReportPhoto.dhash).is_not(None)
    )


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
    params: dict[str, Any] = {
        "shift_id": shift_id,
        "exclude_photo_id": exclude_photo_id,
        "exclude_report_id": exclude_report_id,
    }
    if sha256 or file_unique_id:
        row = session.execute(
            _exact_query(),
            {**params, "sha256": sha256 or None, "unique_id": file_unique_id or None},
        ).first()
        if row is not None:
            return Flag(PhotoFlag.exact, row[0], 0)
    if phash is None or dhash is None:
        return None
    return _nearest(session, params, phash, dhash)


def phash_bands(phash: int) -> list[int]:
    """The same 9 tagged bands as models.phash_bands_sql, computed in Python."""
    return [((phash >> (band * 7)) & (255 if band == 8 else 127)) + band * 256 for band in range(9)]


def _nearest(session: Session, params: dict[str, Any], phash: int, dhash: int) -> Flag | None:
    if is_postgres(session):
        # A parallel plan costs more to start than this index lookup takes (measured).
        session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        row = session.execute(
            _near_query_pg(),
            {**params, "bands": phash_bands(phash), "phash": phash, "dhash": dhash},
        ).first()
        return Flag(PhotoFlag.near, row[0], int(row[1])) if row is not None else None
    best: Flag | None = None
    for photo_id, other_p, other_d in session.execute(_hashes_query(), params):
        pd_, dd_ = hamming(other_p, phash), hamming(other_d, dhash)
        if pd_ <= PHASH_MAX and dd_ <= DHASH_MAX and (best is None or pd_ < best.distance):
            best = Flag(PhotoFlag.near, photo_id, pd_)
    return best


def flag_photo(session: Session, photo: ReportPhoto) -> Flag | None:
    """Compute (if missing) the photo's hashes and its flag, store them on the row, and return the flag."""
    report = session.get(Report, photo.report_id)
    assert report is not None
    if photo.phash is None or photo.dhash is None:
        image = open_image(storage.get(photo.thumb_key))
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
