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
from app.shifts import STATUS_LABELS
from app.web.common import get_or_404, render, staff_view

RANKING_ROWS = 100


def _shift(request: Request, session: Session) -> Shift:
    return get_or_404(session, Shift, request.path_params.get("shift_id"))


@staff_view()
def results_page(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
    summary = results.summary(session, shift)
    days = results.days_so_far(shift, summary.days)
    totals = {
        field: sum(getattr(d, field) for d in days)
        for field in ("approved", "declined", "skipped", "waiting", "reviewing", "paused")
    }
    ranking = results.ranking(session, shift, limit=RANKING_ROWS)
    return render(
        request,
        "results/page.html",
        {
            "shift": shift,
            "status_label": STATUS_LABELS[shift.status],
            "ranking": ranking,
            "shared": results.shared_places(ranking),
            "limit": RANKING_ROWS,
            "days": days,
            "tasks": summary.tasks,
            "totals": totals,
            "reports": sum(totals.values()),
            "attempts": summary.by_attempt,
            "chart": results.chart(days),
        },
    )


def _csv(shift_id: int) -> Iterator[bytes]:
    # Its own session: the response streams after the request's transaction has ended.
    with session_scope() as session:
        yield from results.csv_chunks(session, shift_id)


def _xlsx(shift_id: int) -> Iterator[bytes]:
    with session_scope() as session:
        shift = session.get(Shift, shift_id)
        assert shift is not None
        file = results.xlsx_file(session, shift)
    try:
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@staff_view()
def results_export(request: Request, session: Session, actor: Staff) -> Response:
    shift = _shift(request, session)
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
