"""The report queue screens: the queue page, its next pages, one card, decisions and undo.

Every decision works as a plain form POST (303 back to the queue with a notice) and, for HTMX, returns
the `_card.html` partial plus an out-of-band update of the header counter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app import moderation, report_queue
from app.errors import NotFound
from app.models import Staff
from app.settings import get_settings
from app.web import decisions
from app.web.common import form, int_param, is_htmx, pop_flash, render, safe_next, staff_view
from app.web.decisions import Answer


def _card_context(
    request: Request, session: Session, actor: Staff, *, count: bool = True
) -> dict[str, Any]:
    return {
        "reasons": list(enumerate(get_settings().decline_reasons, start=1)),
        "count": _count(session) if count else "",
    }


def _count(session: Session) -> str:
    count = report_queue.reviewing_count(session)
    return (
        f"{report_queue.COUNT_CAP:,}+".replace(",", " ")
        if count >= report_queue.COUNT_CAP
        else str(count)
    )


@staff_view()
def queue(request: Request, session: Session, actor: Staff) -> Response:
    filters = report_queue.parse_filters(request.query_params)
    after = request.query_params.get("after")
    result = report_queue.page(session, filters, after)
    partial = is_htmx(request) and bool(after)  # the next page: the counter is not part of it
    ctx = _card_context(request, session, actor, count=not partial)
    ctx.update(
        filters=filters,
        cards=result.cards,
        next_url=_next_url(filters, result.next_cursor),
        status_labels=report_queue.STATUS_LABELS,
    )
    if partial:
        return render(request, "reports/_page.html", ctx)
    shifts, tasks = report_queue.filter_options(session)
    ctx.update(
        shifts=shifts,
        tasks=tasks,
        notices=filters.notices + pop_flash(request),
        here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        first_page=not after,
    )
    return render(request, "reports/index.html", ctx)


def _next_url(filters: report_queue.Filters, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return "/reports?" + urlencode(filters.query(after=cursor))


@staff_view()
def show(request: Request, session: Session, actor: Staff) -> Response:
    report_id = int_param(request.path_params["report_id"])
    try:
        card = report_queue.card(session, report_id or 0)
    except NotFound:
        raise HTTPException(404) from None
    ctx = _card_context(request, session, actor)
    ctx.update(card=card, notices=pop_flash(request), here=f"/reports/{card.id}")
    return render(request, "reports/card.html", ctx)


def _answer(request: Request, session: Session, actor: Staff, report_id: int) -> Answer:
    """The card after an action: the partial for HTMX, else back to where the curator was."""

    def partial(notice: str | None, error: str | None, text: str) -> Response:
        try:
            card = report_queue.card(session, report_id)
        except NotFound:
            return render(
                request,
                "reports/_gone.html",
                {"report_id": report_id, "count": _count(session), "oob": True},
            )
        ctx = _card_context(request, session, actor)
        ctx.update(card=card, notice=notice, error=error, text=text, oob=True)
        return render(request, "reports/_card.html", ctx)

    def page(notice: str | None, error: str | None, text: str) -> Response:
        card = report_queue.card(session, report_id)
        ctx = _card_context(request, session, actor)
        ctx.update(card=card, error=error, text=text, notices=[], here=f"/reports/{card.id}")
        return render(request, "reports/card.html", ctx, status_code=400)

    return Answer(partial, safe_next(form(request).get("next"), "/reports"), page)


def _report_id(request: Request) -> int:
    return int_param(request.path_params["report_id"]) or 0


@staff_view()
def approve(request: Request, session: Session, actor: Staff) -> Response:
    report_id = _report_id(request)
    return decisions.run(
        request,
        _answer(request, session, actor, report_id),
        lambda _: moderation.decide(session, report_id, actor, True),
    )


@staff_view()
def decline(request: Request, session: Session, actor: Staff) -> Response:
    report_id = _report_id(request)
    return decisions.run(
        request,
        _answer(request, session, actor, report_id),
        lambda reason: moderation.decide(session, report_id, actor, False, reason),
        moderation.parse_reason,
    )


@staff_view()
def undo(request: Request, session: Session, actor: Staff) -> Response:
    report_id = _report_id(request)
    return decisions.run(
        request,
        _answer(request, session, actor, report_id),
        lambda _: moderation.undo(session, report_id, actor),
    )
