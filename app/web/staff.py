"""Staff accounts (administrators), one-time links (public), the profile (everyone), a curator's
pace (one's own for everyone, anyone's for administrators)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import accounts, mail, pace, staff_admin
from app.db import session_scope
from app.errors import FormErrors
from app.models import Staff, StaffToken, TokenPurpose
from app.settings import get_settings
from app.web.common import admin_view, form, get_or_404, render, staff_view


def _link(request: Request, secret: str) -> str:
    base = get_settings().application_url or str(request.base_url).rstrip("/")
    return f"{base}/invite/{secret}"


def _list(
    request: Request,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/list.html",
        {
            "people": staff_admin.staff_list(session),
            "tokens": staff_admin.open_tokens(session),
            "roles": staff_admin.ROLE_LABELS,
            "errors": errors or {},
            "values": values or {"email": "", "name": "", "surname": "", "role": "expert"},
            "notice": request.query_params.get("done"),
        },
        status_code,
    )


@admin_view
def staff_list(request: Request, session: Session, actor: Staff) -> Response:
    return _list(request, session)


def _issued(request: Request, token: StaffToken, secret: str) -> Response:
    link = _link(request, secret)
    if token.purpose == TokenPurpose.invite:
        subject = "Приглашение на сайт «Ломая барьеры»"
        body = (
            f"Здравствуйте, {token.name}!\n\nВас пригласили на сайт «Ломая барьеры». "
            f"Чтобы задать пароль и войти, откройте ссылку:\n{link}\n\n"
            f"Ссылка действует {get_settings().invite_ttl_hours} ч. и сработает один раз."
        )
    else:
        subject = "Новый пароль для сайта «Ломая барьеры»"
        body = (
            f"Здравствуйте, {token.name}!\n\nЧтобы задать новый пароль, откройте ссылку:\n{link}\n\n"
            f"Ссылка действует {get_settings().invite_ttl_hours} ч. и сработает один раз."
        )
    emailed = mail.send(token.email, subject, body)
    return render(
        request,
        "staff/link.html",
        {"token": token, "link": link, "emailed": emailed, "smtp": mail.configured()},
    )


@admin_view
def staff_invite(request: Request, session: Session, actor: Staff) -> Response:
    data = form(request)
    values = {k: str(data.get(k, ""))[:300] for k in ("email", "name", "surname", "role")}
    try:
        token, secret = staff_admin.invite(
            session, actor, values["email"], values["name"], values["surname"], values["role"]
        )
    except FormErrors as exc:
        return _list(request, session, errors=exc.errors, values=values, status_code=400)
    return _issued(request, token, secret)


def _token(request: Request, session: Session) -> StaffToken:
    return get_or_404(session, StaffToken, request.path_params.get("token_id"))


@admin_view
def token_revoke(request: Request, session: Session, actor: Staff) -> Response:
    staff_admin.revoke(session, actor, _token(request, session))
    return RedirectResponse("/staff?done=revoked", 303)


@admin_view
def token_reissue(request: Request, session: Session, actor: Staff) -> Response:
    try:
        token, secret = staff_admin.reissue(session, actor, _token(request, session))
    except FormErrors as exc:
        return _list(request, session, errors=exc.errors, status_code=409)
    return _issued(request, token, secret)


def _person(request: Request, session: Session) -> Staff:
    return get_or_404(session, Staff, request.path_params.get("staff_id"))


@admin_view
def staff_role(request: Request, session: Session, actor: Staff) -> Response:
    person = _person(request, session)
    try:
        staff_admin.set_role(session, actor, person, str(form(request).get("role", "")))
    except FormErrors as exc:
        return _list(request, session, errors=exc.errors, status_code=409)
    return RedirectResponse("/staff?done=saved", 303)


@admin_view
def staff_block(request: Request, session: Session, actor: Staff) -> Response:
    person = _person(request, session)
    try:
        staff_admin.set_blocked(session, actor, person, form(request).get("blocked") == "1")
    except FormErrors as exc:
        return _list(request, session, errors=exc.errors, status_code=409)
    return RedirectResponse("/staff?done=saved", 303)


@admin_view
def staff_pace(request: Request, session: Session, actor: Staff) -> Response:
    """A staff member's pace: administrators only (everyone sees their own on the profile)."""
    person = _person(request, session)
    return render(
        request, "staff/pace.html", {"person": person, "pace": pace.board(session, person)}
    )


@admin_view
def staff_reset(request: Request, session: Session, actor: Staff) -> Response:
    token, secret = staff_admin.password_reset(session, actor, _person(request, session))
    return _issued(request, token, secret)


# --- the one-time link (no login) -----------------------------------------------------------------


async def invite_accept(request: Request) -> Response:
    secret = request.path_params["secret"]
    data = await request.form() if request.method == "POST" else None

    def run() -> tuple[str, dict[str, Any]]:
        with session_scope() as session:
            token = staff_admin.find_token(session, secret)
            if token is None:
                return "gone", {}
            ctx: dict[str, Any] = {
                "purpose": token.purpose.value,
                "email": token.email,
                "name": token.name,
                "surname": token.surname,
                "errors": {},
            }
            if data is None:
                return "form", ctx
            try:
                person = staff_admin.accept(
                    session,
                    secret,
                    str(data.get("password", ""))[:1024],
                    str(data.get("password2", ""))[:1024],
                    str(data.get("name", ""))[:200],
                    str(data.get("surname", ""))[:200],
                )
            except FormErrors as exc:
                session.rollback()
                ctx["errors"] = exc.errors
                ctx["name"] = str(data.get("name", token.name))[:200]
                ctx["surname"] = str(data.get("surname", token.surname))[:200]
                return "form", ctx
            return "done", {"sid": accounts.start_session(session, person)}

    outcome, ctx = await run_in_threadpool(run)
    if outcome == "gone":
        return render(
            request,
            "errors/error.html",
            {
                "code": 410,
                "title": "Ссылка больше не действует",
                "message": "Возможно, она устарела или ею уже воспользовались. Попросите администратора прислать новую.",
            },
            status_code=410,
        )
    if outcome == "done":
        request.session.clear()
        request.session["sid"] = ctx["sid"]
        return RedirectResponse("/", 303)
    return render(request, "staff/accept.html", ctx, 400 if ctx["errors"] else 200)


# --- the profile ----------------------------------------------------------------------------------


@staff_view()
def profile(request: Request, session: Session, actor: Staff) -> Response:
    errors: dict[str, str] = {}
    values = {"name": actor.name, "surname": actor.surname}
    notice = request.query_params.get("done")
    if request.method == "POST":
        data = form(request)
        values = {
            "name": str(data.get("name", ""))[:200],
            "surname": str(data.get("surname", ""))[:200],
        }
        try:
            staff_admin.update_profile(session, actor, values["name"], values["surname"])
        except FormErrors as exc:
            errors = exc.errors
        else:
            return RedirectResponse("/profile?done=name", 303)
    return render(
        request,
        "staff/profile.html",
        {
            "person": actor,
            "values": values,
            "errors": errors,
            "notice": notice,
            "roles": staff_admin.ROLE_LABELS,
            "pace": pace.board(session, actor),
        },
        400 if errors else 200,
    )


@staff_view()
def profile_password(request: Request, session: Session, actor: Staff) -> Response:
    data = form(request)
    try:
        secret = staff_admin.change_password(
            session,
            actor,
            str(data.get("current", ""))[:1024],
            str(data.get("password", ""))[:1024],
            str(data.get("password2", ""))[:1024],
        )
    except FormErrors as exc:
        return render(
            request,
            "staff/profile.html",
            {
                "person": actor,
                "values": {"name": actor.name, "surname": actor.surname},
                "errors": exc.errors,
                "notice": None,
                "roles": staff_admin.ROLE_LABELS,
                "pace": pace.board(session, actor),
            },
            400,
        )
    request.session["sid"] = secret  # every other session has ended; this browser stays in
    return RedirectResponse("/profile?done=password", 303)
