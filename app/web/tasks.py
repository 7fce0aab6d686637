"""Task catalogue screens (administrators)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import media, tasks
from app.errors import FormErrors
from app.models import Staff, Task
from app.web.common import admin_view, form, get_or_404, is_htmx, render


def _task(request: Request, session: Session) -> Task:
    return get_or_404(session, Task, request.path_params.get("task_id"))


def _image(data: Any) -> bytes | None:
    upload = data.get("image")
    if isinstance(upload, UploadFile):
        body = upload.file.read(tasks.MAX_IMAGE_BYTES + 1)
        return body or None
    return None


def _view(row: tuple[int, str, str | None, bool]) -> dict[str, Any]:
    task_id, title, image_key, archived = row
    return {
        "id": task_id,
        "title": title,
        "thumb": tasks.thumb_key(image_key),
        "archived": archived,
    }


@admin_view
def task_list(request: Request, session: Session, actor: Staff) -> Response:
    rows = [_view(r) for r in tasks.catalogue(session)]
    return render(
        request, "tasks/list.html", {"rows": rows, "notice": request.query_params.get("done")}
    )


@admin_view
def task_new(request: Request, session: Session, actor: Staff) -> Response:
    values = {"title": ""}
    if request.method == "POST":
        data = form(request)
        values = {"title": str(data.get("title", ""))[:300]}
        try:
            tasks.create_task(session, actor, values["title"], _image(data))
        except FormErrors as exc:
            return render(
                request,
                "tasks/form.html",
                {"task": None, "values": values, "errors": exc.errors},
                400,
            )
        return RedirectResponse("/tasks?done=created", 303)
    return render(request, "tasks/form.html", {"task": None, "values": values, "errors": {}})


@admin_view
def task_edit(request: Request, session: Session, actor: Staff) -> Response:
    task = _task(request, session)
    values = {"title": task.title}
    if request.method == "POST":
        data = form(request)
        values = {"title": str(data.get("title", ""))[:300]}
        try:
            tasks.update_task(session, actor, task, values["title"], _image(data))
        except FormErrors as exc:
            return render(
                request,
                "tasks/form.html",
                {
                    "task": task,
                    "values": values,
                    "errors": exc.errors,
                    "thumb": tasks.thumb_key(task.image_key),
                },
                400,
            )
        return RedirectResponse("/tasks?done=saved", 303)
    return render(
        request,
        "tasks/form.html",
        {"task": task, "values": values, "errors": {}, "thumb": tasks.thumb_key(task.image_key)},
    )


@admin_view
def task_archive(request: Request, session: Session, actor: Staff) -> Response:
    task = _task(request, session)
    archived = form(request).get("archived") == "1"
    tasks.set_archived(session, actor, task, archived)
    if is_htmx(request):
        return render(
            request,
            "tasks/_task.html",
            {"task": _view((task.id, task.title, task.image_key, task.is_archived))},  # type: ignore[arg-type]
        )
    return RedirectResponse("/tasks", 303)


@admin_view
def task_delete(request: Request, session: Session, actor: Staff) -> Response:
    task = _task(request, session)
    try:
        keys = tasks.delete_task(session, actor, task)
    except FormErrors as exc:
        rows = [_view(r) for r in tasks.catalogue(session)]
        return render(request, "tasks/list.html", {"rows": rows, "error": exc.errors[""]}, 409)
    # The picture is queued for deletion with the row; removed once the transaction has committed
    # (the response's background task runs later), or by the worker if this process stops first.
    return RedirectResponse(
        "/tasks?done=deleted", 303, background=BackgroundTask(media.purge, keys)
    )
