"""Fill the database with demo data: a made-up history, replayed through the domain functions.

What the demo holds (product.md §2): the 31 everyday tasks with pictures (and one archived task);
staff — an administrator and an expert with fixed demo passwords, a curator who has left (blocked)
and an open invitation; fifty participants, every one registered through the form; four
shifts: №1, a two-week pilot that finished more than PHOTO_RETENTION_DAYS ago (results and reports
stay, its photos were deleted by the retention job), №2 cancelled before it started, №3 running on
about day 20 of 92 with reports in every status, a queue of photos with exact and near duplicates
among them and one member excluded after five skipped days, and №4 preparing with pending (one
re-applied after a decline), approved and declined applications.

How. `_Script` first makes the history up — who registered when, what each child sent on each day,
when and how the curators decided — as timed events drawn from seeded random numbers (the same
every run, which keeps the picture cache warm). `_Replay` then runs the events in time order with
the clock frozen at each event's moment (`clock.set_now`), each through the function the real
adapter calls: `accounts.create_staff`, `staff_admin.set_blocked` and `invite`, `tasks.create_task`
and `set_archived`, `shifts.create_shift`, `set_final_message` and `cancel_shift`,
`registration.submit` (the form as a family fills it in), `participants.set_test`,
`applications.approve`/`decline`, `schedule.daily` at the task hour (it opens each day's reports,
skips the overdue ones and excludes a member after five skipped days — nobody tells it to),
`schedule.reminder`, `photos.situation` + `photos.receive` (the "download" returns the generated
picture), `reports.ask_skip` + `skip`, `moderation.decide`, `schedule.transitions` and
`retention.purge_photos`. Every answer is checked against what the script expected, so when a rule
changes the seeding fails loudly instead of drifting from the domain; timestamps, audit events and
outbox rows are the domain's own.

Written directly, because no domain function does it:
- a few participants are marked as having blocked the bot (the bot adapter does that when Telegram
  reports it);
- at the end, the outbox rows whose time has passed are marked sent, in one UPDATE (there was no bot
  to send them, and the health page should not show a year-old backlog);
- Python's global `random` is seeded around `shifts.create_shift`, which shuffles the plan with it:
  the same plan every run keeps the photos' scenes, and so the picture cache, the same.

The photos of the running shift are drawn ahead in other processes and cached between runs
(`seeds.painter`); the pilot's photos are tiny stand-ins, since the retention job deletes them.

The session belongs to the caller: this module flushes but never commits. Nothing is added when the
database already has data, so re-running is harmless and a demo password never lands in a real
database.
"""

from __future__ import annotations

import random
import secrets
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from app import (
    accounts,
    applications,
    clock,
    consent,
    days,
    members,
    moderation,
    participants,
    pauses,
    photos,
    registration,
    reports,
    retention,
    schedule,
    shifts,
    staff_admin,
    storage,
    tasks,
)
from app.db import is_postgres
from app.models import (
    Application,
    Member,
    OutboxStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    ShiftDay,
    Staff,
    StaffRole,
    Task,
)
from app.settings import get_settings
from seeds import data, pictures
from seeds.painter import Painter, Picture

Progress = Callable[[str], None]

SHIFT_LENGTH = 92  # days: the running and the preparing shift, about three months
PILOT_LENGTH = 14  # days: the finished shift, a two-week pilot (it keeps seeding fast)
PURGE_MAX_DAYS = 730  # with a longer PHOTO_RETENTION_DAYS the pilot keeps its stand-in photos

_ADMIN, _EXPERT, _CURATOR = data.ADMIN["email"], data.EXPERT["email"], data.CURATOR["email"]
_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


class Diverged(RuntimeError):
    """A domain function answered differently from what the demo's history expected."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise Diverged(f"the demo history no longer fits the domain rules: {what}")


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
    pictures_drawn: int = 0
    pictures_cached: int = 0
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


# --- entry points --------------------------------------------------------------------------------


def fill(
    session: Session,
    *,
    progress: Progress = print,
    rng_seed: int = 7,
    participants: int = 50,
    members: int = 10,
    day: int = 20,
    pilot_days: int = PILOT_LENGTH,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> SeedSummary:
    """Fill an empty database with demo data; on a non-empty one, add nothing.

    `participants`, `members` (of the running shift), `day` (its current day) and `pilot_days` (the
    finished shift's length) exist so the tests can seed a smaller world; the defaults make the
    demo. `cache_dir` keeps drawn pictures between runs; `workers` processes draw them ahead (0:
    draw in this process, None: one per core).
    """
    started = time.monotonic()
    if day < 12:
        raise ValueError(f"day must be at least 12 (an exclusion needs room), got {day}")
    if not 7 <= pilot_days <= 120:
        raise ValueError(f"pilot_days must be between 7 and 120, got {pilot_days}")
    if members < 6:
        raise ValueError(f"members must be at least 6, got {members}")
    needed = _people_needed(members)
    if participants < needed:
        raise ValueError(f"participants must be at least {needed} for {members} members")
    if _has_data(session):
        progress("В базе уже есть данные — тестовые данные не добавлены.")
        summary = _summary(session)
        summary.already_seeded = True
        return summary

    painter = Painter(cache_dir, workers)
    try:
        replay = _Replay(session, painter, progress)
        script = _Script(replay, rng_seed, clock.now())
        script.build(participants, members, day, pilot_days)
        replay.run(script.events)
    finally:
        painter.close()
    # There was no bot to send what the history queued: what was due is history, not a backlog.
    session.execute(
        sa.update(OutgoingMessage)
        .where(
            col(OutgoingMessage.status) == OutboxStatus.pending,
            col(OutgoingMessage.send_after) <= clock.now(),
        )
        .values(status=OutboxStatus.sent, sent_at=col(OutgoingMessage.send_after), attempts=1)
    )
    session.flush()
    summary = _summary(session)
    summary.pictures_drawn, summary.pictures_cached = painter.drawn, painter.cached
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


# --- people --------------------------------------------------------------------------------------


@dataclass
class _Person:
    """A child (or a curator's own test account) as the registration form knows them."""

    index: int
    name: str
    surname: str
    born: date
    city: str
    phone: str  # as the family typed it; the domain normalises it
    telegram_id: int
    is_test: bool = False

    def form(self) -> dict[str, str]:
        # Mostly a parent fills the form in; some teenagers do it themselves.
        grown_up = (clock.local_today() - self.born).days >= 14 * 365
        return {
            "name": self.name,
            "surname": self.surname,
            "date_of_birth": self.born.strftime("%d.%m.%Y"),
            "city": self.city,
            "phone": self.phone,
            "consent_by": "participant" if grown_up and self.index % 3 == 0 else "parent",
            "consent": "on",
            "consent_version": consent.CURRENT_VERSION,
        }


# Pilot members, its declined, cancelled-shift applicants, running-shift newcomers and declined,
# preparing-shift applicants; see _Script.build.
def _people_needed(members: int) -> int:
    pilot = max(4, members // 2)
    returning = members // 4
    return 2 + pilot + 3 + 6 + (members - 2 - returning) + 3 + 19


def _typed_phone(rng: random.Random, digits: str) -> str:
    """The phone as families type it: with +7 or 8, with or without spaces and dashes."""
    d = digits
    return rng.choice(
        (
            f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}",
            f"8{d}",
            f"+7{d}",
            f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        )
    )


def _people(rng: random.Random, count: int, today: date) -> list[_Person]:
    """`count` people; the first two are the administrator's and the expert's test accounts."""
    cities = [name for name, _ in data.CITIES]
    weights = [weight for _, weight in data.CITIES]
    phones: set[str] = set()
    telegram_ids: set[int] = set()
    people = []
    for index in range(count):
        if index < 2:
            info = data.ADMIN if index == 0 else data.EXPERT
            name, surname = info["name"], info["surname"]
            born = today - timedelta(days=rng.randint(30 * 365, 45 * 365))
        else:
            surname = rng.choice(data.SURNAMES)
            if rng.random() < 0.5:
                name = rng.choice(data.BOY_NAMES)
            else:
                name, surname = rng.choice(data.GIRL_NAMES), data.feminine_surname(surname)
            # Children and young people: mostly 7–17, some up to 25, none younger than 6 (they
            # were at least 3 when the pilot shift took applications, over a year ago).
            born = today - timedelta(days=int(rng.triangular(6 * 365, 25 * 365, 11 * 365)))
        while True:
            digits = f"9{rng.randint(0, 99):02d}{rng.randint(0, 9_999_999):07d}"
            normal = registration.normalise_phone("+7" + digits)
            if normal is not None and normal not in phones:
                phones.add(normal)
                break
        while True:
            telegram_id = rng.randint(100_000_000, 7_999_999_999)
            if telegram_id not in telegram_ids:
                telegram_ids.add(telegram_id)
                break
        people.append(
            _Person(
                index,
                name,
                surname,
                born,
                rng.choices(cities, weights)[0],
                _typed_phone(rng, digits),
                telegram_id,
                is_test=index < 2,
            )
        )
    return people


# --- the replay ----------------------------------------------------------------------------------


@dataclass(order=True)
class _Event:
    at: datetime
    rank: int  # at the same moment the daily job goes first
    seq: int
    run: Callable[[], Any] = field(compare=False)


@dataclass(eq=False)
class _Shot:
    """One photo a family sends for day `day`: what is drawn, and the Telegram file ids."""

    day: int
    seed: int
    at: datetime
    person: int
    unique_id: str
    file_id: str
    final: bool = False  # the report's last photo, still in the queue at the end
    copy_of: _Shot | None = None  # the very same picture as another child's photo
    near_of: _Shot | None = None  # another photo's scene, re-saved (a near duplicate)


class _Replay:
    """Runs the script's events through the domain functions and keeps the ids they create."""

    def __init__(self, session: Session, painter: Painter, progress: Progress) -> None:
        self.session = session
        self.painter = painter
        self.say = progress
        self.staff: dict[str, Staff] = {}  # by e-mail; used as actors, only their ids matter
        self.participant_ids: dict[int, int] = {}  # person index → participant id
        self.shift_ids: dict[int, int] = {}  # shift number → id
        self.report_ids: dict[tuple[int, int, int], int] = {}  # (shift, person, day) → id
        self.scenes: dict[int, str] = {}  # task id → where its photos are taken
        self.plans: dict[int, dict[int, int]] = {}  # shift number → day → task id
        self.shots: dict[int, list[_Shot]] = {}  # shift number → its photos, drawn ahead
        self.stand_ins: set[int] = set()  # shift numbers whose photos are tiny stand-ins
        self.rng_seed = 0

    def run(self, events: list[_Event]) -> None:
        """Every event at its moment, in time order; the clock is given back as it was (frozen by
        a test, or running)."""
        frozen = getattr(clock, "_frozen", None)  # app.clock has no getter for it
        try:
            for event in sorted(events):
                clock.set_now(event.at)
                event.run()
                # One long transaction, but each event sees the database as a fresh request
                # would: nothing stale in the identity map (the domain's guarded UPDATEs bypass it).
                self.session.flush()
                self.session.expunge_all()
        finally:
            clock.set_now(frozen)

    def _participant(self, person: _Person) -> Participant:
        found = participants.by_telegram(self.session, person.telegram_id)
        _expect(found is not None, f"participant {person.index} exists")
        assert found is not None
        return found

    def picture(self, number: int, shot: _Shot, scenes: dict[int, str] | None = None) -> Picture:
        """What `shot` shows: the scene of its day's task (from the shift's plan, or `scenes`: day →
        scene), a copy of another photo, or a near copy of one."""
        if shot.copy_of is not None:
            return self.picture(number, shot.copy_of, scenes)
        if shot.near_of is not None:
            source = self.picture(number, shot.near_of, scenes)
            return Picture("near", source.seed, source.scene, source.caption, size=source.size)
        day_scenes = scenes or {shot.day: self.scenes[self.plans[number][shot.day]]}
        scene = day_scenes[shot.day]
        # Photos still in the queue at the end are shown full size; older ones mostly as
        # thumbnails, so they are drawn at thumbnail size, which is cheaper to store.
        size = pictures.PHOTO_SIZE if shot.final else pictures.SMALL_PHOTO_SIZE
        return Picture("photo", shot.seed, scene, f"День {shot.day}", size=size)

    def plan_seed(self, number: int) -> str:
        return f"lomaya-demo:{self.rng_seed}:plan:{number}"

    def order_pictures(self, number: int, length: int) -> None:
        """Start drawing shift `number`'s photos now, long before the replay creates the shift.

        The scenes come from the plan the shift will get, foreseen with the domain's own
        `plan_sequence` and the same seed; `random.shuffle` moves positions whatever the ids are, so
        the task at each position of the catalogue (in creation order, as `active_task_ids` lists
        it) is known. Should the domain plan differently one day, the photos are still right —
        `photo` asks for the real plan's pictures — only drawn later, when needed.
        """
        state = random.getstate()
        random.seed(self.plan_seed(number))
        try:
            positions = shifts.plan_sequence(list(range(len(data.TASKS))), length)
        finally:
            random.setstate(state)
        scenes = {day: data.TASKS[i][1] for day, i in enumerate(positions, start=1)}
        shots = sorted(self.shots.get(number, []), key=lambda shot: shot.at)
        self.painter.order(self.picture(number, shot, scenes) for shot in shots)

    # staff and tasks

    def add_staff(self, info: dict[str, Any], role: StaffRole, password: str) -> None:
        staff = accounts.create_staff(
            self.session,
            email=info["email"],
            password=password,
            name=info["name"],
            surname=info["surname"],
            role=role,
        )
        self.staff[staff.email] = staff

    def block_staff(self, by: str, email: str) -> None:
        target = self.session.get(Staff, self.staff[email].id)
        assert target is not None
        staff_admin.set_blocked(self.session, self.staff[by], target, True)

    def invite(self, by: str, info: dict[str, str]) -> None:
        staff_admin.invite(
            self.session, self.staff[by], info["email"], info["name"], info["surname"], "expert"
        )

    def add_task(self, by: str, index: int, title: str, scene: str, icon: str) -> None:
        image = self.painter.get(Picture("task", index, caption=title, icon=icon))
        task = tasks.create_task(self.session, self.staff[by], title, image)
        assert task.id is not None
        self.scenes[task.id] = scene

    def archive_task(self, by: str, title: str) -> None:
        task = self.session.exec(select(Task).where(col(Task.title) == title)).one()
        tasks.set_archived(self.session, self.staff[by], task, True)

    # shifts and applications

    def create_shift(self, by: str, number: int, start: date, end: date) -> None:
        # The domain shuffles the plan with the global RNG: seeded here, the plan (and so every
        # photo's scene) is the same on every run, and the picture cache keeps hitting.
        state = random.getstate()
        random.seed(self.plan_seed(number))
        try:
            shift = shifts.create_shift(
                self.session, self.staff[by], data.SHIFT_TITLES[number - 1], start, end
            )
        finally:
            random.setstate(state)
        _expect(shift.number == number, f"shift №{number} gets number {number}")
        assert shift.id is not None
        self.shift_ids[number] = shift.id
        shifts.set_final_message(self.session, self.staff[by], shift, data.FINAL_MESSAGE)
        rows = self.session.execute(
            sa.select(col(ShiftDay.day_number), col(ShiftDay.task_id)).where(
                col(ShiftDay.shift_id) == shift.id
            )
        )
        self.plans[number] = {day: task_id for day, task_id in rows}
        if number not in self.stand_ins:  # (already ordered if the plan was foreseen right)
            shots = sorted(self.shots.get(number, []), key=lambda shot: shot.at)
            self.painter.order(self.picture(number, shot) for shot in shots)

    def cancel_shift(self, by: str, number: int) -> None:
        shift = self.session.get(Shift, self.shift_ids[number])
        assert shift is not None
        shifts.cancel_shift(self.session, self.staff[by], shift)

    def submit(self, person: _Person) -> None:
        outcome = registration.submit(self.session, person.telegram_id, person.form())
        _expect(outcome.ok, f"registration of person {person.index}: {outcome.errors or outcome}")
        if person.index not in self.participant_ids:
            self.participant_ids[person.index] = self._participant(person).id or 0

    def mark_test(self, by: str, person: _Person) -> None:
        participants.set_test(self.session, self.staff[by], self._participant(person), True)

    def block_bot(self, person: _Person) -> None:
        # Written directly: the bot adapter does this when Telegram says the family blocked it.
        participant = self._participant(person)
        participant.is_bot_blocked = True
        participant.updated_at = clock.now()
        self.session.add(participant)

    def pause(self, by: str, person: _Person, number: int, first: date, last: date) -> None:
        member_id = self.session.execute(
            sa.select(col(Member.id)).where(
                col(Member.participant_id) == self.participant_ids[person.index],
                col(Member.shift_id) == self.shift_ids[number],
            )
        ).scalar_one()
        member = self.session.get(Member, member_id)
        assert member is not None
        pauses.create(
            self.session,
            self.staff[by],
            member,
            first.isoformat(),
            last.isoformat(),
            "Болеет, мама предупредила куратора",
        )

    def decide_application(self, by: str, person: _Person, number: int, reason: str | None) -> None:
        application_id = self.session.execute(
            sa.select(col(Application.id)).where(
                col(Application.participant_id) == self.participant_ids[person.index],
                col(Application.shift_id) == self.shift_ids[number],
            )
        ).scalar_one()
        actor = self.staff[by]
        if reason is None:
            outcome = applications.approve(self.session, application_id, actor)
        else:
            outcome = applications.decline(self.session, application_id, actor, reason)
        _expect(outcome.won, f"decision on application {application_id}")

    # the schedule

    def daily(self) -> None:
        result = schedule.daily(self.session, clock.now())
        _expect(bool(result.get("ran")), f"the daily job runs: {result}")

    def reminder(self) -> None:
        result = schedule.reminder(self.session, clock.now())
        _expect(bool(result.get("ran")), f"the reminder runs: {result}")

    def transitions(self, number: int) -> None:
        result = schedule.transitions(self.session, clock.now())
        finished = [item["shift_id"] for item in result["finished"]]
        _expect(finished == [self.shift_ids[number]], f"shift №{number} finishes: {result}")

    def purge(self) -> None:
        """The retention job of that day, as the scheduler runs it."""
        now = clock.now()
        day = days.report_day(now)
        if schedule.claim(self.session, "retention", day, now):
            purged = retention.purge_photos(self.session, day)
            _expect(purged > 0, "the pilot's photos are past retention")
            # Their objects are queued for deletion (app.media); `seeds.run_seed` and the demo
            # run the queue once the history is committed.

    # reports

    def photo(self, number: int, person: _Person, shot: _Shot) -> None:
        if number in self.stand_ins:
            image = pictures.stand_in_photo(shot.seed)
        else:
            image = self.painter.get(self.picture(number, shot))
        found = photos.situation(self.session, person.telegram_id, shot.unique_id)
        incoming = photos.Incoming(shot.file_id, shot.unique_id, len(image))
        outcome = photos.receive(self.session, found, incoming, lambda _incoming: image)
        _expect(
            outcome.kind == "photo_received",
            f"photo of person {person.index}, day {shot.day}: {outcome.kind}",
        )
        assert outcome.report_id is not None
        self.report_ids[(number, person.index, shot.day)] = outcome.report_id

    def decide_report(
        self, by: str, number: int, person: _Person, day: int, reason: str | None
    ) -> None:
        report_id = self.report_ids[(number, person.index, day)]
        outcome = moderation.decide(self.session, report_id, self.staff[by], reason is None, reason)
        _expect(outcome.won, f"decision on report {report_id}")

    def skip(self, person: _Person) -> None:
        found = members.current(self.session, self.participant_ids[person.index])
        _expect(found is not None, f"person {person.index} is a member")
        assert found is not None
        member = found[0]
        answer, report = reports.ask_skip(self.session, member)
        _expect(answer == "skip_confirm" and report is not None, f"skip offered: {answer}")
        assert report is not None
        done = reports.skip(self.session, member, report.id, True)
        _expect(done == "skip_done", f"skip of person {person.index}: {done}")


# --- the script ----------------------------------------------------------------------------------


_ID_CHARS = string.ascii_letters + string.digits + "-_"


def _file_ids(rng: random.Random) -> tuple[str, str]:
    """A photo's Telegram file_unique_id and file_id (made-up, in Telegram's alphabet)."""
    return "AQAD" + "".join(rng.choices(_ID_CHARS, k=12)), "AgACAgIAAxkBAAI" + "".join(
        rng.choices(_ID_CHARS, k=40)
    )


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC moment of a wall-clock time in the project's time zone."""
    return datetime.combine(day, dtime(hour, minute), tzinfo=get_settings().tz).astimezone(UTC)


_REVIEW_CHANCE = {1: 0.7, 2: 0.55, 3: 0.4, 4: 0.3, 5: 0.2, 6: 0.1}


def _running_status(rng: random.Random, age: int) -> ReportStatus:
    """The status of a running-shift report `age` days before the open report day."""
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


class _Script:
    """The made-up history: timed events that call `_Replay`'s methods."""

    def __init__(self, replay: _Replay, rng_seed: int, now: datetime) -> None:
        self.replay = replay
        replay.rng_seed = rng_seed
        self.seed = rng_seed
        self.rng = random.Random(rng_seed)
        self.now = now
        self.settings = get_settings()
        self.events: list[_Event] = []
        self.curator_left = now  # when the third curator was blocked (set by build)

    def at(self, moment: datetime, action: Callable[..., Any], *args: Any, rank: int = 5) -> None:
        _expect(moment <= self.now, f"{action.__name__} happens before now")
        self.events.append(_Event(moment, rank, len(self.events), partial(action, *args)))

    def rng_for(self, *parts: object) -> random.Random:
        """A random stream of its own for one thing (a report, a child): stable across runs,
        whatever else the history holds."""
        return random.Random(":".join(map(str, (self.seed, *parts))))

    def curator(self, rng: random.Random, moment: datetime) -> str:
        """Who decided at `moment`: mostly the expert, sometimes the administrator, and the other
        curator while she still worked here."""
        if moment < self.curator_left:
            return rng.choices([_EXPERT, _ADMIN, _CURATOR], weights=[5, 2, 3])[0]
        return rng.choices([_EXPERT, _ADMIN], weights=[5, 2])[0]

    # the whole history

    def build(self, participants: int, members: int, day: int, pilot_days: int) -> None:
        r = self.replay
        settings = self.settings
        today = self.now.astimezone(settings.tz).date()
        people = _people(self.rng, participants, today)
        pool = iter(people[2:])

        # When: the running shift is on `day` today; the pilot finished long enough ago for the
        # retention job to have deleted its photos; the cancelled one was planned in between.
        start3 = today - timedelta(days=day - 1)
        retention_days = settings.photo_retention_days
        finish1 = start3 - timedelta(days=160)
        if retention_days <= PURGE_MAX_DAYS:
            finish1 = min(finish1, today - timedelta(days=retention_days + 21))
        start1 = finish1 - timedelta(days=pilot_days - 1)
        founded = _at(start1 - timedelta(days=75), 10)

        r.say("Сотрудники и задания…")
        self.at(founded, r.add_staff, data.ADMIN, StaffRole.administrator, data.ADMIN["password"])
        self.at(
            founded + _HOUR, r.add_staff, data.EXPERT, StaffRole.expert, data.EXPERT["password"]
        )
        # Nobody knows her password: the account is there to be looked at, not used.
        password = secrets.token_urlsafe(24)
        self.at(founded + _DAY, r.add_staff, data.CURATOR, StaffRole.expert, password)
        self.curator_left = _at(start3 - timedelta(days=20), 15)
        self.at(self.curator_left, r.block_staff, _ADMIN, _CURATOR)
        self.at(self.now - 3 * _HOUR, r.invite, _ADMIN, data.INVITED)
        task_moment = founded + 2 * _DAY
        archived, archived_icon = data.ARCHIVED_TASK
        catalogue = [*data.TASKS, (archived, "room", archived_icon)]
        r.painter.order(
            Picture("task", index, caption=title, icon=icon)
            for index, (title, _scene, icon) in enumerate(catalogue)
        )
        for index, (title, scene, icon) in enumerate(catalogue):
            self.at(
                task_moment + index * 2 * _MINUTE, r.add_task, _ADMIN, index, title, scene, icon
            )
        # Archived before any shift is planned: the catalogue shows it, no plan uses it.
        self.at(task_moment + 20 * _DAY, r.archive_task, _ADMIN, archived)

        pilot_members = self._pilot(pool, start1, finish1, members)
        self._cancelled(pool, finish1, pilot_members, participants - _people_needed(members))
        running = self._running(people, pool, pilot_members, start3, members)
        self._preparing(pool, running, start3)

    # the shifts

    def _applications(
        self,
        number: int,
        people: list[_Person],
        opened: datetime,
        closed: datetime,
        decide_by: datetime | None,
        reason: str | None = None,
    ) -> None:
        """`people` apply between `opened` and `closed`; with `decide_by`, a curator approves them
        (or declines with `reason`) a few hours later."""
        r = self.replay
        for person in people:
            rng = self.rng_for("apply", number, person.index)
            applied = _between(rng, opened, closed)
            self.at(applied, r.submit, person)
            if decide_by is not None:
                decided = _between(rng, applied + _HOUR, min(applied + 30 * _HOUR, decide_by))
                by = self.curator(rng, decided)
                self.at(decided, r.decide_application, by, person, number, reason)

    def _pilot(
        self, pool: Iterator[_Person], start: date, finish: date, members: int
    ) -> list[_Person]:
        """Shift №1, a two-week pilot long finished: its applications and every day's reports."""
        r = self.replay
        r.stand_ins.add(1)
        created = _at(start - timedelta(days=40), 11)
        self.at(created - _MINUTE, r.say, "Смена №1: прошлогодняя пробная…")
        self.at(created, r.create_shift, _ADMIN, 1, start, finish)
        chosen = [next(pool) for _ in range(max(4, members // 2))]
        first_task = _at(start, self.settings.send_new_task_hour)
        self._applications(1, chosen, created + _DAY, first_task - 3 * _DAY, first_task - _HOUR)
        self._applications(
            1,
            [next(pool) for _ in range(3)],
            created + _DAY,
            first_task - 3 * _DAY,
            first_task - _HOUR,
            applications.DECLINE_REASONS[0],
        )
        self._days(start, finish)
        for person in chosen:
            diligence = self.rng_for("diligence", person.index).uniform(0.55, 0.95)
            self._member_story(1, person, 1, (finish - start).days + 1, start, diligence=diligence)
        # The day after the last one the daily job makes it `finishing`; once the queue is empty
        # the transitions job finishes it and sends the final messages.
        self.at(_at(finish + timedelta(days=2), 12), r.transitions, 1)
        retention_days = self.settings.photo_retention_days
        if retention_days <= PURGE_MAX_DAYS:
            self.at(_at(finish + timedelta(days=retention_days + 1), 8, 5), r.purge)
        # One family of the pilot blocked the bot afterwards.
        self.at(_at(finish + timedelta(days=5), 19), r.block_bot, chosen[-1])
        return chosen

    def _cancelled(
        self,
        pool: Iterator[_Person],
        finish1: date,
        pilot_members: list[_Person],
        surplus: int,
    ) -> None:
        """Shift №2, planned after the pilot and cancelled before it started."""
        r = self.replay
        start = finish1 + timedelta(days=95)
        created = _at(finish1 + timedelta(days=50), 11)
        cancelled = _at(start - timedelta(days=8), 15)
        self.at(created - _MINUTE, r.say, "Смена №2: отменённая…")
        self.at(created, r.create_shift, _ADMIN, 2, start, start + timedelta(days=30))
        newcomers = [next(pool) for _ in range(6 + surplus)]
        # Half of the pilot's families wanted to come again (the one who blocked the bot did not).
        applicants = pilot_members[: len(pilot_members) // 2] + newcomers
        self._applications(2, applicants, created + _DAY, cancelled - _DAY, None)
        self.at(cancelled, r.cancel_shift, _ADMIN, 2)
        for n, person in enumerate(newcomers[-2:]):
            self.at(cancelled + (n + 2) * _DAY, r.block_bot, person)

    def _running(
        self,
        people: list[_Person],
        pool: Iterator[_Person],
        pilot_members: list[_Person],
        start: date,
        members: int,
    ) -> list[_Person]:
        """Shift №3, running: applications before it started, every day's reports until now."""
        r = self.replay
        settings = self.settings
        created = _at(start - timedelta(days=40), 11)
        self.at(created - _MINUTE, r.say, "Смена №3: идёт, отчёты и фото…")
        self.at(created, r.create_shift, _ADMIN, 3, start, start + timedelta(days=SHIFT_LENGTH - 1))
        testers = people[:2]  # the curators try the bot themselves
        returning = pilot_members[: members // 4]
        newcomers = [next(pool) for _ in range(members - len(testers) - len(returning))]
        first_task = _at(start, settings.send_new_task_hour)
        opened, closed = created + _DAY, first_task - 3 * _DAY
        on_time, late, reapplied = newcomers[:-2], newcomers[-1], newcomers[-2]
        self._applications(3, [*returning, *on_time], opened, closed, first_task - _HOUR)
        for n, person in enumerate(testers):
            applied = opened + (n + 1) * 3 * _HOUR
            self.at(applied, r.submit, person)
            self.at(applied + 10 * _MINUTE, r.mark_test, _ADMIN, person)
            self.at(applied + _HOUR, r.decide_application, _ADMIN, person, 3, None)
        # Declined (the phone did not answer), applied again, approved.
        rng = self.rng_for("reapplied", 3)
        applied = _between(rng, opened, closed - 5 * _DAY)
        declined = applied + timedelta(hours=rng.uniform(1, 20))
        self.at(applied, r.submit, reapplied)
        self.at(
            declined,
            r.decide_application,
            _EXPERT,
            reapplied,
            3,
            applications.DECLINE_REASONS[2],
        )
        again = declined + timedelta(days=rng.uniform(1, 3))
        self.at(again, r.submit, reapplied)
        self.at(again + 2 * _HOUR, r.decide_application, _EXPERT, reapplied, 3, None)
        # Applied on the first day, while joining was still open: the reports start on day 2.
        applied = _between(rng, first_task + 1 * _HOUR, first_task + 7 * _HOUR)
        self.at(applied, r.submit, late)
        self.at(applied + 2 * _HOUR, r.decide_application, _EXPERT, late, 3, None)
        self._applications(
            3,
            [next(pool) for _ in range(3)],
            opened,
            closed,
            first_task - _HOUR,
            applications.DECLINE_REASONS[1],
        )

        open_day = days.report_day(self.now)
        open_number = (open_day - start).days + 1
        self._days(start, open_day)
        everyone = [*testers, *returning, *newcomers]
        excluded = on_time[len(on_time) // 2]
        others = [p for p in (*returning, *on_time) if p is not excluded]
        ill = others[0] if open_number >= 12 and others else None
        for person in everyone:
            first = 2 if person is late else 1
            if person is excluded:
                # Five days in a row without a photo or a word: the daily job excludes them.
                silent = self.rng_for("excluded").randint(5, open_number - 6)
                self._member_story(3, person, first, silent - 1, start, open_number=open_number)
            elif person is ill:
                # Ill for three days: the curator paused them the evening before; no tasks then.
                p1 = open_number - 8
                self._member_story(3, person, first, p1 - 1, start, open_number=open_number)
                pause_from = start + timedelta(days=p1 - 1)
                self.at(
                    _at(pause_from - _DAY, 19),
                    r.pause,
                    _ADMIN,
                    person,
                    3,
                    pause_from,
                    pause_from + timedelta(days=2),
                )
                self._member_story(3, person, p1 + 3, open_number, start, open_number=open_number)
            else:
                self._member_story(3, person, first, open_number, start, open_number=open_number)
        self._duplicates(r.shots.get(3, []))
        r.order_pictures(3, SHIFT_LENGTH)
        return everyone

    def _preparing(self, pool: Iterator[_Person], running: list[_Person], start3: date) -> None:
        """Shift №4, taking applications: 15 pending (one re-applied after a decline), 4
        approved, 3 declined."""
        r = self.replay
        settings = self.settings
        today = self.now.astimezone(settings.tz).date()
        start = start3 + timedelta(days=SHIFT_LENGTH + 13)
        created = _at(max(today - timedelta(days=14), start3 + timedelta(days=3)), 10)
        self.at(created - _MINUTE, r.say, "Смена №4: набор заявок…")
        self.at(created, r.create_shift, _ADMIN, 4, start, start + timedelta(days=SHIFT_LENGTH - 1))
        opened = created + _HOUR
        regular = [p for p in running if not p.is_test]
        pending = [*regular[-3:], *(next(pool) for _ in range(12))]
        reapplied = pending[3]
        self._applications(
            4, [p for p in pending if p is not reapplied], opened, self.now - 10 * _MINUTE, None
        )
        rng = self.rng_for("reapplied", 4)
        applied = _between(rng, opened, self.now - 3 * _DAY)
        declined = applied + timedelta(hours=rng.uniform(1, 10))
        self.at(applied, r.submit, reapplied)
        self.at(
            declined,
            r.decide_application,
            _EXPERT,
            reapplied,
            4,
            applications.DECLINE_REASONS[2],
        )
        self.at(_between(rng, declined + 2 * _HOUR, self.now - 10 * _MINUTE), r.submit, reapplied)
        decide_by = self.now - _HOUR
        closed = self.now - 2 * _DAY
        self._applications(4, [next(pool) for _ in range(4)], opened, closed, decide_by)
        self._applications(
            4,
            [next(pool) for _ in range(3)],
            opened,
            closed,
            decide_by,
            applications.DECLINE_REASONS[0],
        )

    # days and reports

    def _days(self, start: date, last: date) -> None:
        """The daily job at the task hour of every day from `start` to `last` (and of the day
        after `last`, if it has come: a shift that ends becomes `finishing`), the reminder in the
        evening."""
        r = self.replay
        day = start
        while day <= last + _DAY:
            moment = days.task_moment(day).astimezone(UTC)
            if moment > self.now:
                break
            self.at(moment, r.daily, rank=0)
            reminder = schedule.reminder_moment(day).astimezone(UTC)
            if day <= last and reminder <= self.now:
                self.at(reminder, r.reminder, rank=1)
            day += _DAY

    def _member_story(
        self,
        number: int,
        person: _Person,
        first: int,
        last: int,
        start: date,
        *,
        diligence: float | None = None,
        open_number: int = 0,
    ) -> None:
        """One member's days `first`..`last`: photos, declines and re-sends, skips, decisions.

        With `diligence` (the finished pilot) every photo got its decision; otherwise (the running
        shift) the last few days are partly still in the queue. Never four skipped days in a row:
        the only exclusion is the one the running shift's story asks for.
        """
        skipped_run = 0
        for day_number in range(first, last + 1):
            rng = self.rng_for("report", number, person.index, day_number)
            age = open_number - day_number
            if diligence is not None:
                roll = rng.random()
                status = (
                    ReportStatus.approved
                    if roll < diligence
                    else ReportStatus.declined
                    if roll < diligence + 0.08
                    else ReportStatus.skipped
                )
                attempts = _attempts(rng, status, 1)
            else:
                status = _running_status(rng, age)
                attempts = _attempts(rng, status, age)
            if status == ReportStatus.skipped and skipped_run >= 3:
                status, attempts = ReportStatus.approved, 1
            skipped_run = skipped_run + 1 if status == ReportStatus.skipped else 0
            task_date = start + timedelta(days=day_number - 1)
            self._report(number, person, day_number, task_date, status, attempts, rng, age)

    def _report(
        self,
        number: int,
        person: _Person,
        day_number: int,
        task_date: date,
        status: ReportStatus,
        attempts: int,
        rng: random.Random,
        age: int,
    ) -> None:
        r = self.replay
        sent = days.task_moment(task_date).astimezone(UTC)
        first = sent + 5 * _MINUTE
        last = min(days.deadline(task_date).astimezone(UTC), self.now) - _MINUTE
        if status == ReportStatus.waiting or last <= first:
            return  # still waiting, or not even five minutes of the day have passed
        if status == ReportStatus.skipped:
            # Half of the families press "Пропустить"; the others just send nothing and the
            # next daily job skips the day (today's skip must be a pressed one).
            if age == 0 or rng.random() < 0.5:
                self.at(_between(rng, first, last), r.skip, person)
            return
        # Attempt k is sent, declined, attempt k+1 is sent…: 2k-1 ordered moments within the day.
        moments = sorted(_between(rng, first, last) for _ in range(2 * attempts - 1))
        reasons = self.settings.decline_reasons
        shots = r.shots.setdefault(number, [])
        for moment in moments[0::2]:
            unique_id, file_id = _file_ids(rng)
            shot = _Shot(day_number, rng.getrandbits(31), moment, person.index, unique_id, file_id)
            shots.append(shot)
            self.at(moment, r.photo, number, person, shot)
        for moment in moments[1::2]:
            self.at(moment, r.decide_report, self.curator(rng, moment), number, person, day_number,
                    rng.choice(reasons))  # fmt: skip
        if status == ReportStatus.reviewing:
            shots[-1].final = True
            return
        decided = _between(rng, moments[-1] + 2 * _MINUTE, moments[-1] + 20 * _HOUR)
        if decided >= self.now - _MINUTE:
            shots[-1].final = True  # a curator would have decided later: still in the queue
            return
        reason = None if status == ReportStatus.approved else rng.choice(reasons)
        by = self.curator(rng, decided)
        self.at(decided, r.decide_report, by, number, person, day_number, reason)

    def _duplicates(self, shots: list[_Shot]) -> None:
        """Make a few photos in the queue exact or near copies of earlier photos, for the flags.

        An exact copy is another child's photo sent again (the same bytes: the bot refuses a child's
        own photo twice); a near copy is an earlier photo re-saved by another phone, the first one
        the child's own.
        """
        queue = [shot for shot in shots if shot.final]
        if len(queue) < 4:
            return
        exact = max(2, len(queue) // 16)
        near = max(2, len(queue) // 12)
        targets = self.rng.sample(queue, exact + near)
        taken = {id(shot) for shot in targets}
        for n, target in enumerate(targets):
            earlier = [
                shot
                for shot in shots
                if id(shot) not in taken
                and shot.at < target.at
                and (shot.day != target.day or shot.person != target.person)
            ]
            if n < exact:
                earlier = [shot for shot in earlier if shot.person != target.person]
            elif n == exact:
                own = [shot for shot in earlier if shot.person == target.person]
                earlier = own or earlier
            if not earlier:
                continue
            source = self.rng.choice(earlier)
            taken.add(id(source))
            if n < exact:
                target.copy_of = source
            else:
                target.near_of = source
