"""Shifts and their plans (product.md §2, §4.4): creation rules, edits by status, start, cancel.

Every function takes a session, decides, writes (with an audit event) and never commits.
Rule violations raise `FormErrors` with Russian messages keyed by form field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import audit, clock, final_message, outbox
from app.errors import FormErrors
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
    Task,
)
from app.settings import get_settings

TITLE_MIN, TITLE_MAX = 3, 60
RUNNING = (ShiftStatus.started, ShiftStatus.finishing)
STATUS_LABELS = {
    ShiftStatus.preparing: "готовится",
    ShiftStatus.started: "идёт",
    ShiftStatus.finishing: "завершается",
    ShiftStatus.finished: "завершена",
    ShiftStatus.cancelled: "отменена",
}
CANCEL_REASON = "Смена отменена."


def parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def day_date(shift: Shift, day_number: int) -> date:
    return shift.started_at + timedelta(days=day_number - 1)


def _snapshot(shift: Shift) -> dict[str, Any]:
    return {
        "title": shift.title,
        "status": shift.status,
        "started_at": shift.started_at,
        "finished_at": shift.finished_at,
    }


def _check_title(title: str, errors: dict[str, str]) -> None:
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        errors["title"] = f"Название смены — от {TITLE_MIN} до {TITLE_MAX} символов."


def _check_dates(
    session: Session,
    start: date | None,
    end: date | None,
    errors: dict[str, str],
    *,
    shift_id: int | None,
    check_start: bool,
) -> None:
    today = clock.local_today()
    if start is None:
        errors["started_at"] = "Укажите дату начала."
    if end is None:
        errors["finished_at"] = "Укажите дату окончания."
    if start is None or end is None:
        return
    months = get_settings().max_shift_months
    if end <= start:
        errors["finished_at"] = "Дата окончания должна быть позже даты начала."
    elif end >= add_months(start, months):
        errors["finished_at"] = (
            f"Смена длится не больше {months} месяцев: закончите её до {add_months(start, months).strftime('%d.%m.%Y')}."
        )
    if check_start:
        if start < today:
            errors["started_at"] = "Дата начала уже прошла. Выберите сегодняшний день или позже."
        else:
            running = session.exec(
                select(col(Shift.number), col(Shift.finished_at)).where(
                    col(Shift.status).in_(RUNNING), col(Shift.id) != (shift_id or 0)
                )
            ).all()
            for number, finished in running:
                if start <= finished:
                    errors["started_at"] = (
                        f"Смена №{number} идёт до {finished.strftime('%d.%m.%Y')}: "
                        "новая может начаться только после неё."
                    )


def active_task_ids(session: Session) -> list[int]:
    query = sa.select(col(Task.id)).where(col(Task.is_archived).is_(False)).order_by(col(Task.id))
    return list(session.execute(query).scalars())


def plan_sequence(task_ids: list[int], length: int, recent: list[int] | None = None) -> list[int]:
    """`length` task ids cycling through a shuffled order, so a task repeats only after all others.

    `recent` (the tasks of the last days before the sequence) are moved to the end of the first
    cycle, so regenerating the future days does not repeat yesterday's task.
    """
    if not task_ids:
        return []
    order = list(task_ids)
    random.shuffle(order)
    if recent:
        tail = [t for t in recent if t in order]
        order = [t for t in order if t not in tail] + [t for t in tail if t in order]
    return [order[i % len(order)] for i in range(length)]


def _write_plan(session: Session, shift: Shift, first_day: int, tasks: list[int]) -> None:
    session.execute(
        sa.delete(ShiftDay).where(
            col(ShiftDay.shift_id) == shift.id, col(ShiftDay.day_number) >= first_day
        )
    )
    session.add_all(
        ShiftDay(shift_id=shift.id, day_number=first_day + i, task_id=task_id)  # type: ignore[arg-type]
        for i, task_id in enumerate(tasks)
    )


def next_number(session: Session) -> int:
    return int(session.exec(select(sa.func.coalesce(sa.func.max(Shift.number), 0))).one()) + 1


def create_shift(
    session: Session, actor: Staff | None, title: str, start: date | None, end: date | None
) -> Shift:
    title = title.strip()
    errors: dict[str, str] = {}
    _check_title(title, errors)
    _check_dates(session, start, end, errors, shift_id=None, check_start=True)
    if session.exec(select(Shift.id).where(Shift.status == ShiftStatus.preparing)).first():
        errors[""] = "Уже есть смена в подготовке: сначала запустите или отмените её."
    tasks = active_task_ids(session)
    if not tasks:
        errors[""] = "Сначала добавьте задания: без них нельзя составить план смены."
    if errors:
        raise FormErrors(errors)
    assert start and end
    shift = Shift(
        number=next_number(session),
        title=title,
        status=ShiftStatus.preparing,
        started_at=start,
        finished_at=end,
    )
    session.add(shift)
    session.flush()
    _write_plan(session, shift, 1, plan_sequence(tasks, shift.length_days))
    audit.record(session, actor, "shift.create", "shift", shift.id, None, _snapshot(shift))
    return shift


def editable_fields(shift: Shift) -> set[str]:
    if shift.status == ShiftStatus.preparing:
        return {"title", "started_at", "finished_at", "final_message"}
    if shift.status == ShiftStatus.started:
        return {"title", "finished_at", "final_message"}
    if shift.status == ShiftStatus.finishing:
        return {"title", "final_message"}
    return set()


def _resize_plan(session: Session, shift: Shift, old_length: int) -> None:
    new_length = shift.length_days
    if new_length < old_length:
        session.execute(
            sa.delete(ShiftDay).where(
                col(ShiftDay.shift_id) == shift.id, col(ShiftDay.day_number) > new_length
            )
        )
    elif new_length > old_length:
        recent = list(
            session.exec(
                select(ShiftDay.task_id)
                .where(ShiftDay.shift_id == shift.id)
                .order_by(col(ShiftDay.day_number).desc())
                .limit(5)
            )
        )
        extra = plan_sequence(active_task_ids(session), new_length - old_length, recent)
        _write_plan(session, shift, old_length + 1, extra)


def approved_members(session: Session, shift_id: int) -> list[Participant]:
    return list(
        session.exec(
            select(Participant)
            .join(Member, col(Member.participant_id) == Participant.id)
            .where(Member.shift_id == shift_id, Member.status == MemberStatus.active)
        )
    )


def _tell_new_start(session: Session, shift: Shift, start: date) -> None:
    """Queue "the shift now starts on …" to every approved member (once per member and date)."""
    for participant in approved_members(session, shift.id):  # type: ignore[arg-type]
        outbox.enqueue(
            session,
            participant,
            "shift_start_changed",
            f"shift_start_changed:{shift.id}:{participant.id}:{start.isoformat()}",
            context={"shift": shift, "start": start, "hour": get_settings().send_new_task_hour},
        )


def update_shift(
    session: Session,
    actor: Staff | None,
    shift: Shift,
    title: str,
    start: date | None,
    end: date | None,
) -> Shift:
    allowed = editable_fields(shift)
    if not allowed:
        raise FormErrors({"": "Завершённую или отменённую смену изменить нельзя."})
    title = title.strip()
    start = start if "started_at" in allowed else shift.started_at
    end = end if "finished_at" in allowed else shift.finished_at
    errors: dict[str, str] = {}
    _check_title(title, errors)
    start_changed = start != shift.started_at
    _check_dates(
        session,
        start,
        end,
        errors,
        shift_id=shift.id,
        check_start=start_changed or shift.status == ShiftStatus.preparing,
    )
    if (
        "finished_at" in allowed
        and shift.status == ShiftStatus.started
        and end is not None
        and end != shift.finished_at
        and end <= clock.local_today()
    ):
        errors["finished_at"] = "Дата окончания идущей смены должна быть позже сегодняшнего дня."
    if errors:
        raise FormErrors(errors)
    assert start and end
    before = _snapshot(shift)
    old_length = shift.length_days
    shift.title, shift.started_at, shift.finished_at = title, start, end
    session.add(shift)
    session.flush()
    _resize_plan(session, shift, old_length)
    if start_changed:
        _tell_new_start(session, shift, start)
    after = _snapshot(shift)
    if after != before:
        audit.record(session, actor, "shift.update", "shift", shift.id, before, after)
    return shift


def start_now(session: Session, actor: Staff | None, shift: Shift) -> Shift:
    """preparing → started today, keeping the shift's length (and so its plan)."""
    if shift.status != ShiftStatus.preparing:
        raise FormErrors({"": "Запустить можно только смену в подготовке."})
    other = session.exec(
        select(Shift.number).where(Shift.status == ShiftStatus.started, col(Shift.id) != shift.id)
    ).first()
    if other is not None:
        raise FormErrors({"": f"Смена №{other} ещё идёт: две смены сразу запустить нельзя."})
    before = _snapshot(shift)
    today = clock.local_today()
    length = shift.length_days
    result = session.execute(
        sa.update(Shift)
        .where(col(Shift.id) == shift.id, col(Shift.status) == ShiftStatus.preparing)
        .values(
            status=ShiftStatus.started,
            started_at=today,
            finished_at=today + timedelta(days=length - 1),
            updated_at=clock.now(),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise FormErrors({"": "Смену уже запустил или отменил кто-то другой."})
    session.refresh(shift)
    if before["started_at"] != today:
        _tell_new_start(session, shift, today)
    audit.record(session, actor, "shift.start", "shift", shift.id, before, _snapshot(shift))
    return shift


def cancel_shift(session: Session, actor: Staff | None, shift: Shift) -> int:
    """preparing → cancelled; pending requests are declined; every applicant is told. Returns messages queued."""
    before = _snapshot(shift)
    result = session.execute(
        sa.update(Shift)
        .where(col(Shift.id) == shift.id, col(Shift.status) == ShiftStatus.preparing)
        .values(status=ShiftStatus.cancelled, updated_at=clock.now())
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise FormErrors({"": "Отменить можно только смену в подготовке."})
    now = clock.now()
    session.execute(
        sa.update(Application)
        .where(
            col(Application.shift_id) == shift.id,
            col(Application.status) == ApplicationStatus.pending,
        )
        .values(
            status=ApplicationStatus.declined,
            decline_reason=CANCEL_REASON,
            decided_by_id=actor.id if actor else None,
            decided_at=now,
            updated_at=now,
        )
    )
    applicants = session.exec(
        select(Participant)
        .join(Application, col(Application.participant_id) == Participant.id)
        .where(Application.shift_id == shift.id)
    ).all()
    session.refresh(shift)
    sent = 0
    for participant in applicants:
        sent += outbox.enqueue(
            session,
            participant,
            "shift_cancelled",
            f"shift_cancelled:{shift.id}:{participant.id}",
            context={"shift": shift},
        )
    audit.record(session, actor, "shift.cancel", "shift", shift.id, before, _snapshot(shift))
    return sent


def set_final_message(session: Session, actor: Staff | None, shift: Shift, text: str) -> Shift:
    if "final_message" not in editable_fields(shift):
        raise FormErrors({"final_message": "Эту смену уже нельзя изменить."})
    text = text.replace("\r\n", "\n").strip()
    problem = final_message.problem(text)
    if problem:
        raise FormErrors({"final_message": problem})
    before = {"final_message": shift.final_message}
    shift.final_message = text
    session.add(shift)
    audit.record(
        session, actor, "shift.final_message", "shift", shift.id, before, {"final_message": text}
    )
    return shift


def preview_final_message(session: Session, shift: Shift, text: str | None = None) -> str:
    """The final message as a real member of the shift would get it (a sample one if none yet)."""
    row = session.exec(
        select(Participant.name, Participant.surname, Member.id)
        .join(Member, col(Member.participant_id) == Participant.id)
        .where(Member.shift_id == shift.id, col(Participant.is_test).is_(False))
        .order_by(col(Member.id))
        .limit(1)
    ).first()
    if row is None:
        name, surname, balance = "Маша", "Иванова", 12
    else:
        name, surname = row[0], row[1]
        balance = int(
            session.exec(
                select(sa.func.count()).where(
                    col(Report.member_id) == row[2], col(Report.status) == ReportStatus.approved
                )
            ).one()
        )
    return final_message.render(
        text if text is not None else shift.final_message,
        name=name,
        surname=surname,
        balance=balance,
        shift=shift.title,
    )


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanDay:
    day_number: int
    date: date
    task_id: int
    task_title: str
    task_archived: bool
    editable: bool


def plan_editable(shift: Shift, day_number: int) -> bool:
    if shift.status not in (ShiftStatus.preparing, ShiftStatus.started):
        return False
    return day_date(shift, day_number) > clock.local_today()


def plan(session: Session, shift: Shift) -> list[PlanDay]:
    rows = session.exec(
        select(ShiftDay.day_number, ShiftDay.task_id, Task.title, Task.is_archived)
        .join(Task, col(Task.id) == ShiftDay.task_id)
        .where(ShiftDay.shift_id == shift.id)
        .order_by(col(ShiftDay.day_number))
    ).all()
    return [
        PlanDay(n, day_date(shift, n), task_id, title, archived, plan_editable(shift, n))
        for n, task_id, title, archived in rows
    ]


def plan_day(session: Session, shift: Shift, day_number: int) -> PlanDay | None:
    return next((d for d in plan(session, shift) if d.day_number == day_number), None)


def set_day_task(
    session: Session, actor: Staff | None, shift: Shift, day_number: int, task_id: int | None
) -> None:
    row = session.exec(
        select(ShiftDay).where(ShiftDay.shift_id == shift.id, ShiftDay.day_number == day_number)
    ).first()
    if row is None:
        raise FormErrors({"": "Такого дня в смене нет."})
    if not plan_editable(shift, day_number):
        raise FormErrors({"": "Этот день уже наступил: его задание изменить нельзя."})
    task = session.get(Task, task_id) if task_id is not None else None
    if task is None or task.is_archived:
        raise FormErrors({"": "Выберите задание из каталога (не из архива)."})
    if row.task_id == task.id:
        return
    before = {"day_number": day_number, "task_id": row.task_id}
    row.task_id = task.id  # type: ignore[assignment]
    session.add(row)
    audit.record(
        session,
        actor,
        "plan.set_day",
        "shift",
        shift.id,
        before,
        {"day_number": day_number, "task_id": task.id},
    )


def regenerate_future(session: Session, actor: Staff | None, shift: Shift) -> int:
    """Re-plan every day that has not come yet; returns how many days changed hands."""
    if shift.status not in (ShiftStatus.preparing, ShiftStatus.started):
        raise FormErrors({"": "План этой смены изменить уже нельзя."})
    today = clock.local_today()
    first = max(1, (today - shift.started_at).days + 2)
    length = shift.length_days
    if first > length:
        raise FormErrors({"": "Все дни смены уже наступили."})
    tasks = active_task_ids(session)
    if not tasks:
        raise FormErrors({"": "В каталоге нет активных заданий."})
    recent = list(
        session.exec(
            select(ShiftDay.task_id)
            .where(ShiftDay.shift_id == shift.id, col(ShiftDay.day_number) < first)
            .order_by(col(ShiftDay.day_number).desc())
            .limit(min(len(tasks) - 1, 5))
        )
    )
    _write_plan(session, shift, first, plan_sequence(tasks, length - first + 1, recent))
    audit.record(
        session,
        actor,
        "plan.regenerate",
        "shift",
        shift.id,
        None,
        {"from_day": first, "to_day": length},
    )
    return length - first + 1


# --- the list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftRow:
    id: int
    number: int
    title: str
    status: ShiftStatus
    started_at: date
    finished_at: date
    members: int
    reviewing: int

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def list_shifts(session: Session) -> list[ShiftRow]:
    members = (
        select(sa.func.count())
        .where(col(Member.shift_id) == Shift.id, col(Member.status) == MemberStatus.active)
        .scalar_subquery()
    )
    reviewing = (
        select(sa.func.count())
        .where(col(Report.shift_id) == Shift.id, col(Report.status) == ReportStatus.reviewing)
        .scalar_subquery()
    )
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Shift.id,
            Shift.number,
            Shift.title,
            Shift.status,
            Shift.started_at,
            Shift.finished_at,
            members,
            reviewing,
        ).order_by(col(Shift.number).desc())
    ).all()
    return [ShiftRow(*row) for row in rows]
