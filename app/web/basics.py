"""The dashboard, the health probe and the private media route."""

from __future__ import annotations

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app import dashboard as dashboard_data
from app import health, pace, storage
from app.errors import MissingObject
from app.models import Staff
from app.shifts import STATUS_LABELS
from app.web.common import render, staff_view


@staff_view()
def dashboard(request: Request, session: Session, actor: Staff) -> Response:
    board = dashboard_data.build(session, everyone=actor.is_admin)
    return render(
        request,
        "dashboard.html",
        {
            "board": board,
            "waited": dashboard_data.waited(board.oldest_submitted_at),
            "shift_labels": STATUS_LABELS,
            # The team's pace for administrators; everyone else sees only their own line.
            "pace": pace.board(session, actor, whole_team=actor.is_admin),
        },
    )


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
