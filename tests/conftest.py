"""Fixtures: the suite runs against SQLite by default, or PostgreSQL when TEST_DATABASE_URL is set.

Each run gets a fresh database (a temp SQLite file, or a new PostgreSQL database created on the
server TEST_DATABASE_URL points at and dropped afterwards), migrated with Alembic to head. Each
test starts from empty tables.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel
from starlette.testclient import TestClient

from app import clock
from app.db import make_engine, set_engine
from app.migrate import upgrade
from app.models import Staff, StaffRole, StaffStatus
from app.settings import Settings, load_settings, set_settings
from tests import factories

# The bot's fixtures (fake Bot API server, bot settings, update builders) live in their own module.
pytest_plugins = ["tests.bot_support", "tests.cluster_support", "tests.s3_support"]

TEST_SECRET = "test-secret-key-0123456789abcdef"
PASSWORD = "correct horse battery"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _create_pg_database(base_url: str) -> tuple[str, str]:
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    name = f"lomaya_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(base_url: str, name: str) -> None:
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if base:
        url, name = _create_pg_database(base)
        yield url
        _drop_pg_database(base, name)
    else:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def base_settings(database_url: str, data_dir: Path) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "SECRET_KEY": TEST_SECRET,
            "SCHEDULER_ENABLED": "false",
            "BOT_TOKEN": "",
        },
        env_file=None,
    )


@pytest.fixture(scope="session")
def engine(base_settings: Settings) -> Iterator[Engine]:
    set_settings(base_settings)
    engine = make_engine(base_settings.database_url)
    set_engine(engine)
    upgrade(engine)
    yield engine
    set_engine(None)


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
        else:
            for name in reversed(tables):
                conn.execute(sa.text(f'DELETE FROM "{name}"'))


@pytest.fixture
def settings(base_settings: Settings, engine: Engine) -> Iterator[Settings]:
    """The settings in force for one test; a test may install changed ones with `set_settings`."""
    set_settings(base_settings)
    yield base_settings
    set_settings(base_settings)
    clock.set_now(None)


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" in request.fixturenames:
        _empty_tables(request.getfixturevalue("engine"))


@pytest.fixture
def is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def db(engine: Engine, settings: Settings) -> Iterator[Session]:
    """A session for arranging and checking data; commit explicitly to make data visible to the app."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def app(settings: Settings):
    from app.main import create_app

    return create_app(settings, start_background=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


# --- personas -------------------------------------------------------------------------------


def _staff(
    db: Session, email: str, role: StaffRole, status: StaffStatus = StaffStatus.active
) -> Staff:
    return factories.make_staff(db, email=email, role=role, status=status, password=PASSWORD)


@pytest.fixture
def admin(db: Session) -> Staff:
    return _staff(db, "admin@example.org", StaffRole.administrator)


@pytest.fixture
def expert(db: Session) -> Staff:
    return _staff(db, "expert@example.org", StaffRole.expert)


@pytest.fixture
def blocked_expert(db: Session) -> Staff:
    return _staff(db, "blocked@example.org", StaffRole.expert, StaffStatus.blocked)


CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_token(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's <meta name="csrf-token">."""
    page = client.get(path)
    match = CSRF_RE.search(page.text)
    assert match, f"no csrf meta tag on {path}"
    return match.group(1)


def login(client: TestClient, staff: Staff, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"email": staff.email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def admin_client(client: TestClient, admin: Staff) -> TestClient:
    response = login(client, admin)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def expert_client(client: TestClient, expert: Staff) -> TestClient:
    response = login(client, expert)
    assert response.status_code == 303, response.text
    return client


# --- a real server on a loopback port (browser tests, webhook tests) ----------------------------


class LiveServer:
    def __init__(self, app) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("live server failed to start")
            threading.Event().wait(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        # Open live-queue streams (pages still open in a browser) end with the server: uvicorn
        # runs no signal handlers in a thread, so sse-starlette is told directly.
        from sse_starlette.sse import AppStatus

        AppStatus.should_exit = True
        self.server.should_exit = True
        self.thread.join(timeout=10)
        AppStatus.should_exit = False


@pytest.fixture
def live_server(app) -> Iterator[str]:
    server = LiveServer(app)
    url = server.start()
    yield url
    server.stop()


# --- a real Chromium (Debian's package) driven by Playwright --------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Chromium through Playwright. Skipped by hand when missing; CI sets LOMAYA_REQUIRE_BROWSER=1."""
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("LOMAYA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " but LOMAYA_REQUIRE_BROWSER=1 requires browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _close_pages(pages: list, request: pytest.FixtureRequest, folder: Path) -> None:
    """Close the pages' contexts; if the test failed, save a screenshot of each first."""
    report = getattr(request.node, "report_call", None)
    for n, page in enumerate(pages):
        if report is not None and report.failed:
            shot = folder / f"failure-{n}.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page: {shot}")
            except Exception as exc:  # the page may be gone; the failure itself matters more
                print(f"no screenshot: {exc}")
        page.context.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, tmp_path: Path):
    """A Chromium page (Russian, 1280 × 900); a failing test leaves a screenshot of it."""
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    _close_pages([page], request, tmp_path)


@pytest.fixture
def new_page(browser, request: pytest.FixtureRequest, tmp_path: Path):
    """Make more pages, each in its own context (`new_page(viewport=…, locale=…)`); a failing
    test leaves a screenshot of each."""
    pages: list = []

    def make(**options):
        context = browser.new_context(**{"locale": "ru-RU", **options})
        made = context.new_page()
        made.set_default_timeout(15_000)
        pages.append(made)
        return made

    yield make
    _close_pages(pages, request, tmp_path)
