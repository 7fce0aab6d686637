"""Server-side sessions: the cookie names a session row, and ending the row ends every copy."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner
from sqlmodel import Session, select
from starlette.testclient import TestClient

from app import accounts, clock
from app.models import StaffSession
from tests.conftest import TEST_SECRET, csrf_token, login

COOKIE = "lomaya_session"


@pytest.fixture
def frozen():
    moment = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    clock.set_now(moment)
    return moment


def _cookie_data(client: TestClient) -> dict:
    signed = client.cookies[COOKIE].encode()
    data = TimestampSigner(TEST_SECRET).unsign(signed)
    return json.loads(base64.b64decode(data))


def _copy(app, client: TestClient) -> TestClient:
    """Another browser holding a copy of `client`'s cookie (say, stolen from a shared computer)."""
    other = TestClient(app, base_url="http://testserver")
    other.cookies.set(COOKIE, client.cookies[COOKIE])
    return other


def _logout(client: TestClient):
    token = csrf_token(client, "/")
    return client.post("/logout", data={"csrf_token": token}, follow_redirects=False)


def _signed_in(client: TestClient) -> bool:
    response = client.get("/", follow_redirects=False)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/login")
        return False
    assert response.status_code == 200
    return True


def _rows(db) -> list[StaffSession]:
    db.expire_all()
    return list(db.exec(select(StaffSession).order_by(StaffSession.id)).all())


def test_the_cookie_carries_only_a_random_id_stored_hashed(client, admin, db):
    login(client, admin)
    data = _cookie_data(client)
    assert set(data) <= {"sid", "csrf"} and len(data["sid"]) >= 40
    [row] = _rows(db)
    assert row.staff_id == admin.id and row.revoked_at is None
    assert row.token_hash == hashlib.sha256(data["sid"].encode()).hexdigest()


def test_a_cookie_copied_before_logout_gets_the_login_page(app, client, admin, db):
    login(client, admin)
    with _copy(app, client) as thief:
        assert _signed_in(thief)
        assert _logout(client).status_code == 303
        assert not _signed_in(client)
        assert not _signed_in(thief)  # the copy died with the session row
        page = thief.get("/reports")
        assert "Вход для сотрудников" in page.text
    [row] = _rows(db)
    assert row.revoked_at is not None


def test_another_devices_session_survives_the_first_devices_logout(app, client, expert):
    login(client, expert)
    with TestClient(app, base_url="http://testserver") as phone:
        login(phone, expert)
        assert _logout(client).status_code == 303
        assert not _signed_in(client)
        assert _signed_in(phone)


def test_blocking_ends_both_of_two_sessions_and_their_copies(app, admin_client, expert, db):
    with (
        TestClient(app, base_url="http://testserver") as laptop,
        TestClient(app, base_url="http://testserver") as phone,
    ):
        login(laptop, expert)
        login(phone, expert)
        with _copy(app, laptop) as copy:
            assert _signed_in(laptop) and _signed_in(phone) and _signed_in(copy)
            token = csrf_token(admin_client, "/staff")
            response = admin_client.post(
                f"/staff/{expert.id}/block",
                data={"blocked": "1", "csrf_token": token},
                follow_redirects=False,
            )
            assert response.status_code == 303
            assert not _signed_in(laptop) and not _signed_in(phone) and not _signed_in(copy)
    assert all(row.revoked_at is not None for row in _rows(db) if row.staff_id == expert.id)
    assert _signed_in(admin_client)  # the administrator's own session is untouched
    # unblocked, the old cookies stay dead: a new login is needed
    token = csrf_token(admin_client, "/staff")
    admin_client.post(f"/staff/{expert.id}/block", data={"blocked": "0", "csrf_token": token})
    with _copy(app, admin_client) as other:
        other.cookies.clear()
        login(other, expert)
        assert _signed_in(other)


def test_a_role_change_ends_the_sessions_of_that_person_only(app, admin_client, expert, db):
    with TestClient(app, base_url="http://testserver") as expert_browser:
        login(expert_browser, expert)
        token = csrf_token(admin_client, "/staff")
        admin_client.post(
            f"/staff/{expert.id}/role", data={"role": "administrator", "csrf_token": token}
        )
        assert not _signed_in(expert_browser)
        assert _signed_in(admin_client)


def test_changing_ones_password_keeps_this_browser_and_ends_the_others(app, client, expert, db):
    login(client, expert)
    with _copy(app, client) as copy, TestClient(app, base_url="http://testserver") as phone:
        login(phone, expert)
        old_sid = _cookie_data(client)["sid"]
        token = csrf_token(client, "/profile")
        response = client.post(
            "/profile/password",
            data={
                "current": "correct horse battery",
                "password": "a brand new passphrase",
                "password2": "a brand new passphrase",
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert _signed_in(client) and _cookie_data(client)["sid"] != old_sid  # a fresh session
        assert not _signed_in(copy) and not _signed_in(phone)


def test_a_session_expires_14_days_after_it_was_last_used(client, admin, db, frozen):
    login(client, admin)
    clock.set_now(frozen + timedelta(days=10))
    assert _signed_in(client)  # used: the 14 days count from here
    clock.set_now(frozen + timedelta(days=10) + accounts.SESSION_LIFETIME - timedelta(minutes=2))
    assert _signed_in(client)
    clock.set_now(clock.now() + accounts.SESSION_LIFETIME + timedelta(seconds=1))
    assert not _signed_in(client)


def test_last_seen_is_written_at_most_once_a_minute(client, admin, db, frozen):
    login(client, admin)
    [row] = _rows(db)
    assert row.last_seen_at == frozen
    clock.set_now(frozen + timedelta(seconds=59))
    assert _signed_in(client)
    assert _rows(db)[0].last_seen_at == frozen
    clock.set_now(frozen + timedelta(seconds=61))
    assert _signed_in(client)
    assert _rows(db)[0].last_seen_at == frozen + timedelta(seconds=61)


def test_ended_and_expired_sessions_are_purged_at_the_next_login(app, client, admin, db, frozen):
    login(client, admin)
    _logout(client)
    with TestClient(app, base_url="http://testserver") as idle:
        login(idle, admin)  # purges the ended one
        assert len(_rows(db)) == 1
        clock.set_now(frozen + accounts.SESSION_LIFETIME + timedelta(minutes=1))
        login(client, admin)  # the idle browser's session has expired: purged too
        [row] = _rows(db)
        assert row.created_at == clock.now()
        assert not _signed_in(idle)


def test_an_old_style_cookie_is_just_anonymous(client, admin):
    client.get("/login")
    payload = base64.b64encode(json.dumps({"staff_id": admin.id, "sv": 1}).encode())
    client.cookies.set(COOKIE, TimestampSigner(TEST_SECRET).sign(payload).decode())
    assert not _signed_in(client)


@pytest.mark.parametrize("sid", [None, 5, "", "x" * 5, "x" * 43, "x" * 5000, ["a"], {"a": 1}])
def test_odd_session_ids_are_anonymous(client, sid):
    client.get("/login")
    data = {"sid": sid} if sid is not None else {}
    payload = base64.b64encode(json.dumps(data).encode())
    client.cookies.set(COOKIE, TimestampSigner(TEST_SECRET).sign(payload).decode())
    assert not _signed_in(client)


def _held(engine, sql: str):
    """Another transaction that holds row locks (a block in progress, a parallel request)."""
    conn = engine.connect()
    conn.begin()
    conn.execute(sa.text(sql))
    return conn


def test_purge_and_last_seen_never_wait_for_rows_another_transaction_holds(
    engine, is_pg, app, client, admin, expert, db, frozen
):
    """With lock_timeout set, waiting would raise: SKIP LOCKED makes the purge and the touch pass
    over held rows (they are handled next time) instead of queueing behind them."""
    if not is_pg:
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    with TestClient(app, base_url="http://testserver") as other:
        login(other, admin)
        login(client, expert)
        _logout(client)  # a revoked row, due for purging
        clock.set_now(frozen + timedelta(minutes=5))  # the admin's row is due a last_seen write
        holder = _held(engine, "SELECT id FROM staff_session FOR UPDATE")
        try:
            with Session(engine) as session:
                session.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
                assert accounts.session_staff(session, _cookie_data(other)["sid"]) is not None
                accounts.start_session(session, session.get(type(admin), admin.id))
                session.commit()
        finally:
            holder.rollback()
            holder.close()
    rows = _rows(db)
    assert any(row.revoked_at is not None for row in rows)  # skipped, not purged
