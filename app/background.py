"""Background work: the outbox sender and the scheduler (and, in polling mode, the bot's polling,
which the web app adds itself).

`worker_jobs(settings)` lists coroutine factories; the web app's lifespan starts them as tasks and
`lomaya worker` runs them without the web server. Adding a job is one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.settings import Settings

log = logging.getLogger("lomaya")

Job = Callable[[Settings], Awaitable[None]]


def worker_jobs(settings: Settings) -> list[Job]:
    """Jobs of `lomaya worker` (and of the web app): the outbox sender, the scheduler…"""
    from app import scheduler
    from app.bot import sender

    jobs: list[Job] = []
    if settings.bot_enabled:
        jobs.append(sender.sender_loop)
    if settings.scheduler_enabled:
        jobs.append(scheduler.scheduler_loop)
    return jobs


def start(settings: Settings, jobs: list[Job]) -> list[asyncio.Task]:
    """Start `jobs` as tasks of the running event loop (the web app's lifespan)."""
    if not settings.bot_enabled:
        log.info("BOT_TOKEN is not set: the admin site runs, the Telegram bot is off")
    return [asyncio.create_task(_guarded(job, settings), name=job.__name__) for job in jobs]


async def _guarded(job: Job, settings: Settings) -> None:
    """Run a job forever: a crash is logged and the job restarts after a pause."""
    while True:
        try:
            await job(settings)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s crashed; restarting in 5 s", job.__name__)
            await asyncio.sleep(5)


async def run_worker(settings: Settings) -> None:
    """`lomaya worker`: the worker jobs until SIGTERM/SIGINT, then a clean stop (the sender
    finishes the messages in flight and releases the rows it claimed)."""
    import signal

    jobs = worker_jobs(settings)
    if not jobs:
        log.info("nothing to run: no BOT_TOKEN and no scheduled jobs")
        return
    tasks = [asyncio.create_task(_guarded(job, settings), name=job.__name__) for job in jobs]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: [t.cancel() for t in tasks])
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)


async def stop(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
