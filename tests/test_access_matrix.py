"""The role matrix: every route × {anonymous, expert, administrator, blocked} gets the expected answer.

Built from `app.main.routes()`: a route missing from MATRIX fails the test, so every new screen must
say who may use it. Unknown ids answer 404 (never a 500) for every route that takes an id.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.routing import Route
from starlette.testclient import TestClient

from app import images, staff_admin
from app.main import routes
from app.models import MemberPause, ReportStatus, Staff, StaffStatus, TelegramUpdate, UpdateStatus
from tests import factories
from tests.conftest import csrf_token, login

PUBLIC, STAFF, ADMIN = "public", "staff", "admin"
# Staff only, but an endless stream: 401 without a live session (an EventSource cannot follow a
# redirect to a login page); staff's streams are tested in tests/test_live_queue.py.
STREAM = "stream"

MATRIX: dict[tuple[str, str], str] = {
    # sign in, operations
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/"): STAFF,
    ("GET", "/media/{key:path}"): STAFF,
    # Telegram: authenticated by the webhook secret header or the WebApp's signed initData, not by
    # a staff session (tests/test_bot_*.py check both)
    ("POST", "/telegram/webhook"): PUBLIC,
    ("GET", "/telegram/registration"): PUBLIC,
    ("POST", "/telegram/registration"): PUBLIC,
    ("GET", "/telegram/consent/{version}"): PUBLIC,  # the consent texts: no personal data
    ("GET", "/telegram/progress"): PUBLIC,
    ("POST", "/telegram/progress"): PUBLIC,
    # task pictures are the same for every child; report photos are never served here
    ("GET", "/telegram/tasks/{task_id:int}/picture"): PUBLIC,
    # moderation: report queue, application queue
    ("GET", "/reports"): STAFF,
    ("GET", "/reports/{report_id:int}"): STAFF,
    ("POST", "/reports/{report_id:int}/approve"): STAFF,
    ("POST", "/reports/{report_id:int}/decline"): STAFF,
    ("POST", "/reports/{report_id:int}/undo"): STAFF,
    ("GET", "/reports/count"): STAFF,
    ("POST", "/reports/claims"): STAFF,
    ("POST", "/reports/claims/release"): STAFF,
    ("GET", "/events"): STREAM,
    ("GET", "/applications"): STAFF,
    ("POST", "/applications/approve"): STAFF,
    ("POST", "/applications/{application_id:int}/approve"): STAFF,
    ("POST", "/applications/{application_id:int}/decline"): STAFF,
    ("POST", "/applications/{application_id:int}/undo"): STAFF,
    # shifts and plans
    ("GET", "/shifts"): ADMIN,
    ("GET", "/shifts/new"): ADMIN,
    ("POST", "/shifts/new"): ADMIN,
    ("GET", "/shifts/{shift_id:int}"): ADMIN,
    ("POST", "/shifts/{shift_id:int}"): ADMIN,
    ("POST", "/shifts/{shift_id:int}/final-message"): ADMIN,
    ("POST", "/shifts/{shift_id:int}/start"): ADMIN,
    ("POST", "/shifts/{shift_id:int}/cancel"): ADMIN,
    ("GET", "/shifts/{shift_id:int}/plan"): ADMIN,
    ("POST", "/shifts/{shift_id:int}/plan"): ADMIN,
    ("POST", "/shifts/{shift_id:int}/plan/{day:int}"): ADMIN,
    # tasks
    ("GET", "/tasks"): ADMIN,
    ("GET", "/tasks/new"): ADMIN,
    ("POST", "/tasks/new"): ADMIN,
    ("GET", "/tasks/{task_id:int}"): ADMIN,
    ("POST", "/tasks/{task_id:int}"): ADMIN,
    ("POST", "/tasks/{task_id:int}/archive"): ADMIN,
    ("POST", "/tasks/{task_id:int}/delete"): ADMIN,
    # participants and members
    ("GET", "/participants"): STAFF,
    ("GET", "/participants/{participant_id:int}"): STAFF,
    ("POST", "/participants/{participant_id:int}/test"): ADMIN,
    ("GET", "/participants/{participant_id:int}/export"): ADMIN,
    ("GET", "/participants/{participant_id:int}/delete"): ADMIN,
    ("POST", "/participants/{participant_id:int}/delete"): ADMIN,
    ("GET", "/members/{member_id:int}"): STAFF,
    ("POST", "/members/{member_id:int}/status"): ADMIN,
    ("POST", "/members/{member_id:int}/pauses"): ADMIN,
    ("POST", "/members/{member_id:int}/pauses/{pause_id:int}/end"): ADMIN,
    # results: experts see them and download the exports, read-only (README §5); the page links
    # experts back to the start page, not to the shift (admin-only)
    ("GET", "/shifts/{shift_id:int}/results"): STAFF,
    ("GET", "/shifts/{shift_id:int}/results.{ext}"): STAFF,
    # staff accounts, links, profile
    ("GET", "/staff"): ADMIN,
    ("POST", "/staff/invite"): ADMIN,
    ("POST", "/staff/tokens/{token_id:int}/revoke"): ADMIN,
    ("POST", "/staff/tokens/{token_id:int}/reissue"): ADMIN,
    ("POST", "/staff/{staff_id:int}/role"): ADMIN,
    ("POST", "/staff/{staff_id:int}/block"): ADMIN,
    ("POST", "/staff/{staff_id:int}/reset"): ADMIN,
    ("GET", "/staff/{staff_id:int}/pace"): ADMIN,  # one's own pace is on the profile
    ("GET", "/invite/{secret}"): PUBLIC,
    ("POST", "/invite/{secret}"): PUBLIC,
    ("GET", "/profile"): STAFF,
    ("POST", "/profile"): STAFF,
    ("POST", "/profile/password"): STAFF,
    # audit; failed Telegram updates
    ("GET", "/audit"): ADMIN,
    ("GET", "/updates"): ADMIN,
    ("POST", "/updates/{update_id:int}/retry"): ADMIN,
}

PARAM_RE = re.compile(r"{(\w+)(?::\w+)?}")


def _endpoints(route_list: list | None = None) -> list[tuple[str, str]]:
    found = []
    for route in routes() if route_list is None else route_list:
        if not isinstance(route, Route):
            continue  # the static files mount
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                found.append((method, route.path))
    # Logging out ends the persona's session: keep it last.
    return sorted(found, key=lambda e: e[1] == "/logout")


def _unlisted(route_list: list | None = None) -> tuple[list, list]:
    endpoints = set(_endpoints(route_list))
    return sorted(endpoints - MATRIX.keys()), sorted(MATRIX.keys() - endpoints)


def test_every_route_is_in_the_matrix():
    missing, stale = _unlisted()
    assert not missing, f"routes with no row in MATRIX (who may use them?): {missing}"
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"


def test_a_new_route_without_a_row_is_caught():
    extra = Route("/reports/secret", lambda request: None, methods=["POST"])
    missing, _ = _unlisted([*routes(), extra])
    assert missing == [("POST", "/reports/secret")]


@pytest.fixture
def world(db, admin):
    """One of everything, so every id in a route points at a real object."""
    task = factories.make_task(db, "Почистить зубы")
    shift = factories.make_shift(db, days=10, tasks=[task])
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, 1, ReportStatus.approved, photos=1)
    application = factories.make_application(db, factories.make_participant(db), shift)
    target = factories.make_staff(db, email="target@example.org")
    pause = MemberPause(
        member_id=member.id,
        first_day=shift.started_at + timedelta(days=2),
        last_day=shift.started_at + timedelta(days=4),
        reason="болеет",
    )
    db.add(pause)
    token, secret = staff_admin.invite(db, admin, "invitee@example.org", "Ира", "", "expert")
    failed = TelegramUpdate(
        update_id=424242, payload={"update_id": 424242}, status=UpdateStatus.failed, error="x"
    )
    db.add(failed)
    db.commit()
    stored = images.store_image(factories.jpeg_bytes(seed=7))
    return {
        "shift_id": shift.id,
        "day": 8,
        "task_id": task.id,
        "participant_id": member.participant_id,
        "member_id": member.id,
        "pause_id": pause.id,
        "report_id": report.id,
        "application_id": application.id,
        "token_id": token.id,
        "staff_id": target.id,
        "ext": "csv",
        "secret": secret,
        "key": stored.thumb_key,
        "version": "2026-2",
        "update_id": failed.update_id,
    }


def _url(path: str, values: dict) -> str:
    return PARAM_RE.sub(lambda m: str(values[m.group(1)]), path)


def _call(client: TestClient, method: str, url: str, token: str):
    headers = {"X-CSRF-Token": token}
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={}, headers=headers, follow_redirects=False)


def _is_login_redirect(response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def _persona(name: str, app, db, admin) -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    client.__enter__()
    if name == "expert":
        assert login(client, factories.make_staff(db, email="exp@example.org")).status_code == 303
    elif name == "administrator":
        assert login(client, admin).status_code == 303
    elif name == "blocked":
        person = factories.make_staff(db, email="soon-blocked@example.org")
        assert login(client, person).status_code == 303
        person = db.exec(select(Staff).where(Staff.id == person.id)).one()
        person.status = StaffStatus.blocked
        db.add(person)
        db.commit()
    return client


@pytest.mark.parametrize("persona", ["anonymous", "expert", "administrator", "blocked"])
def test_role_matrix(persona, app, db, admin, world):
    client = _persona(persona, app, db, admin)
    token = csrf_token(client, "/login")
    problems = []
    try:
        for method, path in _endpoints():
            access = MATRIX[(method, path)]
            if access == STREAM and persona in ("expert", "administrator"):
                continue
            response = _call(client, method, _url(path, world), token)
            code = response.status_code
            where = f"{persona} {method} {path} → {code}"
            if code >= 500:
                problems.append(where)
            elif access == STREAM:
                if code != 401:
                    problems.append(where + " (expected 401)")
            elif access == PUBLIC:
                continue
            elif persona in ("anonymous", "blocked"):
                if not _is_login_redirect(response):
                    problems.append(where + " (expected a login redirect)")
            elif persona == "expert" and access == ADMIN:
                if code != 403 or "Нет доступа" not in response.text:
                    problems.append(where + " (expected the 403 page)")
            else:
                ok = code == 200 if method == "GET" else code in (200, 204, 303, 400, 409)
                if not ok or _is_login_redirect(response):
                    problems.append(where + " (expected success)")
    finally:
        client.__exit__(None, None, None)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", ["expert", "administrator"])
def test_guessed_ids_are_404_never_500(persona, app, db, admin, world):
    client = _persona(persona, app, db, admin)
    token = csrf_token(client, "/")
    problems = []
    try:
        for method, path in _endpoints():
            names = PARAM_RE.findall(path)
            access = MATRIX[(method, path)]
            if not names or access in (PUBLIC, STREAM) or (persona == "expert" and access == ADMIN):
                continue
            for name in names:
                if name in ("ext", "key", "secret"):
                    bad = {"ext": "exe", "key": "reports/nope.jpg", "secret": "nope"}[name]
                else:
                    bad = 999999
                response = _call(client, method, _url(path, {**world, name: bad}), token)
                if response.status_code != 404:
                    problems.append(
                        f"{persona} {method} {path} with {name}={bad} → {response.status_code}"
                    )
    finally:
        client.__exit__(None, None, None)
    assert not problems, "\n".join(problems)


def test_invite_link_with_a_guessed_secret_is_gone(client):
    assert client.get("/invite/guess").status_code == 410
