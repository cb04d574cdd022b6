"""Live updates for open inbox pages: what changed since a page's cursor, and who else has a conversation open or types.

Every process answers from the database alone, polled once a second from the message id the
page was rendered at (or the browser's Last-Event-ID after a reconnect), so any number of API
processes serve the same pages. A list also follows changes of status, assignment and
Wiedervorlage, from the moment it was rendered (Conversation.changed_at): both positions travel
in each event's id, "<message id>-<microseconds>". The page (hub/inbox/pages.py) turns the news
into HTML.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from hub.db import utcnow
from hub.inbox import alerts, overview, service, tools
from hub.inbox.models import Conversation, Message
from hub.tenancy.models import StaffUser

# How often a live page's stream looks for news, and how long one stream lasts before the
# browser reconnects (which checks the sign-in again).
POLL_SECONDS = 1.0
STREAM_SECONDS = 30.0
PRESENCE_EVERY_SECONDS = 10.0
# What waits for the clerk takes a few queries (and the response targets), so it is looked at less often.
ALERTS_EVERY_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Beyond this a position is no moment (datetime ends in 9999); such a value is not from a page of the hub.
LAST_POSITION = 253_402_300_799_999_999


def position(moment: datetime) -> int:
    """A moment as a page's position in the changes (the list's URL and the events' ids carry it), to the
    microsecond the database keeps, so that a resumed stream neither repeats nor skips a change."""
    return (moment - _EPOCH) // _MICROSECOND


def moment_of(position: int) -> datetime:
    return _EPOCH + position * _MICROSECOND


def resume_point(last_event_id: str) -> tuple[int, datetime | None] | None:
    """(message cursor, changes moment) from an event id this module wrote; None for anything else."""
    cursor, _, changes = last_event_id.partition("-")
    if not cursor.isdigit() or (changes and not (changes.isdigit() and int(changes) <= LAST_POSITION)):
        return None
    return int(cursor), moment_of(int(changes)) if changes else None


@dataclass
class News:
    """What one look found: changed rows of a list, or a conversation's new and changed messages and viewers."""

    conversation_ids: list[int] = field(default_factory=list)
    # Of those, the ones whose status, assignment or Wiedervorlage changed without a new message.
    changed_ids: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # The colleagues who have the conversation open (and who of them is typing), when that changed since the last look.
    present: list[tools.Colleague] | None = None
    # How many conversations wait for the clerk, and what to notify them of, when that changed.
    waiting: alerts.Watch | None = None


@dataclass
class LiveView:
    """One page's view of the news: what it has been sent, and what to poll next."""

    municipality_id: int
    user_id: int
    cursor: int
    conversation_id: int | None
    seen: set[int]
    deliveries: dict[int, tuple[str | None, str | None]]
    present: list[tools.Colleague] = field(default_factory=list)
    marked_at: float = 0.0
    # A list's position in the changes of conversations, and what it has been sent of those within the look-back.
    changes_at: datetime | None = None
    changes_seen: dict[int, datetime] = field(default_factory=dict)
    watch: alerts.Watch = field(default_factory=alerts.Watch)
    watched_at: float | None = None

    @property
    def event_id(self) -> str:
        return f"{self.cursor}-{position(self.changes_at)}" if self.changes_at else str(self.cursor)

    @classmethod
    def start(
        cls, session: Session, *, municipality_id: int, user_id: int, cursor: int, conversation_id: int | None,
        changes_at: datetime | None = None,
    ) -> LiveView:  # fmt: skip
        """The view of a page rendered at `cursor` (and, for a list, at `changes_at`); a conversation of another
        town is not found."""
        deliveries: dict[int, tuple[str | None, str | None]] = {}
        if conversation_id is not None:
            service.get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
            deliveries = overview.delivery_states(session, conversation_id=conversation_id)
        return cls(
            municipality_id=municipality_id,
            user_id=user_id,
            cursor=cursor,
            conversation_id=conversation_id,
            seen=overview.known_ids(session, municipality_id=municipality_id, cursor=cursor),
            deliveries=deliveries,
            changes_at=changes_at if conversation_id is None else None,
            changes_seen=_shown(session, municipality_id, changes_at) if conversation_id is None else {},
        )

    def poll(self, session: Session) -> News:
        """One look at the database (runs in a worker thread); marks this viewer present now and then."""
        changes = overview.changes_since(
            session,
            municipality_id=self.municipality_id,
            cursor=self.cursor,
            seen=self.seen,
            conversation_id=self.conversation_id,
        )
        self.cursor = changes.cursor
        news = News() if self.conversation_id is not None else News(conversation_ids=changes.conversation_ids)
        if self.conversation_id is not None:
            self._conversation(session, changes.messages, news)
        elif self.changes_at is not None:
            self._state_changes(session, news)
        # Everything up to the cursor that is visible now has been handled, in any conversation.
        self.seen |= overview.known_ids(session, municipality_id=self.municipality_id, cursor=self.cursor)
        if self.watched_at is None or time.monotonic() - self.watched_at >= ALERTS_EVERY_SECONDS:
            self.watched_at = time.monotonic()
            user = session.get(StaffUser, self.user_id)
            if user is not None and self.watch.look(session, user=user, now=utcnow()):
                news.waiting = self.watch
        return news

    def _state_changes(self, session: Session, news: News) -> None:
        assert self.changes_at is not None
        recent = overview.changed_since(
            session, municipality_id=self.municipality_id, since=self.changes_at, now=utcnow()
        )
        fresh = [conversation for conversation, at in recent.items() if self.changes_seen.get(conversation) != at]
        news.changed_ids = [conversation for conversation in fresh if conversation not in news.conversation_ids]
        news.conversation_ids += news.changed_ids
        self.changes_seen = recent
        self.changes_at = max([self.changes_at, *recent.values()])

    def _conversation(self, session: Session, messages: list[Message], news: News) -> None:
        assert self.conversation_id is not None
        conversation = session.get(Conversation, self.conversation_id)
        if conversation is None:
            return
        news.messages.extend(messages)
        states = overview.delivery_states(session, conversation_id=self.conversation_id)
        for message_id, state in states.items():
            if message_id in self.deliveries and self.deliveries[message_id] != state:
                changed = session.get(Message, message_id)
                assert changed is not None
                news.messages.append(changed)
        self.deliveries = states
        now = utcnow()
        if time.monotonic() - self.marked_at >= PRESENCE_EVERY_SECONDS:
            tools.mark_viewing(session, conversation=conversation, user_id=self.user_id, now=now)
            session.commit()
            self.marked_at = time.monotonic()
        present = tools.others_present(session, conversation=conversation, user_id=self.user_id, now=now)
        if present != self.present:
            self.present = news.present = present


def _shown(session: Session, municipality_id: int, changes_at: datetime | None) -> dict[int, datetime]:
    """The changes a list rendered at `changes_at` already shows, within the look-back."""
    if changes_at is None:
        return {}
    recent = overview.changed_since(session, municipality_id=municipality_id, since=changes_at, now=changes_at)
    return {conversation: at for conversation, at in recent.items() if at <= changes_at}


async def stream(
    poll: Callable[[], Awaitable[list[str]]], disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Server-sent events from `poll` once a second for STREAM_SECONDS, with a keep-alive comment in quiet times."""
    yield "retry: 2000\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < STREAM_SECONDS and not await disconnected():
        for event in await poll():
            last_sent = time.monotonic()
            yield event
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)
