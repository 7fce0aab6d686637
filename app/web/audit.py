"""The audit log (administrators): filter by actor, object type and date; keyset pages by id."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response

from app.models import AuditEvent, Staff
from app.settings import get_settings
from app.shifts import parse_date
from app.web.common import admin_view, int_param, render

PAGE_SIZE = 50
OBJECT_TYPES = {
    "shift": "смена",
    "task": "задание",
    "participant": "участник",
    "member": "участник смены",
    "report": "отчёт",
    "application": "заявка",
    "staff": "сотрудник",
    "staff_token": "ссылка-приглашение",
}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


@admin_view
def audit_list(request: Request, session: Session, actor: Staff) -> Response:
    params = request.query_params
    actor_id = int_param(params.get("actor"))
    object_type = params.get("type", "")
    day = parse_date(params.get("date", ""))
    before_id = int_param(params.get("before"))
    query: Any = select(  # type: ignore[call-overload, misc]
        AuditEvent.id,
        AuditEvent.at,
        AuditEvent.actor_id,
        AuditEvent.action,
        AuditEvent.object_type,
        AuditEvent.object_id,
        AuditEvent.before,
        AuditEvent.after,
    )
    if actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == actor_id)
    if object_type in OBJECT_TYPES:
        query = query.where(col(AuditEvent.object_type) == object_type)
    if day is not None:
        start = datetime.combine(day, time(), tzinfo=get_settings().tz)
        query = query.where(
            col(AuditEvent.at) >= start, col(AuditEvent.at) < start + timedelta(days=1)
        )
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    rows = session.exec(query.order_by(col(AuditEvent.id).desc()).limit(PAGE_SIZE + 1)).all()
    people = {
        i: f"{n} {s}".strip()
        for i, n, s in session.exec(select(Staff.id, Staff.name, Staff.surname)).all()
    }
    events = [
        {
            "id": r[0],
            "at": r[1],
            "actor": people.get(r[2], "система") if r[2] else "система",
            "action": r[3],
            "object_type": OBJECT_TYPES.get(r[4], r[4]),
            "object_id": r[5],
            "before": _json(r[6]),
            "after": _json(r[7]),
        }
        for r in rows[:PAGE_SIZE]
    ]
    keep = {k: v for k, v in params.items() if k != "before" and v}
    return render(
        request,
        "audit/list.html",
        {
            "events": events,
            "next_before": events[-1]["id"] if len(rows) > PAGE_SIZE else None,
            "people": sorted(people.items(), key=lambda p: p[1]),
            "types": OBJECT_TYPES,
            "actor_id": actor_id,
            "object_type": object_type,
            "day": day.isoformat() if day else "",
            "keep": keep,
        },
    )
