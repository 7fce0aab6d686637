"""The live queue's event stream: `GET /events`, server-sent events for a logged-in curator's
open pages (the report queue, one card, the dashboard).

Each stream is an async generator waiting on its queue of the process's `app.live.Hub`; it holds
no database connection. Every LIVE_HEARTBEAT_SECONDS (and not later while events flow) it checks
in a short transaction that the staff session still lives and sends a keep-alive comment; after
a logout, a block or a new password it says `bye` and ends. A staff member may have
LIVE_STREAMS_PER_STAFF streams open at once in one process (more tabs get 429 and work without
live updates; with N processes the limit is per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app import accounts, live
from app.db import session_scope
from app.settings import get_settings

RETRY_MS = 2000  # how soon a browser reconnects after the connection dropped


def _event(**fields: Any) -> ServerSentEvent:
    return ServerSentEvent(sep="\n", **fields)


def _staff_id(secret: Any) -> int | None:
    with session_scope() as session:
        staff = accounts.session_staff(session, secret)
        return staff.id if staff is not None else None


async def events(request: Request) -> Response:
    secret = request.session.get("sid")
    staff_id = await run_in_threadpool(_staff_id, secret)
    if staff_id is None:
        return PlainTextResponse("Войдите, чтобы видеть очередь вживую.", status_code=401)
    hub: live.Hub = request.app.state.live
    if not hub.enter(staff_id):
        return PlainTextResponse(
            "Очередь уже открыта в нескольких вкладках — здесь она обновится при перезагрузке.",
            status_code=429,
        )
    queue = hub.subscribe()
    heartbeat = get_settings().live_heartbeat_seconds
    shutdown = anyio.Event()  # set by sse-starlette when the server stops

    async def stream() -> AsyncIterator[ServerSentEvent]:
        # "hello" means listening; if the database is away the listener keeps trying meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.connected.wait(), timeout=5)
        stopping = asyncio.ensure_future(shutdown.wait())
        try:
            yield _event(event="hello", data="", retry=RETRY_MS)
            checked = time.monotonic()
            while True:
                wait = max(0.0, checked + heartbeat - time.monotonic())
                getting = asyncio.ensure_future(queue.get())
                await asyncio.wait({getting, stopping}, timeout=wait, return_when="FIRST_COMPLETED")
                event = getting.result() if getting.done() else None
                getting.cancel()
                if stopping.done():
                    return  # the server stops: the browser reconnects (to another instance)
                if time.monotonic() - checked >= heartbeat:
                    if await run_in_threadpool(_staff_id, secret) != staff_id:
                        yield _event(event="bye", data="")
                        return
                    checked = time.monotonic()
                    if event is None:
                        yield _event(comment="ping")
                if event is not None:
                    yield _event(event="report", data=json.dumps(event.as_json()))
        finally:
            stopping.cancel()
            hub.unsubscribe(queue)
            hub.leave(staff_id)

    return EventSourceResponse(
        stream(),
        ping=0,
        sep="\n",
        headers={"X-Accel-Buffering": "no"},
        send_timeout=30,
        shutdown_event=shutdown,
        shutdown_grace_period=2,
    )
