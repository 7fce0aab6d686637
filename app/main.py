"""create_app(): the whole URL map and the middleware list, on one screen."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app import background
from app.bot import web as bot_web
from app.db import get_engine
from app.settings import Settings, get_settings, set_settings
from app.web import auth, basics
from app.web.common import render
from app.web.csrf import CSRFMiddleware

log = logging.getLogger("lomaya")
ROOT = Path(__file__).resolve().parent.parent
SESSION_DAYS = 14


def routes() -> list:
    return [
        # --- staff: sign in ---
        Route("/login", auth.login, methods=["GET", "POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        # --- staff: screens ---
        Route("/", basics.dashboard),
        # --- private media (photos, task pictures) ---
        Route("/media/{key:path}", basics.media),
        # --- Telegram: webhook and the registration WebApp (authenticated by secret/initData) ---
        Route("/telegram/webhook", bot_web.webhook, methods=["POST"]),
        Route("/telegram/registration", bot_web.registration_page, methods=["GET", "POST"]),
        # --- operations ---
        Route("/health", basics.health_probe),
        Mount("/static", StaticFiles(directory=ROOT / "static"), name="static"),
    ]


async def http_error(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith(("/health", "/telegram/webhook")):
        return JSONResponse({"ok": False, "error": code}, status_code=code)
    titles = {404: "Страница не найдена", 405: "Так нельзя", 500: "Что-то пошло не так"}
    messages = {
        404: "Такой страницы нет. Проверьте адрес или вернитесь на главную.",
        500: "Мы уже знаем об ошибке. Попробуйте ещё раз через минуту.",
    }
    return render(
        request,
        "errors/error.html",
        {"code": code, "title": titles.get(code, "Ошибка"), "message": messages.get(code, "")},
        status_code=code,
    )


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> Starlette:
    settings = set_settings(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: Starlette):
        get_engine(settings)
        tasks = background.start(settings) if start_background else []
        # Start-up garbage is permanent: freeze it so GC passes stay short (tech-notes: p99 tails).
        gc.collect()
        gc.freeze()
        yield
        await background.stop(tasks)

    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie="lomaya_session",
            max_age=SESSION_DAYS * 24 * 3600,
            same_site="lax",
            https_only=settings.https,
        ),
        Middleware(CSRFMiddleware, exempt_prefixes=("/telegram/",)),
    ]
    return Starlette(
        routes=routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, 500: http_error},
    )
