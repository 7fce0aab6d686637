"""Telegram WebApp `initData`: HMAC signature (constant-time compare) and `auth_date` freshness.

secret = HMAC-SHA256(key="WebAppData", msg=bot_token); hash = HMAC-SHA256(secret, the sorted "k=v"
lines except `hash`, joined by "\\n") — as Telegram documents. telebot's own helper neither checks the
age nor compares in constant time (tech-notes.md), so this is our own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from app import clock, text
from app.errors import InitDataError

MAX_AGE_SECONDS = 2 * 3600  # a child may take a while to fill the form
MAX_CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str
    auth_date: datetime


def sign(token: str, fields: dict[str, str]) -> str:
    """The `hash` Telegram would put into initData with these fields (used by tests and benches)."""
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def verify(token: str, init_data: str, *, max_age: int = MAX_AGE_SECONDS) -> WebAppUser:
    if not token:
        raise InitDataError("the bot is not configured")
    if not init_data or len(init_data) > 8192:
        raise InitDataError("missing initData")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataError("malformed initData") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("repeated keys")
    received = fields.pop("hash", "")
    expected = sign(token, fields)
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise InitDataError("bad signature")
    # Signed by Telegram, yet checked like any input: an id must be a positive 64-bit JSON integer
    # (2**70, 1e308, "abc", true or -1 would reach the database as a value it cannot store).
    timestamp = text.to_int(fields.get("auth_date"))
    try:
        user = json.loads(fields.get("user", ""))
        auth_date = datetime.fromtimestamp(timestamp, tz=UTC) if timestamp is not None else None
    except (ValueError, TypeError, RecursionError, OverflowError, OSError):
        raise InitDataError("incomplete initData") from None
    user_id = text.json_int(user.get("id")) if isinstance(user, dict) else None
    if auth_date is None or user_id is None or user_id <= 0:
        raise InitDataError("incomplete initData")
    age = (clock.now() - auth_date).total_seconds()
    if age > max_age or age < -MAX_CLOCK_SKEW_SECONDS:
        raise InitDataError("initData is too old")
    return WebAppUser(id=user_id, first_name=str(user.get("first_name", "")), auth_date=auth_date)
