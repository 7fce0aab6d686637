"""A staff member logs in with a real browser and sees the dashboard."""

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_login_in_a_real_browser(page, live_server, admin):
    page.goto(live_server + "/")
    assert page.locator("h1").inner_text() == "Вход для сотрудников"
    page.fill("#email", admin.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    assert "Здравствуйте" in page.locator("h1").inner_text()


def test_wrong_password_shows_the_message_in_the_form(page, live_server, admin):
    page.goto(live_server + "/login")
    page.fill("#email", admin.email)
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".alert").inner_text() == "Неверная почта или пароль."
