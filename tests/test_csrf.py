"""CSRF in depth: a request from another site is refused even with a valid token.

The TestClient talks to http://testserver; the same site is exactly that scheme, host and port (or
the origin of APPLICATION_URL). Refused = the Russian 403 page, before any endpoint runs.
"""

from __future__ import annotations

import httpx2
import pytest

from app.settings import set_settings
from tests.conftest import CSRF_RE, LiveServer, csrf_token

FOREIGN_ORIGINS = [
    "http://evil.example",
    "https://evil.example",
    "https://testserver",  # another scheme
    "http://testserver:8080",  # another port
    "http://testserver:443",
    "https://testserver:80",
    "http://sub.testserver",  # a subdomain is another site here
    "http://testserver.evil.example",
    "http://eviltestserver",
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
    "http://testserver@evil.example",
    "null",  # sandboxed frames, privacy redirects
    "NULL",
    "file://",
    "ws://testserver",
    "testserver",  # not a URL
    "http://",
    "http://testserver:99999",  # not a port
    "http://testserver:abc",
    "https://lomaya.example.org",  # APPLICATION_URL is not set here
]
FOREIGN_REFERERS = [
    "https://evil.example/reports",
    "http://testserver:8080/login",
    "https://testserver/login",
    "http://sub.testserver/",
    "null",
    "not a url",
]


def _post(client, path="/login", *, headers=None, token=None, method="POST"):
    """A form post carrying the session's valid token (unless `token` says otherwise)."""
    data = {"csrf_token": token if token is not None else csrf_token(client)}
    return client.request(method, path, data=data, headers=headers or {}, follow_redirects=False)


def _refused(response) -> bool:
    return response.status_code == 403 and "Страница устарела" in response.text


def _accepted(response) -> bool:
    # /login with no e-mail and password: the form's own message, so the CSRF check passed
    return response.status_code == 400 and "Введите почту и пароль." in response.text


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_a_foreign_origin_is_refused_even_with_a_valid_token(client, origin):
    assert _refused(_post(client, headers={"Origin": origin}))
    # …also when the token comes in the header, as HTMX sends it
    token = csrf_token(client)
    response = client.post(
        "/login", headers={"Origin": origin, "X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert _refused(response) and response.headers["HX-Reswap"] == "none"


@pytest.mark.parametrize("referer", FOREIGN_REFERERS)
def test_a_foreign_referer_without_origin_is_refused(client, referer):
    assert _refused(_post(client, headers={"Referer": referer}))


def test_a_foreign_origin_wins_over_a_same_site_referer(client):
    headers = {"Origin": "https://evil.example", "Referer": "http://testserver/login"}
    assert _refused(_post(client, headers=headers))


def test_two_origin_headers_are_refused(client):
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"csrf_token": token},
        headers=[("Origin", "http://testserver"), ("Origin", "https://evil.example")],
    )
    assert _refused(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(admin_client, method):
    response = _post(admin_client, "/logout", method=method, headers={"Origin": "null"})
    assert _refused(response)
    assert admin_client.get("/").status_code == 200  # still logged in: nothing happened


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver"},
        {"Origin": "http://testserver:80"},
        {"Origin": "HTTP://TestServer"},
        {"Referer": "http://testserver/login?next=%2Freports"},
        {"Origin": "http://testserver", "Referer": "https://evil.example/"},  # Origin decides
        {"Origin": "", "Referer": ""},  # empty headers say nothing
        {},  # old browsers, curl: the token alone
    ],
)
def test_same_site_and_headerless_requests_with_a_token_pass(client, headers):
    assert _accepted(_post(client, headers=headers))


def test_the_token_is_still_required_from_the_same_site(client):
    csrf_token(client)
    assert _refused(_post(client, headers={"Origin": "http://testserver"}, token="forged"))
    assert _refused(_post(client, token=""))


def test_logout_from_the_same_site_works_and_from_another_does_not(admin_client):
    assert _refused(_post(admin_client, "/logout", headers={"Origin": "https://evil.example"}))
    assert admin_client.get("/").status_code == 200
    response = _post(admin_client, "/logout", headers={"Origin": "http://testserver"})
    assert response.status_code == 303
    assert admin_client.get("/", follow_redirects=False).status_code == 303


def test_the_application_url_origin_is_the_same_site(client, settings):
    set_settings(settings.with_overrides(application_url="https://lomaya.example.org"))
    for origin in ("https://lomaya.example.org", "https://LOMAYA.example.org:443"):
        assert _accepted(_post(client, headers={"Origin": origin})), origin
    for origin in ("http://lomaya.example.org", "https://lomaya.example.org:8443"):
        assert _refused(_post(client, headers={"Origin": origin})), origin


def test_telegram_paths_stay_exempt(client):
    # The webhook authenticates by its secret header: no CSRF page, whatever the Origin says.
    response = client.post("/telegram/webhook", json={}, headers={"Origin": "null"})
    assert response.status_code == 404 and response.json() == {
        "ok": False,
        "error": "the bot is off",
    }


def test_behind_a_proxy_the_public_scheme_and_host_are_the_same_site(app):
    """uvicorn takes the scheme from X-Forwarded-Proto of a trusted proxy (127.0.0.1 here, the
    default FORWARDED_ALLOW_IPS); the Host header carries the public host."""
    server = LiveServer(app)
    url = server.start()
    public = {"Host": "lomaya.example.org", "X-Forwarded-Proto": "https"}
    try:
        with httpx2.Client(base_url=url, follow_redirects=False, timeout=20) as browser:
            token = CSRF_RE.search(browser.get("/login", headers=public).text)
            assert token

            def post(origin: str):
                headers = {**public, "Origin": origin}
                return browser.post("/login", data={"csrf_token": token.group(1)}, headers=headers)

            assert _accepted(post("https://lomaya.example.org"))
            assert _refused(post("http://lomaya.example.org"))  # the page was served over https
            assert _refused(post(url))  # the instance's own address is not the public site
    finally:
        server.stop()
