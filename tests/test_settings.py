"""Settings: defaults, the seed's variable names, and one clear line for every bad value."""

import pytest

from app.settings import SettingsError, load_settings

BASE = {"SECRET_KEY": "s" * 32}


def load(**env):
    return load_settings({**BASE, **env}, env_file=None)


def test_defaults_use_embedded_sqlite_under_data_dir(tmp_path):
    settings = load(DATA_DIR=str(tmp_path))
    assert settings.database_url == f"sqlite:///{tmp_path}/lomaya.sqlite3"
    assert settings.media_dir == tmp_path / "media"
    assert settings.send_new_task_hour == 8
    assert settings.send_no_report_reminder_hour == 20
    assert settings.time_zone == "Asia/Yekaterinburg"
    assert settings.max_photo_attempts == 3 and settings.skips_to_exclude == 5


def test_seed_postgres_variables_build_a_psycopg_url():
    settings = load(
        DB_HOST="db",
        DB_PORT="5433",
        POSTGRES_DB="lomaya",
        POSTGRES_USER="u",
        POSTGRES_PASSWORD="p@ss",
    )
    assert settings.database_url == "postgresql+psycopg://u:p%40ss@db:5433/lomaya"


def test_database_url_wins_over_seed_variables():
    settings = load(DATABASE_URL="postgresql://a@h/x", DB_HOST="db")
    assert settings.database_url == "postgresql+psycopg://a@h/x"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"BOT_WEBHOOK_MODE": "maybe"}, "BOT_WEBHOOK_MODE"),
        ({"SEND_NEW_TASK_HOUR": "25"}, "SEND_NEW_TASK_HOUR"),
        ({"SEND_NO_REPORT_REMINDER_HOUR": "вечер"}, "SEND_NO_REPORT_REMINDER_HOUR"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE"),
        (
            {
                "BOT_WEBHOOK_MODE": "true",
                "BOT_TOKEN": "1:x",
                "APPLICATION_URL": "http://example.org",
            },
            "APPLICATION_URL",
        ),
        ({"DB_PORT": "port", "DB_HOST": "db"}, "DB_PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"TELEGRAM_WEBHOOK_SECRET": "bad secret!"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"MEDIA_BACKEND": "ftp"}, "MEDIA_BACKEND"),
        ({"S3_ENDPOINT_URL": "ftp://store"}, "S3_ENDPOINT_URL"),
        ({"S3_BUCKET": "Photos_Of_Kids"}, "S3_BUCKET"),
        ({"S3_PREFIX": "media/../other"}, "S3_PREFIX"),
    ],
)
def test_bad_value_names_the_variable(env, variable):
    with pytest.raises(SettingsError) as error:
        load(**env)
    assert str(error.value).startswith(variable + ":")
    assert "\n" not in str(error.value)


def test_missing_secret_key_is_refused_outside_demo():
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings({}, env_file=None)
    assert len(load_settings({}, env_file=None, allow_generated_secret=True).secret_key) >= 32


def test_webhook_secret_defaults_to_a_value_derived_from_secret_key():
    one, two = load(), load()
    assert one.telegram_webhook_secret == two.telegram_webhook_secret
    assert one.telegram_webhook_secret != load(SECRET_KEY="t" * 32).telegram_webhook_secret
    assert load(TELEGRAM_WEBHOOK_SECRET="abc_DEF-1").telegram_webhook_secret == "abc_DEF-1"


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "SEND_NEW_TASK_HOUR=9\nSECRET_KEY=" + "f" * 32 + "\nTIME_ZONE=Europe/Moscow\n"
    )
    settings = load_settings({"TIME_ZONE": "Asia/Omsk"}, env_file=str(env_file))
    assert settings.send_new_task_hour == 9
    assert settings.time_zone == "Asia/Omsk"


def test_cli_stops_with_one_line_naming_the_variable(monkeypatch, capsys):
    from app import cli

    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("SEND_NEW_TASK_HOUR", "25")
    monkeypatch.chdir("/")
    with pytest.raises(SystemExit) as stop:
        cli.main(["migrate", "check"])
    assert "SEND_NEW_TASK_HOUR" in str(stop.value.code)


def test_env_example_lists_every_setting():
    import re
    from pathlib import Path

    from app.settings import variable_names

    root = Path(__file__).resolve().parent.parent
    read = variable_names()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (root / ".env.example").read_text(), re.M))
    assert read - listed == set(), "add these to .env.example"
    assert listed - read == set(), ".env.example lists settings nobody reads"


def test_asgi_entry_point_stops_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["SEND_NEW_TASK_HOUR"] = "25"
    env["SECRET_KEY"] = "s" * 32
    result = subprocess.run(
        [sys.executable, "-c", "import app.asgi"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Ошибка настройки: SEND_NEW_TASK_HOUR: ожидается число от 0 до 23, а не 25"
    ]


S3 = {
    "MEDIA_BACKEND": "s3",
    "S3_ENDPOINT_URL": "https://storage.example.org",
    "S3_BUCKET": "lomaya-media",
    "S3_REGION": "ru-central1",
    "S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
}


def test_media_backend_defaults_to_the_folder_and_s3_settings_are_read(tmp_path):
    assert load(DATA_DIR=str(tmp_path)).media_backend == "local"
    settings = load(**S3, S3_PREFIX="/prod/photos/")
    assert (settings.media_backend, settings.s3_bucket, settings.s3_prefix) == (
        "s3",
        "lomaya-media",
        "prod/photos",
    )
    assert S3["S3_SECRET_ACCESS_KEY"] not in repr(settings)


@pytest.mark.parametrize(
    "missing",
    ["S3_ENDPOINT_URL", "S3_BUCKET", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"],
)
def test_s3_backend_without_a_setting_names_it(missing):
    with pytest.raises(SettingsError) as error:
        load(**{**S3, missing: ""})
    assert str(error.value).startswith(missing + ":") and "\n" not in str(error.value)
    load(**{**S3, "MEDIA_BACKEND": "local", missing: ""})  # not needed on the folder
