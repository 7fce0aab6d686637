"""The audit log page: who, when, what, before → after; filters; keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime

from app import audit, clock
from tests import factories


def test_audit_log_filters_and_pages(admin_client, db, admin, expert):
    clock.set_now(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    audit.record(
        db,
        expert,
        "report.approve",
        "report",
        5,
        {"status": "reviewing"},
        {"status": "approved"},
    )
    clock.set_now(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    for n in range(55):
        audit.record(
            db, admin, "task.update", "task", n, {"title": f"Было {n}"}, {"title": f"Стало {n}"}
        )
    db.commit()
    clock.set_now(None)
    page = admin_client.get("/audit")
    assert page.status_code == 200
    assert page.text.count("task.update") == 50 and "Дальше" in page.text
    assert "Стало 54" in page.text and "Было 54" in page.text
    second = admin_client.get(
        "/audit", params={"before": page.text.split("before=")[1].split('"')[0]}
    )
    assert second.text.count("task.update") == 5 and "report.approve" in second.text
    by_actor = admin_client.get("/audit", params={"actor": expert.id})
    assert "report.approve" in by_actor.text and "task.update" not in by_actor.text
    by_type = admin_client.get("/audit", params={"type": "report"})
    assert "report.approve" in by_type.text and "task.update" not in by_type.text
    by_day = admin_client.get("/audit", params={"date": "2026-03-01"})
    assert "report.approve" in by_day.text and "task.update" not in by_day.text
    junk = admin_client.get(
        "/audit", params={"date": "вчера", "actor": "x", "before": "y", "type": "zzz"}
    )
    assert junk.status_code == 200


def test_admin_changes_land_in_the_audit_log(admin_client, db):
    from tests.conftest import csrf_token

    task = factories.make_task(db, "Почистить зубы")
    token = csrf_token(admin_client, "/tasks")
    admin_client.post(f"/tasks/{task.id}/archive", data={"archived": "1", "csrf_token": token})
    page = admin_client.get("/audit", params={"type": "task"})
    assert "task.archive" in page.text and "is_archived" in page.text
    assert "Анна Кураторова" in page.text  # the actor by name


def test_experts_cannot_read_the_audit_log(expert_client):
    assert expert_client.get("/audit").status_code == 403
