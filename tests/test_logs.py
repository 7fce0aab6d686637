"""Logs: LOG_FORMAT=text|json, a request id on every line of a request, no personal data.

The HTTP tests run the real app in a real uvicorn (on a loopback port, in a thread), configured
the way `lomaya serve` configures it, and read what the process would write to stderr.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest
import uvicorn
from starlette.routing import Route

from app import logs
from app.settings import Settings, SettingsError, load_settings
from app.web.request_id import incoming
from tests.cluster_support import base_environ, run_cli

CHILD = "Вася Пупкин"
NGINX_ID = "6f1c2a0d9be84e0f8d7e5c4b3a291807"  # what nginx's $request_id looks like


@pytest.fixture
def captured() -> Iterator[Callable[[Settings], io.StringIO]]:
    """`captured(settings)`: logging configured as a process would configure it, into a buffer;
    the test run's own logging is put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn_saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in logs.UVICORN_LOGGERS
    }

    def configure(settings: Settings) -> io.StringIO:
        buffer = io.StringIO()
        logs.configure(settings, stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in uvicorn_saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


class Server:
    """The app in uvicorn on a free loopback port, with uvicorn's logging left to app.logs."""

    def __init__(self, app) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, log_level="info", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def json_lines(buffer: io.StringIO) -> list[dict]:
    """The server's records: every line parses; the test's own HTTP client (which logs the URLs
    it asks for, in this same process) is left out."""
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return [r for r in records if not r["logger"].startswith(("httpx", "httpcore"))]


def boom(request):
    raise RuntimeError("a bug")


def test_json_logs_carry_the_request_id_and_never_the_query(settings, captured):
    from app.main import create_app

    buffer = captured(settings.with_overrides(log_format="json"))
    app = create_app(settings, start_background=False)
    app.router.routes.append(Route("/boom", boom))
    with Server(app) as url, httpx2.Client(base_url=url, timeout=20) as client:
        # A curator's search for a child, through nginx (which sends its request id).
        search = client.get(
            "/participants", params={"q": CHILD}, headers={"X-Request-ID": NGINX_ID}
        )
        # Without a proxy, or with a header that is not a sane token: a fresh id.
        plain = client.get("/login", params={"name": CHILD})
        forged = client.get("/login", headers={"X-Request-ID": "id with spaces; DROP"})
        failed = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert search.status_code == 303 and search.headers["X-Request-ID"] == NGINX_ID
    generated = plain.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    assert forged.headers["X-Request-ID"] != generated
    assert failed.status_code == 500 and failed.headers["X-Request-ID"] == "boom-1"

    records = json_lines(buffer)
    by_id = {r["request_id"]: r for r in records if r["logger"] == "uvicorn.access"}
    assert '"GET /participants HTTP/1.1" 303' in by_id[NGINX_ID]["message"]
    assert '"GET /login HTTP/1.1" 200' in by_id[generated]["message"]
    assert {"time", "level", "logger", "message", "request_id"} <= set(by_id[generated])
    # The error of /boom: logged with its traceback and the request's id.
    errors = [r for r in records if r["level"] == "ERROR"]
    assert errors and all(r["request_id"] == "boom-1" for r in errors)
    assert any("RuntimeError: a bug" in r.get("exc_info", "") for r in errors)
    # No query strings, no names — in any encoding — anywhere in the server's log.
    text = json.dumps(records, ensure_ascii=False)
    for secret in (CHILD, "Вася", "%D0%92", "q=", "name=", "DROP"):
        assert secret not in text
    # Lines outside a request say so.
    assert any(r["request_id"] == "-" for r in records)


def test_text_logs_show_the_request_id(settings, captured):
    from starlette.testclient import TestClient

    from app.main import create_app

    buffer = captured(settings)  # LOG_FORMAT=text, the default
    app = create_app(settings, start_background=False)

    def inside(request):  # a sync endpoint: it runs in a thread, which sees the request's id
        logging.getLogger("lomaya.test").warning("inside the request")
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("ok")

    app.router.routes.append(Route("/inside", inside))
    with TestClient(app) as client:
        assert client.get("/inside", headers={"X-Request-ID": "req-42"}).text == "ok"
    logging.getLogger("lomaya.test").warning("after it")
    lines = buffer.getvalue().splitlines()
    assert any(line.endswith("WARNING lomaya.test [req-42]: inside the request") for line in lines)
    assert any(line.endswith("WARNING lomaya.test [-]: after it") for line in lines)


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (NGINX_ID, True),
        ("req-1.2:3_x", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("-leading-dash", False),
        ("two words", False),
        ("Вася", False),
        ("a\tb", False),
    ],
)
def test_only_sane_request_ids_are_taken_from_the_proxy(header, kept):
    scope = {"headers": [(b"x-request-id", header.encode())]}
    assert (incoming(scope) == header) is kept


def test_log_format_is_text_or_json():
    base = {"SECRET_KEY": "s" * 32}
    assert load_settings(base, env_file=None).log_format == "text"
    assert load_settings({**base, "LOG_FORMAT": " JSON "}, env_file=None).log_format == "json"
    with pytest.raises(SettingsError, match=r"^LOG_FORMAT: ожидается text или json"):
        load_settings({**base, "LOG_FORMAT": "xml"}, env_file=None)


def test_the_cli_logs_json_lines(tmp_path):
    env = base_environ(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        DATA_DIR=str(tmp_path),
        LOG_FORMAT="json",
    )
    result = run_cli(["migrate"], env)
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records and all(r["request_id"] == "-" for r in records)
    assert any(r["logger"].startswith("alembic") for r in records)
