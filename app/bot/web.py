"""HTTP endpoints of the bot: the webhook and the WebApps (registration, progress).

Everything under /telegram/ is exempt from the staff CSRF check: the webhook is authenticated by the
secret header, the WebApp by the signed `initData`.
"""

from __future__ import annotations

import hmac
import json
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app import images, progress, registration, storage, text, webapp
from app.bot import handlers, updates
from app.db import session_scope
from app.errors import InitDataError, MissingObject
from app.models import Task
from app.settings import get_settings
from app.web.common import templates

log = logging.getLogger("lomaya.bot")

MAX_BODY_BYTES = 1024 * 1024  # Telegram updates are small; a photo is referenced, not embedded


def _json(status: int, **body: object) -> JSONResponse:
    return JSONResponse({"ok": status < 400, **body}, status_code=status)


async def _read_capped(request: Request, cap: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > cap:
            return None
    return bytes(body)


def _no_constants(name: str) -> object:
    raise ValueError(
        f"{name} is not valid JSON"
    )  # NaN/Infinity: Python accepts them, JSON does not


async def webhook(request: Request) -> Response:
    settings = get_settings()
    if not settings.bot_enabled:
        return _json(404, error="the bot is off")
    secret = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not hmac.compare_digest(secret.encode(), settings.telegram_webhook_secret.encode()):
        return _json(403, error="wrong secret token")
    body = await _read_capped(request, MAX_BODY_BYTES)
    if body is None:
        return _json(413, error="update too large")
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
        return _json(400, error="malformed JSON")
    if updates.update_id_of(data) is None:
        return _json(400, error="not a Telegram update")
    try:
        result = await run_in_threadpool(updates.process_update, handlers.dispatcher(), data)
    except SQLAlchemyError as exc:
        log.error("webhook: database unavailable (%s); Telegram will redeliver", type(exc).__name__)
        return _json(503, error="database unavailable")
    return _json(200, result=result)


# --- the registration WebApp ------------------------------------------------------------------------


def _form_values(form) -> dict[str, str]:
    return {key: str(form.get(key, "") or "") for key in registration.FIELDS}


async def registration_page(request: Request) -> Response:
    if request.method == "GET":
        return templates.TemplateResponse(
            request, "registration/form.html", {"values": {}, "errors": {}, "message": ""}
        )
    form = await request.form()
    wants_json = "application/json" in request.headers.get("accept", "")
    init_data = str(form.get("init_data", "") or "")
    action = str(form.get("action", "submit"))
    values = _form_values(form)

    def answer(status: int, *, message: str = "", errors=None, ok=False, data=None) -> Response:
        if wants_json:
            return JSONResponse(
                {"ok": ok, "message": message, "errors": errors or {}, "values": data or {}},
                status_code=status,
            )
        return templates.TemplateResponse(
            request,
            "registration/form.html",
            {"values": values, "errors": errors or {}, "message": message, "done": ok},
            status_code=status,
        )

    try:
        user = webapp.verify(get_settings().bot_token, init_data)
    except InitDataError:
        return answer(
            403,
            message="Откройте форму из чата с ботом: нажмите кнопку «Заполнить анкету» "
            "(если форма была открыта давно — откройте её ещё раз).",
        )

    def work():
        with session_scope() as session:
            if action == "prefill":
                return None, registration.prefill(session, user.id)
            return registration.submit(session, user.id, values), None

    try:
        outcome, prefill = await run_in_threadpool(work)
    except SQLAlchemyError as exc:
        log.error("registration: database error %s", type(exc).__name__)
        return answer(503, message="Не получилось сохранить. Попробуйте ещё раз через минуту.")
    if outcome is None:
        return answer(200, ok=True, data=prefill)
    if not outcome.ok:
        return answer(422, message=outcome.message, errors=outcome.errors)
    return answer(200, ok=True, message=outcome.message)


# --- the progress WebApp («Мой прогресс») ---------------------------------------------------------

# Personal data: never stored by a cache, the WebView's included.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
OPEN_FROM_CHAT = (
    "Эта страница открывается из чата с ботом: нажмите кнопку «Мой прогресс» "
    "(если страница была открыта давно — откройте её ещё раз)."
)


async def progress_page(request: Request) -> Response:
    """GET: the page, the same for everyone (no personal data; it says what to do when opened
    outside Telegram). POST with `init_data`: the family's progress as an HTML fragment that the
    page's small script puts in place — one request, rendered here."""
    if request.method == "GET":
        return templates.TemplateResponse(request, "progress/page.html", {}, headers=NO_STORE)
    form = await request.form()
    init_data = str(form.get("init_data", "") or "")
    try:
        user = webapp.verify(get_settings().bot_token, init_data)
    except InitDataError:
        return _progress_fragment(request, 403, error=OPEN_FROM_CHAT)

    def work():
        with session_scope() as session:
            return progress.find(session, user.id)

    try:
        found = await run_in_threadpool(work)
    except SQLAlchemyError as exc:
        log.error("progress: database error %s", type(exc).__name__)
        return _progress_fragment(
            request, 503, error="Не получилось загрузить. Попробуйте ещё раз через минуту."
        )
    return _progress_fragment(request, 200, p=found)


def _progress_fragment(request: Request, status: int, **context: object) -> Response:
    context = {
        "error": None,
        "p": None,
        "labels": progress.LABELS,
        "icons": progress.ICONS,
        "hour": get_settings().send_new_task_hour,
        **context,
    }
    return templates.TemplateResponse(
        request, "progress/_progress.html", context, status_code=status, headers=NO_STORE
    )


async def task_picture(request: Request) -> Response:
    """A task's picture (its thumbnail) for the progress page, without a staff login: task
    pictures are the same for every child and hold nothing personal. Only a task's own picture is
    served (looked up by task id, its key under `tasks/`), never a report photo."""
    task_id = text.to_int(request.path_params.get("task_id"))

    def work():
        with session_scope() as session:
            key = session.exec(select(Task.image_key).where(col(Task.id) == task_id)).first()
        if not key or not key.startswith("tasks/"):
            return None
        try:
            return storage.stream(images.thumb_key_of(key))
        except (ValueError, MissingObject):
            return None

    body = await run_in_threadpool(work) if task_id is not None else None
    if body is None:
        return Response("Картинки нет.", status_code=404, media_type="text/plain; charset=utf-8")
    return StreamingResponse(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
