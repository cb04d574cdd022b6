"""The hub's own SMTP listener: inbound mail for an email channel's address enters the inbox here.

A mail is answered 250 only after it is stored; an unreadable one is stored raw and flagged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import func, select

from channels.base import PayloadError, VerificationError, WebhookRequest
from channels.registry import build_adapter
from hub.db import session_scope
from hub.inbox.receive import store_events, store_unreadable
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount
from workers.app import enqueue_inbound

log = logging.getLogger(__name__)


def _email_account(address: str) -> ChannelAccount | None:
    with session_scope() as session:
        return session.exec(
            select(ChannelAccount).where(
                ChannelAccount.kind == "email",
                ChannelAccount.active == True,  # noqa: E712 (SQL expression)
                func.lower(ChannelAccount.address) == address.lower(),
            )
        ).first()


def store_mail(account: ChannelAccount, mail: WebhookRequest) -> str:
    """Verifies, parses and stores one mail for one account; returns the SMTP reply."""
    adapter = build_adapter("email", account.config, account.secrets)
    try:
        adapter.verify(mail)
        events = adapter.parse(mail)
    except VerificationError as error:
        return f"550 5.1.1 {error}"
    except PayloadError as error:
        with session_scope() as session:
            store_unreadable(session, account=account, request=mail, reason=str(error))
        log.warning("unreadable mail for %s stored and flagged: %s", account.address, error)
        return "250 2.0.0 Nachricht gespeichert (zur Prüfung markiert)"
    with session_scope() as session:
        new_ids = store_events(session, account=account, request=mail, events=events)
    enqueue_inbound(new_ids)
    return "250 2.0.0 Nachricht angenommen"


class InboundMailHandler:
    """aiosmtpd handler: refuses unknown recipients at RCPT, stores at DATA."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if await asyncio.to_thread(_email_account, address) is None:
            return f"550 5.1.1 Unbekannter Empfänger {address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        replies = []
        for address in envelope.rcpt_tos:
            account = await asyncio.to_thread(_email_account, address)
            if account is None:
                continue
            mail = WebhookRequest(
                url=f"smtp:{address}",
                headers={"content-type": "message/rfc822"},
                body=raw,
                mail_from=envelope.mail_from,
                rcpt_tos=(address,),
            )
            try:
                replies.append(await asyncio.to_thread(store_mail, account, mail))
            except Exception:  # a 4xx makes the sending server try again later: nothing is lost
                log.exception("storing mail for %s failed", address)
                return "451 4.3.0 Vorübergehender Fehler, bitte später erneut senden"
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
