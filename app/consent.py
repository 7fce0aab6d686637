"""Consent to personal-data processing (product.md §7): who gave it, when, and which text.

The texts are versioned files, `templates/registration/consent/<version>.html`, shown in full in
the registration form. A new wording is a new file and a new CURRENT_VERSION, never an edit of a
published one: consents given point at their version. Every consent given in the form is a row of
`consent` (none is overwritten); the participant row keeps a copy of the latest (`consent_at`,
`consent_version`) for the lists that show it, written only here, in the same transaction.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from app.models import Consent, ConsentGiver, Participant
from app.settings import PROJECT_ROOT

CURRENT_VERSION = "2026-2"
TEXTS = PROJECT_ROOT / "templates" / "registration" / "consent"
VERSION_RE = re.compile(r"^\d{4}-\d{1,3}$")
GIVERS = {
    ConsentGiver.parent: "родитель или законный представитель",
    ConsentGiver.participant: "сам участник",
}


def template_name(version: str) -> str | None:
    """The template of a version's text, or None for a version that has no text."""
    if not VERSION_RE.match(version) or not (TEXTS / f"{version}.html").is_file():
        return None
    return f"registration/consent/{version}.html"


def record(
    session: Session,
    participant: Participant,
    given_by: ConsentGiver,
    now: datetime,
    version: str = CURRENT_VERSION,
) -> Consent:
    """Keep a consent just given (a new row, every time) and make it the one in force."""
    assert participant.id is not None
    given = Consent(participant_id=participant.id, given_by=given_by, version=version, given_at=now)
    session.add(given)
    participant.consent_at = now
    participant.consent_version = version
    session.add(participant)
    return given


def history(session: Session, participant_id: int) -> list[Consent]:
    """Every consent of a participant, the latest first."""
    return list(
        session.exec(
            select(Consent)
            .where(col(Consent.participant_id) == participant_id)
            .order_by(col(Consent.given_at).desc(), col(Consent.id).desc())
        ).all()
    )
