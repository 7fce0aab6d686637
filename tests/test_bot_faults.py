"""No lost photo: a database or storage fault mid-update is answered 503 with nothing kept (Telegram
delivers the update again, polling keeps its offset); only a bug is recorded as failed, shown on
/health and on the staff page, and retried from there. Bad bodies: too deep → 400, too big → 413."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
import sqlalchemy as sa
from sqlmodel import select
from starlette.testclient import TestClient

from app import storage
from app.models import (
    OutgoingMessage,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    TelegramUpdate,
    UpdateStatus,
)
from tests import factories
from tests.bot_support import next_update_id, photo_update, post_update
from tests.conftest import LiveServer, csrf_token, login


@pytest.fixture
def family(db, noon, bot_settings):
    """A member with today's report waiting for a photo; (report id, telegram id)."""
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1)
    return report.id, db.get(Participant, member.participant_id).telegram_id


def _state(db, report_id: int, update_id: int):
    db.expire_all()
    report = db.get(Report, report_id)
    photos = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report_id)).all()
    answers = db.exec(select(OutgoingMessage.kind)).all()
    return report.status, len(photos), db.get(TelegramUpdate, update_id), answers


def _wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    """Poll `condition` until it returns something truthy (a deadline, not a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        threading.Event().wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_app_backend_killed_while_waiting_on_a_lock_is_503_then_redelivered(
    db, engine, is_pg, bot_client, fake_tg, family
):
    """The connection is terminated while the handler waits on the report's row lock: nothing of
    the update is kept (no 'failed' row, no photo, no files), the webhook answers 503, and
    Telegram's redelivery is processed normally."""
    if not is_pg:
        pytest.skip("terminating a backend is a PostgreSQL test")
    report_id, uid = family
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=81))
    files_before = set(storage.backend().keys())
    responses = []
    watcher = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as holder, watcher:
        holder.execute(
            sa.text("SELECT id FROM report WHERE id = :id FOR UPDATE"), {"id": report_id}
        )
        holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        poster = threading.Thread(target=lambda: responses.append(post_update(bot_client, update)))
        poster.start()
        # (pg_stat_activity is read outside a transaction: inside one it is a frozen snapshot)
        waiting = _wait_for(
            lambda: watcher.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid NOT IN (pg_backend_pid(), :holder) AND wait_event_type = 'Lock'"
                ),
                {"holder": holder_pid},
            ).scalar(),
            what="the app's backend to wait on the lock",
        )
        watcher.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting})
        poster.join(timeout=60)
        holder.rollback()
    assert responses and responses[0].status_code == 503
    assert _state(db, report_id, update["update_id"]) == (ReportStatus.waiting, 0, None, [])
    assert set(storage.backend().keys()) == files_before
    again = post_update(bot_client, update)
    assert again.status_code == 200 and again.json()["result"] == "processed"
    status, photos, row, answers = _state(db, report_id, update["update_id"])
    assert (status, photos, row.status, answers) == (
        ReportStatus.reviewing,
        1,
        UpdateStatus.processed,
        ["photo_received"],
    )


class _BrokenStore(storage.LocalStorage):
    """A media folder that cannot be written (as when the disk is full or mounted read-only)."""

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        raise OSError(30, "Read-only file system")


def test_storage_fault_mid_update_is_503_then_redelivered(
    db, bot_client, fake_tg, family, tmp_path
):
    report_id, uid = family
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=82))
    previous = storage.set_backend(_BrokenStore(tmp_path / "media"))
    try:
        response = post_update(bot_client, update)
    finally:
        storage.set_backend(previous)
    assert response.status_code == 503
    assert _state(db, report_id, update["update_id"]) == (ReportStatus.waiting, 0, None, [])
    again = post_update(bot_client, update)
    assert again.json()["result"] == "processed"
    assert _state(db, report_id, update["update_id"])[:2] == (ReportStatus.reviewing, 1)


def test_media_folder_replaced_by_a_file_is_503(db, bot_client, fake_tg, family, tmp_path):
    """The folder cannot be written even by root: it is a file now."""
    report_id, uid = family
    blocker = tmp_path / "media"
    blocker.write_bytes(b"not a folder")
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=83))
    previous = storage.set_backend(storage.LocalStorage(blocker))
    try:
        assert post_update(bot_client, update).status_code == 503
    finally:
        storage.set_backend(previous)
    assert _state(db, report_id, update["update_id"]) == (ReportStatus.waiting, 0, None, [])


def test_polling_keeps_the_offset_on_a_fault_and_processes_the_update_after(
    db, bot_settings, fake_tg, family, tmp_path
):
    from app.bot import polling
    from app.errors import StorageUnavailable

    report_id, uid = family
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=84))
    fake_tg.updates.append(update)
    previous = storage.set_backend(_BrokenStore(tmp_path / "media"))
    try:
        with pytest.raises(StorageUnavailable):
            polling.poll_once(bot_settings, 0, timeout=0)
    finally:
        storage.set_backend(previous)
    assert _state(db, report_id, update["update_id"])[:3] == (ReportStatus.waiting, 0, None)
    assert polling.poll_once(bot_settings, 0, timeout=0) == update["update_id"] + 1
    assert _state(db, report_id, update["update_id"])[:2] == (ReportStatus.reviewing, 1)


def test_a_bug_is_recorded_shown_on_health_and_retried_from_the_staff_page(
    db, bot_client, bot_settings, fake_tg, family, admin, monkeypatch
):
    from app import photos

    report_id, uid = family
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=85))
    update["message"]["from"]["first_name"] = "Секретина"
    real = photos.receive

    def broken(*args, **kwargs):
        raise RuntimeError("a bug with Секретина in its message")

    monkeypatch.setattr(photos, "receive", broken)
    response = post_update(bot_client, update)
    assert response.status_code == 200 and response.json()["result"] == "failed"
    assert bot_client.get("/health").json()["updates"] == {"ok": True, "failed": 1}

    # the site runs at APPLICATION_URL (https): the staff session cookie is https-only
    with TestClient(bot_client.app, base_url=bot_settings.application_url) as staff:
        assert login(staff, admin).status_code == 303
        page = staff.get("/updates")
        assert page.status_code == 200
        assert str(update["update_id"]) in page.text and "RuntimeError" in page.text
        assert "Секретина" not in page.text  # neither the payload nor the error's message

        token = csrf_token(staff, "/updates")
        retry = f"/updates/{update['update_id']}/retry"
        again = staff.post(retry, data={"csrf_token": token}, follow_redirects=False)
        assert again.status_code == 303
        assert "снова не обработано" in staff.get("/updates").text

        monkeypatch.setattr(photos, "receive", real)  # the fix is deployed
        staff.post(retry, data={"csrf_token": token}, follow_redirects=False)
        assert "обработано." in staff.get("/updates").text
        assert "Сбоев нет" in staff.get("/updates").text
    status, photos_count, row, _ = _state(db, report_id, update["update_id"])
    assert (status, photos_count, row.status, row.payload) == (
        ReportStatus.reviewing,
        1,
        UpdateStatus.processed,
        {},
    )
    assert bot_client.get("/health").json()["updates"]["failed"] == 0


# --- bad bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deeply_nested_json_is_400(db, bot_client, depth):
    from app.settings import get_settings

    body = b'{"update_id": 5, "message": ' + b"[" * depth + b"]" * depth + b"}"
    response = bot_client.post(
        "/telegram/webhook",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": get_settings().telegram_webhook_secret},
    )
    assert response.status_code == 400
    assert db.exec(select(TelegramUpdate)).all() == []


def test_real_update_nesting_is_fine(db, bot_client, fake_tg, family):
    """A reply to a message with an inline keyboard nests about 8 deep: well within the limit."""
    _, uid = family
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=86))
    update["message"]["reply_to_message"] = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": uid, "type": "private"},
        "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": "skip:no:1"}]]},
    }
    assert post_update(bot_client, update).json()["result"] == "processed"


@pytest.fixture
def live_bot(bot_settings):
    from app.main import create_app

    server = LiveServer(create_app(bot_settings, start_background=False))
    url = server.start()
    yield url
    server.stop()


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_cap_gets_a_413_not_a_reset(db, live_bot, bot_settings, chunked):
    """Over a real socket: the 413 arrives whole while the client is still sending its body."""
    host, port = live_bot.removeprefix("http://").split(":")
    text = "a" * (2 * 1024 * 1024)
    body = json.dumps({"update_id": next_update_id(), "message": {"text": text}}).encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": bot_settings.telegram_webhook_secret,
    }
    if chunked:
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        conn.request("POST", "/telegram/webhook", body=pieces, headers=headers, encode_chunked=True)
    else:
        conn.request("POST", "/telegram/webhook", body=body, headers=headers)
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["ok"] is False
    conn.close()
    assert db.exec(select(TelegramUpdate)).all() == []
