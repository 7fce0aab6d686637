"""What every screen shares: templates, the current staff member, the request's database session.

A staff endpoint is a plain sync function `view(request, db, staff)` wrapped by `staff_view`: the
wrapper reads the form (async), then runs the view in the thread pool inside one session/transaction,
after checking login and role. The view returns a response; the wrapper commits.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app import clock
from app.db import session_scope
from app.models import Staff, StaffRole, StaffStatus
from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))

MONTHS = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)


def plural(n: int, one: str, few: str, many: str) -> str:
    """Russian plural form: plural(1, "день", "дня", "дней") → "день"."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def local(value: datetime | None) -> datetime | None:
    return value.astimezone(get_settings().tz) if value else None


def fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(get_settings().tz)
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def fmt_time(value: datetime | None) -> str:
    return local(value).strftime("%H:%M") if value else ""  # type: ignore[union-attr]


def fmt_datetime(value: datetime | None) -> str:
    return f"{fmt_date(value)}, {fmt_time(value)}" if value else ""


def ago(value: datetime | None) -> str:
    """ "5 минут назад" in Russian."""
    if value is None:
        return ""
    seconds = int((clock.now() - value).total_seconds())
    if seconds < 60:
        return "только что"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} {plural(minutes, 'минуту', 'минуты', 'минут')} назад"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} {plural(hours, 'час', 'часа', 'часов')} назад"
    days = hours // 24
    return f"{days} {plural(days, 'день', 'дня', 'дней')} назад"


def age(born: date | None, on: date | None = None) -> int | None:
    if born is None:
        return None
    on = on or clock.local_today()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


templates.env.filters.update(date=fmt_date, time=fmt_time, datetime=fmt_datetime, ago=ago)
templates.env.globals.update(plural=plural, age=age)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def safe_next(value: Any, default: str = "/") -> str:
    """A local path to go to next; anything else (another site, garbage) gives `default`."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text or urlparse(text).netloc:
        return default
    return text


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
        "staff": getattr(request.state, "staff", None),
        "csrf_token": csrf_token(request),
        "settings": get_settings(),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def load_staff(request: Request, db: Session) -> Staff | None:
    """The logged-in staff member, or None. A blocked account or a changed password ends the session."""
    staff_id = request.session.get("staff_id")
    if not isinstance(staff_id, int):
        return None
    staff = db.get(Staff, staff_id)
    if (
        staff is None
        or staff.status != StaffStatus.active
        or staff.session_version != request.session.get("sv")
    ):
        request.session.pop("staff_id", None)
        request.session.pop("sv", None)
        return None
    return staff


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
class Viewer:
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


def _call(view: View, role: StaffRole | None, request: Request) -> Response:
    with session_scope() as db:
        staff = load_staff(request, db)
        if staff is None:
            return login_redirect(request)
        request.state.staff = Viewer(staff.id, staff.name, staff.full_name, staff.role)  # type: ignore[arg-type]
        if role is not None and staff.role != role and staff.role != StaffRole.administrator:
            return forbidden(request)
        return view(request, db, staff)


def form(request: Request) -> Any:
    """The parsed form of a POST handled by `staff_view`."""
    return request.state.form


def int_param(value: Any) -> int | None:
    """An int from a query or form value, or None for anything else (never an exception)."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if -(2**63) <= number < 2**63 else None
