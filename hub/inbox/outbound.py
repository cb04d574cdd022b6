"""Sends one queued outbound message through its channel's adapter, at most once per claim.

The row is the record and the broker only carries its id: the send claims the row with one
UPDATE (queued -> sending) that only one worker can win, so a task delivered twice sends once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from channels.base import (
    Choice,
    OptedOutError,
    OutboundMessage,
    PermanentError,
    Receipt,
    TransientError,
    window_open,
)
from channels.registry import adapter_class, build_adapter
from hub.contacts.service import identity_address
from hub.db import session_scope, utcnow
from hub.inbox.models import Conversation, Message
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
    )


def retry_delay(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never shorter than what the provider asked for."""
    backoff = settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
    return max(retry_after or 0.0, random.uniform(backoff / 2, backoff))  # noqa: S311 (jitter, not crypto)


def send_message(settings: Settings, message_id: int) -> SendResult:
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
    adapter = build_adapter(account.kind, account.config, account.secrets)
    try:
        receipt = adapter.send(outbound)
    except OptedOutError as error:
        return _record_failure(message_id, error, "opted out")
    except PermanentError as error:
        return _record_failure(message_id, error, "failed")
    except TransientError as error:
        return _record_transient(settings, message_id, error)
    return _record_receipt(message_id, receipt)


def _fail(message: Message, error: PermanentError) -> None:
    message.status = "failed"
    message.error_code = (error.code or "")[:32] or None
    message.error_message = str(error)[:500]


def _record_failure(message_id: int, error: PermanentError, label: str) -> SendResult:
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        _fail(message, error)
    log.warning("message %s %s: %s", message_id, label, error)
    return SendResult(outcome=f"{label}: {error}")


def _record_transient(settings: Settings, message_id: int, error: TransientError) -> SendResult:
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.error_code = (error.code or "")[:32] or None
        message.error_message = str(error)[:500]
        if message.attempts >= settings.max_send_attempts:
            message.status = "failed"
            log.warning("message %s failed after %s attempts: %s", message_id, message.attempts, error)
            return SendResult(outcome=f"failed after {message.attempts} attempts: {error}")
        delay = retry_delay(settings, message.attempts, error.retry_after)
        message.status = "queued"
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
    log.info("message %s: transient error (%s), retry in %.1fs", message_id, error, delay)
    return SendResult(outcome=f"retry: {error}", retry_in=delay)


def _record_receipt(message_id: int, receipt: Receipt) -> SendResult:
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.status = "sent"
        message.provider_id = receipt.provider_id
        message.sent_at = utcnow()
        message.error_code = message.error_message = None
        if receipt.segments is not None:
            message.segments, message.encoding = receipt.segments, receipt.encoding
        session.flush()
        # The provider may have reported on the message while it was being recorded.
        apply_early_reports(session, channel_account_id=message.channel_account_id, provider_id=receipt.provider_id)
    return SendResult(outcome=f"sent as {receipt.provider_id}")


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

    Whether the citizen got the reply is unknowable, and a reply must never arrive twice, so
    the row is failed with that reason for a person to decide; it is not sent again.
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
