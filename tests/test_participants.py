"""Participants and members: search, filters, pages, test flag, exclusion, export and deletion."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from sqlmodel import select

from app import clock, consent, participants, storage
from app.models import (
    ApplicationStatus,
    AuditEvent,
    ConsentGiver,
    MediaDeletion,
    Member,
    MemberStatus,
    OutgoingMessage,
    Participant,
    Report,
    ReportPhoto,
    ReportStatus,
    TelegramUpdate,
    UpdateStatus,
)
from tests import factories
from tests.conftest import csrf_token


def test_search_by_name_surname_city_and_phone(expert_client, db):
    masha = factories.make_participant(db, name="Маша", surname="Иванова", city="Уфа")
    petya = factories.make_participant(
        db, name="Петя", surname="Сидоров", city="Ростов-на-Дону", phone="+7 912 555-44-33"
    )
    for q, found, missing in [
        ("маша", masha, petya),
        ("Сидоров", petya, masha),
        ("ростов-на", petya, masha),
        ("9125554433", petya, masha),
        ("+7 912 555-44", petya, masha),
    ]:
        page = expert_client.get("/participants", params={"q": q})
        assert page.status_code == 200
        assert f'/participants/{found.id}"' in page.text, q
        assert f'/participants/{missing.id}"' not in page.text, q


def test_filters_status_shift_blocked_test(db):
    shift = factories.make_shift(db, days=5)
    other = factories.make_shift(db, days=5, status=factories.ShiftStatus.finished)
    pending = factories.make_participant(db)
    factories.make_application(db, pending, shift)
    member = factories.make_member(db, shift)
    excluded = factories.make_member(db, other, status=MemberStatus.excluded)
    blocked = factories.make_participant(db, is_bot_blocked=True, is_test=True)

    def ids(**kw):
        rows, _ = participants.search(db, participants.Filters(**kw))
        return {r.id for r in rows}

    assert ids(status="pending") == {pending.id}
    assert ids(status="member") == {member.participant_id}
    assert ids(status="excluded") == {excluded.participant_id}
    assert ids(status="member", shift_id=other.id) == set()
    assert ids(shift_id=shift.id) == {pending.id, member.participant_id}
    assert ids(blocked="yes") == {blocked.id}
    assert ids(test="yes") == {blocked.id}
    assert blocked.id not in ids(test="no")


def test_pages_of_fifty(expert_client, db):
    made = [factories.make_participant(db) for _ in range(52)]
    first = expert_client.get("/participants")
    assert first.text.count('<a href="/participants/') == 50 and "Дальше" in first.text
    second = expert_client.get("/participants", params={"page": 2})
    assert second.text.count('<a href="/participants/') == 2 and "Дальше" not in second.text
    assert f'/participants/{made[0].id}"' in second.text
    assert (
        expert_client.get("/participants", params={"page": "abc", "shift": "x"}).status_code == 200
    )


def test_participant_page_shows_consent_requests_and_memberships(expert_client, db):
    shift = factories.make_shift(db, days=5)
    p = factories.make_participant(db, name="Оля")
    consent.record(db, p, ConsentGiver.parent, clock.now() - timedelta(days=30), "2026-1")
    consent.record(db, p, ConsentGiver.participant, clock.now())
    db.commit()
    req = factories.make_application(db, p, shift, ApplicationStatus.declined)
    req.decline_reason = "Фото нечёткое"
    db.add(req)
    db.commit()
    member = factories.make_member(db, shift, p)
    factories.make_report(db, member, day=1, status=ReportStatus.approved)
    page = expert_client.get(f"/participants/{p.id}")
    assert "Фото нечёткое" in page.text
    # every consent: who gave it and a link to the very text they agreed to
    assert "родитель или законный представитель" in page.text and "сам участник" in page.text
    assert '<a href="/telegram/consent/2026-1">' in page.text
    assert f'<a href="/telegram/consent/{consent.CURRENT_VERSION}">' in page.text
    assert f"/members/{member.id}" in page.text and "1 ломбарьерчик" in page.text
    assert "Удалить данные" not in page.text  # experts only look
    assert expert_client.get("/participants/999999").status_code == 404


def test_member_calendar_balance_and_photos(expert_client, db):
    shift = factories.make_shift(db, days=4)
    member = factories.make_member(db, shift)
    factories.make_report(db, member, day=1, status=ReportStatus.approved)
    factories.make_report(db, member, day=2, status=ReportStatus.declined, photos=2)
    factories.make_report(db, member, day=3, status=ReportStatus.skipped)
    page = expert_client.get(f"/members/{member.id}")
    assert page.status_code == 200
    assert page.text.count('class="day approved"') == 1
    assert page.text.count('class="day declined"') == 1
    assert page.text.count('class="day none"') == 1
    assert page.text.count("/media/reports/") == 6  # three attempts: thumbnail and full size each
    assert expert_client.get("/members/424242").status_code == 404


def test_exclude_and_return_is_for_administrators_and_audited(client, db, admin, expert):
    from tests.conftest import login

    shift = factories.make_shift(db, days=4)
    member = factories.make_member(db, shift)
    login(client, expert)
    token = csrf_token(client, "/")
    assert (
        client.post(
            f"/members/{member.id}/status", data={"csrf_token": token, "excluded": "1"}
        ).status_code
        == 403
    )
    client.post("/logout", data={"csrf_token": token})
    login(client, admin)
    token = csrf_token(client, "/")
    client.post(f"/members/{member.id}/status", data={"csrf_token": token, "excluded": "1"})
    client.post(f"/members/{member.id}/status", data={"csrf_token": token, "excluded": "1"})
    db.expire_all()
    assert db.get(Member, member.id).status == MemberStatus.excluded
    client.post(f"/members/{member.id}/status", data={"csrf_token": token, "excluded": "0"})
    db.expire_all()
    assert db.get(Member, member.id).status == MemberStatus.active
    actions = db.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["member.exclude", "member.return"]


def test_mark_test_participant(admin_client, db):
    p = factories.make_participant(db)
    token = csrf_token(admin_client, f"/participants/{p.id}")
    admin_client.post(f"/participants/{p.id}/test", data={"csrf_token": token, "is_test": "1"})
    db.expire_all()
    assert db.get(Participant, p.id).is_test


def test_export_has_json_and_photos(store, admin_client, db):
    shift = factories.make_shift(db, days=4)
    p = factories.make_participant(db, name="Лена")
    consent.record(db, p, ConsentGiver.parent, clock.now())
    db.commit()
    member = factories.make_member(db, shift, p)
    report = factories.make_report(db, member, day=1, status=ReportStatus.declined, photos=2)
    response = admin_client.get(f"/participants/{p.id}/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "Лена" not in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    data = json.loads(archive.read("data.json"))
    assert data["participant"]["name"] == "Лена"
    assert [(c["given_by"], c["version"]) for c in data["consents"]] == [
        ("parent", consent.CURRENT_VERSION)
    ]
    photos = data["memberships"][0]["reports"][0]["photos"]
    stored = db.exec(
        select(ReportPhoto.storage_key)
        .where(ReportPhoto.report_id == report.id)
        .order_by(ReportPhoto.attempt)
    ).all()
    # the very bytes kept in the storage (the folder or the bucket)
    assert [archive.read(name) for name in photos] == [store.get(key) for key in stored]


def test_delete_needs_confirmation_and_keeps_anonymous_statistics(store, admin_client, db):
    shift = factories.make_shift(db, days=4)
    p = factories.make_participant(db, name="Вика", surname="Смирнова")
    member = factories.make_member(db, shift, p)
    report = factories.make_report(db, member, day=1, status=ReportStatus.approved)
    photo = db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).one()
    key, thumb = photo.storage_key, photo.thumb_key
    db.add(
        OutgoingMessage(
            dedupe_key="x",
            chat_id=p.telegram_id,
            participant_id=p.id,
            kind="t",
            payload={"text": "Вика"},
        )
    )
    db.commit()
    token = csrf_token(admin_client, f"/participants/{p.id}/delete")
    refused = admin_client.post(f"/participants/{p.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 400 and "навсегда" in refused.text
    assert storage.exists(key)
    done = admin_client.post(
        f"/participants/{p.id}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 200 and "Данные участника удалены" in done.text
    db.expire_all()
    gone = db.get(Participant, p.id)
    assert (
        gone.name,
        gone.surname,
        gone.phone,
        gone.telegram_id,
        gone.date_of_birth,
        gone.city,
    ) == (
        participants.DELETED_NAME,
        participants.DELETED_SURNAME,
        None,
        None,
        None,
        "",
    )
    assert gone.deleted_at is not None
    assert not store.exists(key) and not store.exists(thumb)
    assert list(store.keys()) == []  # nothing of theirs is left in the storage
    assert db.exec(select(MediaDeletion)).all() == []  # the queue is done
    assert db.get(Report, report.id).status == ReportStatus.approved  # statistics stay
    assert db.exec(select(OutgoingMessage)).all() == []
    assert "Вика" not in admin_client.get("/participants").text
    assert admin_client.get(f"/participants/{p.id}").status_code == 404


def test_phone_fragments_become_formatted_patterns():
    assert "912 345" in participants.phone_patterns("912345")
    assert participants.phone_patterns("89123456789") == ["7 912 345-67-89"]
    assert participants.phone_patterns("9123456789") == ["912 345-67-89"]
    assert "45-67" in participants.phone_patterns("4567")


def test_delete_removes_their_stored_updates_and_every_message_to_their_chat(db):
    p = factories.make_participant(db, name="Вика")
    other = factories.make_participant(db, name="Петя")
    tid = p.telegram_id

    def update(update_id, status, payload):
        db.add(TelegramUpdate(update_id=update_id, status=status, payload=payload))

    message = {"message_id": 1, "chat": {"id": tid}, "from": {"id": tid}, "text": "Я Вика"}
    update(1, UpdateStatus.failed, {"update_id": 1, "message": message})
    update(2, UpdateStatus.failed, {"update_id": 2, "callback_query": {"from": {"id": tid}}})
    update(
        3,
        UpdateStatus.failed,
        {"update_id": 3, "my_chat_member": {"new_chat_member": {"user": {"id": tid}}}},
    )
    update(
        4,
        UpdateStatus.failed,
        {"update_id": 4, "message": {"from": {"id": other.telegram_id}, "text": f"id {tid}"}},
    )
    update(5, UpdateStatus.processed, {})
    for n, (participant_id, chat_id) in enumerate(
        [(p.id, tid), (None, tid), (other.id, other.telegram_id)]
    ):
        db.add(
            OutgoingMessage(
                dedupe_key=f"m{n}",
                chat_id=chat_id,
                participant_id=participant_id,
                kind="t",
                payload={"text": "Вика"},
            )
        )
    db.commit()
    participants.delete_participant(db, None, p)
    db.commit()
    db.expire_all()
    assert sorted(db.exec(select(TelegramUpdate.update_id)).all()) == [4, 5]
    assert [m.chat_id for m in db.exec(select(OutgoingMessage)).all()] == [other.telegram_id]
