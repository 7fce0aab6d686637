"""Logging for every entry point: `lomaya serve`, `lomaya worker`, the other CLI commands and the
ASGI entry (`app.asgi`). `configure(settings)` is called once by each of them.

`LOG_FORMAT=text` (the default): one readable line per record. `LOG_FORMAT=json`: one JSON object
per line (python-json-logger) with `time` (ISO 8601, UTC), `level`, `logger`, `message`, `request_id` (and
`exc_info` for errors), for journald, Loki and friends. uvicorn's own loggers (its access log
included) go through the same handler, so a process writes one format only.

Request ids: while an HTTP request is handled, every record carries its id (`request_id`, read
from a context variable by a filter on the handler); the id comes from the proxy's `X-Request-ID`
(nginx's `$request_id`, also in nginx's access log) or is generated, and is echoed in the
response (app.web.request_id). Outside a request the field is "-".

No personal data in logs (product.md §7): no query strings (the access-log filter below cuts
them — a search for a child's name travels there), and the app logs ids and error classes, never
names, phone numbers or Telegram payloads.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import IO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from app.settings import Settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = ("levelname", "name", "message", "request_id")
JSON_NAMES = {"levelname": "level", "name": "logger"}
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the request being handled, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class NoQueryStrings(logging.Filter):
    """Access log lines without query strings: a search for a child's name must not reach the logs.

    uvicorn's access record has args (client, method, path with query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


class _Handler(logging.StreamHandler):
    """The handler `configure` installs (recognised, and replaced, when called again). Without
    a stream of its own it writes to whatever `sys.stderr` is at the time (like logging's
    last-resort handler), so replacing stderr (tests do) never leaves it writing to a closed one."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.own_stream = stream

    @property
    def stream(self) -> IO[str]:
        return self.own_stream or sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # set by StreamHandler.__init__; the property above decides


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            list(JSON_FIELDS),
            rename_fields=JSON_NAMES,
            timestamp="time",  # ISO 8601, UTC
            # uvicorn's `color_message` repeats the message with terminal colours
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_ensure_ascii=False,
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(settings: Settings, stream: IO[str] | None = None) -> None:
    """Send every record (the app's and uvicorn's) to `stream` (stderr) in LOG_FORMAT, at
    LOG_LEVEL. Idempotent: a second call replaces the first one's handler."""
    handler = _Handler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in UVICORN_LOGGERS:
        # uvicorn's own handlers (when it configured logging before the app was imported) would
        # write a second, differently formatted copy; its records go to the root handler instead.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    quiet_access_log()


def quiet_access_log() -> None:
    """Install the query-string filter on uvicorn's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, NoQueryStrings) for f in access.filters):
        access.addFilter(NoQueryStrings())
