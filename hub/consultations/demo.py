"""The demo town's consultation hours: the mayor's weekly ones with two bookings, the building office's open one."""

from __future__ import annotations

from sqlmodel import Session, select

from hub.consultations import service
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.tenancy.models import Municipality, StaffUser, Team

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
