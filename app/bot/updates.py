"""The one update-processing path, shared by the webhook and polling.

1. The numbers the handlers read are checked first (`app.bot.validate`): an update with an id out
   of the 64-bit range or of the wrong type is stored as processed-and-ignored (no payload, the
   reason in `error`) and answered 200, so Telegram does not redeliver it; no handler sees it.
2. The raw update is stored by `update_id` (INSERT … ON CONFLICT DO NOTHING) before anything else:
   a redelivered update is acknowledged and not processed twice.
3. It is processed by the pyTelegramBotAPI handlers in the same transaction, so the update row, the
   domain changes and the outbox replies commit together — or not at all.
4. A handler error rolls that back and records the update with status `failed` and its error in a
   second transaction, for `lomaya bot replay`; the caller still answers 200. If even that cannot be
   written (the database is down), the exception propagates and the webhook answers 5xx, so Telegram
   redelivers.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import telebot
from sqlmodel import Session, col

from app import clock, storage
from app.bot import validate
from app.bot.context import Context, use
from app.db import dialect_insert, session_scope
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


def process_update(bot: telebot.TeleBot, data: dict[str, Any], *, replay: bool = False) -> str:
    """Store and process one raw update with `bot`'s handlers; returns "processed", "duplicate",
    "ignored" (odd numbers, see `app.bot.validate`) or "failed".

    `replay=True` re-runs a stored `failed` update (the CLI's `lomaya bot replay`).
    """
    update_id = update_id_of(data)
    if update_id is None:
        raise ValueError("not a Telegram update")
    reason = validate.problem(data)
    if reason is not None:
        return _ignore(update_id, reason, replay=replay)
    ctx: Context | None = None
    try:
        with session_scope() as session:
            if replay:
                row = session.get(TelegramUpdate, update_id, with_for_update=True)
                if row is None or row.status == UpdateStatus.processed:
                    return "duplicate"
            elif not _insert(session, update_id, {}, UpdateStatus.processed, clock.now()):
                # Stored as processed in the same transaction as its effects: either both
                # commit, or neither (and a failure is recorded separately below). A processed
                # update keeps only its id (the dedupe key): its payload holds a child's name and
                # messages, which we do not keep without need. Failed ones keep it for replay.
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
        return "processed"
    except Exception as exc:
        if ctx is not None:
            storage.delete(*ctx.stored_keys)
        # Logs carry no personal data: the update id and the error class only.
        log.warning("update %s failed: %s", update_id, type(exc).__name__)
        error = "".join(traceback.format_exception(exc))[-4000:].replace("\x00", "")
        _record_failure(update_id, data, error)
        return "failed"


def failed_updates(limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
    with session_scope() as session:
        rows = session.execute(
            sa.select(col(TelegramUpdate.update_id), col(TelegramUpdate.payload))
            .where(col(TelegramUpdate.status) == UpdateStatus.failed)
            .order_by(col(TelegramUpdate.update_id))
            .limit(limit)
        ).all()
    return [(int(r[0]), dict(r[1])) for r in rows]
