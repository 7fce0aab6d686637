"""Helpers for the Chromium tests (Playwright pages)."""

from __future__ import annotations

from tests.conftest import PASSWORD


def sign_in(page, base: str, staff, path: str = "/reports") -> None:
    """Log `staff` in through the login form and land on `path`."""
    page.goto(f"{base}/login?next={path.replace('?', '%3F').replace('&', '%26')}")
    page.fill("#email", staff.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")
