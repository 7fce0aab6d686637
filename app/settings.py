"""The only module that reads the environment (and `.env`).

Every value is typed and checked once, at start-up; a bad value stops the start with one line that
names the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.config import Config

DEFAULT_DECLINE_REASONS = (
    "На фото не видно задания",
    "Фото не твоё",
    "Это фото уже было",
    "Фото размыто или слишком тёмное",
    "Задание выполнено не полностью",
)


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    secret_key: str
    time_zone: str = "Asia/Yekaterinburg"
    bot_token: str = ""
    bot_webhook_mode: bool = False
    application_url: str = ""
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    healthcheck_api_url: str = "http://127.0.0.1:8080/health"
    send_new_task_hour: int = 8
    send_no_report_reminder_hour: int = 20
    join_days_after_start: int = 2
    max_requests_per_shift: int = 3
    max_photo_attempts: int = 3
    skips_to_exclude: int = 5
    min_age: int = 3
    max_shift_months: int = 4
    undo_seconds: int = 10
    invite_ttl_hours: int = 24
    scheduler_enabled: bool = True
    outbox_rate_per_second: float = 30.0
    community_url: str = ""
    photo_retention_days: int = 365
    decline_reasons: tuple[str, ...] = DEFAULT_DECLINE_REASONS
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "noreply@lomaya.local"
    smtp_tls: bool = False
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def https(self) -> bool:
        return self.application_url.startswith("https://")

    @property
    def bot_enabled(self) -> bool:
        return bool(self.bot_token)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: expected a number from {low} to {high}, got {value}")
    return value


def _float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: expected a number from {low} to {high}, got {value}")
    return value


def _database_url(get, data_dir: Path) -> str:
    url = get("DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if not (url.startswith("postgresql+psycopg://") or url.startswith("sqlite")):
            raise SettingsError(
                f"DATABASE_URL: only PostgreSQL or SQLite URLs are supported, got {url.split(':')[0]!r}"
            )
        return url
    host = get("DB_HOST", "").strip()
    if host:
        user = quote(get("POSTGRES_USER", "postgres"), safe="")
        password = quote(get("POSTGRES_PASSWORD", ""), safe="")
        port = _int("DB_PORT", get("DB_PORT", "5432"), 1, 65535)
        name = get("POSTGRES_DB", "lomaya_baryery_db_local")
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql+psycopg://{auth}{host}:{port}/{name}"
    return f"sqlite:///{data_dir / 'lomaya.sqlite3'}"


def load_settings(
    environ: dict[str, str] | None = None,
    *,
    env_file: str | None = ".env",
    allow_generated_secret: bool = False,
) -> Settings:
    """Read and check every setting.

    `allow_generated_secret` is for the demo and the tests only: everywhere else a missing
    SECRET_KEY stops the start instead of silently inventing one.
    """
    if environ is None:
        environ = dict(os.environ)
    file_values: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        config = Config(env_file, environ={})
        file_values = dict(config.file_values)

    def get(name: str, default: str = "") -> str:
        if name in environ:
            return environ[name]
        return file_values.get(name, default)

    data_dir = Path(get("DATA_DIR", "./var")).expanduser()
    secret_key = get("SECRET_KEY", "").strip()
    if not secret_key:
        if not allow_generated_secret:
            raise SettingsError(
                "SECRET_KEY: is required (a long random string); generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        secret_key = secrets.token_urlsafe(48)
    elif len(secret_key) < 16:
        raise SettingsError("SECRET_KEY: must be at least 16 characters long")

    tz_name = get("TIME_ZONE", "Asia/Yekaterinburg").strip()
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"TIME_ZONE: unknown time zone {tz_name!r}") from None

    webhook_mode = _bool("BOT_WEBHOOK_MODE", get("BOT_WEBHOOK_MODE", "false"))
    application_url = get("APPLICATION_URL", "").strip().rstrip("/")
    if application_url and urlparse(application_url).scheme not in {"http", "https"}:
        raise SettingsError(
            f"APPLICATION_URL: expected an http(s) address, got {application_url!r}"
        )
    bot_token = get("BOT_TOKEN", "").strip()
    if webhook_mode and bot_token and not application_url.startswith("https://"):
        raise SettingsError(
            "APPLICATION_URL: webhook mode (BOT_WEBHOOK_MODE=true) needs an https "
            "address that Telegram can reach"
        )

    webhook_secret = get("TELEGRAM_WEBHOOK_SECRET", "").strip()
    if webhook_secret:
        if not (1 <= len(webhook_secret) <= 256) or not all(
            c.isascii() and (c.isalnum() or c in "_-") for c in webhook_secret
        ):
            raise SettingsError(
                "TELEGRAM_WEBHOOK_SECRET: 1–256 characters of A-Z, a-z, 0-9, _ and -"
            )
    else:
        webhook_secret = hmac.new(
            secret_key.encode(), b"telegram-webhook", hashlib.sha256
        ).hexdigest()

    api_url = get("TELEGRAM_API_URL", "https://api.telegram.org").strip().rstrip("/")
    if urlparse(api_url).scheme not in {"http", "https"}:
        raise SettingsError(f"TELEGRAM_API_URL: expected an http(s) address, got {api_url!r}")

    reasons_raw = get("DECLINE_REASONS", "").strip()
    reasons = (
        tuple(r.strip() for r in reasons_raw.split(";") if r.strip())
        if reasons_raw
        else DEFAULT_DECLINE_REASONS
    )
    if len(reasons) > 9:
        raise SettingsError("DECLINE_REASONS: at most 9 reasons (keys 1–9), separated by ';'")

    task_hour = _int("SEND_NEW_TASK_HOUR", get("SEND_NEW_TASK_HOUR", "8"), 0, 23)
    reminder_hour = _int(
        "SEND_NO_REPORT_REMINDER_HOUR", get("SEND_NO_REPORT_REMINDER_HOUR", "20"), 0, 23
    )

    return Settings(
        database_url=_database_url(get, data_dir),
        data_dir=data_dir,
        secret_key=secret_key,
        time_zone=tz_name,
        bot_token=bot_token,
        bot_webhook_mode=webhook_mode,
        application_url=application_url,
        telegram_api_url=api_url,
        telegram_webhook_secret=webhook_secret,
        healthcheck_api_url=get("HEALTHCHECK_API_URL", "http://127.0.0.1:8080/health").strip(),
        send_new_task_hour=task_hour,
        send_no_report_reminder_hour=reminder_hour,
        join_days_after_start=_int(
            "JOIN_DAYS_AFTER_START", get("JOIN_DAYS_AFTER_START", "2"), 0, 60
        ),
        max_requests_per_shift=_int(
            "MAX_REQUESTS_PER_SHIFT", get("MAX_REQUESTS_PER_SHIFT", "3"), 1, 100
        ),
        max_photo_attempts=_int("MAX_PHOTO_ATTEMPTS", get("MAX_PHOTO_ATTEMPTS", "3"), 1, 10),
        skips_to_exclude=_int("SKIPS_TO_EXCLUDE", get("SKIPS_TO_EXCLUDE", "5"), 1, 100),
        min_age=_int("MIN_AGE", get("MIN_AGE", "3"), 0, 100),
        max_shift_months=_int("MAX_SHIFT_MONTHS", get("MAX_SHIFT_MONTHS", "4"), 1, 24),
        undo_seconds=_int("UNDO_SECONDS", get("UNDO_SECONDS", "10"), 0, 600),
        invite_ttl_hours=_int("INVITE_TTL_HOURS", get("INVITE_TTL_HOURS", "24"), 1, 24 * 30),
        scheduler_enabled=_bool("SCHEDULER_ENABLED", get("SCHEDULER_ENABLED", "true")),
        outbox_rate_per_second=_float(
            "OUTBOX_RATE_PER_SECOND", get("OUTBOX_RATE_PER_SECOND", "30"), 0.1, 100000
        ),
        community_url=get("COMMUNITY_URL", "").strip(),
        photo_retention_days=_int(
            "PHOTO_RETENTION_DAYS", get("PHOTO_RETENTION_DAYS", "365"), 1, 36500
        ),
        decline_reasons=reasons,
        smtp_host=get("SMTP_HOST", "").strip(),
        smtp_port=_int("SMTP_PORT", get("SMTP_PORT", "25"), 1, 65535),
        smtp_user=get("SMTP_USER", "").strip(),
        smtp_password=get("SMTP_PASSWORD", ""),
        smtp_from=get("SMTP_FROM", "noreply@lomaya.local").strip(),
        smtp_tls=_bool("SMTP_TLS", get("SMTP_TLS", "false")),
        log_level=get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
    )


_current: Settings | None = None


def get_settings() -> Settings:
    """The settings in force; loaded from the environment on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def set_settings(settings: Settings) -> Settings:
    """Install settings (the CLI after parsing, the tests, the demo)."""
    global _current
    _current = settings
    return settings
