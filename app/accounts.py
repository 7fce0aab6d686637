"""Staff accounts: passwords (Argon2), login with throttling, server-side sessions, the first
administrator."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from app import clock
from app.errors import Invalid
from app.models import LoginFailure, Staff, StaffRole, StaffSession, StaffStatus

_hasher = PasswordHasher()
# A real hash to verify against when the e-mail is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("no such account, just burning the same time")

MIN_PASSWORD_LENGTH = 10
THROTTLE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = 5  # failures allowed in the window before each new try is delayed

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


def _key(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


def throttle_delay(session: Session, email: str, ip: str) -> float:
    """Seconds to wait before checking this login, growing with recent failures (per e-mail and IP)."""
    since = clock.now() - THROTTLE_WINDOW
    keys = [_key("email", normalize_email(email)), _key("ip", ip)]
    rows = session.exec(
        select(LoginFailure.key, sa.func.count())
        .where(col(LoginFailure.key).in_(keys), LoginFailure.at >= since)
        .group_by(LoginFailure.key)
    ).all()
    worst = max((count for _, count in rows), default=0)
    if worst < FREE_FAILURES:
        return 0.0
    return float(min(2 ** (worst - FREE_FAILURES), 30))


def record_failure(session: Session, email: str, ip: str) -> None:
    session.add(LoginFailure(key=_key("email", normalize_email(email))))
    session.add(LoginFailure(key=_key("ip", ip)))
    # Old failures are useless: drop them while we are here.
    session.execute(
        sa.delete(LoginFailure).where(col(LoginFailure.at) < clock.now() - THROTTLE_WINDOW)
    )


def clear_failures(session: Session, email: str) -> None:
    session.execute(
        sa.delete(LoginFailure).where(
            col(LoginFailure.key) == _key("email", normalize_email(email))
        )
    )


@dataclass(frozen=True)
class LoginResult:
    staff: Staff | None
    delay: float = 0.0


def authenticate(session: Session, email: str, password: str, ip: str) -> LoginResult:
    """Check an e-mail and password. Unknown e-mail, wrong password and a blocked account fail alike."""
    delay = throttle_delay(session, email, ip)
    staff = session.exec(select(Staff).where(Staff.email == normalize_email(email))).first()
    ok = verify_password(staff.password_hash if staff else _DUMMY_HASH, password)
    if not ok or staff is None or staff.status != StaffStatus.active:
        record_failure(session, email, ip)
        return LoginResult(None, delay)
    clear_failures(session, email)
    staff.last_login_at = clock.now()
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.add(staff)
    return LoginResult(staff, delay)


# --- sessions --------------------------------------------------------------------------------------


def start_session(session: Session, staff: Staff) -> str:
    """A new session for `staff`; returns the secret for the cookie (only its hash is stored).
    Ended and expired sessions are purged here: logins are rare, so this stays cheap."""
    now = clock.now()
    session.execute(
        sa.delete(StaffSession).where(
            sa.or_(
                col(StaffSession.revoked_at).is_not(None),
                col(StaffSession.last_seen_at) < now - SESSION_LIFETIME,
            )
        )
    )
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
