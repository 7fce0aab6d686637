"""No personal data in error texts (product.md §7): stored update errors, outbox errors, the logs.

A database error quotes the statement; SQLAlchemy would add its parameters (names, phones) and
PostgreSQL its "DETAIL:  Key (phone)=(…)" line. The engine hides both.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app import participants
from app.db import get_engine, session_scope
from app.models import OutboxStatus, OutgoingMessage, Participant, TelegramUpdate, UpdateStatus
from tests import factories
from tests.bot_support import deliver, post_update, text_update

NAME, SURNAME, PHONE = "Снежана", "Добронравова", "+7 987 654-32-10"
SECRETS = (NAME, SURNAME, PHONE, "987 654", "654-32-10")


def _clash() -> None:
    """A unique violation whose parameters carry a child's name and phone (the phone is taken)."""
    with session_scope() as session:
        session.add(Participant(telegram_id=424242, name=NAME, surname=SURNAME, phone=PHONE))


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_the_engine_hides_query_parameters(settings):
    assert get_engine().hide_parameters is True


def test_a_database_error_message_names_no_values(db):
    factories.make_participant(db, phone=PHONE)
    with pytest.raises(IntegrityError) as caught:
        _clash()
    text = str(caught.value) + str(caught.value.orig)
    _clean(text)
    assert "participant" in text  # still useful: the table (and on PostgreSQL the constraint)


def test_a_failed_update_stores_no_name_or_phone(db, bot_client, noon, monkeypatch, caplog):
    factories.make_participant(db, phone=PHONE)

    def by_telegram(session, telegram_id):
        session.add(Participant(telegram_id=telegram_id, name=NAME, surname=SURNAME, phone=PHONE))
        session.flush()  # IntegrityError: the phone belongs to someone else

    monkeypatch.setattr(participants, "by_telegram", by_telegram)
    update = text_update(424243, "/start")
    update["message"]["from"]["first_name"] = NAME
    with caplog.at_level(logging.DEBUG):
        response = post_update(bot_client, update)
    assert response.status_code == 200 and response.json()["result"] == "failed"
    db.expire_all()
    row = db.get(TelegramUpdate, update["update_id"])
    assert row.status == UpdateStatus.failed and "IntegrityError" in row.error
    _clean(row.error)
    _clean(caplog.text)
    assert "hide_parameters" in row.error or "[SQL parameters hidden" in row.error


def test_a_failed_send_stores_no_name_or_phone(db, bot_settings, fake_tg, monkeypatch, caplog):
    from app import outbox
    from app.bot.sender import Sender

    p = factories.make_participant(db, phone=PHONE)
    outbox.enqueue(db, p, "skip_cancelled", "privacy-1")
    db.commit()

    def send(self, row):
        _clash()  # a bug in sending that hits the database

    monkeypatch.setattr(Sender, "_send", send)
    with caplog.at_level(logging.DEBUG):
        deliver()
    db.expire_all()
    row = db.exec(select(OutgoingMessage).where(OutgoingMessage.dedupe_key == "privacy-1")).one()
    assert row.status == OutboxStatus.failed and "IntegrityError" in (row.last_error or "")
    _clean(row.last_error or "")
    _clean(caplog.text)
    assert "outbox row" in caplog.text  # the failure was logged, without the values


def test_postgres_detail_lines_are_dropped(db, is_pg):
    if not is_pg:
        pytest.skip("PostgreSQL adds DETAIL lines with the row's values; SQLite does not")
    factories.make_participant(db, phone=PHONE)
    with pytest.raises(sa.exc.DBAPIError) as caught, session_scope() as session:
        session.execute(sa.text("SELECT CAST(:v AS bigint)"), {"v": NAME})
    assert "InvalidTextRepresentation" in str(caught.value)
    _clean(str(caught.value) + str(caught.value.orig))
    with pytest.raises(IntegrityError) as caught:
        _clash()
    text = str(caught.value)
    assert "DETAIL" not in text and "uq_participant_phone" in text
