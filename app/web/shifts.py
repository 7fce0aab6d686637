"""Shifts screens (administrators): list, create, edit, start, cancel, final message, plan."""

from __future__ import annotations

from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import shifts
from app.errors import FormErrors
from app.models import Shift, Staff, Task
from app.text import day_text, parse_day
from app.web.common import admin_view, form, get_or_404, int_param, is_htmx, render


def _shift(request: Request, session: Session) -> Shift:
    return get_or_404(session, Shift, request.path_params.get("shift_id"))


def _back(shift: Shift, notice: str | None = None) -> Response:
    return RedirectResponse(f"/shifts/{shift.id}" + (f"?done={notice}" if notice else ""), 303)


NOTICES = {
    "created": "Смена создана, план составлен.",
    "saved": "Изменения сохранены.",
    "started": "Смена запущена.",
    "cancelled": "Смена отменена, участникам отправлены сообщения.",
    "message": "Финальное сообщение сохранено.",
}


@admin_view
def shift_list(request: Request, session: Session, actor: Staff) -> Response:
    return render(request, "shifts/list.html", {"rows": shifts.list_shifts(session)})


@admin_view
def shift_new(request: Request, session: Session, actor: Staff) -> Response:
    values = {"title": "", "started_at": "", "finished_at": ""}
    if request.method == "POST":
        data = form(request)
        values = {k: str(data.get(k, ""))[:200] for k in values}
        try:
            shift = shifts.create_shift(
                session,
                actor,
                values["title"],
                parse_day(values["started_at"]),
                parse_day(values["finished_at"]),
            )
        except FormErrors as exc:
            return render(request, "shifts/new.html", {"values": values, "errors": exc.errors}, 400)
        return _back(shift, "created")
    return render(request, "shifts/new.html", {"values": values, "errors": {}})


def _detail(
    request: Request,
    session: Session,
    shift: Shift,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = values or {
        "title": shift.title,
        "started_at": day_text(shift.started_at),
        "finished_at": day_text(shift.finished_at),
        "final_message": shift.final_message,
    }
    preview_text = values.get("final_message") or shift.final_message
    preview = None
    if not (errors or {}).get("final_message"):
        preview = shifts.preview_final_message(session, shift, preview_text)
    return render(
        request,
        "shifts/detail.html",
        {
            "shift": shift,
            "status_label": shifts.STATUS_LABELS[shift.status],
            "editable": shifts.editable_fields(shift),
            "values": values,
            "errors": errors or {},
            "preview": preview,
            "notice": NOTICES.get(request.query_params.get("done", "")),
        },
        status_code,
    )


@admin_view
def shift_detail(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    if request.method == "POST":
        data = form(request)
        values = {
            "title": str(data.get("title", ""))[:200],
            "started_at": str(data.get("started_at", day_text(shift.started_at)))[:20],
            "finished_at": str(data.get("finished_at", day_text(shift.finished_at)))[:20],
            "final_message": shift.final_message,
        }
        try:
            shifts.update_shift(
                session,
                actor,
                shift,
                values["title"],
                parse_day(values["started_at"]),
                parse_day(values["finished_at"]),
            )
        except FormErrors as exc:
            return _detail(request, session, shift, exc.errors, values, 400)
        return _back(shift, "saved")
    return _detail(request, session, shift)


@admin_view
def shift_final_message(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    text = str(form(request).get("final_message", ""))
    values = {
        "title": shift.title,
        "started_at": day_text(shift.started_at),
        "finished_at": day_text(shift.finished_at),
        "final_message": text,
    }
    if form(request).get("action") == "preview":
        problem = shifts.final_message.problem(text)
        return _detail(
            request, session, shift, {"final_message": problem} if problem else {}, values
        )
    try:
        shifts.set_final_message(session, actor, shift, text)
    except FormErrors as exc:
        return _detail(request, session, shift, exc.errors, values, 400)
    return _back(shift, "message")


@admin_view
def shift_start(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    try:
        shifts.start_now(session, actor, shift)
    except FormErrors as exc:
        return _detail(request, session, shift, exc.errors, status_code=409)
    return _back(shift, "started")


@admin_view
def shift_cancel(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    if form(request).get("confirm") != "yes":
        return _detail(
            request,
            session,
            shift,
            {"": "Отметьте, что вы точно хотите отменить смену."},
            status_code=400,
        )
    try:
        shifts.cancel_shift(session, actor, shift)
    except FormErrors as exc:
        return _detail(request, session, shift, exc.errors, status_code=409)
    return _back(shift, "cancelled")


# --- the plan -----------------------------------------------------------------------------------


def _active_tasks(session: Session) -> list[tuple[int, str]]:
    return list(
        session.exec(
            select(Task.id, Task.title)
            .where(col(Task.is_archived).is_(False))
            .order_by(col(Task.title))
        ).all()  # type: ignore[arg-type]
    )


@admin_view
def shift_plan(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    error = None
    if request.method == "POST":
        try:
            count = shifts.regenerate_future(session, actor, shift)
        except FormErrors as exc:
            error = exc.errors.get("", "")
        else:
            return RedirectResponse(f"/shifts/{shift.id}/plan?regenerated={count}", 303)
    return render(
        request,
        "shifts/plan.html",
        {
            "shift": shift,
            "days": shifts.plan(session, shift),
            "tasks": _active_tasks(session),
            "error": error,
            "regenerated": int_param(request.query_params.get("regenerated")),
        },
        400 if error else 200,
    )


@admin_view
def shift_plan_day(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    day_number = int_param(request.path_params.get("day"))
    if day_number is None or shifts.plan_day(session, shift, day_number) is None:
        raise HTTPException(404)
    error = None
    try:
        shifts.set_day_task(
            session, actor, shift, day_number, int_param(form(request).get("task_id"))
        )
    except FormErrors as exc:
        error = exc.errors.get("", "")
    if not is_htmx(request):
        if error:
            return render(
                request,
                "shifts/plan.html",
                {
                    "shift": shift,
                    "days": shifts.plan(session, shift),
                    "tasks": _active_tasks(session),
                    "error": error,
                    "regenerated": None,
                },
                400,
            )
        return RedirectResponse(f"/shifts/{shift.id}/plan", 303)
    session.flush()
    return render(
        request,
        "shifts/_plan_row.html",
        {
            "shift": shift,
            "day": shifts.plan_day(session, shift, day_number),
            "tasks": _active_tasks(session),
            "row_error": error,
            "row_saved": error is None,
        },
        200,
    )
