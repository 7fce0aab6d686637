"""The audit log (administrators): who did what about whom, in words; filters; keyset pages."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from app import audit_log
from app.models import Staff
from app.web.common import admin_view, render


@admin_view
def audit_list(request: Request, session: Session, actor: Staff) -> Response:
    params = request.query_params
    filters = audit_log.parse_filters(params)
    raw_date = str(params.get("date", "") or "").strip()
    after = params.get("after")
    result = audit_log.page(session, filters, after)
    query = filters.query()
    return render(
        request,
        "audit/list.html",
        {
            "events": result.events,
            "next_url": "/audit?" + urlencode({**query, "after": result.next_cursor})
            if result.next_cursor
            else None,
            "first_url": "/audit" + ("?" + urlencode(query) if query else "") if after else None,
            "people": sorted(audit_log.staff_names(session).items(), key=lambda p: p[1]),
            "types": audit_log.OBJECT_TYPES,
            "filters": filters,
            "date_text": raw_date,
            "date_error": "Дата — в виде ДД.ММ.ГГГГ, например 05.11.2026."
            if raw_date and filters.day is None
            else None,
        },
    )
