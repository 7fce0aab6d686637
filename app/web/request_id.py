"""The request id: one id per HTTP request, in every log line written while it is handled and in
the response's `X-Request-ID` header.

The id is the proxy's `X-Request-ID` when it is a sane token (nginx sends its `$request_id`, 32 hex
digits, and logs it too, so one id ties nginx's line to the app's), else a new one. Anything else
a client puts in that header — spaces, non-ASCII, 200 characters, a name — is dropped, never
logged. A pure ASGI middleware: the context variable it sets is seen by the endpoint, by threads
that Starlette runs sync code in (they copy the context) and by uvicorn's access log line.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id

HEADER = b"x-request-id"
SANE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def incoming(scope: Scope) -> str | None:
    """The proxy's request id, if it sent a sane one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode("ascii") if SANE.fullmatch(value) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming(scope) or uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Reset on success only: an exception goes on to Starlette's outermost error handler and
        # uvicorn's error log, which run later in this request's task and should carry the id
        # too (the task, and with it the context, ends with the request).
        request_id.reset(token)
