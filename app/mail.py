"""Outgoing e-mail (invitations, password resets) with the standard library's smtplib.

Without SMTP_HOST nothing is sent: the link is only shown to the administrator to copy.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from app.settings import get_settings

log = logging.getLogger("lomaya.mail")


def configured() -> bool:
    return bool(get_settings().smtp_host)


def send(to: str, subject: str, body: str) -> bool:
    """Send a plain-text message; False (and a log line without the address) when it fails."""
    settings = get_settings()
    if not settings.smtp_host:
        return False
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_tls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail not sent: %s", type(exc).__name__)
        return False
    return True
