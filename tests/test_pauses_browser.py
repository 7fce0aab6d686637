"""The pause form in a real Chromium: plain HTML forms (with their CSRF token), an error next to the
field, then a pause set and ended, shown as "пауза" in the calendar."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock
from app.models import MemberPause, ReportStatus
from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_an_administrator_pauses_and_resumes_a_member(page, live_server, db, admin, noon):
    today = clock.local_today()
    shift = factories.make_shift(db, start=today - timedelta(days=3), days=30)
    member = factories.make_member(db, shift, factories.make_participant(db, name="Соня"))
    factories.make_report(db, member, 4, ReportStatus.waiting)
    page.goto(live_server + "/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.locator("button:has-text('Выйти')").wait_for()
    page.goto(live_server + f"/members/{member.id}")

    page.fill("#pause-first", (today + timedelta(days=2)).isoformat())
    page.fill("#pause-last", (today + timedelta(days=1)).isoformat())
    page.click(".pause-form button[type=submit]")
    error = page.locator("#last_day-error")
    error.wait_for()
    assert "не может быть раньше первого" in error.inner_text()
    assert page.get_attribute("#pause-last", "aria-invalid") == "true"
    assert page.input_value("#pause-first") == (today + timedelta(days=2)).isoformat()

    page.fill("#pause-first", today.isoformat())
    page.fill("#pause-last", (today + timedelta(days=2)).isoformat())
    page.fill("#pause-reason", "болеет")
    page.click(".pause-form button[type=submit]")
    page.locator("text=Пауза поставлена").wait_for()
    assert page.locator(".calendar .day.paused").count() == 3
    page.click("text=Закончить паузу сегодня")
    page.locator("text=Пауза снята").wait_for()
    assert page.locator(".calendar .day.paused").count() == 1  # today stays a paused day
    db.expire_all()
    [pause] = db.exec(select(MemberPause)).all()
    assert pause.last_day == today and pause.ended_at is not None
