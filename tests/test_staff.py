"""Staff accounts: invitations, one-time links, roles, blocking, the last administrator, profile."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from app import clock, staff_admin
from app.accounts import verify_password
from app.errors import FormErrors
from app.models import AuditEvent, Staff, StaffRole, StaffStatus, StaffToken
from app.settings import set_settings
from tests import factories
from tests.conftest import PASSWORD, csrf_token, login

LINK_RE = re.compile(r'<p class="copy" id="link">([^<]+)</p>')


def _invite(client, email="new@example.org", role="expert", name="Ирина"):
    token = csrf_token(client, "/staff")
    return client.post(
        "/staff/invite",
        data={
            "email": email,
            "name": name,
            "surname": "Петрова",
            "role": role,
            "csrf_token": token,
        },
    )


def _path(page) -> str:
    match = LINK_RE.search(page.text)
    assert match, page.text
    return "/" + match.group(1).split("/", 3)[3]


def test_invite_link_is_shown_stored_hashed_and_used_once(admin_client, db, app):
    page = _invite(admin_client)
    assert page.status_code == 200
    path = _path(page)
    secret = path.rsplit("/", 1)[1]
    row = db.exec(select(StaffToken)).one()
    assert row.token_hash == staff_admin.token_hash(secret) and secret not in row.token_hash
    with TestClient(app) as invitee:
        form = invitee.get(path)
        assert form.status_code == 200 and "new@example.org" in form.text
        token = csrf_token(invitee, path)
        short = invitee.post(
            path,
            data={"password": "short", "password2": "short", "name": "Ирина", "csrf_token": token},
        )
        assert short.status_code == 400 and "не короче 10" in short.text
        same = invitee.post(
            path,
            data={
                "password": "new@example.org",
                "password2": "new@example.org",
                "name": "Ирина",
                "csrf_token": token,
            },
        )
        assert "не должен совпадать" in same.text
        mismatch = invitee.post(
            path,
            data={
                "password": "long enough 1",
                "password2": "long enough 2",
                "name": "Ирина",
                "csrf_token": token,
            },
        )
        assert "не совпадают" in mismatch.text
        ok = invitee.post(
            path,
            data={
                "password": "long enough 1",
                "password2": "long enough 1",
                "name": "Ирина",
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert "Здравствуйте, Ирина" in invitee.get("/").text  # logged in
        assert invitee.get("/staff").status_code == 403  # an expert
        assert invitee.get(path).status_code == 410  # single use
    staff = db.exec(select(Staff).where(Staff.email == "new@example.org")).one()
    assert staff.role == StaffRole.expert and verify_password(staff.password_hash, "long enough 1")


def test_invite_form_errors(admin_client, db, admin):
    for address, text in [("not-an-email", "Укажите электронную почту"), (admin.email, "уже есть")]:
        page = _invite(admin_client, email=address)
        assert page.status_code == 400 and text in page.text
    assert _invite(admin_client, name="").status_code == 400
    assert _invite(admin_client, role="owner").status_code == 400
    assert db.exec(select(StaffToken)).all() == []


def test_expired_revoked_and_reissued_links(admin_client, db, app, settings):
    page = _invite(admin_client)
    old_path = _path(page)
    row = db.exec(select(StaffToken)).one()
    token = csrf_token(admin_client, "/staff")
    reissued = admin_client.post(f"/staff/tokens/{row.id}/reissue", data={"csrf_token": token})
    new_path = _path(reissued)
    assert new_path != old_path
    with TestClient(app) as anonymous:
        assert anonymous.get(old_path).status_code == 410  # the old one was revoked by the re-issue
        assert anonymous.get(new_path).status_code == 200
        new_row = db.exec(select(StaffToken).where(StaffToken.revoked_at.is_(None))).one()
        admin_client.post(f"/staff/tokens/{new_row.id}/revoke", data={"csrf_token": token})
        assert anonymous.get(new_path).status_code == 410
        third = _path(_invite(admin_client))
        clock.set_now(clock.now() + timedelta(hours=settings.invite_ttl_hours, seconds=1))
        assert anonymous.get(third).status_code == 410
        assert anonymous.get("/invite/not-a-token").status_code == 410


def test_password_reset_link_sets_a_new_password_and_ends_sessions(admin_client, db, app, expert):
    with TestClient(app) as expert_session:
        login(expert_session, expert)
        assert expert_session.get("/").status_code == 200
        token = csrf_token(admin_client, "/staff")
        path = _path(admin_client.post(f"/staff/{expert.id}/reset", data={"csrf_token": token}))
        with TestClient(app) as anonymous:
            t = csrf_token(anonymous, path)
            anonymous.post(
                path,
                data={"password": "brand new pass", "password2": "brand new pass", "csrf_token": t},
            )
        assert (
            expert_session.get("/", follow_redirects=False).status_code == 303
        )  # old session ended
    db.expire_all()
    assert verify_password(db.get(Staff, expert.id).password_hash, "brand new pass")


def test_invitation_is_emailed_when_smtp_is_set(admin_client, settings):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port (the controller's ready check cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        set_settings(
            settings.__class__(**{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": port})
        )
        page = _invite(admin_client, email="mail@example.org")
        assert "отправили эту ссылку на почту" in page.text
    finally:
        controller.stop()
    assert len(received) == 1 and received[0].rcpt_tos == ["mail@example.org"]
    message = email.message_from_bytes(received[0].content, policy=email.policy.default)
    assert message["Subject"] == "Приглашение на сайт «Ломая барьеры»"
    assert _path(page) in message.get_content()


def test_role_change_and_blocking_take_effect_at_once(admin_client, db, app, expert):
    with TestClient(app) as expert_session:
        login(expert_session, expert)
        token = csrf_token(admin_client, "/staff")
        admin_client.post(f"/staff/{expert.id}/block", data={"csrf_token": token, "blocked": "1"})
        assert expert_session.get("/", follow_redirects=False).status_code == 303
        assert login(expert_session, expert).status_code == 400  # blocked cannot sign in
        admin_client.post(f"/staff/{expert.id}/block", data={"csrf_token": token, "blocked": "0"})
        admin_client.post(
            f"/staff/{expert.id}/role", data={"csrf_token": token, "role": "administrator"}
        )
        login(expert_session, expert)
        assert expert_session.get("/staff").status_code == 200
    actions = db.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["staff.block", "staff.unblock", "staff.role"]


def test_no_self_block_no_self_demotion_and_the_last_admin_stays(admin_client, db, admin):
    token = csrf_token(admin_client, "/staff")
    page = admin_client.post(f"/staff/{admin.id}/block", data={"csrf_token": token, "blocked": "1"})
    assert page.status_code == 409 and "Себя заблокировать нельзя" in page.text
    page = admin_client.post(
        f"/staff/{admin.id}/role", data={"csrf_token": token, "role": "expert"}
    )
    assert page.status_code == 409 and "Свою роль" in page.text
    other = factories.make_staff(db, role=StaffRole.administrator)
    other.status = StaffStatus.blocked
    db.add(other)
    db.commit()
    with pytest.raises(FormErrors) as exc:
        staff_admin.set_blocked(
            db, other, admin, True
        )  # another (blocked) admin tries: last active one
    assert "последний администратор" in exc.value.errors[""]
    db.expire_all()
    assert db.get(Staff, admin.id).status == StaffStatus.active


def test_profile_name_and_password(admin_client, db, admin, app):
    token = csrf_token(admin_client, "/profile")
    admin_client.post("/profile", data={"csrf_token": token, "name": "Ольга", "surname": "Новая"})
    db.expire_all()
    assert db.get(Staff, admin.id).full_name == "Ольга Новая"
    assert admin_client.post("/profile", data={"csrf_token": token, "name": " "}).status_code == 400
    with TestClient(app) as other_session:
        login(other_session, admin)
        wrong = admin_client.post(
            "/profile/password",
            data={
                "csrf_token": token,
                "current": "nope",
                "password": "x" * 12,
                "password2": "x" * 12,
            },
        )
        assert wrong.status_code == 400 and "Текущий пароль введён неверно" in wrong.text
        weak = admin_client.post(
            "/profile/password",
            data={
                "csrf_token": token,
                "current": PASSWORD,
                "password": "short",
                "password2": "short",
            },
        )
        assert "не короче 10" in weak.text
        ok = admin_client.post(
            "/profile/password",
            data={
                "csrf_token": token,
                "current": PASSWORD,
                "password": "a new long one",
                "password2": "a new long one",
            },
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert (
            "Пароль изменён" in admin_client.get(ok.headers["location"]).text
        )  # this session lives on
        assert (
            other_session.get("/", follow_redirects=False).status_code == 303
        )  # the other one ended


def test_two_people_using_one_link_at_once_create_one_account(db, admin):
    _, secret = staff_admin.invite(db, admin, "race@example.org", "Гоша", "", "expert")
    db.commit()
    from app.db import session_scope

    outcomes = []

    def use():
        try:
            with session_scope() as s:
                staff_admin.accept(s, secret, "long enough 1", "long enough 1")
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert len(db.exec(select(Staff).where(Staff.email == "race@example.org")).all()) == 1
