"""Staff running consultation hours: the pages, no-shows and notes, cancelling and moving sessions, calendar feeds.

Every test runs on both backends (SQLite, and PostgreSQL when the machine has it); citizens are
told through the delivery engine and what reached them is read back from the sandbox emulators.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session, col, func, select

from hub import db
from hub.app import create_app
from hub.cli import main
from hub.consultations import calendar, service, sessions
from hub.consultations.models import Booking, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.db import utcnow
from hub.demo import seed_demo
from hub.errors import Conflict, InvalidInput
from hub.inbox.models import Message
from hub.inbox.outbound import send_message
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality
from tests.unit import test_broadcasts as broadcasts
from tests.unit.db import Town as PlainTown
from tests.unit.test_broadcasts import Town, citizen
from tests.unit.web import clerk
from workers.tasks import stop_everywhere

# The broadcast tests' town: an SMS and a Telegram account on the sandbox.
sandbox, town = broadcasts.sandbox, broadcasts.town
# A Tuesday morning in October, five days before the clocks go back (25 October 2026).
NOW = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
ERIKA, TOM_CHAT = "+4915170001111", "421337009"


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_settings


def office_hours(session: Session, town: Town, now: datetime = NOW, **overrides: object) -> ConsultationSeries:
    """The mayor's Tuesday office hours, 17:00 to 18:00 in two slots of 30 minutes, sessions written as of `now`."""
    values: dict[str, object] = {
        "title": "Bürgermeistersprechstunde", "rrule": "FREQ=WEEKLY;BYDAY=TU", "first_day": date(2026, 10, 1),
        "start_time": "17:00", "end_time": "18:00", "slot_minutes": 30, "host_user_id": town.mayor.id,
        "location": "in_person", "address": "Rathaus, Zimmer 1",
    }  # fmt: skip
    values.update(overrides)
    series = service.define_series(session, municipality=town.municipality, draft=service.SeriesDraft(**values))  # type: ignore[arg-type]
    session.commit()
    service.ensure_sessions(session, series=series, municipality=town.municipality, now=now)
    return series


def slots_on(session: Session, series: ConsultationSeries, day: date) -> list[ConsultationSlot]:
    return [
        slot
        for slot in session.exec(
            select(ConsultationSlot)
            .join(ConsultationSession, col(ConsultationSession.id) == ConsultationSlot.session_id)
            .where(ConsultationSession.series_id == series.id)
            .order_by(col(ConsultationSlot.starts_at))
        )
        if slot.starts_at.date() == day
    ]


def book(session: Session, town: Town, slot: ConsultationSlot, name: str, contact_id: int,
         now: datetime = NOW, concern: str | None = None) -> Booking:  # fmt: skip
    assert slot.id is not None
    booking = service.book(session, municipality=town.municipality, slot_id=slot.id, contact_id=contact_id,
                           name=name, concern=concern, now=now)  # fmt: skip
    session.commit()
    return booking


def two_booked(session: Session, town: Town, series: ConsultationSeries, day: date) -> tuple[Booking, Booking]:
    """Erika (by SMS) and Tom (on Telegram) in the two slots of the session on `day`."""
    first, second = slots_on(session, series, day)
    erika = book(session, town, first, "Erika", citizen(session, town, ERIKA))
    tom = book(session, town, second, "Tom", citizen(session, town, TOM_CHAT, kind="telegram"))
    return erika, tom


def deliver(settings: Settings, told: sessions.Told) -> None:
    for message_id in told.message_ids:
        assert send_message(settings, message_id, on_opted_out=stop_everywhere).outcome.startswith("sent as")


def plain(town: Town) -> PlainTown:
    return PlainTown(municipality=town.municipality, accounts={})


# The pages


def test_a_clerk_sees_sessions_and_bookings_marks_a_no_show_and_notes(session: Session, town: Town) -> None:
    three_days_ago = utcnow() - timedelta(days=3)
    series = office_hours(session, town, now=three_days_ago, rrule="FREQ=DAILY", first_day=three_days_ago.date(),
                          start_time="00:30", end_time="01:30", closes_hours_before=0)  # fmt: skip
    past = service.free_slots(session, series=series, now=three_days_ago)[0]
    gone = session.get(ConsultationSlot, past.slot_id)
    assert gone is not None
    erika = book(session, town, gone, "Erika Gast", citizen(session, town, ERIKA), now=three_days_ago,
                 concern="Parken am Markt")  # fmt: skip
    coming = service.free_slots(session, series=series)[0]
    later = session.get(ConsultationSlot, coming.slot_id)
    assert later is not None
    max_ = book(session, town, later, "Max Später", citizen(session, town, "+4915170002222"), now=utcnow())
    person = clerk(session, plain(town), "staff")

    listed = person.get("/app/consultations")
    assert listed.status_code == 200 and "Bürgermeistersprechstunde" in listed.text
    assert 'href="/app/consultations"' in listed.text  # the navigation link
    page = person.get(f"/app/consultations/{series.id}")
    assert page.status_code == 200
    assert "Erika Gast" in page.text and "Parken am Markt" in page.text and "Max Später" in page.text
    assert erika.reference in page.text
    # Whether someone came is asked once their slot has begun.
    assert f"/bookings/{erika.id}/mark" in page.text and f"/bookings/{max_.id}/mark" not in page.text

    marked = person.post(f"/app/consultations/{series.id}/bookings/{erika.id}/mark", {"status": "no_show"},
                         follow_redirects=False)  # fmt: skip
    assert marked.status_code == 303
    noted = person.post(f"/app/consultations/{series.id}/bookings/{erika.id}/note",
                        {"note": "Rückruf vereinbart"}, follow_redirects=True)  # fmt: skip
    assert noted.status_code == 200 and "Die Notiz ist gespeichert." in noted.text
    assert "nicht erschienen" in noted.text and "Rückruf vereinbart" in noted.text
    session.refresh(erika)
    assert (erika.status, erika.staff_note) == ("no_show", "Rückruf vereinbart")

    # Marked too early all the same, the page says why, in English too.
    early = person.post(f"/app/consultations/{series.id}/bookings/{max_.id}/mark?lang=en", {"status": "no_show"})
    assert early.status_code == 422 and "only once the appointment has begun" in early.text
    session.refresh(max_)
    assert max_.status == "booked"


def test_the_bookings_csv_has_a_row_per_booking(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    erika, tom = two_booked(session, town, series, date(2026, 10, 27))
    assert tom.id is not None
    service.cancel(session, municipality_id=town.id, booking_id=tom.id, now=NOW)
    session.commit()
    person = clerk(session, plain(town), "viewer")

    answer = person.get(f"/app/consultations/{series.id}/bookings.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f'filename="buchungen-{series.id}.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text), delimiter=";"))
    assert [(row["referenz"], row["beginn"], row["name"], row["status"], row["kontakt"]) for row in rows] == [
        (erika.reference, "2026-10-27 17:00", "Erika", "booked", ERIKA),
        (tom.reference, "2026-10-27 17:30", "Tom", "cancelled", TOM_CHAT),
    ]


def test_a_viewer_sees_the_series_but_cannot_define_one_or_change_bookings(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    erika, _tom = two_booked(session, town, series, date(2026, 10, 27))
    person = clerk(session, plain(town), "viewer")
    assert person.get(f"/app/consultations/{series.id}").status_code == 200
    assert "Neue Sprechstunde" not in person.get("/app/consultations").text
    assert person.get("/app/consultations/new").status_code == 403
    assert person.post("/app/consultations/new", {"title": "Heimlich"}, follow_redirects=False).status_code == 403
    refused = person.post(f"/app/consultations/{series.id}/bookings/{erika.id}/note", {"note": "x"})
    assert refused.status_code == 403
    session.refresh(erika)
    assert erika.staff_note is None
    assert session.exec(select(func.count()).select_from(ConsultationSeries)).one() == 1


def test_the_mayors_office_defines_a_series_on_the_form_and_reads_refusals_in_its_language(
    session: Session, town: Town
) -> None:
    person = clerk(session, plain(town), "mayor")
    form = {
        "title": "Sprechstunde Bauamt", "host": f"user:{town.mayor.id}", "location": "in_person", "address": "",
        "weekday": "TH", "every": "1", "start_time": "15:00", "end_time": "17:00", "first_day": "2026-11-01",
        "slot_minutes": "20", "capacity": "1", "opens_days_before": "30", "closes_hours_before": "2",
        "exdates": "2026-12-03", "questions_allowed": "1",
    }  # fmt: skip
    assert person.get("/app/consultations/new").status_code == 200

    no_address = person.post("/app/consultations/new", form)
    assert no_address.status_code == 422 and "Für eine Sprechstunde vor Ort fehlt die Adresse." in no_address.text
    assert 'value="Sprechstunde Bauamt"' in no_address.text  # the input is kept
    backwards = person.post("/app/consultations/new?lang=en", {**form, "address": "Zimmer 2", "end_time": "14:00"})
    assert backwards.status_code == 422 and "must be after the start" in backwards.text
    bad_rule = person.post(
        "/app/consultations/new?lang=de", {**form, "address": "Zimmer 2", "rrule": "FREQ=WEEKLY;BYDAY=XX"}
    )
    assert bad_rule.status_code == 422 and "keine gültige RRULE" in bad_rule.text
    assert session.exec(select(func.count()).select_from(ConsultationSeries)).one() == 0

    made = person.post("/app/consultations/new", {**form, "address": "Zimmer 2"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    [series] = session.exec(select(ConsultationSeries)).all()
    assert (series.rrule, series.exdates, series.slot_minutes) == ("FREQ=MONTHLY;BYDAY=1TH", ["2026-12-03"], 20)
    assert "Die Sprechstunde ist angelegt." in person.get(made.headers["location"]).text


def test_a_clerk_books_for_a_caller_on_the_series_page(session: Session, town: Town) -> None:
    series = office_hours(session, town, now=utcnow(), rrule="FREQ=DAILY", first_day=utcnow().date(),
                          start_time="00:30", end_time="01:30", closes_hours_before=0)  # fmt: skip
    slot = service.free_slots(session, series=series)[0]
    person = clerk(session, plain(town), "staff")
    nobody = person.post(f"/app/consultations/{series.id}/book", {"slot_id": slot.slot_id, "name": "Ohne"})
    assert nobody.status_code == 422 and "Telefonnummer" in nobody.text
    booked = person.post(f"/app/consultations/{series.id}/book",
                         {"slot_id": slot.slot_id, "name": "Anna Anruf", "phone": "0151 70003333"},
                         follow_redirects=True)  # fmt: skip
    assert "Der Termin ist gebucht." in booked.text and "Anna Anruf" in booked.text
    assert session.exec(select(Booking.name).where(Booking.slot_id == slot.slot_id)).all() == ["Anna Anruf"]


def test_the_demo_series_and_its_bookings_are_on_the_staff_pages(session: Session, settings: Settings) -> None:
    seed_demo(session, settings)
    demo = session.exec(select(Municipality)).one()
    person = clerk(session, PlainTown(municipality=demo, accounts={}), "staff")
    listed = person.get("/app/consultations").text
    assert "Bürgermeistersprechstunde" in listed and "Offene Sprechstunde Bauamt" in listed
    office = session.exec(
        select(ConsultationSeries).where(ConsultationSeries.title == "Bürgermeistersprechstunde")
    ).one()
    page = person.get(f"/app/consultations/{office.id}").text
    assert "Erika Mustermann" in page and "Max Meier" in page and "Parken am Marktplatz" in page


# Cancelling and moving a session


def test_cancelling_a_session_tells_every_booked_citizen_with_the_next_free_slots(
    session: Session, settings: Settings, town: Town
) -> None:
    series = office_hours(session, town)
    erika, tom = two_booked(session, town, series, date(2026, 10, 27))
    [held] = session.exec(select(ConsultationSession).where(ConsultationSession.id == erika.session_id)).all()
    assert held.id is not None

    told = sessions.cancel_session(session, municipality=town.municipality, session_id=held.id, now=NOW)
    session.commit()
    deliver(settings, told)

    assert len(told.message_ids) == 2 and told.unreached == []
    [sms] = [item for item in town.sandbox.outbox(kind="twilio") if item["to"] == ERIKA]
    # 27 October is after the clocks went back; 20 October before: both at 17:00 in Berlin.
    assert sms["text"] == ("Abgesagt: Bürgermeistersprechstunde am 27.10.2026 17:00 Uhr "
                           f"({erika.reference}). Freie Termine: 20.10.2026 17:00, 20.10.2026 17:30, "
                           "03.11.2026 17:00.")  # fmt: skip
    [chat] = town.sandbox.outbox(kind="telegram")
    assert "leider müssen wir Ihren Termin absagen" in chat["text"] and tom.reference in chat["text"]
    for booking in (erika, tom):
        session.refresh(booking)
        assert booking.status == "cancelled"
    session.refresh(held)
    assert held.status == "cancelled"
    assert [slot.booked for slot in slots_on(session, series, date(2026, 10, 27))] == [0, 0]
    # Its slots are offered to nobody any more.
    assert all(free.session_id != held.id for free in service.free_slots(session, series=series, now=NOW))
    with pytest.raises(Conflict):
        sessions.cancel_session(session, municipality=town.municipality, session_id=held.id, now=NOW)


def test_two_clerks_cancelling_at_once_tell_each_citizen_once(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    erika, _tom = two_booked(session, town, series, date(2026, 10, 27))

    def cancel(_: int) -> str:
        with Session(db.get_engine(), expire_on_commit=False) as own:
            municipality = own.get(Municipality, town.id)
            assert municipality is not None
            try:
                sessions.cancel_session(own, municipality=municipality, session_id=erika.session_id, now=NOW)
                own.commit()
            except Conflict:
                return "already"
        return "cancelled"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(cancel, range(4)))

    assert sorted(outcomes) == ["already", "already", "already", "cancelled"]
    assert session.exec(select(func.count()).select_from(Message).where(Message.direction == "outbound")).one() == 2


def test_a_session_that_has_begun_is_not_cancelled_and_nothing_changes(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    erika, _tom = two_booked(session, town, series, date(2026, 10, 27))
    begun = datetime(2026, 10, 27, 16, 10, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="schon begonnen"):
        sessions.cancel_session(session, municipality=town.municipality, session_id=erika.session_id, now=begun)
    session.rollback()
    session.refresh(erika)
    assert erika.status == "booked"
    assert [slot.booked for slot in slots_on(session, series, date(2026, 10, 27))] == [1, 1]
    assert session.exec(select(func.count()).select_from(Message)).one() == 0


def test_moving_a_session_keeps_its_bookings_and_tells_the_citizens_the_new_time(
    session: Session, settings: Settings, town: Town
) -> None:
    series = office_hours(session, town)
    erika, tom = two_booked(session, town, series, date(2026, 10, 27))
    before = len(service.upcoming(session, series=series, municipality=town.municipality, now=NOW))

    told = sessions.move_session(session, municipality=town.municipality, session_id=erika.session_id,
                                 day=date(2026, 10, 28), start_time="17:30", now=NOW)  # fmt: skip
    session.commit()
    deliver(settings, told)

    moved = [slot.starts_at for slot in slots_on(session, series, date(2026, 10, 28))]
    assert moved == [datetime(2026, 10, 28, 16, 30, tzinfo=UTC), datetime(2026, 10, 28, 17, 0, tzinfo=UTC)]
    for booking, starts in ((erika, moved[0]), (tom, moved[1])):
        session.refresh(booking)
        slot = session.get(ConsultationSlot, booking.slot_id)
        assert booking.status == "booked" and slot is not None and slot.starts_at == starts
    [sms] = [item for item in town.sandbox.outbox(kind="twilio") if item["to"] == ERIKA]
    assert sms["text"] == (f"Verschoben: Bürgermeistersprechstunde vom 27.10.2026 17:00 auf 28.10.2026 17:30 Uhr "
                           f"({erika.reference}).")  # fmt: skip
    assert "am 28.10.2026 18:00 Uhr" in town.sandbox.outbox(kind="telegram")[0]["text"]
    # The recurrence does not bring the old time back.
    again = service.upcoming(session, series=series, municipality=town.municipality, now=NOW)
    assert len(again) == before and slots_on(session, series, date(2026, 10, 27)) == []

    # By exactly one slot, every slot takes the start of its neighbour on the way: still fine.
    sessions.move_session(session, municipality=town.municipality, session_id=erika.session_id,
                          day=date(2026, 10, 28), start_time="18:00", now=NOW)  # fmt: skip
    session.commit()
    assert [slot.booked for slot in slots_on(session, series, date(2026, 10, 28))] == [1, 1]
    # Onto another session of the series, or into the past: refused, nothing moved.
    with pytest.raises(Conflict):
        sessions.move_session(session, municipality=town.municipality, session_id=erika.session_id,
                              day=date(2026, 11, 3), start_time="17:00", now=NOW)  # fmt: skip
    with pytest.raises(InvalidInput, match="Vergangenheit"):
        sessions.move_session(session, municipality=town.municipality, session_id=erika.session_id,
                              day=date(2026, 10, 19), start_time="17:00", now=NOW)  # fmt: skip
    session.rollback()
    assert [slot.starts_at.hour for slot in slots_on(session, series, date(2026, 10, 28))] == [17, 17]


def test_the_api_and_the_command_line_cancel_and_move_sessions(session: Session, town: Town) -> None:
    series = office_hours(session, town, now=utcnow(), rrule="FREQ=DAILY", first_day=utcnow().date(),
                          start_time="00:30", end_time="01:30", closes_hours_before=0)  # fmt: skip
    first, second, third = list(
        {free.session_id: free for free in service.free_slots(session, series=series)}.values()
    )[:3]
    for free, phone in ((first, "+4915170004441"), (second, "+4915170004442"), (third, "+4915170004443")):
        slot = session.get(ConsultationSlot, free.slot_id)
        assert slot is not None
        book(session, town, slot, "Bürgerin", citizen(session, town, phone), now=utcnow())
    token = tenancy.create_api_token(session, user=town.staff, name="skript")
    session.commit()
    api = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)

    cancelled = api.post(f"/api/v1/consultations/sessions/{first.session_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["told"]) == ("cancelled", 1)
    again = api.post(f"/api/v1/consultations/sessions/{first.session_id}/cancel")
    assert again.status_code == 409 and "schon abgesagt" in again.json()["detail"]
    day = (second.starts_at + timedelta(days=40)).date().isoformat()
    moved = api.post(
        f"/api/v1/consultations/sessions/{second.session_id}/move", json={"day": day, "start_time": "09:00"}
    )
    assert moved.status_code == 200 and moved.json()["told"] == 1, moved.text

    ran = CliRunner().invoke(main, ["consultations", "cancel-session", str(third.session_id)])
    assert ran.exit_code == 0 and "1 Buchende benachrichtigt" in ran.output, ran.output
    assert session.exec(select(func.count()).select_from(Message).where(Message.direction == "outbound")).one() == 3


# Calendar feeds


def feed(session: Session, token: str) -> Calendar:
    return Calendar.from_ical(calendar.feed_calendar(session, token=token, now=NOW))


def test_the_series_feed_has_utc_times_across_the_clock_change_and_no_names(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    assert series.id is not None
    erika, _tom = two_booked(session, town, series, date(2026, 10, 27))
    session.get(Booking, erika.id).concern = "Mein Nachbar Herr Geheimnis"  # type: ignore[union-attr]
    session.commit()
    cancelled = sessions.cancel_session(session, municipality=town.municipality, session_id=erika.session_id, now=NOW)
    session.commit()
    assert cancelled.message_ids
    token = calendar.feed_token(session, municipality_id=town.id, series_id=series.id)

    parsed = feed(session, token)
    events = {event.decoded("dtstart"): event for event in parsed.walk("VEVENT")}
    summer, winter = datetime(2026, 10, 20, 15, 0, tzinfo=UTC), datetime(2026, 10, 27, 16, 0, tzinfo=UTC)
    assert summer in events and winter in events
    assert events[summer].decoded("dtend") == summer + timedelta(hours=1)
    assert str(events[winter]["status"]) == "CANCELLED" and str(events[summer]["status"]) == "CONFIRMED"
    assert "Gebucht: 0 von 2 Plätzen." in str(events[summer]["description"])
    assert str(events[summer]["location"]) == "Rathaus, Zimmer 1"
    raw = calendar.feed_calendar(session, token=token, now=NOW)
    assert b"DTSTART:20261020T150000Z" in raw and b"DTSTART:20261027T160000Z" in raw
    for secret in (b"Erika", b"Tom", ERIKA.encode(), TOM_CHAT.encode(), b"Geheimnis", erika.reference.encode()):
        assert secret not in raw
    # The same event keeps its UID from one download to the next, and when it moves.
    uid = str(events[summer]["uid"])
    session_id = session.exec(select(ConsultationSession.id).where(ConsultationSession.starts_at == summer)).one()
    assert session_id is not None
    sessions.move_session(session, municipality=town.municipality, session_id=session_id,
                          day=date(2026, 10, 21), start_time="17:00", now=NOW)  # fmt: skip
    session.commit()
    [moved] = [e for e in feed(session, token).walk("VEVENT") if str(e["uid"]) == uid]
    assert moved.decoded("dtstart") == datetime(2026, 10, 21, 15, 0, tzinfo=UTC)


def test_the_hosts_feed_is_served_to_calendar_apps_and_a_wrong_or_old_token_is_404(
    session: Session, town: Town
) -> None:
    office_hours(session, town)
    office_hours(session, town, title="Sprechstunde Kämmerei", host_user_id=town.staff.id)
    token = calendar.feed_token(session, municipality_id=town.id, host_user_id=town.mayor.id)
    app = TestClient(create_app())

    served = app.get(f"/kalender/{token}.ics")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/calendar")
    parsed = Calendar.from_ical(served.content)
    assert {str(event["summary"]) for event in parsed.walk("VEVENT")} == {"Bürgermeistersprechstunde"}
    assert "Maria" in str(parsed["x-wr-calname"])

    wrong = app.get("/kalender/erfunden.ics")
    assert wrong.status_code == 404 and "Diesen Kalender gibt es nicht" in wrong.text
    new = calendar.rotate_feed(session, municipality_id=town.id, host_user_id=town.mayor.id)
    session.commit()
    assert app.get(f"/kalender/{token}.ics").status_code == 404
    assert app.get(f"/kalender/{new}.ics").status_code == 200


def test_the_series_page_shows_the_feed_link_and_renews_it(session: Session, town: Town) -> None:
    series = office_hours(session, town)
    assert series.id is not None
    old = calendar.feed_token(session, municipality_id=town.id, series_id=series.id)
    mayor = clerk(session, plain(town), "mayor")
    assert f"/kalender/{old}.ics" in mayor.get(f"/app/consultations/{series.id}").text
    renewed = mayor.post(f"/app/consultations/{series.id}/feed", follow_redirects=True)
    assert "Der Kalender-Link ist erneuert." in renewed.text and f"/kalender/{old}.ics" not in renewed.text
    new = calendar.feed_token(session, municipality_id=town.id, series_id=series.id)
    assert new != old and f"/kalender/{new}.ics" in renewed.text
