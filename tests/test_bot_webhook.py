"""The webhook transport: secret, dedupe by update_id, bad bodies, handler errors, database outage."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlmodel import select

from app.db import get_engine, make_engine
from app.models import (
    OutgoingMessage,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    TelegramUpdate,
    UpdateStatus,
)
from tests import factories
from tests.bot_support import (
    callback_update,
    message_update,
    next_update_id,
    photo_update,
    post_update,
    text_update,
    user,
)


def _count(db, model) -> int:
    db.expire_all()
    return len(db.exec(select(model)).all())


def test_wrong_or_missing_secret_is_403_and_nothing_recorded(db, bot_client):
    update = text_update(5001, "/start")
    assert post_update(bot_client, update, secret="wrong").status_code == 403
    response = bot_client.post("/telegram/webhook", json=update)
    assert response.status_code == 403
    assert _count(db, TelegramUpdate) == 0 and _count(db, OutgoingMessage) == 0


def test_bot_off_means_no_webhook(db, client):
    response = client.post("/telegram/webhook", json=text_update(5002, "/start"))
    assert response.status_code == 404
    assert _count(db, TelegramUpdate) == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1,2,3]", b'{"update_id": "7"}', b'{"update_id": -1}', b"\xff\xfe", b""],
)
def test_malformed_bodies_are_4xx(db, bot_client, body):
    from app.settings import get_settings

    response = bot_client.post(
        "/telegram/webhook",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": get_settings().telegram_webhook_secret},
    )
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert _count(db, TelegramUpdate) == 0


def test_huge_body_is_413(db, bot_client):
    update = text_update(5003, "a" * (2 * 1024 * 1024))
    assert post_update(bot_client, update).status_code == 413
    assert _count(db, TelegramUpdate) == 0


def test_redelivered_update_is_acknowledged_not_processed_twice(db, bot_client, noon):
    update = text_update(5004, "/start")
    first = post_update(bot_client, update)
    second = post_update(bot_client, update)
    assert first.json()["result"] == "processed"
    assert second.status_code == 200 and second.json()["result"] == "duplicate"
    assert _count(db, OutgoingMessage) == 1
    row = db.get(TelegramUpdate, update["update_id"])
    assert row.status == UpdateStatus.processed and row.processed_at is not None
    assert row.payload == {}  # only the id is kept once handled: no child's data at rest


def test_unknown_update_type_is_a_quiet_200(db, bot_client):
    update = {"update_id": next_update_id(), "poll": {"id": "1", "question": "?", "options": []}}
    response = post_update(bot_client, update)
    assert response.status_code == 200
    assert _count(db, OutgoingMessage) == 0


def test_handler_error_is_recorded_and_replayed(db, bot_client, fake_tg, noon, monkeypatch):
    from app import photos
    from app.bot import handlers, updates

    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1)
    uid = db.get(Participant, member.participant_id).telegram_id
    real = photos.receive

    def broken(*args, **kwargs):
        real(*args, **kwargs)  # writes a photo and files… then a bug strikes
        raise RuntimeError("a bug")

    monkeypatch.setattr(photos, "receive", broken)
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=61))
    response = post_update(bot_client, update)
    assert response.status_code == 200 and response.json()["result"] == "failed"
    db.expire_all()
    row = db.get(TelegramUpdate, update["update_id"])
    assert row.status == UpdateStatus.failed and "RuntimeError" in row.error
    # nothing half-written: no photo, the report untouched, no answer queued
    assert _count(db, ReportPhoto) == 0 and _count(db, OutgoingMessage) == 0
    assert db.get(Report, report.id).status == ReportStatus.waiting
    # a redelivery is acknowledged, not retried in a storm
    assert post_update(bot_client, update).json()["result"] == "duplicate"

    monkeypatch.setattr(photos, "receive", real)
    assert updates.failed_updates() == [(update["update_id"], update)]
    assert updates.process_update(handlers.dispatcher(), update, replay=True) == "processed"
    db.expire_all()
    assert db.get(Report, report.id).status == ReportStatus.reviewing
    assert db.get(TelegramUpdate, update["update_id"]).status == UpdateStatus.processed
    assert updates.process_update(handlers.dispatcher(), update, replay=True) == "duplicate"


def test_database_outage_is_503_then_redelivery_succeeds_once(db, bot_client, fake_tg, noon):
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1)
    uid = db.get(Participant, member.participant_id).telegram_id
    update = photo_update(fake_tg, uid, factories.jpeg_bytes(seed=62))
    good = get_engine()
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_pre_ping=False)
    import app.db

    app.db._engine = dead  # the database goes away (set_engine would dispose the good one)
    try:
        response = post_update(bot_client, update)
    finally:
        app.db._engine = good
        dead.dispose()
    assert response.status_code == 503
    assert _count(db, TelegramUpdate) == 0
    # Telegram redelivers
    assert post_update(bot_client, update).json()["result"] == "processed"
    assert post_update(bot_client, update).json()["result"] == "duplicate"
    db.expire_all()
    assert db.get(Report, report.id).photo_count == 1
    assert _count(db, ReportPhoto) == 1


# --- odd updates: never a 500, nothing half-written -------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.integers(-(2**80), 2**80),  # mostly beyond a BIGINT
    st.sampled_from([2**63, -(2**63) - 1, 2**70, 1e308, -1e308]),
    st.text(max_size=20),
    st.floats(),
)
odd_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
message_keys = st.sampled_from(
    [
        "message_id",
        "date",
        "chat",
        "from",
        "text",
        "photo",
        "document",
        "sticker",
        "media_group_id",
        "entities",
        "voice",
        "caption",
    ]
)
odd_messages = st.dictionaries(message_keys, odd_values, max_size=6)
update_kinds = st.sampled_from(
    [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
        "channel_post",
        "inline_query",
        "something_new",
    ]
)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_hundreds_of_odd_updates_never_500(db, bot_client, noon):
    shift = factories.make_shift(db)
    factories.make_member(db, shift)
    before = {m: _count(db, m) for m in (Participant, Report, ReportPhoto)}
    seen: set[int] = set()

    @given(kind=update_kinds, body=st.one_of(odd_messages, odd_values), uid=st.integers(0, 2**31))
    @hyp_settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same 300 odd updates on every run: CI stays repeatable
    )
    def check(kind, body, uid):
        update_id = next_update_id()
        response = post_update(bot_client, {"update_id": update_id, kind: body})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            seen.add(update_id)

    check()
    db.expire_all()
    statuses = db.exec(
        sa.select(TelegramUpdate.status, sa.func.count()).group_by(TelegramUpdate.status)
    ).all()
    assert sum(n for _, n in statuses) == len(seen)
    assert all(status != UpdateStatus.received for status, _ in statuses)  # none half-done
    assert {m: _count(db, m) for m in before} == before


# --- numbers out of range or of the wrong type where an id goes: acknowledged, ignored ---------------

INT64 = 2**63
out_of_range = st.one_of(
    st.integers(INT64, 2**80),
    st.integers(-(2**80), -INT64 - 1),
    st.sampled_from([INT64, -INT64 - 1, 2**70]),
)
wrong_type = st.sampled_from([1e308, -1e308, 1.5, 7.0, "abc", "12", True, False, [], {}, [1]])
# Numbers the templates carry that the handlers never read (an entity's offset): only the range
# is checked there.
UNCHECKED = ("entities",)


def _templates(uid: int) -> list[dict]:
    sizes = [
        {"file_id": "s", "file_unique_id": "us", "width": 90, "height": 67, "file_size": 900},
        {"file_id": "b", "file_unique_id": "ub", "width": 1280, "height": 960, "file_size": 9000},
    ]
    document = {"file_id": "d", "file_unique_id": "ud", "mime_type": "image/jpeg", "file_size": 5}
    member = {"user": {"id": 42, "is_bot": True, "first_name": "бот"}}
    return [
        text_update(uid, "/start"),
        message_update(uid, photo=sizes),
        message_update(uid, document=document),
        message_update(uid, sender_chat={"id": -100123, "type": "channel"}, text="привет"),
        callback_update(uid, "skip:yes:1"),
        {
            "update_id": 0,
            "my_chat_member": {
                "chat": {"id": uid, "type": "private"},
                "from": user(uid),
                "date": 1700000000,
                "old_chat_member": {"status": "member", **member},
                "new_chat_member": {"status": "kicked", **member},
            },
        },
    ]


def _number_paths(node, path=()) -> list[tuple]:
    """Every place a JSON integer sits in `node` (the update_id aside)."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return [path] if isinstance(node, int) and not isinstance(node, bool) else []
    return [p for k, v in items if path or k != "update_id" for p in _number_paths(v, (*path, k))]


def _put(update: dict, path: tuple, value) -> None:
    node = update
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _assert_ignored(db, response, update_id: int) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "ignored"
    db.expire_all()
    row = db.get(TelegramUpdate, update_id)
    assert row.status == UpdateStatus.processed and row.payload == {}
    assert row.error.startswith("ignored: ")
    replies = db.exec(
        select(OutgoingMessage).where(OutgoingMessage.dedupe_key == f"reply:{update_id}")
    ).all()
    assert replies == []


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_odd_numbers_wherever_a_number_goes_are_ignored_never_5xx(db, bot_client, noon):
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    uid = db.get(Participant, member.participant_id).telegram_id
    before = {m: _count(db, m) for m in (Participant, Report, ReportPhoto)}
    blocked_before = db.get(Participant, member.participant_id).is_bot_blocked

    @given(
        which=st.integers(0, 5), pick=st.integers(0, 10**6), odd=st.one_of(out_of_range, wrong_type)
    )
    @hyp_settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(which, pick, odd):
        update = _templates(uid)[which]
        update["update_id"] = next_update_id()
        paths = _number_paths(update)
        path = paths[pick % len(paths)]
        _put(update, path, odd)
        response = post_update(bot_client, update)
        assert response.status_code == 200, (path, odd, response.text)
        is_big = isinstance(odd, int) and not isinstance(odd, bool)
        if is_big or not any(step in UNCHECKED for step in path):
            _assert_ignored(db, response, update["update_id"])

    check()
    assert {m: _count(db, m) for m in before} == before
    db.expire_all()
    assert db.get(Participant, member.participant_id).is_bot_blocked == blocked_before


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("message", "chat", "id"), 2**70),
        (("message", "chat", "id"), 1e308),
        (("message", "from", "id"), 2**63),
        (("message", "from", "id"), "100500"),
        (("message", "from", "id"), True),
        (("message", "message_id"), -(2**63) - 1),
        (("message", "date"), 1e308),
        (("message", "chat"), "not an object"),
        (("message",), [1, 2]),
        (("message", "entities", 0, "offset"), 2**64),
    ],
)
def test_an_odd_number_in_a_message_is_acknowledged_and_ignored(db, bot_client, noon, path, value):
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    uid = db.get(Participant, member.participant_id).telegram_id
    update = text_update(uid, "/start")
    _put(update, path, value)
    response = post_update(bot_client, update)
    _assert_ignored(db, response, update["update_id"])
    assert post_update(bot_client, update).json()["result"] == "duplicate"  # and never again
    assert _count(db, OutgoingMessage) == 0


@pytest.mark.parametrize(
    ("data", "ignored"),
    [
        ("skip:yes:2147483648", True),  # report ids are 32-bit
        ("skip:yes:99999999999999999999999999", True),
        ("skip:no:-2147483649", True),
        ("skip:yes:2147483647", False),
        ("skip:yes:abc", False),  # not a number: the handler answers as for a gone report
    ],
)
def test_callback_data_numbers_are_checked(db, bot_client, fake_tg, noon, data, ignored):
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    uid = db.get(Participant, member.participant_id).telegram_id
    update = callback_update(uid, data)
    response = post_update(bot_client, update)
    if ignored:
        _assert_ignored(db, response, update["update_id"])
        assert fake_tg.sent("answerCallbackQuery") == []  # no handler ran
    else:
        assert response.json()["result"] == "processed"


def test_polling_ignores_an_odd_update_and_moves_on(db, bot_settings, fake_tg, noon):
    from app.bot import polling
    from app.settings import get_settings

    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    uid = db.get(Participant, member.participant_id).telegram_id
    odd = text_update(uid, "/start")
    odd["message"]["chat"]["id"] = 2**70
    good = text_update(uid, "/start")
    fake_tg.updates.extend([odd, good])
    assert polling.poll_once(get_settings(), 0, timeout=0) == good["update_id"] + 1
    db.expire_all()
    row = db.get(TelegramUpdate, odd["update_id"])
    assert row.status == UpdateStatus.processed and row.error.startswith("ignored: ")
    assert db.get(TelegramUpdate, good["update_id"]).error is None
    assert [m.dedupe_key for m in db.exec(select(OutgoingMessage)).all()] == [
        f"reply:{good['update_id']}"
    ]


def test_absurdly_nested_json_is_a_400(db, bot_client):
    from app.settings import get_settings

    body = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = bot_client.post(
        "/telegram/webhook",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": get_settings().telegram_webhook_secret},
    )
    assert response.status_code == 400


def test_replaying_a_stored_odd_update_closes_it(db, bot_settings, noon):
    from app.bot import handlers, updates

    update = text_update(5006, "/start")
    update["message"]["from"]["id"] = 2**70
    db.add(
        TelegramUpdate(update_id=update["update_id"], payload=update, status=UpdateStatus.failed)
    )
    db.commit()
    assert updates.process_update(handlers.dispatcher(), update, replay=True) == "ignored"
    db.expire_all()
    row = db.get(TelegramUpdate, update["update_id"])
    assert row.status == UpdateStatus.processed and row.payload == {}
    assert updates.failed_updates() == []
