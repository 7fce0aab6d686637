"""The scheduler loop: every TICK_SECONDS it decides which jobs are due and runs each in its own
transaction (the adapter for app.schedule). Runs in the web app (SCHEDULER_ENABLED) and in
`lomaya worker`; several instances may run at once — app.schedule makes each (job, day) run once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from app import clock, days, media, retention, schedule
from app.db import session_scope
from app.settings import Settings

log = logging.getLogger("lomaya.scheduler")

TICK_SECONDS = 30.0


def due_jobs(now: datetime, engine: Engine | None = None) -> list[str]:
    """The jobs to run at `now`, in order (a reminder needs the day's task job to have run)."""
    day = days.report_day(now)
    due: list[str] = []
    with session_scope(engine) as session:
        daily_done = schedule.has_run(session, "daily", day)
        if not daily_done:
            due.append("daily")
        if now >= schedule.reminder_moment(day) and not schedule.has_run(session, "reminder", day):
            due.append("reminder")
    # Checked after the other jobs: today's task job may just have made a shift `finishing`.
    due.append("transitions")
    return due


def run_job(job: str, now: datetime, *, engine: Engine | None = None) -> dict[str, Any]:
    """One job in one transaction: committed with its job-run row, or rolled back entirely."""
    with session_scope(engine) as session:
        result = schedule.run(session, job, now)
    log.info("job %s: %s", job, _summary(result))
    return result


def tick(now: datetime | None = None, engine: Engine | None = None) -> dict[str, dict[str, Any]]:
    now = now or clock.now()
    results: dict[str, dict[str, Any]] = {}
    for job in due_jobs(now, engine):
        with session_scope(engine) as session:
            if job == "reminder" and not schedule.has_run(session, "daily", days.report_day(now)):
                continue
            if job == "transitions" and not schedule.finishable_shifts(session, now):
                continue
        try:
            results[job] = run_job(job, now, engine=engine)
        except Exception:
            # The transaction was rolled back; the job is still due and runs again next tick.
            log.exception("job %s failed; it will be retried", job)
    try:
        purged = purge_expired_photos(now, engine)
        if purged:
            results["retention"] = {"photos_deleted": purged}
    except Exception:
        log.exception("photo retention failed; it will be retried")
    try:
        deletions = media.purge(engine=engine)
        if deletions.removed or deletions.failed:
            results["media"] = {"deleted": deletions.removed, "failed": deletions.failed}
    except Exception:
        log.exception("media deletion failed; it will be retried")
    return results


def purge_expired_photos(now: datetime, engine: Engine | None = None) -> int:
    """Once a day: delete photos of shifts finished longer ago than PHOTO_RETENTION_DAYS.

    The rows go in one transaction with the day's job-run row and the deletion-queue rows of their
    objects; the tick's `media.purge` removes the objects after that commit, so a failure never
    leaves rows pointing at missing objects, and a crash never leaves objects behind.
    """
    day = days.report_day(now)
    with session_scope(engine) as session:
        if not schedule.claim(session, "retention", day, now):
            return 0
        count = retention.purge_photos(session, day)
    if count:
        log.info("retention: %d photos deleted", count)
    return count


def _summary(result: dict[str, Any]) -> str:
    keys = ("day", "ran", "reason", "skipped", "reminders_queued", "started", "finished")
    return ", ".join(f"{k}={result[k]}" for k in keys if k in result)


async def run_scheduler(stop: asyncio.Event | None = None, interval: float = TICK_SECONDS) -> None:
    """Tick until `stop` is set (or the task is cancelled); the database work runs in a thread."""
    stop = stop or asyncio.Event()
    log.info("scheduler started (every %.0f s)", interval)
    while not stop.is_set():
        try:
            await asyncio.to_thread(tick)
        except Exception:
            log.exception("scheduler tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    log.info("scheduler stopped")


async def scheduler_loop(settings: Settings) -> None:
    """The scheduler as a background job of the web app and of `lomaya worker`."""
    await run_scheduler()
