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


def _old_hashes(data: bytes) -> tuple[int, int]:
    """The hashes as the earlier code stored them: imagehash on Pillow's draft-mode thumbnail."""
    import io

    import imagehash
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (480, 480))
    image.load()
    image = ImageOps.exif_transpose(image) or image
    image.thumbnail((480, 480))
    values = [int(str(h), 16) for h in (imagehash.phash(image), imagehash.dhash(image))]
    p, d = (v - (1 << 64) if v >= 1 << 63 else v for v in values)
    return p, d


def test_old_photo_and_its_new_near_copy_still_flag(db, bot_client, fake_tg, noon):
    """The decode changed (one libjpeg-turbo decode at 3/8 scale instead of a draft-mode decode and
    a bicubic resize) but not the hash algorithms: the values of one picture differ by a bit or two
    at most, so a photo stored by the earlier code still flags its re-encoded copy sent now."""
    import io

    from PIL import Image
    from sqlmodel import select

    from app.models import Participant, Shift
    from tests.bot_support import photo_update, post_update
    from tests.image_support import picture

    shift = factories.make_shift(db)
    old_member = factories.make_member(db, shift)
    member = factories.make_member(db, db.get(Shift, shift.id))
    out = io.BytesIO()
    picture(21).save(out, "JPEG", quality=85)
    original = out.getvalue()
    earlier = factories.make_report(db, old_member, day=1, status=ReportStatus.approved, photos=0)
    old_p, old_d = _old_hashes(original)
    db.add(
        ReportPhoto(
            report_id=earlier.id,
            attempt=1,
            storage_key="reports/old.jpg",
            thumb_key="reports/old_t.jpg",
            sha256="0" * 64,
            phash=old_p,
            dhash=old_d,
            flags_checked=True,
        )
    )
    report = factories.make_report(db, member, day=1)
    db.commit()
    copy = io.BytesIO()
    Image.open(io.BytesIO(original)).resize((960, 720)).save(copy, "JPEG", quality=60)
    uid = db.get(Participant, member.participant_id).telegram_id
    assert post_update(bot_client, photo_update(fake_tg, uid, copy.getvalue())).status_code == 200
    db.expire_all()
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    assert photo.flag == PhotoFlag.near
    assert hamming(photo.phash, old_p) <= duplicates.PHASH_MAX
