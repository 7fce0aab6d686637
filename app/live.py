"""Live queue events (product.md §6a "Live queue"): what changed in the report queue, told to the
curators' open pages without a reload.

`notify` is called by the domain in the transaction of the change, so nobody hears of a change
that was rolled back: a photo went to review (`new`), a report was decided (`decided`) or undone
(`undone`), cards on someone's screen were released (`freed`). An event is the kind and a report
id — never a name or anything else personal.

PostgreSQL: `NOTIFY lomaya_live` (delivered at commit, to every app process). Each process keeps
one `LISTEN` connection of its own (not from the pool; reconnected with a back-off when it drops,
and its subscribers are told to catch up) and fans the events out to its open streams through
asyncio queues (`Hub`). SQLite has no NOTIFY: the event is a row of `live_event`, and each process
polls that table every LIVE_POLL_SECONDS while it has open streams (one cheap primary-key range
read for all of them); rows older than a few minutes are deleted by the pollers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock
from app.db import get_engine, is_postgres, libpq_url
from app.models import LiveEvent
from app.settings import Settings

log = logging.getLogger("lomaya.live")

CHANNEL = "lomaya_live"
NEW, DECIDED, UNDONE, FREED = "new", "decided", "undone", "freed"
RESYNC = "resync"  # events may have been missed (the LISTEN connection dropped): refetch
KINDS = {NEW, DECIDED, UNDONE, FREED}
QUEUE_SIZE = 500  # events waiting for one slow stream; beyond that it is told to resync
KEEP_SQLITE_EVENTS = timedelta(minutes=5)


@dataclass(frozen=True)
class Event:
    kind: str
    report_id: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.report_id}


def notify(session: Session, kind: str, report_id: int = 0) -> None:
    """Tell the open queues about a change, when (and only if) this transaction commits."""
    assert kind in KINDS
    if is_postgres(session):
        session.execute(
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{kind}:{report_id}"},
        )
    else:
        session.execute(sa.insert(LiveEvent).values(kind=kind, report_id=report_id, at=clock.now()))


def parse(payload: str) -> Event | None:
    kind, _, raw_id = payload.partition(":")
    if kind not in KINDS or not raw_id.isdigit():
        return None
    return Event(kind, int(raw_id))


class Hub:
    """One per app (process): the open streams' queues, fed by one listener task, and how many
    streams each staff member has open here (LIVE_STREAMS_PER_STAFF is counted per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues: set[asyncio.Queue[Event]] = set()
        self.streams: dict[int, int] = {}
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # the listener is ready (a test or a bench waits for it)

    # --- streams --------------------------------------------------------------------------------

    def enter(self, staff_id: int) -> bool:
        """Count a new stream of `staff_id`; False if they already have the most allowed."""
        if self.streams.get(staff_id, 0) >= self.settings.live_streams_per_staff:
            return False
        self.streams[staff_id] = self.streams.get(staff_id, 0) + 1
        return True

    def leave(self, staff_id: int) -> None:
        left = self.streams.get(staff_id, 0) - 1
        if left > 0:
            self.streams[staff_id] = left
        else:
            self.streams.pop(staff_id, None)

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.queues.add(queue)
        if self.task is None or self.task.done():
            listen = self._listen_pg if not self.settings.is_sqlite else self._poll_sqlite
            self.task = asyncio.get_running_loop().create_task(listen())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self.queues.discard(queue)

    def publish(self, event: Event) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stuck stream: drop what it missed, tell it to refetch
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(Event(RESYNC))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    # --- listeners --------------------------------------------------------------------------------

    async def _listen_pg(self) -> None:
        import psycopg

        backoff = 0.5
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_url(self.settings.database_url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if not first:
                        self.publish(Event(RESYNC))
                    first, backoff = False, 0.5
                    async for note in conn.notifies():
                        event = parse(note.payload)
                        if event is not None:
                            self.publish(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted, the network dropped: listen again
                self.connected.clear()
                log.warning("live queue: LISTEN connection lost (%s), retrying", type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _poll_sqlite(self) -> None:
        last = await asyncio.to_thread(_last_event_id)
        self.connected.set()
        polls = 0
        while True:
            await asyncio.sleep(self.settings.live_poll_seconds)
            if not self.queues:  # nobody listens in this process: no polling until a stream opens
                self.connected.clear()
                return
            try:
                rows = await asyncio.to_thread(_events_after, last, polls % 60 == 59)
            except Exception as exc:  # a locked or busy database: try again at the next poll
                log.warning("live queue: poll failed (%s)", type(exc).__name__)
                continue
            polls += 1
            for event_id, kind, report_id in rows:
                last = max(last, event_id)
                self.publish(Event(kind, report_id))


def _last_event_id() -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(col(LiveEvent.id)))).scalar() or 0)


def _events_after(last: int, clean: bool) -> list[tuple[int, str, int]]:
    with get_engine().begin() as conn:
        rows = conn.execute(
            sa.select(col(LiveEvent.id), col(LiveEvent.kind), col(LiveEvent.report_id))
            .where(col(LiveEvent.id) > last)
            .order_by(col(LiveEvent.id))
        ).all()
        found = [(int(r[0] or 0), str(r[1]), int(r[2] or 0)) for r in rows]
        if clean:  # only rows already read: one written meanwhile is read at the next poll
            seen = max([last, *(r[0] for r in found)])
            conn.execute(
                sa.delete(LiveEvent).where(
                    col(LiveEvent.id) <= seen, col(LiveEvent.at) < clock.now() - KEEP_SQLITE_EVENTS
                )
            )
    return found
