"""Whom a channel account wrote to unprompted in the last 24 hours, against its daily limit of recipients.

A provider's messaging limit (ChannelAdapter.daily_recipient_limit: WhatsApp's tier) counts every
business-initiated message, whatever started it: broadcasts, reminders, feedback requests. The
inbox counts the messages it starts itself; a domain above it that starts others (broadcasts)
registers how to count its own, so every sender sees one budget.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.db import utcnow
from hub.inbox.models import Message
from hub.tenancy.models import ChannelAccount

DAY = timedelta(hours=24)

# (session, account id, since) -> the contacts written to unprompted since then.
ReachCounter = Callable[[Session, int, datetime], set[int]]


def _started_messages(session: Session, account_id: int, since: datetime) -> set[int]:
    """Contacts sent a message the hub started itself (a reminder, a feedback request) that did not fail."""
    return {
        contact_id
        for contact_id in session.exec(
            select(Message.contact_id)
            .where(
                Message.channel_account_id == account_id,
                col(Message.unprompted).is_(True),
                col(Message.created_at) >= since,
                col(Message.status).not_in(("failed", "undelivered")),
            )
            .distinct()
        )
        if contact_id is not None
    }


_COUNTERS: list[ReachCounter] = [_started_messages]


def register_reach_counter(counter: ReachCounter) -> None:
    """Adds a domain's own unprompted messages to every account's count."""
    if counter not in _COUNTERS:
        _COUNTERS.append(counter)


def reached_today(session: Session, account: ChannelAccount) -> set[int]:
    """The contacts the account wrote to unprompted in the last 24 hours, by whatever sent it."""
    assert account.id is not None
    since = utcnow() - DAY
    return set().union(*(counter(session, account.id, since) for counter in _COUNTERS))


def limit_reason(label: str, limit: int) -> str:
    """Why a message was not sent: recorded on it for staff (German, like the providers' own reasons)."""
    return f"{label}: Tageslimit von {limit} Empfängern in 24 Stunden erreicht"


def over_limit(session: Session, account: ChannelAccount, contact_id: int) -> str | None:
    """Why one more unprompted message to the contact would exceed the account's daily limit, or None."""
    adapter = adapter_class(account.kind)
    limit = adapter.daily_recipient_limit(account.config)
    if limit is None:
        return None
    reached = reached_today(session, account)
    if contact_id in reached or len(reached) < limit:
        return None
    return limit_reason(adapter.label, limit)
