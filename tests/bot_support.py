"""Shared pieces of the bot tests: the fake Bot API server, bot settings, update builders."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import clock, webapp
from app.settings import Settings, set_settings
from tests.fake_telegram import TOKEN, FakeTelegram

_update_ids = itertools.count(int(time.time()) % 100000 * 1000)
_message_ids = itertools.count(1)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_tg(fake_server: FakeTelegram) -> Iterator[FakeTelegram]:
    fake_server.reset()
    fake_server.updates.clear()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def bot_settings(settings: Settings, fake_tg: FakeTelegram) -> Settings:
    bot = settings.with_overrides(
        bot_token=TOKEN,
        telegram_api_url=fake_tg.url,
        application_url="https://lomaya.example.org",
        bot_webhook_mode=True,
        outbox_rate_per_second=1000.0,
    )
    return set_settings(bot)


@pytest.fixture
def bot_client(bot_settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(bot_settings, start_background=False)) as c:
        yield c


@pytest.fixture
def noon() -> datetime:
    """Freeze the clock at 12:00 local time today (a task is open)."""
    from app.settings import get_settings

    tz = get_settings().tz
    moment = datetime.now(tz).replace(hour=12, minute=0, second=0, microsecond=0)
    clock.set_now(moment)
    return moment


def next_update_id() -> int:
    return next(_update_ids)


def user(uid: int, first_name: str = "Маша") -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": first_name}


def message_update(uid: int, update_id: int | None = None, **fields: Any) -> dict[str, Any]:
    message = {
        "message_id": next(_message_ids),
        "date": int(clock.now().timestamp()),
        "chat": {"id": uid, "type": "private", "first_name": "Маша"},
        "from": user(uid),
    }
    message.update(fields)
    return {"update_id": update_id or next_update_id(), "message": message}


def text_update(uid: int, text: str, **kw: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        extra["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return message_update(uid, **extra, **kw)


def photo_update(fake: FakeTelegram, uid: int, data: bytes, **kw: Any) -> dict[str, Any]:
    file_id = fake.add_file(data)
    small = fake.add_file(data[:100])
    sizes = [
        {"file_id": small, "file_unique_id": fake.unique_id(small), "width": 90, "height": 67},
        {
            "file_id": file_id,
            "file_unique_id": fake.unique_id(file_id),
            "width": 1280,
            "height": 960,
            "file_size": len(data),
        },
    ]
    return message_update(uid, photo=sizes, **kw)


def document_update(
    fake: FakeTelegram, uid: int, data: bytes, mime: str, name: str = "file"
) -> dict[str, Any]:
    file_id = fake.add_file(data)
    doc = {
        "file_id": file_id,
        "file_unique_id": fake.unique_id(file_id),
        "file_name": name,
        "mime_type": mime,
        "file_size": len(data),
    }
    return message_update(uid, document=doc)


def callback_update(uid: int, data: str, message_id: int = 77) -> dict[str, Any]:
    return {
        "update_id": next_update_id(),
        "callback_query": {
            "id": f"cb{next_update_id()}",
            "from": user(uid),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(clock.now().timestamp()),
                "chat": {"id": uid, "type": "private"},
                "text": "Точно пропустить?",
            },
        },
    }


def post_update(client: TestClient, update: dict[str, Any], secret: str | None = None):
    from app.settings import get_settings

    return client.post(
        "/telegram/webhook",
        content=json.dumps(update),
        headers={
            "X-Telegram-Bot-Api-Secret-Token": secret
            if secret is not None
            else get_settings().telegram_webhook_secret,
            "Content-Type": "application/json",
        },
    )


def init_data(uid: int, *, token: str = TOKEN, auth_date: int | None = None) -> str:
    from urllib.parse import urlencode

    fields = {
        "auth_date": str(auth_date if auth_date is not None else int(clock.now().timestamp())),
        "query_id": "AAE",
        "user": json.dumps({"id": uid, "first_name": "Маша"}, ensure_ascii=False),
    }
    fields["hash"] = webapp.sign(token, fields)
    return urlencode(fields)


def deliver() -> int:
    """Send everything due through the real sender (a fresh one: no per-chat memory)."""
    from app.bot.sender import Sender

    sender = Sender()
    try:
        total = 0
        while True:
            handled = sender.run_once()
            if not handled:
                return total
            total += handled
    finally:
        sender.close()
