"""The hub's own SMTP listener: inbound mail for an email channel's address enters the inbox here.

A mail is answered 250 only after it is stored; an unreadable one is stored raw and flagged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hub.inbox.mail import accept_mail, email_account
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
            if intake.refused:
                replies.append(f"550 5.1.1 {intake.refused}")
            elif intake.flagged:
                replies.append("250 2.0.0 Nachricht gespeichert (zur Prüfung markiert)")
            else:
                replies.append("250 2.0.0 Nachricht angenommen")
        return replies[0] if replies else "554 5.5.1 Keine gültigen Empfänger"


def start_listener(settings: Settings, **kwargs: Any) -> Controller:
    controller = Controller(
        InboundMailHandler(),
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        data_size_limit=settings.max_email_bytes,
        **kwargs,
    )
    controller.start()
    log.info("SMTP listener on %s:%s", settings.smtp_host, settings.smtp_port)
    return controller
