"""The shift's final message: a template the administrator edits, with named placeholders.

An unknown placeholder is rejected when the template is saved (`problem`), never at sending time.
"""

from __future__ import annotations

import string

from app.text import lombaryers

PLACEHOLDERS = {
    "name": "имя участника",
    "surname": "фамилия участника",
    "balance": "ломбарьерчики с правильным окончанием, например «12 ломбарьерчиков»",
    "shift": "название смены",
}
DEFAULT = (
    "{name}, смена «{shift}» закончилась! Спасибо, что был с нами каждый день. "
    "Ты заработал {balance}. Мы очень тобой гордимся!"
)
MAX_LENGTH = 3000


def problem(template: str) -> str | None:
    """A Russian message if the template cannot be used, else None."""
    if not template.strip():
        return "Напишите текст сообщения."
    if len(template) > MAX_LENGTH:
        return f"Сообщение слишком длинное: не больше {MAX_LENGTH} символов."
    try:
        fields = [
            field
            for _, field, spec, conv in string.Formatter().parse(template)
            if field is not None
        ]
    except ValueError:
        return "Фигурные скобки не закрыты. Подстановки пишутся так: {name}."
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        return f"Неизвестная подстановка: {{{unknown[0]}}}. Можно использовать: {allowed}."
    return None


def render(template: str, *, name: str, surname: str, balance: int, shift: str) -> str:
    return (template or DEFAULT).format(
        name=name, surname=surname, balance=lombaryers(balance), shift=shift
    )
