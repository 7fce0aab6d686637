"""The inline HTMX edits in a real browser: a plan day's task, a task's archive toggle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock
from app.models import ShiftDay, Task
from tests import factories
from tests.browser_support import sign_in

pytestmark = pytest.mark.browser


def test_plan_day_changes_inline_and_archive_toggles(page, live_server, admin, db):
    first = factories.make_task(db, "Почистить зубы")
    second = factories.make_task(db, "Заправить кровать")
    shift = factories.make_shift(
        db, start=clock.local_today() - timedelta(days=1), days=5, tasks=[first]
    )
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/shifts/{shift.id}/plan")
    assert page.locator("#day-1 select").count() == 0  # yesterday: read-only
    page.select_option("#task-4", str(second.id))
    page.locator("#day-4 .saved").wait_for()
    day4 = db.exec(
        select(ShiftDay).where(ShiftDay.shift_id == shift.id, ShiftDay.day_number == 4)
    ).one()
    assert day4.task_id == second.id
    assert page.url.endswith("/plan")  # no page load happened

    page.goto(f"{live_server}/tasks")
    page.locator(f"#task-{second.id} button").click()
    page.locator(f"#task-{second.id}.archived").wait_for()
    db.expire_all()
    assert db.get(Task, second.id).is_archived
