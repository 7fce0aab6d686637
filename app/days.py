"""The report day (product.md §2): day D's task goes out at SEND_NEW_TASK_HOUR on D (project time
zone) and a photo for it is accepted until SEND_NEW_TASK_HOUR on D+1."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from app import clock
from app.models import Shift
from app.settings import get_settings


def report_day(moment: datetime | None = None) -> date:
    """The local date whose task is open at `moment` (default: now)."""
    settings = get_settings()
    local = (moment or clock.now()).astimezone(settings.tz)
    return (
        local.date()
        if local.hour >= settings.send_new_task_hour
        else local.date() - timedelta(days=1)
    )


def task_moment(day: date) -> datetime:
    """When day `day`'s task is sent (aware, project time zone)."""
    settings = get_settings()
    return datetime.combine(day, time(settings.send_new_task_hour), tzinfo=settings.tz)


def deadline(day: date) -> datetime:
    """Until when a photo for day `day` is accepted."""
    return task_moment(day + timedelta(days=1))


def day_number(shift: Shift, day: date) -> int:
    """1 for the shift's first day; may be < 1 or > length outside the shift."""
    return (day - shift.started_at).days + 1


def shift_date(shift: Shift, number: int) -> date:
    return shift.started_at + timedelta(days=number - 1)
