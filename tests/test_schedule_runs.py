"""How the jobs are run: the scheduler loop's catch-up, concurrent instances, the CLI, health."""

from __future__ import annotations

import threading
import time as systime
from datetime import timedelta

import pytest
from sqlmodel import col, select
from starlette.testclient import TestClient

from app import cli, clock, schedule, scheduler
from app.db import make_engine, session_scope
from app.models import JobRun, MemberStatus, OutgoingMessage, Report, ReportStatus, ShiftStatus
from app.settings import get_settings
from tests.factories import make_member, make_report, make_shift
from tests.test_schedule import (
    D,
    at,
    member_status,
    messages,
    reports,
    run,
    shift_status,
    task_hour,
)


@pytest.fixture(autouse=True)
def _frozen(settings):
    clock.set_now(at(D, 7))
    yield
    clock.set_now(None)


def runs(db) -> set[tuple[str, str]]:
    """The schedule's job runs (photo retention also runs once a day; tests/test_retention.py)."""
    db.expire_all()
    return {
        (r.job, r.day.isoformat()) for r in db.exec(select(JobRun)).all() if r.job != "retention"
    }


def test_app_down_at_the_task_hour_runs_the_task_job_when_it_starts(db):
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    member = make_member(db, shift)

    # Before the task hour the open report day is yesterday: its job runs (nothing was running).
    assert scheduler.tick(at(D, 7, 59))["daily"]["day"] == (D - timedelta(days=1)).isoformat()
    assert reports(db, member) == {}
    done = scheduler.tick(at(D, 11))
    assert done["daily"]["ran"] is True and done["daily"]["day"] == D.isoformat()
    assert reports(db, member) == {1: ReportStatus.waiting}
    assert len(messages(db, "task")) == 1
    assert scheduler.tick(at(D, 11, 1)) == {}  # nothing left to do today


def test_down_for_two_days_closes_missed_days_without_stale_tasks(db):
    shift = make_shift(db, start=D - timedelta(days=5), days=30)
    member = make_member(db, shift)
    make_report(db, member, 1, ReportStatus.approved, photos=0)
    make_report(db, member, 2, ReportStatus.skipped)
    run("daily", task_hour(D - timedelta(days=3)))  # day 3; then the app was down
    assert reports(db, member)[3] == ReportStatus.waiting

    done = scheduler.tick(at(D, 9))

    assert done["daily"]["ran"] is True
    # Day 3's deadline passed: skipped. Days 4 and 5 were never given: no reports, no messages.
    assert reports(db, member) == {
        1: ReportStatus.approved,
        2: ReportStatus.skipped,
        3: ReportStatus.skipped,
        6: ReportStatus.waiting,
    }
    db.expire_all()
    days_sent = {
        db.get(Report, int(m.dedupe_key.split(":")[1])).day_number  # type: ignore[union-attr]
        for m in messages(db, "task")
    }
    assert days_sent == {3, 6}
    assert ("daily", (D - timedelta(days=1)).isoformat()) not in runs(db)
    # A job for a past day is refused once a later day ran (no stale tasks by hand either).
    stale = run("daily", task_hour(D - timedelta(days=1)))
    assert stale["ran"] is False and stale["reason"] == "a later day already ran"


def test_missed_days_do_not_count_towards_exclusion(db):
    shift = make_shift(db, start=D - timedelta(days=7), days=30)  # today is day 8
    member = make_member(db, shift)
    for day in (1, 2, 3, 4):
        make_report(db, member, day, ReportStatus.skipped)
    # Days 5-7 missed (app down): four skipped reports are not five.
    scheduler.tick(at(D, 9))
    assert reports(db, member)[8] == ReportStatus.waiting
    assert member_status(db, member) == MemberStatus.active
    # ...nor do they break the chain: day 8 left undone makes five skipped reports in a row.
    scheduler.tick(task_hour(D + timedelta(days=1)))
    assert member_status(db, member) == MemberStatus.excluded


def test_reminder_catch_up_within_three_hours_and_skipped_after(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    member = make_member(db, shift)
    hour = get_settings().send_no_report_reminder_hour

    scheduler.tick(task_hour(D))
    assert reports(db, member)[2] == ReportStatus.waiting
    assert "reminder" not in scheduler.tick(at(D, hour) - timedelta(minutes=1))
    late = scheduler.tick(at(D, hour) + timedelta(hours=2, minutes=30))
    assert late["reminder"]["reminders_queued"] == 1

    tomorrow = D + timedelta(days=1)
    scheduler.tick(task_hour(tomorrow))
    too_late = scheduler.tick(at(tomorrow, hour) + timedelta(hours=3, minutes=30))
    assert too_late["reminder"]["skipped"] == "too late"
    assert len(messages(db, "reminder")) == 1
    assert scheduler.tick(at(tomorrow, hour) + timedelta(hours=3, minutes=31)) == {}


def test_reminder_waits_for_the_days_task_job(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    make_member(db, shift)
    hour = get_settings().send_no_report_reminder_hour
    # The app starts at 20:30 having missed 08:00: the task job first, then the reminder.
    done = scheduler.tick(at(D, hour, 30))
    assert list(done) == ["daily", "reminder"]
    assert done["reminder"]["reminders_queued"] == 1


def test_transitions_run_from_the_loop_when_the_deadline_passed(db):
    shift = make_shift(db, start=D - timedelta(days=3), days=3)
    member = make_member(db, shift)
    make_report(db, member, 3, ReportStatus.reviewing, photos=0)
    done = scheduler.tick(task_hour(D))
    assert shift_status(db, shift) == ShiftStatus.finishing
    assert done["transitions"]["waiting_review"] == [shift.id]
    db.execute(
        Report.__table__.update().values(status="approved")  # type: ignore[attr-defined]
    )
    db.commit()
    assert scheduler.tick(task_hour(D) + timedelta(minutes=1))["transitions"]["finished"]
    assert shift_status(db, shift) == ShiftStatus.finished
    assert scheduler.tick(task_hour(D) + timedelta(minutes=2)) == {}


def test_two_instances_at_the_same_moment_run_the_job_once(db, is_pg, settings):
    if not is_pg:
        pytest.skip("SQLite is the single-instance embedded mode")
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    for _ in range(20):
        make_member(db, shift)
    now = task_hour(D)
    barrier = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def instance() -> None:
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            with session_scope(engine) as s:
                barrier.wait(timeout=10)
                results.append(schedule.daily(s, now))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert sorted(r["ran"] for r in results) == [False, True]
    assert [r["reason"] for r in results if not r["ran"]] == ["already ran"]
    db.expire_all()
    assert len(db.exec(select(Report)).all()) == 20
    assert len(messages(db, "task")) == 20
    assert runs(db) == {("daily", D.isoformat())}


def test_cli_runs_a_job_by_hand_with_dry_run_and_lists_runs(db, settings, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_settings", lambda args, **kw: settings)
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    member = make_member(db, shift)

    cli.main(["jobs", "run", "daily", "--now", f"{D.isoformat()}T08:30", "--dry-run"])
    out = capsys.readouterr().out
    assert '"ran": true' in out and "Пробный запуск" in out
    assert runs(db) == set() and reports(db, member) == {}

    cli.main(["jobs", "run", "daily", "--now", f"{D.isoformat()}T08:30"])
    assert reports(db, member) == {1: ReportStatus.waiting}
    cli.main(["jobs", "run", "daily", "--now", f"{D.isoformat()}T09:00"])
    assert '"reason": "already ran"' in capsys.readouterr().out
    cli.main(["jobs", "status"])
    assert f"daily        {D.isoformat()}" in capsys.readouterr().out

    with pytest.raises(SystemExit, match="--now"):
        cli.main(["jobs", "run", "daily", "--now", "вчера"])


def test_health_shows_the_last_run_of_each_job(client, db):
    assert client.get("/health").json()["scheduler"]["last_runs"]["daily"] is None
    run("daily", task_hour(D))
    body = client.get("/health").json()
    assert body["ok"] is True
    assert body["scheduler"]["last_runs"]["daily"]["day"] == D.isoformat()
    assert body["scheduler"]["last_runs"]["reminder"] is None


def test_the_web_app_starts_the_scheduler_loop(db, settings):
    from app.main import create_app

    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    make_member(db, shift)
    clock.set_now(task_hour(D) + timedelta(minutes=1))
    app = create_app(settings.with_overrides(scheduler_enabled=True))
    with TestClient(app):
        deadline = systime.monotonic() + 10
        while systime.monotonic() < deadline:
            with session_scope() as s:
                if schedule.has_run(s, "daily", D):
                    break
            systime.sleep(0.05)
    assert runs(db) == {("daily", D.isoformat())}
    db.expire_all()
    assert db.exec(select(OutgoingMessage).where(col(OutgoingMessage.kind) == "task")).all()


def test_the_worker_loop_ticks_until_stopped(db):
    import asyncio

    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    member = make_member(db, shift)
    clock.set_now(task_hour(D) + timedelta(minutes=1))

    async def main() -> None:
        stop = asyncio.Event()
        loop_task = asyncio.create_task(scheduler.run_scheduler(stop, interval=0.05))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if reports(db, member):
                break
        stop.set()
        await asyncio.wait_for(loop_task, timeout=5)

    # In its own thread: the browser tests' Playwright may keep an event loop in this one.
    worker = threading.Thread(target=asyncio.run, args=(main(),))
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert reports(db, member) == {1: ReportStatus.waiting}
    assert runs(db) == {("daily", D.isoformat())}
