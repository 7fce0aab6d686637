"""Member buttons and chat state: /start status, balance plurals, skip with confirm, blocked flag,
and polling mode through the same processing path."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.bot import polling
from app.models import OutgoingMessage, Participant, Report, ReportStatus, TelegramUpdate
from app.settings import get_settings
from tests import factories
from tests.bot_support import (
    callback_update,
    deliver,
    next_update_id,
    photo_update,
    post_update,
    text_update,
    user,
)


@pytest.fixture
def member(db, noon, bot_settings):
    shift = factories.make_shift(db)
    return factories.make_member(db, shift)


def _uid(db, member) -> int:
    return db.get(Participant, member.participant_id).telegram_id


@pytest.mark.parametrize(
    ("approved", "text"),
    [
        (0, "0 ломбарьерчиков"),
        (1, "1 ломбарьерчик"),
        (2, "2 ломбарьерчика"),
        (5, "5 ломбарьерчиков"),
    ],
)
def test_balance_with_russian_plurals(db, bot_client, fake_tg, member, approved, text):
    for day in range(2, 2 + approved):
        factories.make_report(db, member, day=day, status=ReportStatus.approved, photos=0)
    uid = _uid(db, member)
    post_update(bot_client, text_update(uid, "Баланс ломбарьеров"))
    deliver()
    assert text in fake_tg.texts(uid)[0]


def test_start_for_a_member_shows_status_and_keyboard(db, bot_client, fake_tg, member):
    factories.make_report(db, member, day=1)
    uid = _uid(db, member)
    post_update(bot_client, text_update(uid, "/start"))
    deliver()
    call = fake_tg.sent("sendMessage")[0]
    assert "ты участник смены" in call.params["text"] and "Жду твоё фото" in call.params["text"]
    assert "keyboard" in json.loads(call.params["reply_markup"])


def test_skip_asks_then_skips_and_edits_the_message(db, bot_client, fake_tg, member):
    report = factories.make_report(db, member, day=1)
    uid = _uid(db, member)
    post_update(bot_client, text_update(uid, "Пропустить задание"))
    deliver()
    confirm = fake_tg.sent("sendMessage")[0]
    buttons = json.loads(confirm.params["reply_markup"])["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Пропустить", "Отмена"]
    post_update(bot_client, callback_update(uid, buttons[0]["callback_data"], message_id=321))
    deliver()
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.skipped
    edit = fake_tg.sent("editMessageText")[0]
    assert edit.params["message_id"] == "321" and "пропущено" in edit.params["text"]
    assert fake_tg.sent("answerCallbackQuery")
    # pressing again is harmless
    post_update(bot_client, callback_update(uid, buttons[0]["callback_data"]))
    db.expire_all()
    kinds = db.exec(select(OutgoingMessage.kind).order_by(OutgoingMessage.id)).all()
    assert kinds[-1] == "skip_too_late"


def test_skip_cancel_keeps_the_task(db, bot_client, fake_tg, member):
    report = factories.make_report(db, member, day=1)
    uid = _uid(db, member)
    post_update(bot_client, callback_update(uid, f"skip:no:{report.id}"))
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.waiting
    assert db.exec(select(OutgoingMessage.kind)).all() == ["skip_cancelled"]


def test_someone_elses_report_cannot_be_skipped(db, bot_client, member):
    report = factories.make_report(db, member, day=1)
    other = factories.make_participant(db)
    post_update(bot_client, callback_update(other.telegram_id, f"skip:yes:{report.id}"))
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.waiting


def test_skip_is_refused_after_a_photo(db, bot_client, fake_tg, member):
    factories.make_report(db, member, day=1, status=ReportStatus.reviewing)
    post_update(bot_client, text_update(_uid(db, member), "Пропустить задание"))
    db.expire_all()
    assert db.exec(select(OutgoingMessage.kind)).all() == ["skip_not_possible"]


def _chat_member(uid: int, status: str) -> dict:
    return {
        "update_id": next_update_id(),
        "my_chat_member": {
            "chat": {"id": uid, "type": "private"},
            "from": user(uid),
            "date": 1,
            "old_chat_member": {"user": user(123456), "status": "member"},
            "new_chat_member": {"user": user(123456), "status": status},
        },
    }


def test_blocking_and_unblocking_the_bot(db, bot_client, member):
    uid = _uid(db, member)
    post_update(bot_client, _chat_member(uid, "kicked"))
    db.expire_all()
    assert db.get(Participant, member.participant_id).is_bot_blocked is True
    post_update(bot_client, _chat_member(uid, "member"))
    db.expire_all()
    assert db.get(Participant, member.participant_id).is_bot_blocked is False
    post_update(bot_client, _chat_member(uid, "kicked"))
    post_update(bot_client, text_update(uid, "привет"))  # writing again unblocks too
    db.expire_all()
    assert db.get(Participant, member.participant_id).is_bot_blocked is False


def test_polling_uses_the_same_path_and_dedupe(db, bot_client, fake_tg, member):
    report = factories.make_report(db, member, day=1)
    uid = _uid(db, member)
    photo = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=81))
    start = text_update(uid, "/start")
    post_update(bot_client, photo)  # already delivered by webhook
    fake_tg.updates.extend([photo, start])
    offset = polling.poll_once(get_settings(), 0, timeout=0)
    assert offset == start["update_id"] + 1
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 1
    assert len(db.exec(select(TelegramUpdate)).all()) == 2
    kinds = db.exec(select(OutgoingMessage.kind).order_by(OutgoingMessage.id)).all()
    assert kinds == ["photo_received", "start_member"]
    # the next round asks Telegram from the new offset
    assert polling.poll_once(get_settings(), offset, timeout=0) == offset
    assert fake_tg.sent("getUpdates")[-1].params["offset"] == str(offset)


def test_web_app_polls_and_sends_in_the_background(db, bot_settings, fake_tg, member):
    """BOT_WEBHOOK_MODE=false: the web app's lifespan runs polling and the outbox sender."""
    import time

    from starlette.testclient import TestClient

    from app.main import create_app

    factories.make_report(db, member, day=1)
    uid = _uid(db, member)
    fake_tg.updates.append(text_update(uid, "Баланс ломбарьеров"))
    app = create_app(bot_settings.with_overrides(bot_webhook_mode=False))
    with TestClient(app):
        deadline = time.monotonic() + 15
        while not fake_tg.texts(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
    # It asked whether a webhook is set; none is, so there was nothing to delete.
    assert fake_tg.sent("getWebhookInfo") and not fake_tg.sent("deleteWebhook")
    assert "0 ломбарьерчиков" in fake_tg.texts(uid)[0]
