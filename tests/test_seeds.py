"""The demo data (`seeds`): valid, varied, harmless to re-run, and `wipe` empties everything.

These tests build their own database (not the suite's shared one): a temp SQLite file, and also a
fresh PostgreSQL database when TEST_DATABASE_URL is set (created here and dropped afterwards). They
seed a smaller world than the demo (`members=8`, `day=14`) to stay fast.
"""

from __future__ import annotations

import itertools
import os
import re
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
from sqlmodel import Session, SQLModel, select

import app.settings as settings_module
from app import clock
from app.accounts import verify_password
from app.db import make_engine, session_scope
from app.images import hamming, perceptual_hashes
from app.migrate import upgrade
from app.models import (
    Application,
    ApplicationStatus,
    Member,
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
    Task,
)
from app.settings import load_settings
from app.storage import backend as _media_backend
from seeds import data, pictures
from seeds.fill import PLAN_GAP, SeedSummary, fill, plan_tasks, wipe

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Yekaterinburg")
MEMBERS, DAY, PARTICIPANTS = 8, 14, 60

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


def _seed(engine: sa.Engine) -> SeedSummary:
    with session_scope(engine) as session:
        return fill(
            session, progress=lambda _msg: None, participants=PARTICIPANTS, members=MEMBERS, day=DAY
        )


def _started(session: Session) -> Shift:
    return session.exec(select(Shift).where(Shift.status == ShiftStatus.started)).one()


def test_fill_rerun_and_wipe(seed_engine: sa.Engine) -> None:
    clock.set_now(datetime(2026, 3, 15, 21, 0, tzinfo=TZ))  # after the task hour: day 14 is open
    summary = _seed(seed_engine)
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
        _check_photos(session)
        _check_requests(session)

    again = _seed(seed_engine)  # re-running adds nothing and does not crash
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


def _check_staff(session: Session, summary: SeedSummary) -> None:
    admin = session.exec(select(Staff).where(Staff.email == summary.admin_email)).one()
    expert = session.exec(select(Staff).where(Staff.email == summary.expert_email)).one()
    assert admin.role == StaffRole.administrator and expert.role == StaffRole.expert
    assert verify_password(admin.password_hash, summary.admin_password)
    assert verify_password(expert.password_hash, summary.expert_password)


def _check_tasks(session: Session) -> None:
    tasks = session.exec(select(Task)).all()
    active = [t for t in tasks if not t.is_archived]
    assert len(active) == 31 and len({t.title for t in tasks}) == len(tasks)
    for task in tasks:
        assert task.image_key and _media_backend().exists(task.image_key)


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
    assert len({p.phone for p in people}) == len({p.telegram_id for p in people}) == len(people)
    assert any(p.is_test for p in people)


def _check_shifts_and_plans(session: Session) -> None:
    shifts = session.exec(select(Shift).order_by(Shift.number)).all()
    assert [s.status for s in shifts] == [
        ShiftStatus.finished,
        ShiftStatus.cancelled,
        ShiftStatus.started,
        ShiftStatus.preparing,
    ]
    started, preparing = shifts[2], shifts[3]
    assert (clock.local_today() - started.started_at).days + 1 == DAY
    assert preparing.started_at > started.finished_at
    for shift in shifts:
        assert 3 <= len(shift.title) <= 60 and shift.started_at < shift.finished_at
        days = session.exec(
            select(ShiftDay).where(ShiftDay.shift_id == shift.id).order_by(ShiftDay.day_number)
        ).all()
        assert [d.day_number for d in days] == list(range(1, shift.length_days + 1))
        tasks = [d.task_id for d in days]
        for window in (tasks[i : i + PLAN_GAP] for i in range(len(tasks))):
            assert len(set(window)) == len(window)  # no task twice within a few days


def _check_started_shift(session: Session) -> None:
    shift = _started(session)
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
            assert report.decline_reason
        if report.status == ReportStatus.reviewing:
            assert report.decided_at is None


def _check_photos(session: Session) -> None:
    shift = _started(session)
    reports = {
        r.id: r for r in session.exec(select(Report).where(Report.shift_id == shift.id)).all()
    }
    photos = session.exec(select(ReportPhoto)).all()
    attempts: dict[int, list[int]] = {}
    for photo in photos:
        attempts.setdefault(photo.report_id, []).append(photo.attempt)
        assert _media_backend().exists(photo.storage_key) and _media_backend().exists(
            photo.thumb_key
        )
        assert photo.sha256 and photo.phash is not None and photo.dhash is not None
        assert photo.telegram_file_unique_id and photo.flag is None and not photo.flags_checked
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
    # The duplicates are among the photos under review, where the flags are computed.
    reviewing = {p.id for p in photos if reports[p.report_id].status == ReportStatus.reviewing}
    assert any(a.id in reviewing or b.id in reviewing for a, b in near)


def _check_requests(session: Session) -> None:
    rows = session.exec(
        select(Shift.status, Application.status).join(Shift, Shift.id == Application.shift_id)
    ).all()
    counts = Counter(rows)
    assert counts[(ShiftStatus.preparing, ApplicationStatus.pending)] == 15
    assert counts[(ShiftStatus.preparing, ApplicationStatus.declined)] > 0
    assert counts[(ShiftStatus.started, ApplicationStatus.approved)] == MEMBERS
    for request in session.exec(select(Application)).all():
        decided = request.status != ApplicationStatus.pending
        assert (request.decided_at is not None) == decided == (request.decided_by_id is not None)
        if request.status == ApplicationStatus.declined:
            assert request.decline_reason


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a time rule: one DB is enough
def test_before_the_task_hour_the_open_day_is_yesterday(seed_engine: sa.Engine) -> None:
    clock.set_now(datetime(2026, 3, 15, 6, 30, tzinfo=TZ))  # the day-14 task comes at 08:00
    _seed(seed_engine)
    with Session(seed_engine) as session:
        shift = _started(session)
        reports = session.exec(select(Report).where(Report.shift_id == shift.id)).all()
        assert max(r.day_number for r in reports) == DAY - 1
        waiting = [r for r in reports if r.status == ReportStatus.waiting]
        assert waiting and all(r.day_number == DAY - 1 for r in waiting)
        assert all(r.submitted_at is None or r.submitted_at <= clock.now() for r in reports)


def test_plan_tasks_cycles_without_early_repeats() -> None:
    import random

    plan = plan_tasks(list(range(31)), 92, random.Random(1))
    assert len(plan) == 92
    assert Counter(plan[:31]) == Counter(range(31))  # every task once per round
    assert all(len(set(plan[i : i + PLAN_GAP])) == PLAN_GAP for i in range(92 - PLAN_GAP))


def test_pictures_are_distinct_and_copies_are_close() -> None:
    from io import BytesIO

    from PIL import Image

    def hashes(jpeg: bytes) -> tuple[int, int]:
        image = Image.open(BytesIO(jpeg))
        image.thumbnail((480, 480))
        return perceptual_hashes(image)

    one = pictures.report_photo(11, "kitchen", "День 3")
    assert one == pictures.report_photo(11, "kitchen", "День 3")  # exact copies are possible
    assert Image.open(BytesIO(one)).size == pictures.PHOTO_SIZE
    near = pictures.near_duplicate(11, "kitchen", "День 3")
    assert near != one
    (p1, d1), (p2, d2) = hashes(one), hashes(near)
    assert hamming(p1, p2) <= 8 and hamming(d1, d2) <= 10
    other = hashes(pictures.report_photo(12, "kitchen", "День 3"))
    assert hamming(p1, other[0]) > 8 or hamming(d1, other[1]) > 10
    task = Image.open(BytesIO(pictures.task_picture("Почистить зубы", "toothbrush", 0)))
    assert task.size == pictures.TASK_SIZE
    assert pictures.cyrillic_font(20) is None or pictures._renders_cyrillic(
        pictures.cyrillic_font(20)
    )


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
