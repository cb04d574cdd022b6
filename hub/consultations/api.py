"""JSON routes for consultation hours: series, their upcoming sessions with bookings, and booking for a citizen."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.consultations import recording, service, sessions
from hub.consultations.models import Booking, ConsultationSeries
from hub.db import get_session
from hub.tenancy.auth import require_permission
from hub.tenancy.models import Municipality, StaffUser
from workers.app import enqueue_send

router = APIRouter(prefix="/api/v1/consultations", tags=["consultations"])


class SeriesIn(BaseModel):
    title: str = Field(max_length=200)
    rrule: str = Field(max_length=500, description="RFC 5545 RRULE without DTSTART, e.g. FREQ=MONTHLY;BYDAY=1TU.")
    first_day: date
    start_time: str = Field(description="HH:MM, the town's local time.")
    end_time: str = Field(description="HH:MM, the town's local time.")
    description: str = Field(default="", max_length=5000)
    host_user_id: int | None = None
    host_team_id: int | None = None
    location: str = Field(default="video", description="video, phone or in_person")
    address: str | None = Field(default=None, max_length=300)
    slot_minutes: int = 15
    capacity: int = 1
    opens_days_before: int = 30
    closes_hours_before: int = 2
    questions_allowed: bool = True
    exdates: list[str] = Field(default_factory=list, description="ISO days the recurrence skips.")
    rdates: list[str] = Field(default_factory=list, description="ISO days of extra sessions.")
    topic_id: int | None = Field(default=None, description="The topic whose subscribers hear of the series.")


class SeriesOut(SeriesIn):
    id: int
    active: bool


class BookingIn(BaseModel):
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    concern: str | None = Field(default=None, max_length=5000)


class BookingOut(BaseModel):
    id: int
    reference: str
    slot_id: int
    contact_id: int
    name: str
    concern: str | None
    conversation_id: int | None = Field(description="The inbox case the concern opened, for staff to prepare.")
    status: str
    created_at: datetime


class SlotOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    free: int
    bookings: list[BookingOut]


class SessionOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    free: int
    slots: list[SlotOut]


def _series_out(series: ConsultationSeries) -> SeriesOut:
    return SeriesOut.model_validate(series, from_attributes=True)


def _booking_out(booking: Booking) -> BookingOut:
    return BookingOut.model_validate(booking, from_attributes=True)


def _town(session: Session, user: StaffUser) -> Municipality:
    town = session.get(Municipality, user.municipality_id)
    assert town is not None
    return town


@router.get("/series", response_model=list[SeriesOut])
def list_series(
    user: StaffUser = Depends(require_permission("consultations.read")), session: Session = Depends(get_session)
) -> list[SeriesOut]:
    return [_series_out(series) for series in service.list_series(session, municipality_id=user.municipality_id)]


@router.post("/series", response_model=SeriesOut, status_code=201)
def define_series(
    body: SeriesIn,
    user: StaffUser = Depends(require_permission("consultations.define")),
    session: Session = Depends(get_session),
) -> SeriesOut:
    series = service.define_series(
        session, municipality=_town(session, user), draft=service.SeriesDraft(**body.model_dump())
    )
    session.commit()
    return _series_out(series)


@router.get("/series/{series_id}/sessions", response_model=list[SessionOut])
def upcoming_sessions(
    series_id: int,
    user: StaffUser = Depends(require_permission("consultations.read")),
    session: Session = Depends(get_session),
) -> list[SessionOut]:
    """The sessions open for booking, with each slot's free places and bookings."""
    series = service.get_series(session, municipality_id=user.municipality_id, series_id=series_id)
    views = service.upcoming(session, series=series, municipality=_town(session, user))
    return [
        SessionOut(
            id=view.session.id, starts_at=view.session.starts_at, ends_at=view.session.ends_at,
            status=view.session.status, free=view.free,
            slots=[
                SlotOut(
                    id=slot.slot.id, starts_at=slot.slot.starts_at, ends_at=slot.slot.ends_at,
                    capacity=slot.slot.capacity, free=slot.slot.capacity - slot.slot.booked,
                    bookings=[_booking_out(booking) for booking in slot.bookings],
                )
                for slot in view.slots
            ],
        )
        for view in views
    ]  # fmt: skip


@router.post("/slots/{slot_id}/bookings", response_model=BookingOut, status_code=201)
def book_for_citizen(
    slot_id: int,
    body: BookingIn,
    user: StaffUser = Depends(require_permission("consultations.write")),
    session: Session = Depends(get_session),
) -> BookingOut:
    """Books a place for a citizen who called or came in; they are found or added by phone or email."""
    booking = service.book_for(
        session, municipality=_town(session, user), slot_id=slot_id, name=body.name, phone=body.phone,
        email=body.email, concern=body.concern,
    )  # fmt: skip
    session.commit()
    return _booking_out(booking)


@router.delete("/bookings/{booking_id}", response_model=BookingOut)
def cancel_booking(
    booking_id: int,
    user: StaffUser = Depends(require_permission("consultations.write")),
    session: Session = Depends(get_session),
) -> BookingOut:
    booking = service.cancel(session, municipality_id=user.municipality_id, booking_id=booking_id)
    session.commit()
    return _booking_out(booking)


class MoveIn(BaseModel):
    day: date = Field(description="The new day, in the town's calendar.")
    start_time: str = Field(description="HH:MM, the town's local time; the session keeps its length.")


class SessionChangeOut(BaseModel):
    id: int
    status: str
    starts_at: datetime
    ends_at: datetime
    told: int = Field(description="Booked citizens a message was queued to.")
    unreached: list[str] = Field(description="References of bookings whose citizen no channel reaches: call them.")


def _changed(session: Session, user: StaffUser, session_id: int, told: sessions.Told) -> SessionChangeOut:
    """Commits the change with its messages, then hands the messages to the workers."""
    session.commit()
    for message_id in told.message_ids:
        enqueue_send(message_id)
    held = sessions.get_session(session, municipality_id=user.municipality_id, session_id=session_id)
    assert held.id is not None
    return SessionChangeOut(
        id=held.id, status=held.status, starts_at=held.starts_at, ends_at=held.ends_at, told=len(told.message_ids),
        unreached=[booking.reference for booking in told.unreached],
    )  # fmt: skip


@router.post("/sessions/{session_id}/cancel", response_model=SessionChangeOut)
def cancel_session(
    session_id: int,
    user: StaffUser = Depends(require_permission("consultations.write")),
    session: Session = Depends(get_session),
) -> SessionChangeOut:
    """Cancels the session and its bookings; each booked citizen is told and offered the next free slots."""
    told = sessions.cancel_session(session, municipality=_town(session, user), session_id=session_id)
    return _changed(session, user, session_id, told)


@router.post("/sessions/{session_id}/move", response_model=SessionChangeOut)
def move_session(
    session_id: int,
    body: MoveIn,
    user: StaffUser = Depends(require_permission("consultations.write")),
    session: Session = Depends(get_session),
) -> SessionChangeOut:
    """Moves the session with its bookings to another day and time; each booked citizen is told."""
    told = sessions.move_session(
        session, municipality=_town(session, user), session_id=session_id, day=body.day, start_time=body.start_time
    )
    return _changed(session, user, session_id, told)


class RecordingIn(BaseModel):
    url: str = Field(max_length=2000, description="The http(s) link where the held session can be watched.")


class RecordingOut(BaseModel):
    session_id: int
    recording_url: str
    broadcast_id: int = Field(description="The announcement to the series' topic, waiting for a leader's approval.")
    broadcast_status: str


@router.post("/sessions/{session_id}/recording", response_model=RecordingOut, status_code=201)
def publish_recording(
    session_id: int,
    body: RecordingIn,
    user: StaffUser = Depends(require_permission("consultations.write")),
    session: Session = Depends(get_session),
) -> RecordingOut:
    """Stores the recording link of a held session and submits its announcement to the series' topic for approval."""
    announced = recording.publish_recording(
        session, actor=user, municipality=_town(session, user), session_id=session_id, url=body.url
    )
    session.commit()
    assert announced.id is not None
    return RecordingOut(session_id=session_id, recording_url=body.url.strip(), broadcast_id=announced.id,
                        broadcast_status=announced.status)  # fmt: skip
