"""Outbox delivery (product.md §6): a background sender that sends due rows to Telegram.

One sender at a time (PostgreSQL). Telegram's limits hold per bot, so they must hold across every
process that may send: web instances, workers, `lomaya bot poll`. Each of them runs `Sender.run`,
but only the holder of the `sender` advisory lock (app.locks) sends; the others stand by and try
the lock every second. So the global limit and the per-chat limit are kept in one process's memory
and hold across the cluster by construction. A sender that was killed loses the lock with its
connection; the next one takes over within about a second, first releases the leases the dead one
left (only the lock holder claims rows, so every live lease is the dead one's) and waits
`TAKEOVER_SECONDS` before its first message, so that no chat and no one-second window gets a
message from both. A holder confirms its lock at least every `LOCK_CHECK_SECONDS` while it sends
and stops when it cannot (its connection was cut while the process lives on). On SQLite (one
process) there is no lock: every sender sends, as before.

Claiming. A batch of due rows (status `pending`, `send_after <= now`, no live lease) is claimed in
one short transaction that sets a lease (`claimed_until`) — with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two senders never take the same row even without the lock (`run_once`, the bench).
Right before its Telegram call, each row is marked `sent` in its own small transaction
(`… WHERE status = 'pending'`: a row cancelled meanwhile — an undone decision — is skipped); a failed
call puts it back to `pending` (with its retry time) or closes it as `failed`.

Crash semantics (the choice, documented). Telegram has no idempotency key, so a message cannot be
exactly-once across a crash between Telegram accepting it and our commit. We choose "never twice":
the row is committed as `sent` *before* the call, so a crash at that moment can only lose the
messages in flight — a row is started, waits at the gate and is sent by one pool thread, so at
most `workers` (8) rows are started and not yet answered; at 30/s usually none to two — and
never duplicates one. Rows claimed but not yet started are only leased: after a crash the next sender releases them when it takes over (or the lease ends,
`lease_seconds`); a clean stop (SIGTERM, shutdown) releases them at once.

Limits, measured at the moment of the call. A pool thread starts its row (`sent`), then passes a
gate, one thread at a time, where the global token bucket (`outbox_rate_per_second`) and the
chat's clock decide when its call may begin; the call follows at once. A few rows are started
ahead of the gate (`AHEAD_SECONDS` worth at the rate, at least 2), which hides the commit's
latency without piling up started rows.
Messages are spaced `(1 + MARGIN_SECONDS) / rate` apart overall and `PER_CHAT_SECONDS + MARGIN_SECONDS` per
chat (a row for a chat that is not ready is deferred in the database), so that up to
`MARGIN_SECONDS` of jitter between our clock and Telegram's never puts more than `rate` messages
into one second, or two messages to one chat into one second. 429 → the row waits `retry_after`
(and so does its chat), 403 → the participant is marked as having blocked the bot and the row is
closed as `failed`, 5xx/network → exponential backoff capped at `MAX_BACKOFF_SECONDS`, closed after
`MAX_ATTEMPTS`.

Payload contract: `text` (required), optional `photo_task_id` (the task's picture with the text as
caption: uploaded the first time, then by the `file_id` Telegram returned, kept in
`Task.telegram_file_id`), optional `keyboard` ("task": reply keyboard with the skip and balance
buttons; "register": inline WebApp button to the registration form; "progress": inline WebApp
button «Мой прогресс»; "skip_confirm": inline confirm/cancel, needs `report_id`), optional
`edit_message_id` (edit that message's text instead of sending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
import sqlalchemy as sa
import telebot
from sqlalchemy.engine import Engine
from sqlmodel import col
from telebot import types

from app import clock, storage
from app.bot.client import PROGRESS_BUTTON, get_bot, progress_web_app
from app.db import get_engine, is_postgres, session_scope
from app.errors import MissingObject
from app.locks import AdvisoryLock
from app.models import OutboxStatus, OutgoingMessage, Participant, Task
from app.settings import Settings, get_settings

log = logging.getLogger("lomaya.sender")

MAX_ATTEMPTS = 12
SEND_TIMEOUT = 10  # seconds per Telegram call
MAX_BACKOFF_SECONDS = 300
PER_CHAT_SECONDS = 1.0
# Room for jitter between the moment we start a call and the moment Telegram counts it.
MARGIN_SECONDS = 0.05
# While it sends, the lock holder confirms the lock at least this often, so a holder whose lock
# was taken from it (its connection ended, the process lives on) stops within this time.
LOCK_CHECK_SECONDS = 0.2
# A new lock holder waits this long before its first message, so whatever the previous holder
# sent is more than PER_CHAT_SECONDS + MARGIN_SECONDS old (for every chat and for the global
# window), even when that holder lived on for LOCK_CHECK_SECONDS after losing the lock.
TAKEOVER_SECONDS = 1.5
# Rows started (`sent`) ahead of the gate: this many seconds' worth at the rate, at least
# MIN_AHEAD, so the commit's latency does not slow the rate down (a SIGKILL loses them).
AHEAD_SECONDS = 0.05
MIN_AHEAD = 2
CAPTION_LIMIT = 1024
SKIP_BUTTON = "Пропустить задание"
BALANCE_BUTTON = "Баланс ломбарьеров"


@dataclass(frozen=True)
class Row:
    id: int
    chat_id: int
    participant_id: int | None
    kind: str
    payload: dict[str, Any]
    attempts: int


class RateLimiter:
    """A token bucket: `acquire()` blocks until a message may go out."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else 1.0  # no bursts above the limit
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> bool:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return True
                wait = (1 - self.tokens) / self.rate
            if stop is not None and stop.is_set():
                return False
            time.sleep(min(wait, 0.5))


def keyboard(payload: dict[str, Any]) -> Any:
    name = payload.get("keyboard")
    if name == "task":
        markup = types.ReplyKeyboardMarkup(resize_keyboard=True)
        markup.row(types.KeyboardButton(SKIP_BUTTON), types.KeyboardButton(BALANCE_BUTTON))
        return markup
    if name == "register":
        url = get_settings().application_url + "/telegram/registration"
        inline = types.InlineKeyboardMarkup()
        inline.add(
            types.InlineKeyboardButton("Заполнить анкету", web_app=types.WebAppInfo(url=url))
        )
        return inline
    if name == "progress":
        inline = types.InlineKeyboardMarkup()
        inline.add(types.InlineKeyboardButton(PROGRESS_BUTTON, web_app=progress_web_app()))
        return inline
    if name == "skip_confirm":
        report_id = int(payload["report_id"])
        inline = types.InlineKeyboardMarkup()
        inline.row(
            types.InlineKeyboardButton("Пропустить", callback_data=f"skip:yes:{report_id}"),
            types.InlineKeyboardButton("Отмена", callback_data=f"skip:no:{report_id}"),
        )
        return inline
    return None


class Sender:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        workers: int = 8,
        batch: int | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = engine or get_engine(self.settings)
        self.bot = get_bot(self.settings)
        rate = self.settings.outbox_rate_per_second
        self.limiter = RateLimiter(rate / (1 + MARGIN_SECONDS))
        self.gate = threading.Lock()  # one row at a time passes the limits, right before its call
        self.ahead = threading.Semaphore(max(MIN_AHEAD, math.ceil(rate * AHEAD_SECONDS)))
        self.chat_called: dict[int, float] = {}  # chat → when its last call began (the gate's)
        self.batch = batch or int(max(1, min(500, rate)))
        # Long enough for a batch at the limit plus one slow call (SEND_TIMEOUT), short enough
        # that rows claimed by a crashed sender go out again soon.
        self.lease_seconds = 2 * SEND_TIMEOUT + 2 * self.batch / rate
        self.chat_next: dict[int, float] = {}
        self.chat_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbox")
        self.confirm_lock: Callable[[], bool] | None = None  # set while leading (`run`)
        self.confirmed_at = 0.0
        self.stats = {"sent": 0, "failed": 0, "retried": 0, "deferred": 0}

    # --- claiming -------------------------------------------------------------------------------

    def claim(self, limit: int) -> list[Row]:
        now = clock.now()
        table = OutgoingMessage.__table__  # type: ignore[attr-defined]
        due = (
            sa.select(table.c.id)
            .where(
                table.c.status == OutboxStatus.pending.value,
                table.c.send_after <= now,
                sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
            )
            .order_by(table.c.send_after, table.c.id)
            .limit(limit)
        )
        with session_scope(self.engine) as session:
            if is_postgres(session):
                due = due.with_for_update(skip_locked=True)
            result = session.execute(
                sa.update(table)
                .where(table.c.id.in_(due.scalar_subquery()))
                .values(
                    claimed_until=now + timedelta(seconds=self.lease_seconds),
                    attempts=table.c.attempts + 1,
                )
                .returning(
                    table.c.id,
                    table.c.chat_id,
                    table.c.participant_id,
                    table.c.kind,
                    table.c.payload,
                    table.c.attempts,
                )
            )
            rows = [Row(r[0], r[1], r[2], r[3], dict(r[4] or {}), r[5]) for r in result]
            if not rows:
                return []
            blocked = set(
                session.execute(
                    sa.select(col(Participant.id)).where(
                        col(Participant.id).in_({r.participant_id for r in rows}),
                        col(Participant.is_bot_blocked).is_(True),
                    )
                ).scalars()
            )
            if blocked:
                gone = [r.id for r in rows if r.participant_id in blocked]
                session.execute(
                    sa.update(table)
                    .where(table.c.id.in_(gone))
                    .values(
                        status=OutboxStatus.failed.value,
                        claimed_until=None,
                        last_error="the family blocked the bot",
                    )
                )
                self.stats["failed"] += len(gone)
                rows = [r for r in rows if r.participant_id not in blocked]
        rows.sort(key=lambda r: r.id)
        return rows

    def release_leases(self) -> int:
        """Free the rows claimed by a sender that died (call only while holding the lock: then
        every live lease is a dead sender's). `… AND status = 'pending'`: a row it had started
        is not sent again."""
        table = OutgoingMessage.__table__  # type: ignore[attr-defined]
        with session_scope(self.engine) as session:
            result = session.execute(
                sa.update(table)
                .where(
                    table.c.status == OutboxStatus.pending.value,
                    table.c.claimed_until.is_not(None),
                )
                .values(claimed_until=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _release(self, rows: list[Row]) -> None:
        """Give claimed rows back at once, uncounted (a clean stop)."""
        if not rows:
            return
        table = OutgoingMessage.__table__  # type: ignore[attr-defined]
        with session_scope(self.engine) as session:
            session.execute(
                sa.update(table)
                .where(
                    table.c.id.in_([r.id for r in rows]),
                    table.c.status == OutboxStatus.pending.value,
                )
                .values(claimed_until=None, attempts=table.c.attempts - 1)
            )

    def _defer(self, row: Row, seconds: float, *, error: str | None = None, count: bool) -> None:
        values: dict[str, Any] = {
            "status": OutboxStatus.pending,
            "sent_at": None,
            "claimed_until": None,
            "send_after": clock.now() + timedelta(seconds=seconds),
        }
        if not count:
            values["attempts"] = OutgoingMessage.attempts - 1
        if error is not None:
            values["last_error"] = error[:2000]
        with session_scope(self.engine) as session:
            session.execute(
                sa.update(OutgoingMessage)
                .where(
                    col(OutgoingMessage.id) == row.id,
                    col(OutgoingMessage.status).in_([OutboxStatus.pending, OutboxStatus.sent]),
                )
                .values(**values)
            )

    # --- sending --------------------------------------------------------------------------------

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim one batch and send it; returns how many rows were handled.

        This thread defers the rows of chats that are not ready and hands the others to the
        pool, a few at a time ahead of the gate (`self.ahead`). A pool thread starts its row
        (`sent`), passes the gate — the global rate and the chat's second, counted right there —
        and makes the call. So the limits hold at the moment of the call, and only the rows
        between their start and the gate are `sent` without their call under way.
        """
        rows = self.claim(self.batch)
        if not rows:
            return 0
        futures = []
        for i, row in enumerate(rows):
            wait = self._chat_wait(row.chat_id)
            if wait > 0:
                self.stats["deferred"] += 1
                self._defer(row, wait, count=False)
                continue
            if not self._take_ahead(stop):  # stopping: the rest go back at once
                self._release(rows[i:])
                break
            if not self._still_leading():  # the lock is gone: so do the rows
                self.ahead.release()
                self._release(rows[i:])
                break
            self._chat_reserve(row.chat_id)
            futures.append(self.pool.submit(self._paced, row))
        for future in futures:
            future.result()
        return len(rows)

    def _take_ahead(self, stop: threading.Event | None) -> bool:
        while not self.ahead.acquire(timeout=0.1):
            if stop is not None and stop.is_set():
                return False
        if stop is not None and stop.is_set():
            self.ahead.release()
            return False
        return True

    def _paced(self, row: Row) -> None:
        try:
            if not self._start(row):
                return
            self._pass_gate(row.chat_id)
        finally:
            self.ahead.release()
        self._call(row)

    def _pass_gate(self, chat_id: int) -> None:
        """Wait until this chat's last call is PER_CHAT_SECONDS + MARGIN_SECONDS old and the
        global rate allows one more, then note the moment; one thread at a time."""
        with self.gate:
            last = self.chat_called.get(chat_id)
            if last is not None:
                wait = last + PER_CHAT_SECONDS + MARGIN_SECONDS - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # only jitter: the chat was reserved a second ahead
            self.limiter.acquire()
            now = time.monotonic()
            self.chat_called[chat_id] = now
            if len(self.chat_called) > 100_000:
                limit = now - PER_CHAT_SECONDS - MARGIN_SECONDS
                self.chat_called = {k: v for k, v in self.chat_called.items() if v > limit}

    def _still_leading(self) -> bool:
        """The lock is still ours (confirmed at most LOCK_CHECK_SECONDS ago); True without one."""
        if self.confirm_lock is None:
            return True
        now = time.monotonic()
        if now - self.confirmed_at < LOCK_CHECK_SECONDS:
            return True
        if not self.confirm_lock():
            return False
        self.confirmed_at = now
        return True

    def _chat_wait(self, chat_id: int) -> float:
        with self.chat_lock:
            ready = self.chat_next.get(chat_id, 0.0)
        return max(0.0, ready - time.monotonic())

    def _chat_reserve(self, chat_id: int) -> None:
        now = time.monotonic()
        with self.chat_lock:
            ready = now + PER_CHAT_SECONDS + MARGIN_SECONDS
            self.chat_next[chat_id] = max(ready, self.chat_next.get(chat_id, 0.0))
            if len(self.chat_next) > 100_000:
                self.chat_next = {k: v for k, v in self.chat_next.items() if v > now}

    def _send(self, row: Row) -> str | None:
        """Send one row; returns a new task picture file_id to remember, if any."""
        payload = row.payload
        text = str(payload.get("text") or "")
        markup = keyboard(payload)
        if payload.get("edit_message_id"):
            try:
                self.bot.edit_message_text(
                    text,
                    row.chat_id,
                    int(payload["edit_message_id"]),
                    reply_markup=markup if isinstance(markup, types.InlineKeyboardMarkup) else None,
                    timeout=SEND_TIMEOUT,
                )
            except telebot.apihelper.ApiTelegramException as exc:
                if "not modified" not in (exc.description or ""):
                    raise
            return None
        task_id = payload.get("photo_task_id")
        if task_id:
            with session_scope(self.engine) as session:
                task = session.get(Task, int(task_id))
            photo: Any = None
            if task is not None and task.telegram_file_id:
                photo = task.telegram_file_id
            elif task is not None and task.image_key:
                try:
                    photo = storage.get(task.image_key)
                except (OSError, ValueError, MissingObject):
                    photo = None
            if photo is not None:
                caption = text if len(text) <= CAPTION_LIMIT else None
                try:
                    message = self.bot.send_photo(
                        row.chat_id, photo, caption=caption, reply_markup=markup, timeout=30
                    )
                except telebot.apihelper.ApiTelegramException as exc:
                    if isinstance(photo, str) and exc.error_code == 400:
                        self._forget_file_id(int(task_id))
                    raise
                if caption is None:
                    self.bot.send_message(
                        row.chat_id, text, reply_markup=markup, timeout=SEND_TIMEOUT
                    )
                if isinstance(photo, bytes) and message.photo:
                    return message.photo[-1].file_id
                return None
        self.bot.send_message(row.chat_id, text, reply_markup=markup, timeout=SEND_TIMEOUT)
        return None

    def _forget_file_id(self, task_id: int) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                sa.update(Task).where(col(Task.id) == task_id).values(telegram_file_id=None)
            )

    def _start(self, row: Row) -> bool:
        """Mark the row sent before the call (see the module docstring); False if it is gone."""
        with session_scope(self.engine) as session:
            result = session.execute(
                sa.update(OutgoingMessage)
                .where(
                    col(OutgoingMessage.id) == row.id,
                    col(OutgoingMessage.status) == OutboxStatus.pending,
                )
                .values(
                    status=OutboxStatus.sent,
                    sent_at=clock.now(),
                    claimed_until=None,
                    last_error=None,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def deliver(self, row: Row) -> None:
        """Start and send one row, outside the gate (tests; `run_once` paces its rows)."""
        if self._start(row):
            self._call(row)

    def _call(self, row: Row) -> None:
        """The Telegram call of a started row, and what its answer means for the row."""
        try:
            file_id = self._send(row)
        except telebot.apihelper.ApiTelegramException as exc:
            self._failed_call(row, exc.error_code, exc.description or "", exc.result_json)
            return
        except (telebot.apihelper.ApiException, requests.RequestException) as exc:
            self._failed_call(row, 0, type(exc).__name__, None)
            return
        except Exception as exc:  # a bug or bad payload: close the row, keep the sender alive
            log.exception("outbox row %s could not be sent", row.id)
            self._close(row, OutboxStatus.failed, f"{type(exc).__name__}: {exc}")
            return
        if file_id and row.payload.get("photo_task_id"):
            with session_scope(self.engine) as session:
                session.execute(
                    sa.update(Task)
                    .where(col(Task.id) == int(row.payload["photo_task_id"]))
                    .values(telegram_file_id=file_id[:255])
                )
        self.stats["sent"] += 1

    def _close(self, row: Row, status: OutboxStatus, error: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                sa.update(OutgoingMessage)
                .where(col(OutgoingMessage.id) == row.id)
                .values(status=status, sent_at=None, claimed_until=None, last_error=error[:2000])
            )
        self.stats["failed"] += 1

    def _failed_call(
        self, row: Row, code: int, description: str, body: dict[str, Any] | None
    ) -> None:
        error = f"{code} {description}".strip()
        if code == 429:
            retry_after = 1
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                retry_after = int((body or {}).get("parameters", {}).get("retry_after", 1))
            retry_after = max(1, min(retry_after, 3600))
            with self.chat_lock:
                self.chat_next[row.chat_id] = time.monotonic() + retry_after
            self.stats["retried"] += 1
            self._defer(row, retry_after, error=error, count=False)
            return
        if code == 403:
            with session_scope(self.engine) as session:
                session.execute(
                    sa.update(Participant)
                    .where(col(Participant.telegram_id) == row.chat_id)
                    .values(is_bot_blocked=True)
                )
            self._close(row, OutboxStatus.failed, error)
            return
        if code == 0 or code >= 500:
            if row.attempts >= MAX_ATTEMPTS:
                self._close(row, OutboxStatus.failed, error)
                return
            self.stats["retried"] += 1
            self._defer(row, min(2**row.attempts, MAX_BACKOFF_SECONDS), error=error, count=True)
            return
        self._close(row, OutboxStatus.failed, error)  # 400 and friends: retrying will not help

    # --- loops ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        """Send until `stop`, while this process holds the sender lock; stand by otherwise."""
        lock = AdvisoryLock(self.engine, "sender")
        note = "outbox sender: another process sends; this one stands by"
        try:
            while not stop.is_set():
                if lock.take_turn(stop, note):
                    self._lead(lock, stop, idle_seconds)
        finally:
            self.pool.shutdown(wait=True)  # the calls in flight finish before the lock goes
            lock.release()

    def _lead(self, lock: AdvisoryLock, stop: threading.Event, idle_seconds: float) -> None:
        """Send while the lock is ours; returns on `stop` or when the lock is lost."""
        rate = self.settings.outbox_rate_per_second
        if lock.postgres:
            released = self.release_leases()
            log.info(
                "outbox sender: this process sends now (%s, %.0f msg/s; %d claimed rows released)",
                lock.name,
                rate,
                released,
            )
            if stop.wait(TAKEOVER_SECONDS):
                return
        else:
            log.info("outbox sender started (%.0f msg/s)", rate)
        self.confirm_lock, self.confirmed_at = lock.held, 0.0
        try:
            while not stop.is_set():
                if not lock.held():
                    log.warning("outbox sender: the lock is lost; standing by")
                    return
                try:
                    handled = self.run_once(stop)
                except Exception:
                    log.exception("outbox sender: a batch failed; retrying shortly")
                    handled = 0
                    stop.wait(2)
                if not handled:
                    stop.wait(idle_seconds)
        finally:
            self.confirm_lock = None

    def close(self) -> None:
        self.pool.shutdown(wait=True)


async def sender_loop(settings: Settings) -> None:
    """The sender as a background coroutine (web app lifespan, `lomaya worker`)."""
    stop = threading.Event()
    sender = Sender(settings)
    try:
        await asyncio.to_thread(sender.run, stop)
    finally:
        stop.set()  # the thread finishes the calls in flight, releases its other rows, exits
