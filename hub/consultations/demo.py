"""The demo town's consultation hours: the mayor's, the building office's, and video hours with a waiting citizen."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from hub.consultations import service, waiting
from hub.consultations.models import ConsultationSession, ConsultationSlot
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.tenancy.models import Municipality, StaffUser, Team

WAITING_CITIZEN = ("+4915112340003", "Jana Schulz", "Wie beantrage ich einen Anwohnerparkausweis?")
DEMO_CITIZENS = (("+4915112340001", "Erika Mustermann", "Parken am Marktplatz"), ("+4915112340002", "Max Meier", None))


def seed_consultation_demo(session: Session, municipality: Municipality) -> None:
    assert municipality.id is not None
    mayor = session.exec(
        select(StaffUser).where(StaffUser.municipality_id == municipality.id, StaffUser.role == "mayor")
    ).first()
    building = session.exec(select(Team).where(Team.municipality_id == municipality.id, Team.name == "Bauamt")).first()
    assert mayor is not None and building is not None
    today = utcnow().date()
    office_hours = service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
        title="Bürgermeistersprechstunde", description="Fragen und Anliegen direkt an die Bürgermeisterin.",
        rrule="FREQ=WEEKLY;BYDAY=TU", first_day=today, start_time="17:00", end_time="19:00", slot_minutes=15,
        host_user_id=mayor.id, location="video",
    ))  # fmt: skip
    service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
        title="Offene Sprechstunde Bauamt", description="Bauanträge, Baugenehmigungen, Nachbarschaftsfragen.",
        rrule="FREQ=MONTHLY;BYDAY=1TH", first_day=today, start_time="15:00", end_time="17:00", slot_minutes=120,
        capacity=10, host_team_id=building.id, location="in_person", address="Rathaus, Zimmer 112",
    ))  # fmt: skip
    service.ensure_sessions(session, series=office_hours, municipality=municipality)
    for (phone, name, concern), free in zip(
        DEMO_CITIZENS, service.free_slots(session, series=office_hours), strict=False
    ):
        contact = resolve_contact(
            session, municipality_id=municipality.id, kind="phone", address=phone, display_name=name
        )
        assert contact.id is not None
        service.book(session, municipality=municipality, slot_id=free.slot_id, contact_id=contact.id, name=name,
                     concern=concern)  # fmt: skip
    session.commit()
    seed_waiting_room(session, municipality)


def seed_waiting_room(session: Session, municipality: Municipality) -> None:
    """The citizens' office's open video hours every day, and a citizen checked in to today's (or the next)."""
    assert municipality.id is not None
    office = session.exec(
        select(Team).where(Team.municipality_id == municipality.id, Team.name == "Bürgerbüro")
    ).first()
    assert office is not None
    now = utcnow()
    video_hours = service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
        title="Offene Video-Sprechstunde Bürgerbüro", description="Ausweise, Meldewesen, Bescheinigungen.",
        rrule="FREQ=DAILY", first_day=now.date() - timedelta(days=1), start_time="08:00", end_time="18:00",
        slot_minutes=600, capacity=20, closes_hours_before=0, host_team_id=office.id, location="video",
    ))  # fmt: skip
    # Written as of a day ago, so that today's session is there even once it has begun.
    service.ensure_sessions(session, series=video_hours, municipality=municipality, now=now - timedelta(days=1))
    held = session.exec(
        select(ConsultationSession)
        .where(ConsultationSession.series_id == video_hours.id, col(ConsultationSession.ends_at) > now)
        .order_by(col(ConsultationSession.starts_at))
    ).first()
    slot = (
        session.exec(select(ConsultationSlot).where(ConsultationSlot.session_id == held.id)).first() if held else None
    )
    assert held is not None and slot is not None
    phone, name, concern = WAITING_CITIZEN
    contact = resolve_contact(session, municipality_id=municipality.id, kind="phone", address=phone, display_name=name)
    assert contact.id is not None
    booking = service.book(session, municipality=municipality, slot_id=slot.id or 0, contact_id=contact.id,
                           name=name, concern=concern, now=slot.starts_at - timedelta(hours=1))  # fmt: skip
    waiting.check_in(session, booking=booking, now=min(max(now, slot.starts_at), slot.ends_at))
    session.commit()
