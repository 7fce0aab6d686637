"""The task catalogue (product.md §2, §4.5): titles, pictures, archive. Never deleted while used."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app import audit, images, media
from app.errors import FormErrors, NotAnImage
from app.models import Report, ShiftDay, Staff, Task

TITLE_MIN, TITLE_MAX = 3, 150
MAX_IMAGE_BYTES = 10 * 1024 * 1024


def thumb_key(image_key: str | None) -> str | None:
    return images.thumb_key_of(image_key) if image_key else None


def _check_title(session: Session, title: str, task_id: int | None) -> str | None:
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        return f"Название задания — от {TITLE_MIN} до {TITLE_MAX} символов."
    # Compared in Python: SQLite's lower() knows only ASCII, and the catalogue is small.
    others = session.exec(select(Task.title).where(col(Task.id) != (task_id or 0))).all()
    if title.casefold() in {t.casefold() for t in others}:
        return "Задание с таким названием уже есть."
    return None


def _store_picture(image: bytes | None, errors: dict[str, str]) -> images.StoredImage | None:
    if not image:
        return None
    if len(image) > MAX_IMAGE_BYTES:
        errors["image"] = "Картинка слишком большая: не больше 10 МБ."
        return None
    try:
        return images.store_image(image, folder="tasks", reencode=True)
    except NotAnImage:
        errors["image"] = "Это не картинка. Загрузите фото в формате JPEG, PNG или WebP."
        return None


def create_task(session: Session, actor: Staff | None, title: str, image: bytes | None) -> Task:
    title = " ".join(title.split())
    errors: dict[str, str] = {}
    problem = _check_title(session, title, None)
    if problem:
        errors["title"] = problem
        raise FormErrors(errors)  # don't store a picture for a task that will not exist
    stored = _store_picture(image, errors)
    if errors:
        raise FormErrors(errors)
    task = Task(title=title, image_key=stored.key if stored else None)
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor,
        "task.create",
        "task",
        task.id,
        None,
        {"title": title, "image_key": task.image_key},
    )
    return task


def update_task(
    session: Session, actor: Staff | None, task: Task, title: str, image: bytes | None
) -> Task:
    """Rename and/or replace the picture; without a new picture the old one stays."""
    title = " ".join(title.split())
    errors: dict[str, str] = {}
    problem = _check_title(session, title, task.id)
    if problem:
        errors["title"] = problem
        raise FormErrors(errors)
    stored = _store_picture(image, errors)
    if errors:
        raise FormErrors(errors)
    before = {"title": task.title, "image_key": task.image_key}
    task.title = title
    if stored:
        media.delete_later(session, [task.image_key, thumb_key(task.image_key)])
        task.image_key = stored.key
        task.telegram_file_id = None  # the bot must upload the new picture once
    session.add(task)
    after = {"title": task.title, "image_key": task.image_key}
    if after != before:
        audit.record(session, actor, "task.update", "task", task.id, before, after)
    return task


def set_archived(session: Session, actor: Staff | None, task: Task, archived: bool) -> Task:
    if task.is_archived != archived:
        before = {"is_archived": task.is_archived}
        task.is_archived = archived
        session.add(task)
        audit.record(
            session,
            actor,
            "task.archive" if archived else "task.unarchive",
            "task",
            task.id,
            before,
            {"is_archived": archived},
        )
    return task


def is_referenced(session: Session, task_id: int) -> bool:
    in_plan = session.exec(select(ShiftDay.id).where(ShiftDay.task_id == task_id).limit(1)).first()
    in_reports = session.exec(select(Report.id).where(Report.task_id == task_id).limit(1)).first()
    return in_plan is not None or in_reports is not None


def delete_task(session: Session, actor: Staff | None, task: Task) -> list[str]:
    """Delete a task no plan or report uses; its picture is queued for deletion (app.media).
    Returns the picture's keys, to remove right after the commit."""
    if is_referenced(session, task.id):  # type: ignore[arg-type]
        raise FormErrors(
            {
                "": "Это задание уже есть в плане смены или в отчётах: его можно только убрать в архив."
            }
        )
    keys = media.delete_later(session, [task.image_key, thumb_key(task.image_key)])
    audit.record(session, actor, "task.delete", "task", task.id, {"title": task.title}, None)
    session.delete(task)
    return keys


def catalogue(
    session: Session, archived: bool | None = None
) -> list[tuple[int, str, str | None, bool]]:
    query = select(Task.id, Task.title, Task.image_key, Task.is_archived).order_by(
        col(Task.is_archived), col(Task.title)
    )
    if archived is not None:
        query = query.where(col(Task.is_archived).is_(archived))
    return list(session.exec(query).all())  # type: ignore[arg-type]
