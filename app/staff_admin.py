"""Staff accounts (product.md §4.8): invitations, password resets, roles, blocking, the profile.

A one-time link carries a random secret; only its SHA-256 is stored (`staff_token`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import audit, clock
from app.accounts import (
    end_all_sessions,
    hash_password,
    normalize_email,
    password_problem,
    start_session,
    verify_password,
)
from app.errors import FormErrors
from app.models import Staff, StaffRole, StaffStatus, StaffToken, TokenPurpose
from app.settings import get_settings

ROLE_LABELS = {StaffRole.administrator: "администратор", StaffRole.expert: "эксперт"}
NAME_MAX = 100


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_token(session: Session, **values) -> tuple[StaffToken, str]:
    secret = secrets.token_urlsafe(32)
    token = StaffToken(
        token_hash=token_hash(secret),
        expires_at=clock.now() + timedelta(hours=get_settings().invite_ttl_hours),
        **values,
    )
    session.add(token)
    session.flush()
    return token, secret


def _check_names(name: str, surname: str, errors: dict[str, str]) -> None:
    if not name or len(name) > NAME_MAX:
        errors["name"] = "Укажите имя (до 100 символов)."
    if len(surname) > NAME_MAX:
        errors["surname"] = "Фамилия — до 100 символов."


def _revoke_open(
    session: Session,
    purpose: TokenPurpose,
    *,
    email: str | None = None,
    staff_id: int | None = None,
) -> None:
    query = sa.update(StaffToken).where(
        col(StaffToken.purpose) == purpose,
        col(StaffToken.used_at).is_(None),
        col(StaffToken.revoked_at).is_(None),
    )
    if email is not None:
        query = query.where(col(StaffToken.email) == email)
    if staff_id is not None:
        query = query.where(col(StaffToken.staff_id) == staff_id)
    session.execute(query.values(revoked_at=clock.now()))


def invite(
    session: Session, actor: Staff | None, email: str, name: str, surname: str, role: str
) -> tuple[StaffToken, str]:
    """A new invitation (an older open one for the same e-mail is revoked). Returns (row, secret)."""
    email = normalize_email(email)
    name, surname = name.strip(), surname.strip()
    errors: dict[str, str] = {}
    if "@" not in email or len(email) > 254 or " " in email:
        errors["email"] = "Укажите электронную почту, например anna@example.org."
    elif session.exec(select(Staff.id).where(Staff.email == email)).first() is not None:
        errors["email"] = "Сотрудник с такой почтой уже есть."
    _check_names(name, surname, errors)
    if role not in (StaffRole.administrator.value, StaffRole.expert.value):
        errors["role"] = "Выберите роль."
    if errors:
        raise FormErrors(errors)
    _revoke_open(session, TokenPurpose.invite, email=email)
    token, secret = _new_token(
        session,
        purpose=TokenPurpose.invite,
        email=email,
        name=name,
        surname=surname,
        role=StaffRole(role),
        created_by_id=actor.id if actor else None,
    )
    audit.record(
        session,
        actor,
        "staff.invite",
        "staff_token",
        token.id,
        None,
        {"email": email, "role": role},
    )
    return token, secret


def reissue(session: Session, actor: Staff | None, token: StaffToken) -> tuple[StaffToken, str]:
    if token.used_at is not None:
        raise FormErrors({"": "По этому приглашению уже создан аккаунт."})
    if token.purpose == TokenPurpose.invite:
        return invite(session, actor, token.email, token.name, token.surname, token.role.value)
    staff = session.get(Staff, token.staff_id)
    if staff is None:
        raise FormErrors({"": "Сотрудник не найден."})
    return password_reset(session, actor, staff)


def _close_token(session: Session, token: StaffToken, **values: Any) -> bool:
    """Mark a still-open link used or revoked; a guarded UPDATE, so of two requests at once only
    one closes it. Whether this one did."""
    result = session.execute(
        sa.update(StaffToken)
        .where(
            col(StaffToken.id) == token.id,
            col(StaffToken.used_at).is_(None),
            col(StaffToken.revoked_at).is_(None),
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke(session: Session, actor: Staff | None, token: StaffToken) -> None:
    if _close_token(session, token, revoked_at=clock.now()):
        audit.record(
            session, actor, "staff.token_revoke", "staff_token", token.id, None, {"revoked": True}
        )


def password_reset(session: Session, actor: Staff | None, staff: Staff) -> tuple[StaffToken, str]:
    _revoke_open(session, TokenPurpose.password_reset, staff_id=staff.id)
    token, secret = _new_token(
        session,
        purpose=TokenPurpose.password_reset,
        email=staff.email,
        name=staff.name,
        surname=staff.surname,
        role=staff.role,
        staff_id=staff.id,
        created_by_id=actor.id if actor else None,
    )
    audit.record(
        session, actor, "staff.password_reset_link", "staff", staff.id, None, {"token_id": token.id}
    )
    return token, secret


def open_tokens(session: Session) -> list[StaffToken]:
    return list(
        session.exec(
            select(StaffToken)
            .where(
                col(StaffToken.used_at).is_(None),
                col(StaffToken.revoked_at).is_(None),
                col(StaffToken.expires_at) > clock.now(),
            )
            .order_by(col(StaffToken.created_at).desc())
        ).all()
    )


def find_token(session: Session, secret: str) -> StaffToken | None:
    """A usable token for `secret` (not used, not revoked, not expired), else None."""
    if not secret or len(secret) > 200:
        return None
    token = session.exec(
        select(StaffToken).where(StaffToken.token_hash == token_hash(secret))
    ).first()
    if token is None or token.used_at or token.revoked_at or token.expires_at <= clock.now():
        return None
    return token


LINK_GONE = "Ссылка больше не действует. Попросите администратора прислать новую."


def accept(
    session: Session, secret: str, password: str, password2: str, name: str = "", surname: str = ""
) -> Staff:
    """Use a link: create the invited account, or set the new password. Single use, guarded."""
    token = find_token(session, secret)
    if token is None:
        raise FormErrors({"": LINK_GONE})
    errors: dict[str, str] = {}
    problem = password_problem(password, token.email)
    if problem:
        errors["password"] = problem
    elif password != password2:
        errors["password2"] = "Пароли не совпадают."
    if token.purpose == TokenPurpose.invite:
        name, surname = (
            (name.strip() or token.name),
            (surname.strip() if surname.strip() else token.surname),
        )
        _check_names(name, surname, errors)
    if errors:
        raise FormErrors(errors)
    if not _close_token(session, token, used_at=clock.now()):  # of two clicks, one goes on
        raise FormErrors({"": LINK_GONE})
    if token.purpose == TokenPurpose.invite:
        return _create_invited(session, token, name, surname, password)
    account = session.get(Staff, token.staff_id)
    if account is None:
        raise FormErrors({"": "Сотрудник не найден."})
    account.password_hash = hash_password(password)
    end_all_sessions(session, account.id)  # whoever knew the old password is signed out
    session.add(account)
    audit.record(session, account, "staff.password_reset", "staff", account.id)
    return account


def _create_invited(
    session: Session, token: StaffToken, name: str, surname: str, password: str
) -> Staff:
    if session.exec(select(Staff.id).where(Staff.email == token.email)).first() is not None:
        raise FormErrors({"": "Сотрудник с такой почтой уже есть. Войдите со своим паролем."})
    staff = Staff(
        email=token.email,
        name=name,
        surname=surname,
        role=token.role,
        password_hash=hash_password(password),
    )
    session.add(staff)
    session.flush()
    audit.record(
        session,
        staff,
        "staff.create",
        "staff",
        staff.id,
        None,
        {"email": staff.email, "role": staff.role},
    )
    return staff


def _active_admins(session: Session) -> int:
    return int(
        session.exec(
            select(sa.func.count()).where(
                col(Staff.role) == StaffRole.administrator, col(Staff.status) == StaffStatus.active
            )
        ).one()
    )


def set_role(session: Session, actor: Staff, staff: Staff, role: str) -> None:
    if role not in (StaffRole.administrator.value, StaffRole.expert.value):
        raise FormErrors({"": "Выберите роль."})
    new = StaffRole(role)
    if new == staff.role:
        return
    if staff.id == actor.id:
        raise FormErrors({"": "Свою роль поменять нельзя: попросите другого администратора."})
    if (
        staff.role == StaffRole.administrator
        and staff.status == StaffStatus.active
        and _active_admins(session) <= 1
    ):
        raise FormErrors({"": "Это последний администратор: без него сайтом некому управлять."})
    audit.record(
        session, actor, "staff.role", "staff", staff.id, {"role": staff.role}, {"role": new}
    )
    staff.role = new
    end_all_sessions(session, staff.id)  # the old role must not linger in an open session
    session.add(staff)


def set_blocked(session: Session, actor: Staff, staff: Staff, blocked: bool) -> None:
    new = StaffStatus.blocked if blocked else StaffStatus.active
    if new == staff.status:
        return
    if staff.id == actor.id:
        raise FormErrors({"": "Себя заблокировать нельзя."})
    if blocked and staff.role == StaffRole.administrator and _active_admins(session) <= 1:
        raise FormErrors({"": "Это последний администратор: без него сайтом некому управлять."})
    audit.record(
        session,
        actor,
        "staff.block" if blocked else "staff.unblock",
        "staff",
        staff.id,
        {"status": staff.status},
        {"status": new},
    )
    staff.status = new
    if blocked:
        end_all_sessions(session, staff.id)  # open sessions end at the very next request
    session.add(staff)


def staff_list(session: Session) -> list[Staff]:
    return list(
        session.exec(
            select(Staff).order_by(col(Staff.status), col(Staff.surname), col(Staff.name))
        ).all()
    )


def update_profile(session: Session, staff: Staff, name: str, surname: str) -> None:
    name, surname = name.strip(), surname.strip()
    errors: dict[str, str] = {}
    _check_names(name, surname, errors)
    if errors:
        raise FormErrors(errors)
    before = {"name": staff.name, "surname": staff.surname}
    staff.name, staff.surname = name, surname
    session.add(staff)
    if before != {"name": name, "surname": surname}:
        audit.record(
            session,
            staff,
            "staff.profile",
            "staff",
            staff.id,
            before,
            {"name": name, "surname": surname},
        )


def change_password(session: Session, staff: Staff, current: str, new: str, new2: str) -> str:
    """Change one's own password. Every session of the account ends; the secret of a fresh one for
    this browser is returned."""
    errors: dict[str, str] = {}
    if not verify_password(staff.password_hash, current):
        errors["current"] = "Текущий пароль введён неверно."
    else:
        problem = password_problem(new, staff.email)
        if problem:
            errors["password"] = problem
        elif new != new2:
            errors["password2"] = "Пароли не совпадают."
    if errors:
        raise FormErrors(errors)
    staff.password_hash = hash_password(new)
    end_all_sessions(session, staff.id)
    session.add(staff)
    audit.record(session, staff, "staff.password_change", "staff", staff.id)
    return start_session(session, staff)
