"""Pauses (issue 14.4): no task or reminder on paused days, never a skip toward exclusion, "пауза"
in the calendar and the results, audited pause/resume, the family told kindly, errors by the fields."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app import clock, pause_days, pauses, results, schedule
from app.db import session_scope
from app.models import (
    AuditEvent,
    JobRun,
    Member,
    MemberPause,
    MemberStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportStatus,
    ShiftStatus,
    Staff,
)
from app.settings import get_settings
from tests import factories
from tests.conftest import csrf_token

D = date(2026, 11, 20)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=get_settings().tz)


def task_hour(day: date) -> datetime:
    return at(day, get_settings().send_new_task_hour)


def reminder_hour(day: date) -> datetime:
    return at(day, get_settings().send_no_report_reminder_hour)


def run(job: str, now: datetime) -> dict:
    clock.set_now(now)
    with session_scope() as s:
        return schedule.run(s, job, now)


def statuses(db, member: Member) -> dict[int, ReportStatus]:
    db.expire_all()
    rows = db.exec(select(Report).where(col(Report.member_id) == member.id)).all()
    return {r.day_number: r.status for r in rows}


def messages(db, kind: str) -> list[OutgoingMessage]:
    db.expire_all()
    return list(
        db.exec(
            select(OutgoingMessage)
            .where(col(OutgoingMessage.kind) == kind)
            .order_by(col(OutgoingMessage.id))
        ).all()
    )


def pause(db, member: Member, first: date, last: date, reason: str = "болеет") -> MemberPause:
    row = MemberPause(member_id=member.id, first_day=first, last_day=last, reason=reason)
    db.add(row)
    db.commit()
    return row


def by_hand(actor: Staff | None, member: Member, first: date, last: date, reason: str = "болеет"):
    with session_scope() as s:
        found = s.get(Member, member.id)
        assert found is not None
        return pauses.create(s, actor, found, first.isoformat(), last.isoformat(), reason)


@pytest.fixture(autouse=True)
def _frozen(settings):
    clock.set_now(at(D, 7))
    yield
    clock.set_now(None)


# --- the daily job ------------------------------------------------------------------------------


def test_paused_day_gets_a_paused_report_and_no_task_or_reminder(db):
    shift = factories.make_shift(db, start=D - timedelta(days=1), days=30)  # today is day 2
    resting = factories.make_member(db, shift, factories.make_participant(db, name="Оля"))
    busy = factories.make_member(db, shift, factories.make_participant(db, name="Дима"))
    pause(db, resting, D, D + timedelta(days=1))

    result = run("daily", task_hour(D))

    assert result["shifts"][-1]["reports"] == 2 and result["shifts"][-1]["tasks_queued"] == 1
    assert statuses(db, resting) == {2: ReportStatus.paused}
    assert statuses(db, busy) == {2: ReportStatus.waiting}
    assert [m.participant_id for m in messages(db, "task")] == [busy.participant_id]
    run("reminder", reminder_hour(D))
    assert [m.participant_id for m in messages(db, "reminder")] == [busy.participant_id]

    # The pause ends on day 3: day 4's task comes with a kind word about the pause.
    run("daily", task_hour(D + timedelta(days=1)))
    run("daily", task_hour(D + timedelta(days=2)))
    assert statuses(db, resting) == {
        2: ReportStatus.paused,
        3: ReportStatus.paused,
        4: ReportStatus.waiting,
    }
    [back] = [m for m in messages(db, "task") if m.participant_id == resting.participant_id]
    assert "Пауза закончилась" in back.payload["text"]
    assert "не получилось" not in back.payload["text"]


def test_a_pause_set_after_the_task_keeps_the_message_and_never_becomes_a_skip(db, admin):
    shift = factories.make_shift(db, start=D - timedelta(days=1), days=30)
    member = factories.make_member(db, shift)
    run("daily", task_hour(D))
    assert len(messages(db, "task")) == 1

    clock.set_now(at(D, 12))
    by_hand(admin, member, D, D + timedelta(days=2))

    assert statuses(db, member) == {2: ReportStatus.waiting}  # a photo is still welcome today
    assert len(messages(db, "task")) == 1  # the sent task stays
    run("reminder", reminder_hour(D))
    assert messages(db, "reminder") == []
    run("daily", task_hour(D + timedelta(days=1)))
    assert statuses(db, member) == {2: ReportStatus.paused, 3: ReportStatus.paused}
    assert len(messages(db, "task")) == 1


def test_paused_days_never_count_toward_exclusion(db):
    shift = factories.make_shift(db, start=D - timedelta(days=5), days=30)  # today is day 6
    skip, paused = ReportStatus.skipped, ReportStatus.paused
    # A pause breaks a chain of skipped days: 2 + 2 skipped days around it are not 5 in a row.
    broken = factories.make_member(db, shift, factories.make_participant(db, name="Вера"))
    for day, status in {1: skip, 2: skip, 3: paused, 4: skip, 5: skip}.items():
        factories.make_report(db, broken, day, status, photos=0)
    pause(db, broken, shift.started_at + timedelta(days=2), shift.started_at + timedelta(days=2))
    # A skip pressed on a day a pause covers (before the pause was set) does not count either.
    pressed = factories.make_member(db, shift)
    for day in range(1, 6):
        factories.make_report(db, pressed, day, skip, photos=0)
    pause(db, pressed, shift.started_at + timedelta(days=4), shift.started_at + timedelta(days=4))
    # Without a pause five skipped days still exclude.
    chain = factories.make_member(db, shift)
    for day in range(1, 6):
        factories.make_report(db, chain, day, skip, photos=0)

    result = run("daily", task_hour(D))

    assert result["shifts"][0]["excluded"] == 1
    db.expire_all()
    assert db.get(Member, chain.id).status == MemberStatus.excluded
    assert db.get(Member, broken.id).status == MemberStatus.active
    assert db.get(Member, pressed.id).status == MemberStatus.active


def test_the_daily_job_stays_set_based_with_paused_members(db, engine):
    from tests.test_schedule import count_statements_on

    def count(members: int, paused: int, day: date) -> list[int]:
        shift = factories.make_shift(db, start=day - timedelta(days=1), days=10)
        made = [factories.make_member(db, shift) for _ in range(members)]
        for m in made[:paused]:
            factories.make_report(db, m, 1, ReportStatus.waiting)
            pause(db, m, day - timedelta(days=1), day + timedelta(days=1))
        counts = []
        for job, moment in [("daily", task_hour(day)), ("reminder", reminder_hour(day))]:
            with count_statements_on(engine) as seen:
                run(job, moment)
            counts.append(len(seen))
        tasks = {m.participant_id for m in messages(db, "task")}
        assert not tasks & {m.participant_id for m in made[:paused]}
        assert len(tasks & {m.participant_id for m in made}) == members - paused
        assert statuses(db, made[0]) == {1: ReportStatus.paused, 2: ReportStatus.paused}
        shift.status = ShiftStatus.finished  # one started shift at a time
        db.add(shift)
        db.commit()
        return counts

    small = count(2, 1, D)
    db.execute(sa.delete(JobRun))
    db.commit()
    assert count(12, 4, D + timedelta(days=20)) == small


# --- the admin screens --------------------------------------------------------------------------


@pytest.fixture
def running(db):
    shift = factories.make_shift(db, start=D - timedelta(days=1), days=30)
    member = factories.make_member(db, shift, factories.make_participant(db, name="Соня"))
    clock.set_now(at(D, 12))
    return shift, member


def _post(client, url: str, **data):
    token = csrf_token(client, "/")
    return client.post(url, data={"csrf_token": token, **data}, follow_redirects=False)


def test_pause_and_resume_are_audited_and_the_family_is_told_kindly(admin_client, db, running):
    _shift, member = running
    answer = _post(
        admin_client,
        f"/members/{member.id}/pauses",
        first_day=D.isoformat(),
        last_day=(D + timedelta(days=4)).isoformat(),
        reason="  болеет,   мама написала ",
    )
    assert answer.status_code == 303
    page = admin_client.get(answer.headers["location"])
    assert "Пауза поставлена" in page.text and "болеет, мама написала" in page.text
    [row] = db.exec(select(MemberPause)).all()
    assert (row.first_day, row.last_day, row.reason) == (
        D,
        D + timedelta(days=4),
        "болеет, мама написала",
    )
    [told] = messages(db, "member_paused")
    text = told.payload["text"]
    assert "Соня" in text and "пауза" in text and "Отдыхай" in text
    assert "Сегодняшнее задание можно не делать" in text
    assert "болеет" not in text  # the reason is for staff
    assert "25 ноября 2026" in text and f"в {get_settings().send_new_task_hour}:00" in text

    clock.set_now(at(D + timedelta(days=2), 12))
    assert _post(admin_client, f"/members/{member.id}/pauses/{row.id}/end").status_code == 303
    db.expire_all()
    row = db.get(MemberPause, row.id)
    assert row.last_day == D + timedelta(days=2) and row.ended_at is not None
    assert not row.cancelled
    [back] = messages(db, "member_resumed")
    assert "с возвращением" in back.payload["text"] and "23 ноября 2026" in back.payload["text"]
    again = _post(admin_client, f"/members/{member.id}/pauses/{row.id}/end")
    assert again.status_code == 409 and "уже закончилась или её уже сняли" in again.text

    actions = db.exec(
        select(AuditEvent.action, AuditEvent.after).order_by(col(AuditEvent.id))
    ).all()
    assert [a for a, _ in actions] == ["member.pause", "member.resume"]
    assert actions[0][1]["reason"] == "болеет, мама написала"
    assert actions[1][1]["last_day"] == (D + timedelta(days=2)).isoformat()


def test_a_pause_that_has_not_begun_is_cancelled(admin_client, db, running):
    shift, member = running
    later = by_hand(None, member, D + timedelta(days=5), D + timedelta(days=6), "каникулы")
    assert _post(admin_client, f"/members/{member.id}/pauses/{later.id}/end").status_code == 303
    db.expire_all()
    row = db.get(MemberPause, later.id)
    assert row.cancelled and row.last_day == D + timedelta(days=6)
    assert not pause_days.is_paused(db, member.id, D + timedelta(days=5))
    [told] = messages(db, "member_resumed")
    assert "отменили" in told.payload["text"] and "как обычно" in told.payload["text"]
    actions = db.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))).all()
    assert actions == ["member.pause", "member.pause_cancel"]
    # Another member's pause id is not found.
    other = factories.make_member(db, shift)
    assert _post(admin_client, f"/members/{other.id}/pauses/{later.id}/end").status_code == 404


@pytest.mark.parametrize(
    ("first", "last", "reason", "field", "message"),
    [
        ("", "", "болеет", "first_day", "Укажите первый день паузы"),
        ("2026-11-21", "", "болеет", "last_day", "Укажите последний день паузы"),
        ("2026-11-25", "2026-11-22", "болеет", "last_day", "не может быть раньше первого"),
        ("2026-11-19", "2026-11-22", "болеет", "first_day", "Этот день уже прошёл"),
        ("2026-11-21", "2026-12-31", "болеет", "last_day", "выберите день внутри смены"),
        ("2026-12-25", "2026-12-26", "болеет", "first_day", "выберите день внутри смены"),
        ("2026-11-21", "2026-11-22", "   ", "reason", "Напишите причину"),
        ("2026-11-21", "2026-11-22", "я" * 301, "reason", "не длиннее 300"),
        ("2026-11-23", "2026-11-28", "болеет", "first_day", "уже есть пауза"),
        ("завтра", "2026-11-22", "болеет", "first_day", "Укажите первый день паузы"),
    ],
)
def test_form_errors_are_russian_and_next_to_the_field(
    admin_client, db, running, first, last, reason, field, message
):
    _shift, member = running
    pause(db, member, D + timedelta(days=4), D + timedelta(days=6))  # 24–26 November
    answer = _post(
        admin_client, f"/members/{member.id}/pauses", first_day=first, last_day=last, reason=reason
    )
    assert answer.status_code == 400
    html = answer.text
    error = html.split(f'id="{field}-error"', 1)[1].split("</p>", 1)[0]
    assert message in error
    assert f'aria-describedby="{field}-error" aria-invalid="true"' in html
    assert len(db.exec(select(MemberPause)).all()) == 1
    assert messages(db, "member_paused") == []


def test_an_excluded_member_or_a_finished_shift_cannot_be_paused(admin_client, db, running):
    shift, member = running
    gone = factories.make_member(db, shift, status=MemberStatus.excluded)
    answer = _post(
        admin_client,
        f"/members/{gone.id}/pauses",
        first_day=D.isoformat(),
        last_day=D.isoformat(),
        reason="болеет",
    )
    assert answer.status_code == 400 and "сначала верните его" in answer.text
    shift.status = ShiftStatus.finishing
    db.add(shift)
    db.commit()
    page = admin_client.get(f"/members/{member.id}")
    assert "Поставить паузу</h3>" not in page.text
    answer = _post(
        admin_client,
        f"/members/{member.id}/pauses",
        first_day=D.isoformat(),
        last_day=D.isoformat(),
        reason="болеет",
    )
    assert answer.status_code == 400 and "ставить паузу поздно" in answer.text
    assert db.exec(select(MemberPause)).all() == []


def test_experts_see_pauses_but_only_administrators_set_them(expert_client, db, running):
    _shift, member = running
    pause(db, member, D, D + timedelta(days=2), "каникулы")
    page = expert_client.get(f"/members/{member.id}")
    assert "каникулы" in page.text and "Поставить паузу" not in page.text
    assert "Закончить паузу" not in page.text
    refused = _post(
        expert_client,
        f"/members/{member.id}/pauses",
        first_day=D.isoformat(),
        last_day=D.isoformat(),
        reason="болеет",
    )
    assert refused.status_code == 403


def test_calendar_and_results_show_pause_not_skipped(admin_client, db, running):
    shift, member = running
    factories.make_report(db, member, 1, ReportStatus.paused)
    pause(db, member, shift.started_at, D + timedelta(days=1))  # days 1–3
    page = admin_client.get(f"/members/{member.id}")
    assert page.text.count('class="day paused"') == 3  # day 1 (report), 2 (today), 3 (ahead)
    assert page.text.count('class="day skipped"') == 0
    assert "пауза" in page.text and "Закончить паузу сегодня" in page.text
    summary = results.summary(db, shift)
    assert (summary.days[0].paused, summary.days[0].skipped) == (1, 0)
    [ranked] = results.ranking(db, shift)
    assert (ranked.paused, ranked.skipped) == (1, 0)
    assert "Пауза" in results.EXPORT_HEADERS
    assert ">пауза<" in admin_client.get(f"/shifts/{shift.id}/results").text


# --- the bot on a paused day ----------------------------------------------------------------------


def test_skip_and_photo_on_a_paused_day_get_a_kind_answer(db, bot_client, fake_tg):
    from tests.bot_support import photo_update, post_update, text_update

    clock.set_now(at(D, 12))
    shift = factories.make_shift(db, start=D - timedelta(days=1), days=30)
    resting = factories.make_member(db, shift)
    factories.make_report(db, resting, 2, ReportStatus.paused)
    pause(db, resting, D, D)
    late = factories.make_member(db, shift)  # paused after today's task went out
    factories.make_report(db, late, 2, ReportStatus.waiting)
    pause(db, late, D, D)
    uid = db.get(Participant, resting.participant_id).telegram_id
    late_uid = db.get(Participant, late.participant_id).telegram_id

    post_update(bot_client, text_update(uid, "Пропустить задание"))
    post_update(bot_client, photo_update(fake_tg, uid, factories.jpeg_bytes(seed=5)))
    post_update(bot_client, text_update(late_uid, "Пропустить задание"))
    post_update(bot_client, text_update(uid, "/start"))

    db.expire_all()
    kinds = db.exec(select(OutgoingMessage.kind).order_by(col(OutgoingMessage.id))).all()
    assert kinds == ["skip_paused", "photo_day_paused", "skip_paused", "start_member"]
    start = messages(db, "start_member")[0].payload["text"]
    assert "пауза" in start
    assert statuses(db, late) == {2: ReportStatus.waiting}


def test_export_has_the_pauses_and_deletion_clears_their_reasons(admin_client, db, running):
    import io
    import json
    import zipfile

    _shift, member = running
    row = pause(db, member, D, D + timedelta(days=1), "в больнице")
    export = admin_client.get(f"/participants/{member.participant_id}/export")
    data = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("data.json"))
    assert data["memberships"][0]["pauses"][0]["reason"] == "в больнице"
    answer = _post(admin_client, f"/participants/{member.participant_id}/delete", confirm="yes")
    assert answer.status_code == 303
    db.expire_all()
    assert db.get(MemberPause, row.id).reason == ""
