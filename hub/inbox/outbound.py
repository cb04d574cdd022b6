"""Sends one queued reply or automatic answer through the delivery engine, at most once per claim.

The row is the record and the broker only carries its id: the send claims the row with one
UPDATE (queued -> sending) that only one worker can win, so a task delivered twice sends once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from channels.base import Attachment as FileAttachment
from channels.base import Choice, OutboundMessage, PermanentError, window_open
from channels.registry import adapter_class
from hub.contacts.models import Contact
from hub.contacts.service import identity_address
from hub.db import session_scope, utcnow
from hub.delivery.classes import REPLY
from hub.delivery.engine import OnOptedOut, OptedOutRecipient, Outcome, Sender
from hub.inbox.models import Attachment, Conversation, Message
from hub.inbox.pipeline import apply_early_reports
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount
from hub.tenancy.service import status_callback_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    outcome: str
    retry_in: float | None = None


def claim(session: Session, message_id: int) -> bool:
    now = utcnow()
    claimed = session.execute(
        update(Message)
        .where(
            col(Message.id) == message_id,
            col(Message.status) == "queued",
            (col(Message.next_attempt_at).is_(None)) | (col(Message.next_attempt_at) <= now),
        )
        .values(status="sending", claimed_at=now, attempts=Message.attempts + 1)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def build_outbound(session: Session, settings: Settings, message: Message) -> tuple[ChannelAccount, OutboundMessage]:
    account = session.get(ChannelAccount, message.channel_account_id)
    assert account is not None
    if message.conversation_id is not None:
        conversation = session.get(Conversation, message.conversation_id)
        assert conversation is not None
        contact_id, last_inbound_at = conversation.contact_id, conversation.last_inbound_at
    else:
        # An answer to a command: the citizen's last message outside a case opened the window.
        assert message.contact_id is not None
        contact_id = message.contact_id
        last_inbound_at = session.exec(
            select(func.max(Message.created_at)).where(
                Message.contact_id == contact_id,
                Message.channel_account_id == account.id,
                Message.direction == "inbound",
            )
        ).one()
    adapter = adapter_class(account.kind)
    to = identity_address(session, contact_id=contact_id, kind=adapter.identity.kind)
    if to is None:
        raise PermanentError("Der Kontakt hat auf diesem Kanal keine Adresse mehr.")
    return account, OutboundMessage(
        to=to,
        text=message.body,
        subject=message.subject,
        reply_to_ref=message.reply_to_ref,
        message_id=message.email_message_id,
        references=tuple(message.email_references),
        window_open=window_open(adapter, last_inbound_at, utcnow()),
        status_callback=status_callback_url(settings, account),
        automated=message.automated,
        choices=tuple(Choice(label=choice["label"], payload=choice["payload"]) for choice in message.choices),
        attachments=tuple(
            FileAttachment(filename=kept.filename, content_type=kept.content_type, data=kept.data, size=kept.size)
            for kept in session.exec(select(Attachment).where(Attachment.message_id == message.id))
        ),
        language=contact.language if (contact := session.get(Contact, contact_id)) else None,
        template=message.template,
        purpose=message.purpose,
        unprompted=message.unprompted,
    )


def send_message(settings: Settings, message_id: int, *, on_opted_out: OnOptedOut) -> SendResult:
    """Sends a queued reply or automatic answer as a `REPLY`; `on_opted_out` stops a citizen who refused it."""
    with session_scope() as session:
        if not claim(session, message_id):
            return SendResult(outcome="not claimed (already sent, sending, or not due)")
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        try:
            account, outbound = build_outbound(session, settings, message)
        except PermanentError as error:
            _fail(message, error)
            return SendResult(outcome=f"failed: {error}")
        attempt = message.attempts
    outcome = Sender(settings, account, REPLY).send_now(outbound, attempt=attempt)
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return _record(session, message, outcome, on_opted_out)


def _fail(message: Message, error: Exception) -> None:
    message.status = "failed"
    message.error_code = (getattr(error, "code", None) or "")[:32] or None
    message.error_message = str(error)[:500]


def _record(session: Session, message: Message, outcome: Outcome, on_opted_out: OnOptedOut) -> SendResult:
    if outcome.receipt is not None:
        message.status = "sent"
        message.provider_id = outcome.receipt.provider_id
        message.sent_at = utcnow()
        message.error_code = message.error_message = None
        if outcome.receipt.segments is not None:
            message.segments, message.encoding = outcome.receipt.segments, outcome.receipt.encoding
        session.flush()
        # The provider may have reported on the message while it was being recorded.
        apply_early_reports(
            session, channel_account_id=message.channel_account_id, provider_id=outcome.receipt.provider_id
        )
        return SendResult(outcome=f"sent as {outcome.receipt.provider_id}")
    message.error_code, message.error_message = outcome.error_code, outcome.error_text
    if outcome.state == "retry":
        assert outcome.retry_in is not None
        message.status = "queued"
        message.next_attempt_at = utcnow() + timedelta(seconds=outcome.retry_in)
        log.info("message %s: transient error (%s), retry in %.1fs", message.id, outcome.error, outcome.retry_in)
        return SendResult(outcome=f"retry: {outcome.error}", retry_in=outcome.retry_in)
    message.status = "failed"
    if outcome.state == "gave_up":
        log.warning("message %s failed after %s attempts: %s", message.id, message.attempts, outcome.error)
        return SendResult(outcome=f"failed after {message.attempts} attempts: {outcome.error}")
    label = "opted out" if outcome.state == "opted_out" else "failed"
    if outcome.state == "opted_out":
        on_opted_out(session, _refusing(session, message, outcome))
    log.warning("message %s %s: %s", message.id, label, outcome.error)
    return SendResult(outcome=f"{label}: {outcome.error}")


def _refusing(session: Session, message: Message, outcome: Outcome) -> OptedOutRecipient:
    """Who refused the message: the citizen of its case, or the one it answered outside any case."""
    contact_id = message.contact_id
    if contact_id is None:
        conversation = session.get(Conversation, message.conversation_id)
        assert conversation is not None
        contact_id = conversation.contact_id
    return OptedOutRecipient(
        municipality_id=message.municipality_id,
        contact_id=contact_id,
        evidence={"message_id": message.id, "error": str(outcome.error)},
    )


def stale_queued_ids(session: Session, settings: Settings) -> list[int]:
    """Queued rows due for longer than the stale age: their task was lost, so send them again."""
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    return list(
        session.exec(
            select(Message.id).where(
                Message.status == "queued",
                (col(Message.next_attempt_at) <= cutoff)
                | (col(Message.next_attempt_at).is_(None) & (col(Message.created_at) <= cutoff)),
            )
        ).all()  # type: ignore[arg-type]
    )


def settle_stale_sending(session: Session, settings: Settings) -> int:
    """Rows stuck in "sending": the worker died between the provider call and the record.

    Whether the citizen got the reply is unknowable, and a reply must never arrive twice
    (REPLY: uncertain), so the row is failed with that reason for a person to decide; it is not
    sent again.
    """
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    settled = session.execute(
        update(Message)
        .where(col(Message.status) == "sending", col(Message.claimed_at) <= cutoff)
        .values(
            status="failed",
            error_code="uncertain",
            error_message="Zustellung ungewiss: Versand abgebrochen.",
        )
    )
    return int(settled.rowcount)  # type: ignore[attr-defined]
