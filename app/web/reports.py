"""The report queue screens: the queue page, its next pages, one card, decisions and undo.

Every decision works as a plain form POST (303 back to the queue with a notice) and, for HTMX, returns
the `_card.html` partial plus an out-of-band update of the header counter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlmodel import Session
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import claims, moderation, report_queue
from app.errors import NotFound
from app.models import Staff
from app.settings import get_settings
from app.web import decisions
from app.web.common import form, int_param, is_htmx, pop_flash, render, safe_next, staff_view
from app.web.decisions import Answer


def _card_context(
    request: Request,
    session: Session,
    actor: Staff,
    filters: report_queue.Filters | None = None,
    *,
    count: bool = True,
) -> dict[str, Any]:
    """What every card needs; `count` is the header counter of the list the curator is in
    (`filters`; the whole review queue without them)."""
    filters = filters or report_queue.Filters()
    label = report_queue.STATUS_LABELS[filters.status]
    return {
        "reasons": list(enumerate(get_settings().decline_reasons, start=1)),
        "count": str(report_queue.count(session, filters)) if count else "",
        "count_label": label[:1].upper() + label[1:] + (" по фильтру" if filters.narrowed else ""),
    }


def _filters_of(next_url: str) -> report_queue.Filters:
    """The filters of the list a decision was made in (its `next` URL), for the counter."""
    return report_queue.parse_filters(QueryParams(urlsplit(next_url).query))


@staff_view()
def queue(request: Request, session: Session, actor: Staff) -> Response:
    filters = report_queue.parse_filters(request.query_params)
    after = request.query_params.get("after")
    # `fresh`: the live queue asks for cards nobody has on screen (new photos, released cards).
    fresh = request.query_params.get("fresh") == "1"
    result = report_queue.page(session, filters, after, staff_id=actor.id, fresh=fresh)
    # The next page or a fresh one: the counter is not part of it.
    partial = is_htmx(request) and (bool(after) or fresh)
    # A whole list on its first page is its own count.
    whole = result.whole and not fresh
    ctx = _card_context(request, session, actor, filters, count=not partial and not whole)
    if whole:
        ctx["count"] = str(report_queue.Count(len(result.cards)))
    query = urlencode(filters.query())
    ctx.update(
        filters=filters,
        cards=result.cards,
        next_url=_next_url(filters, result.next_cursor),
        status_labels=report_queue.STATUS_LABELS,
        # Where a decision sends a plain POST back to, and whose counter it updates.
        here="/reports" + (f"?{query}" if query else ""),
        # The live queue: the counter of this list, and where new cards come from (review only).
        count_url="/reports/count" + (f"?{query}" if query else ""),
        fresh_url="/reports?" + urlencode(filters.query(fresh=1))
        if filters.status == "reviewing"
        else None,
    )
    if partial:
        return render(request, "reports/_page.html", ctx)
    shifts, tasks = report_queue.filter_options(session)
    ctx.update(
        shifts=shifts,
        tasks=tasks,
        notices=filters.notices + pop_flash(request),
        first_page=not after,
        active_filters=sum(
            1
            for v in (filters.shift_id, filters.task_id, filters.day, filters.flagged, filters.q)
            if v
        )
        + (filters.status != "reviewing"),
    )
    return render(request, "reports/index.html", ctx)


def _next_url(filters: report_queue.Filters, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return "/reports?" + urlencode(filters.query(after=cursor))


@staff_view()
def show(request: Request, session: Session, actor: Staff) -> Response:
    report_id = int_param(request.path_params["report_id"])
    # HTMX: the live queue refetching a card someone else decided, in its new state; otherwise
    # the card's own page, which claims a card in review for this curator.
    refetch = is_htmx(request)
    try:
        card = report_queue.card(session, report_id or 0, opened_by=None if refetch else actor.id)
    except NotFound:
        raise HTTPException(404) from None
    if refetch:
        ctx = _card_context(request, session, actor, count=False)
        ctx.update(card=card, here=safe_next(request.query_params.get("next"), "/reports"))
        return render(request, "reports/_card.html", ctx)
    ctx = _card_context(request, session, actor)
    ctx.update(card=card, notices=pop_flash(request), here=f"/reports/{card.id}")
    return render(request, "reports/card.html", ctx)


@staff_view()
def count(request: Request, session: Session, actor: Staff) -> Response:
    """The header counter of a list (its filters in the query), refreshed by the live queue."""
    filters = report_queue.parse_filters(request.query_params)
    return render(
        request, "reports/_count.html", {"count": str(report_queue.count(session, filters))}
    )


@staff_view()
def claims_renew(request: Request, session: Session, actor: Staff) -> Response:
    """The cards still on a curator's screen (form fields `id`): their claims last another
    CLAIM_SECONDS. Answers which of them this curator holds."""
    assert actor.id is not None
    ids = claims.clean_ids(form(request).getlist("id"))
    return JSONResponse({"held": sorted(claims.claim(session, actor.id, ids))})


@staff_view()
def claims_release(request: Request, session: Session, actor: Staff) -> Response:
    """The page with these cards was left or closed (`navigator.sendBeacon`): others may take them."""
    assert actor.id is not None
    ids = claims.clean_ids(form(request).getlist("id"))
    claims.release(session, actor.id, ids)
    return Response(status_code=204)


def _answer(
    request: Request, session: Session, actor: Staff, report_id: int, *, undone: bool = False
) -> Answer:
    """The card after an action: the partial for HTMX (with the counter of the curator's list and
    the last decision, out of band), else back to where the curator was."""
    back = safe_next(form(request).get("next"), "/reports")

    def partial(notice: str | None, error: str | None, text: str) -> Response:
        filters = _filters_of(back)
        try:
            card = report_queue.card(session, report_id)
        except NotFound:
            count = str(report_queue.count(session, filters))
            return render(
                request, "reports/_gone.html", {"report_id": report_id, "count": count, "oob": True}
            )
        ctx = _card_context(request, session, actor, filters)
        ctx.update(
            card=card,
            notice=notice,
            error=error,
            text=text,
            oob=True,
            undone=undone and notice is None and error is None,
            here=back,
        )
        return render(request, "reports/_card.html", ctx)

    def page(notice: str | None, error: str | None, text: str) -> Response:
        card = report_queue.card(session, report_id)
        ctx = _card_context(request, session, actor)
        ctx.update(card=card, error=error, text=text, notices=[], here=f"/reports/{card.id}")
        return render(request, "reports/card.html", ctx, status_code=400)

    return Answer(partial, back, page)


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
        _answer(request, session, actor, report_id, undone=True),
        lambda _: moderation.undo(session, report_id, actor),
    )
