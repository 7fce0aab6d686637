"""The fast near-duplicate search: pHash bands never miss a pair within the distance limit."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from app import duplicates
from app.images import hamming
from app.models import PhotoFlag, ReportPhoto, ReportStatus
from tests import factories

signed64 = st.integers(-(2**63), 2**63 - 1)


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


@given(
    signed64,
    st.lists(st.integers(0, 63), min_size=0, max_size=duplicates.PHASH_MAX, unique=True),
)
@settings(max_examples=500, deadline=None)
def test_hashes_within_the_limit_share_a_band(value, bits):
    other = _flip(value, bits)
    assert hamming(value, other) == len(bits)
    assert set(duplicates.phash_bands(value)) & set(duplicates.phash_bands(other))


def test_database_search_matches_brute_force(db):
    """On PostgreSQL through the GIN index; on SQLite in Python — both agree with brute force."""
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1, status=ReportStatus.approved)
    rnd = random.Random(5)
    base_p, base_d = rnd.getrandbits(64) - 2**63, rnd.getrandbits(64) - 2**63
    hashes = []
    for day in range(2, 42):
        r = factories.make_report(db, member, day=day, status=ReportStatus.approved, photos=0)
        p = _flip(base_p, rnd.sample(range(64), rnd.randrange(0, 16)))
        d = _flip(base_d, rnd.sample(range(64), rnd.randrange(0, 14)))
        photo = ReportPhoto(
            report_id=r.id, attempt=1, storage_key="k", thumb_key="k", phash=p, dhash=d
        )
        db.add(photo)
        db.flush()
        hashes.append((photo.id, p, d))
    db.commit()
    expected = min(
        (
            (hamming(p, base_p), pid)
            for pid, p, d in hashes
            if hamming(p, base_p) <= duplicates.PHASH_MAX
            and hamming(d, base_d) <= duplicates.DHASH_MAX
        ),
        default=None,
    )
    flag = duplicates.find_flag(
        db,
        shift.id,
        sha256=None,
        file_unique_id=None,
        phash=base_p,
        dhash=base_d,
        exclude_report_id=report.id,
    )
    assert expected is not None  # the data set has near matches
    assert flag is not None and flag.kind == PhotoFlag.near
    assert (flag.distance, flag.photo_id) == expected
