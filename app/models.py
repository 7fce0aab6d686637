"""The whole data model (product.md §2) as SQLModel tables.

Rules that must never break are enforced by the database itself: unique and partial-unique
indexes, foreign keys, enum types. Enums are stored by *value* with named PostgreSQL types.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app import clock
from app.db import UTCDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ShiftStatus(enum.StrEnum):
    preparing = "preparing"
    started = "started"
    finishing = "finishing"
    finished = "finished"
    cancelled = "cancelled"


class ApplicationStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    declined = "declined"


class MemberStatus(enum.StrEnum):
    active = "active"
    excluded = "excluded"


class ReportStatus(enum.StrEnum):
    waiting = "waiting"
    reviewing = "reviewing"
    approved = "approved"
    declined = "declined"
    skipped = "skipped"
    paused = "paused"  # a day inside a member's pause: no task, never counts as skipped


class StaffRole(enum.StrEnum):
    administrator = "administrator"
    expert = "expert"


class StaffStatus(enum.StrEnum):
    active = "active"
    blocked = "blocked"


class PhotoFlag(enum.StrEnum):
    exact = "exact"  # the same bytes/file as another photo
    near = "near"  # perceptually similar to another photo


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up (e.g. the family blocked the bot)
    cancelled = "cancelled"  # withdrawn before sending (e.g. an undone decision)


class UpdateStatus(enum.StrEnum):
    received = "received"
    processed = "processed"
    failed = "failed"


class ConsentGiver(enum.StrEnum):
    parent = "parent"  # a parent or another legal representative
    participant = "participant"  # the participant themself


class TokenPurpose(enum.StrEnum):
    invite = "invite"
    password_reset = "password_reset"


def _enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(
        cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


def _now() -> datetime:
    return clock.now()


def created_at_field() -> Any:
    return Field(
        default_factory=_now,
        sa_type=UTCDateTime,
        sa_column_kwargs={"nullable": False, "server_default": sa.text("CURRENT_TIMESTAMP")},
    )


def updated_at_field() -> Any:
    return Field(
        default_factory=_now,
        sa_type=UTCDateTime,
        sa_column_kwargs={
            "nullable": False,
            "server_default": sa.text("CURRENT_TIMESTAMP"),
            "onupdate": _now,
        },
    )


def ts_field(index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


class Shift(SQLModel, table=True):
    __tablename__ = "shift"
    __table_args__ = (
        sa.CheckConstraint("started_at < finished_at", name="dates"),
        sa.Index(
            "uq_shift_one_preparing",
            "status",
            unique=True,
            postgresql_where=sa.text("status = 'preparing'"),
            sqlite_where=sa.text("status = 'preparing'"),
        ),
        sa.Index(
            "uq_shift_one_started",
            "status",
            unique=True,
            postgresql_where=sa.text("status = 'started'"),
            sqlite_where=sa.text("status = 'started'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True, nullable=False)  # "Смена №7"
    title: str = Field(max_length=60, nullable=False)
    status: ShiftStatus = Field(
        default=ShiftStatus.preparing, sa_type=_enum(ShiftStatus, "shift_status"), nullable=False
    )
    started_at: date = Field(nullable=False)
    finished_at: date = Field(nullable=False)
    final_message: str = Field(default="", sa_type=sa.Text, nullable=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    @property
    def length_days(self) -> int:
        return (self.finished_at - self.started_at).days + 1


class Task(SQLModel, table=True):
    __tablename__ = "task"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=150, unique=True, nullable=False)
    image_key: str | None = Field(
        default=None, max_length=255
    )  # relative path under the media folder
    telegram_file_id: str | None = Field(
        default=None, max_length=255
    )  # reused after the first upload
    is_archived: bool = Field(default=False, nullable=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ShiftDay(SQLModel, table=True):
    """The shift plan: which task is given on day N of a shift."""

    __tablename__ = "shift_day"
    __table_args__ = (
        sa.UniqueConstraint("shift_id", "day_number", name="uq_shift_day"),
        sa.CheckConstraint("day_number >= 1", name="day_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", nullable=False, ondelete="CASCADE")
    day_number: int = Field(nullable=False)
    task_id: int = Field(foreign_key="task.id", nullable=False, index=True, ondelete="RESTRICT")


class Participant(SQLModel, table=True):
    """A child or young person, known by their Telegram id."""

    __tablename__ = "participant"
    __table_args__ = (
        # PostgreSQL only (extension pg_trgm): phone fragments are matched with a leading wildcard.
        sa.Index(
            "ix_participant_phone_trgm",
            "phone",
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Nullable so a deleted participant's statistics can stay, anonymised.
    telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger, unique=True)
    name: str = Field(max_length=100, nullable=False)
    surname: str = Field(max_length=100, nullable=False)
    date_of_birth: date | None = Field(default=None)
    city: str = Field(default="", max_length=100, nullable=False)
    phone: str | None = Field(default=None, max_length=20, unique=True)  # "+7 9XX XXX-XX-XX"
    is_bot_blocked: bool = Field(default=False, nullable=False)
    is_test: bool = Field(default=False, nullable=False)
    # The consent in force: a copy of the latest `Consent` row (for lists that show it), written
    # only by app.consent.record in the same transaction as that row.
    consent_at: datetime | None = ts_field()
    consent_version: str | None = Field(default=None, max_length=40)
    deleted_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Consent(SQLModel, table=True):
    """One consent to personal-data processing given in the registration form; every one is kept."""

    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(
        foreign_key="participant.id", nullable=False, index=True, ondelete="CASCADE"
    )
    # None only for consents recorded before the form asked (migrated by 0008).
    given_by: ConsentGiver | None = Field(
        default=None, sa_type=_enum(ConsentGiver, "consent_giver")
    )
    version: str = Field(max_length=40, nullable=False)  # templates/registration/consent/<version>
    given_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Application(SQLModel, table=True):
    """An application to take part in one shift."""

    __tablename__ = "application"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "shift_id", name="uq_application_participant_shift"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", nullable=False, ondelete="CASCADE")
    shift_id: int = Field(foreign_key="shift.id", nullable=False, index=True, ondelete="CASCADE")
    status: ApplicationStatus = Field(
        default=ApplicationStatus.pending,
        sa_type=_enum(ApplicationStatus, "application_status"),
        nullable=False,
    )
    attempts: int = Field(default=1, nullable=False)  # how many times submitted for this shift
    decline_reason: str | None = Field(default=None, sa_type=sa.Text)
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    decided_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Member(SQLModel, table=True):
    """An approved participant of one shift."""

    __tablename__ = "member"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "shift_id", name="uq_member_participant_shift"),
        sa.Index("ix_member_shift_status", "shift_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", nullable=False, ondelete="CASCADE")
    shift_id: int = Field(foreign_key="shift.id", nullable=False, ondelete="CASCADE")
    status: MemberStatus = Field(
        default=MemberStatus.active, sa_type=_enum(MemberStatus, "member_status"), nullable=False
    )
    joined_at: date = Field(nullable=False)
    excluded_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Report(SQLModel, table=True):
    """One member's task for one day of the shift."""

    __tablename__ = "report"
    __table_args__ = (
        sa.UniqueConstraint("member_id", "day_number", name="uq_report_member_day"),
        # The moderation queue: oldest submitted first, keyset on (submitted_at, id); photo_count
        # lets the flagged-only filter find the latest photo without visiting the report rows.
        sa.Index("ix_report_queue", "status", "submitted_at", "id", "photo_count"),
        # The daily job: a shift's reports of one day in one status. Also covers the results
        # counts (per day, status, task, accepted attempt): one index-only pass.
        sa.Index(
            "ix_report_shift_day_status",
            "shift_id",
            "day_number",
            "status",
            "task_id",
            "photo_count",
        ),
        # The results ranking: approved reports per member, index-only.
        sa.Index("ix_report_shift_status_member", "shift_id", "status", "member_id"),
        sa.Index("ix_report_member_status", "member_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", nullable=False, ondelete="CASCADE")
    shift_id: int = Field(foreign_key="shift.id", nullable=False, ondelete="CASCADE")
    task_id: int = Field(foreign_key="task.id", nullable=False, index=True, ondelete="RESTRICT")
    day_number: int = Field(nullable=False)
    task_date: date = Field(nullable=False)  # the local date of the shift day
    status: ReportStatus = Field(
        default=ReportStatus.waiting, sa_type=_enum(ReportStatus, "report_status"), nullable=False
    )
    photo_count: int = Field(
        default=0, nullable=False
    )  # attempts used; the latest photo has this attempt
    submitted_at: datetime | None = ts_field()  # when the latest photo arrived
    decided_at: datetime | None = ts_field()
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    decline_reason: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class MemberPause(SQLModel, table=True):
    """A pause of one member for a range of report days (illness, holidays): no task messages or
    reminders on those days, and they never count toward exclusion (app.pauses)."""

    __tablename__ = "member_pause"
    __table_args__ = (
        sa.CheckConstraint("first_day <= last_day", name="days"),
        sa.Index("ix_member_pause_member_days", "member_id", "first_day", "last_day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", nullable=False, ondelete="CASCADE")
    first_day: date = Field(nullable=False)  # report days, inclusive
    last_day: date = Field(nullable=False)  # shortened when the pause is ended early
    reason: str = Field(max_length=300, nullable=False)  # for staff; not sent to the family
    created_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    # Ended early (resumed) or withdrawn before its first day (cancelled: it covers no day).
    ended_at: datetime | None = ts_field()
    ended_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    cancelled: bool = Field(default=False, nullable=False)


def phash_bands_sql(column: str = "phash") -> str:
    """The pHash cut into 9 bands (8 × 7 bits + 8 bits), each tagged with its band number.

    Two hashes within Hamming distance 8 share at least one band exactly (pigeonhole), so a GIN
    index on this array finds near-duplicate candidates without scanning a shift's photos.
    app.duplicates.phash_bands computes the same values in Python.
    """
    parts = []
    for band in range(9):
        mask = 255 if band == 8 else 127
        parts.append(f"((({column} >> {band * 7}) & {mask}) + {band * 256})::integer")
    return "(ARRAY[" + ", ".join(parts) + "])"


class ReportPhoto(SQLModel, table=True):
    """One submitted photo (an attempt). All attempts are kept."""

    __tablename__ = "report_photo"
    __table_args__ = (
        sa.UniqueConstraint("report_id", "attempt", name="uq_report_photo_attempt"),
        # PostgreSQL only: near-duplicate candidates by pHash band (see phash_bands_sql).
        sa.Index(
            "ix_report_photo_phash_bands", sa.text(phash_bands_sql()), postgresql_using="gin"
        ).ddl_if(dialect="postgresql"),
        # The flagged queue: the few photos with a duplicate flag.
        sa.Index(
            "ix_report_photo_flagged",
            "report_id",
            "attempt",
            postgresql_where=sa.text("flag IS NOT NULL"),
            sqlite_where=sa.text("flag IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", nullable=False, ondelete="CASCADE")
    attempt: int = Field(nullable=False)
    storage_key: str = Field(max_length=255, nullable=False)  # relative path under the media folder
    thumb_key: str = Field(max_length=255, nullable=False)
    width: int | None = Field(default=None)
    height: int | None = Field(default=None)
    size_bytes: int | None = Field(default=None)
    sha256: str | None = Field(default=None, max_length=64, index=True)
    # 64-bit perceptual hashes stored as signed BIGINT; None until computed.
    phash: int | None = Field(default=None, sa_type=sa.BigInteger)
    dhash: int | None = Field(default=None, sa_type=sa.BigInteger)
    telegram_file_id: str | None = Field(default=None, max_length=255)
    telegram_file_unique_id: str | None = Field(default=None, max_length=64, index=True)
    flag: PhotoFlag | None = Field(default=None, sa_type=_enum(PhotoFlag, "photo_flag"))
    flag_photo_id: int | None = Field(
        default=None, foreign_key="report_photo.id", ondelete="SET NULL"
    )
    flag_distance: int | None = Field(default=None)
    flags_checked: bool = Field(default=False, nullable=False)
    created_at: datetime = created_at_field()


class ReportClaim(SQLModel, table=True):
    """A card on a curator's screen: other curators' queues skip it until `expires_at` (a soft,
    short lease renewed while the card is shown; see app.claims)."""

    __tablename__ = "report_claim"

    report_id: int = Field(foreign_key="report.id", primary_key=True, ondelete="CASCADE")
    staff_id: int = Field(foreign_key="staff.id", nullable=False, index=True, ondelete="CASCADE")
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class LiveEvent(SQLModel, table=True):
    """SQLite only (PostgreSQL uses NOTIFY): a queue change for open live streams, written in the
    transaction of the change and polled by each process (app.live). Kept for minutes."""

    __tablename__ = "live_event"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10, nullable=False)
    report_id: int = Field(nullable=False)
    at: datetime = created_at_field()


class Staff(SQLModel, table=True):
    """A staff account of the admin site (an administrator or an expert)."""

    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, nullable=False)  # stored lower-case
    name: str = Field(max_length=100, nullable=False)
    surname: str = Field(default="", max_length=100, nullable=False)
    role: StaffRole = Field(
        default=StaffRole.expert, sa_type=_enum(StaffRole, "staff_role"), nullable=False
    )
    status: StaffStatus = Field(
        default=StaffStatus.active, sa_type=_enum(StaffStatus, "staff_status"), nullable=False
    )
    password_hash: str = Field(default="", max_length=255, nullable=False)
    last_login_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    @property
    def full_name(self) -> str:
        return f"{self.name} {self.surname}".strip()

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.administrator


class StaffSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored, so a
    copied cookie dies with the row: at logout, when the account is blocked, its password or role
    changes (revoked_at), or 14 days after it was last used — the cookie's own lifetime."""

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    staff_id: int = Field(foreign_key="staff.id", nullable=False, index=True, ondelete="CASCADE")
    created_at: datetime = created_at_field()
    last_seen_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = ts_field()


class StaffToken(SQLModel, table=True):
    """A one-time link: an invitation to create an account, or a password reset."""

    __tablename__ = "staff_token"

    id: int | None = Field(default=None, primary_key=True)
    purpose: TokenPurpose = Field(sa_type=_enum(TokenPurpose, "token_purpose"), nullable=False)
    token_hash: str = Field(max_length=64, unique=True, nullable=False)  # SHA-256 of the secret
    email: str = Field(max_length=254, nullable=False)
    name: str = Field(default="", max_length=100, nullable=False)
    surname: str = Field(default="", max_length=100, nullable=False)
    role: StaffRole = Field(
        default=StaffRole.expert, sa_type=_enum(StaffRole, "staff_role"), nullable=False
    )
    staff_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="CASCADE")
    created_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = ts_field()
    revoked_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, when, with the state before and after."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_object", "object_type", "object_id"),
        # One action over a time range: the pace of the week, the log filtered by action.
        sa.Index("ix_audit_action_at", "action", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at_field()
    actor_id: int | None = Field(
        default=None, foreign_key="staff.id", index=True, ondelete="SET NULL"
    )
    action: str = Field(max_length=60, nullable=False)  # e.g. "report.approve"
    object_type: str = Field(max_length=40, nullable=False)
    object_id: int | None = Field(default=None)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class OutgoingMessage(SQLModel, table=True):
    """The outbox: a message the bot must send, written with the change that causes it."""

    __tablename__ = "outgoing_message"
    __table_args__ = (sa.Index("ix_outgoing_due", "status", "send_after", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True, nullable=False)  # one event → one message
    chat_id: int = Field(sa_type=sa.BigInteger, nullable=False, index=True)
    participant_id: int | None = Field(
        default=None, foreign_key="participant.id", ondelete="SET NULL"
    )
    kind: str = Field(max_length=40, nullable=False)  # e.g. "report_approved"
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    status: OutboxStatus = Field(
        default=OutboxStatus.pending, sa_type=_enum(OutboxStatus, "outbox_status"), nullable=False
    )
    send_after: datetime = (
        created_at_field()
    )  # not sendable before (e.g. the end of an undo window)
    attempts: int = Field(default=0, nullable=False)
    claimed_until: datetime | None = ts_field()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    sent_at: datetime | None = ts_field()
    created_at: datetime = created_at_field()


class TelegramUpdate(SQLModel, table=True):
    """A received Telegram update, stored first so a redelivery is never processed twice."""

    __tablename__ = "telegram_update"
    __table_args__ = (
        # The few failed updates (health, the staff page), not every update ever received.
        sa.Index(
            "ix_telegram_update_failed",
            "update_id",
            postgresql_where=sa.text("status = 'failed'"),
            sqlite_where=sa.text("status = 'failed'"),
        ),
    )

    update_id: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    status: UpdateStatus = Field(
        default=UpdateStatus.received, sa_type=_enum(UpdateStatus, "update_status"), nullable=False
    )
    error: str | None = Field(default=None, sa_type=sa.Text)
    received_at: datetime = created_at_field()
    processed_at: datetime | None = ts_field()


class JobRun(SQLModel, table=True):
    """One run of a scheduled job for one day; the unique key makes each (job, day) run once."""

    __tablename__ = "job_run"
    __table_args__ = (sa.UniqueConstraint("job", "day", name="uq_job_run_job_day"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=40, nullable=False)
    day: date = Field(nullable=False)
    started_at: datetime = created_at_field()
    finished_at: datetime | None = ts_field()
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)


class LoginThrottle(SQLModel, table=True):
    """Recent login attempts of one e-mail or one client address (`key`, hashed), and the moment
    the latest of them was given (`slot_us`, µs since the Unix epoch: plain integers, so one
    INSERT … ON CONFLICT DO UPDATE computes the next moment on either database). See
    app.accounts.reserve_attempt."""

    __tablename__ = "login_throttle"

    key: str = Field(max_length=80, primary_key=True)  # "email:<sha256>" or "ip:<sha256>"
    attempts: int = Field(nullable=False)
    slot_us: int = Field(sa_type=sa.BigInteger, nullable=False, index=True)


class MediaDeletion(SQLModel, table=True):
    """An object to remove from media storage, queued in the transaction that dropped its row, so
    a crash between the commit and the removal cannot leave it behind (app.media)."""

    __tablename__ = "media_deletion"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True, nullable=False)
    attempts: int = Field(default=0, nullable=False)
    claimed_until: datetime | None = ts_field()  # a worker's lease; due again after it
    last_error: str | None = Field(default=None, max_length=100)  # an error class, never a message
    created_at: datetime = created_at_field()
