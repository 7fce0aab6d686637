"""The one update-processing path, shared by the webhook and polling.

1. The numbers the handlers read are checked first (`app.bot.validate`): an update with an id out
   of the 64-bit range or of the wrong type is stored as processed-and-ignored (no payload, the
   reason in `error`) and answered 200, so Telegram does not redeliver it; no handler sees it.
2. The raw update is stored by `update_id` (INSERT … ON CONFLICT DO NOTHING) before anything else:
   a redelivered update is acknowledged and not processed twice.
3. It is processed by the pyTelegramBotAPI handlers in the same transaction, so the update row, the
   domain changes and the outbox replies commit together — or not at all.
4. A fault of the database or of the media storage (`is_transient`: the connection lost, a lock
   wait cancelled, the store full or down) rolls everything back — the update row too — and
   propagates: the webhook answers 503 and Telegram delivers the update again, polling keeps its
   offset and retries with backoff. Nothing is recorded, so the redelivery is processed normally.
5. Any other handler error is a bug that would strike again: it rolls back and records the update
   with status `failed` and its error (in a second transaction; if even that cannot be written,
   the exception propagates as in 4). The caller answers 200 (no retry storm). Failed updates show
   on /health and on the staff page /updates, which retries them (`lomaya bot replay` too).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import telebot
from sqlalchemy import exc as sa_exc
from sqlmodel import Session, col

from app import clock, storage
from app.bot import validate
from app.bot.context import Context, use
from app.db import dialect_insert, get_engine, session_scope
from app.errors import StorageUnavailable
from app.models import TelegramUpdate, UpdateStatus

log = logging.getLogger("lomaya.bot")


def update_id_of(data: Any) -> int | None:
    """The update's id when `data` looks like an update at all (else None → a 4xx)."""
    if not isinstance(data, dict):
        return None
    value = data.get("update_id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return None
    return value


def _insert(
    session: Session,
    update_id: int,
    data: dict[str, Any],
    status: UpdateStatus,
    processed_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    values = {
        "update_id": update_id,
        "payload": data,
        "status": status,
        "received_at": clock.now(),
        "processed_at": processed_at,
        "error": error,
    }
    table = TelegramUpdate.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["update_id"])
    )
    return session.execute(stmt.returning(table.c.update_id)).first() is not None


def _record_failure(update_id: int, data: dict[str, Any], error: str) -> None:
    with session_scope() as session:
        if not _insert(session, update_id, data, UpdateStatus.failed):
            session.execute(
                sa.update(TelegramUpdate)
                .where(col(TelegramUpdate.update_id) == update_id)
                .values(status=UpdateStatus.failed, error=error, processed_at=clock.now())
            )
        else:
            session.execute(
                sa.update(TelegramUpdate)
                .where(col(TelegramUpdate.update_id) == update_id)
                .values(error=error, processed_at=clock.now())
            )


def _ignore(update_id: int, reason: str, *, replay: bool) -> str:
    """Record an update the handlers must not see; "ignored", or "duplicate" if it was seen."""
    log.warning("update %s ignored: %s", update_id, reason)
    error = f"ignored: {reason}"
    with session_scope() as session:
        if replay:  # a stored failed update, now refused: close it
            session.execute(
                sa.update(TelegramUpdate)
                .where(
                    col(TelegramUpdate.update_id) == update_id,
                    col(TelegramUpdate.status) == UpdateStatus.failed,
                )
                .values(
                    status=UpdateStatus.processed, error=error, payload={}, processed_at=clock.now()
                )
            )
            return "ignored"
        if not _insert(session, update_id, {}, UpdateStatus.processed, clock.now(), error):
            return "duplicate"
    return "ignored"


def is_transient(exc: BaseException) -> bool:
    """A fault of the database or of the media storage, not of the update: retried, never recorded
    as failed."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        StorageUnavailable
        | sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    )


def process_update(bot: telebot.TeleBot, data: dict[str, Any], *, replay: bool = False) -> str:
    """Store and process one raw update with `bot`'s handlers; returns "processed", "duplicate",
    "ignored" (odd numbers, see `app.bot.validate`) or "failed". A database or storage fault
    propagates (see the module docstring).

    `replay=True` re-runs a stored `failed` update (the staff page, `lomaya bot replay`).
    """
    update_id = update_id_of(data)
    if update_id is None:
        raise ValueError("not a Telegram update")
    reason = validate.problem(data)
    if reason is not None:
        return _ignore(update_id, reason, replay=replay)
    ctx: Context | None = None
    committing = False
    session = Session(get_engine(), expire_on_commit=False)
    try:
        if replay:
            row = session.get(TelegramUpdate, update_id, with_for_update=True)
            if row is None or row.status != UpdateStatus.failed:
                return "duplicate"
        elif not _insert(session, update_id, {}, UpdateStatus.processed, clock.now()):
            # Stored as processed in the same transaction as its effects: either both commit, or
            # neither (and a failure is recorded separately below). A processed update keeps only
            # its id (the dedupe key): its payload holds a child's name and messages, which we do
            # not keep without need. Failed ones keep it for replay.
            return "duplicate"
        ctx = Context(session=session, update_id=update_id, bot=bot)
        with use(ctx):
            update = telebot.types.Update.de_json(data)
            if update is not None:
                bot.process_new_updates([update])
        if replay:
            session.execute(
                sa.update(TelegramUpdate)
                .where(col(TelegramUpdate.update_id) == update_id)
                .values(
                    status=UpdateStatus.processed,
                    error=None,
                    payload={},
                    processed_at=clock.now(),
                )
            )
        committing = True
        session.commit()
        return "processed"
    except Exception as exc:
        _roll_back(session)
        if ctx is not None and not committing:
            # Written by this update and now referenced by nothing. (After a failed COMMIT the
            # transaction may still have been committed: the files stay.)
            try:
                storage.delete(*ctx.stored_keys)
            except Exception:  # the store is down too: the files stay, as after a crash
                log.warning("update %s: its files could not be removed", update_id)
        # Logs carry no personal data: the update id and the error class only.
        if is_transient(exc):
            log.warning("update %s not processed, to be retried: %s", update_id, type(exc).__name__)
            raise
        log.warning("update %s failed: %s", update_id, type(exc).__name__)
        error = "".join(traceback.format_exception(exc))[-4000:].replace("\x00", "")
        _record_failure(update_id, data, error)
        return "failed"
    finally:
        session.close()


def _roll_back(session: Session) -> None:
    try:
        session.rollback()
    except Exception:  # the connection is gone: the server has rolled back already
        log.debug("rollback failed", exc_info=True)


def failed_updates(limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
    with session_scope() as session:
        rows = session.execute(
            sa.select(col(TelegramUpdate.update_id), col(TelegramUpdate.payload))
            .where(col(TelegramUpdate.status) == UpdateStatus.failed)
            .order_by(col(TelegramUpdate.update_id))
            .limit(limit)
        ).all()
    return [(int(r[0]), dict(r[1])) for r in rows]


@dataclass(frozen=True)
class Failed:
    """A failed update as staff see it: never its payload (a child's name and messages)."""

    update_id: int
    received_at: datetime
    failed_at: datetime | None
    error_class: str


def error_class(error: str | None) -> str:
    """The exception's class from a stored traceback (its last line is "Class: message")."""
    lines = [line for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return "?"
    name = lines[-1].split(":", 1)[0].strip()
    return name.rsplit(".", 1)[-1][:80] if name.replace(".", "").replace("_", "").isalnum() else "?"


def failed_list(session: Session, limit: int = 200) -> list[Failed]:
    rows = session.execute(
        sa.select(
            col(TelegramUpdate.update_id),
            col(TelegramUpdate.received_at),
            col(TelegramUpdate.processed_at),
            col(TelegramUpdate.error),
        )
        .where(col(TelegramUpdate.status) == UpdateStatus.failed)
        .order_by(col(TelegramUpdate.update_id))
        .limit(limit)
    ).all()
    return [Failed(int(r[0]), r[1], r[2], error_class(r[3])) for r in rows]


def retry(bot: telebot.TeleBot, update_id: int) -> str:
    """Run one failed update again: "processed", "failed" (again) or "duplicate" (not failed any
    more). A database or storage fault propagates."""
    with session_scope() as session:
        payload = session.execute(
            sa.select(col(TelegramUpdate.payload)).where(
                col(TelegramUpdate.update_id) == update_id,
                col(TelegramUpdate.status) == UpdateStatus.failed,
            )
        ).scalar()
    if payload is None:
        return "duplicate"
    return process_update(bot, dict(payload), replay=True)
