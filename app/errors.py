"""The app's errors, in one place.

Domain functions raise these; adapters turn them into answers (a 404 page, a message next to a
field, a kind word in the bot). Messages meant for people are Russian and say what to do; the
rest carry a short English reason for the logs (never personal data).
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error the app raises on purpose."""


class NotFound(AppError):
    """The object does not exist (or is not visible to the caller)."""


class Refused(AppError):
    """The action is not allowed in the object's current state; the message is for the user."""


class Invalid(AppError):
    """Bad input; the message is for the user."""


class FormErrors(AppError):
    """Russian messages keyed by form field ("" = the whole form)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class NotAnImage(AppError):
    """The bytes are not an image we accept."""


class MissingObject(AppError):
    """The media storage has no object under this key."""


class DownloadError(AppError):
    """Telegram could not give us the file (error, too big, network)."""

    def __init__(self, message: str = "", *, too_big: bool = False) -> None:
        super().__init__(message)
        self.too_big = too_big


class InitDataError(AppError):
    """Telegram WebApp initData is missing, forged or too old."""


class TooManyAttempts(AppError):
    """Too many login attempts for an e-mail or an address: try again in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many login attempts; retry after {retry_after} s")
        self.retry_after = retry_after
