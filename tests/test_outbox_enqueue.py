"""Queuing messages: one event gives one message, ever; undo removes a pending one."""

from sqlmodel import select

from app import outbox
from app.models import OutboxStatus, OutgoingMessage
from tests import factories


def test_enqueue_is_deduplicated_and_cancel_removes_only_pending(db, tmp_path, monkeypatch):
    from app import outbox as module

    templates = tmp_path / "bot"
    templates.mkdir()
    (templates / "hello.txt").write_text("Привет, {{ participant.name }}! {{ extra }}")
    monkeypatch.setattr(module.bot_texts.loader, "searchpath", [str(templates)])
    child = factories.make_participant(db, name="Маша")
    assert outbox.enqueue(db, child, "hello", "k1", context={"extra": "Ура"}) is True
    assert outbox.enqueue(db, child, "hello", "k1", context={"extra": "Ура"}) is False
    db.commit()
    rows = db.exec(select(OutgoingMessage)).all()
    assert len(rows) == 1 and rows[0].payload["text"] == "Привет, Маша! Ура"
    assert rows[0].chat_id == child.telegram_id
    assert outbox.cancel(db, "k1") is True
    db.commit()
    assert db.exec(select(OutgoingMessage)).all() == []
    assert outbox.enqueue(db, child, "hello", "k1", context={"extra": "снова"}) is True
    db.commit()
    sent = db.exec(select(OutgoingMessage)).one()
    sent.status = OutboxStatus.sent
    db.add(sent)
    db.commit()
    assert outbox.cancel(db, "k1") is False  # a sent message cannot be withdrawn


def test_participant_without_telegram_id_gets_nothing(db):
    child = factories.make_participant(db, telegram_id=None)
    assert outbox.enqueue(db, child, "anything", "k2") is False
