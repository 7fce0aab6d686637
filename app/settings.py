"""The only module that reads the environment (and `.env`).

Every value is typed and checked once, at start-up; a bad value stops the start with one Russian
line that names the variable. Plain variables are rows of `VARIABLES` (name, field, default,
parser); the few that depend on each other are worked out in `load_settings` below the table.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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
    claim_seconds: int = 75
    live_streams_per_staff: int = 3
    live_heartbeat_seconds: float = 15.0
    live_poll_seconds: float = 1.0
    invite_ttl_hours: int = 24
    scheduler_enabled: bool = True
    web_background: bool = True
    db_pool_size: int = 10
    db_max_overflow: int = 10
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
    media_backend: str = "local"  # "local" (DATA_DIR/media) or "s3"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_prefix: str = ""
    log_format: str = "text"
    # `--force` of `lomaya serve` / `lomaya bot poll` (no variable: deleting a webhook is asked
    # for once, on the command line, never left on in an environment file)
    bot_force_polling: bool = False
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


# --- parsers: (variable name, raw text) → value, or SettingsError naming the variable -------------

Parser = Callable[[str, str], Any]


def text(name: str, raw: str) -> str:
    return raw.strip()


def boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: ожидается true или false, а не {raw!r}")


def integer(low: int, high: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}: ожидается целое число, а не {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}: ожидается число от {low} до {high}, а не {value}")
        return value

    return parse


def number(low: float, high: float) -> Parser:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}: ожидается число, а не {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}: ожидается число от {low:g} до {high:g}, а не {value:g}")
        return value

    return parse


def http_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and urlparse(value).scheme not in {"http", "https"}:
        raise SettingsError(f"{name}: ожидается адрес http(s)://…, а не {value!r}")
    return value


def time_zone(name: str, raw: str) -> str:
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: неизвестный часовой пояс {value!r}") from None
    return value


def webhook_secret(name: str, raw: str) -> str:
    value = raw.strip()
    if value and (
        len(value) > 256 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in value)
    ):
        raise SettingsError(f"{name}: 1–256 символов из A-Z, a-z, 0-9, _ и -")
    return value


def choice(*allowed: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise SettingsError(f"{name}: ожидается {' или '.join(allowed)}, а не {raw!r}")
        return value

    return parse


BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket(name: str, raw: str) -> str:
    value = raw.strip()
    if value and not BUCKET_RE.match(value):
        raise SettingsError(
            f"{name}: имя бакета — 3–63 символа: строчные латинские буквы, цифры, точки и "
            f"дефисы, а не {value!r}"
        )
    return value


def key_prefix(name: str, raw: str) -> str:
    value = raw.strip().strip("/")
    if value and (
        "\\" in value
        or "\x00" in value
        or any(part in ("", ".", "..") for part in value.split("/"))
    ):
        raise SettingsError(f"{name}: папка внутри бакета вида lomaya/media, без «..» и «//»")
    return value


def decline_reasons(name: str, raw: str) -> tuple[str, ...]:
    reasons = tuple(r.strip() for r in raw.split(";") if r.strip())
    if len(reasons) > 9:
        raise SettingsError(f"{name}: не больше 9 причин (клавиши 1–9), через ';'")
    return reasons or DEFAULT_DECLINE_REASONS


@dataclass(frozen=True)
class Variable:
    name: str
    field: str
    default: str
    parse: Parser


# Variables read by name and stored as one field each. DATABASE_URL/POSTGRES_*/DB_*, DATA_DIR and
# SECRET_KEY are combined or checked in load_settings and listed in COMBINED.
VARIABLES = (
    Variable("TIME_ZONE", "time_zone", "Asia/Yekaterinburg", time_zone),
    Variable("BOT_TOKEN", "bot_token", "", text),
    Variable("BOT_WEBHOOK_MODE", "bot_webhook_mode", "false", boolean),
    Variable("APPLICATION_URL", "application_url", "", http_url),
    Variable("TELEGRAM_API_URL", "telegram_api_url", "https://api.telegram.org", http_url),
    Variable("TELEGRAM_WEBHOOK_SECRET", "telegram_webhook_secret", "", webhook_secret),
    Variable("HEALTHCHECK_API_URL", "healthcheck_api_url", "http://127.0.0.1:8080/health", text),
    Variable("SEND_NEW_TASK_HOUR", "send_new_task_hour", "8", integer(0, 23)),
    Variable("SEND_NO_REPORT_REMINDER_HOUR", "send_no_report_reminder_hour", "20", integer(0, 23)),
    Variable("JOIN_DAYS_AFTER_START", "join_days_after_start", "2", integer(0, 60)),
    Variable("MAX_REQUESTS_PER_SHIFT", "max_requests_per_shift", "3", integer(1, 100)),
    Variable("MAX_PHOTO_ATTEMPTS", "max_photo_attempts", "3", integer(1, 10)),
    Variable("SKIPS_TO_EXCLUDE", "skips_to_exclude", "5", integer(1, 100)),
    Variable("MIN_AGE", "min_age", "3", integer(0, 100)),
    Variable("MAX_SHIFT_MONTHS", "max_shift_months", "4", integer(1, 24)),
    Variable("UNDO_SECONDS", "undo_seconds", "10", integer(0, 600)),
    Variable("CLAIM_SECONDS", "claim_seconds", "75", integer(10, 3600)),
    Variable("LIVE_STREAMS_PER_STAFF", "live_streams_per_staff", "3", integer(1, 100)),
    Variable("LIVE_HEARTBEAT_SECONDS", "live_heartbeat_seconds", "15", number(0.1, 300)),
    Variable("LIVE_POLL_SECONDS", "live_poll_seconds", "1", number(0.1, 60)),
    Variable("INVITE_TTL_HOURS", "invite_ttl_hours", "24", integer(1, 24 * 30)),
    Variable("SCHEDULER_ENABLED", "scheduler_enabled", "true", boolean),
    Variable("WEB_BACKGROUND", "web_background", "true", boolean),
    Variable("DB_POOL_SIZE", "db_pool_size", "10", integer(1, 500)),
    Variable("DB_MAX_OVERFLOW", "db_max_overflow", "10", integer(0, 500)),
    Variable("OUTBOX_RATE_PER_SECOND", "outbox_rate_per_second", "30", number(0.1, 100000)),
    Variable("COMMUNITY_URL", "community_url", "", text),
    Variable("PHOTO_RETENTION_DAYS", "photo_retention_days", "365", integer(1, 36500)),
    Variable("DECLINE_REASONS", "decline_reasons", "", decline_reasons),
    Variable("SMTP_HOST", "smtp_host", "", text),
    Variable("SMTP_PORT", "smtp_port", "25", integer(1, 65535)),
    Variable("SMTP_USER", "smtp_user", "", text),
    Variable("SMTP_PASSWORD", "smtp_password", "", lambda name, raw: raw),
    Variable("SMTP_FROM", "smtp_from", "noreply@lomaya.local", text),
    Variable("SMTP_TLS", "smtp_tls", "false", boolean),
    Variable("LOG_LEVEL", "log_level", "INFO", lambda name, raw: raw.strip().upper() or "INFO"),
    Variable("MEDIA_BACKEND", "media_backend", "local", choice("local", "s3")),
    Variable("S3_ENDPOINT_URL", "s3_endpoint_url", "", http_url),
    Variable("S3_BUCKET", "s3_bucket", "", bucket),
    Variable("S3_REGION", "s3_region", "", text),
    Variable("S3_ACCESS_KEY_ID", "s3_access_key_id", "", text),
    Variable("S3_SECRET_ACCESS_KEY", "s3_secret_access_key", "", text),
    Variable("S3_PREFIX", "s3_prefix", "", key_prefix),
    Variable("LOG_FORMAT", "log_format", "text", choice("text", "json")),
)
# Required together when photos live in S3 (MEDIA_BACKEND=s3, or `lomaya media migrate --to s3`).
S3_REQUIRED = (
    ("S3_ENDPOINT_URL", "s3_endpoint_url", "адрес S3-совместимого хранилища, https://…"),
    ("S3_BUCKET", "s3_bucket", "имя бакета для фото"),
    ("S3_REGION", "s3_region", "регион бакета, например us-east-1"),
    ("S3_ACCESS_KEY_ID", "s3_access_key_id", "ключ доступа к бакету"),
    ("S3_SECRET_ACCESS_KEY", "s3_secret_access_key", "секретный ключ к S3_ACCESS_KEY_ID"),
)
COMBINED = (
    "DATABASE_URL",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "DB_HOST",
    "DB_PORT",
    "DATA_DIR",
    "SECRET_KEY",
)


def variable_names() -> set[str]:
    """Every environment variable the app reads (checked against .env.example by a test)."""
    return {v.name for v in VARIABLES} | set(COMBINED)


def require_s3(values: Settings | dict[str, Any]) -> None:
    """SettingsError naming the first S3 variable that is not set."""
    for name, attribute, what in S3_REQUIRED:
        value = values[attribute] if isinstance(values, dict) else getattr(values, attribute)
        if not value:
            raise SettingsError(f"{name}: не задан — нужен {what} (фото хранятся в S3)")


def _database_url(get: Callable[[str, str], str], data_dir: Path) -> str:
    url = get("DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if not (url.startswith("postgresql+psycopg://") or url.startswith("sqlite")):
            raise SettingsError(
                "DATABASE_URL: поддерживаются только PostgreSQL и SQLite, "
                f"а не {url.split(':')[0]!r}"
            )
        return url
    host = get("DB_HOST", "").strip()
    if host:
        user = quote(get("POSTGRES_USER", "postgres"), safe="")
        password = quote(get("POSTGRES_PASSWORD", ""), safe="")
        port = integer(1, 65535)("DB_PORT", get("DB_PORT", "5432"))
        name = get("POSTGRES_DB", "lomaya_baryery_db_local")
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql+psycopg://{auth}{host}:{port}/{name}"
    return f"sqlite:///{data_dir / 'lomaya.sqlite3'}"


def _secret_key(get: Callable[[str, str], str], allow_generated: bool) -> str:
    secret_key = get("SECRET_KEY", "").strip()
    if not secret_key:
        if not allow_generated:
            raise SettingsError(
                "SECRET_KEY: обязателен (длинная случайная строка); создайте его командой "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return secrets.token_urlsafe(48)
    if len(secret_key) < 16:
        raise SettingsError("SECRET_KEY: нужно не меньше 16 символов")
    return secret_key


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
        file_values = dict(Config(env_file, environ={}).file_values)

    def get(name: str, default: str = "") -> str:
        return environ[name] if name in environ else file_values.get(name, default)

    values: dict[str, Any] = {v.field: v.parse(v.name, get(v.name, v.default)) for v in VARIABLES}
    data_dir = Path(get("DATA_DIR", "./var")).expanduser()
    secret_key = _secret_key(get, allow_generated_secret)
    if (
        values["bot_webhook_mode"]
        and values["bot_token"]
        and not values["application_url"].startswith("https://")
    ):
        raise SettingsError(
            "APPLICATION_URL: для режима webhook (BOT_WEBHOOK_MODE=true) нужен https-адрес, "
            "доступный Telegram"
        )
    if values["media_backend"] == "s3":
        require_s3(values)
    if not values["telegram_webhook_secret"]:
        values["telegram_webhook_secret"] = hmac.new(
            secret_key.encode(), b"telegram-webhook", hashlib.sha256
        ).hexdigest()
    return Settings(
        database_url=_database_url(get, data_dir),
        data_dir=data_dir,
        secret_key=secret_key,
        **values,
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
