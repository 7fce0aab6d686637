"""Login, logout, sessions that die with a blocked account or a changed password, throttling."""

from app import accounts
from app.models import StaffStatus
from tests.conftest import PASSWORD, csrf_token, login


def test_login_page_is_russian_and_anonymous_is_sent_there(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F"
    page = client.get("/login")
    assert "Вход для сотрудников" in page.text
    assert 'lang="ru"' in page.text


def test_admin_logs_in_and_sees_dashboard_counts(client, admin):
    response = login(client, admin)
    assert response.status_code == 303
    assert response.headers["location"] == "/reports"  # curators start at the report queue
    page = client.get("/")
    assert page.status_code == 200
    assert "фото ждут проверки" in page.text
    assert f"Здравствуйте, {admin.name}" in page.text


def test_session_cookie_is_httponly_and_samesite_lax(client, admin):
    response = login(client, admin)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_unknown_email_and_wrong_password_get_the_same_answer(client, admin):
    wrong = login(client, admin, password="not the password")
    client.cookies.clear()
    token = csrf_token(client)
    unknown = client.post(
        "/login", data={"email": "nobody@example.org", "password": "whatever", "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert (
        "Неверная почта или пароль." in wrong.text and "Неверная почта или пароль." in unknown.text
    )
    assert client.get("/", follow_redirects=False).status_code == 303


def test_blocked_account_cannot_log_in(client, blocked_expert):
    response = login(client, blocked_expert)
    assert response.status_code == 400
    assert "Неверная почта или пароль." in response.text


def test_blocking_ends_a_live_session_on_the_next_request(client, expert, db):
    login(client, expert)
    assert client.get("/").status_code == 200
    expert.status = StaffStatus.blocked
    db.add(expert)
    db.commit()
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_ending_all_sessions_signs_the_account_out(client, expert, db):
    login(client, expert)
    accounts.end_all_sessions(db, expert.id)
    db.commit()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(admin_client):
    token = csrf_token(admin_client, "/")
    response = admin_client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert admin_client.get("/", follow_redirects=False).status_code == 303


def test_next_parameter_only_allows_local_paths(client, admin):
    token = csrf_token(client)
    response = client.post(
        "/login?next=https://evil.example/",
        follow_redirects=False,
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["location"] == "/reports"


def test_empty_form_gets_a_russian_message(client):
    token = csrf_token(client)
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert response.status_code == 400
    assert "Введите почту и пароль." in response.text


def test_passwords_are_stored_as_argon2(admin):
    assert admin.password_hash.startswith("$argon2")
    assert accounts.verify_password(admin.password_hash, PASSWORD)
    assert not accounts.verify_password(admin.password_hash, PASSWORD + "x")
