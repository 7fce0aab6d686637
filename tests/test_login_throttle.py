"""Login throttling that holds under parallel requests.

Each attempt is counted and given its moment by one statement, so a burst of parallel attempts is
scheduled exactly like a sequence: the first FREE_ATTEMPTS at once, then 1, 2, 4, 8 … s apart;
an attempt whose moment would be more than MAX_WAIT away is refused without a password check.
The clock is frozen: the tests look at the reserved schedule, never at how long anything took.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app import accounts, clock
from app.db import session_scope
from app.errors import TooManyAttempts
from app.models import LoginThrottle
from app.web import auth
from tests.conftest import CSRF_RE, PASSWORD, csrf_token, login

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
# The moments of a sequence (and of a burst) of attempts at NOW, in seconds after NOW.
SCHEDULE = [0, 0, 0, 0, 0, 1, 3, 7, 15]  # the next would be at +31 s: past MAX_WAIT


@pytest.fixture
def frozen(settings):
    clock.set_now(NOW)
    return NOW


def _attempt(email: str, ip: str) -> datetime | TooManyAttempts:
    """One attempt in its own transaction, as the login endpoint makes it."""
    try:
        with session_scope() as session:
            return accounts.reserve_attempt(session, email, ip)
    except TooManyAttempts as exc:
        return exc


def _offsets(results) -> list[float]:
    return sorted((r - NOW).total_seconds() for r in results if isinstance(r, datetime))


def _burst(pairs: list[tuple[str, str]]) -> list[datetime | TooManyAttempts]:
    """All attempts at once: threads released together by a barrier."""
    barrier = threading.Barrier(len(pairs))
    results: list = [None] * len(pairs)
    errors: list[BaseException] = []

    def run(i: int, email: str, ip: str) -> None:
        barrier.wait()
        try:
            results[i] = _attempt(email, ip)
        except BaseException as exc:  # a deadlock or a lock timeout would land here
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, *pair)) for i, pair in enumerate(pairs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def _row(db, key: str) -> LoginThrottle | None:
    db.expire_all()
    return db.get(LoginThrottle, key)


def test_the_delays_grow_then_stop_at_the_cap():
    assert [accounts.delay(n) for n in range(1, 13)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]


def test_a_sequence_is_scheduled_then_refused_past_the_cap(frozen, db):
    results = [_attempt("anna@example.org", "10.0.0.1") for _ in range(len(SCHEDULE))]
    assert _offsets(results) == SCHEDULE
    refused = _attempt("anna@example.org", "10.0.0.1")  # the 10th would be at +31 s
    assert isinstance(refused, TooManyAttempts) and refused.retry_after == 1
    email_key, _ = accounts.throttle_keys("anna@example.org", "10.0.0.1")
    assert _row(db, email_key).attempts == 9  # a refused attempt is not counted
    clock.set_now(NOW + timedelta(seconds=1))
    assert _attempt("anna@example.org", "10.0.0.1") == NOW + timedelta(seconds=31)


@pytest.mark.parametrize("n", [12, 42])
def test_a_parallel_burst_is_scheduled_like_a_sequence(frozen, n):
    """42 parallel wrong passwords for one e-mail from one address: 5 checked at once, 4 more at
    strictly later moments (+1, +3, +7, +15 s), the rest refused at once."""
    results = _burst([("anna@example.org", "10.0.0.1")] * n)
    assert _offsets(results) == SCHEDULE
    refused = [r for r in results if isinstance(r, TooManyAttempts)]
    assert len(refused) == n - len(SCHEDULE)
    assert all(r.retry_after >= 1 for r in refused)


def test_a_burst_from_many_addresses_is_throttled_by_the_email(frozen):
    results = _burst([("anna@example.org", f"10.0.1.{i}") for i in range(16)])
    assert _offsets(results) == SCHEDULE


def test_a_burst_for_many_emails_is_throttled_by_the_address(frozen):
    results = _burst([(f"user{i}@example.org", "10.0.0.7") for i in range(16)])
    assert _offsets(results) == SCHEDULE


def test_mixed_parallel_attempts_never_deadlock(frozen):
    """Keys are always taken e-mail first: crossing e-mails and addresses cannot deadlock."""
    pairs = [(f"u{i % 3}@example.org", f"10.0.2.{i % 4}") for i in range(36)]
    results = _burst(pairs)
    moments = [r for r in results if isinstance(r, datetime)]
    assert len(moments) >= 5 and all(
        NOW <= m <= NOW + timedelta(seconds=accounts.MAX_WAIT) for m in moments
    )


def test_a_refused_attempt_counts_for_neither_key(frozen, db):
    for i in range(len(SCHEDULE)):
        _attempt(f"user{i}@example.org", "10.0.0.9")  # the address is used up
    refused = _attempt("fresh@example.org", "10.0.0.9")
    assert isinstance(refused, TooManyAttempts)
    email_key, _ = accounts.throttle_keys("fresh@example.org", "")
    assert _row(db, email_key) is None  # rolled back with the refusal
    assert _attempt("fresh@example.org", "10.0.0.10") == NOW


def test_the_count_starts_again_after_a_quiet_window(frozen, db):
    for _ in range(len(SCHEDULE)):
        _attempt("anna@example.org", "10.0.0.1")
    last = NOW + timedelta(seconds=SCHEDULE[-1])
    clock.set_now(last + accounts.THROTTLE_WINDOW + timedelta(microseconds=1))
    assert _attempt("anna@example.org", "10.0.0.1") == clock.now()
    email_key, _ = accounts.throttle_keys("anna@example.org", "")
    assert _row(db, email_key).attempts == 1


def test_keys_are_hashed_and_the_email_normalised(frozen, db):
    _attempt("  Anna@Example.ORG ", "10.0.0.1")
    keys = set(db.exec(select(LoginThrottle.key)).all())
    assert keys == set(accounts.throttle_keys("anna@example.org", "10.0.0.1"))
    assert all("anna" not in k and "10.0.0.1" not in k for k in keys)


# --- through HTTP ----------------------------------------------------------------------------------


def _fill(email: str, ip: str = "testclient") -> None:
    for _ in range(len(SCHEDULE)):
        assert isinstance(_attempt(email, ip), datetime)


def test_past_the_cap_the_answer_is_429_at_once_and_the_password_is_not_checked(
    client, admin, frozen
):
    _fill(admin.email, ip="elsewhere")
    response = login(client, admin)  # the right password, and yet
    assert response.status_code == 429
    assert "Слишком много попыток входа. Попробуйте через 1 минуту." in response.text
    assert response.headers["retry-after"] == "1"
    assert client.get("/", follow_redirects=False).status_code == 303
    # the same answer for an e-mail nobody has
    _fill("nobody@example.org", ip="somewhere else")
    token = csrf_token(client)
    unknown = client.post(
        "/login",
        data={"email": "nobody@example.org", "password": "whatever", "csrf_token": token},
    )
    assert unknown.status_code == 429 and "Слишком много попыток" in unknown.text


def test_the_real_user_gets_in_once_the_window_has_passed(client, admin, frozen, db):
    _fill(admin.email, ip="elsewhere")
    assert login(client, admin).status_code == 429
    clock.set_now(NOW + timedelta(seconds=SCHEDULE[-1]) + accounts.THROTTLE_WINDOW)
    assert login(client, admin).status_code == 303
    email_key, ip_key = accounts.throttle_keys(admin.email, "testclient")
    assert _row(db, email_key) is None  # a successful login clears the e-mail's count
    assert _row(db, ip_key) is not None  # the address's stays


def test_a_successful_login_clears_the_emails_attempts(client, admin, frozen, db):
    for _ in range(3):
        assert login(client, admin, password="wrong password!").status_code == 400
    email_key, _ = accounts.throttle_keys(admin.email, "")
    assert _row(db, email_key).attempts == 3
    assert login(client, admin).status_code == 303
    assert _row(db, email_key) is None


def test_stale_rows_are_purged_at_a_successful_login(client, admin, frozen, db):
    _attempt("someone@example.org", "10.9.9.9")
    clock.set_now(NOW + accounts.THROTTLE_WINDOW + timedelta(seconds=1))
    assert login(client, admin).status_code == 303
    keys = set(db.exec(select(LoginThrottle.key)).all())
    assert keys == {accounts.throttle_keys(admin.email, "testclient")[1]}


def test_parallel_wrong_passwords_over_http_follow_the_schedule(app, admin, frozen, monkeypatch):
    """16 browsers post a wrong password for one account at once to a live server. Waiting is
    recorded instead of slept (the clock is frozen): exactly the schedule is reserved; the rest
    get 429 without a password check."""
    from tests.conftest import LiveServer

    waits: list[datetime] = []
    lock = threading.Lock()

    async def record(moment: datetime) -> None:
        with lock:
            waits.append(moment)

    monkeypatch.setattr(auth, "_wait_until", record)
    checked = []
    real_authenticate = accounts.authenticate

    def counting(*args, **kwargs):
        checked.append(1)
        return real_authenticate(*args, **kwargs)

    monkeypatch.setattr(accounts, "authenticate", counting)
    server = LiveServer(app)
    url = server.start()
    n = 16
    browsers = [httpx2.Client(base_url=url, timeout=60) for _ in range(n)]
    try:
        tokens = [CSRF_RE.search(b.get("/login").text).group(1) for b in browsers]
        barrier = threading.Barrier(n)
        answers: list = [None] * n

        def post(i: int) -> None:
            barrier.wait()
            answers[i] = browsers[i].post(
                "/login",
                data={"email": admin.email, "password": "not it at all", "csrf_token": tokens[i]},
            )

        threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for browser in browsers:
            browser.close()
        server.stop()
    codes = sorted(a.status_code for a in answers)
    assert codes == [400] * len(SCHEDULE) + [429] * (n - len(SCHEDULE))
    assert all("Неверная почта или пароль." in a.text for a in answers if a.status_code == 400)
    assert sorted((w - NOW).total_seconds() for w in waits) == SCHEDULE
    assert len(checked) == len(SCHEDULE)  # a refused attempt never reached the password check


def test_the_429_message_counts_minutes_in_russian():
    assert auth._too_many(1).endswith("через 1 минуту.")
    assert auth._too_many(61).endswith("через 2 минуты.")
    assert auth._too_many(300).endswith("через 5 минут.")
    assert re.search(r"\d", auth._too_many(0))


def test_throttle_rows_hold_no_email_or_address(db, frozen):
    _attempt("anna@example.org", "203.0.113.5")
    dump = " ".join(str(v) for row in db.execute(sa.select(LoginThrottle.__table__)) for v in row)
    assert "anna" not in dump and "203.0.113.5" not in dump


def test_the_stale_purge_never_waits_for_a_row_an_attempt_holds(engine, is_pg, admin, frozen, db):
    if not is_pg:
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    _attempt("someone@example.org", "10.9.9.9")
    clock.set_now(NOW + accounts.THROTTLE_WINDOW + timedelta(seconds=1))  # both rows are stale
    holder = engine.connect()
    holder.begin()
    holder.execute(sa.text("SELECT key FROM login_throttle FOR UPDATE"))
    try:
        with Session(engine) as session:
            session.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            assert accounts.authenticate(session, admin.email, PASSWORD) is not None
            session.commit()
    finally:
        holder.rollback()
        holder.close()
    assert len(db.exec(select(LoginThrottle.key)).all()) == 2  # skipped now, purged next time
