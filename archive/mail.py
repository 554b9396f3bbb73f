"""Mail to users, queued in the transaction and sent only after it commits."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlparse

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SENDER = "Casebank <casebank@localhost>"


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    body: str


def queue_mail(session: Session, mail: OutgoingMail) -> None:
    """Send `mail` if, and only if, the current transaction commits."""
    session.info.setdefault("mail", []).append(mail)


class SmtpMailer:
    """Sends through `smtp://host:port` (or `smtps://`); user and password may be in the URL."""

    def __init__(self, url: str, sender: str = SENDER) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(f"CASEBANK_SMTP_URL {url!r} must look like smtp://host:port")
        self.parsed, self.sender = parsed, sender

    def __call__(self, mails: list[OutgoingMail]) -> None:
        p = self.parsed
        client_class = smtplib.SMTP_SSL if p.scheme == "smtps" else smtplib.SMTP
        with client_class(p.hostname, p.port or (465 if p.scheme == "smtps" else 25), timeout=30) as client:
            if p.username:
                client.login(p.username, p.password or "")
            for mail in mails:
                message = EmailMessage()
                message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
                message.set_content(mail.body)
                client.send_message(message)


def log_only(mails: list[OutgoingMail]) -> None:
    for mail in mails:
        log.warning("no CASEBANK_SMTP_URL set; mail to %s not sent: %s", mail.to, mail.subject)
