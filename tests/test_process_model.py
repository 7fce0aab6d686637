"""The process model: web processes without background jobs (WEB_BACKGROUND=false,
`lomaya serve --no-background`), `lomaya serve --workers N`, pool sizes from the settings."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app import background, cli
from app.settings import load_settings
from tests.cluster_support import base_environ, free_port, run_cli, wait_for_health


@pytest.fixture
def started_jobs(monkeypatch) -> list:
    """Records the jobs each app start hands to background.start."""
    calls: list = []

    def spy(settings, jobs):
        calls.append([job.__name__ for job in jobs])
        return []

    monkeypatch.setattr(background, "start", spy)
    return calls


def test_web_background_false_runs_no_sender_scheduler_or_polling(bot_settings, started_jobs):
    from app.main import create_app

    polling = bot_settings.with_overrides(bot_webhook_mode=False, scheduler_enabled=True)
    quiet = polling.with_overrides(web_background=False)
    with TestClient(create_app(quiet)) as client:
        assert client.get("/health").json()["bot"]["background_here"] is False
    assert started_jobs == []
    with TestClient(create_app(polling)):
        pass
    assert started_jobs == [["sender_loop", "scheduler_loop", "polling_loop"]]


def test_web_background_setting_is_read_and_checked():
    env = {"SECRET_KEY": "x" * 20, "WEB_BACKGROUND": "false", "DB_POOL_SIZE": "3"}
    settings = load_settings(env, env_file=None)
    assert (settings.web_background, settings.db_pool_size, settings.db_max_overflow) == (
        False,
        3,
        10,
    )
    from app.settings import SettingsError

    with pytest.raises(SettingsError, match="DB_POOL_SIZE"):
        load_settings({**env, "DB_POOL_SIZE": "0"}, env_file=None)


def test_pool_sizes_come_from_the_settings(settings):
    from app import db

    pg = settings.with_overrides(
        database_url="postgresql+psycopg://u@127.0.0.1:1/x", db_pool_size=3, db_max_overflow=1
    )
    saved = db._engine
    db._engine = None
    try:
        engine = db.get_engine(pg)
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 1)  # type: ignore[attr-defined]
        engine.dispose()
    finally:
        db._engine = saved


@pytest.fixture
def uvicorn_calls(monkeypatch, base_settings) -> list:
    import uvicorn

    calls: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    for key, value in {
        "DATABASE_URL": base_settings.database_url,
        "DATA_DIR": str(base_settings.data_dir),
        "SECRET_KEY": base_settings.secret_key,
        "BOT_TOKEN": "",
        "WEB_BACKGROUND": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return calls


def test_serve_with_workers_starts_that_many_processes_without_background(uvicorn_calls):
    cli.main(["serve", "--workers", "3", "--port", "9999"])
    [(app, options)] = uvicorn_calls
    assert app == "app.asgi:app"  # each worker builds the app from the environment
    assert options["workers"] == 3 and options["port"] == 9999
    assert os.environ["WEB_BACKGROUND"] == "false"


def test_serve_no_background_in_one_process(uvicorn_calls):
    from app.settings import get_settings

    cli.main(["serve", "--no-background"])
    [(app, options)] = uvicorn_calls
    assert not isinstance(app, str) and "workers" not in options
    assert get_settings().web_background is False


def test_two_web_processes_serve_one_port(tmp_path: Path):
    """A real `lomaya serve --workers 2 --no-background`: both workers start and answer."""
    data = tmp_path / "data"
    data.mkdir()
    env = base_environ(DATA_DIR=str(data))
    run_cli(["migrate", "upgrade"], env)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=data,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        health = wait_for_health(
            f"http://127.0.0.1:{port}/health", timeout=90, alive=lambda: process.poll() is None
        )
        assert health["ok"] and health["bot"]["enabled"] is False

        def started() -> int:
            return (tmp_path / "serve.log").read_text().count("Application startup complete")

        deadline = time.monotonic() + 90
        while started() < 2 and time.monotonic() < deadline and process.poll() is None:
            threading.Event().wait(0.1)  # a poll interval: the loop checks the log
        text = (tmp_path / "serve.log").read_text()
        assert started() == 2, text
        assert text.count("no sender, scheduler or polling here") == 2
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
