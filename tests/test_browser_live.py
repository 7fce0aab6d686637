"""The live queue in a real Chromium: new photos arrive at the end of an open queue without moving
focus, a card decided by another curator turns decided, the dashboard's numbers follow, and three
curators working one queue at once are shown different cards — also when one closes the tab."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlmodel import col

from app import clock, live
from app.db import session_scope
from app.models import Report, ReportClaim, ReportStatus
from tests import factories
from tests.browser_support import sign_in

pytestmark = pytest.mark.browser

# Which cards a page has on screen, and from when to when (ms since the epoch): a card counts as
# on screen while it is in review on that page and no decision on it has left the page.
RECORDER = """
window.__seen = {};
(function () {
  function scan() {
    var now = Date.now(), here = {};
    document.querySelectorAll(".mod-card[data-id]").forEach(function (c) {
      if (c.dataset.status !== "reviewing" || c.classList.contains("is-deciding")) return;
      var spans = window.__seen[c.dataset.id] = window.__seen[c.dataset.id] || [];
      here[c.dataset.id] = true;
      if (!spans.length || spans[spans.length - 1][1] !== null) spans.push([now, null]);
    });
    Object.keys(window.__seen).forEach(function (id) {
      var spans = window.__seen[id], last = spans[spans.length - 1];
      if (!here[id] && last[1] === null) last[1] = now;
    });
  }
  new MutationObserver(scan).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["class", "data-status"],
  });
})();
"""

OPEN_CARD = ".mod-card[data-status=reviewing]:not(.is-deciding)"


def _shift(db):
    return factories.make_shift(db, start=clock.local_today() - timedelta(days=1))


def _reports(db, shift, n, *, start=None):
    return factories.make_review_queue(db, shift, n, start=start, step=timedelta(seconds=1))


def _new_photo(db, shift):
    """A photo arrives: the report goes to review and the open queues are told (the bot's intake
    does both in one transaction; tests/test_bot_photos.py checks that it tells them)."""
    member = factories.make_member(db, shift)
    photo = factories.make_report(db, member, day=2, status=ReportStatus.reviewing)
    with session_scope() as session:
        live.notify(session, live.NEW, photo.id)
    return photo


def _listening(page):
    page.wait_for_function("document.body.dataset.live === 'on'")


def test_a_new_photo_is_appended_without_moving_focus_or_scroll(live_server, new_page, db, expert):
    shift = _shift(db)
    r = _reports(db, shift, 2)
    page = new_page(viewport={"width": 1280, "height": 700})
    sign_in(page, live_server, expert)
    _listening(page)
    expect(page.locator(f"#report-{r[0].id}")).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator(f"#report-{r[1].id}")).to_be_focused()
    scroll = page.evaluate("window.scrollY")

    arrived = _new_photo(db, shift)
    expect(page.locator(".mod-card")).to_have_count(3)
    ids = page.eval_on_selector_all(".mod-card", "els => els.map(e => Number(e.dataset.id))")
    assert ids == [r[0].id, r[1].id, arrived.id]  # at the end
    expect(page.locator("#queue-count")).to_have_text("3")
    expect(page.locator(f"#report-{r[1].id}")).to_be_focused()
    assert page.evaluate("window.scrollY") == scroll
    # The new card works like any other: J reaches it, A decides it.
    page.keyboard.press("j")
    expect(page.locator(f"#report-{arrived.id}")).to_be_focused()
    page.keyboard.press("a")
    expect(page.locator(f"#report-{arrived.id}")).to_contain_text("✓ Принято — вы")


def test_an_empty_queue_fills_when_a_photo_arrives(live_server, new_page, db, expert):
    shift = _shift(db)
    page = new_page()
    sign_in(page, live_server, expert)
    _listening(page)
    expect(page.locator(".mod-empty")).to_contain_text("Все фото проверены")
    arrived = _new_photo(db, shift)
    expect(page.locator(f"#report-{arrived.id}")).to_be_visible()
    expect(page.locator(".mod-empty")).to_have_count(0)
    expect(page.locator("#queue-count")).to_have_text("1")


def test_a_card_decided_by_another_curator_turns_decided_within_two_seconds(
    live_server, new_page, db, expert
):
    boris = factories.make_staff(db, email="boris@example.org", name="Борис", surname="Петров")
    shift = _shift(db)
    (report,) = _reports(db, shift, 1)
    anna_page, boris_page = new_page(), new_page()
    sign_in(anna_page, live_server, expert)
    _listening(anna_page)
    expect(anna_page.locator(f"#report-{report.id} .mod-approve")).to_be_visible()
    # Boris reaches Anna's card by its link (his queue skips it) and accepts it.
    sign_in(boris_page, live_server, boris, f"/reports/{report.id}")
    boris_page.keyboard.press("a")
    expect(boris_page.locator(f"#report-{report.id}")).to_contain_text("✓ Принято — вы")
    decided = time.monotonic()
    expect(anna_page.locator(f"#report-{report.id}")).to_contain_text(
        "✓ Принято — Борис П.", timeout=5_000
    )
    took = time.monotonic() - decided
    print(f"decided elsewhere → shown decided: {took:.2f} s")
    assert took <= 2.0
    expect(anna_page.locator("#queue-count")).to_have_text("0")


def test_a_late_event_of_an_undone_decision_leaves_the_open_card_and_its_text(
    live_server, new_page, db, expert
):
    """A "decided" event for a card that is open again on the server (one's own decision, undone
    before its event arrived: SQLite carries events once a second) must not redraw the card: the
    decline sheet stays open with what the curator has typed."""
    shift = _shift(db)
    (report,) = _reports(db, shift, 1)
    page = new_page()
    sign_in(page, live_server, expert)
    _listening(page)
    card = page.locator(f"#report-{report.id}")
    expect(card).to_be_focused()
    page.keyboard.press("d")
    field = page.locator(f"#reason-{report.id}")
    field.click()
    page.keyboard.type("почти получилось")
    page.evaluate(f"document.getElementById('report-{report.id}').__kept = true")

    rechecked = lambda r: f"/reports/{report.id}?next=" in r.url  # noqa: E731
    with page.expect_response(rechecked) as recheck, session_scope() as session:
        live.notify(session, live.DECIDED, report.id)
    assert recheck.value.ok
    page.wait_for_function(f"!document.getElementById('report-{report.id}').dataset.recheck")

    assert page.evaluate(f"document.getElementById('report-{report.id}').__kept === true")
    expect(field).to_be_visible()
    expect(field).to_have_value("почти получилось")
    expect(field).to_be_focused()


def test_dashboard_numbers_follow_the_queue(live_server, new_page, db, expert):
    shift = _shift(db)
    _reports(db, shift, 2)
    page = new_page()
    sign_in(page, live_server, expert, "/")
    _listening(page)
    waiting = page.locator("#dash-numbers .stat-value").first
    expect(waiting).to_have_text("2")
    _new_photo(db, shift)
    expect(waiting).to_have_text("3")


def _open_card(page) -> str | None:
    """Like a curator working top-down: the focused card if it is open, else the first open one."""
    return page.evaluate(
        """sel => {
          const a = document.activeElement;
          if (a && a.matches && a.matches(sel)) return a.dataset.id;
          const c = document.querySelector(sel);
          if (!c) return null;
          c.focus({preventScroll: true});
          return c.dataset.id;
        }""",
        OPEN_CARD,
    )


def _overlap(spans: list[dict[str, list]]) -> set[str]:
    """Cards that two pages had on screen at the same time."""
    both = set()
    for i, mine in enumerate(spans):
        for theirs in spans[i + 1 :]:
            for card in mine.keys() & theirs.keys():
                if any(a0 < b1 and b0 < a1 for a0, a1 in mine[card] for b0, b1 in theirs[card]):
                    both.add(card)
    return both


def _closed(spans: dict, at: float) -> dict:
    return {card: [[a, b if b is not None else at] for a, b in s] for card, s in spans.items()}


def test_three_curators_split_the_queue_and_a_closed_tab_leaves_nothing_behind(
    live_server, new_page, db
):
    total = 45
    shift = _shift(db)
    _reports(db, shift, total)
    staff = [
        factories.make_staff(db, email=f"curator{i}@example.org", name=name)
        for i, name in enumerate(("Анна", "Борис", "Вера"))
    ]
    pages = []
    for person in staff:
        page = new_page()
        page.context.add_init_script(RECORDER)
        sign_in(page, live_server, person, "/reports?size=5")
        _listening(page)
        pages.append(page)

    finished: list[dict] = []
    working = list(pages)
    decided = [0, 0, 0]
    closed = False
    deadline = time.monotonic() + 150
    while True:
        with session_scope() as session:
            left = session.execute(
                sa.select(sa.func.count()).where(col(Report.status) == ReportStatus.reviewing)
            ).scalar_one()
        if left == 0:
            break
        assert time.monotonic() < deadline, f"{left} cards still in review"
        acted = False
        for page in list(working):
            n = pages.index(page)
            card = _open_card(page)
            if card is None:
                continue
            if sum(decided) % 4 == 3:
                page.keyboard.press("d")
                expect(page.locator(f"#report-{card} .mod-presets")).to_be_visible()
                page.keyboard.press("1")
            else:
                page.keyboard.press("a")
            # The decision has left (decisions go out one at a time, in order), as the curator
            # sees by the focus moving on; only then is the next card theirs to look at.
            page.wait_for_function(
                "id => { const c = document.getElementById('report-' + id);"
                " return !c || c.classList.contains('is-deciding') || c.dataset.status !== 'reviewing'; }",
                arg=card,
            )
            decided[n] += 1
            acted = True
            # Vera closes her tab in the middle of a card, a third of the way through.
            if n == 2 and not closed and sum(decided) >= total // 3:
                # Mid-card: looking at a card, nothing on its way (a tab closed while a page
                # of cards is loading leaves those to their lease: docs/moderation.md).
                page.wait_for_function(
                    "!document.querySelector('#queue[data-pulling], .is-deciding, .htmx-request')"
                )
                if _open_card(page) is None:
                    continue
                spans = page.evaluate("window.__seen")
                held = page.eval_on_selector_all(OPEN_CARD, "els => els.length")
                page.close(run_before_unload=True)
                finished.append(_closed(spans, time.time() * 1000))
                working.remove(page)
                closed = True
                print(f"Vera closed her tab with {held} cards on screen")
                # The page said goodbye: her cards are free at once, not after the lease.
                with session_scope() as session:
                    vera = staff[2].id
                    wait_until = time.monotonic() + 10
                    while session.execute(
                        sa.select(sa.func.count()).where(
                            col(ReportClaim.staff_id) == vera,
                            col(ReportClaim.expires_at) > clock.now(),
                        )
                    ).scalar_one():
                        assert time.monotonic() < wait_until, (
                            "the closed tab kept its cards: "
                            + str(
                                session.execute(
                                    sa.select(ReportClaim.report_id).where(
                                        col(ReportClaim.staff_id) == vera
                                    )
                                )
                                .scalars()
                                .all()
                            )
                            + " on screen: "
                            + str(sorted(k for k, v in spans.items() if v[-1][1] is None))
                        )
                        session.rollback()
                        pages[0].wait_for_timeout(50)
        if not acted:  # nobody has a card right now: wait until somebody does
            with contextlib.suppress(PlaywrightTimeout):
                working[0].wait_for_function(
                    f"document.querySelector('{OPEN_CARD}')", timeout=2_000
                )
    assert closed
    end = time.time() * 1000
    for page in working:
        finished.append(_closed(page.evaluate("window.__seen"), end))
    both = _overlap(finished)
    seen = set().union(*(s.keys() for s in finished))
    share = len(both) / total
    print(
        f"three curators, {total} cards: decisions {decided}, cards seen {len(seen)}, "
        f"on two screens at once {len(both)} ({share:.1%})"
    )
    assert share <= 0.01
    with session_scope() as session:
        statuses = session.execute(
            sa.select(col(Report.status), sa.func.count()).group_by(col(Report.status))
        ).all()
    assert dict(statuses).keys() <= {ReportStatus.approved, ReportStatus.declined}
    assert sum(n for _, n in statuses) == total


def test_a_card_taken_over_after_a_lapsed_claim_says_so(settings, new_page, db, expert):
    """Anna's laptop slept past the lease; Boris was shown the card meanwhile. Her page's next
    renewal learns it and says so on the card."""
    from dataclasses import replace

    from app.main import create_app
    from app.settings import set_settings
    from tests.conftest import LiveServer

    quick = replace(settings, claim_seconds=12)  # renewed every 4 s
    set_settings(quick)
    server = LiveServer(create_app(quick, start_background=False))
    base = server.start()
    try:
        boris = factories.make_staff(db, email="boris@example.org", name="Борис")
        (report,) = _reports(db, _shift(db), 1)
        anna_page = new_page()
        sign_in(anna_page, base, expert)
        expect(anna_page.locator(f"#report-{report.id} .mod-approve")).to_be_visible()
        # Asleep: her page renews nothing, and her claim runs out.
        asleep = "**/reports/claims"
        anna_page.route(asleep, lambda route: route.abort())
        clock.set_now(clock.now() + timedelta(seconds=13))
        boris_page = new_page()
        sign_in(boris_page, base, boris)
        expect(boris_page.locator(f"#report-{report.id}")).to_be_visible()
        anna_page.unroute(asleep)  # awake: the next renewal tells her
        expect(anna_page.locator(f"#report-{report.id} .mod-elsewhere")).to_contain_text(
            "открыто у другого куратора", timeout=15_000
        )
        for page in (anna_page, boris_page):
            page.context.close()
    finally:
        server.stop()
        clock.set_now(None)
