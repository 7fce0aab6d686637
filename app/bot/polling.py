"""Long polling: fetch updates with getUpdates and feed them to the same processing path as the
webhook (stored by update_id first, so nothing is processed twice).

One poller at a time. Telegram serves getUpdates to one client at a time (a second one gets 409),
so every process that may poll — web instances in polling mode, `lomaya bot poll` — takes the
`poller` advisory lock first (app.locks); the others stand by and take over within a few seconds
when the poller dies. On SQLite (one process) there is no lock.

A webhook is never deleted by accident. Before polling, the poller asks Telegram for the webhook:
when one is set (production runs in webhook mode), it says so in one line and does not poll —
the site keeps running. Only `--force` (`lomaya serve --force`, `lomaya bot poll --force`)
deletes the webhook and polls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import requests
import telebot
from telebot import apihelper

from app import locks
from app.bot import handlers, updates
from app.bot.client import ALLOWED_UPDATES
from app.db import get_engine
from app.settings import Settings

log = logging.getLogger("lomaya.bot")
RETRY_SECONDS = 3.0  # a Telegram or network error
RETRY_MAX_SECONDS = 60  # the longest pause while the database or the storage is down
NETWORK_ERRORS = (telebot.apihelper.ApiException, requests.RequestException)


def poll_once(settings: Settings, offset: int, timeout: int = 20) -> int:
    """One getUpdates round; returns the next offset."""
    bot = handlers.dispatcher(settings)  # also points the API at settings.telegram_api_url
    raw: list[dict[str, Any]] = apihelper.get_updates(
        settings.bot_token,
        offset=offset or None,
        limit=100,
        timeout=timeout,
        allowed_updates=ALLOWED_UPDATES,
        long_polling_timeout=timeout,
    )
    for data in raw:
        update_id = updates.update_id_of(data)
        if update_id is None:
            continue
        updates.process_update(bot, data)
        offset = max(offset, update_id + 1)
    return offset


def webhook_refusal(url: str) -> str:
    """The one line for operators when a webhook is set and polling was not forced."""
    return (
        f"Вебхук уже установлен ({url}): опрос не запущен. "
        "Чтобы переключиться на опрос, запустите с --force."
    )


def may_poll(bot: telebot.TeleBot, force: bool) -> bool:
    """Whether this process may poll now: no webhook is set, or `force` deleted it. Raises a
    network/API error when Telegram cannot be asked (then nothing is deleted)."""
    url = bot.get_webhook_info().url or ""
    if not url:
        return True
    if not force:
        log.warning(webhook_refusal(url))
        return False
    bot.delete_webhook(drop_pending_updates=False)
    log.warning("Вебхук %s удалён (--force): бот переходит на опрос.", url)
    return True


def run_polling(
    settings: Settings, stop: threading.Event, timeout: int = 20, *, force: bool = False
) -> bool:
    """Poll until `stop` while this process holds the poller lock (standing by otherwise).
    Returns False at once when a webhook is set, unless `force` (then the webhook found first is
    deleted), or when one is set later; True when stopped."""
    bot = handlers.dispatcher(settings)
    lock = locks.AdvisoryLock(get_engine(settings), "poller")
    note = "bot polling: another process polls; this one stands by"
    try:
        while not stop.is_set():
            if not lock.take_turn(stop, note):
                continue
            try:
                allowed = may_poll(bot, force)
            except NETWORK_ERRORS as exc:
                log.warning("getWebhookInfo failed (%s); retrying", type(exc).__name__)
                stop.wait(RETRY_SECONDS)
                continue
            if not allowed:
                return False
            force = False  # deleted once; a webhook set later on purpose stops this poller
            log.info("bot polling started (%s)", lock.name if lock.postgres else "this process")
            if not _poll(settings, stop, timeout, lock, bot, force):
                return False
    finally:
        lock.release()
    return True


def _poll(
    settings: Settings,
    stop: threading.Event,
    timeout: int,
    lock: locks.AdvisoryLock,
    bot: telebot.TeleBot,
    force: bool,
) -> bool:
    """getUpdates rounds while the lock is ours; False when a webhook appeared (stop polling)."""
    offset = 0
    failures = 0
    while not stop.is_set():
        if not lock.held():
            log.warning("bot polling: the lock is lost; standing by")
            return True
        try:
            offset = poll_once(settings, offset, timeout)
            failures = 0
        except telebot.apihelper.ApiTelegramException as exc:
            if exc.error_code == 409:
                # Someone set a webhook meanwhile, or another client polls with this token.
                try:
                    if not may_poll(bot, force):
                        return False
                except NETWORK_ERRORS:
                    pass
            log.warning("getUpdates failed (%s); retrying in 3 s", exc.error_code)
            stop.wait(RETRY_SECONDS)
        except NETWORK_ERRORS as exc:
            log.warning("getUpdates failed (%s); retrying in 3 s", type(exc).__name__)
            stop.wait(RETRY_SECONDS)
        except Exception as exc:
            # The database or the media storage is down (updates.is_transient), or a failure
            # could not be recorded: the offset stays, Telegram keeps the update, and it is
            # processed again after a pause that grows while the fault lasts.
            failures += 1
            pause = min(RETRY_MAX_SECONDS, 2 ** min(failures, 10))
            log.warning(
                "polling: update not processed (%s); retrying in %d s", type(exc).__name__, pause
            )
            stop.wait(pause)
    return True


async def polling_loop(settings: Settings) -> None:
    stop = threading.Event()
    try:
        await asyncio.to_thread(run_polling, settings, stop, 10, force=settings.bot_force_polling)
    finally:
        stop.set()
