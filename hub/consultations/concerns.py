"""A concern given at booking becomes a case in the inbox, assigned to the series' host, so staff can prepare."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from hub.consultations.models import Booking, ConsultationSeries
from hub.consultations.reminders import reminder_account
from hub.db import utcnow
from hub.inbox.models import Conversation, Message
from hub.inbox.service import open_conversation
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
    conversation = open_conversation(
        session, account=account, contact_id=booking.contact_id, subject=f"{series.title} ({booking.reference})"
    )
    assert conversation.id is not None
    session.add(
        Message(
            municipality_id=booking.municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="inbound", body=booking.concern, created_at=moment,
        )
    )  # fmt: skip
    # The response clock runs from the concern, as it would from a message.
    conversation.last_inbound_at = conversation.last_activity_at = moment
    conversation.team_id, conversation.assignee_id = series.host_team_id, series.host_user_id
    booking.conversation_id = conversation.id
    session.flush()
    return conversation
