"""Failed Telegram updates (administrators): the ones a bug stopped, with a retry button.

Faults of the database or the storage never land here (the update is delivered again, see
app.bot.updates); what does is an error that would strike again until the code is fixed. The list
shows the update id, when it came and the error's class — never the payload, which holds a child's
name and messages.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.bot import handlers, updates
from app.models import Staff, TelegramUpdate
from app.settings import get_settings
from app.web.common import admin_view, flash, get_or_404, pop_flash, render


@admin_view
def update_list(request: Request, session: Session, actor: Staff) -> Response:
    failed = updates.failed_list(session)
    return render(
        request,
        "updates/list.html",
        {
            "failed": failed,
            "bot_enabled": get_settings().bot_enabled,
            "notices": pop_flash(request),
        },
    )


RESULTS = {
    "processed": "Обновление {id} обработано.",
    "failed": "Обновление {id} снова не обработано: ошибка в программе, нужен разработчик.",
    "duplicate": "Обновление {id} уже обработано.",
}


@admin_view
def update_retry(request: Request, session: Session, actor: Staff) -> Response:
    row = get_or_404(session, TelegramUpdate, request.path_params["update_id"])
    update_id = row.update_id
    session.commit()  # end this request's transaction: the retry runs in its own
    if not get_settings().bot_enabled:
        flash(request, "Бот выключен (не задан BOT_TOKEN): повторить нельзя.")
        return RedirectResponse("/updates", 303)
    try:
        result = updates.retry(handlers.dispatcher(), update_id)
    except Exception as exc:
        if not updates.is_transient(exc):
            raise
        flash(request, "База данных или хранилище фото недоступны. Попробуйте через минуту.")
        return RedirectResponse("/updates", 303)
    flash(request, RESULTS[result].format(id=update_id))
    return RedirectResponse("/updates", 303)
