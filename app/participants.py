"""Participants and members (product.md §4.6, §7): search, details, test flag, exclusion, privacy.

Deleting a participant removes personal data and photos but keeps the statistics, anonymised.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import audit, clock, consent, media, pause_days, storage
from app.errors import FormErrors, MissingObject
from app.models import (
    Application,
    ApplicationStatus,
    Member,
    MemberPause,
    MemberStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    Shift,
    Staff,
    Task,
    TelegramUpdate,
    UpdateStatus,
)

PAGE_SIZE = 50
DELETED_NAME, DELETED_SURNAME = "Удалённый", "участник"
STATUS_FILTERS = {
    "pending": "заявка ждёт решения",
    "member": "участник смены",
    "excluded": "исключён",
    "declined": "заявка отклонена",
}


@dataclass(frozen=True)
class Filters:
    q: str = ""
    status: str = ""
    shift_id: int | None = None
    blocked: str = ""  # "", "yes", "no"
    test: str = ""  # "", "yes", "no"
    page: int = 1


@dataclass(frozen=True)
class Row:
    id: int
    name: str
    surname: str
    city: str
    phone: str | None
    date_of_birth: date | None
    is_bot_blocked: bool
    is_test: bool


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


PHONE_TEMPLATE = "+7 ddd ddd-dd-dd"
PHONE_SLOTS = [i for i, ch in enumerate(PHONE_TEMPLATE) if ch in "7d"]


def phone_patterns(digits: str) -> list[str]:
    """Every way a run of digits can appear inside a phone stored as "+7 9XX XXX-XX-XX"."""
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    digits = digits[: len(PHONE_SLOTS)]
    patterns = []
    for start in range(len(PHONE_SLOTS) - len(digits) + 1):
        slots = PHONE_SLOTS[start : start + len(digits)]
        chars = list(PHONE_TEMPLATE[slots[0] : slots[-1] + 1])
        for digit, slot in zip(digits, slots, strict=True):
            chars[slot - slots[0]] = digit
        if start == 0 and digits[0] != "7":
            continue  # the first slot is the country code
        patterns.append("".join(chars))
    return patterns


COUNT_CAP = 10_000


def search(session: Session, filters: Filters) -> tuple[list[Row], bool]:
    """One page of participants (newest first) and whether there is a next page."""
    page = max(1, min(filters.page, 10_000))
    rows = session.exec(
        _search_query(filters)
        .order_by(col(Participant.id).desc())
        .limit(PAGE_SIZE + 1)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return [Row(*r) for r in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE


def count(session: Session, filters: Filters) -> int:
    """How many participants match, counted up to COUNT_CAP (the list shows "10 000+")."""
    capped = _search_query(filters).limit(COUNT_CAP).subquery()
    return int(session.exec(select(sa.func.count()).select_from(capped)).one())


def _search_query(filters: Filters) -> Any:
    query = select(  # type: ignore[call-overload]
        Participant.id,
        Participant.name,
        Participant.surname,
        Participant.city,
        Participant.phone,
        Participant.date_of_birth,
        Participant.is_bot_blocked,
        Participant.is_test,
    ).where(col(Participant.deleted_at).is_(None), *_text_terms(filters.q))
    if filters.blocked in ("yes", "no"):
        query = query.where(col(Participant.is_bot_blocked).is_(filters.blocked == "yes"))
    if filters.test in ("yes", "no"):
        query = query.where(col(Participant.is_test).is_(filters.test == "yes"))
    status_term = _status_term(filters.status, filters.shift_id)
    if status_term is not None:
        query = query.where(status_term)
    return query


def _text_terms(text: str) -> list[Any]:
    """A phone fragment, or words each found in the name, surname or city."""
    q = " ".join(text.split())[:100]
    if not q:
        return []
    digits = _digits(q)
    if digits and len(digits) >= 3 and len(digits) >= len(q.replace(" ", "")) - 3:
        # A phone fragment: phones are stored formatted, so turn the digits into the formatted
        # substrings they can be ("912345" → "912 345", "12 345-"…) and match those plainly.
        return [sa.or_(*[col(Participant.phone).like(f"%{p}%") for p in phone_patterns(digits)])]
    columns = (col(Participant.name), col(Participant.surname), col(Participant.city))
    terms = []
    for word in q.split(" "):
        # Both spellings: SQLite's LIKE folds ASCII only, so also match a capitalised word.
        patterns = {f"%{w}%" for w in (word, word.lower(), word.capitalize())}
        terms.append(sa.or_(*[c.like(p) for c in columns for p in patterns]))
    return terms


def _status_term(status: str, shift_id: int | None) -> Any:
    """Participants with an application or a membership in that state (in that shift)."""
    if status in ("pending", "declined"):
        applied = select(Application.id).where(
            col(Application.participant_id) == Participant.id,
            col(Application.status) == ApplicationStatus(status),
        )
        if shift_id is not None:
            applied = applied.where(col(Application.shift_id) == shift_id)
        return applied.exists()
    if status in ("member", "excluded"):
        wanted = MemberStatus.active if status == "member" else MemberStatus.excluded
        member = select(Member.id).where(
            col(Member.participant_id) == Participant.id, col(Member.status) == wanted
        )
        if shift_id is not None:
            member = member.where(col(Member.shift_id) == shift_id)
        return member.exists()
    if shift_id is None:
        return None
    return sa.or_(
        select(Application.id)
        .where(
            col(Application.participant_id) == Participant.id,
            col(Application.shift_id) == shift_id,
        )
        .exists(),
        select(Member.id)
        .where(col(Member.participant_id) == Participant.id, col(Member.shift_id) == shift_id)
        .exists(),
    )


def by_telegram(session: Session, telegram_id: int) -> Participant | None:
    """The (not deleted) participant with this Telegram id."""
    return session.exec(
        select(Participant).where(
            col(Participant.telegram_id) == telegram_id, col(Participant.deleted_at).is_(None)
        )
    ).first()


def get_participant(session: Session, participant_id: int | None) -> Participant | None:
    if participant_id is None:
        return None
    participant = session.get(Participant, participant_id)
    return participant if participant and participant.deleted_at is None else None


@dataclass
class History:
    applications: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)


def history(session: Session, participant_id: int) -> History:
    result = History()
    for application, number, title in session.exec(
        select(Application, Shift.number, Shift.title)
        .join(Shift, col(Shift.id) == Application.shift_id)
        .where(Application.participant_id == participant_id)
        .order_by(col(Application.created_at).desc())
    ).all():
        result.applications.append(
            {"application": application, "shift_number": number, "shift_title": title}
        )
    for member, number, title in session.exec(
        select(Member, Shift.number, Shift.title)
        .join(Shift, col(Shift.id) == Member.shift_id)
        .where(Member.participant_id == participant_id)
        .order_by(col(Member.created_at).desc())
    ).all():
        approved = session.exec(
            select(sa.func.count()).where(
                col(Report.member_id) == member.id, col(Report.status) == ReportStatus.approved
            )
        ).one()
        result.members.append(
            {"member": member, "shift_number": number, "shift_title": title, "balance": approved}
        )
    return result


@dataclass(frozen=True)
class CalendarDay:
    day_number: int
    date: date
    # A ReportStatus value, or "none" (no report: the day has not come or was before joining);
    # "paused" also for a day a pause covers that has no photo (pause_days.shown_status).
    status: str
    task_title: str
    attempts: int
    photos: list[tuple[str, str]]  # (thumbnail key, full-size key) per attempt


STATUS_LABELS = {
    "approved": "принято",
    "declined": "отклонено",
    "skipped": "пропущено",
    "reviewing": "на проверке",
    "waiting": "ждём фото",
    "paused": "пауза",
    "none": "—",
}


def calendar(session: Session, member: Member, shift: Shift) -> list[CalendarDay]:
    reports = {
        r.day_number: r
        for r in session.exec(select(Report).where(Report.member_id == member.id)).all()
    }
    photos: dict[int, list[tuple[str, str]]] = {}
    if reports:
        for report_id, thumb, full in session.exec(
            select(ReportPhoto.report_id, ReportPhoto.thumb_key, ReportPhoto.storage_key)
            .where(col(ReportPhoto.report_id).in_([r.id for r in reports.values()]))
            .order_by(col(ReportPhoto.attempt))
        ).all():
            if thumb:
                photos.setdefault(report_id, []).append((thumb, full))
    titles = dict(
        session.exec(
            select(col(Task.id), col(Task.title)).where(
                col(Task.id).in_({r.task_id for r in reports.values()} or {0})
            )
        ).all()
    )
    paused = pause_days.paused_days(pause_days.of_member(session, member.id))  # type: ignore[arg-type]
    days = []
    for n in range(1, shift.length_days + 1):
        report = reports.get(n)
        day = shift.started_at + timedelta(days=n - 1)
        days.append(
            CalendarDay(
                n,
                day,
                pause_days.shown_status(report.status.value if report else "none", day in paused),
                titles.get(report.task_id, "") if report else "",
                report.photo_count if report else 0,
                photos.get(report.id, []) if report else [],  # type: ignore[arg-type]
            )
        )
    return days


def set_test(
    session: Session, actor: Staff | None, participant: Participant, is_test: bool
) -> None:
    if participant.is_test == is_test:
        return
    audit.record(
        session,
        actor,
        "participant.test",
        "participant",
        participant.id,
        {"is_test": participant.is_test},
        {"is_test": is_test},
    )
    participant.is_test = is_test
    session.add(participant)


def set_member_status(
    session: Session, actor: Staff | None, member: Member, excluded: bool
) -> None:
    """Exclude a member, or return an excluded one (guarded: a second click changes nothing)."""
    old, new = (
        (MemberStatus.active, MemberStatus.excluded)
        if excluded
        else (MemberStatus.excluded, MemberStatus.active)
    )
    result = session.execute(
        sa.update(Member)
        .where(col(Member.id) == member.id, col(Member.status) == old)
        .values(status=new, excluded_at=clock.now() if excluded else None, updated_at=clock.now())
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return
    audit.record(
        session,
        actor,
        "member.exclude" if excluded else "member.return",
        "member",
        member.id,
        {"status": old},
        {"status": new},
    )
    session.refresh(member)


# --- privacy ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


def _row(obj: Any, fields: list[str]) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in fields}


PARTICIPANT_FIELDS = [
    "id",
    "telegram_id",
    "name",
    "surname",
    "date_of_birth",
    "city",
    "phone",
    "is_bot_blocked",
    "is_test",
    "consent_at",
    "consent_version",
    "created_at",
]
CONSENT_FIELDS = ["given_at", "given_by", "version"]
APPLICATION_FIELDS = [
    "shift_id",
    "status",
    "attempts",
    "decline_reason",
    "created_at",
    "decided_at",
]
MEMBER_FIELDS = ["shift_id", "status", "joined_at", "excluded_at"]
REPORT_FIELDS = [
    "day_number",
    "task_date",
    "status",
    "photo_count",
    "submitted_at",
    "decided_at",
    "decline_reason",
]


def export_zip(
    session: Session, actor: Staff | None, participant: Participant, out: IO[bytes]
) -> None:
    """Everything stored about a participant: data.json and the photos, written to `out` as a zip."""
    photo_files: list[tuple[str, str]] = []
    data: dict[str, Any] = {
        "participant": _row(participant, PARTICIPANT_FIELDS),
        "consents": [
            _row(given, CONSENT_FIELDS)
            for given in consent.history(session, participant.id)  # type: ignore[arg-type]
        ],
        "applications": _applications(session, participant),
        "memberships": _memberships(session, participant, photo_files),
    }
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2))
        for name, key in photo_files:
            try:
                body = storage.get(key)
            except (ValueError, MissingObject):
                continue
            archive.writestr(name, body, compress_type=zipfile.ZIP_STORED)
    audit.record(session, actor, "participant.export", "participant", participant.id)


def _applications(session: Session, participant: Participant) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Application, Shift.title)
        .join(Shift, col(Shift.id) == Application.shift_id)
        .where(Application.participant_id == participant.id)
    ).all()
    return [{**_row(a, APPLICATION_FIELDS), "shift_title": title} for a, title in rows]


def _memberships(
    session: Session, participant: Participant, photo_files: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Memberships with their reports; each stored photo's (zip name, key) goes to `photo_files`."""
    result = []
    for member, title in session.exec(
        select(Member, Shift.title)
        .join(Shift, col(Shift.id) == Member.shift_id)
        .where(Member.participant_id == participant.id)
    ).all():
        reports = []
        for report in session.exec(
            select(Report).where(Report.member_id == member.id).order_by(col(Report.day_number))
        ).all():
            names = []
            for photo in session.exec(
                select(ReportPhoto)
                .where(ReportPhoto.report_id == report.id)
                .order_by(col(ReportPhoto.attempt))
            ).all():
                if not photo.storage_key:
                    continue
                name = f"photos/shift{member.shift_id}-day{report.day_number:03d}-attempt{photo.attempt}.jpg"
                names.append(name)
                photo_files.append((name, photo.storage_key))
            reports.append({**_row(report, REPORT_FIELDS), "photos": names})
        paused = [
            _row(p, ["first_day", "last_day", "reason", "cancelled"])
            for p in pause_days.of_member(session, member.id)  # type: ignore[arg-type]
        ]
        result.append(
            {
                **_row(member, MEMBER_FIELDS),
                "shift_title": title,
                "reports": reports,
                "pauses": paused,
            }
        )
    return result


def export_bytes(session: Session, actor: Staff | None, participant: Participant) -> bytes:
    buffer = io.BytesIO()
    export_zip(session, actor, participant, buffer)
    return buffer.getvalue()


def delete_participant(
    session: Session, actor: Staff | None, participant: Participant
) -> list[str]:
    """Remove personal data and photos; keep applications, memberships and reports (statistics).

    The photos' objects are queued for deletion in this transaction (app.media); returns their
    keys, so the caller can remove them right after the commit (the worker would, anyway).
    """
    if participant.deleted_at is not None:
        raise FormErrors({"": "Данные этого участника уже удалены."})
    keys: list[str] = []
    report_ids = (
        select(Report.id)
        .join(Member, col(Member.id) == Report.member_id)
        .where(Member.participant_id == participant.id)
    )
    for key, thumb in session.exec(
        select(ReportPhoto.storage_key, ReportPhoto.thumb_key).where(
            col(ReportPhoto.report_id).in_(report_ids)
        )
    ).all():
        keys += [k for k in (key, thumb) if k]
    media.delete_later(session, keys)
    session.execute(
        sa.update(ReportPhoto)
        .where(col(ReportPhoto.report_id).in_(report_ids))
        .values(
            storage_key="",
            thumb_key="",
            telegram_file_id=None,
            telegram_file_unique_id=None,
            sha256=None,
            phash=None,
            dhash=None,
        )
    )
    # A pause's reason may tell of the child's health.
    session.execute(
        sa.update(MemberPause)
        .where(
            col(MemberPause.member_id).in_(
                select(Member.id).where(Member.participant_id == participant.id)
            )
        )
        .values(reason="")
    )
    # Messages carry the name in their text: every one to this participant or their chat goes,
    # sent or not (a pending one must not go out any more).
    to_them = col(OutgoingMessage.participant_id) == participant.id
    if participant.telegram_id is not None:
        to_them = sa.or_(to_them, col(OutgoingMessage.chat_id) == participant.telegram_id)
    session.execute(sa.delete(OutgoingMessage).where(to_them))
    if participant.telegram_id is not None:
        _delete_stored_updates(session, participant.telegram_id)
    participant.name, participant.surname = DELETED_NAME, DELETED_SURNAME
    participant.phone = None
    participant.telegram_id = None
    participant.date_of_birth = None
    participant.city = ""
    participant.deleted_at = clock.now()
    session.add(participant)
    audit.record(
        session, actor, "participant.delete", "participant", participant.id, None, {"deleted": True}
    )
    return keys


def _delete_stored_updates(session: Session, telegram_id: int) -> None:
    """Delete the stored Telegram updates of this user that still hold their payload (failed ones,
    kept for `lomaya bot replay`; processed ones keep only their id)."""
    candidates = session.execute(
        sa.select(col(TelegramUpdate.update_id), col(TelegramUpdate.payload)).where(
            col(TelegramUpdate.status) != UpdateStatus.processed,
            # A cheap filter in SQL; _mentions decides.
            sa.cast(col(TelegramUpdate.payload), sa.Text).like(f"%{telegram_id}%"),
        )
    ).all()
    ids = [update_id for update_id, payload in candidates if _mentions(payload, telegram_id)]
    if ids:
        session.execute(sa.delete(TelegramUpdate).where(col(TelegramUpdate.update_id).in_(ids)))


USER_FIELDS = ("from", "chat", "user")  # Telegram objects that name a user or a private chat


def _mentions(value: Any, telegram_id: int) -> bool:
    """Whether a Telegram update (any part of it) was sent by or to this user."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in USER_FIELDS and isinstance(inner, dict) and inner.get("id") == telegram_id:
                return True
            if _mentions(inner, telegram_id):
                return True
    elif isinstance(value, list):
        return any(_mentions(inner, telegram_id) for inner in value)
    return False
