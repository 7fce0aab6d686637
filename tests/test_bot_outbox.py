"""The outbox sender against the fake Bot API: limits, errors, task pictures, never twice."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock, outbox
from app.bot.sender import Sender
from app.models import OutboxStatus, OutgoingMessage, Participant, Task
from app.outbox import backlog
from tests import factories
from tests.bot_support import deliver


def _queue(db, participant, key, kind="skip_cancelled", **kw):
    outbox.enqueue(db, participant, kind, key, **kw)
    db.commit()


def _row(db, key) -> OutgoingMessage:
    db.expire_all()
    return db.exec(select(OutgoingMessage).where(OutgoingMessage.dedupe_key == key)).one()


def test_sends_text_with_the_task_keyboard_once(db, bot_settings, fake_tg):
    p = factories.make_participant(db)
    _queue(db, p, "k1", payload={"keyboard": "task"})
    assert deliver() == 1
    assert deliver() == 0  # never twice
    calls = fake_tg.sent()
    assert len(calls) == 1 and int(calls[0].params["chat_id"]) == p.telegram_id
    markup = json.loads(calls[0].params["reply_markup"])
    assert [b["text"] for b in markup["keyboard"][0]] == [
        "Пропустить задание",
        "Баланс ломбарьеров",
    ]
    row = _row(db, "k1")
    assert row.status == OutboxStatus.sent and row.sent_at is not None and row.attempts == 1


def test_task_picture_uploaded_once_then_reused_by_file_id(db, bot_settings, fake_tg):
    from app.images import store_image

    stored = store_image(factories.jpeg_bytes(seed=71), "tasks", reencode=True)
    task = factories.make_task(db, image_key=stored.key)
    a, b = factories.make_participant(db), factories.make_participant(db)
    _queue(db, a, "t-a", payload={"photo_task_id": task.id, "keyboard": "task"})
    deliver()
    db.expire_all()
    file_id = db.get(Task, task.id).telegram_file_id
    assert file_id
    _queue(db, b, "t-b", payload={"photo_task_id": task.id})
    deliver()
    first, second = fake_tg.sent("sendPhoto")
    assert "photo" in first.files and first.params.get("caption")
    assert second.files == {} and second.params["photo"] == file_id


def test_429_waits_retry_after(db, bot_settings, fake_tg, noon):
    p = factories.make_participant(db)
    _queue(db, p, "r1")
    fake_tg.fail("sendMessage", 429, retry_after=7)
    deliver()
    row = _row(db, "r1")
    assert row.status == OutboxStatus.pending and row.attempts == 0
    assert row.send_after == clock.now() + timedelta(seconds=7)
    assert deliver() == 0  # not before retry_after
    clock.set_now(clock.now() + timedelta(seconds=8))
    assert deliver() == 1
    assert _row(db, "r1").status == OutboxStatus.sent


def test_403_marks_blocked_and_closes_the_row(db, bot_settings, fake_tg):
    p = factories.make_participant(db)
    _queue(db, p, "b1")
    _queue(db, p, "b2", send_after=clock.now() + timedelta(seconds=5))
    fake_tg.fail("sendMessage", 403)
    deliver()
    assert _row(db, "b1").status == OutboxStatus.failed
    assert db.get(Participant, p.id).is_bot_blocked is True
    # nothing more is sent to them
    clock.set_now(clock.now() + timedelta(seconds=10))
    fake_tg.reset()
    deliver()
    assert fake_tg.sent() == [] and _row(db, "b2").status == OutboxStatus.failed


def test_5xx_backs_off_exponentially_with_a_cap(db, bot_settings, fake_tg, noon):
    from app.bot import sender as sender_module

    p = factories.make_participant(db)
    _queue(db, p, "e1")
    fake_tg.fail("sendMessage", 500, times=3)
    delays = []
    for _ in range(3):
        before = clock.now()
        deliver()
        row = _row(db, "e1")
        assert row.status == OutboxStatus.pending and "500" in row.last_error
        delays.append((row.send_after - before).total_seconds())
        clock.set_now(row.send_after)
    assert delays == [2, 4, 8]
    assert deliver() == 1 and _row(db, "e1").status == OutboxStatus.sent
    assert sender_module.MAX_BACKOFF_SECONDS == 300


def test_network_error_is_retried(db, bot_settings, fake_tg, noon):
    from app.settings import set_settings

    p = factories.make_participant(db)
    _queue(db, p, "n1")
    set_settings(bot_settings.with_overrides(telegram_api_url="http://127.0.0.1:1"))
    deliver()
    row = _row(db, "n1")
    assert row.status == OutboxStatus.pending and row.attempts == 1 and row.last_error
    set_settings(bot_settings)
    clock.set_now(row.send_after)
    assert deliver() == 1


def test_one_message_per_second_per_chat(db, bot_settings, fake_tg, noon):
    p = factories.make_participant(db)
    _queue(db, p, "c1")
    _queue(db, p, "c2")
    sender = Sender()
    try:
        sender.run_once()
        assert len(fake_tg.sent()) == 1
        deferred = _row(db, "c2")
        assert deferred.status == OutboxStatus.pending
        assert deferred.send_after > clock.now()
    finally:
        sender.close()


def test_edit_and_inline_keyboards(db, bot_settings, fake_tg):
    p = factories.make_participant(db)
    _queue(db, p, "s1", kind="skip_confirm", payload={"keyboard": "skip_confirm", "report_id": 9})
    _queue(db, factories.make_participant(db), "s2", payload={"edit_message_id": 55})
    deliver()
    confirm = fake_tg.sent("sendMessage")[0]
    assert "skip:yes:9" in confirm.params["reply_markup"]
    assert "skip:no:9" in confirm.params["reply_markup"]
    assert fake_tg.sent("editMessageText")[0].params["message_id"] == "55"


def test_health_shows_backlog_and_oldest_age(db, bot_settings, noon, client, is_pg):
    p = factories.make_participant(db)
    _queue(db, p, "h1")
    _queue(db, p, "h2", send_after=clock.now() + timedelta(hours=1))  # not due yet
    clock.set_now(clock.now() + timedelta(seconds=30))
    assert backlog(db) == {"backlog": 1, "oldest_due_seconds": 30.0}
    body = client.get("/health").json()
    assert body["outbox"]["backlog"] == 1
    # Whether some process holds the sender lock (none runs here); SQLite has no lock.
    assert body["outbox"]["sender"] is (False if is_pg else None)


@pytest.mark.postgres_only
def test_two_senders_never_send_the_same_row(db, bot_settings, fake_tg, is_pg):
    if not is_pg:
        pytest.skip("two concurrent senders need PostgreSQL (SQLite: one sender)")
    participants = [factories.make_participant(db) for _ in range(60)]
    for i, p in enumerate(participants):
        outbox.enqueue(db, p, "skip_cancelled", f"two-{i}")
    db.commit()
    fake_tg.delay = 0.005
    senders = [Sender(batch=10), Sender(batch=10)]

    def drain(s: Sender) -> None:
        while s.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in senders:
        s.close()
    chats = [int(c.params["chat_id"]) for c in fake_tg.sent()]
    assert len(chats) == 60 and len(set(chats)) == 60
    assert all(s.stats["sent"] > 0 for s in senders)


def test_stopping_releases_claimed_rows(db, bot_settings, fake_tg):
    from app.settings import set_settings

    set_settings(bot_settings.with_overrides(outbox_rate_per_second=2.0))
    for i in range(6):
        _queue(db, factories.make_participant(db), f"stop-{i}")
    sender = Sender()
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,))
    thread.start()
    deadline = clock.now().timestamp() + 5
    while not fake_tg.sent() and clock.now().timestamp() < deadline:
        threading.Event().wait(0.02)
    stop.set()
    thread.join(timeout=10)
    db.expire_all()
    rows = db.exec(select(OutgoingMessage)).all()
    sent = [r for r in rows if r.status == OutboxStatus.sent]
    assert 1 <= len(sent) < 6 and len(sent) == len(fake_tg.sent())
    # the rest are free for the next sender at once: no lease left behind, no attempt counted
    rest = [r for r in rows if r.status == OutboxStatus.pending]
    assert rest and all(r.claimed_until is None and r.attempts == 0 for r in rest)


def test_a_row_cancelled_after_the_claim_is_not_sent(db, bot_settings, fake_tg):
    p = factories.make_participant(db)
    _queue(db, p, "undo-1")
    sender = Sender()
    try:
        (row,) = sender.claim(10)
        assert outbox.cancel(db, "undo-1")  # the curator pressed "undo" meanwhile
        db.commit()
        sender.deliver(row)
    finally:
        sender.close()
    assert fake_tg.sent() == []
    assert db.exec(select(OutgoingMessage)).all() == []
