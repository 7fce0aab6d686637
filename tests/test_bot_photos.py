"""Photo reports end to end: webhook → pyTelegramBotAPI → fake Bot API download → database → outbox."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from sqlmodel import select

from app import clock
from app.models import OutgoingMessage, PhotoFlag, Report, ReportPhoto, ReportStatus
from tests import factories
from tests.bot_support import deliver, document_update, photo_update, post_update, text_update


@pytest.fixture
def member(db, noon, bot_settings):
    shift = factories.make_shift(db)
    return factories.make_member(db, shift)


def _report(db, member, status=ReportStatus.waiting):
    return factories.make_report(db, member, day=1, status=status)


def _tg(db, member) -> int:
    from app.models import Participant

    return db.get(Participant, member.participant_id).telegram_id


def _answers(db) -> list[str]:
    db.expire_all()
    rows = db.exec(select(OutgoingMessage).order_by(OutgoingMessage.id)).all()
    return [r.kind for r in rows]


def test_photo_goes_to_review_and_the_child_is_told(store, db, bot_client, fake_tg, member):
    report = _report(db, member)
    uid = _tg(db, member)
    data = factories.jpeg_bytes(seed=1)
    r = post_update(bot_client, photo_update(fake_tg, uid, data))
    assert r.status_code == 200 and r.json()["result"] == "processed"
    db.expire_all()
    report = db.get(Report, report.id)
    assert report.status == ReportStatus.reviewing
    assert report.photo_count == 1 and report.submitted_at is not None
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    # the photo and its thumbnail are in the configured storage (the folder or the bucket)
    assert sorted(store.keys()) == sorted([photo.storage_key, photo.thumb_key])
    assert hashlib.sha256(store.get(photo.storage_key)).hexdigest() == photo.sha256
    assert photo.sha256 and photo.phash is not None and photo.flags_checked
    assert photo.telegram_file_unique_id.startswith("uniq-") and photo.flag is None
    # the largest size was downloaded, not the thumbnail
    downloads = [c.params["file_id"] for c in fake_tg.sent("getFile")]
    assert downloads == [photo.telegram_file_id]
    assert _answers(db) == ["photo_received"]
    assert deliver() == 1
    assert "на проверку" in fake_tg.texts(uid)[0]
    # it is in the moderation queue's order: reviewing, oldest submitted first
    queue = db.exec(
        select(Report.id)
        .where(Report.status == ReportStatus.reviewing)
        .order_by(Report.submitted_at, Report.id)
    ).all()
    assert queue == [report.id]


def test_same_photo_again_is_not_an_attempt(db, bot_client, fake_tg, member):
    data = factories.jpeg_bytes(seed=2)
    report = factories.make_report(
        db, member, day=1, status=ReportStatus.declined, photo_bytes=data
    )
    # the declined attempt's bytes, sent again as a new Telegram file
    uid = _tg(db, member)
    r = post_update(bot_client, photo_update(fake_tg, uid, data))
    assert r.status_code == 200
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 1
    assert db.get(Report, report.id).status == ReportStatus.declined
    assert _answers(db) == ["photo_already_sent"]


def test_same_telegram_file_is_recognised_without_download(db, bot_client, fake_tg, member):
    _report(db, member)
    uid = _tg(db, member)
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=3))
    post_update(bot_client, update)
    again = dict(update, update_id=update["update_id"] + 1)
    fake_tg.reset()
    post_update(bot_client, again)
    assert fake_tg.sent("getFile") == []
    assert _answers(db) == ["photo_received", "photo_already_sent"]


def test_reencoded_copy_of_another_childs_photo_is_flagged(db, bot_client, fake_tg, member):
    shift_id = member.shift_id
    from app.models import Shift

    other = factories.make_member(db, db.get(Shift, shift_id))
    original = factories.jpeg_bytes(seed=11, size=(1280, 960))
    factories.make_report(db, other, day=1, status=ReportStatus.approved, photo_bytes=original)
    report = _report(db, member)
    image = Image.open(io.BytesIO(original)).resize((960, 720))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60)
    post_update(bot_client, photo_update(fake_tg, _tg(db, member), out.getvalue()))
    db.expire_all()
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    assert photo.flag == PhotoFlag.near and photo.flag_photo_id is not None
    assert db.get(Report, report.id).status == ReportStatus.reviewing  # flagged, not rejected


def test_exact_copy_of_another_childs_photo_is_flagged_exact(db, bot_client, fake_tg, member):
    from app.models import Shift

    other = factories.make_member(db, db.get(Shift, member.shift_id))
    original = factories.jpeg_bytes(seed=12)
    factories.make_report(db, other, day=1, status=ReportStatus.reviewing, photo_bytes=original)
    report = _report(db, member)
    post_update(bot_client, photo_update(fake_tg, _tg(db, member), original))
    db.expire_all()
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    assert photo.flag == PhotoFlag.exact
    assert _answers(db) == ["photo_received"]


def test_pdf_document_is_kindly_refused(db, bot_client, fake_tg, member):
    report = _report(db, member)
    update = document_update(
        fake_tg, _tg(db, member), b"%PDF-1.4 hello", "application/pdf", "a.pdf"
    )
    assert post_update(bot_client, update).status_code == 200
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 0
    assert _answers(db) == ["photo_not_image"]
    assert fake_tg.sent("getFile") == []


def test_png_document_counts_as_a_photo(db, bot_client, fake_tg, member):
    report = _report(db, member)
    image = Image.new("RGB", (300, 200), (10, 200, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    post_update(bot_client, document_update(fake_tg, _tg(db, member), out.getvalue(), "image/png"))
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.reviewing


def test_a_failure_after_storing_leaves_no_object(
    store, db, bot_client, fake_tg, member, monkeypatch
):
    from app import duplicates

    report = _report(db, member)

    def broken(*args, **kwargs):
        raise RuntimeError("the duplicate check broke")

    # flag_values runs after the photo is stored, on both databases (the flag itself is found by
    # one query on PostgreSQL and by find_flag on SQLite).
    monkeypatch.setattr(duplicates, "flag_values", broken)
    update = photo_update(fake_tg, _tg(db, member), factories.jpeg_bytes(seed=8))
    assert post_update(bot_client, update).json()["result"] == "failed"
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 0
    assert list(store.keys()) == []


def test_fake_image_document_is_refused_and_nothing_written(store, db, bot_client, fake_tg, member):
    report = _report(db, member)
    post_update(
        bot_client, document_update(fake_tg, _tg(db, member), b"not a jpeg at all", "image/jpeg")
    )
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.waiting
    assert db.exec(select(ReportPhoto)).all() == []
    assert _answers(db) == ["photo_not_image"]
    assert list(store.keys()) == []


def test_download_failure_is_kind_and_writes_nothing(db, bot_client, fake_tg, member):
    report = _report(db, member)
    update = photo_update(fake_tg, _tg(db, member), factories.jpeg_bytes(seed=5))
    fake_tg.fail("getFile", 500)
    assert post_update(bot_client, update).status_code == 200
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.waiting
    assert _answers(db) == ["photo_download_failed"]


def test_download_over_the_limit_is_stopped_even_when_no_size_is_declared(
    db, bot_client, fake_tg, member, monkeypatch
):
    from app import photos

    report = _report(db, member)
    data = factories.jpeg_bytes(seed=6)
    update = photo_update(fake_tg, _tg(db, member), data)
    for size in update["message"]["photo"]:
        size.pop("file_size", None)
    fake_tg.hide_file_sizes = True
    monkeypatch.setattr(photos, "MAX_DOWNLOAD_BYTES", len(data) - 1)
    try:
        assert post_update(bot_client, update).status_code == 200
    finally:
        fake_tg.hide_file_sizes = False
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.waiting
    assert db.exec(select(ReportPhoto)).all() == []
    assert _answers(db) == ["photo_too_big"]
    assert [c for c in fake_tg.calls if c.method == "download"]  # it was the download that stopped


def test_album_first_photo_counts_rest_get_one_note(db, bot_client, fake_tg, member):
    report = _report(db, member)
    uid = _tg(db, member)
    for seed in (21, 22, 23):
        update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=seed), media_group_id="g1")
        assert post_update(bot_client, update).status_code == 200
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 1
    assert sorted(_answers(db)) == ["album_note", "photo_received"]


def test_sticker_and_text_get_a_hint(db, bot_client, fake_tg, member):
    uid = _tg(db, member)
    sticker = {
        "file_id": "st",
        "file_unique_id": "stu",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    from tests.bot_support import message_update

    post_update(bot_client, message_update(uid, sticker=sticker))
    post_update(bot_client, text_update(uid, "привет"))
    assert _answers(db) == ["hint", "hint"]
    deliver()
    assert all("фото" in t for t in fake_tg.texts(uid))


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (ReportStatus.skipped, "photo_day_skipped"),
        (ReportStatus.reviewing, "photo_already_reviewing"),
        (ReportStatus.approved, "photo_already_approved"),
    ],
)
def test_report_states_are_explained(db, bot_client, fake_tg, member, status, answer):
    report = _report(db, member, status)
    before = db.get(Report, report.id).photo_count
    post_update(bot_client, photo_update(fake_tg, _tg(db, member), factories.jpeg_bytes(seed=31)))
    db.expire_all()
    assert db.get(Report, report.id).photo_count == before
    assert _answers(db) == [answer]


def test_attempts_over(db, bot_client, fake_tg, member):
    report = factories.make_report(db, member, day=1, status=ReportStatus.declined, photos=3)
    post_update(bot_client, photo_update(fake_tg, _tg(db, member), factories.jpeg_bytes(seed=41)))
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 3
    assert _answers(db) == ["photo_attempts_over"]


def test_declined_report_takes_a_new_attempt(db, bot_client, fake_tg, member, admin):
    report = _report(db, member, ReportStatus.declined)
    report.decline_reason, report.decided_by_id = "Фото размыто", admin.id
    report.decided_at = clock.now()
    db.add(report)
    db.commit()
    post_update(bot_client, photo_update(fake_tg, _tg(db, member), factories.jpeg_bytes(seed=42)))
    db.expire_all()
    report = db.get(Report, report.id)
    assert report.status == ReportStatus.reviewing and report.photo_count == 2
    # the new attempt is undecided: the old decision lives on in the audit log only
    assert (report.decided_at, report.decided_by_id, report.decline_reason) == (None, None, None)


def test_no_task_and_not_member_answer_without_downloading(db, bot_client, fake_tg, member):
    uid = _tg(db, member)  # a member, but no report today
    post_update(bot_client, photo_update(fake_tg, uid, factories.jpeg_bytes(seed=51)))
    post_update(bot_client, photo_update(fake_tg, 999_999, factories.jpeg_bytes(seed=52)))
    stranger = factories.make_participant(db)
    post_update(
        bot_client, photo_update(fake_tg, stranger.telegram_id, factories.jpeg_bytes(seed=53))
    )
    assert _answers(db) == ["photo_no_task", "photo_not_participant", "photo_not_member"]
    assert fake_tg.sent("getFile") == []


@pytest.mark.parametrize(
    ("new_status", "answer"),
    [
        (ReportStatus.skipped, "photo_day_skipped"),
        (ReportStatus.reviewing, "photo_already_reviewing"),
    ],
)
def test_report_changed_while_the_photo_downloaded_gets_an_answer_from_the_new_state(
    store, db, member, new_status, answer
):
    """The report changes between reading it and accepting the photo (the family skipped the day
    in another update, or another photo won): nothing is written, no file is left, the family hears
    the new state — not silence."""
    import sqlalchemy as sa

    from app import photos, storage
    from app.db import session_scope

    report = _report(db, member)
    before = set(storage.backend().keys())
    with session_scope() as session:
        found = photos.situation(session, _tg(db, member), "uniq-race")
        assert found.report is not None and found.report.status == ReportStatus.waiting

        def download(_incoming):
            # Meanwhile the report moves on (the same transaction sees it, as a competing
            # writer's committed change would be seen by the guarded UPDATE).
            session.execute(
                sa.update(Report)
                .where(Report.id == report.id)
                .values(status=new_status)
                .execution_options(synchronize_session=False)  # `found` keeps the old state
            )
            return factories.jpeg_bytes(seed=71)

        outcome = photos.receive(
            session, found, photos.Incoming("file-race", "uniq-race"), download
        )
    assert outcome.kind == answer and outcome.photo_id is None
    db.expire_all()
    assert db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).all() == []
    assert db.get(Report, report.id).photo_count == 0
    assert set(storage.backend().keys()) == before


# --- what is stored carries no metadata (issue 10: GPS of the child's home) ---------------------


def _staff_client(bot_client, bot_settings, admin):
    from starlette.testclient import TestClient

    from tests.conftest import login

    staff = TestClient(bot_client.app, base_url=bot_settings.application_url)
    staff.__enter__()
    assert login(staff, admin).status_code == 303
    return staff


@pytest.mark.parametrize(("as_document", "orientation"), [(False, None), (True, None), (True, 6)])
def test_gps_exif_reaches_neither_storage_nor_media_nor_export(
    db, bot_client, bot_settings, fake_tg, member, admin, as_document, orientation
):
    import zipfile

    from app import storage
    from tests.image_support import metadata_in, phone_jpeg

    report = _report(db, member)
    uid = _tg(db, member)
    data = phone_jpeg(seed=9, orientation=orientation)  # GPS, camera, XMP, IPTC, comment, trailer
    assert len(metadata_in(data)) > 3
    update = (
        document_update(fake_tg, uid, data, "image/jpeg", "IMG_0001.JPG")
        if as_document
        else photo_update(fake_tg, uid, data)
    )
    assert post_update(bot_client, update).json()["result"] == "processed"
    db.expire_all()
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    assert metadata_in(storage.get(photo.storage_key)) == []
    assert metadata_in(storage.get(photo.thumb_key)) == []
    import hashlib

    assert photo.sha256 == hashlib.sha256(data).hexdigest()  # of what the family sent
    if orientation == 6:
        assert (photo.width, photo.height) == (960, 1280)  # stored upright
    staff = _staff_client(bot_client, bot_settings, admin)
    try:
        for key in (photo.storage_key, photo.thumb_key):
            response = staff.get(f"/media/{key}")
            assert response.status_code == 200 and metadata_in(response.content) == []
        export = staff.get(f"/participants/{member.participant_id}/export")
        assert export.status_code == 200
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            pictures = [n for n in archive.namelist() if n.lower().endswith(".jpg")]
            assert pictures
            for name in pictures:
                assert metadata_in(archive.read(name)) == [], name
    finally:
        staff.__exit__(None, None, None)


def test_heic_document_is_accepted_and_stored_as_jpeg(db, bot_client, fake_tg, member):
    from app import storage
    from tests.image_support import heic_bytes, metadata_in

    report = _report(db, member)
    update = document_update(fake_tg, _tg(db, member), heic_bytes(seed=3), "image/heic", "a.HEIC")
    assert post_update(bot_client, update).json()["result"] == "processed"
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.reviewing
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    body = storage.get(photo.storage_key)
    assert Image.open(io.BytesIO(body)).format == "JPEG" and metadata_in(body) == []
    assert _answers(db) == ["photo_received"]


@pytest.mark.parametrize("mime", ["image/gif", "image/jpeg"])
def test_a_gif_gets_the_please_send_a_photo_answer(db, bot_client, fake_tg, member, mime):
    report = _report(db, member)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(out, "GIF")
    update = document_update(fake_tg, _tg(db, member), out.getvalue(), mime, "a.gif")
    assert post_update(bot_client, update).status_code == 200
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 0
    assert _answers(db) == ["photo_not_image"]
