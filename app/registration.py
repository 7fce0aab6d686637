"""Registration of families for a shift (product.md §3.1–3.2).

`validate` checks the form fields; `submit` applies the rules: the registration window, one application
per shift, re-applications after a decline (up to `max_requests_per_shift` submissions), editing data
never demotes an approved member, a phone owned by someone else is refused with a clear message.
Takes a session, never commits, never calls Telegram (the confirmation goes into the outbox).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers
from sqlmodel import Session, col, select

from app import audit, clock, outbox, participants
from app.models import Application, ApplicationStatus, Participant, Shift, ShiftStatus
from app.settings import get_settings
from app.text import age

CONSENT_VERSION = "2026-1"
FIELDS = ("name", "surname", "date_of_birth", "city", "phone", "consent")
NAME_RE = re.compile(r"^[А-ЯЁа-яё]+(?:-[А-ЯЁа-яё]+)*$")
CITY_RE = re.compile(r"^[А-ЯЁа-яё]+(?:[ -][А-ЯЁа-яё]+)*$")


@dataclass
class Validated:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _spaces(value: str) -> str:
    return " ".join(value.split())


def _name(raw: str, label: str) -> tuple[str | None, str | None]:
    value = _spaces(raw).replace(" - ", "-").replace(" -", "-").replace("- ", "-")
    if not value:
        return None, f"Напишите {label}."
    if len(value) > 100:
        return None, "Слишком длинно: не больше 100 букв."
    if not NAME_RE.match(value):
        return None, "Только русские буквы; двойное можно через дефис, например «Анна-Мария»."
    if len(value.replace("-", "")) < 2:
        return None, "Нужно хотя бы две буквы."
    parts = [p[:1].upper() + p[1:] for p in value.split("-")]
    return "-".join(parts), None


def _city(raw: str) -> tuple[str | None, str | None]:
    value = _spaces(raw)
    if not value:
        return None, "Напишите город."
    if len(value) > 100:
        return None, "Слишком длинно: не больше 100 букв."
    if not CITY_RE.match(value):
        return None, "Русскими буквами, можно пробел и дефис, например «Ростов-на-Дону»."
    return value, None


def _birth(raw: str) -> tuple[date | None, str | None]:
    value = raw.strip()
    if not value:
        return None, "Укажите дату рождения."
    born: date | None = None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            born = datetime.strptime(value, fmt).date()
            break
        except ValueError:
            continue
    if born is None:
        return None, "Дата в виде ДД.ММ.ГГГГ, например 01.05.2015."
    today = clock.local_today()
    if born > today:
        return None, "Дата рождения не может быть в будущем."
    years = age(born, today) or 0
    min_age = get_settings().min_age
    if years < min_age:
        return None, f"Участвовать можно с {min_age} лет."
    if years > 120:
        return None, "Проверьте год рождения."
    return born, None


def normalise_phone(raw: str) -> str | None:
    """A Russian mobile number as "+7 9XX XXX-XX-XX", or None."""
    digits = re.sub(r"[^\d+]", "", raw.strip())
    if not digits or len(digits) > 16:
        return None
    if len(digits) == 11 and digits.startswith("8"):
        digits = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(digits, "RU")
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    if (
        number.country_code != 7
        or not phonenumbers.is_valid_number_for_region(number, "RU")
        or phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE
        or len(national) != 10
        or not national.startswith("9")
    ):
        return None
    n = national
    return f"+7 {n[0:3]} {n[3:6]}-{n[6:8]}-{n[8:10]}"


def validate(form: dict[str, str]) -> Validated:
    result = Validated()
    checks = {
        "name": lambda v: _name(v, "имя"),
        "surname": lambda v: _name(v, "фамилию"),
        "date_of_birth": _birth,
        "city": _city,
    }
    for key, check in checks.items():
        value, error = check(str(form.get(key, "") or ""))
        if error:
            result.errors[key] = error
        else:
            result.values[key] = value
    raw_phone = str(form.get("phone", "") or "")
    if not raw_phone.strip():
        result.errors["phone"] = "Укажите номер телефона."
    else:
        phone = normalise_phone(raw_phone)
        if phone is None:
            result.errors["phone"] = "Нужен российский мобильный номер, например +7 912 345-67-89."
        else:
            result.values["phone"] = phone
    if str(form.get("consent", "")).lower() not in {"on", "true", "1", "yes"}:
        result.errors["consent"] = "Без согласия на обработку данных мы не можем записать вас."
    return result


# --- the window ------------------------------------------------------------------------------------


def open_shift(session: Session, today: date | None = None) -> Shift | None:
    """The shift one can apply to now: the started one during its first days, else a preparing one."""
    today = today or clock.local_today()
    join_days = get_settings().join_days_after_start
    started = session.exec(select(Shift).where(col(Shift.status) == ShiftStatus.started)).first()
    if started is not None and 0 <= (today - started.started_at).days < join_days:
        return started
    return session.exec(select(Shift).where(col(Shift.status) == ShiftStatus.preparing)).first()


def prefill(session: Session, telegram_id: int) -> dict[str, str]:
    """The returning participant's data for the form (empty for a newcomer)."""
    p = participants.by_telegram(session, telegram_id)
    if p is None:
        return {}
    return {
        "name": p.name,
        "surname": p.surname,
        "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else "",
        "city": p.city,
        "phone": p.phone or "",
    }


# --- submit ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    message: str
    errors: dict[str, str] = field(default_factory=dict)
    kind: str = ""  # "new", "reapplied", "pending", "approved" on success


MESSAGES = {
    "new": "Спасибо! Заявка отправлена. Ответ придёт в чат с ботом.",
    "reapplied": "Спасибо! Заявка отправлена ещё раз. Ответ придёт в чат с ботом.",
    "pending": "Данные обновлены. Заявка уже на рассмотрении — ответ придёт в чат.",
    "approved": "Данные обновлены. Вы по-прежнему участник смены.",
}
CHECK_FORM = "Проверьте, пожалуйста, поля формы."


def submit(session: Session, telegram_id: int, form: dict[str, str]) -> Outcome:
    """Validate and apply a registration; on failure nothing is written."""
    checked = validate(form)
    if checked.errors:
        return Outcome(False, CHECK_FORM, checked.errors)
    shift = open_shift(session)
    if shift is None:
        return Outcome(
            False, "Сейчас запись закрыта. Мы напишем в боте, когда откроется новая смена."
        )
    participant = participants.by_telegram(session, telegram_id)
    application = _application(session, participant, shift)
    refusal = _refusal(session, participant, application, checked.values["phone"])
    if refusal is not None:
        return refusal
    now = clock.now()
    participant = _save_participant(session, participant, telegram_id, checked.values, now)
    application, kind = _apply(session, participant, application, shift, now)
    _confirm(session, participant, application, shift, kind, now)
    return Outcome(True, MESSAGES[kind], kind=kind)


def _application(
    session: Session, participant: Participant | None, shift: Shift
) -> Application | None:
    """The participant's application to this shift, locked for the update (None for a newcomer)."""
    if participant is None:
        return None
    return session.exec(
        select(Application)
        .where(
            col(Application.participant_id) == participant.id,
            col(Application.shift_id) == shift.id,
        )
        .with_for_update()
    ).first()


def _refusal(
    session: Session,
    participant: Participant | None,
    application: Application | None,
    phone: str,
) -> Outcome | None:
    """Why this registration cannot be taken (someone else's phone, no attempts left), or None."""
    owner = session.exec(select(Participant).where(col(Participant.phone) == phone)).first()
    if owner is not None and (participant is None or owner.id != participant.id):
        return Outcome(
            False,
            CHECK_FORM,
            {
                "phone": "Этот номер уже записан у другого участника. Если номер ваш — "
                "напишите куратору, мы поможем."
            },
        )
    limit = get_settings().max_requests_per_shift
    if (
        application is not None
        and application.status == ApplicationStatus.declined
        and application.attempts >= limit
    ):
        return Outcome(
            False,
            f"В эту смену можно подать заявку не больше {limit} раз. "
            "Будем рады видеть вас в следующей смене!",
        )
    return None


def _save_participant(
    session: Session,
    participant: Participant | None,
    telegram_id: int,
    values: dict[str, Any],
    now: datetime,
) -> Participant:
    """Create or update the participant with the form's values and the consent just given."""
    if participant is None:
        participant = Participant(telegram_id=telegram_id, name="", surname="")
    participant.name = values["name"]
    participant.surname = values["surname"]
    participant.date_of_birth = values["date_of_birth"]
    participant.city = values["city"]
    participant.phone = values["phone"]
    participant.consent_at = now
    participant.consent_version = CONSENT_VERSION
    participant.is_bot_blocked = False
    participant.updated_at = now
    session.add(participant)
    session.flush()
    return participant


def _apply(
    session: Session,
    participant: Participant,
    application: Application | None,
    shift: Shift,
    now: datetime,
) -> tuple[Application, str]:
    """A new application, a re-application after a decline, or the data updated with the status
    kept (never demoting an approved member). Returns the application and what happened."""
    assert participant.id is not None and shift.id is not None
    if application is None:
        application = Application(participant_id=participant.id, shift_id=shift.id)
        kind = "new"
    elif application.status == ApplicationStatus.declined:
        application.status = ApplicationStatus.pending
        application.attempts += 1
        application.decline_reason = None
        application.decided_at = None
        application.decided_by_id = None
        application.updated_at = now
        kind = "reapplied"
    else:
        return application, application.status.value  # "pending" or "approved"
    session.add(application)
    session.flush()
    assert application.id is not None
    audit.record(
        session,
        None,
        "application.submit",
        "application",
        application.id,
        after={"status": application.status, "attempts": application.attempts},
    )
    return application, kind


def _confirm(
    session: Session,
    participant: Participant,
    application: Application,
    shift: Shift,
    kind: str,
    now: datetime,
) -> None:
    """The bot's confirmation in the chat."""
    text_kind = {
        "new": "registration_received",
        "reapplied": "registration_received",
        "pending": "registration_updated",
        "approved": "registration_updated_member",
    }[kind]
    key = (
        f"registration:{application.id}:{application.attempts}"
        if kind in ("new", "reapplied")
        else f"registration-edit:{participant.id}:{int(now.timestamp() * 1000)}"
    )
    outbox.enqueue(
        session, participant, text_kind, key, context={"shift": shift, "settings": get_settings()}
    )
