"""Soft claims on the report queue (product.md §6a "Live queue"): curators working at once are
shown different cards.

A card on a curator's screen is claimed for CLAIM_SECONDS: the page claims the cards it shows,
the browser renews the claims of the cards still on screen every third of that, and releases them
when the page is left or closed; a decision drops the claim. Other curators' queues skip cards
with an unexpired claim (`free_for`, one NOT EXISTS in the page statement), so two curators do not
review the same photo; a claimed card is still reachable by a link or a search by name, and the
guarded UPDATE of a decision stays the final word. A lease that is not renewed (a crashed
browser, a laptop put to sleep) simply runs out. Takes a session, never commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, live
from app.db import dialect_insert
from app.models import Report, ReportClaim, ReportStatus
from app.settings import get_settings

MAX_IDS = 200  # cards renewed or released by one request; more are ignored


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=get_settings().claim_seconds)


def free_for(staff_id: int | None, now: datetime) -> Any:
    """A condition on `Report`: no unexpired claim of anybody but `staff_id` (None: of anybody)."""
    held = sa.exists().where(
        col(ReportClaim.report_id) == col(Report.id), col(ReportClaim.expires_at) > now
    )
    if staff_id is not None:
        held = held.where(col(ReportClaim.staff_id) != staff_id)
    return ~held


def clean_ids(values: Iterable[Any]) -> list[int]:
    """Report ids from form values: positive ints only, at most MAX_IDS, no repeats."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if text.isdigit() and 0 < int(text) < 2**31 and int(text) not in ids:
            ids.append(int(text))
        if len(ids) >= MAX_IDS:
            break
    return ids


def claim(session: Session, staff_id: int, report_ids: Iterable[int]) -> set[int]:
    """Claim (or renew) reports in review for `staff_id`; return the ids now held by them.

    One INSERT … SELECT … ON CONFLICT DO UPDATE: a report held by someone else is taken only once
    their lease has run out, so of two curators claiming the same card at once exactly one gets
    it. Unknown and decided reports are skipped."""
    ids = list(report_ids)
    if not ids:
        return set()
    now = clock.now()
    table: Any = ReportClaim.__table__  # type: ignore[attr-defined]
    source = sa.select(
        col(Report.id),
        sa.literal(staff_id, sa.Integer),
        sa.literal(lease_end(now), table.c.expires_at.type),
    ).where(col(Report.id).in_(ids), col(Report.status) == ReportStatus.reviewing)
    insert = dialect_insert(session, table).from_select(
        ["report_id", "staff_id", "expires_at"], source
    )
    statement = insert.on_conflict_do_update(
        index_elements=["report_id"],
        set_={"staff_id": insert.excluded.staff_id, "expires_at": insert.excluded.expires_at},
        where=sa.or_(table.c.staff_id == insert.excluded.staff_id, table.c.expires_at <= now),
    ).returning(table.c.report_id)
    return set(session.execute(statement).scalars())


def release(session: Session, staff_id: int, report_ids: Iterable[int]) -> int:
    """Give up `staff_id`'s claims on these reports (the page was left); the number released.
    Open queues are told when any was, so the freed cards reach someone else's screen."""
    ids = list(report_ids)
    if not ids:
        return 0
    result = session.execute(
        sa.delete(ReportClaim).where(
            col(ReportClaim.report_id).in_(ids), col(ReportClaim.staff_id) == staff_id
        )
    )
    released = int(result.rowcount)  # type: ignore[attr-defined]
    if released:
        live.notify(session, live.FREED)
    return released


def drop(session: Session, report_id: int) -> None:
    """The report was decided: whoever held it, the claim is over."""
    session.execute(sa.delete(ReportClaim).where(col(ReportClaim.report_id) == report_id))


def holder(session: Session, report_id: int) -> int | None:
    """The staff id holding an unexpired claim on this report, if any."""
    return session.execute(
        sa.select(col(ReportClaim.staff_id)).where(
            col(ReportClaim.report_id) == report_id, col(ReportClaim.expires_at) > clock.now()
        )
    ).scalar_one_or_none()
