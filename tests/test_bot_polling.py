"""Polling mode: a webhook set in Telegram is left alone unless forced, and one process polls at a
time (the `poller` advisory lock; PostgreSQL). The takeover after a SIGKILL, with real processes,
is in tests/test_bot_cluster.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from app import cli, locks
from app.bot import polling
from app.db import get_engine
from app.settings import Settings
from tests.fake_telegram import TOKEN

PRODUCTION = "https://lomaya.example.org/telegram/webhook"
REFUSAL = (
    f"Вебхук уже установлен ({PRODUCTION}): опрос не запущен. "
    "Чтобы переключиться на опрос, запустите с --force."
)


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)  # a poll interval: the loop checks the condition


class Poller:
    """`run_polling` in a thread, as `lomaya bot poll` runs it."""

    def __init__(self, settings: Settings, *, force: bool = False) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=polling.run_polling, args=(settings, self.stop, 1), kwargs={"force": force}
        )
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


@pytest.fixture
def pollers(bot_settings: Settings) -> Iterator[Callable[..., Poller]]:
    started: list[Poller] = []

    def start(**kw: bool) -> Poller:
        poller = Poller(bot_settings, **kw)
        started.append(poller)
        return poller

    yield start
    for poller in started:
        poller.finish()


def test_a_webhook_is_left_alone_and_said_so_in_one_line(fake_tg, pollers, caplog):
    fake_tg.webhook = {"url": PRODUCTION, "pending_update_count": 0}
    with caplog.at_level(logging.WARNING, logger="lomaya.bot"):
        poller = pollers()
        poller.thread.join(timeout=15)  # it gives up by itself: nothing to poll
    assert not poller.thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.name == "lomaya.bot"] == [REFUSAL]
    assert fake_tg.sent("getWebhookInfo")
    assert not fake_tg.sent("deleteWebhook") and not fake_tg.sent("getUpdates")
    assert fake_tg.webhook["url"] == PRODUCTION


def test_force_deletes_the_webhook_and_polls(fake_tg, pollers, caplog):
    fake_tg.webhook = {"url": PRODUCTION, "pending_update_count": 0}
    with caplog.at_level(logging.WARNING, logger="lomaya.bot"):
        pollers(force=True)
        wait_for(lambda: fake_tg.sent("getUpdates"), what="getUpdates")
    call = fake_tg.sent("deleteWebhook")[0]
    assert call.params.get("drop_pending_updates") in (None, "False", "false")
    assert fake_tg.webhook == {}
    assert any("удалён (--force)" in r.getMessage() for r in caplog.records)


def test_a_webhook_set_while_polling_stops_the_poller(fake_tg, pollers):
    poller = pollers(force=True)  # --force deletes a webhook found at start, not one set later
    wait_for(lambda: fake_tg.sent("getUpdates"), what="getUpdates")
    fake_tg.webhook = {"url": PRODUCTION, "pending_update_count": 0}
    poller.thread.join(timeout=15)
    assert not poller.thread.is_alive()
    assert not fake_tg.sent("deleteWebhook") and fake_tg.webhook["url"] == PRODUCTION


def test_the_site_runs_without_polling_while_a_webhook_is_set(bot_settings, fake_tg, caplog, is_pg):
    from app.main import create_app

    fake_tg.webhook = {"url": PRODUCTION, "pending_update_count": 0}
    app = create_app(bot_settings.with_overrides(bot_webhook_mode=False))
    with caplog.at_level(logging.WARNING, logger="lomaya.bot"), TestClient(app) as client:
        wait_for(lambda: REFUSAL in caplog.messages, what="the refusal line")
        assert client.get("/login").status_code == 200
        bot = client.get("/health").json()["bot"]
        assert bot["mode"] == "polling"
        assert bot["poller"] is (False if is_pg else None)  # nobody polls (SQLite: no lock)
    assert not fake_tg.sent("deleteWebhook") and not fake_tg.sent("getUpdates")


def test_bot_poll_says_why_and_exits_when_a_webhook_is_set(
    monkeypatch, base_settings, fake_tg, engine, caplog
):
    for key, value in {
        "DATABASE_URL": base_settings.database_url,
        "DATA_DIR": str(base_settings.data_dir),
        "SECRET_KEY": base_settings.secret_key,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake_tg.url,
    }.items():
        monkeypatch.setenv(key, value)
    fake_tg.webhook = {"url": PRODUCTION, "pending_update_count": 0}
    with caplog.at_level(logging.WARNING, logger="lomaya.bot"), pytest.raises(SystemExit) as end:
        cli.main(["bot", "poll"])
    assert end.value.code == 1
    assert REFUSAL in caplog.messages
    assert not fake_tg.sent("deleteWebhook") and not fake_tg.sent("getUpdates")


def test_force_is_a_flag_of_serve_and_bot_poll():
    parser = cli.build_parser()
    assert parser.parse_args(["serve", "--force"]).force is True
    assert parser.parse_args(["serve"]).force is False
    assert parser.parse_args(["bot", "poll", "--force"]).force is True


@pytest.mark.postgres_only
def test_one_poller_at_a_time_and_the_next_takes_over(bot_settings, fake_tg, pollers, is_pg):
    if not is_pg:
        pytest.skip("the poller lock is PostgreSQL's (SQLite: one process)")
    first = pollers()
    wait_for(lambda: len(fake_tg.sent("getUpdates")) >= 2, what="the first poller")
    second = pollers()  # stands by: the lock is taken
    holder = locks.holder(get_engine(), "poller")
    assert holder and holder.startswith("lomaya poller ")
    polled = len(fake_tg.sent("getUpdates"))
    wait_for(lambda: len(fake_tg.sent("getUpdates")) >= polled + 5, what="more rounds")
    assert fake_tg.conflicts == 0  # never two getUpdates at once
    first.finish()  # releases the lock
    handed_over = len(fake_tg.sent("getUpdates"))
    wait_for(lambda: len(fake_tg.sent("getUpdates")) > handed_over + 2, what="the second poller")
    assert second.thread.is_alive() and fake_tg.conflicts == 0
    assert locks.holder(get_engine(), "poller") is not None
