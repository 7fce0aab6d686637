"""Photo reports arriving from the bot (product.md §3.4).

`receive` decides what a photo means, in this order: not a participant / no task now → say so without
downloading; the same `file_unique_id` or SHA-256 already used by this child → "already sent" (not an
attempt); attempts over / day skipped / already in review or accepted → explain; otherwise the photo is
stored, flagged for duplicates (the same function the moderation queue uses) and the report goes to
`reviewing`. The download is a callable given by the adapter, so this module never talks to Telegram.
Takes a session, never commits.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, duplicates, images, live, members, participants, reports, storage
from app.days import report_day
from app.errors import DownloadError, NotAnImage
from app.models import (
    Member,
    MemberStatus,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    ShiftStatus,
)
from app.settings import get_settings

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # Telegram's getFile limit
IMAGE_MIME_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}


@dataclass(frozen=True)
class Incoming:
    file_id: str
    file_unique_id: str
    file_size: int | None = None
    mime_type: str | None = None  # documents only


@dataclass
class Outcome:
    kind: str  # the bot text to answer with: templates/bot/<kind>.txt
    context: dict[str, Any] = field(default_factory=dict)
    report_id: int | None = None
    photo_id: int | None = None
    stored_keys: tuple[str, ...] = ()


def photo_values(
    report_id: int, attempt: int, stored: images.StoredImage, **extra: Any
) -> dict[str, Any]:
    """The columns of a report photo row for a stored image."""
    return {
        "report_id": report_id,
        "attempt": attempt,
        "storage_key": stored.key,
        "thumb_key": stored.thumb_key,
        "width": stored.width,
        "height": stored.height,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "phash": stored.phash,
        "dhash": stored.dhash,
        **extra,
    }


def photo_row(
    report_id: int, attempt: int, stored: images.StoredImage, **extra: Any
) -> ReportPhoto:
    """A report photo row for a stored image (the bot, the demo data and the tests all make them)."""
    return ReportPhoto(**photo_values(report_id, attempt, stored, **extra))


@dataclass
class Situation:
    """Who sent a photo and what it can count for: the participant, their running shift, today's
    report (locked FOR UPDATE) and whether this child already sent this Telegram file."""

    participant: Participant | None
    shift: Shift | None = None
    report: Report | None = None
    already_sent: bool = False


@functools.cache
def _situation_query() -> Any:
    """Built once (statement construction costs more than the lookup): parameters `telegram_id`,
    `unique_id` (None matches nothing) and `today`."""
    current = (
        sa.select(
            col(Member.id).label("member_id"),
            col(Member.participant_id).label("participant_id"),
            col(Shift.id).label("shift_id"),
        )
        .join(Shift, col(Shift.id) == col(Member.shift_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .where(
            col(Participant.telegram_id) == sa.bindparam("telegram_id", type_=sa.BigInteger),
            col(Participant.deleted_at).is_(None),
            col(Member.status) == MemberStatus.active,
            col(Shift.status).in_([ShiftStatus.started, ShiftStatus.finishing]),
        )
        .order_by(col(Shift.started_at).desc())
        .limit(1)
        .subquery()
    )
    used = sa.exists(
        sa.select(col(ReportPhoto.id))
        .join(Report, col(Report.id) == col(ReportPhoto.report_id))
        .join(Member, col(Member.id) == col(Report.member_id))
        .where(
            col(Member.participant_id) == current.c.participant_id,
            col(ReportPhoto.telegram_file_unique_id) == sa.bindparam("unique_id", type_=sa.String),
        )
    )
    return (
        sa.select(Participant, Shift, Report, used)
        .select_from(current)
        .join(Participant, col(Participant.id) == current.c.participant_id)
        .join(Shift, col(Shift.id) == current.c.shift_id)
        .join(
            Report,
            sa.and_(
                col(Report.member_id) == current.c.member_id,
                col(Report.task_date) == sa.bindparam("today", type_=sa.Date),
            ),
        )
        .with_for_update(of=Report)
    )


def situation(session: Session, telegram_id: int, unique_id: str | None) -> Situation:
    """Everything `receive` checks before downloading, in one query for the usual case (a member
    with today's report); the rarer cases take the step-by-step path with the same rules."""
    row = session.execute(
        _situation_query(),
        {
            "telegram_id": telegram_id,
            "unique_id": unique_id or None,
            "today": report_day(clock.now()),
        },
    ).first()
    if row is not None:
        return Situation(row[0], row[1], row[2], bool(row[3]))
    participant = participants.by_telegram(session, telegram_id)
    if participant is None or participant.id is None:
        return Situation(None)
    found = members.current(session, participant.id)
    if found is None:
        return Situation(participant)
    member, shift = found
    report = reports.todays_report(session, member, lock=True)
    if report is None:
        return Situation(participant, shift)
    used_before = duplicates.used_by_child(
        session, participant.id, unique_id=unique_id, sha256=None
    )
    return Situation(participant, shift, report, used_before)


def receive(
    session: Session,
    found: Situation,
    incoming: Incoming,
    download: Callable[[Incoming], bytes],
) -> Outcome:
    participant, shift, report = found.participant, found.shift, found.report
    if participant is None or participant.id is None:
        return Outcome("photo_not_participant")
    if shift is None:
        return Outcome("photo_not_member")
    if report is None:
        return Outcome("photo_no_task")
    if found.already_sent:
        return Outcome("photo_already_sent", report_id=report.id)
    if incoming.mime_type is not None and incoming.mime_type.lower() not in IMAGE_MIME_TYPES:
        return Outcome("photo_not_image", report_id=report.id)
    if incoming.file_size is not None and incoming.file_size > MAX_DOWNLOAD_BYTES:
        return Outcome("photo_too_big", report_id=report.id)
    try:
        data = download(incoming)
    except DownloadError as exc:
        kind = "photo_too_big" if exc.too_big else "photo_download_failed"
        return Outcome(kind, report_id=report.id)
    if len(data) > MAX_DOWNLOAD_BYTES:
        return Outcome("photo_too_big", report_id=report.id)
    sha = hashlib.sha256(data).hexdigest()
    refusal = _refusal(report)
    if refusal is not None:
        used = duplicates.used_by_child(session, participant.id, unique_id=None, sha256=sha)
        return Outcome("photo_already_sent", report_id=report.id) if used else refusal
    try:
        image = images.process(data)
    except NotAnImage:
        return Outcome("photo_not_image", report_id=report.id)
    unique_id = incoming.file_unique_id[:64] or None
    assert report.id is not None
    check = duplicates.check_new_photo(
        session,
        shift_id=report.shift_id,
        participant_id=participant.id,
        report_id=report.id,
        sha256=sha,
        file_unique_id=unique_id,
        phash=image.phash,
        dhash=image.dhash,
    )
    if check.used_by_child:
        return Outcome("photo_already_sent", report_id=report.id)
    # A storage fault propagates: the update is not recorded and is delivered again.
    stored = images.store_processed(image, sha)
    try:
        outcome = _accept(session, report, shift, incoming, stored, check.flag)
    except BaseException:
        storage.delete(stored.key, stored.thumb_key)
        raise
    if outcome.photo_id is None:
        storage.delete(stored.key, stored.thumb_key)
    return outcome


def _refusal(report: Report) -> Outcome | None:
    """Why this report takes no new photo now, or None if it does."""
    max_attempts = get_settings().max_photo_attempts
    status_answer = {
        ReportStatus.skipped: "photo_day_skipped",
        ReportStatus.paused: "photo_day_paused",
        ReportStatus.reviewing: "photo_already_reviewing",
        ReportStatus.approved: "photo_already_approved",
    }.get(report.status)
    if status_answer:
        return Outcome(status_answer, report_id=report.id)
    if report.photo_count >= max_attempts:
        return Outcome("photo_attempts_over", {"max_attempts": max_attempts}, report.id)
    return None


@functools.cache
def _insert_photo() -> Any:
    table = ReportPhoto.__table__  # type: ignore[attr-defined]
    return sa.insert(table).returning(table.c.id)


def _accept(
    session: Session,
    report: Report,
    shift: Shift,
    incoming: Incoming,
    stored: images.StoredImage,
    flag: duplicates.Flag | None,
) -> Outcome:
    attempt = report.photo_count + 1
    assert report.id is not None
    now = clock.now()
    # The guarded UPDATE first: if the report changed since it was read (a curator, a skip, another
    # photo), nothing is written and the family hears the report's new state.
    changed = session.execute(
        sa.update(Report)
        .where(
            col(Report.id) == report.id,
            col(Report.status).in_([ReportStatus.waiting, ReportStatus.declined]),
            col(Report.photo_count) == report.photo_count,
        )
        .values(
            status=ReportStatus.reviewing,
            photo_count=attempt,
            submitted_at=now,
            updated_at=now,
            # A new attempt after a decline is undecided again (the old decision is in the audit).
            decided_at=None,
            decided_by_id=None,
            decline_reason=None,
        )
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.refresh(report)
        return _refusal(report) or Outcome("photo_already_reviewing", report_id=report.id)
    # The flag was found before the insert (earlier attempts of this report excluded, as
    # flag_photo does), so the row is written once, by a prebuilt INSERT (no ORM flush).
    values = photo_values(
        report.id,
        attempt,
        stored,
        telegram_file_id=incoming.file_id[:255],
        telegram_file_unique_id=incoming.file_unique_id[:64] or None,
        created_at=now,
        **duplicates.flag_values(flag),
    )
    photo_id = session.execute(_insert_photo(), values).scalar_one()
    live.notify(session, live.NEW, report.id)  # open queues hear of it once this commits
    return Outcome(
        "photo_received",
        {"attempt": attempt, "shift": shift},
        report.id,
        photo_id,
        (stored.key, stored.thumb_key),
    )
