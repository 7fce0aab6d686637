"""The «Мой прогресс» WebApp in a real Chromium on a 390 px phone: calendar, balance, run and today's
task without horizontal scrolling; initData failures get a kind message and no data; the page reads
without Telegram's script (and still loads with initData from the URL fragment Telegram adds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest

from app import clock, images
from app.models import MemberPause, ReportStatus
from tests import factories
from tests.bot_support import init_data
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser
TELEGRAM_JS = "https://telegram.org/js/telegram-web-app.js"
UID = 888101
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def bot_server(bot_settings) -> Iterator[str]:
    from app.main import create_app

    server = LiveServer(create_app(bot_settings, start_background=False))
    yield server.start()
    server.stop()


@pytest.fixture
def member(db, noon):
    stored = images.store_image(factories.jpeg_bytes(seed=4), folder="tasks", reencode=True)
    task = factories.make_task(db, "Заправить кровать аккуратно и красиво", image_key=stored.key)
    today = clock.local_today()
    shift = factories.make_shift(db, start=today - timedelta(days=9), days=92, tasks=[task])
    member = factories.make_member(
        db, shift, factories.make_participant(db, telegram_id=UID, name="Маша")
    )
    for day in range(1, 10):
        status = ReportStatus.approved if day != 3 else ReportStatus.declined
        report = factories.make_report(db, member, day, status, photos=0)
        if day == 3:
            report.decline_reason = (
                "На фото не видно задания — сфотографируй, пожалуйста, всю кровать"
            )
            db.add(report)
    db.add(
        MemberPause(
            member_id=member.id,
            first_day=today + timedelta(days=3),
            last_day=today + timedelta(days=5),
            reason="каникулы",
        )
    )
    db.commit()
    factories.make_report(db, member, 10, ReportStatus.waiting)
    return member


def _telegram(page, data: str) -> None:
    stub = (
        "window.Telegram = {WebApp: {initData: " + json.dumps(data) + ","
        " ready() { window.__ready = true; }, expand() {}}};"
    )
    page.route(
        TELEGRAM_JS, lambda route: route.fulfill(body=stub, content_type="application/javascript")
    )


def _no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"


def test_progress_on_a_390px_phone(page, bot_server, member):
    _telegram(page, init_data(UID))
    page.set_viewport_size(PHONE)
    page.goto(bot_server + "/telegram/progress")
    page.wait_for_selector("#pg-balance")
    assert page.inner_text("#pg-balance") == "8"
    assert "8 ломбарьерчиков" in " ".join(page.inner_text(".pg-stats").split())
    assert page.inner_text("#pg-run") == "6"  # days 4–9; today is still open
    assert page.inner_text("#pg-task") == "Заправить кровать аккуратно и красиво"
    page.wait_for_function("document.querySelector('.pg-pic').naturalWidth > 0")
    assert page.locator(".pg-cal li").count() == 92
    assert page.locator(".pg-cal li.pg-paused").count() == 3
    today = page.locator('.pg-cal li[aria-current="date"]')
    assert "День 10" in today.inner_text() and "ждём фото" in today.inner_text()
    reasons = page.inner_text(".pg-reasons")
    assert "Куратор просил" in reasons and "всю кровать" in reasons
    assert "Скоро пауза" in page.inner_text("#progress")
    assert page.evaluate("window.__ready") is True
    _no_horizontal_overflow(page)
    # Theme colours come from Telegram's variables when it sets them.
    page.evaluate(
        "document.documentElement.style.setProperty('--tg-theme-bg-color', 'rgb(1, 2, 3)')"
    )
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(1, 2, 3)"


@pytest.mark.parametrize("case", ["forged", "stale", "another child"])
def test_init_data_failures_in_the_browser(page, bot_server, member, case):
    if case == "forged":
        data = init_data(UID, token="999:not-our-bot")
    elif case == "stale":
        data = init_data(UID, auth_date=int((clock.now() - timedelta(hours=5)).timestamp()))
    else:
        data = init_data(UID + 1)
    _telegram(page, data)
    page.set_viewport_size(PHONE)
    page.goto(bot_server + "/telegram/progress")
    note = page.locator("#progress .pg-note")
    note.wait_for()
    page.wait_for_function("!document.querySelector('#progress').hasAttribute('aria-busy')")
    text = page.inner_text("#progress")
    if case == "another child":
        assert "Ты пока не участник смены" in text
    else:
        assert "нажмите кнопку «Мой прогресс»" in text
    assert "Маша" not in text and page.locator(".pg-cal").count() == 0
    _no_horizontal_overflow(page)


def test_readable_without_telegram_script(page, bot_server, member):
    page.route(TELEGRAM_JS, lambda route: route.abort())
    page.set_viewport_size(PHONE)
    page.goto(bot_server + "/telegram/progress")
    assert page.inner_text("h1") == "Мой прогресс"
    assert "открывается из Telegram" in page.inner_text("#progress")
    _no_horizontal_overflow(page)
    # Inside Telegram with its script blocked: initData and the theme come from the URL fragment.
    theme = json.dumps({"bg_color": "#102030", "text_color": "#ffffff"})
    fragment = f"#tgWebAppData={quote(init_data(UID))}&tgWebAppThemeParams={quote(theme)}"
    page.goto("about:blank")  # a new document, not a same-page jump to the fragment
    page.goto(bot_server + "/telegram/progress" + fragment)
    page.wait_for_selector("#pg-balance")
    assert page.inner_text("#pg-balance") == "8"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(16, 32, 48)"
