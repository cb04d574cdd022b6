"""The hub's own SMTP listener: inbound mail for an email channel's address enters the inbox here.

A mail is answered 250 only after it is stored; an unreadable one is stored raw and flagged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import DATA_SIZE_DEFAULT, SMTP, Envelope, Session

from hub.inbox.mail import accept_mail, email_account
from hub.logs import start_log_context
from hub.settings import Settings

log = logging.getLogger(__name__)


class InboundMailHandler:
    """aiosmtpd handler: refuses unknown recipients at RCPT, stores at DATA."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if await asyncio.to_thread(email_account, address) is None:
            return f"550 5.1.1 Unbekannter Empfänger {address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        start_log_context()  # each mail's lines, and the tasks it enqueues, under an id of its own
        raw = envelope.original_content or b""
        replies = []
        for address in envelope.rcpt_tos:
            account = await asyncio.to_thread(email_account, address)
            if account is None:
                continue
            try:
                intake = await asyncio.to_thread(
                    accept_mail, account, raw, mail_from=envelope.mail_from, recipient=address
                )
            except Exception:  # a 4xx makes the sending server try again later: nothing is lost
                log.exception("storing mail for %s failed", address)
                return "451 4.3.0 Vorübergehender Fehler, bitte später erneut senden"
            log.info(
                "mail for %s: %s", address, "refused" if intake.refused else "flagged" if intake.flagged else "stored"
            )
            if intake.refused:
                replies.append(f"550 5.1.1 {intake.refused}")
            elif intake.flagged:
                replies.append("250 2.0.0 Nachricht gespeichert (zur Prüfung markiert)")
            else:
                replies.append("250 2.0.0 Nachricht angenommen")
        return replies[0] if replies else "554 5.5.1 Keine gültigen Empfänger"


class MailerFriendlySMTP(SMTP):
    """aiosmtpd's server, taking a mail with bare LF line endings instead of refusing it.

    aiosmtpd reads DATA up to each CRLF and answers "500 Line too long" to a line over 1001
    octets; a mail whose lines end in LF alone, as Unix mailers send it, is one such line.
    Its "line" may therefore be as long as a whole mail; the size limit still bounds it. The
    data still ends only at CRLF.CRLF, never at LF.LF (RFC 5321 §4.1.1.4, SMTP smuggling).
    """

    def __init__(self, handler: Any, *, data_size_limit: int | None = DATA_SIZE_DEFAULT, **kwargs: Any) -> None:
        # Read by SMTP.__init__ for its stream reader's limit, so it is set first.
        self.line_length_limit = (data_size_limit or DATA_SIZE_DEFAULT) + len(b"\r\n")
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)


class ListenerController(Controller):
    def factory(self) -> SMTP:
        return MailerFriendlySMTP(self.handler, **self.SMTP_kwargs)


def start_listener(settings: Settings, **kwargs: Any) -> Controller:
    controller = ListenerController(
        InboundMailHandler(),
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        data_size_limit=settings.max_email_bytes,
        **kwargs,
    )
    controller.start()
    log.info("SMTP listener on %s:%s", settings.smtp_host, settings.smtp_port)
    return controller
