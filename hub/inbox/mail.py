"""Inbound mail enters the inbox here, whether it came through the SMTP listener or an IMAP poll."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import col, func, select

from channels.base import PayloadError, VerificationError, WebhookRequest
from channels.registry import adapter_classes, build_adapter
from hub.db import session_scope
from hub.inbox.receive import store_events, store_unreadable
from hub.logs import bind_town
from hub.metrics import WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED
from hub.tenancy.models import ChannelAccount, Municipality
from workers.app import enqueue_inbound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailIntake:
    """What became of one mail: stored (new or a duplicate), stored but flagged, or refused."""

    kept: bool
    new_events: int = 0
    flagged: str | None = None
    refused: str | None = None


def email_account(address: str) -> ChannelAccount | None:
    """The active channel receiving mail whose mailbox is `address` (case-insensitive)."""
    kinds = [adapter.kind for adapter in adapter_classes() if adapter.receives_mail]
    with session_scope() as session:
        return session.exec(
            select(ChannelAccount).where(
                col(ChannelAccount.kind).in_(kinds),
                ChannelAccount.active == True,  # noqa: E712 (SQL expression)
                func.lower(ChannelAccount.address) == address.lower(),
            )
        ).first()


def accept_mail(account: ChannelAccount, raw: bytes, *, mail_from: str | None, recipient: str) -> MailIntake:
    """Verifies, parses and stores one mail for one account, then hands it to the pipeline."""
    with session_scope() as session:
        town = session.get(Municipality, account.municipality_id)
        if town is not None:
            bind_town(town.slug)
    mail = WebhookRequest(
        url=f"mailto:{recipient}",
        headers={"content-type": "message/rfc822"},
        body=raw,
        mail_from=mail_from,
        rcpt_tos=(recipient,),
    )
    adapter = build_adapter(account.kind, account.config, account.secrets)
    WEBHOOKS_RECEIVED.labels(account.kind).inc()
    try:
        adapter.verify(mail)
        events = adapter.parse(mail)
    except VerificationError as error:
        WEBHOOKS_REJECTED.labels(account.kind, "signature").inc()
        return MailIntake(kept=False, refused=str(error))
    except PayloadError as error:
        reason = str(error)
        log.warning("unreadable mail for %s stored and flagged: %s", account.address, error)
    except Exception as error:
        # A parser bug must not turn into a 451 that makes the sender retry the same bytes for days.
        log.exception("mail parser failed for %s", account.address)
        reason = f"unerwarteter Aufbau der Nachricht ({type(error).__name__})"
    else:
        with session_scope() as session:
            stored = store_events(session, account=account, request=mail, events=events)
        enqueue_inbound([row.id for row in stored])
        return MailIntake(kept=True, new_events=len(stored))
    WEBHOOKS_REJECTED.labels(account.kind, "payload").inc()
    with session_scope() as session:
        store_unreadable(session, account=account, request=mail, reason=reason)
    return MailIntake(kept=True, flagged=reason)
