"""The daily schedule: task job, reminders, exclusions, shift transitions (app.schedule)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app import clock, schedule
from app.db import session_scope
from app.models import (
    JobRun,
    Member,
    MemberPause,
    MemberStatus,
    OutgoingMessage,
    Report,
    ReportStatus,
    Shift,
    ShiftDay,
    ShiftStatus,
)
from app.settings import get_settings, set_settings
from tests.factories import make_member, make_participant, make_report, make_shift

D = date(2026, 11, 20)  # "today" in most tests


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=get_settings().tz)


def task_hour(day: date) -> datetime:
    return at(day, get_settings().send_new_task_hour)


def run(job: str, now: datetime) -> dict:
    clock.set_now(now)
    with session_scope() as s:
        return schedule.run(s, job, now)


def reports(db, member: Member) -> dict[int, ReportStatus]:
    db.expire_all()
    rows = db.exec(select(Report).where(col(Report.member_id) == member.id)).all()
    return {r.day_number: r.status for r in rows}


def messages(db, kind: str | None = None) -> list[OutgoingMessage]:
    db.expire_all()
    query = select(OutgoingMessage).order_by(col(OutgoingMessage.id))
    if kind:
        query = query.where(col(OutgoingMessage.kind) == kind)
    return list(db.exec(query).all())


def member_status(db, member: Member) -> MemberStatus:
    db.expire_all()
    found = db.get(Member, member.id)
    assert found is not None
    return found.status


def shift_status(db, shift: Shift) -> ShiftStatus:
    db.expire_all()
    found = db.get(Shift, shift.id)
    assert found is not None
    return found.status


def plan_task(db, shift: Shift, number: int) -> int:
    return db.exec(
        select(ShiftDay.task_id).where(
            col(ShiftDay.shift_id) == shift.id, col(ShiftDay.day_number) == number
        )
    ).one()


@pytest.fixture(autouse=True)
def _frozen(settings):
    clock.set_now(at(D, 7))
    yield
    clock.set_now(None)


def test_first_day_starts_the_shift_creates_reports_and_queues_tasks(db):
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    masha = make_member(db, shift, make_participant(db, name="Маша"))
    blocked = make_member(db, shift, make_participant(db, name="Петя", is_bot_blocked=True))

    result = run("daily", task_hour(D))

    assert result["ran"] is True and result["started"] == 1
    assert result["shifts"] == [
        {"reports": 2, "tasks_queued": 1, "shift_id": shift.id, "day_number": 1}
    ]
    assert shift_status(db, shift) == ShiftStatus.started
    assert reports(db, masha) == {1: ReportStatus.waiting}
    assert reports(db, blocked) == {1: ReportStatus.waiting}  # the report exists, no message
    report = db.exec(select(Report).where(col(Report.member_id) == masha.id)).one()
    assert report.task_id == plan_task(db, shift, 1) and report.task_date == D
    [message] = messages(db)
    assert message.kind == "task" and message.dedupe_key == f"task:{report.id}"
    assert message.payload["photo_task_id"] == report.task_id
    assert message.payload["keyboard"] == "task"
    assert "Маша" in message.payload["text"]
    assert "Сфотографируй" in message.payload["text"]
    assert "Вчерашнее" not in message.payload["text"]
    assert message.send_after == task_hour(D)
    assert db.exec(select(JobRun).where(col(JobRun.job) == "daily")).one().day == D


def test_before_the_task_hour_the_job_is_for_yesterday(db):
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    make_member(db, shift)
    result = run("daily", task_hour(D) - timedelta(minutes=1))
    assert result["day"] == (D - timedelta(days=1)).isoformat()
    assert shift_status(db, shift) == ShiftStatus.preparing
    assert messages(db) == []


def test_a_normal_day_skips_yesterdays_waiting_reports_only(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    lazy = make_member(db, shift, make_participant(db, name="Вася"))
    busy = make_member(db, shift)
    unlucky = make_member(db, shift, make_participant(db, name="Оля"))
    make_report(db, lazy, 1, ReportStatus.waiting)
    make_report(db, busy, 1, ReportStatus.reviewing, photos=0)
    make_report(db, unlucky, 1, ReportStatus.declined, photos=0)

    result = run("daily", task_hour(D) + timedelta(minutes=5))

    assert result["ran"] is True
    assert reports(db, lazy) == {1: ReportStatus.skipped, 2: ReportStatus.waiting}
    assert reports(db, busy) == {1: ReportStatus.reviewing, 2: ReportStatus.waiting}
    assert reports(db, unlucky) == {1: ReportStatus.declined, 2: ReportStatus.waiting}
    texts = {m.participant_id: m.payload["text"] for m in messages(db, "task")}
    assert "не получилось" in texts[lazy.participant_id]
    assert "не смогли принять" in texts[unlucky.participant_id]
    assert "Вчерашнее" not in texts[busy.participant_id]
    for text in texts.values():
        assert f"до {get_settings().send_new_task_hour}:00" in text


def _member_with(db, shift, statuses: dict[int, ReportStatus], **participant):
    member = make_member(
        db,
        shift,
        make_participant(db, **participant),
        joined=shift.started_at + timedelta(days=min(statuses) - 1),
    )
    for day, status in statuses.items():
        make_report(db, member, day, status, photos=0)
    return member


def test_five_skipped_days_in_a_row_exclude_a_member_and_tell_them(db):
    shift = make_shift(db, start=D - timedelta(days=5), days=30)  # today is day 6
    skip, wait = ReportStatus.skipped, ReportStatus.waiting
    chain = _member_with(db, shift, {1: skip, 2: skip, 3: skip, 4: skip, 5: wait}, name="Костя")
    pressed_skip = _member_with(db, shift, {1: skip, 2: skip, 3: skip, 4: skip, 5: skip})
    declined = _member_with(
        db, shift, {1: skip, 2: skip, 3: ReportStatus.declined, 4: skip, 5: skip}
    )
    reviewing = _member_with(
        db, shift, {1: skip, 2: ReportStatus.reviewing, 3: skip, 4: skip, 5: skip}
    )
    late_joiner = _member_with(db, shift, {2: skip, 3: skip, 4: skip, 5: skip})
    tester = _member_with(db, shift, {1: skip, 2: skip, 3: skip, 4: skip, 5: skip}, is_test=True)

    result = run("daily", task_hour(D))

    assert result["shifts"][0]["excluded"] == 2
    assert member_status(db, chain) == MemberStatus.excluded
    assert member_status(db, pressed_skip) == MemberStatus.excluded
    for kept in (declined, reviewing, late_joiner, tester):
        assert member_status(db, kept) == MemberStatus.active
        assert reports(db, kept)[6] == ReportStatus.waiting
    assert 6 not in reports(db, chain)  # no new task after exclusion
    db.expire_all()
    excluded = db.get(Member, chain.id)
    assert excluded is not None and excluded.excluded_at == task_hour(D)
    notes = messages(db, "excluded")
    assert {m.participant_id for m in notes} == {chain.participant_id, pressed_skip.participant_id}
    assert any("Костя" in m.payload["text"] and "5 заданий" in m.payload["text"] for m in notes)
    assert len(messages(db, "task")) == 4


def test_late_joiner_is_excluded_after_five_of_their_own_days(db):
    shift = make_shift(db, start=D - timedelta(days=6), days=30)  # today is day 7
    skip = ReportStatus.skipped
    member = _member_with(db, shift, {2: skip, 3: skip, 4: skip, 5: skip, 6: skip})
    run("daily", task_hour(D))
    assert member_status(db, member) == MemberStatus.excluded


def test_a_member_who_joined_on_day_two_gets_tasks_from_day_two(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)  # today is day 2
    early = make_member(db, shift)
    joined_today = make_member(db, shift, joined=D)
    joins_tomorrow = make_member(db, shift, joined=D + timedelta(days=1))
    make_report(db, early, 1, ReportStatus.approved, photos=0)

    run("daily", task_hour(D))

    assert reports(db, early) == {1: ReportStatus.approved, 2: ReportStatus.waiting}
    assert reports(db, joined_today) == {2: ReportStatus.waiting}
    assert reports(db, joins_tomorrow) == {}
    [text] = [
        m.payload["text"] for m in messages(db) if m.participant_id == joined_today.participant_id
    ]
    assert "Вчерашнее" not in text


def test_reminders_go_only_to_waiting_reports_once(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    waiting = make_member(db, shift, make_participant(db, name="Лиза"))
    reviewing = make_member(db, shift)
    skipped = make_member(db, shift)
    blocked = make_member(db, shift, make_participant(db, is_bot_blocked=True))
    excluded = make_member(db, shift, status=MemberStatus.excluded)
    tester = make_member(db, shift, make_participant(db, is_test=True))
    for member, status in [
        (waiting, ReportStatus.waiting),
        (reviewing, ReportStatus.reviewing),
        (skipped, ReportStatus.skipped),
        (blocked, ReportStatus.waiting),
        (excluded, ReportStatus.waiting),
        (tester, ReportStatus.waiting),
    ]:
        make_report(db, member, 2, status, photos=0)
    reminder_hour = get_settings().send_no_report_reminder_hour

    assert run("reminder", at(D, reminder_hour) - timedelta(minutes=1))["ran"] is False
    result = run("reminder", at(D, reminder_hour, 1))
    again = run("reminder", at(D, reminder_hour, 30))

    assert result["reminders_queued"] == 2
    assert again == {"ran": False, "day": D.isoformat(), "reason": "already ran"}
    sent = messages(db, "reminder")
    assert {m.participant_id for m in sent} == {waiting.participant_id, tester.participant_id}
    assert any("Лиза" in m.payload["text"] for m in sent)


def test_a_reminder_more_than_three_hours_late_is_skipped(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    member = make_member(db, shift)
    make_report(db, member, 2, ReportStatus.waiting)
    late = at(D, get_settings().send_no_report_reminder_hour) + timedelta(hours=3, minutes=1)
    result = run("reminder", late)
    assert result["skipped"] == "too late"
    assert messages(db) == []
    assert run("reminder", late + timedelta(minutes=1))["reason"] == "already ran"


def test_finishing_then_finished_waits_for_the_review_queue(db):
    shift = make_shift(db, start=D - timedelta(days=3), days=3)  # last day was yesterday
    shift.final_message = "{name}, у тебя {balance}! Смена «{shift}» окончена."
    db.add(shift)
    db.commit()
    one = make_member(db, shift, make_participant(db, name="Аня"))
    two = make_member(db, shift, make_participant(db, name="Дима"))
    gone = make_member(db, shift, status=MemberStatus.excluded)
    make_report(db, one, 1, ReportStatus.approved, photos=0)
    make_report(db, two, 1, ReportStatus.approved, photos=0)
    make_report(db, two, 2, ReportStatus.approved, photos=0)
    last_review = make_report(db, one, 3, ReportStatus.reviewing, photos=0)
    last_waiting = make_report(db, two, 3, ReportStatus.waiting)

    # The last day's photos are accepted until its deadline: the job before it changes nothing.
    run("daily", task_hour(D) - timedelta(minutes=1))
    assert shift_status(db, shift) == ShiftStatus.started
    assert reports(db, two)[3] == ReportStatus.waiting
    tasks_before = len(messages(db, "task"))

    run("daily", task_hour(D))
    assert shift_status(db, shift) == ShiftStatus.finishing
    assert reports(db, two) == {
        1: ReportStatus.approved,
        2: ReportStatus.approved,
        3: ReportStatus.skipped,
    }
    assert 4 not in reports(db, one) and len(messages(db, "task")) == tasks_before
    db.expire_all()
    assert db.get(Report, last_waiting.id).status == ReportStatus.skipped  # type: ignore[union-attr]

    pending = run("transitions", task_hour(D) + timedelta(hours=1))
    assert pending["waiting_review"] == [shift.id] and pending["finished"] == []
    assert shift_status(db, shift) == ShiftStatus.finishing
    assert messages(db, "shift_final") == []

    db.execute(sa.update(Report).where(col(Report.id) == last_review.id).values(status="approved"))
    db.commit()
    done = run("transitions", task_hour(D) + timedelta(hours=2))
    assert done["finished"] == [{"shift_id": shift.id, "finals_queued": 2}]
    assert shift_status(db, shift) == ShiftStatus.finished
    texts = {m.participant_id: m.payload["text"] for m in messages(db, "shift_final")}
    assert texts == {
        one.participant_id: f"Аня, у тебя 2 ломбарьерчика! Смена «{shift.title}» окончена.",
        two.participant_id: f"Дима, у тебя 2 ломбарьерчика! Смена «{shift.title}» окончена.",
    }
    assert gone.participant_id not in texts
    again = run("transitions", task_hour(D) + timedelta(hours=3))
    assert again["finished"] == [] and len(messages(db, "shift_final")) == 2


def test_finished_shift_without_pending_reviews_uses_the_default_message(db):
    shift = make_shift(db, status=ShiftStatus.finishing, start=D - timedelta(days=3), days=2)
    member = make_member(db, shift, make_participant(db, name="Соня"))
    make_report(db, member, 1, ReportStatus.approved, photos=0)
    result = run("transitions", task_hour(D))
    assert result["finished"][0]["finals_queued"] == 1
    [final] = messages(db, "shift_final")
    assert "Соня" in final.payload["text"] and "1 ломбарьерчик." in final.payload["text"]
    assert shift.title in final.payload["text"]


def test_cancelled_shift_is_ignored(db):
    shift = make_shift(db, status=ShiftStatus.cancelled, start=D, days=10)
    member = make_member(db, shift)
    run("daily", task_hour(D))
    run("transitions", task_hour(D))
    assert shift_status(db, shift) == ShiftStatus.cancelled
    assert reports(db, member) == {} and messages(db) == []


def test_time_zone_edge_task_hour_before_the_utc_date_changes(db):
    """Asia/Yekaterinburg is UTC+5: a 02:00 task hour is 21:00 UTC of the day before."""
    set_settings(get_settings().with_overrides(send_new_task_hour=2))
    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=10)
    member = make_member(db, shift)
    before = datetime(2026, 11, 19, 20, 59, tzinfo=UTC)  # 01:59 on D in Yekaterinburg
    assert run("daily", before)["day"] == (D - timedelta(days=1)).isoformat()
    assert reports(db, member) == {}
    result = run("daily", before + timedelta(minutes=2))  # 21:01 UTC on D-1 = 02:01 local D
    assert result["day"] == D.isoformat()
    assert reports(db, member) == {1: ReportStatus.waiting}
    db.expire_all()
    assert db.exec(select(Report)).one().task_date == D


def test_double_run_is_a_no_op(db):
    shift = make_shift(db, start=D - timedelta(days=1), days=30)
    for _ in range(3):
        make_member(db, shift)
    first = run("daily", task_hour(D))
    second = run("daily", task_hour(D) + timedelta(hours=1))
    assert first["ran"] is True and second["reason"] == "already ran"
    assert len(messages(db, "task")) == 3
    assert db.exec(select(sa.func.count()).select_from(Report)).one() == 3


def test_a_crash_mid_job_leaves_nothing_and_the_job_runs_again(db, monkeypatch):
    from app import scheduler

    shift = make_shift(db, status=ShiftStatus.preparing, start=D, days=30)
    member = make_member(db, shift)

    def boom(*args, **kwargs):
        raise RuntimeError("the process died while queuing")

    monkeypatch.setattr(schedule.outbox, "enqueue_many", boom)
    assert scheduler.tick(task_hour(D)) == {}
    assert shift_status(db, shift) == ShiftStatus.preparing
    assert reports(db, member) == {} and messages(db) == []
    assert db.exec(select(JobRun).where(JobRun.job != "retention")).all() == []

    monkeypatch.undo()
    assert scheduler.tick(task_hour(D) + timedelta(minutes=1))["daily"]["ran"] is True
    assert reports(db, member) == {1: ReportStatus.waiting}


@contextmanager
def count_statements_on(engine):
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def test_statements_per_job_do_not_grow_with_members(db, engine):
    """Set-based: the same number of SQL statements for 2 and for 12 members, some of them paused
    on the second day (tests/test_pauses.py checks what the paused ones get)."""

    def count_statements(members: int, day: date) -> dict[str, int]:
        shift = make_shift(db, status=ShiftStatus.preparing, start=day, days=2)
        for n in range(members):
            m = make_member(db, shift)
            if n < max(1, members // 3):
                second = day + timedelta(days=1)
                db.add(MemberPause(member_id=m.id, first_day=second, last_day=second, reason="."))
                db.commit()
        counts = {}
        for job, moment in [
            ("daily", task_hour(day)),
            ("reminder", at(day, get_settings().send_no_report_reminder_hour)),
            ("daily", task_hour(day + timedelta(days=1))),
            ("daily", task_hour(day + timedelta(days=2))),
            ("transitions", task_hour(day + timedelta(days=2))),
        ]:
            with count_statements_on(engine) as seen:
                run(job, moment)
            counts[f"{job}@{moment.date()}"] = len(seen)
        assert reports(db, m)
        return counts

    small = count_statements(2, D)
    db.execute(sa.delete(JobRun))
    db.commit()
    big = count_statements(12, D + timedelta(days=10))
    assert list(small.values()) == list(big.values())
    assert len(messages(db, "shift_final")) == 14
    assert len(messages(db, "task")) == 2 * 14 - 1 - 4  # no task on a paused day
