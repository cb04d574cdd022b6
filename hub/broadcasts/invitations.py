"""Invitations in calendars (iTIP, RFC 5546): the entry an invitation carries, its changes, and the calendars' answers.

By mail an invitation carries a METHOD:REQUEST entry addressed to its recipient, with the
town's mailbox as organizer, so that the citizen's calendar offers to accept or decline; the
REPLY that calendar sends back counts as the RSVP, as a typed "Ja" would. Every other channel
links to the invitation's public calendar file (METHOD:PUBLISH), which names nobody. The entry
keeps one UID per broadcast: a change of time or place raises its SEQUENCE and goes to everyone
invited, and calling the invitation off sends METHOD:CANCEL (the file then reads cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from channels.base import CalendarReply
from channels.registry import adapter_class, kinds_reaching
from hub.broadcasts import service, surveys
from hub.broadcasts.calendar_entry import (
    UID_PATTERN,
    calendar_file,
    calendar_url,
    check_event_times,
    has_calendar,
    invitation_attachment,
    mailbox_of,
    when_text,
)
from hub.broadcasts.models import Broadcast, Delivery
from hub.broadcasts.rendering import language_of
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.context import InboundContext
from hub.inbox.service import queue_outbound
from hub.settings import Settings
from hub.subscribers.models import Subscription
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser

# Deliveries whose message went out, or may have: everyone who holds the invitation.
INVITED_STATES = ("sending", "sent", "delivered", "read")
# The option a calendar's answer counts as: the one worded as that answer, else the one at its
# position (the first accepts, the second declines, a third is "maybe").
ANSWER_WORDS = {
    "accepted": ("ja", "yes", "zusage", "zusagen", "ich komme", "komme"),
    "declined": ("nein", "no", "absage", "absagen", "ich komme nicht"),
    "tentative": ("vielleicht", "maybe", "unsicher"),
}
ANSWER_POSITIONS = {"accepted": 0, "declined": 1, "tentative": 2}


def public_calendar(session: Session, *, token: str) -> bytes:
    """The invitation's calendar file behind its public link (METHOD:PUBLISH), once the invitation is approved."""
    broadcast = session.exec(select(Broadcast).where(Broadcast.calendar_token == token)).first() if token else None
    if broadcast is None or not has_calendar(broadcast) or broadcast.approved_at is None:
        raise NotFound(N_("Diesen Kalendereintrag gibt es nicht."))
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    mailbox = session.exec(
        select(ChannelAccount).where(
            ChannelAccount.municipality_id == municipality.id,
            col(ChannelAccount.kind).in_(kinds_reaching("email")),
            ChannelAccount.active == True,  # noqa: E712
        )
    ).first()
    organizer = mailbox_of(mailbox) if mailbox is not None else None
    return calendar_file(broadcast, municipality, method="PUBLISH", organizer=organizer)


@dataclass(frozen=True)
class Told:
    """What a change or cancellation did: the invitation, and the messages queued to those invited."""

    broadcast: Broadcast
    message_ids: list[int]


def reschedule(
    session: Session, *, settings: Settings, actor: StaffUser, broadcast_id: int, starts_at: datetime,
    ends_at: datetime | None, where: str | None,
) -> Told:  # fmt: skip
    """A new time or place for an invitation that went out: the next version of its entry, to everyone invited.

    Those still waiting for the invitation get the new version with it. Before approval the
    draft itself is changed instead; a cancelled invitation stays cancelled.
    """
    broadcast = _sent_invitation(session, actor, broadcast_id)
    if broadcast.status == "cancelled":
        raise Conflict(N_("Die Einladung ist abgesagt; ihre Zeit lässt sich nicht mehr ändern."))
    check_event_times(starts_at, ends_at)
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    place = (where if where is not None else broadcast.event.get("where", "")).strip()
    if (starts_at, ends_at, place) == (broadcast.event_starts_at, broadcast.event_ends_at,
                                       broadcast.event.get("where", "")):  # fmt: skip
        raise InvalidInput(N_("Zeit und Ort sind unverändert; es gibt nichts mitzuteilen."))
    broadcast.event_starts_at, broadcast.event_ends_at = starts_at, ends_at
    broadcast.event = {**broadcast.event, "when": when_text(starts_at, ends_at, municipality.timezone), "where": place}
    broadcast.event_sequence += 1
    session.add(broadcast)
    service.audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.rescheduled",
                  broadcast_id=broadcast_id, sequence=broadcast.event_sequence)  # fmt: skip
    return Told(broadcast, _tell_invited(session, settings, broadcast, municipality, method="REQUEST"))


def cancel(session: Session, *, settings: Settings, actor: StaffUser, broadcast_id: int) -> Told:
    """Stops a broadcast (service.cancel); an invitation already out is called off with everyone invited."""
    broadcast = service.cancel(session, actor=actor, broadcast_id=broadcast_id)
    if not has_calendar(broadcast):
        return Told(broadcast, [])
    broadcast.event_sequence += 1
    session.add(broadcast)
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    return Told(broadcast, _tell_invited(session, settings, broadcast, municipality, method="CANCEL"))


def _sent_invitation(session: Session, actor: StaffUser, broadcast_id: int) -> Broadcast:
    broadcast = service.get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    if actor.role not in service.APPROVERS:
        raise Forbidden(N_("Nur Bürgermeisterin, Bürgermeister oder Admin können eine versandte Einladung ändern."))
    if not has_calendar(broadcast):
        raise Conflict(N_("Nur Einladungen mit Beginn (einem Kalendereintrag) lassen sich so verlegen."))
    if broadcast.approved_at is None:
        raise Conflict(N_("Die Einladung ist noch nicht freigegeben: ändern Sie den Entwurf selbst."))
    return broadcast


def _tell_invited(
    session: Session, settings: Settings, broadcast: Broadcast, municipality: Municipality, *, method: str
) -> list[int]:
    """Queues the new version (REQUEST) or the cancellation (CANCEL) to everyone the invitation reached.

    A mail carries the entry itself; other channels a short text with the calendar link. Whoever
    has unsubscribed since hears nothing more (never a message after STOP). The caller commits,
    then enqueues the messages.
    """
    rows = session.exec(
        select(Delivery, ChannelAccount)
        .join(ChannelAccount, col(ChannelAccount.id) == Delivery.channel_account_id)
        .join(Subscription, col(Subscription.contact_id) == Delivery.contact_id)
        .where(
            Delivery.broadcast_id == broadcast.id,
            col(Delivery.state).in_(INVITED_STATES),
            Subscription.state == "active",
            ChannelAccount.active == True,  # noqa: E712
        )
        .order_by(col(Delivery.id))
    ).all()
    template = "invitation_changed" if method == "REQUEST" else "invitation_cancelled"
    message_ids = []
    for delivery, account in rows:
        adapter = adapter_class(account.kind)
        language = language_of(broadcast, delivery.language)
        context = {
            "title": broadcast.title, "when": broadcast.event.get("when", ""),
            "where": broadcast.event.get("where", ""),
            "calendar_url": None if adapter.supports_subject else calendar_url(settings, broadcast),
            "short": adapter.max_segments is not None,
        }  # fmt: skip
        attachments = (
            (invitation_attachment(broadcast, municipality, method=method, account=account, attendee=delivery.address),)
            if adapter.supports_subject
            else ()
        )
        message = queue_outbound(
            session, starting=(account.id or 0, delivery.contact_id), author=None,
            text=render_message(f"{template}.txt.j2", language, **context),
            subject=render_message(f"{template}_subject.txt.j2", language, **context), attachments=attachments,
        )  # fmt: skip
        if message.status == "queued" and message.id is not None:
            message_ids.append(message.id)
    return message_ids


# --- the calendars' answers ---------------------------------------------------------------


def vote_from_calendar(
    session: Session, *, municipality: Municipality, contact_id: int, sender: str, reply: CalendarReply
) -> surveys.Vote | None:
    """The RSVP a calendar's REPLY gives, if it answers the current version of an invitation this contact was sent.

    The attendee who answers must be the address the invitation went to, or the mail's sender.
    An answer to an earlier version (before a change of time or place) does not count for the new one.
    """
    found = UID_PATTERN.match(reply.uid.strip().lower())
    if found is None or found.group(2) != municipality.slug:
        return None
    broadcast = session.get(Broadcast, int(found.group(1)))
    if broadcast is None or broadcast.municipality_id != municipality.id or not has_calendar(broadcast):
        return None
    if broadcast.status == "cancelled" or reply.sequence < broadcast.event_sequence:
        return None
    delivery = session.exec(
        select(Delivery).where(Delivery.broadcast_id == broadcast.id, Delivery.contact_id == contact_id)
    ).first()
    if delivery is None or reply.attendee not in (delivery.address.lower(), sender.lower()):
        return None
    index = option_for(broadcast.options, reply.answer)
    return surveys.Vote(broadcast=broadcast, option_index=index) if index is not None else None


def option_for(options: list[str], answer: str) -> int | None:
    """The invitation's option a calendar's answer stands for: the one worded so, else by position."""
    words = ANSWER_WORDS.get(answer, ())
    for index, option in enumerate(options):
        if option.strip().casefold() in words:
            return index
    position = ANSWER_POSITIONS.get(answer)
    worded = {index for index, option in enumerate(options) for words in ANSWER_WORDS.values()
              if option.strip().casefold() in words}  # fmt: skip
    if position is None or position >= len(options) or position in worded:
        return None
    return position


def record_calendar_reply(ctx: InboundContext) -> str | None:
    """Pipeline step (first of the recognisers): a calendar's answer to an invitation is an RSVP, whatever its text.

    An answer that names no invitation of this contact is left to the rest of the pipeline, so
    the mail still reaches the inbox.
    """
    reply = ctx.inbound.calendar_reply
    if reply is None:
        return None
    assert ctx.contact is not None and ctx.contact.id is not None
    municipality = ctx.session.get(Municipality, ctx.account.municipality_id)
    assert municipality is not None
    vote = vote_from_calendar(
        ctx.session, municipality=municipality, contact_id=ctx.contact.id, sender=ctx.inbound.sender, reply=reply
    )
    if vote is None:
        return None
    return surveys.count_and_thank(ctx, vote)
