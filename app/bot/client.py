"""The pyTelegramBotAPI client, pointed at `settings.telegram_api_url`.

Requests go to `{base}/bot{token}/{method}` and files come from `{base}/file/bot{token}/{path}` — the
layout of Telegram's self-hosted Bot API server (tech-notes.md). The URLs are module globals of
`telebot.apihelper`, so they are set once per process from the settings. A client made here has no
handlers: the sender and the CLI only call methods; `app.bot.handlers.dispatcher` adds the handlers
for the webhook and polling.
"""

from __future__ import annotations

import threading

import telebot
from telebot import apihelper, types

from app.settings import Settings, get_settings

# Updates the bot handles (set-webhook and polling ask Telegram for these only).
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
PROGRESS_BUTTON = "Мой прогресс"

_lock = threading.Lock()
_bot: telebot.TeleBot | None = None
_key: tuple[str, str] | None = None


def configure_api(settings: Settings) -> None:
    base = settings.telegram_api_url.rstrip("/")
    setattr(apihelper, "API_URL", base + "/bot{0}/{1}")  # noqa: B010 (typed as None upstream)
    setattr(apihelper, "FILE_URL", base + "/file/bot{0}/{1}")  # noqa: B010
    apihelper.CONNECT_TIMEOUT = 5
    apihelper.READ_TIMEOUT = 30


def new_bot(settings: Settings) -> telebot.TeleBot:
    """A fresh client for the settings' token and API server (no network call is made here)."""
    if not settings.bot_token:
        raise RuntimeError("BOT_TOKEN is not set")
    configure_api(settings)
    return telebot.TeleBot(settings.bot_token, threaded=False, parse_mode=None)


def get_bot(settings: Settings | None = None) -> telebot.TeleBot:
    """The process's client, rebuilt when the token or the API server changes."""
    global _bot, _key
    settings = settings or get_settings()
    key = (settings.bot_token, settings.telegram_api_url)
    with _lock:
        if _bot is None or _key != key:
            _bot, _key = new_bot(settings), key
        return _bot


def progress_web_app(settings: Settings | None = None) -> types.WebAppInfo:
    """The «Мой прогресс» WebApp. Opened from an inline button or the chat menu button, the page
    gets the signed initData (a reply-keyboard WebApp button would give it none)."""
    return types.WebAppInfo(url=(settings or get_settings()).application_url + "/telegram/progress")


def set_progress_menu(bot: telebot.TeleBot, settings: Settings) -> str:
    """Make «Мой прогресс» the default menu button of every private chat with the bot (one call,
    idempotent; a non-member who opens it is told how to join). Returns the page's URL."""
    app = progress_web_app(settings)
    bot.set_chat_menu_button(menu_button=types.MenuButtonWebApp(PROGRESS_BUTTON, app))
    return str(app.url)
