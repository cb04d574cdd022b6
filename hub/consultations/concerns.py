"""A citizen's concern about a booking becomes a case in the inbox, assigned to the series' host, so staff can prepare.

The concern given at booking opens it; what the citizen writes later, on any of their channels,
joins it (hub.composition registers `thread_into_booking` with the inbox pipeline).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, or_, select

from hub.consultations.models import Booking, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.consultations.reminders import reminder_account
from hub.db import utcnow
from hub.i18n import N_
from hub.inbox.context import InboundContext
from hub.inbox.models import Conversation, Message
from hub.inbox.service import current_conversation, open_conversation, reopen_if_resolved
from hub.tenancy.models import ChannelAccount
from hub.tenancy.service import channel_reaching


def open_concern(
    session: Session, *, booking: Booking, series: ConsultationSeries, reached_on: str | None, now: datetime | None
) -> Conversation | None:
    """Opens the case with the concern as the citizen's first message and links it to the booking.

    It is a case of its own, not added to one the citizen has open, so that assigning it to the
    host moves nobody else's work. A citizen the town cannot answer on any channel keeps the
    concern on the booking only.
    """
    assert booking.id is not None and booking.concern
    account = (
        channel_reaching(session, municipality_id=booking.municipality_id, identity=reached_on)
        if reached_on
        else reminder_account(session, booking)
    )
    if account is None or account.id is None:
        return None
    moment = now or utcnow()
    conversation = _open_booking_case(session, booking=booking, series=series, account=account)
    session.add(
        Message(
            municipality_id=booking.municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="inbound", body=booking.concern, created_at=moment,
        )
    )  # fmt: skip
    # The response clock runs from the concern, as it would from a message.
    conversation.last_inbound_at = conversation.last_activity_at = moment
    session.flush()
    return conversation


def _open_booking_case(
    session: Session, *, booking: Booking, series: ConsultationSeries, account: ChannelAccount
) -> Conversation:
    """A new case on `account` for the host, linked to the booking; the caller adds the first message."""
    conversation = open_conversation(
        session, account=account, contact_id=booking.contact_id, subject=f"{series.title} ({booking.reference})"
    )
    conversation.team_id, conversation.assignee_id = series.host_team_id, series.host_user_id
    booking.conversation_id = conversation.id
    return conversation


def thread_into_booking(ctx: InboundContext) -> tuple[Conversation, bool] | None:
    """The case of the citizen's upcoming booking that a message belongs to, on whichever channel it came.

    A message that answers one the hub sent about the booking (a confirmation, a reminder: they
    carry its reference) joins the booking's case, reopened, or a new one linked to it. Any other
    message joins the booking's open case, unless it continues a case of its own (a mail that
    answers one, an open case on this channel): then the inbox threads it as always. Public
    comments and group chats are never a booking's concern.
    """
    if ctx.contact is None or ctx.inbound.kind != "message" or ctx.inbound.shared_chat:
        return None
    session = ctx.session
    upcoming = _upcoming_bookings(session, contact_id=ctx.contact.id or 0, now=utcnow())
    if not upcoming:
        return None
    answered = _answered_booking(ctx, upcoming, contact_id=ctx.contact.id or 0)
    if answered is not None:
        booking, series = answered
        conversation = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
        if conversation is None:
            return _open_booking_case(session, booking=booking, series=series, account=ctx.account), True
        return reopen_if_resolved(conversation, ctx.settings, force=True), False
    continued = current_conversation(
        session, account=ctx.account, contact=ctx.contact, thread_key=ctx.inbound.thread_key,
        email_parents=ctx.inbound.in_reply_to,
    )  # fmt: skip
    if continued is not None:
        return None
    for booking, _ in upcoming:
        conversation = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
        if conversation is not None and conversation.status != "resolved":
            return conversation, False
    return None


def answers_a_booking(ctx: InboundContext) -> bool:
    """Whether the message answers one the hub sent about an upcoming booking of the citizen's."""
    if ctx.contact is None or not ctx.inbound.in_reply_to:
        return False
    upcoming = _upcoming_bookings(ctx.session, contact_id=ctx.contact.id or 0, now=utcnow())
    return _answered_booking(ctx, upcoming, contact_id=ctx.contact.id or 0) is not None


def _upcoming_bookings(session: Session, *, contact_id: int, now: datetime) -> list[tuple[Booking, ConsultationSeries]]:
    """The contact's live bookings not yet over, of series that take questions, the soonest first."""
    rows = session.exec(
        select(Booking, ConsultationSeries)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(
            Booking.contact_id == contact_id,
            Booking.status == "booked",
            ConsultationSession.status == "scheduled",
            col(ConsultationSlot.ends_at) > now,
            col(ConsultationSeries.questions_allowed).is_(True),
        )
        .order_by(col(ConsultationSlot.starts_at), col(Booking.id))
    ).all()
    return [(booking, series) for booking, series in rows]


def _answered_booking(
    ctx: InboundContext, upcoming: list[tuple[Booking, ConsultationSeries]], *, contact_id: int
) -> tuple[Booking, ConsultationSeries] | None:
    """The booking whose reference the hub's message that this one answers carries, if any."""
    replied_to = ctx.inbound.in_reply_to
    if not replied_to or not upcoming:
        return None
    bodies = ctx.session.exec(
        select(Message.body).where(
            Message.municipality_id == ctx.account.municipality_id,
            Message.contact_id == contact_id,
            Message.direction == "outbound",
            or_(col(Message.email_message_id).in_(replied_to), col(Message.provider_id).in_(replied_to)),
        )
    ).all()
    return next(
        ((booking, series) for booking, series in upcoming if any(booking.reference in body for body in bodies)), None
    )


def conversations_with_bookings(session: Session, conversation_ids: Collection[int]) -> list[int]:
    """Which of the conversations a booking's concern opened: the booking, its reminders and the citizen's answers
    to them point at that case, so the inbox does not merge it away."""
    return [
        conversation_id
        for conversation_id in session.exec(
            select(Booking.conversation_id).where(col(Booking.conversation_id).in_(conversation_ids))
        ).all()
        if conversation_id is not None
    ]


# Why the inbox's bulk merge leaves a booking's conversation alone (hub.inbox.bulk.register_merge_hold).
KEPT_BY_BOOKING = N_(
    "{references} gehört zu einer Terminbuchung und bleibt bei ihr; Anliegen mit Terminbuchung lassen sich nicht "
    "zusammenführen."
)
