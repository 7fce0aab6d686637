"""Small factories for arranging data in tests. Each commits, so the app sees the rows."""

from __future__ import annotations

import io
import itertools
import random
from datetime import date, datetime, timedelta

from PIL import Image, ImageDraw
from sqlmodel import Session

from app import clock
from app.accounts import hash_password
from app.images import store_image
from app.models import (
    Application,
    ApplicationStatus,
    Member,
    MemberStatus,
    Participant,
    Report,
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

_seq = itertools.count(1)


def _save(db: Session, obj):
    db.add(obj)
    db.commit()
    db.refresh(obj)
    return obj


def make_staff(
    db: Session,
    *,
    email: str | None = None,
    role: StaffRole = StaffRole.expert,
    status: StaffStatus = StaffStatus.active,
    password: str = "correct horse battery",
    name: str = "Анна",
    surname: str = "Кураторова",
) -> Staff:
    n = next(_seq)
    return _save(
        db,
        Staff(
            email=email or f"staff{n}@example.org",
            name=name,
            surname=surname,
            role=role,
            status=status,
            password_hash=hash_password(password),
        ),
    )


def make_task(db: Session, title: str | None = None, **kw) -> Task:
    return _save(db, Task(title=title or f"Задание номер {next(_seq)}", **kw))


def make_shift(
    db: Session,
    *,
    status: ShiftStatus = ShiftStatus.started,
    start: date | None = None,
    days: int = 92,
    title: str | None = None,
    tasks: list[Task] | None = None,
) -> Shift:
    n = next(_seq)
    start = start or clock.local_today()
    shift = _save(
        db,
        Shift(
            number=n,
            title=title or f"Умею жить {n}",
            status=status,
            started_at=start,
            finished_at=start + timedelta(days=days - 1),
        ),
    )
    tasks = tasks or [make_task(db) for _ in range(3)]
    for day in range(1, days + 1):
        db.add(
            ShiftDay(shift_id=shift.id, day_number=day, task_id=tasks[(day - 1) % len(tasks)].id)
        )
    db.commit()
    return shift


def make_participant(db: Session, **kw) -> Participant:
    n = next(_seq)
    values = dict(
        telegram_id=100000 + n,
        name="Маша",
        surname="Иванова",
        date_of_birth=date(2015, 5, 1),
        city="Уфа",
        phone=f"+7 912 {n // 10000 % 1000:03d}-{n // 100 % 100:02d}-{n % 100:02d}",
        consent_at=clock.now(),
        consent_version="1",
    )
    values.update(kw)
    return _save(db, Participant(**values))


def make_application(
    db: Session,
    participant: Participant,
    shift: Shift,
    status: ApplicationStatus = ApplicationStatus.pending,
) -> Application:
    return _save(db, Application(participant_id=participant.id, shift_id=shift.id, status=status))


def make_member(
    db: Session,
    shift: Shift,
    participant: Participant | None = None,
    joined: date | None = None,
    status: MemberStatus = MemberStatus.active,
) -> Member:
    participant = participant or make_participant(db)
    return _save(
        db,
        Member(
            participant_id=participant.id,
            shift_id=shift.id,
            joined_at=joined or shift.started_at,
            status=status,
        ),
    )


def jpeg_bytes(
    seed: int | None = None, size: tuple[int, int] = (640, 480), quality: int = 85
) -> bytes:
    """A distinct JPEG picture (random shapes on a random background)."""
    rnd = random.Random(seed)
    image = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        w, h = rnd.randrange(20, 200), rnd.randrange(20, 200)
        draw.rectangle((x, y, x + w, y + h), fill=tuple(rnd.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_report(
    db: Session,
    member: Member,
    day: int = 1,
    status: ReportStatus = ReportStatus.waiting,
    photos: int | None = None,
    photo_bytes: bytes | None = None,
) -> Report:
    """A report of `member` for shift day `day`; `photos` attempts are stored (default: 1 unless waiting)."""
    shift = db.get(Shift, member.shift_id)
    assert shift is not None
    plan = db.exec(
        ShiftDay.__table__.select().where(
            ShiftDay.shift_id == shift.id,  # type: ignore[attr-defined]
            ShiftDay.day_number == day,
        )
    ).first()
    if photos is None:
        photos = 0 if status in (ReportStatus.waiting, ReportStatus.skipped) else 1
    report = _save(
        db,
        Report(
            member_id=member.id,
            shift_id=shift.id,
            task_id=plan.task_id,
            day_number=day,
            task_date=shift.started_at + timedelta(days=day - 1),
            status=status,
            photo_count=photos,
            submitted_at=clock.now() if photos else None,
        ),
    )
    for attempt in range(1, photos + 1):
        stored = store_image(photo_bytes or jpeg_bytes(seed=report.id * 10 + attempt))
        db.add(
            photo_row(report.id, attempt, stored, telegram_file_unique_id=f"u{report.id}-{attempt}")
        )
    db.commit()
    return report


def make_review_queue(
    db: Session,
    shift: Shift,
    n: int,
    *,
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=1),
    named: bool = False,
) -> list[Report]:
    """`n` reports in review on day 2 of `shift`, one member each, sent `step` apart from `start`
    (default: two hours ago), oldest first; `named` gives the children distinct names."""
    base = start or clock.now() - timedelta(hours=2)
    reports = []
    for i in range(n):
        child = make_participant(db, name=f"Ребёнок{i}") if named else None
        member = make_member(db, shift, child)
        report = make_report(db, member, day=2, status=ReportStatus.reviewing)
        report.submitted_at = base + step * i
        db.add(report)
        reports.append(report)
    db.commit()
    return reports
