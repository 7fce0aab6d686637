"""The registration WebApp in a real browser: prefill and submit with initData, errors next to the
fields, and a readable page when Telegram's script cannot load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock
from app.models import Application, Consent, ConsentGiver, Participant, ShiftStatus
from tests import factories
from tests.bot_support import init_data
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser
TELEGRAM_JS = "https://telegram.org/js/telegram-web-app.js"
UID = 888001


@pytest.fixture
def bot_server(bot_settings) -> Iterator[str]:
    from app.main import create_app

    server = LiveServer(create_app(bot_settings, start_background=False))
    yield server.start()
    server.stop()


def _fake_telegram_js(page, data: str) -> None:
    stub = (
        "window.Telegram = {WebApp: {initData: " + json.dumps(data) + ","
        " ready() {}, expand() {}, close() { window.__closed = true; }}};"
    )
    page.route(
        TELEGRAM_JS,
        lambda route: route.fulfill(body=stub, content_type="application/javascript"),
    )


def test_prefill_error_next_to_field_then_success(db, page, bot_server, noon):
    factories.make_shift(
        db, status=ShiftStatus.preparing, start=clock.local_today() + timedelta(days=7)
    )
    factories.make_participant(db, telegram_id=UID, name="Петя", phone="+7 922 111-22-33")
    _fake_telegram_js(page, init_data(UID))
    page.set_viewport_size({"width": 360, "height": 740})  # a small phone
    page.goto(bot_server + "/telegram/registration")
    page.wait_for_function("document.querySelector('#f-name').value === 'Петя'")
    assert page.input_value("#f-phone") == "+7 922 111-22-33"
    page.fill("#f-city", "Moscow")
    page.check("#f-consent")
    page.click("button[type=submit]")
    who = page.locator("#e-consent_by")  # who gives consent is asked, never assumed
    who.wait_for(state="visible")
    assert "родитель или сам участник" in who.inner_text()
    page.click("text=Прочитать текст согласия")
    assert page.locator("#consent-text").get_attribute("open") is not None
    assert page.locator("#consent-text").inner_text().count("Ваши права") == 1
    page.check("input[name=consent_by][value=participant]")
    page.click("button[type=submit]")
    error = page.locator("#e-city")
    error.wait_for(state="visible")
    assert "Русскими буквами" in error.inner_text()
    assert page.get_attribute("#f-city", "aria-invalid") == "true"
    page.fill("#f-city", "Ростов-на-Дону")
    page.click("button[type=submit]")
    page.wait_for_function("window.__closed === true")
    assert "Заявка отправлена" in page.locator("#reg-message").inner_text()
    db.expire_all()
    p = db.exec(select(Participant).where(Participant.telegram_id == UID)).one()
    assert p.city == "Ростов-на-Дону"
    given = db.exec(select(Consent).where(Consent.participant_id == p.id)).one()
    assert given.given_by == ConsentGiver.participant
    assert db.exec(select(Application).where(Application.participant_id == p.id)).one()


def test_readable_without_telegram_script(db, page, bot_server, noon):
    page.route(TELEGRAM_JS, lambda route: route.abort())
    page.goto(bot_server + "/telegram/registration")
    assert page.locator("h1").inner_text() == "Анкета участника"
    assert page.locator("label[for=f-name]").inner_text() == "Имя"
    page.fill("#f-name", "Маша")
    page.click("button[type=submit]")
    message = page.locator("#reg-message")
    message.wait_for(state="visible")
    assert "Откройте форму из чата" in message.inner_text()
    assert db.exec(select(Participant)).all() == []
