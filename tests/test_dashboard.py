"""The start page: each number is a link to its list; the oldest photo's wait; today's decisions
per curator; families who blocked the bot; messages and daily jobs in words."""

from __future__ import annotations

from datetime import timedelta

from app import clock
from app.models import ReportStatus, ShiftStatus
from tests import factories


def test_a_curator_acts_from_the_start_page(admin_client, db, admin, expert):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=3))
    old = factories.make_report(db, factories.make_member(db, shift), 1, ReportStatus.reviewing)
    old.submitted_at = clock.now() - timedelta(days=2, hours=3)
    db.add(old)
    factories.make_report(db, factories.make_member(db, shift), 2, ReportStatus.reviewing)
    decided = factories.make_report(db, factories.make_member(db, shift), 2, ReportStatus.approved)
    decided.decided_by_id, decided.decided_at = expert.id, clock.now()
    db.add(decided)
    factories.make_member(db, shift, factories.make_participant(db, is_bot_blocked=True))
    preparing = factories.make_shift(
        db, status=ShiftStatus.preparing, start=clock.local_today() + timedelta(days=100)
    )
    factories.make_application(db, factories.make_participant(db), preparing)
    db.commit()

    page = " ".join(admin_client.get("/").text.split())
    for href in ("/reports", "/reports?flagged=1", "/applications", "/participants?blocked=yes"):
        assert f'href="{href}"' in page, href
    assert "2</span>" in page and "фото ждут" in page
    assert "самое старое ждёт 2 дня 3 часа" in page
    assert "Вся команда — 1 фото: принято 1, отклонено 0." in page
    assert "Анна Кураторова</strong>: 1 фото — принято 1, отклонено 0" in page
    assert "семья в смене заблокировала бота" in page
    assert f'href="/shifts/{shift.id}"' in page and f'href="/reports?shift={shift.id}"' in page
    assert f'href="/applications?shift={preparing.id}"' in page
    assert "Сообщения семьям: всё отправлено" in page
    assert "Задания на день: ещё ни разу не запускались" in page


def test_an_expert_is_sent_to_results_not_to_the_shift_page(expert_client, db):
    shift = factories.make_shift(db)
    page = expert_client.get("/").text
    assert f'href="/shifts/{shift.id}/results"' in page
    assert f'href="/shifts/{shift.id}"' not in page


def test_an_expert_sees_their_own_numbers_not_each_colleagues(expert_client, db, expert):
    """Only administrators see everyone's numbers (the pace rule): an expert's start page has
    their own pace and the team's total today, not what each colleague decided."""
    colleague = factories.make_staff(db, name="Борис", surname="Проверкин")
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=3))
    for who in (colleague, expert):
        report = factories.make_report(
            db, factories.make_member(db, shift), 2, ReportStatus.approved
        )
        report.decided_by_id, report.decided_at = who.id, clock.now()
        db.add(report)
    db.commit()

    page = " ".join(expert_client.get("/").text.split())
    assert "Ваш темп" in page
    assert "Вся команда — 2 фото: принято 2, отклонено 0." in page
    assert "Проверкин" not in page
