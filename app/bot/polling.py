"""Long polling: fetch updates with getUpdates and feed them to the same processing path as the
webhook (stored by update_id first, so nothing is processed twice)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import requests
import telebot
from telebot import apihelper

from app.bot import handlers, updates
from app.bot.client import ALLOWED_UPDATES
from app.settings import Settings

log = logging.getLogger("lomaya.bot")
RETRY_MAX_SECONDS = 60


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


def run_polling(settings: Settings, stop: threading.Event, timeout: int = 20) -> None:
    bot = handlers.dispatcher(settings)
    try:
        bot.delete_webhook(drop_pending_updates=False)
    except (telebot.apihelper.ApiException, requests.RequestException) as exc:
        log.warning("deleteWebhook failed: %s", type(exc).__name__)
    offset = 0
    failures = 0
    log.info("bot polling started")
    while not stop.is_set():
        try:
            offset = poll_once(settings, offset, timeout)
            failures = 0
        except (telebot.apihelper.ApiException, requests.RequestException) as exc:
            log.warning("getUpdates failed (%s); retrying in 3 s", type(exc).__name__)
            stop.wait(3)
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


async def polling_loop(settings: Settings) -> None:
    stop = threading.Event()
    try:
        await asyncio.to_thread(run_polling, settings, stop, 10)
    finally:
        stop.set()
