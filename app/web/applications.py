"""The application queue screen: pending applications, approve / decline / undo, bulk approve."""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import applications
from app.models import Staff
from app.web import decisions
from app.web.common import flash, form, int_param, pop_flash, render, staff_view
from app.web.decisions import Answer


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


def _answer(request: Request, session: Session, application_id: int) -> Answer:
    """The row after an action: the partial for HTMX, else back to the list with a message."""

    def partial(notice: str | None, error: str | None, text: str) -> Response:
        ctx = {
            "row": applications.row(session, application_id),
            "notice": notice,
            "error": error,
            "text": text,
            "reasons": _reasons(),
        }
        return render(request, "applications/_row.html", ctx)

    return Answer(partial, "/applications", find=lambda: applications.row(session, application_id))


def _application_id(request: Request) -> int:
    return int_param(request.path_params["application_id"]) or 0


@staff_view()
def approve(request: Request, session: Session, actor: Staff) -> Response:
    application_id = _application_id(request)
    return decisions.run(
        request,
        _answer(request, session, application_id),
        lambda _: applications.approve(session, application_id, actor),
    )


@staff_view()
def decline(request: Request, session: Session, actor: Staff) -> Response:
    application_id = _application_id(request)
    return decisions.run(
        request,
        _answer(request, session, application_id),
        lambda reason: applications.decline(session, application_id, actor, reason or ""),
        applications.parse_reason,
    )


@staff_view()
def undo(request: Request, session: Session, actor: Staff) -> Response:
    application_id = _application_id(request)
    return decisions.run(
        request,
        _answer(request, session, application_id),
        lambda _: applications.undo(session, application_id, actor),
    )


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
