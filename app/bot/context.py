"""What a bot handler needs while it runs: the update's session, its id and the bot.

pyTelegramBotAPI calls handlers with the parsed update only, so `app.bot.updates` sets the context
for the duration of one update (`use`) and handlers read it with `current()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import telebot
from sqlmodel import Session


@dataclass
class Context:
    session: Session
    update_id: int
    bot: telebot.TeleBot
    stored_keys: list[str] = field(default_factory=list)  # media written by this update


_local = threading.local()


@contextmanager
def use(ctx: Context) -> Iterator[Context]:
    _local.ctx = ctx
    try:
        yield ctx
    finally:
        _local.ctx = None


def current() -> Context:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        raise RuntimeError("a bot handler ran outside an update")
    return ctx
