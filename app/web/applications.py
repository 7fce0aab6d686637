"""The application queue screen: pending applications, approve / decline / undo, bulk approve."""

from __future__ import annotations

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import applications
from app.errors import Invalid, NotFound, Refused
from app.models import Staff
from app.web.common import flash, form, int_param, is_htmx, pop_flash, render, staff_view


def _reasons() -> list[tuple[int, str]]:
    return list(enumerate(applications.DECLINE_REASONS, start=1))


@staff_view()
def queue(request: Request, session: Session, actor: Staff) -> Response:
    shifts = applications.open_shifts(session)
    notices = pop_flash(request)
    shift_id = None
    raw = request.query_params.get("shift", "").strip()
    if raw:
        shift_id = int_param(raw)
        if shift_id not in {s.id for s in shifts}:
            notices.append("Такой набирающей смены нет — показаны заявки всех смен.")
            shift_id = None
    rows = applications.pending(session, shift_id)
    return render(
        request,
        "applications/index.html",
        {
            "rows": rows,
            "shifts": shifts,
            "shift_id": shift_id,
            "notices": notices,
            "reasons": _reasons(),
        },
    )


def _respond(
    request: Request,
    session: Session,
    actor: Staff,
    application_id: int,
    notice: str | None,
    *,
    error: str | None = None,
    text: str = "",
) -> Response:
    if is_htmx(request):
        row = applications.row(session, application_id)
        return render(
            request,
            "applications/_row.html",
            {
                "row": row,
                "notice": notice,
                "error": error,
                "text": text,
                "reasons": _reasons(),
            },
        )
    if error:
        flash(request, error)
    elif notice:
        flash(request, notice)
    return RedirectResponse("/applications", status_code=303)


def _act(request: Request, session: Session, actor: Staff, action: str) -> Response:
    application_id = int_param(request.path_params["application_id"]) or 0
    data = form(request)
    text = str(data.get("text", "") or "")
    try:
        if action == "approve":
            outcome = applications.approve(session, application_id, actor)
        elif action == "decline":
            try:
                reason = applications.parse_reason(data.get("preset"), text)
            except Invalid as exc:
                applications.row(
                    session, application_id
                )  # 404 for an unknown id, before the message
                return _respond(
                    request, session, actor, application_id, None, error=str(exc), text=text
                )
            outcome = applications.decline(session, application_id, actor, reason)
        else:
            outcome = applications.undo(session, application_id, actor)
    except NotFound:
        raise HTTPException(404) from None
    except Refused as exc:
        return _respond(request, session, actor, application_id, str(exc))
    return _respond(request, session, actor, application_id, outcome.notice)


@staff_view()
def approve(request: Request, session: Session, actor: Staff) -> Response:
    return _act(request, session, actor, "approve")


@staff_view()
def decline(request: Request, session: Session, actor: Staff) -> Response:
    return _act(request, session, actor, "decline")


@staff_view()
def undo(request: Request, session: Session, actor: Staff) -> Response:
    return _act(request, session, actor, "undo")


@staff_view()
def approve_selected(request: Request, session: Session, actor: Staff) -> Response:
    ids = [i for i in (int_param(v) for v in form(request).getlist("ids")) if i is not None]
    if not ids:
        flash(request, "Отметьте заявки, которые нужно одобрить.")
        return RedirectResponse("/applications", status_code=303)
    done, skipped = applications.approve_many(session, ids, actor)
    message = f"Одобрено заявок: {done}."
    if skipped:
        message += f" Уже решены или недоступны: {skipped}."
    flash(request, message)
    return RedirectResponse("/applications", status_code=303)
