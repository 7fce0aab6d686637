"""The production shape in a test: real `lomaya serve` processes behind a real nginx.

A pytest plugin (listed in tests/conftest.py's `pytest_plugins`). Its fixtures:

- `nginx_binary` — the nginx to run; skips when it is missing, fails instead when
  LOMAYA_REQUIRE_NGINX=1.
- `pg_server_url` — the PostgreSQL server of TEST_DATABASE_URL; skips on SQLite runs.
- `pg_database(migrate=True, create=True) -> str` — a fresh database on that server (a
  `postgresql+psycopg://` URL), migrated with `python -m app.cli migrate`; dropped at teardown.
- `app_env(database_url, **settings) -> dict` — a clean environment for the app's processes:
  the test's DATABASE_URL, a DATA_DIR in tmp_path, a SECRET_KEY, no bot, no scheduler.
- `spawn_web(env, port=None, args=()) -> WebProcess` — `python -m app.cli serve [ARGS]` on a
  loopback port, returned once its /health answers; stopped at teardown.
- `spawn_cli(env, *args) -> CliProcess` — any other long-running `python -m app.cli ARGS` (e.g.
  `worker`), its output in a file; stopped at teardown.
- `spawn_nginx(upstream_ports) -> Nginx` — nginx on a free loopback port with the repository's
  deploy/nginx/lomaya-locations.conf, the log format and upstream settings of
  deploy/nginx/lomaya.conf, without TLS; stopped at teardown.

Plain functions (`run_cli`, `free_port`, `wait_for`, `wait_for_health`, `render_nginx_conf`, and what Telegram
would see of the sends: `max_in_one_second`, `min_gap_per_chat`) are usable without the fixtures. Every wait polls with a deadline; nothing synchronises on a bare sleep.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.fake_telegram import Call

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
NGINX = Path(os.environ.get("LOMAYA_NGINX", "/usr/sbin/nginx"))
SECRET = "cluster-test-secret-0123456789abcdef"
START_TIMEOUT = 60.0  # a cold `lomaya serve` imports numpy, scipy, telebot: seconds on 2 busy cores

# Only these reach the app's processes from the test runner's environment: a developer's
# DATABASE_URL, BOT_TOKEN or .env must never leak into a test cluster.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")


# --- small helpers -------------------------------------------------------------------------------


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A loopback TCP port that is free now: any (the kernel's pick), or one in [low, high]."""
    if low is None or high is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    candidates = list(range(low, high + 1))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0):
    """(status, headers, body) of a GET that follows no redirects; HTTP errors are answers."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]):
    """Poll `condition` until it is truthy (its value); fail with `logs()` (the processes' output)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs()}")
        time.sleep(0.05)  # a poll interval: the loop checks the condition


def wait_for_health(
    url: str, *, timeout: float = START_TIMEOUT, alive: Callable[[], bool] | None = None
) -> dict:
    """Poll `url` (a /health address) until it answers 200; its JSON body.

    `alive` is asked between polls: a process that died is reported at once, not at the deadline.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{url}: the process exited before it answered")
        try:
            status, _headers, body = http_get(url, timeout=2)
        except OSError as exc:
            last = type(exc).__name__
        else:
            if status == 200:
                return json.loads(body)
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.1)  # a poll interval, not a synchronisation: the loop checks the answer
    raise TimeoutError(f"{url} did not become healthy within {timeout:.0f} s ({last})")


def _wait_for_port(port: int, *, timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the process exited before it listened on port {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def base_environ(**settings: str) -> dict[str, str]:
    """The environment of an app process: the pass-through variables plus `settings`."""
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        SECRET_KEY=SECRET,
        BOT_TOKEN="",
        SCHEDULER_ENABLED="false",
        LOG_LEVEL="INFO",
    )
    env.update(settings)
    return env


def run_cli(
    args: list[str],
    env: dict[str, str],
    *,
    input: str | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli ARGS` with this interpreter (the project's venv); fails loudly."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        # Never the checkout: a developer's .env there would fill in settings the test left out.
        cwd=cwd or env.get("DATA_DIR") or tempfile.gettempdir(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"lomaya {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def create_admin(
    env: dict[str, str], email: str, password: str, role: str = "administrator"
) -> None:
    """`lomaya create-admin` for a test or bench login (the password on stdin, no questions)."""
    args = ["create-admin", "--email", email, "--name", "Анна", "--role", role]
    run_cli(
        [*args, "--password-stdin", "--non-interactive"],
        env,
        input=password + "\n",
    )


# --- lomaya serve ---------------------------------------------------------------------------------


class _Child:
    """A process started by a test or a bench, its output in `log_path`."""

    process: subprocess.Popen
    log_path: Path
    stop_timeout = 10.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int:
        """Send `sig` and wait for the exit; the exit code."""
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it lingers."""
        if not self.alive():
            return
        timeout = timeout or self.stop_timeout
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


@dataclass
class WebProcess(_Child):
    """One `lomaya serve` process on 127.0.0.1:port; its output goes to `log_path`."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.output()


def start_web(
    env: dict[str, str],
    log_dir: Path,
    port: int | None = None,
    *,
    wait: bool = True,
    args: tuple[str, ...] = (),
) -> WebProcess:
    """Start `python -m app.cli serve --host 127.0.0.1 --port PORT [ARGS]`; with `wait`, return
    only once its /health answers 200 (else stop it and raise with its output). A restart on the
    same port appends to the same log."""
    port = port or free_port()
    log_path = log_dir / f"web-{port}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "app.cli", "serve"),
                *("--host", "127.0.0.1", "--port", str(port), *args),
            ],
            env=env,
            cwd=env.get("DATA_DIR") or log_dir,  # no developer .env in the working directory
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    web = WebProcess(port=port, process=process, log_path=log_path)
    if wait:
        wait_until_healthy(web)
    return web


def wait_until_healthy(web: WebProcess, timeout: float = START_TIMEOUT) -> dict:
    try:
        return wait_for_health(web.url + "/health", timeout=timeout, alive=web.alive)
    except (RuntimeError, TimeoutError) as exc:
        web.stop()
        raise RuntimeError(f"{exc}\n--- output of lomaya serve ---\n{web.log()}") from None


@dataclass
class CliProcess(_Child):
    """A long-running `python -m app.cli ARGS` process (e.g. `worker`); output in `log_path`."""

    args: list[str]
    process: subprocess.Popen
    log_path: Path
    stop_timeout = 15.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return f"--- lomaya {' '.join(self.args)} (pid {self.pid}) ---\n{self.output()}"

    def records(self) -> list[dict[str, Any]]:
        """Its JSON log lines (LOG_FORMAT=json) as dicts; other lines are skipped."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


def start_cli(env: dict[str, str], log_dir: Path, *args: str) -> CliProcess:
    """Start `python -m app.cli ARGS` in the background (working directory: DATA_DIR)."""
    log_path = log_dir / f"{'-'.join(args)}-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=env.get("DATA_DIR") or log_dir,  # no developer .env in the working directory
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return CliProcess(list(args), process, log_path)


# --- what Telegram sees of the sends -------------------------------------------------------------


def max_in_one_second(times: list[float]) -> int:
    """The most calls in any window [t, t + 1 s)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def min_gap_per_chat(calls: list[Call]) -> float:
    """The shortest time between two calls to one chat (inf when no chat got two)."""
    by_chat: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        by_chat[int(call.params["chat_id"])].append(call.at)
    gaps = [b - a for times in by_chat.values() for a, b in itertools.pairwise(sorted(times))]
    return min(gaps, default=float("inf"))


# --- nginx ----------------------------------------------------------------------------------------


def _statement(text: str, pattern: str) -> str:
    match = re.search(pattern, text, re.MULTILINE | re.DOTALL)
    if not match:
        raise ValueError(f"deploy/nginx/lomaya.conf: no match for {pattern!r}")
    return match.group(0)


def render_nginx_conf(
    prefix: Path, port: int, upstreams: list[str], *, site: Path = DEPLOY / "nginx" / "lomaya.conf"
) -> Path:
    """Write `prefix/nginx.conf`: the production site without TLS, for a test.

    Taken from deploy/nginx/: the `lomaya` log format and the upstream block of lomaya.conf
    (balancing, max_fails/fail_timeout, keepalive — only the `server` addresses are replaced by
    `upstreams`, e.g. ["127.0.0.1:8001"]) and all of lomaya-locations.conf (proxy headers,
    retries, body limits, static files, /health/PORT). Everything nginx writes (pid, logs,
    temporary files) stays under `prefix`; nginx runs in the foreground (`daemon off`).
    """
    text = site.read_text()
    log_format = _statement(text, r"^log_format\s+lomaya\b.*?;\s*$")
    upstream = _statement(text, r"^upstream\s+lomaya_web\s*\{.*?^\}")
    body: list[str] = []
    for line in upstream.splitlines()[1:-1]:
        server = re.match(r"\s*server\s+\S+\s*([^;]*);", line)
        if server is None:
            body.append(line)
        elif not any(re.match(r"\s*server\s", kept) for kept in body):
            # The first `server` line becomes one line per test instance, with its parameters.
            body += [f"    server {address} {server.group(1).strip()};" for address in upstreams]
    upstream_block = "upstream lomaya_web {\n" + "\n".join(body) + "\n}"

    temp = {
        name: prefix / "temp" / name
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    mime = Path("/etc/nginx/mime.types")
    types = (
        f"include {mime};"
        if mime.exists()
        else "types { text/css css; application/javascript js; text/html html; }"
    )
    # Root starts workers as `nobody` by default, who may not read the checkout or the tmp folder.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    {types}
    default_type application/octet-stream;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};

    {log_format}

    {upstream_block}

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        access_log {prefix}/access.log lomaya;

        set $lomaya_root {REPO};
        include {DEPLOY / "nginx" / "lomaya-locations.conf"};
    }}
}}
"""
    path = prefix / "nginx.conf"
    path.write_text(conf)
    return path


def check_nginx_conf(conf: Path, prefix: Path, nginx: Path = NGINX) -> None:
    """`nginx -t` on `conf`; AssertionError with nginx's words if it is refused."""
    result = subprocess.run(
        [str(nginx), "-t", "-q", "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "t.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise AssertionError(f"nginx -t refused {conf}:\n{result.stderr}{result.stdout}")


@dataclass
class Nginx:
    """A foreground nginx master under `prefix`, listening on 127.0.0.1:port."""

    port: int
    prefix: Path
    process: subprocess.Popen
    taken: int = 0  # access-log lines already returned by take_log_lines()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def access_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def take_log_lines(self, count: int, timeout: float = 10.0) -> list[str]:
        """The next `count` access-log lines after those taken before, waiting for them: nginx
        writes a line after the response has gone out, so a client can be faster than the log."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_lines()
            if len(lines) >= self.taken + count:
                self.taken += count
                return lines[self.taken - count : self.taken]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} new access-log lines expected: {lines[self.taken :]}")
            time.sleep(0.02)

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT (graceful: finish open requests), then SIGKILL if it lingers."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


def start_nginx(prefix: Path, upstreams: list[str], nginx: Path = NGINX) -> Nginx:
    """Render the test config under `prefix`, check it with `nginx -t`, start nginx and wait
    until it accepts connections."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = render_nginx_conf(prefix, port, upstreams)
    check_nginx_conf(conf, prefix, nginx)
    with (prefix / "stderr.log").open("wb") as out:
        process = subprocess.Popen(
            [str(nginx), "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Nginx(port=port, prefix=prefix, process=process)
    try:
        _wait_for_port(port, timeout=15, alive=server.alive)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(f"nginx: {exc}\n{server.error_log()}") from None
    return server


# --- PostgreSQL -----------------------------------------------------------------------------------


def _admin_engine(server_url: str) -> sa.Engine:
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(server_url: str, name: str) -> str:
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return database_url_for(server_url, name)


def database_url_for(server_url: str, name: str) -> str:
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nginx_binary() -> Path:
    if not os.access(NGINX, os.X_OK):
        reason = f"nginx is not installed at {NGINX} (apt-get install nginx)"
        if os.environ.get("LOMAYA_REQUIRE_NGINX") == "1":
            pytest.fail(reason + " but LOMAYA_REQUIRE_NGINX=1 requires the nginx tests")
        pytest.skip(reason)
    return NGINX


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server the suite runs against; the test is skipped on SQLite runs."""
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base.startswith(("postgresql", "postgres:")):
        pytest.skip("PostgreSQL only: set TEST_DATABASE_URL=postgresql://…")
    return base


@pytest.fixture
def app_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """`app_env(database_url, **settings)`: the environment for the app's processes, with a
    DATA_DIR of its own under tmp_path."""

    def make(database_url: str, **settings: str) -> dict[str, str]:
        data_dir = tmp_path / f"data-{uuid.uuid4().hex[:6]}"
        data_dir.mkdir()
        return base_environ(DATABASE_URL=database_url, DATA_DIR=str(data_dir), **settings)

    return make


@pytest.fixture
def pg_database(pg_server_url: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`pg_database(migrate=True, create=True)`: the URL of a new database, dropped afterwards.

    `migrate` runs `python -m app.cli migrate` on it; `create=False` only reserves a name (for a
    command that creates the database itself, like `deploy/restore.sh --create`).
    """
    names: list[str] = []

    def make(*, migrate: bool = True, create: bool = True) -> str:
        name = f"lomaya_cluster_{uuid.uuid4().hex[:10]}"
        names.append(name)
        if not create:
            return database_url_for(pg_server_url, name)
        url = create_database(pg_server_url, name)
        if migrate:
            run_cli(["migrate"], base_environ(DATABASE_URL=url, DATA_DIR=str(tmp_path)))
        return url

    yield make
    for name in names:
        drop_database(pg_server_url, name)


@pytest.fixture
def spawn_web(tmp_path: Path) -> Iterator[Callable[..., WebProcess]]:
    """`spawn_web(env, port=None, wait=True, args=())`: a `lomaya serve` process, stopped
    afterwards (`args`, e.g. ("--no-background",), go after --host and --port).

    With `wait=False` several processes start side by side; then call `wait_until_healthy(web)`.
    """
    started: list[WebProcess] = []
    log_dir = tmp_path / "web-logs"
    log_dir.mkdir()

    def spawn(
        env: dict[str, str],
        port: int | None = None,
        *,
        wait: bool = True,
        args: tuple[str, ...] = (),
    ) -> WebProcess:
        web = start_web(env, log_dir, port, wait=False, args=args)
        started.append(web)
        if wait:
            wait_until_healthy(web)
        return web

    yield spawn
    for web in started:
        web.stop()


@pytest.fixture
def spawn_cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """`spawn_cli(env, *args)`: a background `lomaya ARGS` process (e.g. `worker`), stopped
    (SIGTERM, then SIGKILL) afterwards."""
    started: list[CliProcess] = []
    log_dir = tmp_path / "cli-logs"
    log_dir.mkdir()

    def spawn(env: dict[str, str], *args: str) -> CliProcess:
        process = start_cli(env, log_dir, *args)
        started.append(process)
        return process

    yield spawn
    for process in started:
        process.stop()


@pytest.fixture
def spawn_nginx(nginx_binary: Path, tmp_path: Path) -> Iterator[Callable[[list[int]], Nginx]]:
    """`spawn_nginx([port, …])`: nginx in front of those loopback ports, stopped afterwards."""
    started: list[Nginx] = []

    def spawn(ports: list[int]) -> Nginx:
        prefix = tmp_path / f"nginx-{len(started)}"
        server = start_nginx(prefix, [f"127.0.0.1:{port}" for port in ports], nginx_binary)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()
