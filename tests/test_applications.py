"""The application queue: approve (a member joins today), decline with a reason, undo, bulk approve."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from app import applications, clock
from app.models import (
    Application,
    ApplicationStatus,
    AuditEvent,
    Member,
    OutgoingMessage,
    Participant,
    ReportStatus,
    ShiftStatus,
    StaffRole,
)
from app.settings import set_settings
from tests import factories
from tests.conftest import csrf_token, login

HX = {"HX-Request": "true"}


def _post(client, path, data=None, headers=None):
    token = csrf_token(client, "/applications")
    return client.post(
        path, data={"csrf_token": token, **(data or {})}, headers=headers, follow_redirects=False
    )


def _pending(db, n=1, *, status=ShiftStatus.preparing, start=None, names=None):
    start = start or clock.local_today() + timedelta(days=5)
    shift = factories.make_shift(db, status=status, start=start, title="Умею жить")
    rows = []
    for i in range(n):
        participant = factories.make_participant(db, name=(names or ["Маша"] * n)[i])
        rows.append(factories.make_application(db, participant, shift))
    return shift, rows


def _reload(db, application_id):
    db.expire_all()
    return db.get(Application, application_id)


def test_queue_lists_pending_applications_with_data_and_history(expert_client, db):
    old = factories.make_shift(
        db, status=ShiftStatus.finished, start=date(2025, 1, 10), title="Зима"
    )
    shift, (application,) = _pending(db)
    participant_id = application.participant_id
    factories.make_application(
        db, db.get(Participant, participant_id), old, ApplicationStatus.approved
    )
    member = factories.make_member(db, old, db.get(Participant, participant_id))
    factories.make_report(db, member, day=1, status=ReportStatus.approved)
    page = expert_client.get("/applications")
    assert page.status_code == 200
    assert "Маша Иванова" in page.text and "Уфа" in page.text and "+7 912" in page.text
    assert "согласие:" in page.text
    assert f"№{shift.number} «Умею жить»" in page.text
    assert f"№{old.number} «Зима»: участвовал(а), 1 ломбарьерчик" in page.text
    assert "Ждут решения: <strong>1</strong>" in page.text


def test_approve_creates_a_member_joined_today_and_tells_the_family(
    expert_client, expert, db, settings
):
    shift, (application,) = _pending(db)
    response = _post(expert_client, f"/applications/{application.id}/approve", headers=HX)
    assert response.status_code == 200 and "✓ Одобрено" in response.text
    assert "Отменить" in response.text
    assert _reload(db, application.id).status == ApplicationStatus.approved
    member = db.exec(select(Member)).one()
    assert (member.participant_id, member.shift_id) == (application.participant_id, shift.id)
    assert member.joined_at == clock.local_today()
    message = db.exec(select(OutgoingMessage)).one()
    assert message.kind == "application_approved"
    assert message.send_after > clock.now()
    hour = f"{settings.send_new_task_hour}:00"
    assert f"в {hour}" in message.payload["text"]
    assert factories_date(shift.started_at) in message.payload["text"]
    assert db.exec(select(AuditEvent)).one().action == "application.approve"


def factories_date(day: date) -> str:
    from app.text import fmt_date

    return fmt_date(day)


def test_hours_in_the_texts_follow_the_settings(expert_client, db, settings):
    set_settings(settings.with_overrides(send_new_task_hour=9))
    _, (application,) = _pending(db)
    _post(expert_client, f"/applications/{application.id}/approve")
    assert "в 9:00" in db.exec(select(OutgoingMessage)).one().payload["text"]


def test_first_task_date_is_the_next_task_day_once_the_shift_started(settings, db):
    shift = factories.make_shift(db, start=date(2026, 3, 1))
    tz = settings.tz
    before_hour = datetime(2026, 3, 5, settings.send_new_task_hour - 1, 30, tzinfo=tz)
    after_hour = datetime(2026, 3, 5, settings.send_new_task_hour, 30, tzinfo=tz)
    assert applications.first_task_date(shift, before_hour.astimezone(UTC)) == date(2026, 3, 5)
    assert applications.first_task_date(shift, after_hour.astimezone(UTC)) == date(2026, 3, 6)
    early = datetime(2026, 2, 20, 12, tzinfo=tz)
    assert applications.first_task_date(shift, early) == date(2026, 3, 1)


def test_decline_stores_the_reason_and_queues_it(expert_client, db):
    _, (application,) = _pending(db)
    response = _post(expert_client, f"/applications/{application.id}/decline", {"preset": "1"}, HX)
    assert "✗ Отклонено" in response.text
    row = _reload(db, application.id)
    assert row.status == ApplicationStatus.declined
    assert row.decline_reason == applications.DECLINE_REASONS[0]
    message = db.exec(select(OutgoingMessage)).one()
    assert message.kind == "application_declined"
    assert applications.DECLINE_REASONS[0] in message.payload["text"]
    assert db.exec(select(Member)).all() == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "ы" * 10_000}, "Причина слишком длинная"),
        ({"text": ""}, "Выберите причину или напишите её"),
        ({"preset": "99"}, "Такой причины нет в списке"),
    ],
)
def test_bad_decline_reasons_change_nothing(expert_client, db, data, message):
    _, (application,) = _pending(db)
    htmx = _post(expert_client, f"/applications/{application.id}/decline", data, HX)
    assert htmx.status_code == 200 and message in htmx.text
    plain = _post(expert_client, f"/applications/{application.id}/decline", data)
    assert plain.status_code == 303
    assert message in expert_client.get("/applications").text
    assert _reload(db, application.id).status == ApplicationStatus.pending
    assert db.exec(select(OutgoingMessage)).all() == []


def test_second_curator_sees_the_first_decision(app, db, expert):
    other = factories.make_staff(db, role=StaffRole.expert, name="Ольга")
    _, (application,) = _pending(db)
    with TestClient(app) as first, TestClient(app) as second:
        login(first, expert)
        login(second, other)
        _post(first, f"/applications/{application.id}/approve", headers=HX)
        late = _post(second, f"/applications/{application.id}/decline", {"preset": "2"}, HX)
        assert "Другой куратор уже решил по этой заявке: одобрена." in late.text
        assert "Отменить" not in late.text
    assert _reload(db, application.id).status == ApplicationStatus.approved
    assert len(db.exec(select(Member)).all()) == 1
    assert len(db.exec(select(OutgoingMessage)).all()) == 1


def test_undo_removes_the_member_and_the_message(expert_client, db, settings):
    _, (application,) = _pending(db)
    _post(expert_client, f"/applications/{application.id}/approve")
    response = _post(expert_client, f"/applications/{application.id}/undo", headers=HX)
    assert "Одобрить" in response.text
    assert _reload(db, application.id).status == ApplicationStatus.pending
    assert db.exec(select(Member)).all() == []
    assert db.exec(select(OutgoingMessage)).all() == []
    assert [e.action for e in db.exec(select(AuditEvent).order_by(AuditEvent.id))] == [
        "application.approve",
        "application.undo",
    ]
    _post(expert_client, f"/applications/{application.id}/approve")
    clock.set_now(clock.now() + timedelta(seconds=settings.undo_seconds + 1))
    late = _post(expert_client, f"/applications/{application.id}/undo", headers=HX)
    assert "Отменить можно только в первые" in late.text
    assert _reload(db, application.id).status == ApplicationStatus.approved


def test_decisions_on_closed_shifts_are_refused(expert_client, db):
    _, (application,) = _pending(db, status=ShiftStatus.cancelled)
    response = _post(expert_client, f"/applications/{application.id}/approve", headers=HX)
    assert "Смена уже закончилась или отменена" in response.text
    assert _reload(db, application.id).status == ApplicationStatus.pending
    assert "Новых заявок нет." in expert_client.get("/applications").text


def test_bulk_approve_of_the_selected_rows(expert_client, db):
    shift, rows = _pending(db, 3, names=["Маша", "Петя", "Оля"])
    _post(expert_client, f"/applications/{rows[2].id}/decline", {"text": "дубль"})
    response = _post(
        expert_client,
        "/applications/approve",
        {"ids": [str(rows[0].id), str(rows[1].id), str(rows[2].id), "abc", "999999"]},
    )
    assert response.status_code == 303
    page = expert_client.get("/applications")
    assert "Одобрено заявок: 2. Уже решены или недоступны: 2." in page.text
    assert len(db.exec(select(Member).where(Member.shift_id == shift.id)).all()) == 2
    kinds = sorted(m.kind for m in db.exec(select(OutgoingMessage)))
    assert kinds == ["application_approved", "application_approved", "application_declined"]
    empty = _post(expert_client, "/applications/approve", {})
    assert empty.status_code == 303
    assert "Отметьте заявки" in expert_client.get("/applications").text


def test_unknown_request_and_missing_csrf(expert_client, db):
    assert _post(expert_client, "/applications/424242/approve").status_code == 404
    assert _post(expert_client, "/applications/424242/decline", {"text": ""}).status_code == 404
    assert _post(expert_client, "/applications/424242/undo").status_code == 404
    _, (application,) = _pending(db)
    assert expert_client.post(f"/applications/{application.id}/approve", data={}).status_code == 403
    assert _reload(db, application.id).status == ApplicationStatus.pending


def test_foreign_shift_filter_is_explained(expert_client, db):
    _pending(db)
    for value in ("abc", "-5", "99999"):
        page = expert_client.get(f"/applications?shift={value}")
        assert page.status_code == 200
        assert "Такой набирающей смены нет" in page.text


@pytest.mark.postgres_only
def test_two_concurrent_approvals_make_one_member(app, db, expert, is_pg):
    if not is_pg:
        pytest.skip("concurrency is tested on PostgreSQL")
    other = factories.make_staff(db, role=StaffRole.expert)
    _, (application,) = _pending(db)
    emails = [expert.email, other.email]  # plain values: the test session is not thread-safe
    barrier = threading.Barrier(2, timeout=30)
    codes: list[int] = []

    def approve(email):
        with TestClient(app) as c:
            login(c, SimpleNamespace(email=email))
            token = csrf_token(c, "/applications")
            barrier.wait()
            r = c.post(
                f"/applications/{application.id}/approve", data={"csrf_token": token}, headers=HX
            )
            codes.append(r.status_code)

    threads = [threading.Thread(target=approve, args=(e,)) for e in emails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200, 200]
    db.expire_all()
    assert len(db.exec(select(Member)).all()) == 1
    assert len(db.exec(select(OutgoingMessage)).all()) == 1
    assert len(db.exec(select(AuditEvent)).all()) == 1
