"""Participants and members (all staff; changes by administrators)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from sqlmodel import Session, col, select
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from app import consent, media, participants, pauses
from app.errors import FormErrors
from app.members import balance
from app.models import Member, Participant, Shift, Staff, StaffRole
from app.text import parse_day
from app.web.common import forbidden, form, get_or_404, int_param, render, staff_view


def _participant(request: Request, session: Session) -> Participant:
    participant = participants.get_participant(
        session, int_param(request.path_params.get("participant_id"))
    )
    if participant is None:
        raise HTTPException(404)
    return participant


def _shift_choices(session: Session) -> list[tuple[int, int, str]]:
    return list(
        session.exec(
            select(Shift.id, Shift.number, Shift.title).order_by(col(Shift.number).desc())
        ).all()  # type: ignore[arg-type]
    )


@staff_view()
def participant_list(request: Request, session: Session, actor: Staff) -> Response:
    params = request.query_params
    filters = participants.Filters(
        q=params.get("q", "")[:100],
        status=params.get("status", "")
        if params.get("status") in participants.STATUS_FILTERS
        else "",
        shift_id=int_param(params.get("shift")),
        blocked=params.get("blocked", "") if params.get("blocked") in ("yes", "no") else "",
        test=params.get("test", "") if params.get("test") in ("yes", "no") else "",
        page=int_param(params.get("page")) or 1,
    )
    rows, has_next = participants.search(session, filters)
    query = {k: v for k, v in params.items() if k != "page" and v}
    active = sum(
        1
        for v in (filters.q, filters.status, filters.shift_id, filters.blocked, filters.test)
        if v not in ("", None)
    )
    return render(
        request,
        "participants/list.html",
        {
            "rows": rows,
            "has_next": has_next,
            "filters": filters,
            "statuses": participants.STATUS_FILTERS,
            "shifts": _shift_choices(session),
            "query": query,
            "count": participants.count(session, filters),
            "active": active,
        },
    )


@staff_view()
def participant_detail(request: Request, session: Session, actor: Staff) -> Response:
    participant = _participant(request, session)
    return render(
        request,
        "participants/detail.html",
        {
            "p": participant,
            "history": participants.history(session, participant.id),  # type: ignore[arg-type]
            "consents": consent.history(session, participant.id),  # type: ignore[arg-type]
            "givers": consent.GIVERS,
            "notice": request.query_params.get("done"),
        },
    )


@staff_view(role=StaffRole.administrator)
def participant_test(request: Request, session: Session, actor: Staff) -> Response:
    participant = _participant(request, session)
    participants.set_test(session, actor, participant, form(request).get("is_test") == "1")
    return RedirectResponse(f"/participants/{participant.id}?done=saved", 303)


def _stream(file: IO[bytes]) -> Iterator[bytes]:
    try:
        file.seek(0)
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@staff_view(role=StaffRole.administrator)
def participant_export(request: Request, session: Session, actor: Staff) -> Response:
    participant = _participant(request, session)
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _stream after sending)
    participants.export_zip(session, actor, participant, out)
    # No personal data in the file name: it may end up in logs and download lists.
    return StreamingResponse(
        _stream(out),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="participant-{participant.id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@staff_view(role=StaffRole.administrator)
def participant_delete(request: Request, session: Session, actor: Staff) -> Response:
    participant = _participant(request, session)
    error = None
    if request.method == "POST":
        if form(request).get("confirm") != "yes":
            error = "Отметьте, что вы понимаете: данные и фото удалятся навсегда."
        else:
            try:
                keys = participants.delete_participant(session, actor, participant)
            except FormErrors as exc:
                error = exc.errors[""]
            else:
                return RedirectResponse(
                    "/participants?deleted=1",
                    303,
                    background=BackgroundTask(media.purge, keys),
                )
    return render(
        request,
        "participants/delete.html",
        {"p": participant, "error": error},
        400 if error else 200,
    )


# --- members --------------------------------------------------------------------------------------


def _member(request: Request, session: Session) -> tuple[Member, Participant, Shift]:
    member = get_or_404(session, Member, request.path_params.get("member_id"))
    participant = session.get(Participant, member.participant_id)
    shift = session.get(Shift, member.shift_id)
    if participant is None or shift is None:
        raise HTTPException(404)
    return member, participant, shift


PAUSE_NOTICES = {
    "paused": "Пауза поставлена, семье отправлено сообщение.",
    "resumed": "Пауза снята, семье отправлено сообщение.",
}


def _member_page(
    request: Request,
    session: Session,
    member: Member,
    participant: Participant,
    shift: Shift,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    days = participants.calendar(session, member, shift)
    return render(
        request,
        "participants/member.html",
        {
            "member": member,
            "p": participant,
            "shift": shift,
            "days": days,
            "labels": participants.STATUS_LABELS,
            "balance": balance(session, member.id),  # type: ignore[arg-type]
            "attempts": sum(d.attempts for d in days),
            "pauses": pauses.rows(session, member.id),  # type: ignore[arg-type]
            "pause_errors": errors or {},
            "pause_values": values or {},
            "pause_notice": PAUSE_NOTICES.get(request.query_params.get("done", "")),
        },
        status_code,
    )


@staff_view()
def member_detail(request: Request, session: Session, actor: Staff) -> Response:
    member, participant, shift = _member(request, session)
    return _member_page(request, session, member, participant, shift)


@staff_view()
def member_status(request: Request, session: Session, actor: Staff) -> Response:
    if not actor.is_admin:
        return forbidden(request)
    member, _, _ = _member(request, session)
    participants.set_member_status(session, actor, member, form(request).get("excluded") == "1")
    return RedirectResponse(f"/members/{member.id}", 303)


# --- pauses (administrators: like exclusion, a change to the member's participation) -----------


@staff_view(role=StaffRole.administrator)
def member_pause(request: Request, session: Session, actor: Staff) -> Response:
    member, participant, shift = _member(request, session)
    data = form(request)
    values = {k: str(data.get(k, "") or "")[:400] for k in ("first_day", "last_day", "reason")}
    # Dates are typed as ДД.ММ.ГГГГ (the browser's date picker speaks the browser's language).
    first, last = (
        day.isoformat() if (day := parse_day(values[k])) else values[k]
        for k in ("first_day", "last_day")
    )
    try:
        pauses.create(session, actor, member, first, last, values["reason"])
    except FormErrors as exc:
        return _member_page(
            request,
            session,
            member,
            participant,
            shift,
            errors=exc.errors,
            values=values,
            status_code=400,
        )
    return RedirectResponse(f"/members/{member.id}?done=paused#pauses", 303)


@staff_view(role=StaffRole.administrator)
def member_pause_end(request: Request, session: Session, actor: Staff) -> Response:
    member, participant, shift = _member(request, session)
    pause = pauses.get(session, member, int_param(request.path_params.get("pause_id")))
    if pause is None:
        raise HTTPException(404)
    try:
        pauses.end(session, actor, member, pause)
    except FormErrors as exc:
        return _member_page(
            request, session, member, participant, shift, errors=exc.errors, status_code=409
        )
    return RedirectResponse(f"/members/{member.id}?done=resumed#pauses", 303)
