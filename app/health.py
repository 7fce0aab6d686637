"""Health of the parts the app depends on, for `GET /health` and `lomaya health`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from app import locks, media, outbox, storage
from app.db import get_engine, session_scope
from app.models import TelegramUpdate, UpdateStatus
from app.settings import get_settings


def database_state() -> dict[str, Any]:
    try:
        with session_scope() as session:
            session.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means "down"; the class name is enough for a probe
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "kind": "sqlite" if get_settings().is_sqlite else "postgresql"}


def storage_state() -> dict[str, Any]:
    """The configured backend, checked for real (and probed by writing while the start-up probe's
    failure stands), with the deletion queue's backlog."""
    state = storage.health()
    try:
        with session_scope() as session:
            state.update(media.pending(session))
    except Exception:  # the database part of the status reports it
        pass
    return state


def _held(role: str) -> bool | None:
    """Whether some process plays `role` (app.locks: the sender, the poller); None on SQLite
    (no lock: each process plays it itself) or when that cannot be read. Which process it is
    (host and pid) is for operators, not for this public page."""
    try:
        if get_settings().is_sqlite:
            return None
        return locks.holder(get_engine(), role) is not None
    except Exception:
        return None


def bot_state() -> dict[str, Any]:
    settings = get_settings()
    if not settings.bot_enabled:
        return {"ok": True, "enabled": False}
    state: dict[str, Any] = {
        "ok": True,
        "enabled": True,
        "mode": "webhook" if settings.bot_webhook_mode else "polling",
        # false: this process only serves requests; `lomaya worker` sends (docs/deploy.md)
        "background_here": settings.web_background,
    }
    if not settings.bot_webhook_mode:
        state["poller"] = _held("poller")
    return state


def scheduler_state() -> dict[str, Any]:
    """Whether the loop runs here, and the last run of each job."""
    from app import schedule

    state: dict[str, Any] = {"ok": True, "enabled": get_settings().scheduler_enabled}
    try:
        with session_scope() as session:
            runs = schedule.last_runs(session)
    except Exception as exc:
        return {**state, "ok": False, "error": type(exc).__name__}
    state["last_runs"] = {
        job: None
        if run is None
        else {
            "day": run.day.isoformat(),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
        for job, run in runs.items()
    }
    return state


def outbox_state() -> dict[str, Any]:
    try:
        with session_scope() as session:
            backlog = outbox.backlog(session)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, **backlog, "sender": _held("sender")}


def updates_state() -> dict[str, Any]:
    """Telegram updates a bug stopped (listed for administrators at /updates, with a retry button).
    Shown, not failing the probe: the app works, and a load balancer must keep sending traffic."""
    try:
        with session_scope() as session:
            failed = session.execute(
                sa.select(sa.func.count())
                .select_from(TelegramUpdate)
                .where(col(TelegramUpdate.status) == UpdateStatus.failed)
            ).scalar_one()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "failed": int(failed)}


def status() -> dict[str, Any]:
    parts = {
        "database": database_state(),
        "storage": storage_state(),
        "bot": bot_state(),
        "updates": updates_state(),
        "scheduler": scheduler_state(),
        "outbox": outbox_state(),
    }
    return {"ok": all(part["ok"] for part in parts.values()), **parts}
