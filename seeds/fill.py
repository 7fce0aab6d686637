"""Fill the database with realistic fake data for the demo and for trying the admin site by hand.

What `fill` creates (product.md §2):

- the 31 everyday tasks with generated pictures;
- ~200 participants with Russian names, cities, birth dates and phones (a few test ones, a few who
  blocked the bot);
- four shifts: №1 `finished` (reports without photos, to stay fast), №2 `cancelled`, №3 `started`
  on about day 30 of 92 with ~20 members and a full history of reports in every status, each photo
  generated and distinct, plus a few exact and near duplicates among the reports under review, and
  №4 `preparing` with pending, approved and declined requests;
- an administrator, an expert (both with fixed demo passwords) and two more curators;
- audit events for the decisions, so the audit log has something to show.

The session belongs to the caller: this module flushes but never commits. Nothing is added when the
database already has data, so re-running is harmless and a demo password never lands in a real
database.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from app import audit, clock, storage
from app.accounts import hash_password
from app.db import is_postgres
from app.images import StoredImage, store_image
from app.models import (
    Application,
    ApplicationStatus,
    Member,
    MemberPause,
    MemberStatus,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    ShiftDay,
    ShiftStatus,
    Staff,
    StaffRole,
    StaffStatus,
    Task,
)
from app.photos import photo_row
from app.settings import get_settings
from seeds import data, pictures

Progress = Callable[[str], None]

SHIFT_LENGTH = 92  # days, about three months
PLAN_GAP = 7  # a task does not come back within this many days


@dataclass
class SeedSummary:
    """What the database holds after seeding, and the demo logins to print."""

    tasks: int = 0
    participants: int = 0
    shifts: int = 0
    requests: int = 0
    members: int = 0
    reports: int = 0
    reviewing: int = 0
    photos: int = 0
    already_seeded: bool = False
    seconds: float = 0.0
    demo_logins: bool = True  # whether the demo accounts below exist in this database
    admin_email: str = data.ADMIN["email"]
    admin_password: str = data.ADMIN["password"]
    expert_email: str = data.EXPERT["email"]
    expert_password: str = data.EXPERT["password"]

    def describe(self) -> str:
        """A few Russian lines for the terminal."""
        if self.already_seeded:
            head = "В базе уже были данные — ничего не добавлено (заполнить заново: --delete)."
        else:
            head = f"Тестовые данные созданы за {self.seconds:.1f} с."
        lines = [
            head,
            f"Задания: {self.tasks}, участники: {self.participants}, смены: {self.shifts}, "
            f"заявки: {self.requests}, участники смен: {self.members}.",
            f"Отчёты: {self.reports} (на проверке: {self.reviewing}), фотографии: {self.photos}.",
        ]
        if self.demo_logins:
            lines += [
                f"Администратор: {self.admin_email} / {self.admin_password}",
                f"Эксперт:       {self.expert_email} / {self.expert_password}",
            ]
        return "\n".join(lines)


# --- time helpers --------------------------------------------------------------------------------


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC moment of a local wall-clock time in the project's time zone."""
    return datetime.combine(day, dtime(hour, minute), tzinfo=get_settings().tz).astimezone(UTC)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


def _days_ago(rng: random.Random, low: int, high: int) -> datetime:
    return clock.now() - timedelta(days=rng.uniform(low, high))


# --- context shared by the steps -----------------------------------------------------------------


@dataclass
class _Ctx:
    session: Session
    rng: random.Random
    progress: Progress
    admin: Staff
    expert: Staff
    curators: list[Staff]
    tasks: list[Task] = field(default_factory=list)
    scenes: dict[int, str] = field(default_factory=dict)  # task id → scene of its photos

    def curator(self) -> Staff:
        """Who decided: mostly the expert, sometimes the others."""
        return self.rng.choices(self.curators, weights=[5, 2, 2][: len(self.curators)])[0]


@dataclass
class _PhotoJob:
    """One photo to draw and store, for attempt `attempt` of `report`."""

    report: Report
    attempt: int
    at: datetime
    seed: int
    scene: str
    caption: str
    near: bool = False  # draw as a near duplicate of the photo with the same seed


# --- entry points --------------------------------------------------------------------------------


def fill(
    session: Session,
    *,
    progress: Progress = print,
    rng_seed: int = 7,
    participants: int = 200,
    members: int = 20,
    day: int = 30,
) -> SeedSummary:
    """Fill an empty database with demo data; on a non-empty one, add nothing.

    `participants`, `members` (of the started shift) and `day` (its current day) exist so the tests
    can seed a smaller world; the defaults make the demo.
    """
    started = time.monotonic()
    if participants < 2 * members + 35:
        # Every shift draws its own applicants from the participants; fewer would run out.
        raise ValueError(f"participants must be at least 2 × members + 35, got {participants}")
    if _has_data(session):
        progress("В базе уже есть данные — тестовые данные не добавлены.")
        summary = _summary(session)
        summary.already_seeded = True
        return summary

    rng = random.Random(rng_seed)
    progress("Сотрудники…")
    admin, expert, curators = _create_staff(session)
    ctx = _Ctx(session, rng, progress, admin, expert, curators)
    _create_tasks(ctx)
    people = _create_participants(ctx, participants)
    _create_shifts(ctx, people, members=members, day=day)
    session.flush()
    summary = _summary(session)
    summary.seconds = time.monotonic() - started
    return summary


def wipe(session: Session) -> None:
    """Delete every row of every table and every file under the media folder."""
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    if is_postgres(session):
        # One statement; RESTART IDENTITY so a fresh demo has small, predictable ids again.
        names = ", ".join(f'"{table.name}"' for table in tables)
        session.execute(sa.text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            session.execute(table.delete())
    _clear_media()


def _clear_media() -> None:
    storage.delete(*storage.backend().keys())


def _has_data(session: Session) -> bool:
    return any(
        session.exec(select(model.id).limit(1)).first() is not None
        for model in (Staff, Task, Shift, Participant)
    )


def _count(session: Session, model: type[SQLModel], *where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(model)
    if where:
        query = query.where(*where)
    return int(session.scalar(query) or 0)


def _summary(session: Session) -> SeedSummary:
    return SeedSummary(
        tasks=_count(session, Task),
        participants=_count(session, Participant),
        shifts=_count(session, Shift),
        requests=_count(session, Application),
        members=_count(session, Member),
        reports=_count(session, Report),
        reviewing=_count(session, Report, col(Report.status) == ReportStatus.reviewing),
        photos=_count(session, ReportPhoto),
        demo_logins=_count(session, Staff, col(Staff.email) == data.ADMIN["email"]) > 0,
    )


# --- staff, tasks, participants ------------------------------------------------------------------


def _create_staff(session: Session) -> tuple[Staff, Staff, list[Staff]]:
    joined = clock.now() - timedelta(days=400)

    def make(
        info: dict, role: StaffRole, password: str, status: StaffStatus = StaffStatus.active
    ) -> Staff:
        staff = Staff(
            email=info["email"],
            name=info["name"],
            surname=info["surname"],
            role=role,
            status=status,
            password_hash=hash_password(password),
            created_at=joined,
            updated_at=joined,
        )
        session.add(staff)
        return staff

    admin = make(data.ADMIN, StaffRole.administrator, data.ADMIN["password"])
    expert = make(data.EXPERT, StaffRole.expert, data.EXPERT["password"])
    others = [
        # Nobody knows these passwords: the accounts are there to be looked at, not used.
        make(
            info,
            StaffRole.expert,
            secrets.token_urlsafe(24),
            StaffStatus.blocked if info["blocked"] else StaffStatus.active,
        )
        for info in data.OTHER_STAFF
    ]
    session.flush()
    active_others = [s for s in others if s.status == StaffStatus.active]
    return admin, expert, [expert, admin, *active_others]


def _create_tasks(ctx: _Ctx) -> None:
    ctx.progress(f"Задания и картинки к ним: {len(data.TASKS)}…")
    created = clock.now() - timedelta(days=420)
    for index, (title, _scene, icon) in enumerate(data.TASKS):
        stored = store_image(pictures.task_picture(title, icon, index), "tasks", reencode=True)
        task = Task(title=title, image_key=stored.key, created_at=created, updated_at=created)
        ctx.session.add(task)
        ctx.tasks.append(task)
    # One archived task, so the catalogue shows that state too; it is never planned.
    title, icon = data.ARCHIVED_TASK
    extra = store_image(pictures.task_picture(title, icon, len(data.TASKS)), "tasks", reencode=True)
    ctx.session.add(
        Task(
            title=title,
            image_key=extra.key,
            is_archived=True,
            created_at=created,
            updated_at=created,
        )
    )
    ctx.session.flush()
    for task, (_title, scene, _icon) in zip(ctx.tasks, data.TASKS, strict=True):
        assert task.id is not None
        ctx.scenes[task.id] = scene


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        phone = (
            f"+7 9{rng.randint(0, 99):02d} {rng.randint(0, 999):03d}-"
            f"{rng.randint(0, 99):02d}-{rng.randint(0, 99):02d}"
        )
        if phone not in used:
            used.add(phone)
            return phone


def _telegram_id(rng: random.Random, used: set[int]) -> int:
    while True:
        value = rng.randint(100_000_000, 7_999_999_999)
        if value not in used:
            used.add(value)
            return value


def _person(rng: random.Random) -> tuple[str, str]:
    surname = rng.choice(data.SURNAMES)
    if rng.random() < 0.5:
        return rng.choice(data.BOY_NAMES), surname
    return rng.choice(data.GIRL_NAMES), data.feminine_surname(surname)


def _create_participants(ctx: _Ctx, count: int) -> list[Participant]:
    """`count` participants; the first two are the curators' own test accounts."""
    ctx.progress(f"Участники: {count}…")
    rng = ctx.rng
    today = clock.local_today()
    cities = [name for name, _ in data.CITIES]
    weights = [weight for _, weight in data.CITIES]
    phones: set[str] = set()
    telegram_ids: set[int] = set()
    people = []
    for index in range(count):
        if index < 2:
            info = data.ADMIN if index == 0 else data.EXPERT
            name, surname, is_test = info["name"], info["surname"], True
            born = today - timedelta(days=rng.randint(30 * 365, 45 * 365))
        else:
            (name, surname), is_test = _person(rng), False
            # Children and young people: mostly 7–17, some up to 25, a few as young as 5.
            born = today - timedelta(days=int(rng.triangular(5 * 365, 25 * 365, 11 * 365)))
        registered = _days_ago(rng, 5, 300)
        person = Participant(
            telegram_id=_telegram_id(rng, telegram_ids),
            name=name,
            surname=surname,
            date_of_birth=born,
            city=rng.choices(cities, weights)[0],
            phone=_phone(rng, phones),
            is_test=is_test,
            is_bot_blocked=not is_test and rng.random() < 0.03,
            consent_at=registered,
            consent_version=data.CONSENT_VERSION,
            created_at=registered,
            updated_at=registered,
        )
        ctx.session.add(person)
        people.append(person)
    ctx.session.flush()
    return people


def _registered_before(person: Participant, moment: datetime, rng: random.Random) -> None:
    """Make the participant's registration (and consent) precede an application at `moment`."""
    if person.created_at > moment:
        person.created_at = person.consent_at = person.updated_at = moment - timedelta(
            hours=rng.uniform(0.1, 72)
        )


# --- shifts and plans ----------------------------------------------------------------------------


def plan_tasks(
    task_ids: list[int], length: int, rng: random.Random, gap: int = PLAN_GAP
) -> list[int]:
    """Task ids for days 1..length: shuffled rounds of all tasks, none repeating within `gap` days."""
    plan: list[int] = []
    while len(plan) < length:
        block = task_ids[:]
        rng.shuffle(block)
        recent = set(plan[-gap:])
        block.sort(key=lambda task_id: task_id in recent)  # stable: recent ones go last
        plan.extend(block)
    return plan[:length]


def _create_shift(
    ctx: _Ctx, number: int, status: ShiftStatus, start: date, length: int = SHIFT_LENGTH
) -> tuple[Shift, list[int]]:
    """A shift and its plan; returns the shift and the task id of each day (index 0 = day 1)."""
    # Created some weeks ahead of its start, but never in the future (the preparing shift).
    created = min(_at(start - timedelta(days=45), 11), clock.now() - timedelta(days=14))
    shift = Shift(
        number=number,
        title=data.SHIFT_TITLES[number - 1],
        status=status,
        started_at=start,
        finished_at=start + timedelta(days=length - 1),
        final_message=data.FINAL_MESSAGE,
        created_at=created,
        updated_at=created,
    )
    ctx.session.add(shift)
    ctx.session.flush()
    assert shift.id is not None
    plan = plan_tasks([task.id for task in ctx.tasks if task.id is not None], length, ctx.rng)
    ctx.session.add_all(
        ShiftDay(shift_id=shift.id, day_number=n, task_id=task_id)
        for n, task_id in enumerate(plan, start=1)
    )
    audit.record(
        ctx.session,
        ctx.admin,
        "shift.create",
        "shift",
        shift.id,
        after={"title": shift.title, "status": ShiftStatus.preparing},
    ).at = created
    return shift, plan


def _take(pool: Iterator[Participant], count: int) -> list[Participant]:
    return [next(pool) for _ in range(count)]


def _create_shifts(ctx: _Ctx, people: list[Participant], *, members: int, day: int) -> None:
    """The four demo shifts, oldest first, and who applied to and joined each of them."""
    rng = ctx.rng
    today = clock.local_today()
    current_start = today - timedelta(days=day - 1)
    finished_start = current_start - timedelta(days=45 + SHIFT_LENGTH)
    cancelled_start = finished_start + timedelta(days=SHIFT_LENGTH + 5)
    preparing_start = current_start + timedelta(days=SHIFT_LENGTH + 13)

    regular = [p for p in people if not p.is_test]
    rng.shuffle(regular)
    pool = iter(regular)
    current_members = [people[0], *_take(pool, members - 1)]  # a curator's test account too
    returning = current_members[1 : 1 + members // 4]  # some children come back shift after shift
    old_members = returning + _take(pool, max(1, members * 3 // 5 - len(returning)))

    ctx.progress("Смена №1 (завершена)…")
    finished, plan = _create_shift(ctx, 1, ShiftStatus.finished, finished_start)
    _enrol(ctx, finished, old_members, _take(pool, 3))
    _finished_reports(ctx, finished, plan)
    _audit_status(ctx, finished, ShiftStatus.started, _at(finished_start, 0))
    _audit_status(ctx, finished, ShiftStatus.finished, _at(finished.finished_at, 22))

    ctx.progress("Смена №2 (отменена)…")
    cancelled, _ = _create_shift(ctx, 2, ShiftStatus.cancelled, cancelled_start, length=31)
    cancelled_at = _at(cancelled_start - timedelta(days=3), 12)
    _cancelled_requests(ctx, cancelled, _take(pool, 6), cancelled_at)
    _audit_status(ctx, cancelled, ShiftStatus.cancelled, cancelled_at)

    ctx.progress("Смена №3 (идёт)…")
    current, plan = _create_shift(ctx, 3, ShiftStatus.started, current_start)
    enrolled = _enrol(ctx, current, current_members, _take(pool, 3))
    _audit_status(ctx, current, ShiftStatus.started, _at(current_start, 0))
    _current_reports(ctx, current, plan, enrolled)

    ctx.progress("Смена №4 (набор заявок)…")
    preparing, _ = _create_shift(ctx, 4, ShiftStatus.preparing, preparing_start)
    _preparing_requests(ctx, preparing, current_members[-3:], pool)


def _audit_status(ctx: _Ctx, shift: Shift, status: ShiftStatus, at: datetime) -> None:
    action = {
        ShiftStatus.started: "shift.start",
        ShiftStatus.finished: "shift.finish",
        ShiftStatus.cancelled: "shift.cancel",
    }[status]
    audit.record(
        ctx.session, ctx.admin, action, "shift", shift.id, after={"status": status}
    ).at = at


# --- requests and members ------------------------------------------------------------------------


def _request(
    ctx: _Ctx,
    shift: Shift,
    person: Participant,
    status: ApplicationStatus,
    applied: datetime,
    decided: datetime | None = None,
    reason: str | None = None,
    attempts: int = 1,
) -> Application:
    assert shift.id is not None and person.id is not None
    _registered_before(person, applied, ctx.rng)
    by = ctx.curator() if decided else None
    request = Application(
        participant_id=person.id,
        shift_id=shift.id,
        status=status,
        attempts=attempts,
        decline_reason=reason,
        decided_by_id=by.id if by else None,
        decided_at=decided,
        created_at=applied,
        updated_at=decided or applied,
    )
    ctx.session.add(request)
    if decided and by:
        action = (
            "application.approve" if status == ApplicationStatus.approved else "application.decline"
        )
        after: dict[str, object] = {"status": status}
        if reason:
            after["reason"] = reason
        ctx.session.flush()
        audit.record(
            ctx.session,
            by,
            action,
            "application",
            request.id,
            before={"status": ApplicationStatus.pending},
            after=after,
        ).at = decided
    return request


def _enrol(
    ctx: _Ctx, shift: Shift, approved: list[Participant], declined: list[Participant]
) -> list[Member]:
    """Requests before the start (approved → members, some declined); members join on day 1 or 2."""
    rng = ctx.rng
    opened = _at(shift.started_at - timedelta(days=30), 10)
    first_day = _at(shift.started_at, 0)
    result = []
    for index, person in enumerate(approved):
        applied = _between(rng, opened, first_day - timedelta(days=2))
        # The last one applied on the first day, while joining was still open: joins on day 2.
        late = index == len(approved) - 1 and len(approved) > 4
        if late:
            applied = _between(rng, first_day + timedelta(hours=9), first_day + timedelta(hours=20))
        decided = _between(rng, applied + timedelta(hours=1), applied + timedelta(hours=30))
        _request(ctx, shift, person, ApplicationStatus.approved, applied, decided)
        assert shift.id is not None and person.id is not None
        joined = shift.started_at + timedelta(days=1 if late else 0)
        member = Member(
            participant_id=person.id,
            shift_id=shift.id,
            joined_at=joined,
            created_at=decided,
            updated_at=decided,
        )
        ctx.session.add(member)
        result.append(member)
    for person in declined:
        applied = _between(rng, opened, first_day - timedelta(days=2))
        decided = _between(rng, applied + timedelta(hours=1), applied + timedelta(hours=30))
        _request(
            ctx,
            shift,
            person,
            ApplicationStatus.declined,
            applied,
            decided,
            rng.choice(data.REQUEST_DECLINE_REASONS),
        )
    ctx.session.flush()
    return result


def _cancelled_requests(
    ctx: _Ctx, shift: Shift, people: list[Participant], cancelled_at: datetime
) -> None:
    opened = cancelled_at - timedelta(days=20)
    for person in people:
        applied = _between(ctx.rng, opened, cancelled_at - timedelta(days=1))
        _request(
            ctx,
            shift,
            person,
            ApplicationStatus.declined,
            applied,
            cancelled_at,
            data.CANCELLED_REASON,
        )


def _preparing_requests(
    ctx: _Ctx, shift: Shift, returning: list[Participant], pool: Iterator[Participant]
) -> None:
    """About 15 pending requests (one re-applied after a decline), a few approved and declined."""
    rng = ctx.rng
    opened = clock.now() - timedelta(days=12)
    pending = [*returning, *_take(pool, 12)]
    for index, person in enumerate(pending):
        applied = _between(rng, opened, clock.now() - timedelta(minutes=5))
        _request(
            ctx, shift, person, ApplicationStatus.pending, applied, attempts=2 if index == 3 else 1
        )
    for person in _take(pool, 4):
        applied = _between(rng, opened, clock.now() - timedelta(days=2))
        decided = _between(rng, applied + timedelta(hours=1), clock.now() - timedelta(hours=1))
        _request(ctx, shift, person, ApplicationStatus.approved, applied, decided)
        assert shift.id is not None and person.id is not None
        ctx.session.add(
            Member(
                participant_id=person.id,
                shift_id=shift.id,
                joined_at=shift.started_at,
                created_at=decided,
                updated_at=decided,
            )
        )
    for person in _take(pool, 3):
        applied = _between(rng, opened, clock.now() - timedelta(days=2))
        decided = _between(rng, applied + timedelta(hours=1), clock.now() - timedelta(hours=1))
        _request(
            ctx,
            shift,
            person,
            ApplicationStatus.declined,
            applied,
            decided,
            rng.choice(data.REQUEST_DECLINE_REASONS),
        )
    ctx.session.flush()


# --- reports -------------------------------------------------------------------------------------


def _decision_audit(
    ctx: _Ctx, report: Report, by: Staff, at: datetime, approved: bool, reason: str | None
) -> None:
    after: dict[str, object] = {
        "status": ReportStatus.approved if approved else ReportStatus.declined
    }
    if reason:
        after["reason"] = reason
    action = "report.approve" if approved else "report.decline"
    audit.record(
        ctx.session,
        by,
        action,
        "report",
        report.id,
        before={"status": ReportStatus.reviewing},
        after=after,
    ).at = at


def _finished_reports(ctx: _Ctx, shift: Shift, plan: list[int]) -> None:
    """A full, closed history for the finished shift; without photos, to keep seeding fast."""
    rng = ctx.rng
    reasons = get_settings().decline_reasons
    hour = get_settings().send_new_task_hour
    assert shift.id is not None
    members = ctx.session.exec(select(Member).where(Member.shift_id == shift.id)).all()
    for member in members:
        assert member.id is not None
        diligence = rng.uniform(0.55, 0.95)
        first = (member.joined_at - shift.started_at).days + 1
        for day_number in range(first, len(plan) + 1):
            task_date = shift.started_at + timedelta(days=day_number - 1)
            sent = _at(task_date, hour)
            report = Report(
                member_id=member.id,
                shift_id=shift.id,
                task_id=plan[day_number - 1],
                day_number=day_number,
                task_date=task_date,
                created_at=sent,
                updated_at=sent,
            )
            roll = rng.random()
            if roll < diligence:
                report.status = ReportStatus.approved
            elif roll < diligence + 0.08:
                report.status = ReportStatus.declined
                report.decline_reason = rng.choice(reasons)
            else:
                report.status = ReportStatus.skipped
            if report.status != ReportStatus.skipped:
                report.photo_count = 1
                report.submitted_at = _between(rng, sent, sent + timedelta(hours=14))
                report.decided_at = report.submitted_at + timedelta(minutes=rng.uniform(5, 600))
                report.decided_by_id = ctx.curator().id
                report.updated_at = report.decided_at
            ctx.session.add(report)
    ctx.session.flush()


_REVIEW_CHANCE = {1: 0.7, 2: 0.55, 3: 0.4, 4: 0.3, 5: 0.2, 6: 0.1}


def _pick_status(rng: random.Random, age: int) -> ReportStatus:
    """The status of a report `age` days before the current report day."""
    if age == 0:  # today: most families have not sent the photo yet
        return rng.choices(
            (
                ReportStatus.waiting,
                ReportStatus.reviewing,
                ReportStatus.approved,
                ReportStatus.skipped,
                ReportStatus.declined,
            ),
            weights=(60, 25, 8, 4, 3),
        )[0]
    if rng.random() < _REVIEW_CHANCE.get(age, 0.0):  # the queue holds the last few days
        return ReportStatus.reviewing
    return rng.choices(
        (ReportStatus.approved, ReportStatus.declined, ReportStatus.skipped), weights=(72, 12, 16)
    )[0]


def _attempts(rng: random.Random, status: ReportStatus, age: int) -> int:
    if status == ReportStatus.approved:
        return rng.choices((1, 2), weights=(85, 15))[0]
    if status == ReportStatus.declined:
        # A report declined today still has an attempt left; an old one may have used them all.
        return 1 if age == 0 else rng.choices((1, 2, 3), weights=(60, 25, 15))[0]
    if status == ReportStatus.reviewing:
        return rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
    return 0


def _current_day(shift: Shift) -> int:
    """The shift day whose photos are accepted now (before the task hour it is still yesterday)."""
    number = (clock.local_today() - shift.started_at).days + 1
    if clock.local_now().hour < get_settings().send_new_task_hour:
        number -= 1
    return number


@dataclass
class _History:
    """What the running shift's reports still need after their ids exist: photos and audit events."""

    jobs: list[_PhotoJob] = field(default_factory=list)
    # (report, who, when, approved?, reason) — every decision, including those of earlier attempts.
    decisions: list[tuple[Report, Staff, datetime, bool, str | None]] = field(default_factory=list)


def _current_reports(ctx: _Ctx, shift: Shift, plan: list[int], members: list[Member]) -> None:
    """The running shift's reports, day 1 to the current day, with a generated photo per attempt."""
    rng = ctx.rng
    current = _current_day(shift)
    # One member skipped five days in a row and was excluded (the rule of product.md §2).
    excluded = members[len(members) // 2] if len(members) >= 8 and current >= 12 else None
    # One member is ill: a pause from three days ago to two days ahead (docs/schedule.md, Pauses).
    resting = members[len(members) // 3] if len(members) >= 8 and current >= 12 else None
    history = _History()
    for member in members:
        first = (member.joined_at - shift.started_at).days + 1
        last = current
        skipped_run: set[int] = set()
        paused_days: set[int] = set()
        if member is resting:
            paused_days = _seed_pause(ctx, shift, member, current - 3, current + 2)
        if member is excluded:
            start = rng.randint(5, current - 6)
            skipped_run = set(range(start, start + 5))
            last = start + 4
            member.status = MemberStatus.excluded
            # At the deadline of the fifth skipped day, when the daily job runs.
            member.excluded_at = _at(
                shift.started_at + timedelta(days=last), get_settings().send_new_task_hour, 5
            )
            member.updated_at = member.excluded_at
        for day_number in range(first, last + 1):
            forced = ReportStatus.skipped if day_number in skipped_run else None
            if day_number in paused_days:
                forced = ReportStatus.paused
            _current_report(
                ctx,
                shift,
                plan[day_number - 1],
                member,
                day_number,
                current - day_number,
                forced,
                history,
            )
    ctx.session.flush()
    for report, by, at, approved, reason in history.decisions:
        _decision_audit(ctx, report, by, at, approved, reason)
    _mark_duplicates(rng, history.jobs)
    _store_photos(ctx, history.jobs)


def _seed_pause(ctx: _Ctx, shift: Shift, member: Member, first: int, last: int) -> set[int]:
    """A pause of `member` over shift days `first`..`last`, set the evening before by the admin."""
    assert member.id is not None
    first_day = shift.started_at + timedelta(days=first - 1)
    ctx.session.add(
        MemberPause(
            member_id=member.id,
            first_day=first_day,
            last_day=shift.started_at + timedelta(days=last - 1),
            reason="Болеет, мама написала в чат",
            created_by_id=ctx.admin.id,
            created_at=_at(first_day - timedelta(days=1), 19, 30),
        )
    )
    return set(range(first, last + 1))


def _current_report(
    ctx: _Ctx,
    shift: Shift,
    task_id: int,
    member: Member,
    day_number: int,
    age: int,
    forced: ReportStatus | None,
    history: _History,
) -> None:
    """One report of the running shift, with the times of its attempts and decisions."""
    rng = ctx.rng
    settings = get_settings()
    assert shift.id is not None and member.id is not None
    task_date = shift.started_at + timedelta(days=day_number - 1)
    sent = _at(task_date, settings.send_new_task_hour)
    deadline = min(sent + timedelta(days=1), clock.now())
    status = forced or _pick_status(rng, age)
    attempts = _attempts(rng, status, age)
    report = Report(
        member_id=member.id,
        shift_id=shift.id,
        task_id=task_id,
        day_number=day_number,
        task_date=task_date,
        status=status,
        photo_count=attempts,
        created_at=sent,
        updated_at=sent,
    )
    ctx.session.add(report)
    if not attempts:
        return
    # Attempt k is sent, declined, attempt k+1 is sent...: 2k-1 ordered moments within the day.
    moments = sorted(_between(rng, sent, deadline) for _ in range(2 * attempts - 1))
    for attempt, moment in enumerate(moments[0::2], start=1):
        history.jobs.append(
            _PhotoJob(
                report,
                attempt,
                moment,
                rng.getrandbits(31),
                ctx.scenes[task_id],
                f"День {day_number}",
            )
        )
    for moment in moments[1::2]:
        history.decisions.append(
            (report, ctx.curator(), moment, False, rng.choice(settings.decline_reasons))
        )
    report.submitted_at = report.updated_at = moments[-1]
    if status in (ReportStatus.approved, ReportStatus.declined):
        decided = _between(
            rng,
            moments[-1] + timedelta(minutes=2),
            min(moments[-1] + timedelta(hours=20), clock.now()),
        )
        by = ctx.curator()
        reason = rng.choice(settings.decline_reasons) if status == ReportStatus.declined else None
        report.decided_at = report.updated_at = decided
        report.decided_by_id = by.id
        report.decline_reason = reason
        history.decisions.append((report, by, decided, status == ReportStatus.approved, reason))


def _mark_duplicates(rng: random.Random, jobs: list[_PhotoJob]) -> None:
    """Make a few photos under review exact or near copies of earlier photos, for the flags.

    An exact copy re-draws the same picture, which gives the same JPEG bytes (the same SHA-256);
    a near copy is the same scene re-saved slightly cropped and at another quality.
    """
    latest = [
        job
        for job in jobs
        if job.report.status == ReportStatus.reviewing and job.attempt == job.report.photo_count
    ]
    if len(latest) < 4:
        return
    targets = rng.sample(latest, max(2, len(latest) // 16) + max(2, len(latest) // 12))
    exact_count = max(2, len(latest) // 16)
    chosen = {id(job) for job in targets}
    for index, target in enumerate(targets):
        earlier = [job for job in jobs if id(job) not in chosen and job.at < target.at]
        if not earlier:
            continue
        own = [job for job in earlier if job.report.member_id == target.report.member_id]
        # The first copy is the same child re-sending an old photo; the others are someone else's.
        source = rng.choice(own) if index == 0 and own else rng.choice(earlier)
        target.seed, target.scene, target.caption = source.seed, source.scene, source.caption
        target.near = index >= exact_count


def _draw_and_store(job: _PhotoJob) -> StoredImage:
    make = pictures.near_duplicate if job.near else pictures.report_photo
    return store_image(make(job.seed, job.scene, job.caption), "reports")


def _store_photos(ctx: _Ctx, jobs: list[_PhotoJob]) -> None:
    """Draw, store and record every photo; drawing and hashing run on all cores (Pillow and
    NumPy release the GIL for the heavy parts)."""
    total = len(jobs)
    ctx.progress(f"Фотографии отчётов: {total}…")
    step = max(1, total // 10)
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (job, stored) in enumerate(
            zip(jobs, pool.map(_draw_and_store, jobs), strict=True), start=1
        ):
            assert job.report.id is not None
            ctx.session.add(
                photo_row(
                    job.report.id,
                    job.attempt,
                    stored,
                    telegram_file_unique_id="AQAD" + secrets.token_urlsafe(12),
                    created_at=job.at,
                )
            )
            if done % step == 0 or done == total:
                ctx.progress(f"  фото {done} из {total}")
    ctx.session.flush()
