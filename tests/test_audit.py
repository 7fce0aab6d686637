"""The audit log page: who did what about whom, when, and what changed — in words; filters;
keyset pages, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

from app import audit, audit_log, clock
from app.models import ReportStatus
from tests import factories


def test_audit_log_filters_and_pages(admin_client, db, admin, expert):
    shift = factories.make_shift(db)
    member = factories.make_member(
        db, shift, factories.make_participant(db, name="Маша", surname="Иванова")
    )
    report = factories.make_report(db, member, 3, ReportStatus.declined, photos=1)
    task = factories.make_task(db, "Почистить зубы")
    clock.set_now(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    audit.record(
        db,
        expert,
        "report.decline",
        "report",
        report.id,
        {"status": "reviewing"},
        {"status": "declined", "decline_reason": "Фото размыто"},
    )
    clock.set_now(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    for n in range(55):
        audit.record(
            db,
            admin,
            "task.update",
            "task",
            task.id,
            {"title": f"Было {n}"},
            {"title": f"Стало {n}"},
        )
    # Written later but it happened earlier: the log goes by when things happened.
    clock.set_now(datetime(2026, 2, 20, 10, 0, tzinfo=UTC))
    audit.record(
        db, admin, "shift.start", "shift", shift.id, {"status": "preparing"}, {"status": "started"}
    )
    db.commit()
    clock.set_now(None)
    page = admin_client.get("/audit")
    assert page.status_code == 200
    assert page.text.count("изменил(а) задание") == 50 and "Раньше →" in page.text
    assert "«Было 54»" in page.text and "«Стало 54»" in page.text
    assert f'href="/tasks/{task.id}">«Почистить зубы»' in page.text
    assert "task.update" not in page.text and "{" not in page.text.split("<main")[1]
    second = admin_client.get(
        "/audit", params={"after": page.text.split("after=")[1].split('"')[0]}
    )
    text = second.text
    assert text.count("изменил(а) задание") == 5
    assert "отклонил(а) фото: Фото размыто" in text
    assert f'href="/reports/{report.id}">Маша И., день 3' in text
    assert text.index("отклонил(а) фото") < text.index("запустил(а) смену")  # newest first
    assert "готовится</span> → идёт" in text
    by_actor = admin_client.get("/audit", params={"actor": expert.id})
    assert "отклонил(а) фото" in by_actor.text and "изменил(а) задание" not in by_actor.text
    by_type = admin_client.get("/audit", params={"type": "report"})
    assert "отклонил(а) фото" in by_type.text and "изменил(а) задание" not in by_type.text
    by_day = admin_client.get("/audit", params={"date": "01.03.2026"})
    assert "отклонил(а) фото" in by_day.text and "изменил(а) задание" not in by_day.text
    assert 'value="01.03.2026"' in by_day.text  # the filter is kept
    iso = admin_client.get("/audit", params={"date": "2026-03-01"})
    assert "отклонил(а) фото" in iso.text
    junk = admin_client.get(
        "/audit", params={"date": "вчера", "actor": "x", "after": "y", "type": "zzz"}
    )
    assert junk.status_code == 200 and "ДД.ММ.ГГГГ, например" in junk.text


def test_admin_changes_land_in_the_audit_log(admin_client, db):
    from tests.conftest import csrf_token

    task = factories.make_task(db, "Почистить зубы")
    token = csrf_token(admin_client, "/tasks")
    admin_client.post(f"/tasks/{task.id}/archive", data={"archived": "1", "csrf_token": token})
    page = admin_client.get("/audit", params={"type": "task"})
    assert "отправил(а) задание в архив" in page.text and "в архиве:" in page.text
    assert "Анна Кураторова" in page.text  # the actor by name


def test_every_recorded_action_has_words():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent / "app"
    found = set()
    for path in root.rglob("*.py"):
        found |= set(
            re.findall(
                r'"((?:report|application|shift|plan|task|participant|member|staff)\.[a-z_]+)"',
                path.read_text(),
            )
        )
    found |= {
        f"{noun}.{verb}"
        for noun in ("report", "application")
        for verb in ("approve", "decline", "undo")
    }
    missing = sorted(a for a in found if a not in audit_log.ACTIONS and not a.endswith(".id"))
    assert not missing, f"audit actions without words in app.audit_log.ACTIONS: {missing}"


def test_experts_cannot_read_the_audit_log(expert_client):
    assert expert_client.get("/audit").status_code == 403
