"""The «Мой прогресс» WebApp over HTTP: the button, one POST with initData returning the rendered
progress (calendar, balance, run, today's task, kind decline reasons), initData failures, no caching,
and the task picture route that serves task pictures only."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlmodel import select

from app import clock, images, progress, webapp
from app.models import MemberPause, Participant, Report, ReportStatus
from tests import factories
from tests.bot_support import deliver, init_data, post_update, text_update
from tests.fake_telegram import TOKEN

UID = 777001


@pytest.fixture
def family(db, noon, bot_settings):
    """Маша on day 6 of a 30-day shift: accepted, declined, accepted, paused, accepted, today open."""
    stored = images.store_image(factories.jpeg_bytes(seed=3), folder="tasks", reencode=True)
    task = factories.make_task(db, "Почистить зубы", image_key=stored.key)
    today = clock.local_today()
    shift = factories.make_shift(db, start=today - timedelta(days=5), days=30, tasks=[task])
    member = factories.make_member(
        db, shift, factories.make_participant(db, telegram_id=UID, name="Маша")
    )
    declined = factories.make_report(db, member, 2, ReportStatus.declined, photos=1)
    declined.decline_reason = "На фото не видно задания"
    db.add(declined)
    for day in (1, 3, 5):
        factories.make_report(db, member, day, ReportStatus.approved, photos=1)
    factories.make_report(db, member, 4, ReportStatus.paused)
    day4 = shift.started_at + timedelta(days=3)
    db.add(MemberPause(member_id=member.id, first_day=day4, last_day=day4, reason="болеет"))
    factories.make_report(db, member, 6, ReportStatus.waiting)
    db.commit()
    return shift, member, task


def _progress(client, data: str | None):
    return client.post("/telegram/progress", data={} if data is None else {"init_data": data})


def test_balance_answer_carries_the_progress_web_app_button(db, bot_client, fake_tg, family):
    post_update(bot_client, text_update(UID, "Баланс ломбарьеров"))
    deliver()
    [call] = fake_tg.sent("sendMessage")
    assert "3 ломбарьерчика" in call.params["text"] and "Мой прогресс" in call.params["text"]
    [[button]] = json.loads(call.params["reply_markup"])["inline_keyboard"]
    assert button["text"] == "Мой прогресс"
    assert button["web_app"]["url"] == "https://lomaya.example.org/telegram/progress"


def test_the_page_is_the_same_for_everyone_and_says_what_to_do(bot_client):
    page = bot_client.get("/telegram/progress")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "открывается из Telegram" in page.text and "«Мой прогресс»" in page.text
    assert "telegram-web-app.js" in page.text and "/static/js/progress.js" in page.text


def test_progress_of_a_member(bot_client, family):
    _shift, _member, task = family
    answer = _progress(bot_client, init_data(UID))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    html = answer.text
    assert "Привет, Маша!" in html and "день 6 из 30" in html
    assert '<span class="pg-stat-value" id="pg-balance">3</span>' in html
    assert "ломбарьерчика" in html
    assert '<span class="pg-stat-value" id="pg-run">2</span>' in html and "дня подряд" in html
    assert "Почистить зубы" in html and f"/telegram/tasks/{task.id}/picture" in html
    assert "Ждём твоё фото" in html
    assert html.count('class="pg-day ') == 30
    assert html.count("pg-day pg-approved") == 3 and html.count("pg-day pg-paused") == 1
    assert html.count("pg-day pg-declined") == 1 and html.count("pg-future") == 24
    assert 'aria-current="date"' in html
    assert "Куратор просил: «На фото не видно задания»" in html
    assert "В следующий раз обязательно получится" in html
    assert "отклонено" not in html.lower()
    assert "болеет" not in html  # the pause's reason is for staff


def test_todays_decline_is_framed_kindly_with_attempts_left(db, bot_client, family):
    _shift, member, _task = family
    today = db.exec(
        select(Report).where(Report.member_id == member.id, Report.day_number == 6)
    ).one()
    today.status, today.photo_count = ReportStatus.declined, 1
    today.decline_reason = "Фото размыто"
    db.add(today)
    db.commit()
    html = _progress(bot_client, init_data(UID)).text
    assert "Куратор просит: «Фото размыто»" in html
    assert "Попробуй ещё раз — осталось 2 попытки" in html
    # The open day does not break the run.
    assert '<span class="pg-stat-value" id="pg-run">2</span>' in html


@pytest.mark.parametrize("case", ["missing", "forged", "stale", "tampered", "no bot"])
def test_init_data_failures_get_a_kind_message_and_no_data(bot_client, family, case, settings):
    good = init_data(UID)
    if case == "missing":
        data = None
    elif case == "forged":
        data = init_data(UID, token="654321:another-bot-token")
    elif case == "stale":
        old = int((clock.now() - timedelta(hours=3)).timestamp())
        data = init_data(UID, auth_date=old)
    elif case == "tampered":  # Маша's id put into someone else's signed initData
        fields = dict(parse_qsl(init_data(UID + 1)))
        fields["user"] = json.dumps({"id": UID, "first_name": "Маша"}, ensure_ascii=False)
        data = urlencode(fields)
    else:
        from app.settings import get_settings, set_settings

        set_settings(get_settings().with_overrides(bot_token=""))
        data = good
    answer = _progress(bot_client, data)
    assert answer.status_code == 403 and answer.headers["cache-control"] == "no-store"
    assert "нажмите кнопку «Мой прогресс»" in answer.text
    assert "Маша" not in answer.text and "ломбарьер" not in answer.text


def test_another_users_init_data_shows_only_their_own_state(db, bot_client, family):
    stranger = init_data(UID + 5)
    answer = _progress(bot_client, stranger)
    assert answer.status_code == 200 and "Ты пока не участник смены" in answer.text
    assert "Маша" not in answer.text and "pg-day" not in answer.text
    factories.make_participant(db, telegram_id=UID + 6, name="Петя")  # registered, not a member
    assert "Ты пока не участник смены" in _progress(bot_client, init_data(UID + 6)).text
    assert webapp.verify(TOKEN, stranger).id == UID + 5


def test_a_pause_an_exclusion_and_a_finished_shift_are_said_kindly(db, bot_client, family):
    _shift, member, _task = family
    today = clock.local_today()
    db.add(
        MemberPause(
            member_id=member.id,
            first_day=today + timedelta(days=2),
            last_day=today + timedelta(days=3),
            reason="каникулы",
        )
    )
    db.commit()
    assert "Скоро пауза" in _progress(bot_client, init_data(UID)).text
    member.status = factories.MemberStatus.excluded
    db.add(member)
    db.commit()
    html = _progress(bot_client, init_data(UID)).text
    assert "Мы будем рады видеть тебя в следующей" in html and "Задание на сегодня" not in html
    assert '<span class="pg-stat-value" id="pg-balance">3</span>' in html


def test_the_task_picture_route_serves_task_pictures_only(db, bot_client, family):
    _shift, _member, task = family
    picture = bot_client.get(f"/telegram/tasks/{task.id}/picture")
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    assert picture.headers["content-type"] == "image/jpeg"
    assert "public" in picture.headers["cache-control"]
    bare = factories.make_task(db, "Без картинки")
    assert bot_client.get(f"/telegram/tasks/{bare.id}/picture").status_code == 404
    assert bot_client.get("/telegram/tasks/999999/picture").status_code == 404
    # Even a task row pointing at a report photo does not make the route serve it.
    photo = images.store_image(factories.jpeg_bytes(seed=9))
    odd = factories.make_task(db, "Странная", image_key=photo.key)
    assert photo.key.startswith("reports/")
    assert bot_client.get(f"/telegram/tasks/{odd.id}/picture").status_code == 404


def test_run_of_days_counts_back_through_pauses_and_open_days():
    from datetime import date

    def cal(*statuses: str) -> list[progress.Day]:
        return [
            progress.Day(n, date(2026, 1, n), s, n == len(statuses))
            for n, s in enumerate(statuses, 1)
        ]

    assert progress.run_of_days(cal("approved", "approved", "waiting"), 3) == 2
    assert progress.run_of_days(cal("approved", "paused", "reviewing", "approved"), 4) == 3
    assert progress.run_of_days(cal("approved", "skipped", "approved", "declined"), 4) == 1
    assert progress.run_of_days(cal("approved", "declined", "approved", "approved"), 4) == 2
    assert progress.run_of_days(cal("none", "approved", "none", "approved"), 4) == 2
    assert progress.run_of_days(cal("approved", "approved"), 0) == 0


def test_the_participant_lookup_ignores_deleted_participants(db, bot_client, family):
    _shift, member, _task = family
    p = db.get(Participant, member.participant_id)
    p.deleted_at = clock.now()
    db.add(p)
    db.commit()
    assert "Ты пока не участник смены" in _progress(bot_client, init_data(UID)).text
