"""What the inbox pages show: list rows with their last message and response clocks, and what changed since a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, and_, col, func, or_, select

from hub.contacts.models import Contact, ContactIdentity
from hub.inbox import sla
from hub.inbox.models import Conversation, Label, Message
from hub.inbox.tools import labels_of
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser, Team

# How much of the last message a list row shows, and how much of it is read from the database for that.
PREVIEW_CHARS = 100
_PREVIEW_READ = 400


@dataclass(frozen=True)
class Preview:
    """The start of a conversation's last message to or from the citizen, on one line."""

    text: str
    outbound: bool


@dataclass(frozen=True)
class Summary:
    """One row of the list: the conversation and everything shown beside it."""

    conversation: Conversation
    contact_name: str
    channel: ChannelAccount
    assignee: StaffUser | None
    team: Team | None
    labels: list[Label]
    clock: sla.ResponseClock
    preview: Preview | None = None
    # When a conversation set aside for later comes back (hub.inbox.snooze), while that is still ahead.
    returns_at: datetime | None = None


def shortened(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text` on one line, cut at a word before `limit` characters (or inside a word longer than that)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 2]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " …"


def previews(session: Session, conversation_ids: list[int]) -> dict[int, Preview]:
    """The last message of each conversation, in one query; only its start is read.

    Notes and the hub's automatic answers (the acknowledgement with the reference) are left out: the row shows
    what the citizen or a colleague last said.
    """
    if not conversation_ids:
        return {}
    last = (
        select(func.max(Message.id))
        .where(
            col(Message.conversation_id).in_(conversation_ids),
            col(Message.direction).in_(("inbound", "outbound")),
            col(Message.automated).is_(False),
        )
        .group_by(col(Message.conversation_id))
    )
    rows = session.exec(
        select(Message.conversation_id, Message.direction, func.substr(Message.body, 1, _PREVIEW_READ)).where(
            col(Message.id).in_(last)
        )
    ).all()
    return {
        conversation_id: Preview(text=shortened(body or ""), outbound=direction == "outbound")
        for conversation_id, direction, body in rows
        if conversation_id is not None
    }


def contact_names(session: Session, contact_ids: set[int]) -> dict[int, str]:
    """The display name, else the first address the contact wrote from."""
    names: dict[int, str] = {}
    for identity in session.exec(
        select(ContactIdentity)
        .where(col(ContactIdentity.contact_id).in_(contact_ids))
        .order_by(col(ContactIdentity.id))
    ):
        names.setdefault(identity.contact_id, identity.address)
    for contact in session.exec(select(Contact).where(col(Contact.id).in_(contact_ids))):
        if contact.display_name:
            names[contact.id or 0] = contact.display_name
    return names


def summaries(
    session: Session, *, municipality: Municipality, conversations: list[Conversation], now: datetime
) -> list[Summary]:
    """Rows for the list, loaded in a handful of queries whatever the page size."""
    channels = {
        account.id: account
        for account in session.exec(
            select(ChannelAccount).where(col(ChannelAccount.id).in_({c.channel_account_id for c in conversations}))
        )
    }
    users = {
        user.id: user
        for user in session.exec(select(StaffUser).where(col(StaffUser.id).in_({c.assignee_id for c in conversations})))
    }
    teams = {
        team.id: team for team in session.exec(select(Team).where(col(Team.id).in_({c.team_id for c in conversations})))
    }
    names = contact_names(session, {c.contact_id for c in conversations})
    ids = [c.id for c in conversations if c.id is not None]
    labels = labels_of(session, conversation_ids=ids)
    # A citizen waits again after a later message, until staff answer that one too.
    last_replies = dict(
        session.exec(
            select(Message.conversation_id, func.max(Message.created_at))
            .where(
                col(Message.conversation_id).in_(ids),
                Message.direction == "outbound",
                col(Message.author_id).is_not(None),
            )
            .group_by(col(Message.conversation_id))
        ).all()
    )
    own = sla.own_targets(session, ids)
    last_messages = previews(session, ids)
    rows = []
    for conversation in conversations:
        team = teams.get(conversation.team_id)
        rows.append(
            Summary(
                conversation=conversation,
                contact_name=names.get(conversation.contact_id, "–"),
                channel=channels[conversation.channel_account_id],
                assignee=users.get(conversation.assignee_id),
                team=team,
                labels=labels.get(conversation.id or 0, []),
                clock=sla.clock(
                    conversation,
                    team=team,
                    municipality=municipality,
                    now=now,
                    last_reply_at=last_replies.get(conversation.id or 0),
                    own_target=own.get(conversation.id or 0),
                ),
                preview=last_messages.get(conversation.id or 0),
                returns_at=(
                    conversation.snoozed_until
                    if conversation.snoozed_until is not None and conversation.snoozed_until > now
                    else None
                ),
            )
        )
    return rows


def latest_message_id(session: Session, *, municipality_id: int) -> int:
    """Where a live page starts listening: after the newest message that exists now."""
    newest = session.exec(select(func.max(Message.id)).where(Message.municipality_id == municipality_id)).one()
    return newest or 0


def known_ids(session: Session, *, municipality_id: int, cursor: int) -> set[int]:
    """The ids a page rendered up to `cursor` already shows, within the look-back of `changes_since`."""
    found = session.exec(
        select(Message.id).where(
            Message.municipality_id == municipality_id,
            col(Message.id) > cursor - LOOKBACK_IDS,
            col(Message.id) <= cursor,
        )
    )
    return {message_id for message_id in found if message_id is not None}


# Ids are handed out before commit, so on PostgreSQL a lower id can become visible after a
# higher one; looking this far back (and skipping what was already sent) catches it.
LOOKBACK_IDS = 200


@dataclass(frozen=True)
class Changes:
    cursor: int
    conversation_ids: list[int]
    messages: list[Message]


def changes_since(
    session: Session, *, municipality_id: int, cursor: int, seen: set[int], conversation_id: int | None = None
) -> Changes:
    """Messages and notes after `cursor` (a message id) not in `seen`, and the conversations they touched.

    One indexed range query per poll, so any number of API processes can serve live pages
    from the database alone. `messages` holds those of the open conversation; the caller adds
    the returned ids to `seen`.
    """
    rows = session.exec(
        select(Message.id, Message.conversation_id)
        .where(Message.municipality_id == municipality_id, col(Message.id) > cursor - LOOKBACK_IDS)
        .order_by(col(Message.id))
        .limit(500)
    ).all()
    fresh = [(message_id, conversation) for message_id, conversation in rows if message_id not in seen]
    if not fresh:
        return Changes(cursor=cursor, conversation_ids=[], messages=[])
    # A command's messages belong to no case, so no inbox row changes for them.
    touched = list(dict.fromkeys(conversation for _id, conversation in fresh if conversation is not None))
    messages: list[Message] = []
    if conversation_id is not None and conversation_id in touched:
        messages = list(
            session.exec(
                select(Message)
                .where(Message.conversation_id == conversation_id, col(Message.id).in_([i for i, _c in fresh]))
                .order_by(col(Message.id))
            ).all()
        )
    return Changes(
        cursor=max(cursor, *(i or 0 for i, _c in fresh)),
        conversation_ids=touched,
        messages=messages,
    )


# Changed-at moments come from each process's clock and are stamped before commit: looking this far
# back (and skipping what was already sent) catches a change that becomes visible late.
CHANGES_LOOKBACK = timedelta(seconds=10)


def changed_since(session: Session, *, municipality_id: int, since: datetime, now: datetime) -> dict[int, datetime]:
    """Conversations whose status, assignment or Wiedervorlage changed after `since` less the look-back, with when.

    A Wiedervorlage that ran out in that time counts as a change at its moment: the conversation is open again,
    though no row was written then.
    """
    floor = since - CHANGES_LOOKBACK
    rows = session.exec(
        select(Conversation.id, Conversation.changed_at, Conversation.snoozed_until).where(
            Conversation.municipality_id == municipality_id,
            or_(
                col(Conversation.changed_at) > floor,
                and_(col(Conversation.snoozed_until) > floor, col(Conversation.snoozed_until) <= now),
            ),
        )
    ).all()
    found: dict[int, datetime] = {}
    for conversation_id, changed_at, snoozed_until in rows:
        returned = snoozed_until if snoozed_until is not None and snoozed_until <= now else None
        moments = [moment for moment in (changed_at, returned) if moment is not None and moment > floor]
        if conversation_id is not None and moments:
            found[conversation_id] = max(moments)
    return found


def delivery_states(session: Session, *, conversation_id: int) -> dict[int, tuple[str | None, str | None]]:
    """(status, error) of each reply in the conversation, to show changes while the page is open."""
    return {
        message_id: (status, error)
        for message_id, status, error in session.exec(
            select(Message.id, Message.status, Message.error_message).where(
                Message.conversation_id == conversation_id, Message.direction == "outbound"
            )
        )
        if message_id is not None
    }
