"""Russian words for people: dates, times, plurals, ages, counts — and reading small numbers.

Used alike by the admin site (registered as template filters in `app.web.common`), the bot's
texts (`app.outbox`), jobs and the domain. Dates and times are shown in the project time zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app import clock
from app.settings import get_settings

MONTHS = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)


def plural(n: int, one: str, few: str, many: str) -> str:
    """Russian plural form: plural(1, "день", "дня", "дней") → "день"."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def local(value: datetime | None) -> datetime | None:
    return value.astimezone(get_settings().tz) if value else None


def fmt_date(value: date | datetime | None) -> str:
    """ "5 марта 2026"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(get_settings().tz)
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def day_text(value: date | None) -> str:
    """A date as a Russian form field holds it: "05.11.2026"."""
    return value.strftime("%d.%m.%Y") if value else ""


def parse_day(raw: Any) -> date | None:
    """A date as typed in Russia ("05.11.2026", "5.11.26", "5/11/2026") or as a browser's date
    field sends it ("2026-11-05"); None for anything else. Forms read dates in words of their
    own rather than the browser's date picker, whose language follows the browser, not the page."""
    value = "".join(str(raw or "").split()).replace("/", ".")
    for fmt in ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def fmt_time(value: datetime | None) -> str:
    moment = local(value)
    return moment.strftime("%H:%M") if moment else ""


def fmt_datetime(value: datetime | None) -> str:
    return f"{fmt_date(value)}, {fmt_time(value)}" if value else ""


def ago(value: datetime | None) -> str:
    """ "5 минут назад"."""
    if value is None:
        return ""
    seconds = int((clock.now() - value).total_seconds())
    if seconds < 60:
        return "только что"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} {plural(minutes, 'минуту', 'минуты', 'минут')} назад"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} {plural(hours, 'час', 'часа', 'часов')} назад"
    days = hours // 24
    return f"{days} {plural(days, 'день', 'дня', 'дней')} назад"


def age(born: date | None, on: date | None = None) -> int | None:
    """Full years on `on` (default: today in the project time zone)."""
    if born is None:
        return None
    on = on or clock.local_today()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def lombaryers(n: int) -> str:
    """ "1 ломбарьерчик", "2 ломбарьерчика", "5 ломбарьерчиков"."""
    return f"{n} {plural(n, 'ломбарьерчик', 'ломбарьерчика', 'ломбарьерчиков')}"


def seconds(n: int) -> str:
    """ "10 секунд"."""
    return f"{n} {plural(n, 'секунду', 'секунды', 'секунд')}"


def to_int(value: Any, bits: int = 64) -> int | None:
    """A signed integer of at most `bits` bits from a query, form or update value, else None
    (never an exception: odd input is answered, not crashed on)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value if value is not None else "").strip()
        if not text or len(text) > 25:
            return None
        try:
            number = int(text)
        except ValueError:
            return None
    limit = 1 << (bits - 1)
    return number if -limit <= number < limit else None


def json_int(value: Any, bits: int = 64) -> int | None:
    """`value` if it is a JSON integer (not a bool, a float or a digit string) of at most `bits`
    bits, else None: ids from Telegram must be exactly that before they reach the database."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return to_int(value, bits)
