"""The report queue (product.md §4.2): what curators see.

`page()` returns one page of cards in a constant number of statements (the page itself, the strips
of earlier photos, the photos that flags point to), keyset-paginated on (submitted_at, id) — never
OFFSET — so every next page costs the same as the first. Decisions live in `app.moderation`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app import claims, clock, duplicates, text
from app.db import is_postgres
from app.errors import MissingObject, NotAnImage, NotFound
from app.models import (
    Member,
    Participant,
    PhotoFlag,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    Staff,
    Task,
)
from app.settings import get_settings

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
STRIP = 5
MAX_QUERY = 100

# Status filter values → (statuses, newest first?). The review queue is oldest first; decided lists
# show the latest decisions first.
STATUS_FILTERS: dict[str, tuple[tuple[ReportStatus, ...], bool]] = {
    "reviewing": ((ReportStatus.reviewing,), False),
    "approved": ((ReportStatus.approved,), True),
    "declined": ((ReportStatus.declined,), True),
    "all": ((ReportStatus.reviewing, ReportStatus.approved, ReportStatus.declined), True),
}
STATUS_LABELS = {
    "reviewing": "ждут проверки",
    "approved": "принятые",
    "declined": "отклонённые",
    "all": "все",
}


# --- filters and cursors -------------------------------------------------------------------------


@dataclass
class Filters:
    shift_id: int | None = None
    task_id: int | None = None
    day: int | None = None
    status: str = "reviewing"
    flagged: bool = False
    q: str = ""
    size: int = PAGE_SIZE
    notices: list[str] = field(default_factory=list)

    @property
    def narrowed(self) -> bool:
        """Whether anything but the status narrows the list."""
        return bool(self.shift_id or self.task_id or self.day or self.flagged or self.q)

    def query(self, **extra: Any) -> dict[str, Any]:
        """The filters as URL query parameters (only the non-default ones)."""
        params: dict[str, Any] = {}
        if self.shift_id is not None:
            params["shift"] = self.shift_id
        if self.task_id is not None:
            params["task"] = self.task_id
        if self.day is not None:
            params["day"] = self.day
        if self.status != "reviewing":
            params["status"] = self.status
        if self.flagged:
            params["flagged"] = 1
        if self.q:
            params["q"] = self.q
        if self.size != PAGE_SIZE:
            params["size"] = self.size
        params.update({k: v for k, v in extra.items() if v is not None})
        return params


def parse_filters(params: Any) -> Filters:
    """Filters from query parameters. Bad values are dropped with a notice, never an error."""
    f = Filters()
    for name, attr, label in (
        ("shift", "shift_id", "смены"),
        ("task", "task_id", "задания"),
        ("day", "day", "дня"),
    ):
        raw = str(params.get(name, "") or "").strip()
        if not raw:
            continue
        value = text.to_int(raw, bits=32)
        if value is None or value < 1:
            f.notices.append(f"Непонятный номер {label} в адресе — этот фильтр не применён.")
        else:
            setattr(f, attr, value)
    status = str(params.get("status", "") or "").strip()
    if status:
        if status in STATUS_FILTERS:
            f.status = status
        else:
            f.notices.append("Такого статуса нет — показаны фото, которые ждут проверки.")
    f.flagged = str(params.get("flagged", "")) in {"1", "on", "true"}
    q = " ".join(str(params.get("q", "") or "").split())
    if len(q) > MAX_QUERY:
        f.notices.append(f"Поиск по имени обрезан до {MAX_QUERY} символов.")
        q = q[:MAX_QUERY]
    f.q = q
    size = text.to_int(params.get("size", ""), bits=32)
    if size is not None:
        f.size = max(1, min(size, MAX_PAGE_SIZE))
    return f


def encode_cursor(submitted_at: datetime, report_id: int) -> str:
    micros = int(submitted_at.timestamp() * 1_000_000)
    return f"{micros}-{report_id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    try:
        micros_s, id_s = value.split("-", 1)
        micros, report_id = int(micros_s), int(id_s)
        moment = datetime.fromtimestamp(micros / 1_000_000, tz=clock.now().tzinfo)
    except (ValueError, OverflowError, OSError):
        return None
    return moment, report_id


# --- reading the queue ---------------------------------------------------------------------------


@dataclass
class StripItem:
    day_number: int
    status: ReportStatus
    thumb_key: str


@dataclass
class FlagMatch:
    kind: PhotoFlag
    photo_id: int
    thumb_key: str = ""
    name: str = ""
    surname: str = ""
    day_number: int = 0
    status: ReportStatus | None = None
    same_child: bool = False


@dataclass
class Card:
    id: int
    status: ReportStatus
    day_number: int
    task_date: date
    photo_count: int
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by_id: int | None
    decline_reason: str | None
    member_id: int
    shift_id: int
    task_title: str
    task_image_key: str | None
    name: str
    surname: str
    date_of_birth: date | None
    city: str
    shift_number: int
    shift_length: int
    photo_id: int | None
    thumb_key: str | None
    storage_key: str | None
    flag: PhotoFlag | None
    flag_photo_id: int | None
    flags_checked: bool
    decider_name: str | None
    decider_surname: str | None
    strip: list[StripItem] = field(default_factory=list)
    match: FlagMatch | None = None

    @property
    def cursor(self) -> str:
        assert self.submitted_at is not None
        return encode_cursor(self.submitted_at, self.id)

    @property
    def short_name(self) -> str:
        return f"{self.name} {self.surname[:1]}.".strip() if self.surname else self.name

    @property
    def decider(self) -> str:
        if self.decider_name is None:
            return "сотрудник"
        return f"{self.decider_name} {(self.decider_surname or '')[:1]}.".rstrip(" .") + (
            "." if self.decider_surname else ""
        )

    @property
    def decided_today(self) -> bool:
        tz = get_settings().tz
        return self.decided_at is not None and (
            self.decided_at.astimezone(tz).date() == clock.local_today()
        )

    def undo_until(self) -> datetime | None:
        if self.decided_at is None:
            return None
        return self.decided_at + timedelta(seconds=get_settings().undo_seconds)

    def can_undo(self, staff_id: int) -> bool:
        until = self.undo_until()
        return (
            self.status in (ReportStatus.approved, ReportStatus.declined)
            and self.decided_by_id == staff_id
            and until is not None
            and clock.now() < until
        )


_photo: Any = aliased(ReportPhoto, name="latest_photo")
_decider: Any = aliased(Staff, name="decider")

_CARD_COLUMNS: tuple[Any, ...] = (
    col(Report.id),
    col(Report.status),
    col(Report.day_number),
    col(Report.task_date),
    col(Report.photo_count),
    col(Report.submitted_at),
    col(Report.decided_at),
    col(Report.decided_by_id),
    col(Report.decline_reason),
    col(Report.member_id),
    col(Report.shift_id),
    col(Task.title).label("task_title"),
    col(Task.image_key).label("task_image_key"),
    col(Participant.name),
    col(Participant.surname),
    col(Participant.date_of_birth),
    col(Participant.city),
    col(Shift.number).label("shift_number"),
    col(Shift.started_at).label("shift_started_at"),
    col(Shift.finished_at).label("shift_finished_at"),
    _photo.id.label("photo_id"),
    _photo.thumb_key,
    _photo.storage_key,
    _photo.flag,
    _photo.flag_photo_id,
    _photo.flags_checked,
    _decider.name.label("decider_name"),
    _decider.surname.label("decider_surname"),
)


@functools.cache
def _card_select() -> sa.Select:
    """One card by id; built once (statement construction costs more than running it)."""
    return _build_card_select()


def _fixed_join_order(session: Session) -> None:
    """The card query is written in the order it should run (the queue index first, then primary
    keys). On PostgreSQL, searching other join orders costs more than running it (measured: ~5 ms
    planning vs ~1 ms execution), so the planner is told to keep the written order."""
    if is_postgres(session):
        session.execute(sa.text("SET LOCAL join_collapse_limit = 1"))


def _build_card_select(driver: Any = None) -> sa.Select:
    """The card query; `driver` (a subquery of report ids) goes first in the join order."""
    start = sa.select(*_CARD_COLUMNS)
    if driver is None:
        start = start.select_from(Report)
    else:
        start = start.select_from(driver).join(Report, col(Report.id) == driver.c.id)
    return (
        start.join(Task, col(Task.id) == col(Report.task_id))
        .join(Member, col(Member.id) == col(Report.member_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .join(Shift, col(Shift.id) == col(Report.shift_id))
        .outerjoin(
            _photo,
            sa.and_(_photo.report_id == col(Report.id), _photo.attempt == col(Report.photo_count)),
        )
        .outerjoin(_decider, _decider.id == col(Report.decided_by_id))
    )


def _card(row: Any) -> Card:
    """A card from a row of the card query (its columns are labelled as the card's fields)."""
    values = dict(row._mapping)
    started, finished = values.pop("shift_started_at"), values.pop("shift_finished_at")
    values.update(
        status=ReportStatus(values["status"]),
        flag=PhotoFlag(values["flag"]) if values["flag"] else None,
        flags_checked=bool(values["flags_checked"]),
        shift_length=(finished - started).days + 1,
    )
    return Card(**values)


def _name_terms(session: Session, q: str) -> list[Any]:
    """Every word of `q` must start the child's name or surname (case-insensitive, Cyrillic too)."""
    terms = []
    postgres = is_postgres(session)
    for word in q.split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if postgres:
            pattern = escaped + "%"
            terms.append(
                sa.or_(
                    col(Participant.name).ilike(pattern, escape="\\"),
                    col(Participant.surname).ilike(pattern, escape="\\"),
                )
            )
        else:
            # SQLite folds ASCII case only: try the spellings a name is stored in.
            variants = {escaped, escaped.lower(), escaped.capitalize(), escaped.upper()}
            terms.append(
                sa.or_(
                    *(
                        c.like(v + "%", escape="\\")
                        for v in variants
                        for c in (col(Participant.name), col(Participant.surname))
                    )
                )
            )
    return terms


COUNT_CAP = 10_000


@dataclass
class Page:
    cards: list[Card]
    next_cursor: str | None
    # The page holds the whole list (no next page, and no card skipped as another's): its count.
    whole: bool = False


WALK = 1_000


@dataclass(frozen=True)
class Count:
    """A header counter: `n`, exact or a lower bound ("n+")."""

    n: int
    exact: bool = True

    def __str__(self) -> str:
        shown = f"{self.n:,}".replace(",", "\N{NO-BREAK SPACE}")
        return shown if self.exact else shown + "+"


def count(session: Session, filters: Filters) -> Count:
    """How many reports the filters match: the header counter of the list a curator is in.

    Without filters (any status) it is an index-only count, exact up to COUNT_CAP ("10 000+"):
    counting 200,000 rows took ~30 ms, the cap keeps it to at most COUNT_CAP index entries (a
    real day has at most one photo per member in review).
    With filters (shift, task, day, flag, name) only the first WALK entries of the queue, in the
    queue's order, are looked at: every one of them needs its row or a probe, and a counter must
    not cost more than the page. So the number is exact whenever the list has fewer than WALK
    entries (a queue that is being worked through) and a lower bound ("n+") beyond."""
    statuses, newest_first = STATUS_FILTERS[filters.status]
    if not filters.narrowed:
        capped = (
            sa.select(col(Report.id))
            .where(col(Report.status).in_(statuses))
            .limit(COUNT_CAP)
            .subquery()
        )
        n = int(session.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one())
        return Count(n, n < COUNT_CAP)
    hit = sa.case((sa.and_(*_report_conditions(session, filters, None)), 1), else_=0)
    order = (
        (col(Report.submitted_at).desc(), col(Report.id).desc())
        if newest_first
        else (col(Report.submitted_at), col(Report.id))
    )
    walks = [
        sa.select(hit.label("hit"))
        .where(col(Report.status) == status, col(Report.submitted_at).is_not(None))
        .order_by(*order)
        .limit(WALK)
        .subquery()
        for status in statuses
    ]
    parts = [
        sa.select(
            sa.func.count().label("walked"), sa.func.coalesce(sa.func.sum(w.c.hit), 0).label("n")
        )
        for w in walks
    ]
    rows = session.execute(parts[0] if len(parts) == 1 else sa.union_all(*parts)).all()
    return Count(sum(int(r.n) for r in rows), all(int(r.walked) < WALK for r in rows))


def _report_conditions(
    session: Session, filters: Filters, after: str | None, *, flagged: bool = True
) -> list[Any]:
    """The filters as conditions on the report row alone, so they are checked while walking the
    queue index (conditions on joined rows would only be checked after all the joins).
    `flagged=False` leaves the "flagged only" condition to the caller."""
    newest_first = STATUS_FILTERS[filters.status][1]
    conditions: list[Any] = [col(Report.submitted_at).is_not(None)]
    if filters.shift_id is not None:
        conditions.append(col(Report.shift_id) == filters.shift_id)
    if filters.task_id is not None:
        conditions.append(col(Report.task_id) == filters.task_id)
    if filters.day is not None:
        conditions.append(col(Report.day_number) == filters.day)
    if filters.flagged and flagged:
        conditions.append(
            sa.exists().where(
                col(ReportPhoto.report_id) == col(Report.id),
                col(ReportPhoto.attempt) == col(Report.photo_count),
                col(ReportPhoto.flag).is_not(None),
            )
        )
    if filters.q:
        # The planner picks: walk the queue for a common name, or fetch the few matching
        # members' reports for a rare one (measured 1 ms and 4 ms on 1,000,000 reports).
        members = (
            sa.select(col(Member.id))
            .join(Participant, col(Participant.id) == col(Member.participant_id))
            .where(*_name_terms(session, filters.q))
        )
        conditions.append(col(Report.member_id).in_(members))
    cursor = decode_cursor(after)
    if cursor is not None:
        key = sa.tuple_(col(Report.submitted_at), col(Report.id))
        conditions.append(key < sa.tuple_(*cursor) if newest_first else key > sa.tuple_(*cursor))
    return conditions


def page(
    session: Session,
    filters: Filters,
    after: str | None = None,
    *,
    staff_id: int | None = None,
    fresh: bool = False,
) -> Page:
    """One page of the queue: cards, their strips and flag matches.

    At most four statements (PostgreSQL: the join-order setting, the cards, the strips, the flag
    matches), plus the lazy flag computation for photos that were never checked, plus — for a
    curator (`staff_id`) in the review queue — the claim of the cards shown (app.claims).

    Claims: a page skips cards other curators hold (a reload shows one's own again); a `fresh`
    page (the live queue asking for cards nobody has on screen — new photos, released cards —
    from the start of the queue) skips every held card, one's own included. A search by name
    skips nothing: it is how a claimed card is found. Cards claimed by someone else in the
    meantime are dropped from the page (of two curators loading at once, one gets each)."""
    statuses, newest_first = STATUS_FILTERS[filters.status]
    live = staff_id is not None and filters.status == "reviewing"
    if fresh:
        after = None
    conditions = _report_conditions(session, filters, after)
    skip_claimed = live and not filters.q
    if skip_claimed:
        now = clock.now()
        conditions.append(claims.free_for(None if fresh else staff_id, now))
    order = (
        (col(Report.submitted_at).desc(), col(Report.id).desc())
        if newest_first
        else (col(Report.submitted_at), col(Report.id))
    )
    limit = filters.size + 1
    # First the page's report ids, from the queue index with the filters (one ordered walk per
    # status; an index cannot give "status IN (…) ORDER BY submitted_at" in order), then the joins
    # for those few rows only.
    parts = [
        sa.select(col(Report.id))
        .where(col(Report.status) == status, *conditions)
        .order_by(*order)
        .limit(limit)
        .subquery()
        for status in statuses
    ]
    if len(parts) == 1:
        picked = parts[0]
    else:
        picked = sa.union_all(*(sa.select(part.c.id) for part in parts)).subquery("picked")
    query = _build_card_select(picked)
    _fixed_join_order(session)
    rows = session.execute(query.order_by(*order).limit(limit)).all()
    cards = [_card(row) for row in rows[: filters.size]]
    more = len(rows) > filters.size and cards and cards[-1].submitted_at is not None
    cursor = cards[-1].cursor if more else None
    if live and cards:
        assert staff_id is not None
        held = claims.claim(session, staff_id, [c.id for c in cards])
        if skip_claimed:
            cards = [c for c in cards if c.id in held]
    enrich(session, cards)
    return Page(cards, cursor, whole=not after and cursor is None and not skip_claimed)


def card(session: Session, report_id: int, *, opened_by: int | None = None) -> Card:
    """One card; strips and flags only for a card still in review (a decided card is one line).

    `opened_by`: a curator opening the card's own page; a card in review is claimed for them, as a
    queue page claims its cards (a no-op if another curator holds it)."""
    _fixed_join_order(session)
    row = session.execute(_card_select().where(col(Report.id) == report_id)).first()
    if row is None:
        raise NotFound(report_id)
    result = _card(row)
    if result.status == ReportStatus.reviewing:
        if opened_by is not None:
            claims.claim(session, opened_by, [result.id])
        enrich(session, [result])
    return result


def enrich(session: Session, cards: list[Card]) -> None:
    """Attach strips of earlier photos and flag matches; compute missing flags (seeded photos)."""
    if not cards:
        return
    for c in cards:
        if c.photo_id is not None and not c.flags_checked:
            _compute_flag(session, c)
    _attach_strips(session, cards)
    _attach_matches(session, cards)


def _compute_flag(session: Session, c: Card) -> None:
    photo = session.get(ReportPhoto, c.photo_id)
    if photo is None:
        return
    try:
        found = duplicates.flag_photo(session, photo)
    except (OSError, NotAnImage, MissingObject, ValueError):
        return  # the file is missing or unreadable: leave unchecked, the card still shows
    session.flush()
    c.flags_checked = True
    c.flag = found.kind if found else None
    c.flag_photo_id = found.photo_id if found else None


@functools.cache
def _strip_select() -> sa.Select:
    """Built once (statement construction costs more than running it); `ids` expands per call."""
    current: Any = aliased(Report, name="cur")
    earlier: Any = aliased(Report, name="earlier")
    rank = (
        sa.func.row_number()
        .over(partition_by=current.id, order_by=earlier.day_number.desc())
        .label("rn")
    )
    inner = (
        sa.select(
            current.id.label("card_id"),
            earlier.id.label("rid"),
            earlier.day_number,
            earlier.status,
            earlier.photo_count,
            rank,
        )
        .select_from(current)
        .join(
            earlier,
            sa.and_(
                earlier.member_id == current.member_id,
                earlier.day_number < current.day_number,
                earlier.photo_count > 0,
            ),
        )
        .where(current.id.in_(sa.bindparam("ids", expanding=True)))
        .subquery()
    )
    return (
        sa.select(inner.c.card_id, inner.c.day_number, inner.c.status, col(ReportPhoto.thumb_key))
        .join(
            ReportPhoto,
            sa.and_(
                col(ReportPhoto.report_id) == inner.c.rid,
                col(ReportPhoto.attempt) == inner.c.photo_count,
            ),
        )
        .where(inner.c.rn <= STRIP)
        .order_by(inner.c.card_id, inner.c.day_number)
    )


def _attach_strips(session: Session, cards: list[Card]) -> None:
    """The last STRIP photos of each card's child before that card's day, in one statement."""
    by_card = {c.id: c for c in cards}
    rows = session.execute(_strip_select(), {"ids": list(by_card)})
    for card_id, day_number, status, thumb_key in rows:
        by_card[card_id].strip.append(StripItem(day_number, ReportStatus(status), thumb_key))


def _attach_matches(session: Session, cards: list[Card]) -> None:
    wanted = {c.flag_photo_id for c in cards if c.flag and c.flag_photo_id}
    if not wanted:
        for c in cards:
            if c.flag:
                c.match = FlagMatch(c.flag, 0)
        return
    query = (
        sa.select(
            col(ReportPhoto.id),
            col(ReportPhoto.thumb_key),
            col(Report.day_number),
            col(Report.status),
            col(Report.member_id),
            col(Participant.name),
            col(Participant.surname),
        )
        .join(Report, col(Report.id) == col(ReportPhoto.report_id))
        .join(Member, col(Member.id) == col(Report.member_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .where(col(ReportPhoto.id).in_(wanted))
    )
    found = {row[0]: row for row in session.execute(query)}
    for c in cards:
        if not c.flag:
            continue
        row = found.get(c.flag_photo_id) if c.flag_photo_id else None
        if row is None:
            c.match = FlagMatch(c.flag, 0)
            continue
        c.match = FlagMatch(
            kind=c.flag,
            photo_id=row[0],
            thumb_key=row[1],
            day_number=row[2],
            status=ReportStatus(row[3]),
            same_child=row[4] == c.member_id,
            name=row[5],
            surname=row[6],
        )


@dataclass(frozen=True)
class Option:
    id: int
    number: int | None
    title: str


_OPTIONS: Any = None


def _options_select() -> Any:
    """Shifts with reports (newest first) and tasks (by title), in one statement: the page pays a
    round trip per statement."""
    global _OPTIONS
    if _OPTIONS is None:
        shifts = (
            sa.select(
                sa.literal(0).label("kind"),
                col(Shift.id),
                col(Shift.number),
                col(Shift.title),
            )
            .where(col(Shift.status).in_(["started", "finishing", "finished"]))
            .order_by(col(Shift.number).desc())
            .limit(50)
            .subquery()
        )
        tasks = (
            sa.select(
                sa.literal(1).label("kind"),
                col(Task.id),
                sa.cast(sa.null(), sa.Integer).label("number"),
                col(Task.title),
            )
            .order_by(col(Task.title))
            .limit(500)
            .subquery()
        )
        _OPTIONS = sa.union_all(sa.select(shifts), sa.select(tasks))
    return _OPTIONS


def filter_options(session: Session) -> tuple[list[Option], list[Option]]:
    """Shifts and tasks for the filter drop-downs (the full page only)."""
    shifts: list[Option] = []
    tasks: list[Option] = []
    for kind, option_id, number, title in session.execute(_options_select()):
        (tasks if kind else shifts).append(Option(option_id, number, title))
    shifts.sort(key=lambda o: -(o.number or 0))
    tasks.sort(key=lambda o: o.title)
    return shifts, tasks


# --- decisions -------------------------------------------------------------------------------------
