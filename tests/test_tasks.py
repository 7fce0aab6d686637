"""Task catalogue: titles, pictures (real images only, re-encoded, generated names), archive."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import select

from app import storage
from app.models import AuditEvent, Task
from tests import factories
from tests.conftest import csrf_token


def _post(client, path, title, image=None, name="photo.png"):
    token = csrf_token(client, "/tasks/new")
    files = {"image": (name, image, "image/png")} if image is not None else None
    return client.post(
        path, data={"title": title, "csrf_token": token}, files=files, follow_redirects=False
    )


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 200, 30, 255)).save(out, "PNG")
    return out.getvalue()


def test_create_with_a_picture_stores_a_reencoded_jpeg_under_a_generated_name(admin_client, db):
    response = _post(
        admin_client, "/tasks/new", "Почистить зубы", _png(), name="../../evil name.png"
    )
    assert response.status_code == 303
    task = db.exec(select(Task)).one()
    assert task.title == "Почистить зубы"
    assert task.image_key.startswith("tasks/") and task.image_key.endswith(".jpg")
    assert "evil" not in task.image_key
    with Image.open(io.BytesIO(storage.get(task.image_key))) as stored:
        assert stored.format == "JPEG"
    listing = admin_client.get("/tasks")
    assert (
        "Почистить зубы" in listing.text
        and task.image_key.removesuffix(".jpg") + "_t.jpg" in listing.text
    )
    assert db.exec(select(AuditEvent.action)).all() == ["task.create"]


def test_bad_titles_and_files_are_refused_with_nothing_written(admin_client, db):
    factories.make_task(db, "Заправить кровать")
    for title, text in [
        ("аб", "от 3 до 150"),
        ("я" * 151, "от 3 до 150"),
        ("заправить  КРОВАТЬ", "уже есть"),
    ]:
        response = _post(admin_client, "/tasks/new", title)
        assert response.status_code == 400 and text in response.text, title
    response = _post(admin_client, "/tasks/new", "Помыть посуду", b"GIF89a not really an image")
    assert response.status_code == 400 and "Это не картинка" in response.text
    assert 'value="Помыть посуду"' in response.text
    big = _post(admin_client, "/tasks/new", "Помыть посуду", b"\xff" * (10 * 1024 * 1024 + 1))
    assert big.status_code == 400 and "не больше 10 МБ" in big.text
    assert len(db.exec(select(Task)).all()) == 1
    assert not list((storage.backend().root / "tasks").glob("**/*")) or all(
        p.is_dir() or p.stat().st_size for p in (storage.backend().root / "tasks").glob("**/*")
    )


def test_edit_keeps_the_old_picture_unless_a_new_one_comes(admin_client, db):
    _post(admin_client, "/tasks/new", "Полить цветы", _png())
    task = db.exec(select(Task)).one()
    old_key = task.image_key
    assert _post(admin_client, f"/tasks/{task.id}", "Полить цветок").status_code == 303
    db.expire_all()
    task = db.get(Task, task.id)
    assert (task.title, task.image_key) == ("Полить цветок", old_key)
    task.telegram_file_id = "abc"
    db.add(task)
    db.commit()
    assert (
        _post(
            admin_client, f"/tasks/{task.id}", "Полить цветок", factories.jpeg_bytes(seed=3)
        ).status_code
        == 303
    )
    db.expire_all()
    task = db.get(Task, task.id)
    assert task.image_key != old_key and task.telegram_file_id is None
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "task.update")).all()[0]
    assert event.before["title"] == "Полить цветы" and event.after["title"] == "Полить цветок"


def test_archive_toggle_inline(admin_client, db):
    task = factories.make_task(db, "Сложить одежду")
    token = csrf_token(admin_client, "/tasks")
    response = admin_client.post(
        f"/tasks/{task.id}/archive",
        data={"archived": "1"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 200 and "Вернуть из архива" in response.text
    assert response.text.lstrip().startswith(f'<article class="task archived" id="task-{task.id}">')
    db.expire_all()
    assert db.get(Task, task.id).is_archived
    admin_client.post(f"/tasks/{task.id}/archive", data={"archived": "0", "csrf_token": token})
    db.expire_all()
    assert not db.get(Task, task.id).is_archived


def test_a_task_in_a_plan_is_never_deleted(admin_client, db):
    used = factories.make_task(db, "Используемое")
    factories.make_shift(db, days=3, tasks=[used])
    free = factories.make_task(db, "Свободное")
    used_id, free_id = used.id, free.id
    token = csrf_token(admin_client, "/tasks")
    refused = admin_client.post(f"/tasks/{used.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and "только убрать в архив" in refused.text
    assert (
        admin_client.post(f"/tasks/{free.id}/delete", data={"csrf_token": token}).status_code == 200
    )
    db.expire_all()
    assert db.get(Task, used_id) is not None and db.get(Task, free_id) is None
    assert admin_client.get("/tasks/999999").status_code == 404
