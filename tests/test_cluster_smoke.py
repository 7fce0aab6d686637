"""The production shape: two `lomaya serve` processes behind nginx, one PostgreSQL.

Uses the repository's own nginx files (deploy/nginx/), without TLS. The cluster test needs
PostgreSQL (TEST_DATABASE_URL) and nginx (skipped when missing unless LOMAYA_REQUIRE_NGINX=1).
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa

from tests.cluster_support import (
    DEPLOY,
    REPO,
    check_nginx_conf,
    create_admin,
    free_port,
    wait_until_healthy,
)

EMAIL = "boss@example.org"
PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _upstreams(line: str) -> list[str]:
    """The instances nginx tried for one access-log line (several when it retried)."""
    match = re.search(r"upstream=(\S+(?:, \S+)*) upstream_status=", line)
    assert match, line
    return [addr.strip() for addr in match.group(1).split(",")]


def _ip_key(ip: str) -> str:
    # How app/accounts.py records a failed login per client address (hashed, never the address).
    return "ip:" + hashlib.sha256(ip.encode()).hexdigest()


def test_two_instances_behind_nginx_share_sessions_and_survive_a_kill(
    pg_database, app_env, spawn_web, spawn_nginx
):
    database_url = pg_database()
    env = app_env(database_url)
    create_admin(env, EMAIL, PASSWORD)
    # Ports in 8000-8099, like the systemd instances: nginx's /health/PORT probes only those.
    first_port = free_port(8000, 8099)
    second_port = free_port(8000, 8099)
    while second_port == first_port:
        second_port = free_port(8000, 8099)
    webs = [spawn_web(env, port, wait=False) for port in (first_port, second_port)]
    for web in webs:  # both start side by side; each must answer its own /health
        wait_until_healthy(web)
    by_address = {web.address: web for web in webs}
    proxy = spawn_nginx([first_port, second_port])

    with httpx2.Client(base_url=proxy.url, follow_redirects=False, timeout=20) as client:
        # /health through nginx, and per instance through nginx's /health/PORT.
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["database"]["kind"] == "postgresql"
        proxy.take_log_lines(1)
        assert client.get(f"/health/{second_port}").status_code == 200
        [line] = proxy.take_log_lines(1)
        assert _upstreams(line) == [f"127.0.0.1:{second_port}"]

        # Requests are spread over both instances.
        for _ in range(4):
            assert client.get("/login").status_code == 200
        served = {_upstreams(line)[-1] for line in proxy.take_log_lines(4)}
        assert served == set(by_address)

        # Static files come from nginx itself, not from an instance.
        css = client.get("/static/css/app.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        [line] = proxy.take_log_lines(1)
        assert "upstream=- " in line

        # The access log keeps the path and drops the query string (a child's name may be there).
        client.get("/participants", params={"q": "Вася Пупкин"})
        [line] = proxy.take_log_lines(1)
        assert '"GET /participants HTTP/1.1"' in line
        assert "q=" not in line and "%D0" not in line and "Вася" not in line

        # Log in through nginx; the signed session cookie works on either instance.
        token = CSRF_RE.search(client.get("/login").text)
        assert token, "no csrf_token on /login"
        response = client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert response.status_code == 303, response.text
        [_, line] = proxy.take_log_lines(2)
        login_served_by = _upstreams(line)[-1]
        cookie = {"Cookie": f"lomaya_session={client.cookies['lomaya_session']}"}
        for web in webs:
            page = httpx2.get(web.url + "/reports", headers=cookie, timeout=20)
            assert page.status_code == 200, (web.address, page.status_code)
            anonymous = httpx2.get(web.url + "/reports", timeout=20)
            assert anonymous.status_code == 303  # to /login: the cookie is what let us in

        # nginx replaces a client's X-Forwarded-For: a forged one cannot dodge the per-IP
        # throttling of failed logins (the app sees the real client, 127.0.0.1 here).
        with httpx2.Client(base_url=proxy.url, follow_redirects=False, timeout=20) as stranger:
            token = CSRF_RE.search(stranger.get("/login").text)
            assert token
            failed = stranger.post(
                "/login",
                data={"email": "x@example.org", "password": "wrong", "csrf_token": token.group(1)},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
        assert failed.status_code == 400
        proxy.take_log_lines(2)
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                keys = set(conn.execute(sa.text("SELECT key FROM login_throttle")).scalars())
        finally:
            engine.dispose()
        assert _ip_key("127.0.0.1") in keys
        assert _ip_key("203.0.113.9") not in keys

        # Kill the instance that served the login, mid-run: the next requests still succeed,
        # answered by the survivor, and the session still holds.
        killed = by_address[login_served_by]
        survivor = next(web for web in webs if web is not killed)
        killed.kill(signal.SIGKILL)
        for _ in range(6):
            page = client.get("/reports")
            assert page.status_code == 200, page.status_code
        for line in proxy.take_log_lines(6):
            assert _upstreams(line)[-1] == survivor.address
        assert client.get("/health").status_code == 200
        # Monitoring sees the dead instance through /health/PORT.
        assert client.get(f"/health/{killed.port}").status_code == 502


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=lomaya.example.org", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_production_nginx_site_passes_nginx_t(nginx_binary, tmp_path):
    """deploy/nginx/lomaya.conf as shipped (TLS, redirect, HSTS) is valid for nginx; only the
    paths that do not exist on a test machine are pointed at temporary files."""
    try:
        cert, key = _self_signed_certificate(tmp_path)
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    site = (DEPLOY / "nginx" / "lomaya.conf").read_text()
    replacements = {
        "/etc/letsencrypt/live/lomaya.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/lomaya.example.org/privkey.pem": str(key),
        "/etc/nginx/snippets/lomaya-locations.conf": str(
            DEPLOY / "nginx" / "lomaya-locations.conf"
        ),
        "/var/log/nginx/": f"{tmp_path}/",
        "/opt/lomaya/app": str(REPO),
    }
    for old, new in replacements.items():
        assert old in site, f"lomaya.conf no longer mentions {old}; update this test"
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    client_body_temp_path {tmp_path}/body;\n"
        f"    proxy_temp_path {tmp_path}/proxy;\n"
        f"    include {tmp_path}/site.conf;\n"
        "}\n"
    )
    check_nginx_conf(conf, tmp_path, nginx_binary)
