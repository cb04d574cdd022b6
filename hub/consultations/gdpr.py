"""The consultations' part of a citizen's data: their bookings, with the name and concern they gave, and their waits.

Erasure and the retention period blank the same texts: what a citizen erased, or what is older
than the town keeps, goes; the bookings stay, so that a session's places and the reports add up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from hub.consultations import service
from hub.consultations.models import Booking, ConsultationSlot, WaitingRoomEntry
from hub.contacts.registry import ERASED, Erasure, PersonalData, plain
from hub.db import utcnow
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference


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


def _blank(session: Session, *which: ColumnElement[bool]) -> int:
    """Blanks the name, concern and staff note of the bookings `which` selects, and their waits' notes."""
    blanked = session.execute(update(Booking).where(*which, col(Booking.name) != ERASED).values(name=ERASED))
    # (A comparison with NULL is never true: an empty concern or note stays empty.)
    session.execute(update(Booking).where(*which, col(Booking.concern) != ERASED).values(concern=ERASED))
    session.execute(update(Booking).where(*which, col(Booking.staff_note) != ERASED).values(staff_note=ERASED))
    # A forward's note may say what the citizen came for.
    session.execute(
        update(WaitingRoomEntry)
        .where(col(WaitingRoomEntry.booking_id).in_(select(Booking.id).where(*which)),
               col(WaitingRoomEntry.note) != ERASED)
        .values(note=ERASED)
    )  # fmt: skip
    return int(blanked.rowcount)  # type: ignore[attr-defined]


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    _blank(session, col(Booking.municipality_id) == erasure.municipality_id,
           col(Booking.contact_id).in_(erasure.contact_ids))  # fmt: skip
    return {}


def apply_booking_retention(session: Session, *, now: datetime | None = None) -> int:
    """Blanks the bookings whose appointment ended longer ago than each town's retention period; returns how many."""
    now = now or utcnow()
    blanked = 0
    for municipality in session.exec(select(Municipality)).all():
        days = preference(municipality, "retention_days")
        if not days:
            continue
        ended = select(ConsultationSlot.id).where(col(ConsultationSlot.ends_at) < now - timedelta(days=int(days)))
        blanked += _blank(session, col(Booking.municipality_id) == municipality.id, col(Booking.slot_id).in_(ended))
    return blanked


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
