"""What every screen shares: templates, the logged-in staff member, the request's database session.

A staff endpoint is a plain sync function `view(request, session, actor)` wrapped by `staff_view`
(or `admin_view`): the wrapper reads the form (async), then runs the view in the thread pool inside
one session/transaction, after checking login and role. The view returns a response; the wrapper
commits. Russian words for dates, plurals and ages come from `app.text` and are only registered here
as template filters.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app import accounts, text
from app.db import session_scope
from app.models import Staff, StaffRole
from app.settings import PROJECT_ROOT, get_settings

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))
templates.env.filters.update(
    date=text.fmt_date,
    time=text.fmt_time,
    datetime=text.fmt_datetime,
    ago=text.ago,
)
templates.env.globals.update(
    plural=text.plural,
    age=text.age,
    # A report's status in words, as the queue shows it beside earlier and matching photos.
    outcome={
        "approved": "принято",
        "declined": "отклонено",
        "reviewing": "на проверке",
        "waiting": "ждём фото",
        "skipped": "пропущено",
    },
)

T = TypeVar("T")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def safe_next(value: Any, default: str = "/") -> str:
    """A local path to go to next; anything else (another site, garbage) gives `default`."""
    target = str(value or "")
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or urlparse(target).netloc
    ):
        return default
    return target


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    ctx = {
        "actor": getattr(request.state, "actor", None),
        "csrf_token": csrf_token(request),
        "settings": get_settings(),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


# --- flash messages: one line shown on the next page ----------------------------------------------


def flash(request: Request, message: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), message][-3:]


def pop_flash(request: Request) -> list[str]:
    return list(request.session.pop("flash", []) or [])


# --- the logged-in staff member -------------------------------------------------------------------


def load_actor(request: Request, session: Session) -> Staff | None:
    """The logged-in staff member, or None. The cookie's session id must name a live session row:
    logout, blocking, a new password or role end it (app.accounts), copies of the cookie too."""
    actor = accounts.session_staff(session, request.session.get("sid"))
    if actor is None:
        request.session.pop("sid", None)
    return actor


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login?next=" + quote(target, safe="")
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def forbidden(request: Request) -> Response:
    return render(
        request,
        "errors/error.html",
        {
            "code": 403,
            "title": "Нет доступа",
            "message": "Эта страница доступна только администраторам.",
        },
        status_code=403,
    )


@dataclass(frozen=True)
class Actor:
    """What templates know of the logged-in staff member (plain values, safe after the session ends)."""

    id: int
    name: str
    full_name: str
    role: StaffRole

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.administrator


View = Callable[[Request, Session, Staff], Response]


def staff_view(role: StaffRole | None = None) -> Callable[[View], Callable[[Request], Any]]:
    """Wrap a sync view: login required, `role` (if given) required, one transaction per request."""

    def decorate(view: View) -> Callable[[Request], Any]:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                request.state.form = await request.form(max_part_size=15 * 1024 * 1024)
            return await run_in_threadpool(_call, view, role, request)

        return endpoint

    return decorate


admin_view = staff_view(role=StaffRole.administrator)


def _call(view: View, role: StaffRole | None, request: Request) -> Response:
    with session_scope() as session:
        actor = load_actor(request, session)
        if actor is None:
            return login_redirect(request)
        assert actor.id is not None
        request.state.actor = Actor(actor.id, actor.name, actor.full_name, actor.role)
        if role is not None and actor.role != role and actor.role != StaffRole.administrator:
            return forbidden(request)
        return view(request, session, actor)


def form(request: Request) -> Any:
    """The parsed form of a POST handled by `staff_view`."""
    return request.state.form


def int_param(value: Any) -> int | None:
    """An int from a query, path or form value, or None for anything else (never an exception)."""
    return text.to_int(value)


def get_or_404(session: Session, model: type[T], raw_id: Any) -> T:
    """The row of `model` with the id in `raw_id` (a path or query value), else a 404 page."""
    object_id = text.to_int(raw_id)
    found = session.get(model, object_id) if object_id is not None else None
    if found is None:
        raise HTTPException(404)
    return found
