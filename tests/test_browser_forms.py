"""Forms in a real Chromium: select all / none for bulk approval; dates and files read in Russian
even in a browser set to English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from app import clock
from app.models import Application, ApplicationStatus, Shift, ShiftStatus
from tests import factories
from tests.browser_support import sign_in

pytestmark = pytest.mark.browser


def _login(page, base, staff, then):
    sign_in(page, base, staff)
    page.goto(base + then)


def test_select_all_then_none_then_approve_all(page, live_server, expert, db):
    shift = factories.make_shift(
        db, status=ShiftStatus.preparing, start=clock.local_today() + timedelta(days=20)
    )
    for _ in range(3):
        factories.make_application(db, factories.make_participant(db), shift)
    _login(page, live_server, expert, "/applications")
    boxes = page.locator('input[name="ids"]')
    expect(boxes).to_have_count(3)
    page.get_by_label("Выбрать все").check()
    for i in range(3):
        expect(boxes.nth(i)).to_be_checked()
    expect(page.locator("#picked")).to_have_text("Отмечено: 3 из 3")
    page.get_by_label("Выбрать все").uncheck()
    for i in range(3):
        expect(boxes.nth(i)).not_to_be_checked()
    boxes.nth(0).check()
    expect(page.locator("#pick-all")).to_have_js_property("indeterminate", True)
    page.get_by_label("Выбрать все").check()
    page.get_by_role("button", name="Одобрить отмеченные").click()
    expect(page.locator(".notice")).to_contain_text("Одобрено заявок: 3")
    db.expire_all()
    statuses = {a.status for a in db.exec(select(Application)).all()}
    assert statuses == {ApplicationStatus.approved}


def test_dates_and_files_speak_russian_in_an_english_browser(new_page, live_server, admin, db):
    factories.make_task(db, "Почистить зубы")
    page = new_page(locale="en-US", viewport={"width": 1280, "height": 900})
    _login(page, live_server, admin, "/shifts/new")
    started = page.locator("#started_at")
    expect(started).to_have_attribute("placeholder", "ДД.ММ.ГГГГ")
    assert started.get_attribute("type") in (None, "text")  # no date picker in English
    expect(page.locator("#started_at-hint")).to_contain_text("ДД.ММ.ГГГГ")
    start = clock.local_today() + timedelta(days=200)
    page.fill("#title", "Умею жить")
    page.fill("#started_at", start.strftime("%d.%m.%Y"))
    page.fill("#finished_at", "31.02.2000")  # no such day: a Russian error, not the browser's
    page.get_by_role("button", name="Создать смену").click()
    expect(page.locator("#finished_at-error")).to_be_visible()
    page.fill("#finished_at", (start + timedelta(days=60)).strftime("%d.%m.%Y"))
    page.get_by_role("button", name="Создать смену").click()
    expect(page.locator(".notice")).to_contain_text("Смена создана")
    expect(page.locator("#started_at")).to_have_value(start.strftime("%d.%m.%Y"))
    shift = db.exec(select(Shift).where(Shift.title == "Умею жить")).one()
    assert shift.started_at == start

    page.goto(f"{live_server}/tasks/new")
    expect(page.locator(".file-button")).to_have_text("Выбрать файл…")
    expect(page.locator("#image-chosen")).to_have_text("Файл не выбран")
    page.set_input_files(
        "#image",
        {"name": "зубы.jpg", "mimeType": "image/jpeg", "buffer": factories.jpeg_bytes(seed=3)},
    )
    expect(page.locator("#image-chosen")).to_have_text("зубы.jpg")
