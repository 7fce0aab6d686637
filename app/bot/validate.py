"""The numbers in a Telegram update, checked before any handler sees it.

Telegram's ids and sizes fit a signed 64-bit integer (a BIGINT). Anything else — 2**70, 1e308,
"abc", true where an id goes — would reach the database as a value it cannot store (an overflow on
SQLite, an error on PostgreSQL) or as the wrong type. `problem` names the first such field; the
caller acknowledges the update and records it as ignored, so Telegram does not redeliver it forever
and the handlers only ever see well-formed ids.
"""

from __future__ import annotations

import re
from typing import Any

from app.text import json_int, to_int

_MESSAGE = (
    "message_id",
    "date",
    "chat.id",
    "from.id",
    "sender_chat.id",
    "photo[].file_size",
    "photo[].width",
    "photo[].height",
    "document.file_size",
)
_CHAT_MEMBER = (
    "date",
    "chat.id",
    "from.id",
    "old_chat_member.user.id",
    "new_chat_member.user.id",
)
# Where the handlers (and pyTelegramBotAPI's parsing before them) read an integer: a dotted path
# below the update's object; "[]" means every element of a list.
INTEGER_FIELDS: dict[str, tuple[str, ...]] = {
    "message": _MESSAGE,
    "edited_message": _MESSAGE,
    "channel_post": _MESSAGE,
    "edited_channel_post": _MESSAGE,
    "callback_query": (
        "from.id",
        "message.message_id",
        "message.date",
        "message.chat.id",
    ),
    "my_chat_member": _CHAT_MEMBER,
    "chat_member": _CHAT_MEMBER,
}
_NUMBER = re.compile(r"-?[0-9]+")
_INT64 = 1 << 63


def problem(update: dict[str, Any]) -> str | None:
    """Why the handlers must not see this update (an English reason naming a field, never a
    value), or None when its numbers are fine."""
    for kind, paths in INTEGER_FIELDS.items():
        body = update.get(kind)
        if body is None:
            continue
        if not isinstance(body, dict):
            return f"{kind} is not an object"
        for path in paths:
            reason = _check(body, path.split("."), kind)
            if reason:
                return reason
    reason = _callback_data(update.get("callback_query"))
    if reason:
        return reason
    return _out_of_range(update)


def _check(node: dict[str, Any], steps: list[str], where: str) -> str | None:
    step, rest = steps[0], steps[1:]
    many = step.endswith("[]")
    key = step.removesuffix("[]")
    value = node.get(key)
    where = f"{where}.{key}"
    if value is None:
        return None
    if many:
        if not isinstance(value, list):
            return f"{where} is not a list"
        items = value
    else:
        items = [value]
    for item in items:
        if not rest:
            if json_int(item) is None:
                return f"{where} is not a 64-bit integer"
            continue
        if not isinstance(item, dict):
            return f"{where} is not an object"
        reason = _check(item, rest, where)
        if reason:
            return reason
    return None


def _callback_data(query: Any) -> str | None:
    """A button's data carries ids of our rows ("skip:yes:<report id>"): 32-bit, like the rows."""
    if not isinstance(query, dict) or query.get("data") is None:
        return None
    data = query["data"]
    if not isinstance(data, str):
        return "callback_query.data is not a string"
    for part in data.split(":"):
        if _NUMBER.fullmatch(part) and to_int(part, bits=32) is None:
            return "callback_query.data holds a number out of range"
    return None


def _out_of_range(update: dict[str, Any]) -> str | None:
    """Any integer anywhere in the update outside the 64-bit range (fields we do not read are
    stored with a failed update, so they must fit too). Iterative: nesting depth is not ours."""
    stack: list[tuple[str, Any]] = [("update", update)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{str(k)[:40]}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[]", v) for v in value)
        elif isinstance(value, int) and not -_INT64 <= value < _INT64:
            return f"{where[:200]} is out of the 64-bit range"
    return None
