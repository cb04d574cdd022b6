"""Tables of consultation hours: a series, the sessions its recurrence yields, their slots, and bookings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow
from hub.i18n import N_

LOCATIONS = ("video", "phone", "in_person")
# What staff and calendars read for each, German msgids.
LOCATION_LABELS = {"video": N_("Videogespräch"), "phone": N_("Telefon"), "in_person": N_("Vor Ort")}
BOOKING_STATES = ("booked", "cancelled", "no_show", "attended")
BOOKING_LABELS = {
    "booked": N_("gebucht"), "cancelled": N_("abgesagt"), "no_show": N_("nicht erschienen"),
    "attended": N_("erschienen"),
}  # fmt: skip


class ConsultationSeries(SQLModel, table=True):
    """Office hours that recur: who holds them, where, when (an RRULE in the town's time zone), and how they are booked.

    Each occurrence is a session from `start_time` to `end_time` local time, cut into slots of
    `slot_minutes` (the whole session for an open one) that take `capacity` citizens each.
    """

    __tablename__ = "consultation_series"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    host_user_id: int | None = Field(default=None, foreign_key="staffuser.id")
    host_team_id: int | None = Field(default=None, foreign_key="team.id")
    location: str = Field(default="video", max_length=16, description="video, phone or in_person")
    address: str | None = Field(default=None, max_length=300, description="Where, for in_person.")
    first_day: date = Field(description="The first day the recurrence may fall on.")
    start_time: str = Field(max_length=5, description="HH:MM, the town's local time.")
    end_time: str = Field(max_length=5, description="HH:MM, the town's local time, after start_time.")
    rrule: str = Field(max_length=500, description="RFC 5545 RRULE without DTSTART, e.g. FREQ=MONTHLY;BYDAY=1TU.")
    exdates: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"),
        description="ISO days the recurrence skips.",
    )  # fmt: skip
    rdates: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"),
        description="ISO days of extra sessions, at the usual time.",
    )  # fmt: skip
    slot_minutes: int = Field(default=15)
    capacity: int = Field(default=1, description="Citizens per slot: 1 for appointments, more for open sessions.")
    opens_days_before: int = Field(default=30)
    closes_hours_before: int = Field(default=2)
    questions_allowed: bool = Field(default=True)
    reminder_hours: list[int] = Field(
        default_factory=lambda: [24, 1], sa_column=Column(JSON, nullable=False, server_default="[24, 1]"),
        description="How many hours before a booked slot the citizen is reminded, each time once.",
    )  # fmt: skip
    topic_id: int | None = Field(default=None, foreign_key="topic.id", description="Whose subscribers hear of it.")
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConsultationSession(SQLModel, table=True):
    """One occurrence of a series, in UTC; written when it first comes within the booking window."""

    __tablename__ = "consultation_session"
    __table_args__ = (UniqueConstraint("series_id", "starts_at", name="uq_consultation_session_start"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    series_id: int = Field(foreign_key="consultation_series.id", index=True)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    status: str = Field(default="scheduled", max_length=16, description="scheduled or cancelled")
    moved_from: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="The occurrence it stands for, once staff moved it elsewhere."
    )
    recording_url: str | None = Field(
        default=None, max_length=500, description="Where the held session can be watched."
    )
    recording_broadcast_id: int | None = Field(
        default=None, foreign_key="broadcast.id", description="The announcement of the recording to the series' topic."
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConsultationSlot(SQLModel, table=True):
    """A bookable part of a session; `booked` counts its live bookings and never exceeds `capacity`."""

    __tablename__ = "consultation_slot"
    __table_args__ = (UniqueConstraint("session_id", "starts_at", name="uq_consultation_slot_start"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="consultation_session.id", index=True)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    capacity: int
    booked: int = Field(default=0)


class Booking(SQLModel, table=True):
    """A citizen's place in a slot. One live booking per citizen and session (a partial unique index)."""

    __table_args__ = (
        Index(
            "uq_booking_live_per_session", "session_id", "contact_id", unique=True,
            postgresql_where=text("status = 'booked'"), sqlite_where=text("status = 'booked'"),
        ),
        UniqueConstraint("municipality_id", "reference", name="uq_booking_reference"),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    session_id: int = Field(foreign_key="consultation_session.id", index=True)
    slot_id: int = Field(foreign_key="consultation_slot.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    reference: str = Field(max_length=32, description="What the citizen quotes, e.g. T-2026-00007.")
    name: str = Field(max_length=200)
    concern: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default="booked", max_length=16, description="booked, cancelled, no_show or attended")
    staff_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    conversation_id: int | None = Field(
        default=None, foreign_key="conversation.id", description="The inbox case the concern given at booking opened."
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class BookingReminder(SQLModel, table=True):
    """A reminder sent for a booking, at most one per booking and lead time (a unique key), with its message.

    Without one, `not_sent` says why: no channel that reaches the citizen could carry it.
    """

    __tablename__ = "booking_reminder"
    __table_args__ = (UniqueConstraint("booking_id", "hours_before", name="uq_booking_reminder_once"),)

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="booking.id", index=True)
    hours_before: int
    message_id: int | None = Field(default=None, foreign_key="message.id")
    not_sent: str | None = Field(default=None, max_length=300, description="Why no channel took it, for staff.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CalendarFeed(SQLModel, table=True):
    """The unguessable token of an iCalendar feed: one per series, or one per host for all the series they hold."""

    __tablename__ = "consultation_calendar_feed"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    series_id: int | None = Field(default=None, foreign_key="consultation_series.id", unique=True)
    host_user_id: int | None = Field(default=None, foreign_key="staffuser.id", unique=True)
    token: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConsultationOffer(SQLModel, table=True):
    """What a citizen was last offered on one channel account, so that their answer ("2", a button) can be matched.

    `choices` are the ids the answers 1, 2, … stand for: series to pick from, slots to book or
    bookings to cancel; an offer waiting for the citizen's name holds the one slot they chose.
    One per contact and channel account (a unique key): a new offer replaces the last one.
    """

    __tablename__ = "consultation_offer"
    __table_args__ = (UniqueConstraint("contact_id", "channel_account_id", name="uq_consultation_offer_per_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel_account_id: int = Field(foreign_key="channelaccount.id")
    purpose: str = Field(max_length=16, description="series, slots, cancel or name")
    choices: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    concern: str | None = Field(default=None, sa_column=Column(Text, nullable=True), description="What a mail asked.")
    expires_at: datetime = Field(sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


WAITING_STATES = ("waiting", "called", "done", "no_show")


class VideoPlatformAccount(SQLModel, table=True):
    """The town's video platform, one per town: its kind, what may be shown (`config`) and its `secrets`.

    Like a channel account's, the secrets are kept apart from the settings and never shown back.
    """

    __tablename__ = "consultation_video_platform"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", unique=True)
    kind: str = Field(max_length=32)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class VideoRoom(SQLModel, table=True):
    """A room on the town's platform: one per booking, or one per session for an open session (capacity > 1).

    It keeps what the platform's Room holds, so that links can be made whenever they are handed out.
    """

    __tablename__ = "consultation_video_room"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    booking_id: int | None = Field(default=None, foreign_key="booking.id", unique=True)
    session_id: int | None = Field(default=None, foreign_key="consultation_session.id", unique=True)
    kind: str = Field(max_length=32)
    room_id: str = Field(max_length=128)
    title: str = Field(max_length=200)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    max_participants: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class WaitingRoomEntry(SQLModel, table=True):
    """A checked-in citizen in a department's waiting room (`team_id`; none: the series' own room).

    `queued_at` orders the queue and is kept when the citizen is forwarded; the timestamps of
    checking in, being called and being done are what waiting-time reports read.
    """

    __tablename__ = "consultation_waiting_entry"
    __table_args__ = (Index("ix_consultation_waiting_queue", "municipality_id", "team_id", "status", "queued_at"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id")
    booking_id: int = Field(foreign_key="booking.id", unique=True)
    series_id: int = Field(foreign_key="consultation_series.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    status: str = Field(default="waiting", max_length=16, description="waiting, called, done or no_show")
    queued_at: datetime = Field(sa_type=UtcDateTime)
    checked_in_at: datetime = Field(sa_type=UtcDateTime)
    called_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    called_by_id: int | None = Field(default=None, foreign_key="staffuser.id")
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    forwarded_from_team_id: int | None = Field(default=None, foreign_key="team.id")


class FeedbackRequest(SQLModel, table=True):
    """The one feedback request after a booking's consultation or a resolved conversation (a unique key each).

    Written in the transaction that queues its message, as a reminder is. `channel_account_id`
    is where it went: a digit in reply counts only there.
    """

    __tablename__ = "feedback_request"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    booking_id: int | None = Field(default=None, foreign_key="booking.id", unique=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", unique=True)
    channel_account_id: int = Field(foreign_key="channelaccount.id")
    message_id: int | None = Field(default=None, foreign_key="message.id")
    not_sent: str | None = Field(default=None, max_length=300, description="Why no channel took it, for staff.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Feedback(SQLModel, table=True):
    """A citizen's answer to a feedback request, one per request (a unique key): a rating, resolved or not, a text.

    A digit sent in reply gives the rating alone (`completed_at` empty); the form then may add
    the rest once, and a form sent is final.
    """

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    request_id: int = Field(foreign_key="feedback_request.id", unique=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    rating: int = Field(description="1 (not at all satisfied) to 5 (very satisfied)")
    resolved: bool | None = Field(default=None, description="Whether the citizen's concern was resolved, if they said.")
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    channel: str = Field(max_length=16, description="web, or the kind of channel the digit came on")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="When the form was sent.")
