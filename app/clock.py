"""The current time, replaceable in tests and by `--now` on the CLI.

Everything that asks "what time is it" goes through here, so jobs and rules can be run for a given
moment. Timestamps are UTC-aware; `local_*` helpers give the project's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from app.settings import get_settings

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


def set_now(moment: datetime | None) -> None:
    """Freeze the clock at `moment` (aware), or unfreeze it with None."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("set_now needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment is not None else None


def local_now() -> datetime:
    return now().astimezone(get_settings().tz)


def local_today() -> date:
    return local_now().date()


def local_midnight(day: date | None = None) -> datetime:
    """The start of `day` (default: today) in the project's time zone, as an aware datetime."""
    return datetime.combine(day or local_today(), time(), tzinfo=get_settings().tz)
