"""CSRF protection for every unsafe request.

The token lives in the signed session; a request must echo it in the `X-CSRF-Token` header (HTMX
sends it, see base.html) or in a `csrf_token` form field. The body of a form request is read once,
checked, and replayed to the app. Paths authenticated by other means (the Telegram webhook's secret
header, the WebApp's signed initData) are exempt: they carry no session cookie to abuse.

In depth: an unsafe request whose `Origin` — or, without one, `Referer` — names another site is
refused the same way, even with a valid token. The same site is the scheme, host and port the
request was made to (behind nginx: the `Host` header, and the scheme uvicorn takes from a trusted
proxy's `X-Forwarded-Proto`) or the origin of `APPLICATION_URL`. `Origin: null` (sandboxed frames,
privacy redirects) is foreign. A request with neither header (old browsers, curl) is judged by the
token alone.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import get_settings
from app.web.common import render

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_BODY = 25 * 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE
            or scope["path"].startswith(self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _from_another_site(scope, headers):
            await _rejected(scope, receive, send)
            return
        expected = scope.get("session", {}).get("csrf", "")
        given = headers.get("x-csrf-token", "")
        content_type = headers.get("content-type", "")
        if not given and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            body, too_big = await _read_body(receive)
            if too_big:
                await PlainTextResponse("Файл слишком большой.", status_code=413)(
                    scope, receive, send
                )
                return
            receive = _replay(body)
            form = await Request(scope, receive).form(max_part_size=MAX_BODY)
            given = str(form.get("csrf_token", ""))
            await form.close()
            receive = _replay(body)
        if not expected or not given or not hmac.compare_digest(str(expected), given):
            await _rejected(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _origin(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL; None for "null" and anything unusable."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number or out of range
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def _own_origins(scope: Scope, headers: Headers) -> set[Origin]:
    host = headers.get("host", "")
    if not host and scope.get("server"):
        name, port = scope["server"]
        host = f"[{name}]:{port}" if ":" in str(name) else f"{name}:{port}"
    candidates = [_origin(f"{scope.get('scheme', 'http')}://{host}")]
    if get_settings().application_url:
        candidates.append(_origin(get_settings().application_url))
    return {origin for origin in candidates if origin is not None}


def _from_another_site(scope: Scope, headers: Headers) -> bool:
    """True when the browser says the request comes from a page of another site."""
    for name in ("origin", "referer"):
        values = [v for v in headers.getlist(name) if v.strip()]
        if not values:
            continue  # no Origin: look at the Referer; neither: the token decides
        if len(values) > 1:
            return True
        source = _origin(values[0])
        return source is None or source not in _own_origins(scope, headers)
    return False


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _rejected(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response: Response = render(
        request,
        "errors/error.html",
        {
            "code": 403,
            "title": "Страница устарела",
            "message": "Обновите страницу и повторите действие — так мы защищаем вас от подделанных запросов.",
        },
        status_code=403,
    )
    if request.headers.get("HX-Request") == "true":
        response.headers["HX-Reswap"] = "none"
    await response(scope, receive, send)
