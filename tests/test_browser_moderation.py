"""Curators clear the queue with the keyboard in a real Chromium; two curators on one card."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from app import clock
from app.models import PhotoFlag, Report, ReportPhoto, ReportStatus, StaffRole
from tests import factories
from tests.browser_support import sign_in

pytestmark = pytest.mark.browser


def _queue(db, n):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=1))
    return factories.make_review_queue(db, shift, n)


def _focused(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_curator_clears_three_cards_with_the_keyboard_and_undoes_one(page, live_server, expert, db):
    r = _queue(db, 5)
    sign_in(page, live_server, expert)
    count = page.locator("#queue-count")
    expect(count).to_have_text("5")
    expect(page.locator(f"#report-{r[0].id}")).to_be_focused()

    page.keyboard.press("a")
    expect(page.locator(f"#report-{r[1].id}")).to_be_focused()
    expect(page.locator(f"#report-{r[0].id}")).to_contain_text("✓ Принято — вы")

    page.keyboard.press("d")
    expect(page.locator(f"#report-{r[1].id} .mod-presets")).to_be_visible()
    page.keyboard.press("1")
    expect(page.locator(f"#report-{r[2].id}")).to_be_focused()
    expect(page.locator(f"#report-{r[1].id}")).to_contain_text("✗ Отклонено")

    page.keyboard.press("a")
    expect(page.locator(f"#report-{r[2].id}")).to_contain_text("✓ Принято")
    expect(page.locator(f"#report-{r[3].id}")).to_be_focused()
    expect(count).to_have_text("2")

    page.keyboard.press("z")
    expect(page.locator(f"#report-{r[2].id} .mod-approve")).to_be_visible()
    expect(page.locator(f"#report-{r[2].id}")).to_be_focused()
    expect(count).to_have_text("3")

    db.expire_all()
    statuses = [db.get(Report, x.id).status for x in r[:3]]
    assert statuses == [ReportStatus.approved, ReportStatus.declined, ReportStatus.reviewing]

    # Keys do nothing while typing in a text field.
    page.keyboard.press("d")
    field = page.locator(f"#reason-{r[2].id}")
    field.click()
    page.keyboard.type("ad")
    expect(field).to_have_value("ad")
    page.keyboard.press("Enter")
    expect(page.locator(f"#report-{r[2].id}")).to_contain_text("причина: ad")

    # The help.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("?")
    expect(page.locator("#mod-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#mod-help")).to_be_hidden()


def test_next_pages_load_while_scrolling_and_the_photo_opens_in_place(
    page, live_server, expert, db
):
    r = _queue(db, 9)
    sign_in(page, live_server, expert, "/reports?size=2")
    cards = page.locator(".mod-card")
    expect(cards).to_have_count(4)  # the next page was fetched before the end was reached
    for _ in range(10):
        if cards.count() == 9:
            break
        page.mouse.wheel(0, 20000)
        page.wait_for_timeout(150)
    expect(cards).to_have_count(9)
    ids = page.eval_on_selector_all(".mod-card", "els => els.map(e => Number(e.dataset.id))")
    assert ids == [x.id for x in r]
    expect(page.locator(".mod-end")).to_be_visible()

    # The focused card's photo is shown across the card, first from its thumbnail, then sharp: the
    # full-size image replaces it once loaded. A click (or F) shows it whole at its own size.
    card = page.locator(f"#report-{r[0].id}")
    page.wait_for_function(
        "id => { const i = document.querySelector(`#report-${id} .mod-photo-link img`);"
        " return i.complete && i.naturalWidth === 640; }",
        arg=r[0].id,
    )
    photo = card.locator(".mod-photo-link img")
    card_box, photo_box = card.bounding_box(), photo.bounding_box()
    assert photo_box["width"] >= card_box["width"] * 0.5  # the card's width, not a thumbnail
    photo.click()
    expect(card).to_have_class(re.compile("is-full"))
    assert page.url.endswith("/reports?size=2")  # same page, no new tab
    assert len(page.context.pages) == 1
    photo.click()
    expect(card).not_to_have_class(re.compile("is-full"))

    # On a phone the columns stack, photo first, and the buttons stay large.
    page.set_viewport_size({"width": 390, "height": 844})
    card = page.locator(f"#report-{r[1].id}")
    photo_box = card.locator(".mod-photo").bounding_box()
    info_box = card.locator(".mod-info").bounding_box()
    assert photo_box["y"] + photo_box["height"] <= info_box["y"] + 1
    assert photo_box["width"] <= 390
    button = card.locator(".mod-approve button").bounding_box()
    assert button["height"] >= 44


def test_second_curator_sees_the_first_decision(page, new_page, live_server, expert, db):
    other = factories.make_staff(db, role=StaffRole.expert, name="Ольга", surname="Петрова")
    (report,) = _queue(db, 1)
    second = new_page()
    # Without live updates (tests/test_browser_live.py has those), so her click races the first
    # decision; she reaches the card by its link, as her queue skips a card on someone's screen.
    second.route("**/events", lambda route: route.abort())
    sign_in(page, live_server, expert)
    sign_in(second, live_server, other, f"/reports/{report.id}")
    page.keyboard.press("a")
    expect(page.locator(f"#report-{report.id}")).to_contain_text("✓ Принято — вы")
    second.locator(f"#report-{report.id} .mod-approve button").click()
    card = second.locator(f"#report-{report.id}")
    expect(card).to_contain_text("Другой куратор уже проверил это фото: принято.")
    expect(card).to_contain_text("Анна К.")
    expect(second.locator("#queue-count")).to_have_text("0")


def _flag(db, report, like):
    """Mark `report`'s photo as looking like `like`'s; every other photo is checked and clean."""
    photos = {p.report_id: p for p in db.exec(select(ReportPhoto)).all()}
    for photo in photos.values():
        photo.flags_checked = True
        db.add(photo)
    photos[report.id].flag = PhotoFlag.near
    photos[report.id].flag_photo_id = photos[like.id].id
    db.commit()


def test_the_bar_keeps_the_filters_count_and_the_last_decision_in_view(
    page, live_server, expert, db
):
    r = _queue(db, 6)
    _flag(db, r[4], r[0])
    sign_in(page, live_server, expert, "/reports?flagged=1")
    bar = page.locator("#mod-bar")
    expect(page.locator("#queue-count")).to_have_text("1")  # the filter's count, not the queue's
    expect(bar).to_contain_text("Ждут проверки по фильтру")

    page.goto(f"{live_server}/reports")
    expect(page.locator("#queue-count")).to_have_text("6")
    page.keyboard.press("a")
    expect(page.locator(f"#report-{r[1].id}")).to_be_focused()
    expect(page.locator("#mod-last")).to_contain_text("✓ Принято")
    expect(page.locator("#queue-count")).to_have_text("5")
    page.keyboard.press("d")
    page.keyboard.press("2")
    expect(page.locator("#mod-last")).to_contain_text("✗ Отклонено")
    expect(page.locator(f"#report-{r[2].id}")).to_be_focused()

    # Scrolled far down, the bar (counter, last decision, its undo) is still on the screen.
    page.mouse.wheel(0, 3000)
    page.wait_for_function("window.scrollY > 1000")
    box = bar.bounding_box()
    assert box["y"] == 0
    undo = page.locator("#mod-last .mod-undo button")
    expect(undo).to_be_in_viewport()
    undo.click()
    expect(page.locator(f"#report-{r[1].id} .mod-approve")).to_be_visible()
    expect(page.locator("#mod-last")).to_contain_text("Решение отменено")
    expect(page.locator("#queue-count")).to_have_text("5")


def test_on_a_phone_one_card_fills_the_screen_and_reasons_open_as_a_sheet(
    new_page, live_server, expert, db
):
    r = _queue(db, 3)
    page = new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    sign_in(page, live_server, expert)
    card = page.locator(f"#report-{r[0].id}")
    photo = card.locator(".mod-photo img").bounding_box()
    assert photo["width"] >= 340  # the photo spans the phone's width
    approve = card.locator(".mod-approve button").bounding_box()
    assert approve["y"] + approve["height"] <= 844  # on the first screen…
    assert approve["y"] >= 844 * 0.5  # …in the lower half, where a thumb reaches
    assert card.bounding_box()["height"] >= 844 * 0.8  # one card per screen
    # The reasons slide up from the bottom of the screen.
    card.locator(".mod-decline summary").tap()
    sheet = card.locator(".mod-sheet")
    expect(sheet).to_be_visible()
    box = sheet.bounding_box()
    assert abs(box["y"] + box["height"] - 844) <= 2 and box["width"] >= 389
    sheet.locator("[data-preset='1']").tap()
    expect(card).to_contain_text("✗ Отклонено")
    expect(sheet).to_be_hidden()
    expect(page.locator("#mod-last")).to_contain_text("✗ Отклонено")
    # The menu folds away; one tap opens it.
    expect(page.locator(".nav")).to_be_hidden()
    page.locator(".menu summary").tap()
    expect(page.locator(".nav a", has_text="Заявки")).to_be_visible()
