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

from app import participants, storage
from app.members import balance
from app.models import Member, Participant, Shift, Staff, StaffRole
from app.shifts import FormErrors
from app.web.common import forbidden, form, int_param, render, staff_view


def _participant(request: Request, db: Session) -> Participant:
    participant = participants.get_participant(
        db, int_param(request.path_params.get("participant_id"))
    )
    if participant is None:
        raise HTTPException(404)
    return participant


def _shift_choices(db: Session) -> list[tuple[int, int, str]]:
    return list(
        db.exec(
            select(Shift.id, Shift.number, Shift.title).order_by(col(Shift.number).desc())
        ).all()  # type: ignore[arg-type]
    )


@staff_view()
def participant_list(request: Request, db: Session, staff: Staff) -> Response:
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
    rows, has_next = participants.search(db, filters)
    query = {k: v for k, v in params.items() if k != "page" and v}
    return render(
        request,
        "participants/list.html",
        {
            "rows": rows,
            "has_next": has_next,
            "filters": filters,
            "statuses": participants.STATUS_FILTERS,
            "shifts": _shift_choices(db),
            "query": query,
        },
    )


@staff_view()
def participant_detail(request: Request, db: Session, staff: Staff) -> Response:
    participant = _participant(request, db)
    return render(
        request,
        "participants/detail.html",
        {
            "p": participant,
            "history": participants.history(db, participant.id),  # type: ignore[arg-type]
            "notice": request.query_params.get("done"),
        },
    )


@staff_view(role=StaffRole.administrator)
def participant_test(request: Request, db: Session, staff: Staff) -> Response:
    participant = _participant(request, db)
    participants.set_test(db, staff.id, participant, form(request).get("is_test") == "1")
    return RedirectResponse(f"/participants/{participant.id}?done=saved", 303)


def _stream(file: IO[bytes]) -> Iterator[bytes]:
    try:
        file.seek(0)
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@staff_view(role=StaffRole.administrator)
def participant_export(request: Request, db: Session, staff: Staff) -> Response:
    participant = _participant(request, db)
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _stream after sending)
    participants.export_zip(db, staff.id, participant, out)
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
def participant_delete(request: Request, db: Session, staff: Staff) -> Response:
    participant = _participant(request, db)
    error = None
    if request.method == "POST":
        if form(request).get("confirm") != "yes":
            error = "Отметьте, что вы понимаете: данные и фото удалятся навсегда."
        else:
            try:
                keys = participants.delete_participant(db, staff.id, participant)
            except FormErrors as exc:
                error = exc.errors[""]
            else:
                return RedirectResponse(
                    "/participants?deleted=1",
                    303,
                    background=BackgroundTask(storage.delete, *keys),
                )
    return render(
        request,
        "participants/delete.html",
        {"p": participant, "error": error},
        400 if error else 200,
    )


# --- members --------------------------------------------------------------------------------------


def _member(request: Request, db: Session) -> tuple[Member, Participant, Shift]:
    member_id = int_param(request.path_params.get("member_id"))
    member = db.get(Member, member_id) if member_id is not None else None
    if member is None:
        raise HTTPException(404)
    participant = db.get(Participant, member.participant_id)
    shift = db.get(Shift, member.shift_id)
    if participant is None or shift is None:
        raise HTTPException(404)
    return member, participant, shift


@staff_view()
def member_detail(request: Request, db: Session, staff: Staff) -> Response:
    member, participant, shift = _member(request, db)
    days = participants.calendar(db, member, shift)
    return render(
        request,
        "participants/member.html",
        {
            "member": member,
            "p": participant,
            "shift": shift,
            "days": days,
            "labels": participants.STATUS_LABELS,
            "balance": balance(db, member.id),  # type: ignore[arg-type]
            "attempts": sum(d.attempts for d in days),
        },
    )


@staff_view()
def member_status(request: Request, db: Session, staff: Staff) -> Response:
    if not staff.is_admin:
        return forbidden(request)
    member, _, _ = _member(request, db)
    participants.set_member_status(db, staff.id, member, form(request).get("excluded") == "1")
    return RedirectResponse(f"/members/{member.id}", 303)
