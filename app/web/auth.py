"""Login and logout.

A login attempt first gets its moment from the throttle (app.accounts.reserve_attempt, its own
short transaction), waits for it here without holding a database connection, then has its password
checked. A burst of parallel attempts is thus spread out like a sequence of them.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import accounts, clock, text
from app.db import session_scope
from app.errors import TooManyAttempts
from app.web.common import load_actor, render, safe_next

FAILED = "Неверная почта или пароль."


def _safe_next(value: str | None) -> str:
    # Only local paths: never send a fresh login to another site. Curators start at the queue.
    return safe_next(value, "/reports")


def _client_ip(request: Request) -> str:
    # Behind nginx this is the real client only if FORWARDED_ALLOW_IPS names nginx (docs/deploy.md).
    return request.client.host if request.client else "unknown"


async def _wait_until(moment: datetime) -> None:
    """Sleep until the attempt's moment (a connection is not held meanwhile)."""
    seconds = (moment - clock.now()).total_seconds()
    if seconds > 0:
        await asyncio.sleep(seconds)


def _too_many(retry_after: int) -> str:
    minutes = max(1, math.ceil(retry_after / 60))
    return (
        "Слишком много попыток входа. Попробуйте через "
        f"{minutes} {text.plural(minutes, 'минуту', 'минуты', 'минут')}."
    )


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

    def reserve() -> datetime:
        with session_scope() as session:
            return accounts.reserve_attempt(session, email, ip)

    try:
        moment = await run_in_threadpool(reserve)
    except TooManyAttempts as exc:
        # Answered at once, the password unchecked: the same for a known and an unknown e-mail.
        return render(
            request,
            "auth/login.html",
            {"next": next_url, "email": email, "error": _too_many(exc.retry_after)},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    await _wait_until(moment)

    def check() -> str | None:
        with session_scope() as session:
            staff = accounts.authenticate(session, email, password)
            return accounts.start_session(session, staff) if staff else None

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
