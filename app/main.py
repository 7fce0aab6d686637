"""create_app(): the whole URL map and the middleware list, on one screen."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app import accounts, background, live, logs
from app.bot import polling
from app.bot import web as bot_web
from app.db import get_engine
from app.settings import PROJECT_ROOT, Settings, get_settings, set_settings
from app.web import applications as application_views
from app.web import audit as audit_views
from app.web import auth, basics, reports
from app.web import live as live_views
from app.web import participants as participant_views
from app.web import results as result_views
from app.web import shifts as shift_views
from app.web import staff as staff_views
from app.web import tasks as task_views
from app.web import updates as update_views
from app.web.common import render
from app.web.csrf import CSRFMiddleware
from app.web.request_id import RequestIdMiddleware

log = logging.getLogger("lomaya")


def routes() -> list:
    return [
        # --- staff: sign in ---
        Route("/login", auth.login, methods=["GET", "POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        # --- staff: screens ---
        Route("/", basics.dashboard),
        Route("/events", live_views.events),  # the live queue (server-sent events)
        # --- staff: moderation (report queue, application queue) ---
        Route("/reports", reports.queue),
        Route("/reports/count", reports.count),
        Route("/reports/claims", reports.claims_renew, methods=["POST"]),
        Route("/reports/claims/release", reports.claims_release, methods=["POST"]),
        Route("/reports/{report_id:int}", reports.show),
        Route("/reports/{report_id:int}/approve", reports.approve, methods=["POST"]),
        Route("/reports/{report_id:int}/decline", reports.decline, methods=["POST"]),
        Route("/reports/{report_id:int}/undo", reports.undo, methods=["POST"]),
        Route("/applications", application_views.queue),
        Route("/applications/approve", application_views.approve_selected, methods=["POST"]),
        Route(
            "/applications/{application_id:int}/approve",
            application_views.approve,
            methods=["POST"],
        ),
        Route(
            "/applications/{application_id:int}/decline",
            application_views.decline,
            methods=["POST"],
        ),
        Route("/applications/{application_id:int}/undo", application_views.undo, methods=["POST"]),
        # --- admin: shifts and plans ---
        Route("/shifts", shift_views.shift_list),
        Route("/shifts/new", shift_views.shift_new, methods=["GET", "POST"]),
        Route("/shifts/{shift_id:int}", shift_views.shift_detail, methods=["GET", "POST"]),
        Route(
            "/shifts/{shift_id:int}/final-message",
            shift_views.shift_final_message,
            methods=["POST"],
        ),
        Route("/shifts/{shift_id:int}/start", shift_views.shift_start, methods=["POST"]),
        Route("/shifts/{shift_id:int}/cancel", shift_views.shift_cancel, methods=["POST"]),
        Route("/shifts/{shift_id:int}/plan", shift_views.shift_plan, methods=["GET", "POST"]),
        Route(
            "/shifts/{shift_id:int}/plan/{day:int}", shift_views.shift_plan_day, methods=["POST"]
        ),
        # --- admin: tasks ---
        Route("/tasks", task_views.task_list),
        Route("/tasks/new", task_views.task_new, methods=["GET", "POST"]),
        Route("/tasks/{task_id:int}", task_views.task_edit, methods=["GET", "POST"]),
        Route("/tasks/{task_id:int}/archive", task_views.task_archive, methods=["POST"]),
        Route("/tasks/{task_id:int}/delete", task_views.task_delete, methods=["POST"]),
        # --- staff: participants and members ---
        Route("/participants", participant_views.participant_list),
        Route("/participants/{participant_id:int}", participant_views.participant_detail),
        Route(
            "/participants/{participant_id:int}/test",
            participant_views.participant_test,
            methods=["POST"],
        ),
        Route("/participants/{participant_id:int}/export", participant_views.participant_export),
        Route(
            "/participants/{participant_id:int}/delete",
            participant_views.participant_delete,
            methods=["GET", "POST"],
        ),
        Route("/members/{member_id:int}", participant_views.member_detail),
        Route("/members/{member_id:int}/status", participant_views.member_status, methods=["POST"]),
        Route("/members/{member_id:int}/pauses", participant_views.member_pause, methods=["POST"]),
        Route(
            "/members/{member_id:int}/pauses/{pause_id:int}/end",
            participant_views.member_pause_end,
            methods=["POST"],
        ),
        # --- staff: results and exports ---
        Route("/shifts/{shift_id:int}/results", result_views.results_page),
        Route("/shifts/{shift_id:int}/results.{ext}", result_views.results_export),
        # --- admin: staff accounts; everyone: profile; public: one-time links ---
        Route("/staff", staff_views.staff_list),
        Route("/staff/invite", staff_views.staff_invite, methods=["POST"]),
        Route("/staff/tokens/{token_id:int}/revoke", staff_views.token_revoke, methods=["POST"]),
        Route("/staff/tokens/{token_id:int}/reissue", staff_views.token_reissue, methods=["POST"]),
        Route("/staff/{staff_id:int}/role", staff_views.staff_role, methods=["POST"]),
        Route("/staff/{staff_id:int}/block", staff_views.staff_block, methods=["POST"]),
        Route("/staff/{staff_id:int}/reset", staff_views.staff_reset, methods=["POST"]),
        Route("/staff/{staff_id:int}/pace", staff_views.staff_pace),
        Route("/invite/{secret}", staff_views.invite_accept, methods=["GET", "POST"]),
        Route("/profile", staff_views.profile, methods=["GET", "POST"]),
        Route("/profile/password", staff_views.profile_password, methods=["POST"]),
        # --- admin: audit log; Telegram updates that failed ---
        Route("/audit", audit_views.audit_list),
        Route("/updates", update_views.update_list),
        Route("/updates/{update_id:int}/retry", update_views.update_retry, methods=["POST"]),
        # --- private media (photos, task pictures) ---
        Route("/media/{key:path}", basics.media),
        # --- Telegram: webhook and the WebApps (authenticated by secret/initData) ---
        Route("/telegram/webhook", bot_web.webhook, methods=["POST"]),
        Route("/telegram/registration", bot_web.registration_page, methods=["GET", "POST"]),
        Route("/telegram/consent/{version}", bot_web.consent_text),
        Route("/telegram/progress", bot_web.progress_page, methods=["GET", "POST"]),
        Route("/telegram/tasks/{task_id:int}/picture", bot_web.task_picture),
        # --- operations ---
        Route("/health", basics.health_probe),
        Mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static"),
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
    response = render(
        request,
        "errors/error.html",
        {"code": code, "title": titles.get(code, "Ошибка"), "message": messages.get(code, "")},
        status_code=code,
    )
    if code == 500 and logs.request_id.get():  # a 500 is answered outside RequestIdMiddleware
        response.headers["X-Request-ID"] = logs.request_id.get() or ""
    return response


def _background_jobs(settings: Settings) -> list[background.Job]:
    """The worker's jobs plus, in polling mode, the bot's long polling."""
    jobs = background.worker_jobs(settings)
    if settings.bot_enabled and not settings.bot_webhook_mode:
        jobs.append(polling.polling_loop)
    return jobs


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> Starlette:
    """The web app. Its background jobs (outbox sender, scheduler, polling) run in this process
    only when `start_background` and WEB_BACKGROUND allow; production runs web processes without
    them (`lomaya serve --workers N --no-background`) plus `lomaya worker` (docs/deploy.md)."""
    settings = set_settings(settings or get_settings())
    start_background = start_background and settings.web_background

    @asynccontextmanager
    async def lifespan(app: Starlette):
        logs.quiet_access_log()
        get_engine(settings)
        tasks = background.start(settings, _background_jobs(settings)) if start_background else []
        if not settings.web_background:
            log.info("WEB_BACKGROUND=false: no sender, scheduler or polling here (lomaya worker)")
        if settings.bot_enabled:  # bot start-up imports before the freeze below, not in a request
            from app import images
            from app.bot.handlers import dispatcher

            dispatcher(settings)
            images.warm_up()
        # Start-up garbage is permanent: freeze it so GC passes stay short (tech-notes: p99 tails).
        gc.collect()
        gc.freeze()
        yield
        await app.state.live.stop()
        await background.stop(tasks)

    middleware = [
        Middleware(RequestIdMiddleware),  # first: every log line of a request carries its id
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie="lomaya_session",
            max_age=int(accounts.SESSION_LIFETIME.total_seconds()),  # the session rows' too
            same_site="lax",
            https_only=settings.https,
        ),
        Middleware(CSRFMiddleware, exempt_prefixes=("/telegram/",)),
    ]
    web = Starlette(
        routes=routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, 500: http_error},
    )
    web.state.live = live.Hub(settings)  # the live queue's streams in this process
    return web
