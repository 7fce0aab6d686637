"""The dashboard, the health probe and the private media route."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app import health, storage
from app.errors import MissingObject
from app.models import (
    Application,
    ApplicationStatus,
    Participant,
    Report,
    ReportStatus,
    Shift,
    Staff,
)
from app.web.common import render, staff_view


@staff_view()
def dashboard(request: Request, session: Session, actor: Staff) -> Response:
    def count(query) -> int:
        return int(session.exec(query).one())

    counts = {
        "shifts": count(select(sa.func.count()).select_from(Shift)),
        "participants": count(
            select(sa.func.count())
            .select_from(Participant)
            .where(col(Participant.deleted_at).is_(None))
        ),
        "reviewing": count(
            select(sa.func.count())
            .select_from(Report)
            .where(Report.status == ReportStatus.reviewing)
        ),
        "applications": count(
            select(sa.func.count())
            .select_from(Application)
            .where(Application.status == ApplicationStatus.pending)
        ),
    }
    running = session.exec(
        select(Shift)
        .where(col(Shift.status).in_(["started", "finishing", "preparing"]))
        .order_by(col(Shift.started_at))
    ).all()
    return render(request, "dashboard.html", {"counts": counts, "running": running})


async def health_probe(request: Request) -> Response:
    state = await run_in_threadpool(health.status)
    return JSONResponse(state, status_code=200 if state["ok"] else 503)


@staff_view()
def media(request: Request, session: Session, actor: Staff) -> Response:
    key = request.path_params["key"]
    try:
        body = storage.stream(key)
    except (ValueError, MissingObject):
        raise HTTPException(404) from None
    # Children's photos: never kept by any cache, the browser's included.
    return StreamingResponse(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
