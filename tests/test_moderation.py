"""The report queue: cards, decisions, undo, conflicts between curators, filters and paging."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import select
from starlette.testclient import TestClient

from app import clock, members, moderation, report_queue
from app.models import (
    AuditEvent,
    OutgoingMessage,
    PhotoFlag,
    ReportPhoto,
    ReportStatus,
    ShiftStatus,
    StaffRole,
)
from app.models import Report as ReportRow
from app.text import fmt_date
from tests import factories
from tests.conftest import csrf_token, login

HX = {"HX-Request": "true"}


def _queue(db, n: int = 3, *, names=None, status=ShiftStatus.started, shift=None):
    """A running shift (day 2 today) with `n` photos in review, submitted a minute apart."""
    shift = shift or factories.make_shift(
        db, start=clock.local_today() - timedelta(days=1), status=status
    )
    reports = []
    base = clock.now() - timedelta(hours=1)
    for i in range(n):
        name = (names or [])[i] if names and i < len(names) else f"Ребёнок{i}"
        member = factories.make_member(db, shift, factories.make_participant(db, name=name))
        report = factories.make_report(db, member, day=2, status=ReportStatus.reviewing)
        report.submitted_at = base + timedelta(minutes=i)
        db.add(report)
        reports.append(report)
    db.commit()
    return shift, reports


def _post(client, path, data=None, headers=None):
    token = csrf_token(client, "/reports")
    return client.post(
        path, data={"csrf_token": token, **(data or {})}, headers=headers, follow_redirects=False
    )


def _status(db, report_id):
    db.expire_all()
    return db.get(ReportRow, report_id).status


def _card_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'id="report-(\d+)"', html)]


def test_login_lands_on_the_queue(client, expert):
    response = login(client, expert)
    assert response.headers["location"] == "/reports"


def test_queue_shows_oldest_first_with_everything_a_curator_needs(expert_client, db):
    shift, reports = _queue(db, 3)
    page = expert_client.get("/reports")
    assert page.status_code == 200
    assert _card_ids(page.text) == [r.id for r in reports]
    assert '<strong id="queue-count">3</strong>' in page.text
    assert "Ребёнок0 И." in page.text and "Уфа" in page.text
    assert f"день 2 из {shift.length_days} · попытка 1 из 3" in page.text
    assert "прислано 1 час назад" in page.text
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == reports[0].id)).one()
    assert f'src="/media/{photo.thumb_key}"' in page.text
    assert f'data-full="/media/{photo.storage_key}"' in page.text


def test_strip_shows_the_childs_earlier_photos_with_their_outcome(expert_client, db):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=7))
    member = factories.make_member(db, shift)
    for day, status in enumerate(
        [ReportStatus.approved, ReportStatus.declined, ReportStatus.approved], start=1
    ):
        factories.make_report(db, member, day=day, status=status)
    factories.make_report(db, member, day=4, status=ReportStatus.skipped)
    current = factories.make_report(db, member, day=5, status=ReportStatus.reviewing)
    card = report_queue.card(db, current.id)
    assert [(s.day_number, s.status) for s in card.strip] == [
        (1, ReportStatus.approved),
        (2, ReportStatus.declined),
        (3, ReportStatus.approved),
    ]
    db.commit()  # card() stored the computed duplicate flags
    page = expert_client.get("/reports")
    # Newest first, each with its day and outcome in words.
    strip = page.text[page.text.index('class="mod-strip"') :]
    assert (
        strip.index("день 3: принято")
        < strip.index("день 2: отклонено")
        < strip.index("день 1: принято")
    )
    assert page.text.count('<li class="is-approved">') == 2


def test_approve_earns_one_point_and_tells_the_family_after_the_undo_window(
    expert_client, expert, db, settings
):
    _, (report, *_) = _queue(db, 2)
    response = _post(expert_client, f"/reports/{report.id}/approve", headers=HX)
    assert response.status_code == 200
    assert "✓ Принято" in response.text and "вы," in response.text
    assert '<strong id="queue-count" hx-swap-oob="true">1</strong>' in response.text
    assert f'hx-post="/reports/{report.id}/undo"' in response.text
    assert _status(db, report.id) == ReportStatus.approved
    assert members.balance(db, report.member_id) == 1
    message = db.exec(select(OutgoingMessage)).one()
    assert message.kind == "report_approved"
    decided_at = db.get(ReportRow, report.id).decided_at
    assert message.send_after == decided_at + timedelta(seconds=settings.undo_seconds)
    assert "+1 ломбарьерчик" in message.payload["text"]
    assert "Теперь у тебя 1 ломбарьерчик" in message.payload["text"]
    event = db.exec(select(AuditEvent)).one()
    assert (event.action, event.actor_id, event.object_id) == (
        "report.approve",
        expert.id,
        report.id,
    )
    assert event.after["status"] == "approved"


def test_decline_with_a_preset_reason_tells_attempts_left(expert_client, db, settings):
    _, (report,) = _queue(db, 1)
    response = _post(expert_client, f"/reports/{report.id}/decline", {"preset": "2"}, HX)
    assert "✗ Отклонено" in response.text
    assert f"причина: {settings.decline_reasons[1]}" in response.text
    db.expire_all()
    row = db.get(ReportRow, report.id)
    assert row.status == ReportStatus.declined and row.decline_reason == settings.decline_reasons[1]
    assert members.balance(db, report.member_id) == 0
    text = db.exec(select(OutgoingMessage)).one().payload["text"]
    assert settings.decline_reasons[1] in text
    assert "осталось 2 попытки" in text
    assert f"до {settings.send_new_task_hour}:00" in text


def test_decline_after_the_last_attempt_or_the_deadline_offers_no_retry(expert_client, db):
    _, (report,) = _queue(db, 1)
    report.photo_count = 3  # pretend all attempts are used; the latest photo row is attempt 1
    db.add(report)
    db.commit()
    _post(expert_client, f"/reports/{report.id}/decline", {"text": "Не видно лица"}, HX)
    text = db.exec(select(OutgoingMessage)).one().payload["text"]
    assert "Не видно лица" in text and "попыт" not in text and "завтра" in text


def test_preset_and_free_text_are_combined(expert_client, db, settings):
    _, (report,) = _queue(db, 1)
    _post(expert_client, f"/reports/{report.id}/decline", {"preset": "1", "text": "  темно  "})
    db.expire_all()
    assert db.get(ReportRow, report.id).decline_reason == f"{settings.decline_reasons[0]}. темно"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "я" * 10_000}, "Причина слишком длинная: 10000 символов"),
        ({"text": "   "}, "Выберите причину или напишите её"),
        ({"preset": "12"}, "Такой причины нет в списке"),
        ({"preset": "abc"}, "Такой причины нет в списке"),
    ],
)
def test_bad_decline_reasons_are_refused_and_nothing_changes(expert_client, db, data, message):
    _, (report,) = _queue(db, 1)
    plain = _post(expert_client, f"/reports/{report.id}/decline", data)
    assert plain.status_code == 400 and message in plain.text
    assert 'aria-invalid="true"' in plain.text
    htmx = _post(expert_client, f"/reports/{report.id}/decline", data, HX)
    assert htmx.status_code == 200 and message in htmx.text
    if "text" in data and data["text"].strip():
        assert data["text"][:100] in htmx.text  # the typed text is kept in the field
    assert _status(db, report.id) == ReportStatus.reviewing
    assert db.exec(select(OutgoingMessage)).all() == []
    assert db.exec(select(AuditEvent)).all() == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (ReportStatus.waiting, "Фото за этот день ещё не прислали"),
        (ReportStatus.skipped, "Этот день пропущен"),
    ],
)
def test_reports_not_in_review_cannot_be_decided(expert_client, db, status, message):
    shift = factories.make_shift(db)
    report = factories.make_report(db, factories.make_member(db, shift), day=1, status=status)
    response = _post(expert_client, f"/reports/{report.id}/approve", headers=HX)
    assert response.status_code == 200 and message in response.text
    plain = _post(expert_client, f"/reports/{report.id}/approve")
    assert plain.status_code == 303
    assert message in expert_client.get(plain.headers["location"]).text
    assert _status(db, report.id) == status
    assert members.balance(db, report.member_id) == 0


def test_unknown_report_is_a_404_page(expert_client):
    assert _post(expert_client, "/reports/987654/approve").status_code == 404
    assert _post(expert_client, "/reports/987654/decline", {"preset": "1"}).status_code == 404
    assert _post(expert_client, "/reports/987654/decline", {"text": ""}).status_code == 404
    assert _post(expert_client, "/reports/987654/undo").status_code == 404
    assert expert_client.get("/reports/987654").status_code == 404


def test_a_decision_without_the_csrf_token_is_rejected(expert_client, db):
    _, (report,) = _queue(db, 1)
    response = expert_client.post(f"/reports/{report.id}/approve", data={})
    assert response.status_code == 403
    assert _status(db, report.id) == ReportStatus.reviewing


def test_anonymous_visitors_are_sent_to_login(client, db):
    _, (report,) = _queue(db, 1)
    assert client.get("/reports", follow_redirects=False).headers["location"].startswith("/login")
    token = csrf_token(client)
    response = client.post(
        f"/reports/{report.id}/approve", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert _status(db, report.id) == ReportStatus.reviewing


def test_plain_form_decision_goes_back_to_the_same_view(expert_client, db):
    shift, (report, other) = _queue(db, 2)
    response = _post(
        expert_client, f"/reports/{report.id}/approve", {"next": f"/reports?shift={shift.id}"}
    )
    assert (
        response.status_code == 303 and response.headers["location"] == f"/reports?shift={shift.id}"
    )
    evil = _post(expert_client, f"/reports/{other.id}/approve", {"next": "https://evil.example/"})
    assert evil.headers["location"] == "/reports"


def test_second_curator_sees_first_decision(app, db, expert):
    other = factories.make_staff(db, role=StaffRole.expert, name="Ольга", surname="Петрова")
    _, (report,) = _queue(db, 1)
    with TestClient(app) as first, TestClient(app) as second:
        login(first, expert)
        login(second, other)
        second_page = second.get("/reports")  # both have the card open
        assert f'id="report-{report.id}"' in second_page.text
        assert _post(first, f"/reports/{report.id}/approve", headers=HX).status_code == 200
        late = _post(second, f"/reports/{report.id}/decline", {"preset": "1"}, HX)
        assert late.status_code == 200
        assert "Другой куратор уже проверил это фото: принято." in late.text
        assert "✓ Принято" in late.text and "Анна К." in late.text
        assert "Отменить" not in late.text
        again = _post(first, f"/reports/{report.id}/approve", headers=HX)
        assert "Вы уже проверил" in again.text
    db.expire_all()
    assert _status(db, report.id) == ReportStatus.approved
    assert members.balance(db, report.member_id) == 1
    assert len(db.exec(select(OutgoingMessage)).all()) == 1
    assert len(db.exec(select(AuditEvent)).all()) == 1


def test_undo_within_the_window_puts_the_report_back_and_withdraws_the_message(
    expert_client, expert, db
):
    _, (report,) = _queue(db, 1)
    _post(expert_client, f"/reports/{report.id}/approve", headers=HX)
    response = _post(expert_client, f"/reports/{report.id}/undo", headers=HX)
    assert response.status_code == 200
    assert 'class="mod-approve"' in response.text  # the full card again
    assert '<strong id="queue-count" hx-swap-oob="true">1</strong>' in response.text
    assert _status(db, report.id) == ReportStatus.reviewing
    assert members.balance(db, report.member_id) == 0
    assert db.exec(select(OutgoingMessage)).all() == []
    actions = [e.action for e in db.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["report.approve", "report.undo"]
    # A new decision can be made and notified again (the dedupe key was freed).
    _post(expert_client, f"/reports/{report.id}/decline", {"preset": "1"}, HX)
    assert db.exec(select(OutgoingMessage)).one().kind == "report_declined"


def test_undo_is_only_for_the_deciding_curator_and_only_in_time(app, db, expert, settings):
    other = factories.make_staff(db, role=StaffRole.expert)
    _, (report,) = _queue(db, 1)
    with TestClient(app) as mine, TestClient(app) as theirs:
        login(mine, expert)
        login(theirs, other)
        _post(mine, f"/reports/{report.id}/approve")
        refused = _post(theirs, f"/reports/{report.id}/undo", headers=HX)
        assert "Отменить можно только своё решение." in refused.text
        clock.set_now(clock.now() + timedelta(seconds=settings.undo_seconds + 1))
        late = _post(mine, f"/reports/{report.id}/undo", headers=HX)
        assert "Отменить можно только в первые 10 секунд после решения." in late.text
    assert _status(db, report.id) == ReportStatus.approved
    assert len(db.exec(select(OutgoingMessage)).all()) == 1


def test_undo_is_refused_once_the_message_was_sent(expert_client, db):
    _, (report,) = _queue(db, 1)
    _post(expert_client, f"/reports/{report.id}/approve")
    message = db.exec(select(OutgoingMessage)).one()
    message.status = "sent"
    db.add(message)
    db.commit()
    response = _post(expert_client, f"/reports/{report.id}/undo", headers=HX)
    assert "Сообщение семье уже отправлено" in response.text
    assert _status(db, report.id) == ReportStatus.approved


def test_keyset_pages_follow_each_other_without_gaps_or_repeats(expert_client, db):
    _, reports = _queue(db, 5)
    first = expert_client.get("/reports?size=2")
    assert _card_ids(first.text) == [reports[0].id, reports[1].id]
    next_url = re.search(r'hx-get="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert "after=" in next_url and "size=2" in next_url
    second = expert_client.get(next_url, headers=HX)
    assert "<html" not in second.text  # the partial only
    assert _card_ids(second.text) == [reports[2].id, reports[3].id]
    # Deciding a card on page one does not shift page two (keyset, not OFFSET).
    _post(expert_client, f"/reports/{reports[0].id}/approve")
    assert _card_ids(expert_client.get(next_url, headers=HX).text) == [
        reports[2].id,
        reports[3].id,
    ]
    last_url = re.search(r'hx-get="([^"]+)"', second.text).group(1).replace("&amp;", "&")
    last = expert_client.get(last_url, headers=HX)
    assert _card_ids(last.text) == [reports[4].id]
    assert "hx-get" not in last.text and "Это всё на сейчас." in last.text
    plain = expert_client.get(next_url)  # without JavaScript: a full page starting there
    assert "<html" in plain.text and _card_ids(plain.text) == [reports[2].id, reports[3].id]


def test_decided_lists_page_newest_first_across_statuses(expert_client, db):
    _, reports = _queue(db, 4)
    _post(expert_client, f"/reports/{reports[0].id}/approve")
    _post(expert_client, f"/reports/{reports[1].id}/decline", {"preset": "1"})
    _post(expert_client, f"/reports/{reports[2].id}/approve")
    seen, url = [], "/reports?status=all&size=1"
    for _ in range(5):
        response = expert_client.get(url, headers=HX if seen else None)
        seen += _card_ids(response.text)
        found = re.search(r'hx-get="([^"]+)"', response.text)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    assert seen == [r.id for r in reversed(reports)]


def test_filters_by_shift_task_day_status_and_child(expert_client, expert, db):
    _, (a0, a1) = _queue(db, 2, names=["Маша", "Петя"])
    shift_b, (b0,) = _queue(db, 1, names=["Маша"], status=ShiftStatus.finishing)
    assert _card_ids(expert_client.get(f"/reports?shift={shift_b.id}").text) == [b0.id]
    assert _card_ids(expert_client.get(f"/reports?task={a0.task_id}").text) == [a0.id, a1.id]
    assert _card_ids(expert_client.get("/reports?day=2").text) == [a0.id, b0.id, a1.id]
    assert _card_ids(expert_client.get("/reports?day=3").text) == []
    assert _card_ids(expert_client.get("/reports?q=маш").text) == [a0.id, b0.id]
    assert _card_ids(expert_client.get("/reports?q=ПЕТЯ Иван").text) == [a1.id]
    assert _card_ids(expert_client.get("/reports?q=100%25").text) == []
    _post(expert_client, f"/reports/{a0.id}/decline", {"text": "темно"})
    _post(expert_client, f"/reports/{a1.id}/approve")
    declined = expert_client.get("/reports?status=declined")
    assert _card_ids(declined.text) == [a0.id]
    assert "причина: темно" in declined.text and "вы," in declined.text
    everything = expert_client.get("/reports?status=all")
    assert sorted(_card_ids(everything.text)) == sorted([a0.id, a1.id, b0.id])
    assert 'value="declined" selected' in declined.text  # the view can be bookmarked
    # An older decision shows its date, not only the time.
    db.execute(
        sa.update(ReportRow)
        .where(ReportRow.id == a1.id)
        .values(decided_at=clock.now() - timedelta(days=3))
    )
    db.commit()
    approved = expert_client.get("/reports?status=approved")
    assert fmt_date(clock.now() - timedelta(days=3)) in approved.text


@pytest.mark.parametrize(
    "query",
    [
        "shift=abc",
        "shift=-1",
        "task=1e9",
        "day=99999999999999999999",
        "status=deleted",
        "size=0",
        "after=garbage",
        "after=1-2-3",
        "q=" + "а" * 300,
        "flagged=yes",
    ],
)
def test_foreign_filter_values_never_break_the_page(expert_client, db, query):
    _queue(db, 1)
    response = expert_client.get("/reports?" + query)
    assert response.status_code == 200
    assert "Проверка фото" in response.text


def test_foreign_filter_values_are_explained(expert_client, db):
    _queue(db, 1)
    page = expert_client.get("/reports?shift=abc&status=deleted")
    assert "Непонятный номер смены в адресе" in page.text
    assert "Такого статуса нет" in page.text
    assert len(_card_ids(page.text)) == 1


def test_flags_are_computed_for_photos_that_lack_them_and_shown_with_the_match(expert_client, db):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=3))
    original = factories.jpeg_bytes(seed=5)
    petya = factories.make_participant(db, name="Петя", surname="Соколов")
    first = factories.make_report(
        db,
        factories.make_member(db, shift, petya),
        day=1,
        status=ReportStatus.approved,
        photo_bytes=original,
    )
    copy = factories.make_report(
        db,
        factories.make_member(db, shift),
        day=2,
        status=ReportStatus.reviewing,
        photo_bytes=original,
    )
    clean = factories.make_report(
        db, factories.make_member(db, shift), day=2, status=ReportStatus.reviewing
    )
    for photo in db.exec(select(ReportPhoto)).all():
        photo.phash = photo.dhash = None  # like the seeds: no hashes, not checked
        db.add(photo)
    db.commit()
    page = expert_client.get("/reports")
    assert "Точно такое же фото" in page.text
    assert "Петя С., день 1" in page.text and 'class="mod-outcome is-approved">принято' in page.text
    db.expire_all()
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == copy.id)).one()
    first_photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == first.id)).one()
    assert photo.flags_checked and photo.flag == "exact" and photo.flag_photo_id == first_photo.id
    flagged = expert_client.get("/reports?flagged=1")
    assert _card_ids(flagged.text) == [copy.id]
    assert clean.id not in _card_ids(flagged.text)


def test_a_card_page_shows_one_report(expert_client, db):
    _, (report,) = _queue(db, 1)
    page = expert_client.get(f"/reports/{report.id}")
    assert page.status_code == 200 and _card_ids(page.text) == [report.id]


def test_statements_per_page_do_not_grow_with_the_page(expert_client, engine, db):
    _queue(db, 12)
    # Flags already computed (the bot computes them at intake); the lazy path is tested above.
    db.execute(sa.update(ReportPhoto).values(flags_checked=True))
    db.commit()
    counts = []

    def count(*_args):
        counts[-1] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for size in (2, 10):
            counts.append(0)
            assert expert_client.get(f"/reports?size={size}").status_code == 200
            counts.append(0)
            first = expert_client.get(f"/reports?size={size}")
            url = re.search(r'hx-get="([^"]+)"', first.text).group(1).replace("&amp;", "&")
            counts.append(0)
            assert expert_client.get(url, headers=HX).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    full_small, _, next_small, full_big, _, next_big = counts
    assert full_small == full_big
    assert next_small == next_big


def _race(app, report_id: int, staff_a, staff_b) -> dict[str, int]:
    """Two curators press "Принять" on the same card at the same moment, over real HTTP."""
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, int] = {}
    # Plain values: the ORM objects belong to the test's session, which is not thread-safe.
    staff_a, staff_b = SimpleNamespace(email=staff_a.email), SimpleNamespace(email=staff_b.email)

    def decide(staff, label):
        with TestClient(app) as c:
            login(c, staff)
            token = csrf_token(c, "/reports")
            barrier.wait()
            r = c.post(f"/reports/{report_id}/approve", data={"csrf_token": token}, headers=HX)
            results[label] = r.status_code

    threads = [
        threading.Thread(target=decide, args=(staff_a, "a")),
        threading.Thread(target=decide, args=(staff_b, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres_only
def test_two_concurrent_decisions_give_exactly_one_point(app, db, expert, is_pg):
    if not is_pg:
        pytest.skip("concurrency is tested on PostgreSQL")
    other = factories.make_staff(db, role=StaffRole.expert)
    shift = None
    for _ in range(3):
        shift, (report,) = _queue(db, 1, shift=shift)
        assert _race(app, report.id, expert, other) == {"a": 200, "b": 200}
        db.expire_all()
        assert members.balance(db, report.member_id) == 1
        events = db.exec(
            select(AuditEvent).where(
                AuditEvent.object_id == report.id, AuditEvent.action == "report.approve"
            )
        ).all()
        assert len(events) == 1
        messages = db.exec(
            select(OutgoingMessage).where(
                OutgoingMessage.dedupe_key == moderation.decision_key(report.id, 1)
            )
        ).all()
        assert len(messages) == 1


def test_the_counter_counts_the_filtered_list_exactly_or_says_at_least(db, monkeypatch):
    reports = _queue(db, 5)[1]
    photos = {p.report_id: p for p in db.exec(select(ReportPhoto)).all()}
    for r in reports[1:3]:
        photos[r.id].flag, photos[r.id].flag_photo_id = PhotoFlag.near, photos[reports[0].id].id
        db.add(photos[r.id])
    db.commit()
    flagged = report_queue.Filters(flagged=True)
    assert str(report_queue.count(db, report_queue.Filters())) == "5"
    assert str(report_queue.count(db, flagged)) == "2"
    assert str(report_queue.count(db, report_queue.Filters(status="all", flagged=True))) == "2"
    monkeypatch.setattr(report_queue, "WALK", 2)  # a long queue: only its start is looked at
    assert str(report_queue.count(db, flagged)) == "1+"
    monkeypatch.setattr(report_queue, "COUNT_CAP", 3)
    assert str(report_queue.count(db, report_queue.Filters())) == "3+"
