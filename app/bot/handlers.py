"""Bot handlers: parse the update, call the domain, queue the answer in the outbox.

Every answer is an outbox row written in the update's transaction, keyed by the update id, so a
redelivered or replayed update never answers twice. Only private chats are served.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests
import telebot
from telebot import apihelper, types, util

from app import members, outbox, participants, photos, registration, reports, text
from app.bot.client import new_bot
from app.bot.context import Context, current
from app.errors import DownloadError
from app.models import Member, Participant, Task
from app.settings import Settings, get_settings

log = logging.getLogger("lomaya.bot")

SKIP_BUTTON = "Пропустить задание"
BALANCE_BUTTON = "Баланс ломбарьеров"
CATCH_ALL = sorted(set(util.content_type_media) | set(util.content_type_service))


def reply(
    ctx: Context,
    chat_id: int,
    participant: Participant | None,
    kind: str,
    *,
    context: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    key: str | None = None,
) -> bool:
    """Queue the answer to this update (one per update, ever)."""
    target = participant
    if target is None or target.telegram_id != chat_id:
        target = Participant(telegram_id=chat_id, name="", surname="")
    settings = get_settings()
    ctx_values = {"settings": settings, **(context or {})}
    return outbox.enqueue(
        ctx.session,
        target,
        kind,
        key or f"reply:{ctx.update_id}",
        context=ctx_values,
        payload=payload,
    )


def _participant(ctx: Context, user: types.User | None) -> Participant | None:
    if user is None:
        return None
    p = participants.by_telegram(ctx.session, user.id)
    if p is not None and p.is_bot_blocked:
        p.is_bot_blocked = False  # they wrote again
        ctx.session.add(p)
    return p


def _private(message: types.Message) -> bool:
    return message.chat is not None and message.chat.type == "private"


def on_start(message: types.Message) -> None:
    if not _private(message):
        return
    ctx = current()
    p = _participant(ctx, message.from_user)
    found = members.current(ctx.session, p.id) if p and p.id else None
    if found is not None:
        member, shift = found
        report = reports.todays_report(ctx.session, member)
        task = ctx.session.get(Task, report.task_id) if report else None
        assert member.id is not None
        reply(
            ctx,
            message.chat.id,
            p,
            "start_member",
            context={
                "shift": shift,
                "balance": text.lombaryers(members.balance(ctx.session, member.id)),
                "report": report,
                "task": task,
            },
            payload={"keyboard": "task"},
        )
        return
    open_shift = registration.open_shift(ctx.session)
    settings = get_settings()
    if open_shift is None:
        reply(ctx, message.chat.id, p, "start_closed")
        return
    payload = {"keyboard": "register"} if settings.application_url else {}
    reply(
        ctx,
        message.chat.id,
        p,
        "start_returning" if p else "start_welcome",
        context={"shift": open_shift},
        payload=payload,
    )


def _member_or_answer(ctx: Context, message: types.Message) -> tuple[Participant, Member] | None:
    p = _participant(ctx, message.from_user)
    found = members.current(ctx.session, p.id) if p and p.id else None
    if p is None or found is None:
        reply(ctx, message.chat.id, p, "not_member")
        return None
    return p, found[0]


def on_balance(message: types.Message) -> None:
    if not _private(message):
        return
    ctx = current()
    found = _member_or_answer(ctx, message)
    if found is None:
        return
    p, member = found
    assert member.id is not None
    n = members.balance(ctx.session, member.id)
    # The answer carries the inline «Мой прогресс» WebApp button (a reply-keyboard WebApp button
    # would get no initData); the reply keyboard this message came from stays on screen.
    keyboard = "progress" if get_settings().application_url else "task"
    reply(
        ctx,
        message.chat.id,
        p,
        "balance",
        context={"count": n, "balance": text.lombaryers(n)},
        payload={"keyboard": keyboard},
    )


def on_skip(message: types.Message) -> None:
    if not _private(message):
        return
    ctx = current()
    found = _member_or_answer(ctx, message)
    if found is None:
        return
    p, member = found
    kind, report = reports.ask_skip(ctx.session, member)
    payload = (
        {"keyboard": "skip_confirm", "report_id": report.id}
        if kind == "skip_confirm" and report
        else None
    )
    reply(ctx, message.chat.id, p, kind, context={"report": report}, payload=payload)


def on_callback(call: types.CallbackQuery) -> None:
    ctx = current()
    _answer_callback(ctx.bot, call.id)
    parts = (call.data or "").split(":")
    message = call.message
    if len(parts) != 3 or parts[0] != "skip" or message is None:
        return
    if message.chat is None or message.chat.type != "private":
        return
    p = _participant(ctx, call.from_user)
    found = members.current(ctx.session, p.id) if p and p.id else None
    kind = reports.skip(
        ctx.session, found[0] if found else None, text.to_int(parts[2], bits=32), parts[1] == "yes"
    )
    reply(ctx, message.chat.id, p, kind, payload={"edit_message_id": message.message_id})


def _answer_callback(bot: telebot.TeleBot, callback_id: str) -> None:
    """Stop the button's spinner; best effort (not a message to the family)."""
    try:
        bot.answer_callback_query(callback_id)
    except (telebot.apihelper.ApiException, requests.RequestException):
        log.info("answerCallbackQuery failed")


_http = threading.local()
DOWNLOAD_CHUNK = 256 * 1024


def _http_session() -> requests.Session:
    """One keep-alive session per thread for file downloads."""
    session = getattr(_http, "session", None)
    if session is None:
        session = _http.session = requests.Session()
    return session


def _fetch(bot: telebot.TeleBot, file_path: str) -> bytes:
    """Download a file from the Bot API's file URL, streamed: with timeouts and stopped as soon as
    it is larger than Telegram's limit (pyTelegramBotAPI's download_file has neither)."""
    url = str(apihelper.FILE_URL).format(bot.token, file_path)
    timeout = (apihelper.CONNECT_TIMEOUT, apihelper.READ_TIMEOUT)
    with _http_session().get(url, stream=True, timeout=timeout) as response:
        if response.status_code != 200:
            raise DownloadError(f"HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > photos.MAX_DOWNLOAD_BYTES:
            raise DownloadError("too big", too_big=True)
        body = bytearray()
        for chunk in response.iter_content(DOWNLOAD_CHUNK):
            body.extend(chunk)
            if len(body) > photos.MAX_DOWNLOAD_BYTES:
                raise DownloadError("too big", too_big=True)
    return bytes(body)


def _download(bot: telebot.TeleBot):
    def download(incoming: photos.Incoming) -> bytes:
        try:
            info = bot.get_file(incoming.file_id)
            if info.file_size and info.file_size > photos.MAX_DOWNLOAD_BYTES:
                raise DownloadError("too big", too_big=True)
            if not info.file_path:
                raise DownloadError("no file path")
            return _fetch(bot, info.file_path)
        except telebot.apihelper.ApiTelegramException as exc:
            raise DownloadError(
                exc.description, too_big="too big" in (exc.description or "")
            ) from None
        except (telebot.apihelper.ApiException, requests.RequestException) as exc:
            raise DownloadError(type(exc).__name__) from None

    return download


def _photo(message: types.Message, incoming: photos.Incoming) -> None:
    ctx = current()
    user = message.from_user
    found = (
        photos.situation(ctx.session, user.id, incoming.file_unique_id)
        if user is not None
        else photos.Situation(None)
    )
    p = found.participant
    if p is not None and p.is_bot_blocked:
        p.is_bot_blocked = False  # they wrote again
        ctx.session.add(p)
    if message.media_group_id:
        # The album's first photo to arrive counts; the others get one note, once.
        key = f"album:{message.chat.id}:{message.media_group_id}"
        if not reply(ctx, message.chat.id, p, "album_note", key=key):
            return
    outcome = photos.receive(ctx.session, found, incoming, _download(ctx.bot))
    ctx.stored_keys.extend(outcome.stored_keys)
    reply(ctx, message.chat.id, p, outcome.kind, context=outcome.context)


def on_photo(message: types.Message) -> None:
    if not _private(message) or not message.photo:
        return
    largest = max(message.photo, key=lambda s: (s.file_size or 0, s.width * s.height))
    _photo(
        message,
        photos.Incoming(
            file_id=largest.file_id,
            file_unique_id=largest.file_unique_id,
            file_size=largest.file_size,
        ),
    )


def on_document(message: types.Message) -> None:
    if not _private(message) or message.document is None:
        return
    doc = message.document
    _photo(
        message,
        photos.Incoming(
            file_id=doc.file_id,
            file_unique_id=doc.file_unique_id,
            file_size=doc.file_size,
            mime_type=doc.mime_type or "application/octet-stream",
        ),
    )


def on_other(message: types.Message) -> None:
    if not _private(message):
        return
    ctx = current()
    p = _participant(ctx, message.from_user)
    found = members.current(ctx.session, p.id) if p and p.id else None
    reply(ctx, message.chat.id, p, "hint", context={"is_member": found is not None})


def on_chat_member(update: types.ChatMemberUpdated) -> None:
    ctx = current()
    if update.chat is None or update.chat.type != "private" or update.from_user is None:
        return
    p = participants.by_telegram(ctx.session, update.from_user.id)
    status = update.new_chat_member.status if update.new_chat_member else None
    if p is None or status not in ("kicked", "member"):
        return
    p.is_bot_blocked = status == "kicked"
    ctx.session.add(p)


def register(bot: telebot.TeleBot) -> None:
    bot.message_handler(commands=["start"])(on_start)
    bot.message_handler(func=lambda m: (m.text or "").strip() == SKIP_BUTTON)(on_skip)
    bot.message_handler(func=lambda m: (m.text or "").strip() == BALANCE_BUTTON)(on_balance)
    bot.message_handler(content_types=["photo"])(on_photo)
    bot.message_handler(content_types=["document"])(on_document)
    bot.message_handler(content_types=CATCH_ALL)(on_other)
    bot.callback_query_handler(func=lambda c: True)(on_callback)
    bot.my_chat_member_handler(func=lambda u: True)(on_chat_member)


_lock = threading.Lock()
_dispatchers: dict[tuple[str, str], telebot.TeleBot] = {}


def dispatcher(settings: Settings | None = None) -> telebot.TeleBot:
    """A bot with these handlers registered, for the webhook and polling (one per token and API
    server, built on first use)."""
    settings = settings or get_settings()
    key = (settings.bot_token, settings.telegram_api_url)
    with _lock:
        bot = _dispatchers.get(key)
        if bot is None:
            bot = _dispatchers[key] = new_bot(settings)
            register(bot)
        return bot
