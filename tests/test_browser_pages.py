"""Every page of demo-like data fits a phone and a laptop, for an administrator and an expert.

One test (the data is seeded once: `seeds.fill` with a smaller world) visits every page linked
from the menu plus the detail pages, at 390 × 844 and 1366 × 900, as both roles, and fails on
horizontal overflow, a console error, an uncaught script error, a broken image (lazy images are
scrolled into view first) or a page that is not 200. Screenshots of the failing pages are saved
under the test's tmp folder; the failure message names it.
"""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, col, select

from app.models import (
    Member,
    Participant,
    Report,
    ReportStatus,
    Shift,
    ShiftStatus,
    Staff,
    Task,
)
from seeds import data
from seeds.fill import fill

pytestmark = pytest.mark.browser

WIDTHS = {"phone": (390, 844), "laptop": (1366, 900)}


def _pages(db: Session) -> dict[str, list[str]]:
    """The paths to visit for each role, with real ids from the seeded data."""

    def shift(status: ShiftStatus) -> int:
        return db.exec(select(Shift.id).where(Shift.status == status)).first()  # type: ignore[return-value]

    started, finished = shift(ShiftStatus.started), shift(ShiftStatus.finished)
    preparing, cancelled = shift(ShiftStatus.preparing), shift(ShiftStatus.cancelled)
    reviewing = db.exec(
        select(Report.id).where(Report.status == ReportStatus.reviewing).order_by(col(Report.id))
    ).first()
    member = db.exec(
        select(Member.id).where(Member.shift_id == started).order_by(col(Member.id))
    ).first()
    participant = db.exec(select(Member.participant_id).where(Member.id == member)).one()
    blocked = db.exec(
        select(Participant.id).where(col(Participant.is_bot_blocked).is_(True))
    ).first()
    task = db.exec(select(Task.id).order_by(col(Task.id))).first()
    expert = db.exec(select(Staff.id).where(Staff.email == data.EXPERT["email"])).one()
    staff_pages = [
        "/",
        "/reports",
        "/reports?flagged=1",
        "/reports?status=all",
        "/reports?status=declined",
        f"/reports/{reviewing}",
        "/applications",
        "/participants",
        "/participants?q=%D0%B0",
        f"/participants/{participant}",
        f"/participants/{blocked}",
        f"/members/{member}",
        f"/shifts/{started}/results",
        f"/shifts/{finished}/results",
        f"/shifts/{preparing}/results",
        "/profile",
    ]
    admin_pages = [
        *staff_pages,
        "/shifts",
        "/shifts/new",
        f"/shifts/{started}",
        f"/shifts/{preparing}",
        f"/shifts/{cancelled}",
        f"/shifts/{started}/plan",
        f"/shifts/{preparing}/plan",
        "/tasks",
        "/tasks/new",
        f"/tasks/{task}",
        "/staff",
        f"/staff/{expert}/pace",
        "/audit",
        "/audit?type=report",
        f"/participants/{participant}/delete",
    ]
    return {"administrator": admin_pages, "expert": staff_pages}


CHECK_PAGE = """async () => {
  // Lazy images load only near the viewport: walk down the page, then wait for every image.
  for (const img of document.images) img.loading = "eager";
  const step = Math.max(window.innerHeight - 100, 200);
  for (let y = 0; y < document.documentElement.scrollHeight; y += step) {
    window.scrollTo(0, y);
    await new Promise(r => requestAnimationFrame(r));
  }
  window.scrollTo(0, 0);
  // Scrolling may have fetched more (the queue's next page) and photos are swapped for their full
  // size: wait until every image on the page, old or new, has loaded or failed.
  for (let i = 0; i < 200 && Array.from(document.images).some(img => !img.complete); i++) {
    await new Promise(r => setTimeout(r, 50));
  }
  const broken = Array.from(document.images)
    .filter(img => img.complete && !img.naturalWidth).map(img => img.getAttribute("src"));
  const width = document.documentElement.clientWidth;
  const wide = Array.from(document.querySelectorAll("body *")).filter(el => {
    const box = el.getBoundingClientRect();
    return box.width && box.right > width + 1 && !el.closest(".table-wrap, .mod-strip, svg");
  }).slice(0, 3).map(el => el.tagName.toLowerCase() + (el.className ? "." + el.className : ""));
  // A plain form POST carries the session's CSRF token (or the server refuses it).
  const tokenless = Array.from(document.querySelectorAll("form[method=post]"))
    .filter(f => !(f.querySelector("input[name=csrf_token]") || {}).value).map(f => f.getAttribute("action"));
  const links = Array.from(document.querySelectorAll("a[href^='/']")).map(a => a.getAttribute("href"));
  return {scroll: document.documentElement.scrollWidth, width, broken, wide, links, tokenless};
}"""

ID = re.compile(r"\d+")


def test_every_page_fits_both_screens_for_both_roles(browser, live_server, settings, db, tmp_path):
    with Session(db.get_bind()) as session:
        fill(session, progress=lambda _msg: None, participants=60, members=8, day=14)
        session.commit()
    pages = _pages(db)
    shots = tmp_path / "screenshots"
    problems: list[str] = []
    logins = {
        "administrator": (data.ADMIN["email"], data.ADMIN["password"]),
        "expert": (data.EXPERT["email"], data.EXPERT["password"]),
    }
    for role, paths in pages.items():
        links: dict[str, tuple[str, str]] = {}  # one link of each shape → (link, page it is on)
        for device, (width, height) in WIDTHS.items():
            context = browser.new_context(
                locale="ru-RU", viewport={"width": width, "height": height}
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("console", lambda m, e=errors: m.type == "error" and e.append(m.text))
            page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
            try:
                page.goto(f"{live_server}/login")
                page.fill("#email", logins[role][0])
                page.fill("#password", logins[role][1])
                page.click("button[type=submit]")
                page.wait_for_url(f"{live_server}/reports")
                for path in paths:
                    errors.clear()
                    response = page.goto(live_server + path)
                    page.wait_for_load_state("load")
                    found = page.evaluate(CHECK_PAGE)
                    where = f"{role} {device} {path}"
                    failed = []
                    if response is None or response.status != 200:
                        failed.append(f"status {response.status if response else '—'}")
                    if found["scroll"] > found["width"]:
                        failed.append(
                            f"{found['scroll']} px wide on a {found['width']} px screen"
                            f" ({', '.join(found['wide'])})"
                        )
                    if found["broken"]:
                        failed.append(f"broken images {found['broken'][:3]}")
                    if errors:
                        failed.append(f"console: {errors[:3]}")
                    if found["tokenless"]:
                        failed.append(f"forms without a CSRF token: {found['tokenless'][:3]}")
                    for link in found["links"]:
                        shape = ID.sub("N", link.split("?")[0])
                        if not shape.startswith(("/media/", "/static/")):
                            links.setdefault(shape, (link, path))
                    if failed:
                        shots.mkdir(exist_ok=True)
                        name = f"{role}-{device}-{path.strip('/').replace('/', '_') or 'home'}"
                        page.screenshot(path=str(shots / f"{name[:80]}.png"), full_page=True)
                        problems.append(f"{where}: {'; '.join(failed)}")
                if device == "laptop":
                    # Every link a role is shown leads somewhere it may go: no "Нет доступа".
                    for link, where in links.values():
                        answer = page.request.get(live_server + link, max_redirects=0)
                        if answer.status >= 400:
                            problems.append(f"{role}: {where} links to {link} → {answer.status}")
            finally:
                context.close()
    assert not problems, f"screenshots in {shots}\n" + "\n".join(problems)
