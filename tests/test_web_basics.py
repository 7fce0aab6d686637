"""CSRF, private media, health, error pages."""

import sqlalchemy as sa

from app import health, images
from tests import factories
from tests.conftest import csrf_token


def test_post_without_csrf_token_is_refused(client, admin):
    response = client.post("/login", data={"email": admin.email, "password": "x"})
    assert response.status_code == 403
    assert "Страница устарела" in response.text


def test_post_with_a_wrong_csrf_token_is_refused(admin_client):
    response = admin_client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert admin_client.get("/").status_code == 200  # still logged in


def test_htmx_requests_pass_with_the_header(admin_client):
    token = csrf_token(admin_client, "/")
    response = admin_client.post(
        "/logout", headers={"X-CSRF-Token": token, "HX-Request": "true"}, follow_redirects=False
    )
    assert response.status_code == 303
    response = admin_client.post("/logout", headers={"X-CSRF-Token": "nope", "HX-Request": "true"})
    assert response.status_code == 403


def test_photos_are_served_only_to_logged_in_staff(store, client, admin, settings):
    stored = images.store_image(factories.jpeg_bytes(seed=1))
    for key in (stored.key, stored.thumb_key):
        anonymous = client.get(f"/media/{key}", follow_redirects=False)
        assert anonymous.status_code == 303 and not anonymous.content.startswith(b"\xff\xd8")
    from tests.conftest import login

    login(client, admin)
    for key in (stored.key, stored.thumb_key):
        response = client.get(f"/media/{key}")
        assert response.status_code == 200
        assert response.content == store.get(key)
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "private, no-store"
    assert client.get("/media/reports/ab/none.jpg").status_code == 404


def test_media_route_never_leaves_the_media_folder(admin_client, settings):
    secret = settings.data_dir / "secret.txt"
    secret.write_text("do not serve")
    for path in (
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/..%2fsecret.txt",
        "/media/reports/../../secret.txt",
        "/media//etc/passwd",
        "/media/nothing.jpg",
    ):
        response = admin_client.get(path)
        assert response.status_code == 404, path
        assert "do not serve" not in response.text


def test_health_reports_database_and_storage(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] and body["storage"]["ok"]
    assert body["bot"] == {"ok": True, "enabled": False}


def test_health_is_503_when_the_database_is_down(client, monkeypatch):
    from app import db as db_module

    broken = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(db_module, "_engine", broken)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    monkeypatch.undo()
    assert health.database_state()["ok"]


def test_unknown_page_is_a_russian_404(admin_client):
    response = admin_client.get("/no/such/page")
    assert response.status_code == 404
    assert "Страница не найдена" in response.text


def test_access_log_never_records_query_strings(client):
    import logging

    from app.logs import NoQueryStrings

    assert any(isinstance(f, NoQueryStrings) for f in logging.getLogger("uvicorn.access").filters)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/reports?q=Маша", "1.1", 200),
        None,
    )
    NoQueryStrings().filter(record)
    assert "Маша" not in record.getMessage() and "/reports" in record.getMessage()
