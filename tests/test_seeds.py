"""The demo data (`seeds`) and the demo command: a history the domain itself wrote, every state the
screens need, harmless to re-run, `wipe` empties everything; the demo checks its lock and its port
before touching anything.

The seeding tests build their own database (not the suite's shared one): a temp SQLite file, and
also a fresh PostgreSQL database when TEST_DATABASE_URL is set (created here and dropped
afterwards). They seed a smaller world than the demo (`members=6`, `day=12`, a one-week pilot) to stay fast, and
share one picture cache, so only the first seeding of a run draws.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, col, select

import app.settings as settings_module
from app import clock, consent, days
from app.accounts import verify_password
from app.db import make_engine, session_scope
from app.images import hamming, perceptual_hashes
from app.members import balances
from app.migrate import upgrade
from app.models import (
    Application,
    ApplicationStatus,
    AuditEvent,
    Consent,
    ConsentGiver,
    JobRun,
    Member,
    MemberStatus,
    OutboxStatus,
    OutgoingMessage,
    Participant,
    PhotoFlag,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    ShiftDay,
    ShiftStatus,
    Staff,
    StaffRole,
    StaffStatus,
    StaffToken,
    Task,
)
from app.settings import load_settings
from app.storage import backend as _media_backend
from seeds import data, pictures
from seeds.demo import LOCK_NAME, DemoLock
from seeds.fill import SeedSummary, fill, wipe
from seeds.painter import Painter, Picture

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Yekaterinburg")
MEMBERS, DAY, PARTICIPANTS, PILOT_DAYS = 6, 12, 40, 7
PLAN_GAP = 7  # a task does not come back within this many days

CYRILLIC_NAME = re.compile(r"^[А-ЯЁ][а-яё]+(-[А-ЯЁ][а-яё]+)?$")
CITY = re.compile(r"^[А-ЯЁа-яё]+([ -][А-ЯЁа-яё]+)*$")
PHONE = re.compile(r"^\+7 9\d\d \d{3}-\d\d-\d\d$")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "seed.sqlite3")
        return
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    server = make_url(base).set(drivername="postgresql+psycopg")
    name = f"lomaya_seedtest_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def picture_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One picture cache for every seeding of the run (shared by the xdist workers)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above the workers' own
    return root / "demo-picture-cache"


@pytest.fixture
def seed_engine(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at a temp data folder and an engine on a migrated, empty database."""
    settings = load_settings(
        {"DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "x" * 32, "DATABASE_URL": database_url},
        env_file=None,
    )
    monkeypatch.setattr(settings_module, "_current", settings)  # restored after the test
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
    clock.set_now(None)


def _seed(engine: sa.Engine, cache: Path) -> SeedSummary:
    with session_scope(engine) as session:
        return fill(
            session,
            progress=lambda _msg: None,
            participants=PARTICIPANTS,
            members=MEMBERS,
            day=DAY,
            pilot_days=PILOT_DAYS,
            cache_dir=cache,
            workers=0,
        )


def _shift(session: Session, status: ShiftStatus) -> Shift:
    return session.exec(select(Shift).where(Shift.status == status)).one()


def test_fill_rerun_and_wipe(seed_engine: sa.Engine, picture_cache: Path) -> None:
    clock.set_now(datetime(2026, 3, 15, 21, 0, tzinfo=TZ))  # after the task hour: day 12 is open
    summary = _seed(seed_engine, picture_cache)
    assert clock.now() == datetime(2026, 3, 15, 21, 0, tzinfo=TZ)  # the replay gave it back
    assert not summary.already_seeded
    assert summary.tasks == len(data.TASKS) + 1  # plus one archived
    assert summary.participants == PARTICIPANTS
    assert summary.shifts == 4
    assert summary.reviewing > 0 and summary.photos > 0
    assert "admin@lomaya.local / demo-admin-2026" in summary.describe()

    with Session(seed_engine) as session:
        _check_staff(session, summary)
        _check_tasks(session)
        _check_participants(session)
        _check_shifts_and_plans(session)
        _check_started_shift(session)
        _check_exclusion(session)
        _check_photos(session)
        _check_requests(session)
        _check_finished_pilot(session)
        _check_audit(session)
        _check_outbox_and_jobs(session)

    again = _seed(seed_engine, picture_cache)  # re-running adds nothing and does not crash
    assert again.already_seeded
    assert (again.tasks, again.participants, again.reports, again.photos) == (
        summary.tasks,
        summary.participants,
        summary.reports,
        summary.photos,
    )

    with session_scope(seed_engine) as session:
        wipe(session)
    with Session(seed_engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            assert session.scalar(sa.select(sa.func.count()).select_from(table)) == 0, table.name
    media = settings_module.get_settings().media_dir
    assert not [p for p in media.rglob("*") if p.is_file()]
    assert any(picture_cache.rglob("*.jpg"))  # the picture cache is not media: it stays


def _check_staff(session: Session, summary: SeedSummary) -> None:
    admin = session.exec(select(Staff).where(Staff.email == summary.admin_email)).one()
    expert = session.exec(select(Staff).where(Staff.email == summary.expert_email)).one()
    assert admin.role == StaffRole.administrator and expert.role == StaffRole.expert
    assert verify_password(admin.password_hash, summary.admin_password)
    assert verify_password(expert.password_hash, summary.expert_password)
    statuses = Counter(session.exec(select(Staff.status)).all())
    assert statuses[StaffStatus.blocked] == 1 and statuses[StaffStatus.active] == 2
    invitation = session.exec(select(StaffToken)).one()  # an open invitation to show
    assert invitation.email == data.INVITED["email"] and invitation.used_at is None
    assert invitation.expires_at > clock.now()


def _check_tasks(session: Session) -> None:
    tasks = session.exec(select(Task)).all()
    active = [t for t in tasks if not t.is_archived]
    assert len(active) == 31 and len({t.title for t in tasks}) == len(tasks)
    for task in tasks:
        assert task.image_key and _media_backend().exists(task.image_key)
    archived = {t.id for t in tasks if t.is_archived}
    assert not session.exec(select(ShiftDay).where(col(ShiftDay.task_id).in_(archived))).all()


def _check_participants(session: Session) -> None:
    people = session.exec(select(Participant)).all()
    today = clock.local_today()
    for person in people:
        assert CYRILLIC_NAME.match(person.name), person.name
        assert CYRILLIC_NAME.match(person.surname), person.surname
        assert CITY.match(person.city), person.city
        assert person.phone and PHONE.match(person.phone), person.phone
        assert person.date_of_birth and (today - person.date_of_birth).days >= 3 * 365
        assert person.consent_at and person.consent_version
        assert person.consent_at <= clock.now()
    given = {c.participant_id: c for c in session.exec(select(Consent)).all()}
    assert set(given) == {p.id for p in people}  # one consent each, matching the one in force
    assert all(given[p.id].given_at == p.consent_at for p in people)
    assert {c.given_by for c in given.values()} == set(ConsentGiver)
    assert all(consent.template_name(c.version) for c in given.values())
    assert len({p.phone for p in people}) == len({p.telegram_id for p in people}) == len(people)
    assert sum(p.is_test for p in people) == 2
    assert any(p.is_bot_blocked for p in people)
    # Every participant came through the registration form: each has applied somewhere.
    applied = set(session.exec(select(Application.participant_id)).all())
    assert applied == {p.id for p in people}


def _check_shifts_and_plans(session: Session) -> None:
    shifts = session.exec(select(Shift).order_by(Shift.number)).all()
    assert [s.status for s in shifts] == [
        ShiftStatus.finished,
        ShiftStatus.cancelled,
        ShiftStatus.started,
        ShiftStatus.preparing,
    ]
    pilot, _cancelled, started, preparing = shifts
    assert (clock.local_today() - started.started_at).days + 1 == DAY
    assert preparing.started_at > started.finished_at
    assert pilot.length_days == PILOT_DAYS and pilot.finished_at < started.started_at
    for shift in shifts:
        assert 3 <= len(shift.title) <= 60 and shift.started_at < shift.finished_at
        assert "{balance}" in shift.final_message
        days_ = session.exec(
            select(ShiftDay).where(ShiftDay.shift_id == shift.id).order_by(ShiftDay.day_number)
        ).all()
        assert [d.day_number for d in days_] == list(range(1, shift.length_days + 1))
        tasks = [d.task_id for d in days_]
        for window in (tasks[i : i + PLAN_GAP] for i in range(len(tasks))):
            assert len(set(window)) == len(window)  # no task twice within a few days


def _check_started_shift(session: Session) -> None:
    shift = _shift(session, ShiftStatus.started)
    members = session.exec(select(Member).where(Member.shift_id == shift.id)).all()
    assert len(members) == MEMBERS
    assert {m.status for m in members} == {MemberStatus.active, MemberStatus.excluded}
    plan = {
        d.day_number: d.task_id
        for d in session.exec(select(ShiftDay).where(ShiftDay.shift_id == shift.id))
    }
    reports = session.exec(select(Report).where(Report.shift_id == shift.id)).all()
    assert set(Counter(r.status for r in reports)) == set(ReportStatus)
    now = clock.now()
    for report in reports:
        assert report.task_id == plan[report.day_number]
        assert report.task_date == shift.started_at + timedelta(days=report.day_number - 1)
        assert 1 <= report.day_number <= DAY
        if report.status == ReportStatus.waiting:
            assert report.day_number == DAY and report.photo_count == 0
        if report.status in (ReportStatus.waiting, ReportStatus.skipped, ReportStatus.paused):
            assert report.photo_count == 0 and report.submitted_at is None
        else:
            assert 1 <= report.photo_count <= 3
            assert report.submitted_at and report.submitted_at <= now
        if report.status in (ReportStatus.approved, ReportStatus.declined):
            assert report.decided_at and report.decided_by_id
            assert report.submitted_at and report.submitted_at <= report.decided_at <= now
        if report.status == ReportStatus.declined:
            assert report.decline_reason in settings_module.get_settings().decline_reasons
        if report.status == ReportStatus.reviewing and report.photo_count == 1:
            assert report.decided_at is None  # (a re-sent photo keeps the last decline's fields)
    # A member who joined on the first day, after the task hour: the reports start on day 2.
    first_days = Counter(min(r.day_number for r in reports if r.member_id == m.id) for m in members)
    assert first_days == {1: MEMBERS - 1, 2: 1}


def _check_exclusion(session: Session) -> None:
    """The daily job excluded the member who skipped five days in a row, by itself."""
    shift = _shift(session, ShiftStatus.started)
    excluded = session.exec(
        select(Member).where(Member.shift_id == shift.id, Member.status == MemberStatus.excluded)
    ).one()
    reports = session.exec(
        select(Report).where(Report.member_id == excluded.id).order_by(Report.day_number)
    ).all()
    assert [r.status for r in reports[-5:]] == [ReportStatus.skipped] * 5
    assert all(r.photo_count == 0 for r in reports[-5:])
    assert reports[-1].day_number < DAY
    # At the task hour of the day after the fifth skipped one, when the daily job ran.
    next_day = reports[-1].task_date + timedelta(days=1)
    assert excluded.excluded_at == days.task_moment(next_day)
    message = session.exec(
        select(OutgoingMessage).where(OutgoingMessage.dedupe_key == f"excluded:{excluded.id}")
    ).one()
    assert message.kind == "excluded"


def _check_photos(session: Session) -> None:
    shift = _shift(session, ShiftStatus.started)
    reports = {
        r.id: r for r in session.exec(select(Report).where(Report.shift_id == shift.id)).all()
    }
    photos = session.exec(select(ReportPhoto)).all()
    assert {p.report_id for p in photos} <= set(reports)  # the pilot's were deleted (retention)
    attempts: dict[int, list[int]] = {}
    for photo in photos:
        attempts.setdefault(photo.report_id, []).append(photo.attempt)
        assert _media_backend().exists(photo.storage_key) and _media_backend().exists(
            photo.thumb_key
        )
        assert photo.sha256 and photo.phash is not None and photo.dhash is not None
        assert photo.telegram_file_unique_id and photo.flags_checked  # checked on arrival
    for report in reports.values():
        assert sorted(attempts.get(report.id or 0, [])) == list(range(1, report.photo_count + 1))
    assert len({p.telegram_file_unique_id for p in photos}) == len(photos)

    by_sha = Counter(p.sha256 for p in photos)
    assert any(count > 1 for count in by_sha.values()), "no exact duplicate"
    assert len(by_sha) > len(photos) * 0.9, "photos should be distinct apart from a few copies"
    near = [
        (a, b)
        for a, b in itertools.combinations(photos, 2)
        if a.sha256 != b.sha256 and hamming(a.phash or 0, b.phash or 0) <= 8
    ]
    assert near, "no near duplicate"
    # The queue shows both flags, set by the bot's own check when the photo arrived.
    by_id = {p.id: p for p in photos}
    queue = [
        p
        for p in photos
        if reports[p.report_id].status == ReportStatus.reviewing
        and p.attempt == reports[p.report_id].photo_count
    ]
    flags = Counter(p.flag for p in queue)
    assert flags[PhotoFlag.exact] >= 1 and flags[PhotoFlag.near] >= 1
    for photo in queue:
        if photo.flag == PhotoFlag.exact:
            source = by_id[photo.flag_photo_id]
            assert source.sha256 == photo.sha256
            assert reports[source.report_id].member_id != reports[photo.report_id].member_id
    assert max(p.width or 0 for p in queue) == pictures.PHOTO_SIZE[0]


def _check_requests(session: Session) -> None:
    rows = session.exec(
        select(Shift.status, Application.status).join(Shift, Shift.id == Application.shift_id)
    ).all()
    counts = Counter(rows)
    assert counts[(ShiftStatus.preparing, ApplicationStatus.pending)] == 15
    assert counts[(ShiftStatus.preparing, ApplicationStatus.approved)] == 4
    assert counts[(ShiftStatus.preparing, ApplicationStatus.declined)] == 3
    assert counts[(ShiftStatus.started, ApplicationStatus.approved)] == MEMBERS
    assert counts[(ShiftStatus.started, ApplicationStatus.declined)] == 3
    assert counts[(ShiftStatus.cancelled, ApplicationStatus.declined)] >= 6
    for request in session.exec(select(Application)).all():
        decided = request.status != ApplicationStatus.pending
        assert (request.decided_at is not None) == decided == (request.decided_by_id is not None)
        if request.status == ApplicationStatus.declined:
            assert request.decline_reason
    preparing = _shift(session, ShiftStatus.preparing)
    reapplied = session.exec(
        select(Application).where(Application.shift_id == preparing.id, Application.attempts == 2)
    ).one()
    assert reapplied.status == ApplicationStatus.pending


def _check_finished_pilot(session: Session) -> None:
    """The finished shift: a full history and a ranking; its photos were deleted by retention."""
    pilot = _shift(session, ShiftStatus.finished)
    members = session.exec(select(Member).where(Member.shift_id == pilot.id)).all()
    reports = session.exec(select(Report).where(Report.shift_id == pilot.id)).all()
    assert len(reports) == len(members) * PILOT_DAYS
    assert {r.status for r in reports} == {
        ReportStatus.approved,
        ReportStatus.declined,
        ReportStatus.skipped,
    }
    points = balances(session, [m.id for m in members if m.id is not None])
    assert len(set(points.values())) >= 2, points  # a ranking worth a prize
    assert sum(r.photo_count for r in reports) > len(reports) // 2  # photos were sent…
    kept = session.exec(
        select(ReportPhoto.id)
        .join(Report, col(Report.id) == ReportPhoto.report_id)
        .where(Report.shift_id == pilot.id)
    ).all()
    assert not kept  # …and deleted by the retention job
    finals = session.exec(
        select(OutgoingMessage).where(OutgoingMessage.kind == "shift_final")
    ).all()
    assert len(finals) == len(members)  # one family blocked the bot, but only afterwards


def _check_audit(session: Session) -> None:
    """The audit log is the domain's own: its action names and its keys."""
    events = session.exec(select(AuditEvent)).all()
    actions = Counter(e.action for e in events)
    for action in (
        "task.create",
        "task.archive",
        "shift.create",
        "shift.cancel",
        "shift.final_message",
        "application.submit",
        "application.approve",
        "application.decline",
        "report.approve",
        "report.decline",
        "participant.test",
        "staff.block",
        "staff.invite",
        "member.pause",
    ):
        assert actions[action] > 0, action
    for event in events:
        if event.action.endswith((".approve", ".decline", ".undo")):
            # the decisions' audit is the domain's own: "decline_reason", never "reason"
            assert "reason" not in (event.after or {}), event.action
        if event.action in ("report.decline", "application.decline"):
            assert event.after and event.after["decline_reason"]
        assert event.at <= clock.now()
    moments = [e.at for e in sorted(events, key=lambda e: e.id or 0)]
    assert moments == sorted(moments)  # written in the order things happened


def _check_outbox_and_jobs(session: Session) -> None:
    now = clock.now()
    due = session.exec(
        select(OutgoingMessage).where(
            OutgoingMessage.status == OutboxStatus.pending, OutgoingMessage.send_after <= now
        )
    ).all()
    assert not due  # no old backlog on the health page
    kinds = set(session.exec(select(OutgoingMessage.kind)).all())
    assert {
        "registration_received",
        "application_approved",
        "application_declined",
        "task",
        "reminder",
        "report_approved",
        "report_declined",
        "shift_cancelled",
        "shift_final",
        "excluded",
    } <= kinds
    jobs = Counter(session.exec(select(JobRun.job)).all())
    assert jobs["daily"] == PILOT_DAYS + 1 + DAY and jobs["retention"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a time rule: one DB is enough
def test_before_the_task_hour_the_open_day_is_yesterday(
    seed_engine: sa.Engine, picture_cache: Path
) -> None:
    clock.set_now(datetime(2026, 3, 15, 6, 30, tzinfo=TZ))  # the day-12 task comes at 08:00
    _seed(seed_engine, picture_cache)
    with Session(seed_engine) as session:
        shift = _shift(session, ShiftStatus.started)
        reports = session.exec(select(Report).where(Report.shift_id == shift.id)).all()
        assert max(r.day_number for r in reports) == DAY - 1
        waiting = [r for r in reports if r.status == ReportStatus.waiting]
        assert waiting and all(r.day_number == DAY - 1 for r in waiting)
        assert all(r.submitted_at is None or r.submitted_at <= clock.now() for r in reports)


def test_fill_refuses_a_world_too_small(seed_engine: sa.Engine) -> None:
    with session_scope(seed_engine) as session, pytest.raises(ValueError, match="participants"):
        fill(session, progress=lambda _msg: None, participants=20, members=MEMBERS, day=DAY)


def test_pictures_are_distinct_and_copies_are_close() -> None:
    from io import BytesIO

    from PIL import Image

    def hashes(jpeg: bytes) -> tuple[int, int]:
        image = Image.open(BytesIO(jpeg))
        image.thumbnail((480, 480))
        return perceptual_hashes(image)

    for size in (pictures.PHOTO_SIZE, pictures.SMALL_PHOTO_SIZE):
        one = pictures.report_photo(11, "kitchen", "День 3", size)
        assert one == pictures.report_photo(11, "kitchen", "День 3", size)  # exact copies
        assert Image.open(BytesIO(one)).size == size
        near = pictures.near_duplicate(11, "kitchen", "День 3", size)
        assert near != one
        (p1, d1), (p2, d2) = hashes(one), hashes(near)
        assert hamming(p1, p2) <= 8 and hamming(d1, d2) <= 10
        other = hashes(pictures.report_photo(12, "kitchen", "День 3", size))
        assert hamming(p1, other[0]) > 8 or hamming(d1, other[1]) > 10
    task = Image.open(BytesIO(pictures.task_picture("Почистить зубы", "toothbrush", 0)))
    assert task.size == pictures.TASK_SIZE
    assert pictures.stand_in_photo(1) != pictures.stand_in_photo(2)
    assert pictures.cyrillic_font(20) is None or pictures._renders_cyrillic(
        pictures.cyrillic_font(20)
    )


def test_painter_caches_pictures_by_what_is_drawn(tmp_path: Path) -> None:
    wanted = [Picture("photo", seed, "hall", "День 1") for seed in (1, 2)]
    (tmp_path / "v0" / "ab").mkdir(parents=True)  # pictures of an older drawing code
    first = Painter(tmp_path, workers=0)
    drawn = [first.get(p) for p in wanted]
    assert first.drawn == 2 and not (tmp_path / "v0").exists()
    again = Painter(tmp_path, workers=0)
    assert [again.get(p) for p in wanted] == drawn
    assert (again.drawn, again.cached) == (0, 2)
    other = Picture("photo", 1, "hall", "День 2")
    assert other.key != wanted[0].key


def test_painter_draws_ahead_in_another_process(tmp_path: Path) -> None:
    wanted = [Picture("photo", 5, "bathroom", "День 2", size=pictures.SMALL_PHOTO_SIZE)]
    painter = Painter(tmp_path, workers=1)
    try:
        painter.order(wanted)
        assert painter.get(wanted[0]) == wanted[0].draw()  # the same bytes as drawn here
    finally:
        painter.close()
    assert Painter(tmp_path, workers=0).get(wanted[0]) == wanted[0].draw()  # and cached


def test_feminine_surnames() -> None:
    assert data.feminine_surname("Иванов") == "Иванова"
    assert data.feminine_surname("Островский") == "Островская"
    assert data.feminine_surname("Толстой") == "Толстая"
    assert data.feminine_surname("Римский-Корсаков") == "Римская-Корсакова"
    assert data.feminine_surname("Черных") == "Черных"


def test_delete_asks_and_aborts_on_no(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{db}",
        "SECRET_KEY": "x" * 32,
    }
    result = subprocess.run(
        [sys.executable, "-m", "seeds", "--delete"],
        input="n\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Отменено" in result.stderr
    assert not db.exists()  # nothing was touched, not even migrated


# --- the demo command ----------------------------------------------------------------------------


def _demo(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    env["DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_demo_on_a_busy_port_says_so_before_seeding(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _demo(tmp_path, port)
    assert result.returncode != 0
    assert f"Порт {port} уже занят" in result.stderr
    assert "uv run lomaya demo --port " in result.stderr  # and how to pick another
    assert not (tmp_path / "demo").exists()  # nothing wiped, migrated or seeded


def test_second_demo_on_the_same_data_dir_refuses(tmp_path: Path) -> None:
    database = tmp_path / "demo" / "lomaya.sqlite3"
    database.parent.mkdir()
    database.write_bytes(b"the first demo's database")
    running = DemoLock(tmp_path / LOCK_NAME)  # what the first, running demo holds
    assert running.acquire(f"{os.getpid()} http://127.0.0.1:8080")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = _demo(tmp_path, port)
    finally:
        running.release()
    assert result.returncode != 0
    assert "уже запущено" in result.stderr and "http://127.0.0.1:8080" in result.stderr
    assert database.read_bytes() == b"the first demo's database"
    assert DemoLock(tmp_path / LOCK_NAME).acquire("next")  # free again once the first one ends
