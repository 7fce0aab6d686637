"""The live queue over HTTP: curators split the queue (soft claims), and open pages hear of new
photos and decisions through GET /events — authenticated, limited per staff member, ended at
logout and when the account is blocked. Browser behaviour: tests/test_browser_live.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from sqlmodel import select
from starlette.testclient import TestClient

from app import clock, live, staff_admin
from app.db import session_scope
from app.models import Report, ReportClaim, ReportStatus, Staff
from app.settings import set_settings
from tests import factories
from tests.conftest import PASSWORD, LiveServer, csrf_token, login

HX = {"HX-Request": "true"}


def _queue(db, n):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=1))
    start = clock.now() - timedelta(hours=1)
    return factories.make_review_queue(db, shift, n, start=start, named=True)


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'id="report-(\d+)"', html)]


def _claims(db) -> dict[int, int]:
    db.expire_all()
    return {c.report_id: c.staff_id for c in db.exec(select(ReportClaim)).all()}


@pytest.fixture
def curators(app, db):
    """Two curators, each signed in with a browser of their own."""
    anna = factories.make_staff(db, email="anna@example.org", name="Анна")
    boris = factories.make_staff(db, email="boris@example.org", name="Борис")
    with TestClient(app) as first, TestClient(app) as second:
        assert login(first, anna).status_code == 303
        assert login(second, boris).status_code == 303
        yield (anna, first), (boris, second)


# --- curators split the queue ------------------------------------------------------------------


def test_second_curator_is_shown_the_cards_nobody_has_open(curators, db):
    (anna, a), (boris, b) = curators
    r = _queue(db, 5)
    assert _ids(a.get("/reports?size=2").text) == [r[0].id, r[1].id]
    assert _ids(b.get("/reports?size=2").text) == [r[2].id, r[3].id]
    assert _claims(db) == {r[0].id: anna.id, r[1].id: anna.id, r[2].id: boris.id, r[3].id: boris.id}
    # A reload shows one's own cards again; the next page skips others' cards too.
    assert _ids(a.get("/reports?size=2").text) == [r[0].id, r[1].id]
    page = b.get("/reports?size=2").text
    next_url = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert _ids(b.get(next_url, headers=HX).text) == [r[4].id]
    # The counter still counts the whole queue: every card is still waiting for someone.
    page = a.get("/reports?size=2").text
    assert re.search(r'id="queue-count">(\d+)<', page).group(1) == "5"


def test_a_claimed_card_is_reachable_by_link_and_by_name(curators, db):
    (anna, a), (_, b) = curators
    r = _queue(db, 2)
    a.get("/reports")
    assert _ids(b.get("/reports").text) == []
    assert f'id="report-{r[0].id}"' in b.get(f"/reports/{r[0].id}").text
    assert _ids(b.get("/reports?q=Ребёнок0").text) == [r[0].id]
    assert _claims(db)[r[0].id] == anna.id  # looking does not take it away


def test_the_decision_stays_the_final_guard(curators, db):
    (_anna, a), (_, b) = curators
    (report,) = _queue(db, 1)
    a.get("/reports")
    answer = b.post(
        f"/reports/{report.id}/approve", data={"csrf_token": csrf_token(b, "/reports")}, headers=HX
    )
    assert "✓ Принято" in answer.text
    assert _claims(db) == {}  # decided: the claim is over
    answer = a.post(
        f"/reports/{report.id}/decline",
        data={"csrf_token": csrf_token(a, "/reports"), "preset": "1"},
        headers=HX,
    )
    assert "Другой куратор уже проверил это фото: принято." in answer.text


def test_a_lease_that_is_not_renewed_runs_out(curators, db, settings):
    (_anna, a), (boris, b) = curators
    r = _queue(db, 1)
    a.get("/reports")
    assert _ids(b.get("/reports").text) == []
    clock.set_now(clock.now() + timedelta(seconds=settings.claim_seconds + 1))
    assert _ids(b.get("/reports").text) == [r[0].id]
    assert _claims(db) == {r[0].id: boris.id}


def test_renewal_keeps_only_ones_own_cards_in_review(curators, db, settings):
    (anna, a), (_boris, b) = curators
    r = _queue(db, 4)
    a.get("/reports?size=2")  # Anna: r0, r1
    b.get("/reports?size=1")  # Boris: r2
    decided = r[3]
    db.get(Report, decided.id).status = ReportStatus.approved
    db.commit()
    clock.set_now(clock.now() + timedelta(seconds=settings.claim_seconds - 5))
    token = csrf_token(a, "/profile")
    answer = a.post(
        "/reports/claims",
        data={"id": [str(r[0].id), str(r[2].id), str(decided.id), "999999", "x"]},
        headers={"X-CSRF-Token": token},
    )
    assert answer.json() == {"held": [r[0].id]}
    clock.set_now(clock.now() + timedelta(seconds=10))  # r1 was not renewed: it ran out
    assert _ids(b.get("/reports").text) == [r[1].id, r[2].id]
    assert _claims(db)[r[0].id] == anna.id


def test_leaving_the_page_releases_its_cards(curators, db):
    (anna, a), (_boris, b) = curators
    r = _queue(db, 2)
    a.get("/reports")
    form = {"csrf_token": csrf_token(a, "/profile"), "id": [str(r[0].id), str(r[1].id)]}
    # Another curator cannot release Anna's cards…
    b.post("/reports/claims/release", data={**form, "csrf_token": csrf_token(b, "/profile")})
    assert _claims(db) == {r[0].id: anna.id, r[1].id: anna.id}
    # …and a release without the CSRF token is refused.
    refused = a.post("/reports/claims/release", data={"id": [str(r[0].id)]})
    assert refused.status_code == 403
    assert a.post("/reports/claims/release", data=form).status_code == 204
    assert _claims(db) == {}
    assert _ids(b.get("/reports").text) == [r[0].id, r[1].id]


def test_renewing_needs_a_signed_in_curator(client, db):
    (report,) = _queue(db, 1)
    token = csrf_token(client, "/login")
    answer = client.post(
        "/reports/claims", data={"id": report.id, "csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_undo_puts_the_card_back_on_the_deciders_screen_only(curators, db):
    (anna, a), (_, b) = curators
    (report,) = _queue(db, 1)
    a.get("/reports")
    token = csrf_token(a, "/reports")
    a.post(f"/reports/{report.id}/approve", data={"csrf_token": token}, headers=HX)
    a.post(f"/reports/{report.id}/undo", data={"csrf_token": token}, headers=HX)
    assert _claims(db) == {report.id: anna.id}
    assert _ids(b.get("/reports").text) == []


def test_a_fresh_page_brings_only_cards_nobody_has_open(curators, db):
    (_anna, a), (_, b) = curators
    r = _queue(db, 3)
    a.get("/reports?size=1")  # r0
    b.get("/reports?size=1")  # r1
    fresh = a.get("/reports?fresh=1", headers=HX).text
    assert "<html" not in fresh
    assert _ids(fresh) == [r[2].id]
    assert _ids(a.get("/reports?fresh=1", headers=HX).text) == []


def test_counter_fragment_counts_the_list(expert_client, db):
    _queue(db, 3)
    answer = expert_client.get("/reports/count")
    assert answer.text.strip() == '<strong id="queue-count">3</strong>'
    assert "0" in expert_client.get("/reports/count?q=Никто").text


# --- the event stream ----------------------------------------------------------------------------


class Stream:
    """A server-sent event stream read line by line (no buffering beyond one line)."""

    def __init__(self, http: requests.Session, url: str) -> None:
        self.response = http.get(url, stream=True, timeout=(5, 20))
        self.lines = self.response.iter_lines(chunk_size=1, decode_unicode=True)

    def next(self) -> tuple[str, str]:
        """The next event (name, data); comments (keep-alives) are skipped."""
        name, data = "message", ""
        for line in self.lines:
            if line == "":
                if data or name != "message":
                    return name, data
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        raise EOFError("the stream ended")

    def next_report(self) -> dict:
        while True:
            name, data = self.next()
            if name == "report":
                return json.loads(data)

    def close(self) -> None:
        self.response.close()


def _browser(base: str, staff: Staff) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=5).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = http.post(
        f"{base}/login",
        data={"email": staff.email, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    page = http.get(f"{base}/profile", timeout=5).text  # the session's token after signing in
    http.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    http.headers["Origin"] = base
    return http


@pytest.fixture
def server(settings):
    """The app on a loopback port, with fast heartbeats and at most two streams per person."""
    fast = replace(
        settings, live_heartbeat_seconds=0.3, live_streams_per_staff=2, live_poll_seconds=0.2
    )
    set_settings(fast)
    from app.main import create_app

    running = LiveServer(create_app(fast, start_background=False))
    yield running.start()
    running.stop()


@pytest.fixture
def streams():
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def _open(streams, http, base) -> Stream:
    stream = Stream(http, f"{base}/events")
    streams.append(stream)
    return stream


def test_events_need_a_signed_in_staff_member(server):
    answer = requests.get(f"{server}/events", timeout=5)
    assert answer.status_code == 401
    assert "Войдите" in answer.text


def test_a_stream_hears_new_photos_and_decisions_after_they_commit(server, db, expert, streams):
    (report,) = _queue(db, 1)
    http = _browser(server, expert)
    stream = _open(streams, http, server)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.next()[0] == "hello"
    with pytest.raises(RuntimeError), session_scope() as session:
        live.notify(session, live.NEW, 111)
        raise RuntimeError("rolled back: nobody hears of it")
    with session_scope() as session:
        live.notify(session, live.NEW, report.id)
    assert stream.next_report() == {"kind": "new", "id": report.id}
    page = http.get(f"{server}/reports", timeout=5)
    assert page.status_code == 200
    decided = http.post(f"{server}/reports/{report.id}/approve", data={}, timeout=5)
    assert decided.status_code == 200, decided.text
    assert stream.next_report() == {"kind": "decided", "id": report.id}


def test_at_most_two_streams_per_person_here(server, db, expert, admin, streams):
    http = _browser(server, expert)
    for _ in range(2):
        assert _open(streams, http, server).next()[0] == "hello"
    third = requests.get(f"{server}/events", cookies=http.cookies, timeout=5)
    assert third.status_code == 429
    assert "нескольких вкладках" in third.text
    # Somebody else is not limited by this person's tabs.
    assert _open(streams, _browser(server, admin), server).next()[0] == "hello"


def test_a_stream_ends_at_logout(server, expert, streams):
    http = _browser(server, expert)
    stream = _open(streams, http, server)
    assert stream.next()[0] == "hello"
    assert http.post(f"{server}/logout", data={}, timeout=5, allow_redirects=False).ok
    assert stream.next()[0] == "bye"
    with pytest.raises(EOFError):
        stream.next()


def test_a_stream_ends_when_the_account_is_blocked(server, db, expert, admin, streams):
    http = _browser(server, expert)
    stream = _open(streams, http, server)
    assert stream.next()[0] == "hello"
    with session_scope() as session:
        staff_admin.set_blocked(
            session, session.get(Staff, admin.id), session.get(Staff, expert.id), True
        )
    assert stream.next()[0] == "bye"


# --- the intake tells the open queues, in its own transaction ---------------------------------


def test_a_photo_from_the_bot_tells_the_open_queues(
    db, bot_client, fake_tg, noon, bot_settings, is_pg, database_url
):
    from app.db import libpq_url
    from app.models import LiveEvent, Participant
    from tests.bot_support import photo_update, post_update

    member = factories.make_member(db, factories.make_shift(db))
    report = factories.make_report(db, member, day=1)
    uid = db.get(Participant, member.participant_id).telegram_id
    if is_pg:
        import psycopg

        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(f"LISTEN {live.CHANNEL}")
            answer = post_update(
                bot_client, photo_update(fake_tg, uid, factories.jpeg_bytes(seed=5))
            )
            assert answer.status_code == 200
            heard = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
        assert heard == [f"new:{report.id}"]
    else:
        answer = post_update(bot_client, photo_update(fake_tg, uid, factories.jpeg_bytes(seed=5)))
        assert answer.status_code == 200
        rows = db.exec(select(LiveEvent.kind, LiveEvent.report_id)).all()
        assert [tuple(r) for r in rows] == [("new", report.id)]
