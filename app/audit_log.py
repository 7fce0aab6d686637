"""The audit log as people read it (product.md §4.9): who did what, about whom, when, and what
changed — in Russian words, newest first.

`page()` reads one page of events (keyset on (at, id), newest first) and names the objects they are
about with one statement per kind of object on the page, never one per event. Writing events is
`app.audit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app import clock, text
from app.models import (
    Application,
    AuditEvent,
    Member,
    Participant,
    Report,
    Shift,
    Staff,
    StaffToken,
    Task,
)

PAGE_SIZE = 50
MAX_TEXT = 80

OBJECT_TYPES = {
    "report": "фото",
    "application": "заявки",
    "shift": "смены",
    "task": "задания",
    "participant": "участники",
    "member": "участники смен",
    "staff": "сотрудники",
    "staff_token": "ссылки-приглашения",
}

# What happened, as a phrase after the person's name ("Анна Соколова приняла фото" reads wrong for
# half the team, so the verb keeps both endings, as elsewhere on the site: "принял(а)").
ACTIONS = {
    "report.approve": "принял(а) фото",
    "report.decline": "отклонил(а) фото",
    "report.undo": "отменил(а) своё решение по фото",
    "application.approve": "одобрил(а) заявку",
    "application.decline": "отклонил(а) заявку",
    "application.undo": "отменил(а) своё решение по заявке",
    "application.submit": "подал(а) заявку",
    "shift.create": "создал(а) смену",
    "shift.update": "изменил(а) смену",
    "shift.start": "запустил(а) смену",
    "shift.cancel": "отменил(а) смену",
    "shift.finish": "завершил(а) смену",
    "shift.final_message": "изменил(а) финальное сообщение смены",
    "plan.set_day": "поменял(а) задание дня в плане",
    "plan.regenerate": "составил(а) план заново",
    "task.create": "добавил(а) задание",
    "task.update": "изменил(а) задание",
    "task.archive": "отправил(а) задание в архив",
    "task.unarchive": "вернул(а) задание из архива",
    "task.delete": "удалил(а) задание",
    "participant.test": "поменял(а) отметку «тестовый»",
    "participant.export": "скачал(а) данные участника",
    "participant.delete": "удалил(а) данные участника",
    "member.exclude": "исключил(а) из смены",
    "member.return": "вернул(а) в смену",
    "member.pause": "поставил(а) паузу",
    "member.pause_cancel": "отменил(а) паузу",
    "member.resume": "закончил(а) паузу",
    "staff.invite": "пригласил(а) сотрудника",
    "staff.create": "принял(а) приглашение",
    "staff.token_revoke": "отозвал(а) ссылку",
    "staff.password_reset_link": "выдал(а) ссылку для нового пароля",
    "staff.password_reset": "задал(а) новый пароль по ссылке",
    "staff.password_change": "сменил(а) пароль",
    "staff.role": "поменял(а) роль",
    "staff.block": "заблокировал(а) сотрудника",
    "staff.unblock": "разблокировал(а) сотрудника",
    "staff.profile": "поменял(а) имя в профиле",
}

FIELDS = {
    "status": "статус",
    "title": "название",
    "started_at": "начало",
    "finished_at": "окончание",
    "final_message": "финальное сообщение",
    "role": "роль",
    "is_archived": "в архиве",
    "is_test": "тестовый",
    "name": "имя",
    "surname": "фамилия",
    "email": "почта",
    "day_number": "день",
    "task_id": "задание",
    "attempts": "попытка",
    "from_day": "с дня",
    "to_day": "по день",
    "number": "номер",
    "first_day": "первый день",
    "last_day": "последний день",
    "ended_on": "закончена",
}
# Shown in the phrase instead ("отклонил(а) фото: размыто"), or not worth a line.
HIDDEN = {
    "decline_reason",
    "reason",
    "image_key",
    "token_id",
    "revoked",
    "deleted",
    "pause_id",
    "cancelled",
}
VALUES = {
    "reviewing": "на проверке",
    "approved": "принято",
    "declined": "отклонено",
    "waiting": "ждёт фото",
    "skipped": "пропущено",
    "paused": "пауза",
    "pending": "ждёт решения",
    "active": "активен",
    "excluded": "исключён",
    "blocked": "заблокирован",
    "preparing": "готовится",
    "started": "идёт",
    "finishing": "завершается",
    "finished": "завершена",
    "cancelled": "отменена",
    "administrator": "администратор",
    "expert": "эксперт",
}


@dataclass
class Subject:
    """What an event is about: words and, when it still exists, a link."""

    label: str
    href: str | None = None


@dataclass
class Event:
    id: int
    at: datetime
    who: str
    what: str
    subject: Subject
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (field, before, after)


@dataclass
class Filters:
    actor_id: int | None = None
    object_type: str = ""
    day: date | None = None

    def query(self) -> dict[str, str]:
        out = {}
        if self.actor_id is not None:
            out["actor"] = str(self.actor_id)
        if self.object_type:
            out["type"] = self.object_type
        if self.day is not None:
            out["date"] = self.day.strftime("%d.%m.%Y")
        return out

    @property
    def active(self) -> int:
        return sum(1 for v in (self.actor_id, self.object_type or None, self.day) if v is not None)


def parse_filters(params: Any) -> Filters:
    object_type = str(params.get("type", "") or "")
    return Filters(
        actor_id=text.to_int(params.get("actor")),
        object_type=object_type if object_type in OBJECT_TYPES else "",
        day=text.parse_day(params.get("date")),
    )


def encode_cursor(at: datetime, event_id: int) -> str:
    return f"{int(at.timestamp() * 1_000_000)}-{event_id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    try:
        micros, event_id = str(value or "").split("-", 1)
        return datetime.fromtimestamp(int(micros) / 1_000_000, tz=clock.now().tzinfo), int(event_id)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class Page:
    events: list[Event]
    next_cursor: str | None


def page(session: Session, filters: Filters, after: str | None = None) -> Page:
    """One page of events, newest first (by when they happened, not by insertion order)."""
    query = sa.select(
        col(AuditEvent.id),
        col(AuditEvent.at),
        col(AuditEvent.actor_id),
        col(AuditEvent.action),
        col(AuditEvent.object_type),
        col(AuditEvent.object_id),
        col(AuditEvent.before),
        col(AuditEvent.after),
    )
    if filters.actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == filters.actor_id)
    if filters.object_type:
        query = query.where(col(AuditEvent.object_type) == filters.object_type)
    if filters.day is not None:
        start = clock.local_midnight(filters.day)
        query = query.where(
            col(AuditEvent.at) >= start, col(AuditEvent.at) < start + timedelta(days=1)
        )
    cursor = decode_cursor(after)
    if cursor is not None:
        query = query.where(sa.tuple_(col(AuditEvent.at), col(AuditEvent.id)) < sa.tuple_(*cursor))
    rows = session.execute(
        query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(PAGE_SIZE + 1)
    ).all()
    shown = rows[:PAGE_SIZE]
    people = staff_names(session)
    subjects = _subjects(session, shown)
    events = [
        Event(
            id=r.id,
            at=r.at,
            who=_who(r, people),
            what=_what(r),
            subject=subjects.get((r.object_type, r.object_id))
            or Subject(_fallback(r.object_type, r.object_id)),
            changes=_changes(r.before, r.after, r.action),
        )
        for r in shown
    ]
    more = len(rows) > PAGE_SIZE
    return Page(events, encode_cursor(shown[-1].at, shown[-1].id) if more else None)


def staff_names(session: Session) -> dict[int, str]:
    return {
        i: f"{n} {s}".strip()
        for i, n, s in session.execute(
            sa.select(col(Staff.id), col(Staff.name), col(Staff.surname))
        ).all()
    }


def _who(row: Any, people: dict[int, str]) -> str:
    if row.actor_id is not None:
        return people.get(row.actor_id, "бывший сотрудник")
    if row.action == "application.submit":
        return "Семья через бота"
    return "Система"


def _reason(row: Any) -> str:
    after = row.after or {}
    return str(after.get("decline_reason") or after.get("reason") or "")


def _what(row: Any) -> str:
    phrase = ACTIONS.get(row.action) or row.action.replace("_", " ").replace(".", ": ")
    reason = _reason(row)
    return f"{phrase}: {_short(reason)}" if reason else phrase


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1].rstrip() + "…"


def _value(name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, str):
        if value in VALUES:
            return VALUES[value]
        if name in ("started_at", "finished_at", "first_day", "last_day", "ended_on"):
            try:
                return text.fmt_date(date.fromisoformat(value[:10]))
            except ValueError:
                pass
        return f"«{_short(value)}»" if name in ("title", "final_message") else _short(value)
    return str(value)


def _changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None, action: str
) -> list[tuple[str, str, str]]:
    """Fields that changed, as (what, before, after) in words. A decision's status is already in
    its phrase ("принял(а) фото"), so only other fields are listed for decisions."""
    before, after = before or {}, after or {}
    decision = action.split(".")[0] in ("report", "application")
    out = []
    for name in [*before, *(k for k in after if k not in before)]:
        if name in HIDDEN or (decision and name == "status"):
            continue
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        out.append(
            (
                FIELDS.get(name, name),
                _value(name, old) if name in before else "",
                _value(name, new) if name in after else "",
            )
        )
    return out


def _fallback(object_type: str, object_id: int | None) -> str:
    noun = {
        "report": "фото",
        "application": "заявка",
        "shift": "смена",
        "task": "задание",
        "participant": "участник",
        "member": "участник смены",
        "staff": "сотрудник",
        "staff_token": "ссылка",
    }.get(object_type, object_type)
    return f"{noun} (удалено)" if object_id else noun


def _short_name(name: str, surname: str) -> str:
    return f"{name} {surname[:1]}." if surname else name


def _subjects(session: Session, rows: Sequence[Any]) -> dict[tuple[str, int], Subject]:
    """Names and links of the objects of a page of events: one statement per kind of object."""
    ids: dict[str, set[int]] = {}
    for r in rows:
        if r.object_id is not None:
            ids.setdefault(r.object_type, set()).add(r.object_id)
    found: dict[tuple[str, int], Subject] = {}
    for kind, wanted in ids.items():
        lookup = _LOOKUPS.get(kind)
        if lookup is not None:
            for object_id, subject in lookup(session, wanted):
                found[(kind, object_id)] = subject
    return found


def _reports(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(
            col(Report.id), col(Report.day_number), col(Participant.name), col(Participant.surname)
        )
        .join(Member, col(Member.id) == col(Report.member_id))
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .where(col(Report.id).in_(ids))
    ).all()
    return [(i, Subject(f"{_short_name(n, s)}, день {d}", f"/reports/{i}")) for i, d, n, s in rows]


def _applications(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(
            col(Application.id),
            col(Participant.id),
            col(Participant.name),
            col(Participant.surname),
            col(Shift.number),
        )
        .join(Participant, col(Participant.id) == col(Application.participant_id))
        .join(Shift, col(Shift.id) == col(Application.shift_id))
        .where(col(Application.id).in_(ids))
    ).all()
    return [
        (i, Subject(f"{n} {s}, смена №{number}", f"/participants/{p}"))
        for i, p, n, s, number in rows
    ]


def _members(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(
            col(Member.id), col(Participant.name), col(Participant.surname), col(Shift.number)
        )
        .join(Participant, col(Participant.id) == col(Member.participant_id))
        .join(Shift, col(Shift.id) == col(Member.shift_id))
        .where(col(Member.id).in_(ids))
    ).all()
    return [(i, Subject(f"{n} {s}, смена №{number}", f"/members/{i}")) for i, n, s, number in rows]


def _participants(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(col(Participant.id), col(Participant.name), col(Participant.surname)).where(
            col(Participant.id).in_(ids)
        )
    ).all()
    return [(i, Subject(f"{n} {s}", f"/participants/{i}")) for i, n, s in rows]


def _shifts(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(col(Shift.id), col(Shift.number), col(Shift.title)).where(col(Shift.id).in_(ids))
    ).all()
    return [(i, Subject(f"смена №{n} «{t}»", f"/shifts/{i}")) for i, n, t in rows]


def _tasks(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(col(Task.id), col(Task.title)).where(col(Task.id).in_(ids))
    ).all()
    return [(i, Subject(f"«{t}»", f"/tasks/{i}")) for i, t in rows]


def _staff(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(col(Staff.id), col(Staff.name), col(Staff.surname)).where(col(Staff.id).in_(ids))
    ).all()
    return [(i, Subject(f"{n} {s}".strip(), "/staff")) for i, n, s in rows]


def _tokens(session: Session, ids: set[int]) -> list[tuple[int, Subject]]:
    rows = session.execute(
        sa.select(col(StaffToken.id), col(StaffToken.email)).where(col(StaffToken.id).in_(ids))
    ).all()
    return [(i, Subject(f"ссылка для {e}", "/staff")) for i, e in rows]


_LOOKUPS: dict[str, Callable[[Session, set[int]], list[tuple[int, Subject]]]] = {
    "report": _reports,
    "application": _applications,
    "member": _members,
    "participant": _participants,
    "shift": _shifts,
    "task": _tasks,
    "staff": _staff,
    "staff_token": _tokens,
}
