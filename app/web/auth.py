"""Login and logout."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import accounts
from app.db import session_scope
from app.web.common import load_actor, render, safe_next

FAILED = "Неверная почта или пароль."


def _safe_next(value: str | None) -> str:
    # Only local paths: never send a fresh login to another site. Curators start at the queue.
    return safe_next(value, "/reports")


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":

        def already() -> bool:
            with session_scope() as session:
                return load_actor(request, session) is not None

        if await run_in_threadpool(already):
            return RedirectResponse(next_url, status_code=303)
        return render(request, "auth/login.html", {"next": next_url, "email": ""})

    form = await request.form()
    email = str(form.get("email", ""))[:254]
    password = str(form.get("password", ""))[:1024]
    next_url = _safe_next(str(form.get("next", "")) or next_url)
    ip = _client_ip(request)
    if not email.strip() or not password:
        return render(
            request,
            "auth/login.html",
            {"next": next_url, "email": email, "error": "Введите почту и пароль."},
            status_code=400,
        )

    def delay() -> float:
        with session_scope() as session:
            return accounts.throttle_delay(session, email, ip)

    wait = await run_in_threadpool(delay)
    if wait:
        await asyncio.sleep(wait)

    def check() -> str | None:
        with session_scope() as session:
            result = accounts.authenticate(session, email, password, ip)
            return accounts.start_session(session, result.staff) if result.staff else None

    secret = await run_in_threadpool(check)
    if secret is None:
        return render(
            request,
            "auth/login.html",
            {"next": next_url, "email": email, "error": FAILED},
            status_code=400,
        )
    request.session.clear()
    request.session["sid"] = secret
    return RedirectResponse(next_url, status_code=303)


async def logout(request: Request) -> Response:
    secret = request.session.get("sid")
    if secret:

        def end() -> None:
            with session_scope() as session:
                accounts.end_session(session, secret)

        await run_in_threadpool(end)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
