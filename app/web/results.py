"""Results of a shift (all staff): ranking, counts, chart, .xlsx and .csv exports."""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app import results
from app.db import session_scope
from app.models import Shift, Staff
from app.web.common import int_param, render, staff_view

RANKING_ROWS = 100


def _shift(request: Request, db: Session) -> Shift:
    shift_id = int_param(request.path_params.get("shift_id"))
    shift = db.get(Shift, shift_id) if shift_id is not None else None
    if shift is None:
        raise HTTPException(404)
    return shift


@staff_view()
def results_page(request: Request, db: Session, staff: Staff) -> Response:
    shift = _shift(request, db)
    summary = results.summary(db, shift)
    days, tasks = summary.days, summary.tasks
    totals = {
        field: sum(getattr(d, field) for d in days)
        for field in ("approved", "declined", "skipped", "waiting", "reviewing")
    }
    return render(
        request,
        "results/page.html",
        {
            "shift": shift,
            "ranking": results.ranking(db, shift, limit=RANKING_ROWS),
            "limit": RANKING_ROWS,
            "days": days,
            "tasks": tasks,
            "totals": totals,
            "attempts": summary.by_attempt,
            "chart": results.chart(days),
        },
    )


def _csv(shift_id: int) -> Iterator[bytes]:
    # Its own session: the response streams after the request's transaction has ended.
    with session_scope() as db:
        yield from results.csv_chunks(db, shift_id)


def _xlsx(shift_id: int) -> Iterator[bytes]:
    with session_scope() as db:
        shift = db.get(Shift, shift_id)
        assert shift is not None
        file = results.xlsx_file(db, shift)
    try:
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@staff_view()
def results_export(request: Request, db: Session, staff: Staff) -> Response:
    shift = _shift(request, db)
    ext = request.path_params["ext"]
    if ext not in ("csv", "xlsx"):
        raise HTTPException(404)
    media = (
        "text/csv; charset=utf-8"
        if ext == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    body = _csv(shift.id) if ext == "csv" else _xlsx(shift.id)  # type: ignore[arg-type]
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": results.content_disposition(
                results.file_name(shift, ext), f"shift-{shift.number}-results.{ext}"
            ),
            "Cache-Control": "no-store",
        },
    )
