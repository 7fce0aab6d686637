"""Results and analytics of a shift (product.md §4.7): ranking, per-day/per-task counts, exports.

Test participants are left out everywhere. Exports stream rows from the database (a server-side
cursor on PostgreSQL) instead of loading the whole shift in memory.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import clock
from app.db import is_postgres
from app.models import Member, Participant, Report, ReportStatus, Shift, Task

COUNTED = ("approved", "declined", "skipped", "waiting", "reviewing", "paused")
EXPORT_HEADERS = [
    "Место",
    "Имя",
    "Фамилия",
    "Город",
    "Статус в смене",
    "Ломбарьерчики",
    "Отклонено",
    "Пропущено",
    "Ждут фото",
    "На проверке",
    "Пауза",
]


def _counts() -> list[Any]:
    return [
        sa.func.coalesce(sa.func.sum(sa.case((col(Report.status) == s, 1), else_=0)), 0).label(s)
        for s in COUNTED
    ]


@dataclass(frozen=True)
class Counts:
    key: int
    label: str
    approved: int
    declined: int
    skipped: int
    waiting: int
    reviewing: int
    paused: int  # days inside a member's pause (app.pauses): not skipped


@dataclass(frozen=True)
class Summary:
    days: list[Counts]
    tasks: list[Counts]
    by_attempt: dict[int, int]  # approved reports by the attempt that was accepted


def _planner_prefers_index_order(session: Session, on: bool) -> None:
    """PostgreSQL: aggregate in the covering index's order (an index-only scan streaming into a
    GroupAggregate, measured ~150 ms on 1,000,000 reports) rather than the planner's own pick, a
    sequential scan into a hash aggregate (~300 ms). Scoped to one statement."""
    if not is_postgres(session):
        return
    if on:
        session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        session.execute(sa.text("SET LOCAL enable_hashagg = off"))
    else:
        session.execute(sa.text("RESET enable_seqscan"))
        session.execute(sa.text("RESET enable_hashagg"))


def _grouped_counts(session: Session, shift_id: int, test_only: bool) -> list[Any]:
    query = select(  # type: ignore[call-overload]
        Report.day_number, Report.status, Report.task_id, Report.photo_count, sa.func.count()
    ).where(col(Report.shift_id) == shift_id)
    if test_only:
        query = query.where(col(Report.member_id).in_(_test_members(shift_id)))
    # The order of ix_report_shift_day_status (shift_id, day_number, status, task_id, photo_count).
    query = query.group_by(
        col(Report.day_number), col(Report.status), col(Report.task_id), col(Report.photo_count)
    )
    if test_only:
        return list(session.exec(query).all())
    _planner_prefers_index_order(session, True)
    try:
        return list(session.exec(query).all())
    finally:
        _planner_prefers_index_order(session, False)


def _test_members(shift_id: int) -> Any:
    return (
        select(Member.id)
        .join(Participant, col(Participant.id) == Member.participant_id)
        .where(Member.shift_id == shift_id, col(Participant.is_test).is_(True))
    )


def summary(session: Session, shift: Shift) -> Summary:
    """Per-day, per-task and per-attempt counts.

    One index-only pass over the shift's reports, without joins, then the (few) test participants'
    reports counted separately and subtracted: filtering them out row by row would cost a join or
    a lookup for each of a million reports."""
    assert shift.id is not None
    counted: dict[tuple[int, str, int, int], int] = {}
    for day_number, status, task_id, photo_count, count in _grouped_counts(
        session, shift.id, False
    ):
        group = (int(day_number), getattr(status, "value", status), int(task_id), int(photo_count))
        counted[group] = counted.get(group, 0) + int(count)
    for day_number, status, task_id, photo_count, count in _grouped_counts(session, shift.id, True):
        group = (int(day_number), getattr(status, "value", status), int(task_id), int(photo_count))
        counted[group] -= int(count)
    rows = [(d, t, s, p, n) for (d, s, t, p), n in counted.items() if n]
    days: dict[int, dict[str, int]] = {}
    tasks: dict[int, dict[str, int]] = {}
    by_attempt: dict[int, int] = {}
    for day_number, task_id, status, photo_count, count in rows:
        status = getattr(status, "value", status)
        for bucket, key in ((days, day_number), (tasks, task_id)):
            counts = bucket.setdefault(key, dict.fromkeys(COUNTED, 0))
            counts[status] += int(count)
        if status == ReportStatus.approved.value:
            by_attempt[int(photo_count)] = by_attempt.get(int(photo_count), 0) + int(count)
    day_list = []
    for n in range(1, shift.length_days + 1):
        day = shift.started_at + timedelta(days=n - 1)
        c = days.get(n, dict.fromkeys(COUNTED, 0))
        day_list.append(Counts(n, f"{day.day:02d}.{day.month:02d}", *(c[s] for s in COUNTED)))
    titles = dict(
        session.exec(
            select(col(Task.id), col(Task.title)).where(col(Task.id).in_(tasks or {0}))
        ).all()
    )
    task_list = sorted(
        (Counts(t, titles.get(t, ""), *(c[s] for s in COUNTED)) for t, c in tasks.items()),
        key=lambda c: c.label,
    )
    return Summary(day_list, task_list, dict(sorted(by_attempt.items())))


def per_day(session: Session, shift: Shift) -> list[Counts]:
    return summary(session, shift).days


def per_task(session: Session, shift: Shift) -> list[Counts]:
    return summary(session, shift).tasks


def accepted_by_attempt(session: Session, shift: Shift) -> dict[int, int]:
    return summary(session, shift).by_attempt


def _member_rows_query(shift_id: int) -> Any:
    counts = (
        select(Report.member_id, *_counts())
        .where(col(Report.shift_id) == shift_id)
        .group_by(col(Report.member_id))
        .subquery()
    )
    approved = sa.func.coalesce(counts.c.approved, 0)
    return (
        sa.select(  # type: ignore[call-overload]
            Member.id,
            Participant.name,
            Participant.surname,
            Participant.city,
            Member.status,
            approved.label("approved"),
            *[sa.func.coalesce(counts.c[s], 0) for s in COUNTED[1:]],
        )
        .join(Participant, col(Participant.id) == Member.participant_id)
        .outerjoin(counts, counts.c.member_id == Member.id)
        .where(col(Member.shift_id) == shift_id, col(Participant.is_test).is_(False))
        .order_by(approved.desc(), col(Participant.surname), col(Participant.name), col(Member.id))
    )


@dataclass(frozen=True)
class Ranked:
    place: int
    member_id: int
    name: str
    surname: str
    city: str
    status: str
    approved: int
    declined: int
    skipped: int
    waiting: int
    reviewing: int
    paused: int

    def export_row(self) -> list[Any]:
        return [
            self.place,
            self.name,
            self.surname,
            self.city,
            "участвует" if self.status == "active" else "исключён",
            self.approved,
            self.declined,
            self.skipped,
            self.waiting,
            self.reviewing,
            self.paused,
        ]


def ranked(rows: Any) -> Iterator[Ranked]:
    """Competition ranking: equal ломбарьерчики share a place (1, 1, 3…)."""
    place, previous = 0, None
    for index, row in enumerate(rows, start=1):
        member_id, name, surname, city, status, approved, *rest = row
        if approved != previous:
            place, previous = index, approved
        yield Ranked(
            place,
            member_id,
            name,
            surname,
            city,
            getattr(status, "value", status),
            int(approved),
            *map(int, rest),
        )


def ranking(session: Session, shift: Shift, limit: int | None = None) -> list[Ranked]:
    """The first `limit` places (all without a limit), in the same order and places as the export.

    Two statements instead of one grouping of every report by member: the places need only each
    member's approved count (an index-only pass over the approved reports), and the other counts
    are fetched for the members on the page alone."""
    assert shift.id is not None
    approved_counts = (
        select(Report.member_id, sa.func.count().label("n"))
        .where(col(Report.shift_id) == shift.id, col(Report.status) == ReportStatus.approved)
        .group_by(col(Report.member_id))
        .subquery()
    )
    approved = sa.func.coalesce(approved_counts.c.n, 0)
    query = (
        sa.select(  # type: ignore[call-overload]
            Member.id,
            Participant.name,
            Participant.surname,
            Participant.city,
            Member.status,
            approved.label("approved"),
            sa.func.rank().over(order_by=approved.desc()).label("place"),
        )
        .join(Participant, col(Participant.id) == Member.participant_id)
        .outerjoin(approved_counts, approved_counts.c.member_id == Member.id)
        .where(col(Member.shift_id) == shift.id, col(Participant.is_test).is_(False))
        .order_by(approved.desc(), col(Participant.surname), col(Participant.name), col(Member.id))
    )
    if limit:
        query = query.limit(limit)
    top = session.execute(query).all()
    if not top:
        return []
    others: dict[int, dict[str, int]] = {row[0]: dict.fromkeys(COUNTED, 0) for row in top}
    for member_id, status, count in session.execute(
        sa.select(col(Report.member_id), col(Report.status), sa.func.count())
        .where(col(Report.member_id).in_(list(others)))
        .group_by(col(Report.member_id), col(Report.status))
    ):
        others[member_id][getattr(status, "value", status)] = int(count)
    return [
        Ranked(
            int(place),
            member_id,
            name,
            surname,
            city,
            getattr(status, "value", status),
            int(approved),
            *(others[member_id][s] for s in COUNTED[1:]),
        )
        for member_id, name, surname, city, status, approved, place in top
    ]


def stream_ranking(session: Session, shift_id: int) -> Iterator[Ranked]:
    result = session.execute(_member_rows_query(shift_id), execution_options={"yield_per": 1000})
    yield from ranked(result)


# --- exports ------------------------------------------------------------------------------------


def file_name(shift: Shift, ext: str) -> str:
    return f"Смена №{shift.number} «{shift.title}» — итоги.{ext}"


def content_disposition(name: str, fallback: str) -> str:
    """An attachment header with an ASCII fallback and the real (Russian) name per RFC 5987."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def csv_chunks(session: Session, shift_id: int) -> Iterator[bytes]:
    """CSV for Excel: UTF-8 with a BOM, semicolons; yields as the rows come from the database."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    buffer.write("\ufeff")
    writer.writerow(EXPORT_HEADERS)
    for count, row in enumerate(stream_ranking(session, shift_id), start=1):
        writer.writerow(row.export_row())
        if count % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_file(session: Session, shift: Shift) -> Any:
    """The ranking as .xlsx (openpyxl write-only mode) in a temporary file, rewound."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Итоги")
    bold = Font(bold=True)
    header = []
    for title in EXPORT_HEADERS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in stream_ranking(session, shift.id):  # type: ignore[arg-type]
        sheet.append(row.export_row())
    days = book.create_sheet("По дням")
    days.append(
        ["День", "Дата", "Принято", "Отклонено", "Пропущено", "Ждут фото", "На проверке", "Пауза"]
    )
    for d in per_day(session, shift):
        days.append(
            [
                d.key,
                shift.started_at + timedelta(days=d.key - 1),
                d.approved,
                d.declined,
                d.skipped,
                d.waiting,
                d.reviewing,
                d.paused,
            ]
        )
    out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller streams and closes it)
    book.save(out)
    out.seek(0)
    return out


# --- what the page shows -----------------------------------------------------------------------


def days_so_far(shift: Shift, days: list[Counts], today: date | None = None) -> list[Counts]:
    """The days that have come (and any later day that somehow has reports): a shift's future
    days are not rows of zeros."""
    today = today or clock.local_today()
    return [
        d
        for d in days
        if shift.started_at + timedelta(days=d.key - 1) <= today
        or d.approved + d.declined + d.skipped + d.waiting + d.reviewing + d.paused
    ]


def shared_places(ranking: list[Ranked]) -> dict[int, int]:
    """How many members share each place that has ломбарьерчики (a place held by one is left out).
    Nobody with zero is placed: at the start of a shift everyone would be "1st"."""
    counts = Counter(r.place for r in ranking if r.approved > 0)
    return {place: n for place, n in counts.items() if n > 1}


# --- the chart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    segments: list[tuple[str, float, float, int]]  # (css class, y, height, value)
    label: str
    title: str


def chart(days: list[Counts], height: int = 100) -> dict[str, Any]:
    """Stacked daily bars (accepted, declined, skipped) as numbers for an inline SVG that is
    stretched to the page's width (one unit per day), and the day labels for an HTML axis below
    it, so the labels stay readable on a phone: every 7th day (every 14th on a long shift), never
    one squeezed against the last day's."""
    top = max((d.approved + d.declined + d.skipped for d in days), default=0)
    scale = height / (top or 1)
    step = 7 if len(days) <= 45 else 14
    bars = []
    for i, d in enumerate(days):
        y = float(height)
        segments = []
        for css, value in (("ok", d.approved), ("bad", d.declined), ("skipped", d.skipped)):
            h = value * scale
            y -= h
            segments.append((css, round(y, 2), round(h, 2), value))
        last = i == len(days) - 1
        label = d.label if last or (i % step == 0 and len(days) - i > step // 2) else ""
        bars.append(
            Bar(
                i + 0.12,
                0.76,
                segments,
                label,
                f"День {d.key}, {d.label}: принято {d.approved}, отклонено {d.declined}, "
                f"пропущено {d.skipped}",
            )
        )
    return {"width": max(len(days), 1), "height": height, "bars": bars, "top": top}
