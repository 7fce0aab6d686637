"""Staff accounts: passwords (Argon2), login throttling, server-side sessions, the first
administrator."""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from app import clock
from app.db import dialect_insert
from app.errors import Invalid, TooManyAttempts
from app.models import LoginThrottle, Staff, StaffRole, StaffSession, StaffStatus

_hasher = PasswordHasher()
# A real hash to verify against when the e-mail is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("no such account, just burning the same time")

MIN_PASSWORD_LENGTH = 10

# Throttling: per e-mail and per client address, the first FREE_ATTEMPTS attempts in a window are
# checked at once; each further one waits 1, 2, 4 … MAX_DELAY seconds after the previous one's
# moment. An attempt that would have to wait longer than MAX_WAIT is refused without a check.
THROTTLE_WINDOW = timedelta(minutes=15)  # quiet this long, and the count starts again
FREE_ATTEMPTS = 5
MAX_DELAY = 30  # seconds
# Well under nginx's proxy_read_timeout (60 s, deploy/nginx): a waiting login must not time out
# there (a 504 for the user, and a "failed" upstream that nginx would stop sending traffic to).
MAX_WAIT = 30  # seconds

# Sessions live as long as the cookie (app/main.py): 14 days after the last request.
SESSION_LIFETIME = timedelta(days=14)
SESSION_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    return email.strip().lower()


def password_problem(password: str, email: str = "") -> str | None:
    """A Russian message if the password is too weak, else None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Пароль должен быть не короче {MIN_PASSWORD_LENGTH} символов."
    if email and password.strip().lower() == normalize_email(email):
        return "Пароль не должен совпадать с электронной почтой."
    return None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- throttling ------------------------------------------------------------------------------------


def throttle_keys(email: str, ip: str) -> tuple[str, str]:
    """The e-mail's and the address's keys, always in this order (see reserve_attempt)."""
    return f"email:{_sha256(normalize_email(email))}", f"ip:{_sha256(ip)}"


def delay(attempt: int) -> int:
    """Seconds between the (attempt-1)-th attempt's moment and the attempt-th one's."""
    if attempt <= FREE_ATTEMPTS:
        return 0
    return min(2 ** (attempt - FREE_ATTEMPTS - 1), MAX_DELAY)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _moment(us: int) -> datetime:
    return _EPOCH + us * _US


def _delay_us(attempt: Any) -> Any:
    """`delay(attempt)` in µs as an SQL expression (the same table of values, for both dialects)."""
    whens: list[tuple[Any, int]] = [(attempt <= FREE_ATTEMPTS, 0)]
    n = FREE_ATTEMPTS + 1
    while delay(n) < MAX_DELAY:
        whens.append((attempt == n, delay(n) * 1_000_000))
        n += 1
    return sa.case(*whens, else_=MAX_DELAY * 1_000_000)


def _reserve(session: Session, key: str, now_us: int) -> int | None:
    """Count one attempt for `key` and give it its moment (µs), or None when that moment would be
    more than MAX_WAIT away (then nothing is counted).

    One statement does both, so parallel attempts queue on the row instead of all reading the same
    count: the moment is max(previous moment + delay(attempts), now), or now after a quiet window.
    """
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    quiet = table.c.slot_us < now_us - THROTTLE_WINDOW // _US
    following = table.c.slot_us + _delay_us(table.c.attempts + 1)
    slot = sa.case((quiet, now_us), (following > now_us, following), else_=now_us)
    stmt = (
        dialect_insert(session, table)
        .values(key=key, attempts=1, slot_us=now_us)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "attempts": sa.case((quiet, 1), else_=table.c.attempts + 1),
                "slot_us": slot,
            },
            where=slot <= now_us + MAX_WAIT * 1_000_000,
        )
        .returning(table.c.slot_us)
    )
    found = session.execute(stmt).first()
    return int(found[0]) if found is not None else None


def reserve_attempt(session: Session, email: str, ip: str) -> datetime:
    """Count a login attempt for this e-mail and address and return the moment its password may be
    checked (now for the first few; later and later for a burst, like a sequence of attempts).

    Raises TooManyAttempts (nothing counted: the caller's transaction rolls back) when that moment
    is more than MAX_WAIT away. The keys are always taken e-mail first, so two parallel attempts
    never wait for each other's rows in opposite orders.
    """
    now_us = _us(clock.now())
    slots = []
    for key in throttle_keys(email, ip):
        slot = _reserve(session, key, now_us)
        if slot is None:
            raise TooManyAttempts(_retry_after(session, key, now_us))
        slots.append(slot)
    return _moment(max(slots))


def _retry_after(session: Session, key: str, now_us: int) -> int:
    """Seconds until an attempt for `key` would be given a moment within MAX_WAIT."""
    row = session.execute(
        sa.select(col(LoginThrottle.attempts), col(LoginThrottle.slot_us)).where(
            col(LoginThrottle.key) == key
        )
    ).first()
    if row is None:
        return 1
    following = int(row[1]) + delay(int(row[0]) + 1) * 1_000_000
    return max(1, math.ceil((following - MAX_WAIT * 1_000_000 - now_us) / 1_000_000))


def _forget_attempts(session: Session, email: str) -> None:
    """A successful login: the e-mail's attempts are forgotten, and every stale row with them."""
    email_key, _ = throttle_keys(email, "")
    session.execute(sa.delete(LoginThrottle).where(col(LoginThrottle.key) == email_key))
    # Rows a parallel attempt holds are skipped, never waited for (no lock cycles): next time.
    stale = (
        sa.select(col(LoginThrottle.key))
        .where(col(LoginThrottle.slot_us) < _us(clock.now() - THROTTLE_WINDOW))
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(LoginThrottle).where(col(LoginThrottle.key).in_(stale)))


def authenticate(session: Session, email: str, password: str) -> Staff | None:
    """Check an e-mail and password (after `reserve_attempt` gave the moment). Unknown e-mail,
    wrong password and a blocked account fail alike."""
    staff = session.exec(select(Staff).where(Staff.email == normalize_email(email))).first()
    ok = verify_password(staff.password_hash if staff else _DUMMY_HASH, password)
    if not ok or staff is None or staff.status != StaffStatus.active:
        return None
    _forget_attempts(session, email)
    staff.last_login_at = clock.now()
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.add(staff)
    return staff


# --- sessions --------------------------------------------------------------------------------------


def start_session(session: Session, staff: Staff) -> str:
    """A new session for `staff`; returns the secret for the cookie (only its hash is stored).
    Ended and expired sessions are purged here: logins are rare, so this stays cheap."""
    now = clock.now()
    # Rows another transaction holds (being revoked, say) are skipped, never waited for.
    done = (
        sa.select(col(StaffSession.id))
        .where(
            sa.or_(
                col(StaffSession.revoked_at).is_not(None),
                col(StaffSession.last_seen_at) < now - SESSION_LIFETIME,
            )
        )
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(StaffSession).where(col(StaffSession.id).in_(done)))
    assert staff.id is not None
    secret = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=_sha256(secret), staff_id=staff.id, created_at=now, last_seen_at=now
        )
    )
    session.flush()
    return secret


def session_staff(session: Session, secret: Any) -> Staff | None:
    """The active staff member whose live session has this secret, else None."""
    if not isinstance(secret, str) or not 20 <= len(secret) <= 100:
        return None
    now = clock.now()
    row = session.execute(
        sa.select(
            col(StaffSession.id), col(StaffSession.staff_id), col(StaffSession.last_seen_at)
        ).where(
            col(StaffSession.token_hash) == _sha256(secret),
            col(StaffSession.revoked_at).is_(None),
            col(StaffSession.last_seen_at) > now - SESSION_LIFETIME,
        )
    ).first()
    if row is None:
        return None
    staff = session.get(Staff, row[1])
    if staff is None or staff.status != StaffStatus.active:
        return None
    if row[2] <= now - SESSION_SEEN_EVERY:
        # Skip the write if a parallel request of the same browser holds the row: it is writing
        # the same thing, and waiting for its transaction would stall this request.
        locked = (
            sa.select(col(StaffSession.id))
            .where(
                col(StaffSession.id) == row[0],
                col(StaffSession.last_seen_at) <= now - SESSION_SEEN_EVERY,
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        session.execute(
            sa.update(StaffSession).where(col(StaffSession.id) == locked).values(last_seen_at=now)
        )
    return staff


def end_session(session: Session, secret: Any) -> None:
    """Logout: the session with this secret ends (a copy of the cookie stops working too)."""
    if isinstance(secret, str) and secret:
        session.execute(
            sa.update(StaffSession)
            .where(
                col(StaffSession.token_hash) == _sha256(secret),
                col(StaffSession.revoked_at).is_(None),
            )
            .values(revoked_at=clock.now())
        )


def end_all_sessions(session: Session, staff_id: int | None) -> None:
    """Every session of this staff member ends at its next request (blocked, new password, new
    role)."""
    session.execute(
        sa.update(StaffSession)
        .where(col(StaffSession.staff_id) == staff_id, col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=clock.now())
    )


def create_staff(
    session: Session,
    *,
    email: str,
    password: str,
    name: str,
    surname: str = "",
    role: StaffRole = StaffRole.administrator,
) -> Staff:
    """Create an account (the first administrator from the CLI, or an accepted invitation)."""
    email = normalize_email(email)
    if "@" not in email:
        raise Invalid("Укажите электронную почту.")
    problem = password_problem(password, email)
    if problem:
        raise Invalid(problem)
    if session.exec(select(Staff.id).where(Staff.email == email)).first() is not None:
        raise Invalid("Сотрудник с такой почтой уже есть.")
    staff = Staff(
        email=email,
        name=name.strip() or "Администратор",
        surname=surname.strip(),
        role=role,
        password_hash=hash_password(password),
    )
    session.add(staff)
    session.flush()
    return staff
