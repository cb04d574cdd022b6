"""Consultation hours: recurrence across clock changes, sessions written once, bookings that never overbook."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from hub import db
from hub.app import create_app
from hub.consultations import gdpr as consultations_gdpr
from hub.consultations import service
from hub.consultations.models import Booking, ConsultationSession, ConsultationSlot
from hub.consultations.recurrence import occurrences
from hub.contacts import gdpr
from hub.contacts.merge import merge
from hub.contacts.models import Contact, ContactIdentity
from hub.errors import Conflict, InvalidInput, NotFound
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality, StaffUser

# A Monday in November, after the clocks went back.
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def draft(**overrides: object) -> service.SeriesDraft:
    values: dict[str, object] = {
        "title": "Bürgermeistersprechstunde",
        "rrule": "FREQ=WEEKLY;BYDAY=TU",
        "first_day": date(2026, 10, 1),
        "start_time": "17:00",
        "end_time": "19:00",
        "slot_minutes": 15,
        "capacity": 1,
    }
    values.update(overrides)
    return service.SeriesDraft(**values)  # type: ignore[arg-type]


def mayor(session: Session) -> tuple[Municipality, StaffUser]:
    town = tenancy.create_municipality(session, slug="musterstadt", name="Stadt Musterstadt")
    assert town.id is not None
    host = tenancy.create_user(session, municipality_id=town.id, email="bm@example.org", name="Maria", role="mayor")
    session.commit()
    return town, host


def citizens(session: Session, town: Municipality, count: int) -> list[int]:
    people = [Contact(municipality_id=town.id, display_name=f"Person {n}") for n in range(count)]  # type: ignore[arg-type]
    session.add_all(people)
    session.commit()
    return [person.id for person in people if person.id is not None]


def free_slot_ids(session: Session, series_id: int, town: Municipality) -> list[int]:
    series = service.get_series(session, municipality_id=town.id, series_id=series_id)  # type: ignore[arg-type]
    service.ensure_sessions(session, series=series, municipality=town, now=NOW)
    return [free.slot_id for free in service.free_slots(session, series=series, now=NOW)]


# Recurrence


def test_the_first_tuesday_at_five_stays_at_five_local_time_across_the_clock_change() -> None:
    found = occurrences(
        rule="FREQ=MONTHLY;BYDAY=1TU", first_day=date(2026, 9, 1), start_time="17:00", end_time="19:00",
        exdates=[], rdates=[], timezone="Europe/Berlin", between=(date(2026, 9, 1), date(2026, 12, 31)),
    )  # fmt: skip
    assert [(o.starts_at, o.ends_at - o.starts_at) for o in found] == [
        (datetime(2026, 9, 1, 15, 0, tzinfo=UTC), timedelta(hours=2)),  # summer time: UTC+2
        (datetime(2026, 10, 6, 15, 0, tzinfo=UTC), timedelta(hours=2)),
        (datetime(2026, 11, 3, 16, 0, tzinfo=UTC), timedelta(hours=2)),  # winter time: UTC+1
        (datetime(2026, 12, 1, 16, 0, tzinfo=UTC), timedelta(hours=2)),
    ]


def test_exceptions_and_extra_days_are_kept() -> None:
    found = occurrences(
        rule="FREQ=MONTHLY;BYDAY=1TU", first_day=date(2026, 9, 1), start_time="17:00", end_time="19:00",
        exdates=["2026-10-06"], rdates=["2026-10-15"], timezone="Europe/Berlin",
        between=(date(2026, 9, 1), date(2026, 10, 31)),
    )  # fmt: skip
    assert [o.starts_at.date() for o in found] == [date(2026, 9, 1), date(2026, 10, 15)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rrule": "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "start_time": "02:30", "end_time": "03:30"},
         "Am 28.03.2027 gibt es 02:30 Uhr nicht"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "keine gültige RRULE"),
        ({"rrule": "FREQ=HOURLY"}, "höchstens täglich"),
        ({"start_time": "19:00", "end_time": "17:00"}, "muss nach dem Beginn"),
        ({"start_time": "25:00"}, "keine Uhrzeit"),
        ({"exdates": ["6.10.2026"]}, "kein Datum"),
        ({"slot_minutes": 180}, "passt nicht in die Sprechstunde"),
        ({"capacity": 0}, "Plätze je Termin"),
        ({"title": "  "}, "Titel"),
        ({"location": "in_person"}, "Adresse"),
    ],
)  # fmt: skip
def test_a_series_that_cannot_be_held_is_refused_and_nothing_is_stored(
    session: Session, changes: dict[str, object], message: str
) -> None:
    town, host = mayor(session)
    with pytest.raises(InvalidInput, match=message):
        service.define_series(session, municipality=town, draft=draft(host_user_id=host.id, **changes))
    session.rollback()
    assert session.exec(select(func.count()).select_from(ConsultationSession)).one() == 0


# Sessions and slots


def test_sessions_in_the_booking_window_are_written_once_with_their_slots(session: Session) -> None:
    town, host = mayor(session)
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    first = service.ensure_sessions(session, series=series, municipality=town, now=NOW)
    again = service.ensure_sessions(session, series=series, municipality=town, now=NOW)

    # Tuesdays within 30 days of Monday 2 November.
    assert [s.starts_at.date() for s in first] == [date(2026, 11, 3), date(2026, 11, 10), date(2026, 11, 17),
                                                   date(2026, 11, 24), date(2026, 12, 1)]  # fmt: skip
    assert [s.id for s in again] == [s.id for s in first]
    slots = session.exec(select(ConsultationSlot).where(ConsultationSlot.session_id == first[0].id)).all()
    assert len(slots) == 8 and slots[0].starts_at == datetime(2026, 11, 3, 16, 0, tzinfo=UTC)


# Booking


def test_a_taken_place_is_refused_with_the_next_free_ones_and_a_cancelled_one_can_be_booked_again(
    session: Session,
) -> None:
    town, host = mayor(session)
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    slot_ids = free_slot_ids(session, series.id, town)  # type: ignore[arg-type]
    erika, max_ = citizens(session, town, 2)

    booking = service.book(session, municipality=town, slot_id=slot_ids[0], contact_id=erika, name="Erika", now=NOW)
    session.commit()
    # 3 November, 17:15 local time, and the next two.
    with pytest.raises(service.SlotTaken, match=r"Freie Termine: 03\.11\.2026 17:15, 03\.11\.2026 17:30, 03") as taken:
        service.book(session, municipality=town, slot_id=slot_ids[0], contact_id=max_, name="Max", now=NOW)
    assert [free.slot_id for free in taken.value.alternatives] == slot_ids[1:4]

    service.cancel(session, municipality_id=town.id, booking_id=booking.id, now=NOW)  # type: ignore[arg-type]
    session.commit()
    again = service.book(session, municipality=town, slot_id=slot_ids[0], contact_id=max_, name="Max", now=NOW)
    session.commit()
    assert again.reference.startswith("A-") and again.reference != booking.reference
    assert session.get(ConsultationSlot, slot_ids[0]).booked == 1  # type: ignore[union-attr]


def test_one_citizen_holds_one_place_per_session(session: Session) -> None:
    town, host = mayor(session)
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    slot_ids = free_slot_ids(session, series.id, town)  # type: ignore[arg-type]
    [erika] = citizens(session, town, 1)
    service.book(session, municipality=town, slot_id=slot_ids[0], contact_id=erika, name="Erika", now=NOW)
    session.commit()

    with pytest.raises(Conflict, match="schon einen Termin"):
        service.book(session, municipality=town, slot_id=slot_ids[1], contact_id=erika, name="Erika", now=NOW)

    assert session.exec(select(func.count()).select_from(Booking)).one() == 1
    assert session.get(ConsultationSlot, slot_ids[1]).booked == 0  # type: ignore[union-attr]
    # Next week's session is another session.
    next_week = slot_ids[8]  # eight slots a session
    service.book(session, municipality=town, slot_id=next_week, contact_id=erika, name="Erika", now=NOW)


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        (datetime(2026, 11, 3, 17, 0, tzinfo=UTC), InvalidInput, "in der Vergangenheit"),
        (datetime(2026, 11, 3, 15, 0, tzinfo=UTC), Conflict, "Buchung geschlossen"),
        (datetime(2026, 9, 1, 9, 0, tzinfo=UTC), Conflict, "erst 30 Tage vorher"),
    ],
)
def test_a_slot_outside_the_booking_window_is_refused(
    session: Session, now: datetime, error: type[Exception], message: str
) -> None:
    town, host = mayor(session)
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    first = free_slot_ids(session, series.id, town)[0]  # type: ignore[arg-type]  # 3 November, 16:00 UTC
    [erika] = citizens(session, town, 1)
    with pytest.raises(error, match=message):
        service.book(session, municipality=town, slot_id=first, contact_id=erika, name="Erika", now=now)


def test_an_unknown_slot_or_one_of_another_town_is_not_found(session: Session) -> None:
    town, host = mayor(session)
    other = tenancy.create_municipality(session, slug="nachbarort", name="Nachbarort")
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    slot_id = free_slot_ids(session, series.id, town)[0]  # type: ignore[arg-type]
    [erika] = citizens(session, town, 1)
    for municipality, slot in ((town, 999_999), (other, slot_id)):
        with pytest.raises(NotFound):
            service.book(session, municipality=municipality, slot_id=slot, contact_id=erika, name="E", now=NOW)


# Many at once, on both backends


@pytest.fixture
def any_backend(backend_settings: Settings) -> None:
    """A migrated database of each backend (conftest's backend_settings), for tests that reach it through hub.db."""


def test_two_hundred_citizens_booking_twenty_places_at_once_get_exactly_twenty(any_backend: None) -> None:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        town, host = mayor(session)
        series = service.define_series(
            session, municipality=town, draft=draft(host_user_id=host.id, slot_minutes=120, capacity=20)
        )
        session.commit()
        [slot_id] = free_slot_ids(session, series.id, town)[:1]  # type: ignore[arg-type]
        people = citizens(session, town, 200)

    def book(contact_id: int) -> str:
        with Session(db.get_engine(), expire_on_commit=False) as own:
            try:
                service.book(own, municipality=town, slot_id=slot_id, contact_id=contact_id, name="B", now=NOW)
                own.commit()
            except service.SlotTaken as taken:
                # The others are offered the next free slots.
                return "offered others" if taken.alternatives else "offered nothing"
        return "booked"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(book, people))

    assert outcomes.count("booked") == 20 and outcomes.count("offered others") == 180
    with Session(db.get_engine()) as session:
        assert session.get(ConsultationSlot, slot_id).booked == 20  # type: ignore[union-attr]
        assert session.exec(select(func.count()).select_from(Booking)).one() == 20


# Through the API


def test_the_mayors_office_defines_a_series_and_books_a_caller_by_phone(session: Session) -> None:
    _town, host = mayor(session)
    token = tenancy.create_api_token(session, user=host, name="test")
    session.commit()
    api = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)
    body = {"title": "Bürgermeistersprechstunde", "rrule": "FREQ=WEEKLY;BYDAY=TU", "first_day": "2026-10-01",
            "start_time": "17:00", "end_time": "18:00", "slot_minutes": 30, "host_user_id": host.id}  # fmt: skip

    refused = api.post("/api/v1/consultations/series", json={**body, "rrule": "FREQ=WEEKLY;BYDAY=XX"})
    assert refused.status_code == 422 and "keine gültige RRULE" in refused.json()["detail"]
    created = api.post("/api/v1/consultations/series", json=body)
    assert created.status_code == 201, created.text
    sessions = api.get(f"/api/v1/consultations/series/{created.json()['id']}/sessions").json()
    first_slot = sessions[0]["slots"][0]
    assert len(sessions[0]["slots"]) == 2 and first_slot["free"] == 1

    booked = api.post(f"/api/v1/consultations/slots/{first_slot['id']}/bookings",
                      json={"name": "Erika Muster", "phone": "0151 12345678", "concern": "Parkplätze"})  # fmt: skip
    assert booked.status_code == 201, booked.text
    taken = api.post(f"/api/v1/consultations/slots/{first_slot['id']}/bookings",
                     json={"name": "Max Muster", "email": "max@example.org"})  # fmt: skip
    assert taken.status_code == 409 and "Freie Termine:" in taken.json()["detail"]
    nobody = api.post(f"/api/v1/consultations/slots/{first_slot['id']}/bookings", json={"name": "Ohne"})
    assert nobody.status_code == 422 and "Telefonnummer" in nobody.json()["detail"]

    listed = api.get(f"/api/v1/consultations/series/{created.json()['id']}/sessions").json()
    [booking] = listed[0]["slots"][0]["bookings"]
    assert booking["name"] == "Erika Muster" and booking["concern"] == "Parkplätze"
    identity = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == booking["contact_id"])).one()
    assert identity.address == "+4915112345678"
    assert api.delete(f"/api/v1/consultations/bookings/{booking['id']}").json()["status"] == "cancelled"
    assert api.get(f"/api/v1/consultations/series/{created.json()['id']}/sessions").json()[0]["free"] == 2


# Personal data: bookings join the DSGVO export, erasure and contact merge


def booked(session: Session) -> tuple[Municipality, list[int], list[int]]:
    """A series with Erika's booking in its first slot (with a concern and a staff note); the slots; two citizens."""
    town, host = mayor(session)
    series = service.define_series(session, municipality=town, draft=draft(host_user_id=host.id))
    session.commit()
    slot_ids = free_slot_ids(session, series.id, town)  # type: ignore[arg-type]
    people = citizens(session, town, 2)
    booking = service.book(
        session, municipality=town, slot_id=slot_ids[0], contact_id=people[0], name="Erika Mustermann",
        concern="Bauantrag Lindenstraße 3", now=NOW,
    )  # fmt: skip
    booking.staff_note = "Unterlagen mitbringen lassen"
    session.commit()
    return town, slot_ids, people


def test_the_export_holds_the_citizens_bookings(session: Session) -> None:
    town, _slots, (erika, _max) = booked(session)
    [booking] = gdpr.export_contact(session, town.id, erika)["bookings"]  # type: ignore[arg-type]
    assert (booking["name"], booking["concern"], booking["status"]) == (
        "Erika Mustermann",
        "Bauantrag Lindenstraße 3",
        "booked",
    )
    assert booking["staff_note"] == "Unterlagen mitbringen lassen"


def test_erasure_blanks_a_booking_and_keeps_its_place(session: Session) -> None:
    town, slot_ids, (erika, _max) = booked(session)
    gdpr.erase_contact(session, municipality_id=town.id, contact_id=erika, actor_id=None)  # type: ignore[arg-type]
    session.commit()
    booking = session.exec(select(Booking)).one()
    assert (booking.name, booking.concern, booking.staff_note) == ("[gelöscht]", "[gelöscht]", "[gelöscht]")
    assert booking.status == "booked" and session.get(ConsultationSlot, slot_ids[0]).booked == 1  # type: ignore[union-attr]


def test_after_the_retention_period_a_booking_keeps_its_place_and_loses_what_the_citizen_said(
    session: Session,
) -> None:
    town, slot_ids, (_erika, other) = booked(session)
    later = service.book(session, municipality=town, slot_id=slot_ids[8], contact_id=other, name="Max", now=NOW,
                         concern="Gewerbeanmeldung")  # fmt: skip
    session.commit()
    first, second = session.get(ConsultationSlot, slot_ids[0]), session.get(ConsultationSlot, slot_ids[8])
    assert first is not None and second is not None and first.ends_at < second.ends_at
    town.preferences = {**town.preferences, "retention_days": 30}
    session.commit()
    # Thirty days after the first appointment ended, and before the second one's thirty are over.
    assert consultations_gdpr.apply_booking_retention(session, now=first.ends_at + timedelta(days=30, minutes=1)) == 1
    session.commit()
    kept = {booking.slot_id: booking for booking in session.exec(select(Booking)).all()}
    assert (kept[first.id].name, kept[first.id].concern, kept[first.id].staff_note) == ("[gelöscht]",) * 3
    assert kept[first.id].status == "booked" and first.booked == 1
    assert (kept[second.id].name, kept[second.id].concern) == ("Max", "Gewerbeanmeldung") and later.id
    # Once blanked, a booking is not counted again.
    assert consultations_gdpr.apply_booking_retention(session, now=first.ends_at + timedelta(days=31)) == 0


def test_merging_contacts_moves_their_bookings_and_keeps_one_place_per_session(session: Session) -> None:
    town, slot_ids, (erika, by_phone) = booked(session)
    # The same person booked again by phone, in the same session and next week.
    service.book(session, municipality=town, slot_id=slot_ids[1], contact_id=by_phone, name="E. M.", now=NOW)
    service.book(session, municipality=town, slot_id=slot_ids[8], contact_id=by_phone, name="E. M.", now=NOW)
    session.commit()

    merge(session, municipality_id=town.id, target_id=erika, source_id=by_phone)  # type: ignore[arg-type]
    session.commit()
    bookings = session.exec(select(Booking).order_by(Booking.slot_id)).all()  # type: ignore[arg-type]
    assert {booking.contact_id for booking in bookings} == {erika}
    assert [(booking.slot_id, booking.status) for booking in bookings] == [
        (slot_ids[0], "booked"),
        (slot_ids[1], "cancelled"),
        (slot_ids[8], "booked"),
    ]
    assert session.get(ConsultationSlot, slot_ids[1]).booked == 0  # type: ignore[union-attr]
