"""Shifts: creation rules, edits by status, start, cancel, final message, the plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from app import clock, shifts
from app.errors import FormErrors
from app.models import (
    Application,
    ApplicationStatus,
    AuditEvent,
    OutgoingMessage,
    Shift,
    ShiftDay,
    ShiftStatus,
)
from tests import factories
from tests.conftest import csrf_token

TODAY = date(2026, 3, 2)


@pytest.fixture(autouse=True)
def frozen(settings):
    clock.set_now(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))  # 11:00 in Yekaterinburg
    yield
    clock.set_now(None)


def _tasks(db, n=4):
    return [factories.make_task(db, f"Задание {i}") for i in range(n)]


def _create(db, title="Умею жить", start=TODAY + timedelta(days=7), end=None):
    end = end or start + timedelta(days=29)
    shift = shifts.create_shift(db, None, title, start, end)
    db.commit()
    return shift


@pytest.mark.parametrize(
    ("title", "start", "end", "field", "text"),
    [
        ("Ум", TODAY, TODAY + timedelta(days=10), "title", "от 3 до 60"),
        ("У" * 61, TODAY, TODAY + timedelta(days=10), "title", "от 3 до 60"),
        (
            "Смена",
            TODAY + timedelta(days=10),
            TODAY + timedelta(days=5),
            "finished_at",
            "позже даты начала",
        ),
        (
            "Смена",
            TODAY + timedelta(days=10),
            TODAY + timedelta(days=10),
            "finished_at",
            "позже даты начала",
        ),
        ("Смена", TODAY, date(2026, 7, 2), "finished_at", "не больше 4 месяцев"),
        (
            "Смена",
            TODAY - timedelta(days=1),
            TODAY + timedelta(days=10),
            "started_at",
            "уже прошла",
        ),
        ("Смена", None, TODAY + timedelta(days=10), "started_at", "Укажите дату начала"),
    ],
)
def test_bad_shift_dates_and_titles_are_refused(db, title, start, end, field, text):
    _tasks(db)
    with pytest.raises(FormErrors) as exc:
        shifts.create_shift(db, None, title, start, end)
    assert text in exc.value.errors[field]


def test_four_months_exactly_fits(db):
    _tasks(db)
    shift = _create(db, start=TODAY, end=date(2026, 7, 1))
    assert shift.length_days == 122


def test_only_one_preparing_shift(db):
    _tasks(db)
    _create(db)
    with pytest.raises(FormErrors) as exc:
        shifts.create_shift(
            db, None, "Вторая", TODAY + timedelta(days=60), TODAY + timedelta(days=90)
        )
    assert "Уже есть смена в подготовке" in exc.value.errors[""]


def test_new_shift_starts_after_the_running_one(db):
    tasks = _tasks(db)
    running = factories.make_shift(db, start=TODAY - timedelta(days=10), days=30, tasks=tasks)
    with pytest.raises(FormErrors) as exc:
        shifts.create_shift(
            db, None, "Новая", running.finished_at, running.finished_at + timedelta(days=30)
        )
    assert f"Смена №{running.number}" in exc.value.errors["started_at"]
    shift = _create(db, start=running.finished_at + timedelta(days=1))
    assert shift.number == running.number + 1


def test_no_active_tasks_no_shift(db):
    factories.make_task(db, "Старое", is_archived=True)
    with pytest.raises(FormErrors) as exc:
        shifts.create_shift(db, None, "Смена", TODAY, TODAY + timedelta(days=10))
    assert "добавьте задания" in exc.value.errors[""]


def test_plan_cycles_all_active_tasks_without_close_repeats(db):
    tasks = _tasks(db, 5)
    archived = factories.make_task(db, "Архивное", is_archived=True)
    shift = _create(db, start=TODAY, end=TODAY + timedelta(days=49))
    days = db.exec(
        select(ShiftDay).where(ShiftDay.shift_id == shift.id).order_by(ShiftDay.day_number)
    ).all()
    assert [d.day_number for d in days] == list(range(1, 51))
    ids = [d.task_id for d in days]
    assert archived.id not in ids
    assert set(ids) == {t.id for t in tasks}
    for i in range(len(ids) - 4):
        assert len(set(ids[i : i + 5])) == 5  # no task twice within five days


def test_plan_sequence_puts_recent_tasks_last():
    seq = shifts.plan_sequence([1, 2, 3, 4], 4, recent=[4, 3])
    assert set(seq[:2]) == {1, 2}


def test_create_through_the_form(admin_client, db):
    _tasks(db)
    token = csrf_token(admin_client, "/shifts/new")
    response = admin_client.post(
        "/shifts/new",
        data={
            "title": "  Умею жить ",
            "started_at": "2026-03-10",
            "finished_at": "2026-06-07",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    shift = db.exec(select(Shift)).one()
    assert (shift.title, shift.number, shift.status) == ("Умею жить", 1, ShiftStatus.preparing)
    page = admin_client.get(response.headers["location"])
    assert "Смена создана" in page.text
    events = db.exec(select(AuditEvent).where(AuditEvent.action == "shift.create")).all()
    assert events[0].after["title"] == "Умею жить"
    listing = admin_client.get("/shifts")
    assert "Умею жить" in listing.text and "готовится" in listing.text


def test_form_errors_keep_the_input(admin_client, db):
    _tasks(db)
    token = csrf_token(admin_client, "/shifts/new")
    response = admin_client.post(
        "/shifts/new",
        data={
            "title": "Весна",
            "started_at": "2026-03-20",
            "finished_at": "2026-03-10",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400
    assert "позже даты начала" in response.text
    assert 'value="Весна"' in response.text
    assert db.exec(select(Shift)).first() is None


def test_changing_a_preparing_start_tells_members(db):
    tasks = _tasks(db)
    shift = _create(db)
    member = factories.make_member(db, shift)
    shift = db.get(Shift, shift.id)
    new_start = shift.started_at + timedelta(days=3)
    shifts.update_shift(
        db, None, shift, shift.title, new_start, shift.finished_at + timedelta(days=3)
    )
    db.commit()
    messages = db.exec(select(OutgoingMessage)).all()
    assert [m.kind for m in messages] == ["shift_start_changed"]
    assert messages[0].participant_id == member.participant_id
    assert "начнётся 12 марта 2026" in messages[0].payload["text"]
    assert "08:00" in messages[0].payload["text"]
    assert len(tasks) == 4
    assert (
        db.exec(select(ShiftDay).where(ShiftDay.shift_id == shift.id)).all().__len__()
        == shift.length_days
    )


def test_started_shift_keeps_its_start_and_end_must_be_after_today(db):
    tasks = _tasks(db)
    shift = factories.make_shift(db, start=TODAY - timedelta(days=5), days=30, tasks=tasks)
    shifts.update_shift(
        db,
        None,
        shift,
        "Новое имя",
        TODAY - timedelta(days=1),
        shift.finished_at + timedelta(days=5),
    )
    db.commit()
    shift = db.get(Shift, shift.id)
    assert shift.started_at == TODAY - timedelta(days=5)  # ignored: fixed once started
    assert shift.title == "Новое имя"
    assert len(db.exec(select(ShiftDay).where(ShiftDay.shift_id == shift.id)).all()) == 35
    with pytest.raises(FormErrors) as exc:
        shifts.update_shift(db, None, shift, "Новое имя", shift.started_at, TODAY)
    assert "позже сегодняшнего дня" in exc.value.errors["finished_at"]


def test_finished_shift_is_read_only(db, admin_client):
    shift = factories.make_shift(
        db, status=ShiftStatus.finished, start=TODAY - timedelta(days=100), days=30
    )
    with pytest.raises(FormErrors):
        shifts.update_shift(db, None, shift, "Другое", shift.started_at, shift.finished_at)
    page = admin_client.get(f"/shifts/{shift.id}")
    assert "изменить её нельзя" in page.text


def test_start_now_only_when_no_other_shift_runs(db):
    tasks = _tasks(db)
    running = factories.make_shift(db, start=TODAY - timedelta(days=5), days=30, tasks=tasks)
    prep = _create(db, start=running.finished_at + timedelta(days=1))
    with pytest.raises(FormErrors) as exc:
        shifts.start_now(db, None, prep)
    assert f"Смена №{running.number} ещё идёт" in exc.value.errors[""]
    running.status = ShiftStatus.finished
    db.add(running)
    db.commit()
    length = prep.length_days
    factories.make_member(db, prep)
    shifts.start_now(db, None, prep)
    db.commit()
    prep = db.get(Shift, prep.id)
    assert (
        prep.status == ShiftStatus.started
        and prep.started_at == TODAY
        and prep.length_days == length
    )
    texts = [m.payload["text"] for m in db.exec(select(OutgoingMessage)).all()]
    assert len(texts) == 1 and "начнётся 2 марта 2026" in texts[0]
    with pytest.raises(FormErrors):
        shifts.start_now(db, None, prep)


def test_cancel_declines_pending_requests_and_tells_applicants(admin_client, db):
    _tasks(db)
    shift = _create(db)
    pending = factories.make_application(db, factories.make_participant(db), shift)
    approved_p = factories.make_participant(db)
    factories.make_application(db, approved_p, shift, ApplicationStatus.approved)
    factories.make_member(db, shift, approved_p)
    token = csrf_token(admin_client, f"/shifts/{shift.id}")
    refused = admin_client.post(f"/shifts/{shift.id}/cancel", data={"csrf_token": token})
    assert refused.status_code == 400 and "точно хотите" in refused.text
    response = admin_client.post(
        f"/shifts/{shift.id}/cancel",
        data={"csrf_token": token, "confirm": "yes"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Shift, shift.id).status == ShiftStatus.cancelled
    request = db.get(Application, pending.id)
    assert (
        request.status == ApplicationStatus.declined
        and request.decline_reason == shifts.CANCEL_REASON
    )
    kinds = db.exec(select(OutgoingMessage.kind)).all()
    assert kinds == ["shift_cancelled", "shift_cancelled"]
    again = admin_client.post(
        f"/shifts/{shift.id}/cancel", data={"csrf_token": token, "confirm": "yes"}
    )
    assert again.status_code == 409
    assert len(db.exec(select(OutgoingMessage)).all()) == 2


def test_final_message_is_checked_and_previewed(admin_client, db):
    _tasks(db)
    shift = _create(db)
    participant = factories.make_participant(db, name="Петя")
    factories.make_member(db, shift, participant)
    token = csrf_token(admin_client, f"/shifts/{shift.id}")
    bad = admin_client.post(
        f"/shifts/{shift.id}/final-message",
        data={"csrf_token": token, "final_message": "Привет, {nme}!", "action": "save"},
    )
    assert bad.status_code == 400 and "Неизвестная подстановка: {nme}" in bad.text
    preview = admin_client.post(
        f"/shifts/{shift.id}/final-message",
        data={
            "csrf_token": token,
            "final_message": "Привет, {name}! У тебя {balance}.",
            "action": "preview",
        },
    )
    assert "Привет, Петя! У тебя 0 ломбарьерчиков." in preview.text
    db.expire_all()
    assert db.get(Shift, shift.id).final_message == ""
    admin_client.post(
        f"/shifts/{shift.id}/final-message",
        data={"csrf_token": token, "final_message": "Спасибо, {name}!", "action": "save"},
    )
    db.expire_all()
    assert db.get(Shift, shift.id).final_message == "Спасибо, {name}!"


def test_plan_day_edit_inline_and_past_days_read_only(admin_client, db):
    tasks = _tasks(db)
    archived = factories.make_task(db, "Архивное")
    shift = factories.make_shift(db, start=TODAY - timedelta(days=2), days=10, tasks=[archived])
    archived.is_archived = True
    db.add(archived)
    db.commit()
    page = admin_client.get(f"/shifts/{shift.id}/plan")
    assert page.status_code == 200 and "Архивное" in page.text and "(в архиве)" in page.text
    token = csrf_token(admin_client, f"/shifts/{shift.id}/plan")
    response = admin_client.post(
        f"/shifts/{shift.id}/plan/5",
        data={"task_id": str(tasks[1].id)},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 200 and "Сохранено" in response.text
    assert response.text.lstrip().startswith('<tr id="day-5">')
    day5 = db.exec(
        select(ShiftDay).where(ShiftDay.shift_id == shift.id, ShiftDay.day_number == 5)
    ).one()
    assert day5.task_id == tasks[1].id
    past = admin_client.post(
        f"/shifts/{shift.id}/plan/3",  # day 3 is today
        data={"task_id": str(tasks[1].id)},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert "изменить нельзя" in past.text
    to_archived = admin_client.post(
        f"/shifts/{shift.id}/plan/6",
        data={"task_id": str(archived.id)},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert "не из архива" in to_archived.text
    assert (
        admin_client.post(f"/shifts/{shift.id}/plan/99", data={"csrf_token": token}).status_code
        == 404
    )


def test_regenerate_touches_only_future_days(admin_client, db):
    tasks = _tasks(db)
    shift = factories.make_shift(db, start=TODAY - timedelta(days=2), days=10, tasks=[tasks[0]])
    token = csrf_token(admin_client, f"/shifts/{shift.id}/plan")
    response = admin_client.post(f"/shifts/{shift.id}/plan", data={"csrf_token": token})
    assert "7 дней" in response.text
    days = db.exec(
        select(ShiftDay).where(ShiftDay.shift_id == shift.id).order_by(ShiftDay.day_number)
    ).all()
    assert [d.task_id for d in days[:3]] == [tasks[0].id] * 3
    assert len({d.task_id for d in days[3:7]}) == 4
