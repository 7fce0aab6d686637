"""Background work that runs inside the web process (outbox sender, scheduler, bot polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.settings import Settings

log = logging.getLogger("lomaya")


def start(settings: Settings) -> list[asyncio.Task]:
    tasks: list[asyncio.Task] = []
    if not settings.bot_enabled:
        log.info("BOT_TOKEN is not set: the admin site runs, the Telegram bot is off")
    if settings.scheduler_enabled:
        from app.scheduler import run_scheduler

        tasks.append(asyncio.create_task(run_scheduler(), name="scheduler"))
    return tasks


async def stop(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
