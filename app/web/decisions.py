"""What the two decision screens share — the report queue and the application queue: run a
decision (approve, decline with a reason, undo) and answer it.

An HTMX request gets the object's partial (the decided card, the decided row); a plain form POST
gets a flash message and a redirect back (or, for a bad reason, the page again with the message).
Unknown ids are 404 pages; a decision someone else made first is a notice, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.decisions import Outcome
from app.errors import Invalid, NotFound, Refused
from app.web.common import flash, form, is_htmx


@dataclass(frozen=True)
class Answer:
    """How a screen shows the object after an action. `partial` and `page` get (notice, error,
    text); `page` (optional) is the full page shown to a plain POST with a bad reason, else the
    message is flashed — after `find` (optional) confirmed the object exists (a 404 otherwise)."""

    partial: Callable[[str | None, str | None, str], Response]
    back: str
    page: Callable[[str | None, str | None, str], Response] | None = None
    find: Callable[[], object] | None = None

    def __call__(
        self, request: Request, notice: str | None, error: str | None = None, text: str = ""
    ) -> Response:
        try:
            if is_htmx(request):
                return self.partial(notice, error, text)
            if error and self.page is not None:
                return self.page(notice, error, text)
            if error and self.find is not None:
                self.find()
        except NotFound:
            raise HTTPException(404) from None
        if error or notice:
            flash(request, error or notice or "")
        return RedirectResponse(self.back, status_code=303)


def run(
    request: Request,
    answer: Answer,
    decide: Callable[[str | None], Outcome],
    parse_reason: Callable[[Any, Any], str] | None = None,
) -> Response:
    """Run one decision. With `parse_reason` (a decline) the form's preset/free-text reason is read
    first; a bad one is shown next to the form and nothing changes."""
    data = form(request)
    text = str(data.get("text", "") or "")
    try:
        reason = parse_reason(data.get("preset"), text) if parse_reason else None
        outcome = decide(reason)
    except Invalid as exc:
        return answer(request, None, str(exc), text)
    except NotFound:
        raise HTTPException(404) from None
    except Refused as exc:
        return answer(request, str(exc))
    return answer(request, outcome.notice)
