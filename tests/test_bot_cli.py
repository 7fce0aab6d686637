"""`lomaya bot set-webhook|info|replay` against the fake Bot API."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app import cli
from app.models import OutgoingMessage, TelegramUpdate, UpdateStatus
from tests.bot_support import text_update
from tests.fake_telegram import TOKEN


@pytest.fixture
def env(monkeypatch, base_settings, fake_tg, engine):
    values = {
        "DATABASE_URL": base_settings.database_url,
        "DATA_DIR": str(base_settings.data_dir),
        "SECRET_KEY": base_settings.secret_key,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake_tg.url,
        "APPLICATION_URL": "https://lomaya.example.org",
        "BOT_WEBHOOK_MODE": "true",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_set_webhook_and_info(env, fake_tg, settings, capsys):
    cli.main(["bot", "set-webhook"])
    call = fake_tg.sent("setWebhook")[0]
    assert call.params["url"] == "https://lomaya.example.org/telegram/webhook"
    assert call.params["secret_token"] == settings.telegram_webhook_secret
    assert json.loads(call.params["allowed_updates"]) == [
        "message",
        "callback_query",
        "my_chat_member",
    ]
    cli.main(["bot", "info"])
    out = capsys.readouterr().out
    assert "@lomaya_bot" in out and "https://lomaya.example.org/telegram/webhook" in out


def test_set_webhook_and_set_menu_make_my_progress_the_menu_button(env, fake_tg, settings):
    cli.main(["bot", "set-webhook"])
    cli.main(["bot", "set-menu"])
    calls = fake_tg.sent("setChatMenuButton")
    assert len(calls) == 2
    for call in calls:
        assert "chat_id" not in call.params  # the default for every private chat
        assert json.loads(call.params["menu_button"]) == {
            "type": "web_app",
            "text": "Мой прогресс",
            "web_app": {"url": "https://lomaya.example.org/telegram/progress"},
        }


def test_no_token_is_a_clear_message(env, monkeypatch, settings):
    monkeypatch.setenv("BOT_TOKEN", "")
    monkeypatch.setenv("BOT_WEBHOOK_MODE", "false")
    with pytest.raises(SystemExit, match="BOT_TOKEN не задан"):
        cli.main(["bot", "info"])


def test_replay_reprocesses_failed_updates(env, db, settings, capsys):
    update = text_update(5555, "привет", update_id=424242)
    db.add(TelegramUpdate(update_id=424242, payload=update, status=UpdateStatus.failed, error="x"))
    db.commit()
    cli.main(["bot", "replay"])
    assert "424242: processed" in capsys.readouterr().out
    db.expire_all()
    replayed = db.get(TelegramUpdate, 424242)
    assert replayed.status == UpdateStatus.processed
    assert replayed.payload == {}  # the child's message is not kept once handled
    assert [m.kind for m in db.exec(select(OutgoingMessage)).all()] == ["hint"]
