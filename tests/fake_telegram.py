"""A fake Telegram Bot API server for tests and benchmarks (no real Telegram anywhere).

A Starlette app run by uvicorn on a loopback port in a thread. It speaks the self-hosted Bot API
layout (`/bot{token}/{method}`, `/file/bot{token}/{path}`), reads parameters from the query string,
urlencoded forms and multipart bodies (the sync pyTelegramBotAPI client uses all three), records every
call, serves files for `getFile`, and can be told to fail: 429 with `retry_after`, 403, 500, or slow.

Like Telegram, it serves getUpdates to one client at a time (a second, overlapping call gets 409
and is counted in `conflicts`) and not while a webhook is set (409). Each call's `at` is taken when
the request reaches the app, before its body is read; a getUpdates call also records when it
`ended` (when its answer went out, or its client went away).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "123456:TEST-token_for-the-fake-server"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Ломая барьеры", "username": "lomaya_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() on arrival
    ended: float = 0.0  # getUpdates only
    wall: float = 0.0  # time.time() on arrival, to compare with other processes' logs


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None  # only calls to this chat fail (None: any)


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, tuple[bytes, str]] = {}  # file_id -> (bytes, file_unique_id)
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.failures: dict[str, list[Failure]] = {}
        self.delay = 0.0
        self.hide_file_sizes = False  # getFile answers without file_size (the download must cap)
        self.webhook: dict[str, Any] = {}
        self.polling = 0  # getUpdates calls being served now
        self.conflicts = 0  # getUpdates calls that overlapped another one
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )
        self.server: uvicorn.Server | None = None

    # --- test controls -------------------------------------------------------------------------

    def add_file(
        self, data: bytes, file_id: str | None = None, unique_id: str | None = None
    ) -> str:
        n = next(self._ids)
        file_id = file_id or f"file-{n}"
        self.files[file_id] = (data, unique_id or f"uniq-{n}")
        return file_id

    def unique_id(self, file_id: str) -> str:
        return self.files[file_id][1]

    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        chat_id: int | None = None,
        description: str = "",
    ) -> None:
        text = description or {
            429: "Too Many Requests: retry later",
            403: "Forbidden: bot was blocked by the user",
            500: "Internal Server Error",
        }.get(status, "Bad Request")
        with self._lock:
            self.failures.setdefault(method, []).extend(
                Failure(status, text, retry_after, chat_id) for _ in range(times)
            )

    def sent(self, *methods: str) -> list[Call]:
        wanted = set(methods or ("sendMessage", "sendPhoto", "editMessageText"))
        with self._lock:
            return [c for c in self.calls if c.method in wanted]

    def texts(self, chat_id: int | None = None) -> list[str]:
        out = []
        for c in self.sent("sendMessage", "sendPhoto", "editMessageText"):
            if chat_id is None or int(c.params.get("chat_id", 0)) == chat_id:
                out.append(str(c.params.get("text") or c.params.get("caption") or ""))
        return out

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.failures.clear()
            self.delay = 0.0
            self.webhook = {}
            self.conflicts = 0

    # --- server ----------------------------------------------------------------------------------

    def start(self) -> str:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, daemon=True)
        thread.start()
        while not self.server.started:
            if not thread.is_alive():
                raise RuntimeError("fake Telegram failed to start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = thread
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self._thread.join(timeout=10)

    # --- handlers --------------------------------------------------------------------------------

    async def _params(self, request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, bytes] = {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            body = await request.body()
            if body:
                params.update(json.loads(body))
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key, value in form.multi_items():
                if hasattr(value, "read"):
                    files[key] = await value.read()
                else:
                    params[key] = value
        return params, files

    def _error(self, failure: Failure) -> Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": failure.status,
            "description": failure.description,
        }
        if failure.retry_after is not None:
            body["parameters"] = {"retry_after": failure.retry_after}
        return JSONResponse(body, status_code=failure.status)

    def _take_failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        with self._lock:
            queue = self.failures.get(method) or []
            for i, failure in enumerate(queue):
                if failure.chat_id is None or str(failure.chat_id) == str(params.get("chat_id")):
                    return queue.pop(i)
        return None

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", 0))
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **extra,
        }

    async def _method(self, request: Request) -> Response:
        arrived, wall = time.monotonic(), time.time()
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        method = request.path_params["method"]
        params, files = await self._params(request)
        call = Call(method, params, files, arrived, wall=wall)
        with self._lock:
            self.calls.append(call)
        if method == "getUpdates":
            return await self._get_updates(request, call)
        if self.delay:
            await asyncio.sleep(self.delay)
        failure = self._take_failure(method, params)
        if failure is not None:
            return self._error(failure)
        result: Any = True
        if method == "getMe":
            result = BOT_USER
        elif method == "sendMessage":
            result = self._message(params, text=params.get("text", ""))
        elif method == "sendPhoto":
            photo = params.get("photo")
            if "photo" in files:
                photo = self.add_file(files["photo"])
            result = self._message(
                params,
                caption=params.get("caption", ""),
                photo=[
                    {
                        "file_id": photo,
                        "file_unique_id": f"u-{photo}",
                        "width": 640,
                        "height": 480,
                    }
                ],
            )
        elif method == "editMessageText":
            result = self._message(params, text=params.get("text", ""))
        elif method == "getFile":
            file_id = str(params.get("file_id", ""))
            if file_id not in self.files:
                return self._error(Failure(400, "Bad Request: invalid file_id"))
            data, unique = self.files[file_id]
            if len(data) > 20 * 1024 * 1024:
                return self._error(Failure(400, "Bad Request: file is too big"))
            result = {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": len(data),
                "file_path": f"photos/{file_id}.jpg",
            }
            if self.hide_file_sizes:
                del result["file_size"]
        elif method == "setWebhook":
            self.webhook = {"url": params.get("url", ""), "pending_update_count": 0}
        elif method == "deleteWebhook":
            self.webhook = {}
        elif method == "getWebhookInfo":
            result = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
            result.update(self.webhook)
        return JSONResponse({"ok": True, "result": result})

    async def _get_updates(self, request: Request, call: Call) -> Response:
        try:
            with self._lock:
                if self.webhook.get("url"):
                    return self._error(
                        Failure(
                            409,
                            "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first",
                        )
                    )
                if self.polling:
                    self.conflicts += 1
                    return self._error(
                        Failure(
                            409,
                            "Conflict: terminated by other getUpdates request; make sure that "
                            "only one bot instance is running",
                        )
                    )
                self.polling += 1
            try:
                failure = self._take_failure("getUpdates", call.params)
                if failure is not None:
                    return self._error(failure)
                offset = int(call.params.get("offset", 0) or 0)
                wait = min(float(call.params.get("timeout", 0) or 0), 0.3)  # a short "long poll"
                deadline = time.monotonic() + wait
                while True:
                    with self._lock:
                        result = [u for u in self.updates if u["update_id"] >= offset]
                    if result or time.monotonic() >= deadline or await request.is_disconnected():
                        break
                    await asyncio.sleep(0.05)
                return JSONResponse({"ok": True, "result": result})
            finally:
                with self._lock:
                    self.polling -= 1
        finally:
            call.ended = time.monotonic()

    async def _file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        path = request.path_params["path"]
        file_id = path.rsplit("/", 1)[-1].removesuffix(".jpg")
        if file_id not in self.files:
            return Response(status_code=404)
        with self._lock:
            self.calls.append(Call("download", {"file_id": file_id}, {}, time.monotonic()))
        return Response(self.files[file_id][0], media_type="application/octet-stream")
