"""The consultations' part of a citizen's data: their bookings, with the name and concern they gave, and their waits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from hub.consultations import service
from hub.consultations.models import Booking, WaitingRoomEntry
from hub.contacts.registry import ERASED, Erasure, PersonalData, plain


def export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    bookings = session.exec(
        select(Booking)
        .where(Booking.municipality_id == municipality_id, Booking.contact_id == contact_id)
        .order_by(col(Booking.created_at), col(Booking.id))
    ).all()
    waits = session.exec(
        select(WaitingRoomEntry).where(col(WaitingRoomEntry.booking_id).in_([booking.id for booking in bookings]))
    ).all()
    return {"bookings": [plain(booking) for booking in bookings], "waiting_rooms": [plain(wait) for wait in waits]}


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    """The bookings stay, so that a session's places still add up; what the citizen said in them goes."""
    theirs = (col(Booking.municipality_id) == erasure.municipality_id, col(Booking.contact_id).in_(erasure.contact_ids))
    session.execute(update(Booking).where(*theirs).values(name=ERASED))
    session.execute(update(Booking).where(*theirs, col(Booking.concern).is_not(None)).values(concern=ERASED))
    session.execute(update(Booking).where(*theirs, col(Booking.staff_note).is_not(None)).values(staff_note=ERASED))
    # A forward's note may say what the citizen came for.
    session.execute(
        update(WaitingRoomEntry)
        .where(col(WaitingRoomEntry.booking_id).in_(select(Booking.id).where(*theirs)),
               col(WaitingRoomEntry.note).is_not(None))
        .values(note=ERASED)
    )  # fmt: skip
    return {}


def merge(session: Session, municipality_id: int, target_id: int, source_id: int) -> None:
    """Moves the bookings; one person holds one place per session, so a second live one there is cancelled."""
    held = set(
        session.exec(
            select(Booking.session_id).where(
                Booking.municipality_id == municipality_id, Booking.contact_id == target_id, Booking.status == "booked"
            )
        ).all()
    )
    for booking in session.exec(
        select(Booking).where(Booking.municipality_id == municipality_id, Booking.contact_id == source_id)
    ).all():
        if booking.status == "booked" and booking.session_id in held:
            assert booking.id is not None
            service.cancel(session, municipality_id=municipality_id, booking_id=booking.id)
    session.execute(
        update(Booking)
        .where(col(Booking.municipality_id) == municipality_id, col(Booking.contact_id) == source_id)
        .values(contact_id=target_id)
    )


PERSONAL_DATA = PersonalData(name="consultations", export=export, erase=erase, merge=merge)
