"""The `lomaya` command: help everywhere, creating the first administrator from a script."""

import os
import subprocess
import sys

import pytest
from sqlmodel import select

from app import accounts, cli
from app.models import Staff, StaffRole

COMMANDS = ["serve", "demo", "migrate", "seed", "create-admin", "health", "media"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: lomaya " + command in capsys.readouterr().out


def _run(args, settings, stdin="", extra_env=None):
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DATA_DIR": str(settings.data_dir),
        "SECRET_KEY": settings.secret_key,
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )


def test_create_admin_non_interactive_with_password_from_stdin(settings, db):
    result = _run(
        [
            "create-admin",
            "--email",
            "Boss@Example.org",
            "--name",
            "Анна",
            "--password-stdin",
            "--non-interactive",
        ],
        settings,
        stdin="a long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    staff = db.exec(select(Staff).where(Staff.email == "boss@example.org")).one()
    assert staff.role == StaffRole.administrator
    assert accounts.verify_password(staff.password_hash, "a long enough password")


def test_create_admin_password_from_environment_and_weak_password_refused(settings, db):
    weak = _run(
        ["create-admin", "--email", "a@example.org", "--non-interactive"],
        settings,
        extra_env={"LOMAYA_ADMIN_PASSWORD": "short"},
    )
    assert weak.returncode != 0
    assert "не короче 10 символов" in weak.stderr
    ok = _run(
        ["create-admin", "--email", "a@example.org", "--non-interactive"],
        settings,
        extra_env={"LOMAYA_ADMIN_PASSWORD": "long enough secret"},
    )
    assert ok.returncode == 0, ok.stderr
    again = _run(
        ["create-admin", "--email", "a@example.org", "--non-interactive"],
        settings,
        extra_env={"LOMAYA_ADMIN_PASSWORD": "long enough secret"},
    )
    assert again.returncode != 0 and "уже есть" in again.stderr


def test_create_admin_without_password_in_a_script_stops_clearly(settings):
    result = _run(["create-admin", "--email", "b@example.org", "--non-interactive"], settings)
    assert result.returncode != 0
    assert "Пароль не задан" in result.stderr
