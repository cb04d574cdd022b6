"""Consultation hours in the browser: a citizen books by SMS code, moves, cancels and books again by email link; a
clerk in a second browser sees the booking on the series page and notes it; at the appointment's time the citizen
checks in to the waiting room, is called, forwarded once to another department and called there, and the clerk marks
the booking. Every page is checked with axe-core at desktop width and at 375 px, where it must not scroll sideways.

The test defines its own series through the API, so the demo's bookings stay as they are for other tests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from hub.consultations.models import Booking, ConsultationSession, ConsultationSlot
from hub.db import utcnow
from tests.e2e.conftest import assert_accessible, sign_in
from tests.e2e.test_citizen import sent_to
from tests.running_hub import Hub

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)

PHONE_WIDTH: ViewportSize = {"width": 375, "height": 812}


def check_page(page: Page, name: str) -> None:
    """axe-core at the page's own (desktop) width and at 375 px, where nothing may stick out sideways."""
    assert_accessible(page, name)
    desktop = page.viewport_size
    assert desktop is not None
    page.set_viewport_size(PHONE_WIDTH)
    try:
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name}: the page scrolls {overflow} px sideways at 375 px"
        assert_accessible(page, f"{name}-375")
    finally:
        page.set_viewport_size(desktop)


def define_series(hub: Hub) -> dict[str, Any]:
    """A daily in-person series of the Ordnungsamt, bookable three days ahead: a few slots on one short page."""
    teams = hub.api.get("/api/v1/teams").json()
    team = next(team for team in teams if team["name"] == "Ordnungsamt")
    created = hub.api.post("/api/v1/consultations/series", json={
        "title": f"Sprechstunde Ordnungsamt {uuid.uuid4().hex[:4]}", "rrule": "FREQ=DAILY",
        "first_day": utcnow().date().isoformat(), "start_time": "17:00", "end_time": "18:00", "slot_minutes": 15,
        "host_team_id": team["id"], "location": "in_person", "address": "Rathaus, Zimmer 7", "opens_days_before": 3,
    })  # fmt: skip
    assert created.status_code == 201, created.text
    return dict(created.json())


def let_slot_begin(hub: Hub, reference: str) -> None:
    """Stands for the passing of time: the booked session is put five minutes before now, as if staff had moved it
    there (the old time kept as `moved_from`, so the recurrence does not write it again). Checking in and marking
    a no-show need the slot's time to have come, and a served hub has no clock to turn."""
    booking = Booking.__table__  # type: ignore[attr-defined]
    held = ConsultationSession.__table__  # type: ignore[attr-defined]
    slot = ConsultationSlot.__table__  # type: ignore[attr-defined]
    with hub.engine.begin() as connection:
        session_id, slot_id = connection.execute(
            sa.select(booking.c.session_id, booking.c.slot_id).where(booking.c.reference == reference)
        ).one()
        slot_start = connection.execute(sa.select(slot.c.starts_at).where(slot.c.id == slot_id)).scalar_one()
        shift = utcnow() - timedelta(minutes=5) - slot_start
        moved = connection.execute(sa.select(held).where(held.c.id == session_id)).one()
        connection.execute(
            held.update()
            .where(held.c.id == session_id)
            .values(
                starts_at=moved.starts_at + shift,
                ends_at=moved.ends_at + shift,
                moved_from=moved.moved_from or moved.starts_at,
            )
        )
        for one in connection.execute(sa.select(slot).where(slot.c.session_id == session_id)).all():
            later = {"starts_at": one.starts_at + shift, "ends_at": one.ends_at + shift}
            connection.execute(slot.update().where(slot.c.id == one.id).values(**later))


def pick_first_slot(page: Page, hub: Hub, series: dict[str, Any], name: str) -> None:
    """Opens the series from the town's list and picks its first free slot."""
    page.goto(f"{hub.url}/sprechstunden/musterstadt")
    page.get_by_role("link", name=series["title"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(series["title"])
    check_page(page, f"{name}-series")
    page.locator("ul.slots a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Termin buchen")


@pytest.fixture
def clerk(browser: Browser) -> Iterator[BrowserContext]:
    """A second browser, the clerk's: its own cookies, at desktop width."""
    created = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900}, bypass_csp=True)
    created.set_default_timeout(15_000)
    yield created
    created.close()


def test_citizen_books_moves_cancels_books_again_and_is_called_from_the_waiting_room(
    page: Page, clerk: BrowserContext, hub: Hub
) -> None:
    series = define_series(hub)
    number = f"0151{uuid.uuid4().int % 10**8:08d}"
    e164 = "+49" + number[1:]
    name = "Erika Mustermann"

    page.goto(f"{hub.url}/sprechstunden/musterstadt")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sprechstunden")
    check_page(page, "consultation-list")
    pick_first_slot(page, hub, series, "consultation")
    expect(page.locator("dl.summary")).to_contain_text("Vor Ort: Rathaus, Zimmer 7")
    check_page(page, "consultation-form")

    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_role("alert")).to_contain_text("Bitte geben Sie Ihren Namen an.")
    check_page(page, "consultation-form-error")

    page.get_by_label("Ihr Name").fill(name)
    page.get_by_label("Ihre Handynummer").fill(number)
    page.get_by_label("Ihr Anliegen (freiwillig)").fill("Sondernutzung für einen Flohmarkt")
    page.get_by_role("button", name="Weiter").click()
    expect(page).to_have_url(re.compile(r"/sprechstunden/musterstadt/code$"))
    check_page(page, "consultation-code")

    code = re.search(r"\b(\d{6})\b", sent_to(hub, "twilio", e164, "Terminbuchung"))
    assert code is not None
    page.get_by_label("Code aus der SMS (6 Ziffern)").fill(code.group(1))
    page.get_by_role("button", name="Termin buchen").click()
    expect(page.get_by_role("status")).to_contain_text("Ihr Termin ist gebucht")
    reference = page.locator("dl.summary dd").first.inner_text().strip()
    expect(page.get_by_role("link", name="Termin in den Kalender übernehmen (.ics)")).to_have_attribute(
        "href", re.compile(r"/buchung/[^/]+/termin\.ics$")
    )
    check_page(page, "consultation-booked")
    assert reference in sent_to(hub, "twilio", e164, reference)  # the confirmation names the booking

    staff = clerk.new_page()
    sign_in(staff, hub, "staff", next_path=f"/app/consultations/{series['id']}")
    expect(staff.get_by_role("heading", level=1)).to_have_text(series["title"])
    booked = staff.locator("li[id^=booking-]", has_text=reference)
    expect(booked).to_contain_text(name)
    expect(booked).to_contain_text("Sondernutzung für einen Flohmarkt")
    expect(booked.locator(".badge")).to_have_text("gebucht")
    check_page(staff, "consultation-staff-series")
    booked.get_by_label("Notiz für das Team").fill("Lageplan mitbringen lassen")
    booked.get_by_role("button", name="Notiz speichern").click()
    expect(staff.get_by_role("status")).to_contain_text("Die Notiz ist gespeichert.")
    expect(staff.locator("li[id^=booking-]", has_text=reference)).to_contain_text("Notiz: Lageplan mitbringen lassen")

    page.get_by_role("link", name="Termin verschieben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Termin verschieben")
    check_page(page, "consultation-move")
    later = page.locator("form.choices button").first
    new_time = later.inner_text().removesuffix(" Uhr").strip()
    later.click()
    expect(page.get_by_role("status")).to_contain_text("Ihr Termin ist gebucht")
    expect(page.locator("dl.summary")).to_contain_text(f"{new_time} bis")
    expect(page.locator("dl.summary dd").first).to_have_text(reference)  # moving keeps the reference

    page.get_by_role("link", name="Termin absagen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Termin absagen")
    check_page(page, "consultation-cancel")
    page.get_by_role("button", name="Ja, Termin absagen").click()
    expect(page.get_by_role("status")).to_contain_text("Dieser Termin ist abgesagt")
    expect(page.get_by_role("link", name="Termin absagen")).to_have_count(0)
    check_page(page, "consultation-cancelled")

    # Booking again, this time by email: the link from the mail, then the button (a mail scanner only opens links).
    address = f"erika-{uuid.uuid4().hex[:8]}@example.org"
    pick_first_slot(page, hub, series, "consultation-again")
    page.get_by_label("Ihr Name").fill(name)
    page.get_by_label("Per E-Mail").check()
    page.get_by_label("Ihre E-Mail-Adresse").fill(address)
    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bitte bestätigen Sie Ihre E-Mail-Adresse")
    check_page(page, "consultation-email-sent")
    link = re.search(r"http\S+/bestaetigen\?token=\S+", sent_to(hub, "email", address, "bestaetigen"))
    assert link is not None
    page.goto(link.group(0))
    check_page(page, "consultation-confirm")
    page.get_by_role("button", name="Termin verbindlich buchen").click()
    expect(page.get_by_role("status")).to_contain_text("Ihr Termin ist gebucht")
    again = page.locator("dl.summary dd").first.inner_text().strip()
    assert again != reference

    staff.reload()
    expect(staff.locator("li[id^=booking-]", has_text=reference)).to_have_count(0)  # cancelled: gone from the list
    expect(staff.locator("li[id^=booking-]", has_text=again)).to_contain_text(name)

    # At the appointment's time: the citizen checks in, the clerk calls her and forwards her once, then closes.
    let_slot_begin(hub, again)
    page.get_by_role("link", name="Zum Warteraum (zur Terminzeit)").click()
    page.get_by_role("button", name="Im Warteraum anmelden").click()
    expect(page.get_by_role("status")).to_contain_text("Sie warten im Warteraum: Ordnungsamt.")
    expect(page.get_by_role("status")).to_contain_text("Sie sind an Platz 1.")
    check_page(page, "consultation-waiting")

    staff.goto(f"{hub.url}/app/waiting-rooms")
    room = staff.locator("ul.cards > li", has=staff.get_by_role("heading", name="Ordnungsamt", exact=True))
    expect(room.locator("ul.bookings li", has_text=again)).to_contain_text(name)
    check_page(staff, "consultation-waiting-rooms")
    room.get_by_role("button", name="Nächste Person aufrufen").click()
    expect(staff.get_by_role("status")).to_contain_text("Aufgerufen")

    # The citizen's page asks the hub every few seconds and changes by itself.
    expect(page.get_by_role("heading", name="Jetzt eintreten")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Bitte kommen Sie jetzt herein: Rathaus, Zimmer 7")
    check_page(page, "consultation-called")

    called = staff.locator("ul.bookings li", has_text=again)
    called.get_by_label("Weiterleiten an").select_option(label="Bauamt")
    called.get_by_label("Notiz für die Abteilung").fill("Es geht um einen Bauantrag")
    called.get_by_role("button", name="Weiterleiten").click()
    expect(staff.get_by_role("status")).to_contain_text("Weitergeleitet.")
    building = staff.locator("ul.cards > li", has=staff.get_by_role("heading", name="Bauamt", exact=True))
    expect(building.locator("ul.bookings li", has_text=again)).to_contain_text("Es geht um einen Bauantrag")
    expect(page.get_by_role("status")).to_contain_text(
        "Sie wurden weitergeleitet. Sie warten jetzt im Warteraum: Bauamt."
    )
    check_page(page, "consultation-forwarded")

    building.get_by_role("button", name="Nächste Person aufrufen").click()
    expect(page.get_by_role("heading", name="Jetzt eintreten")).to_be_visible()
    staff.locator("ul.bookings li", has_text=again).get_by_role("button", name="Erledigt").click()
    expect(page.get_by_role("status")).to_contain_text("Ihr Gespräch ist beendet.")

    staff.goto(f"{hub.url}/app/consultations/{series['id']}")
    expect(staff.locator("li[id^=booking-]", has_text=again).locator(".badge")).to_have_text("erschienen")
    staff.locator("li[id^=booking-]", has_text=again).get_by_role("button", name=re.compile("nicht erschienen")).click()
    expect(staff.get_by_role("status")).to_contain_text("Vermerkt.")
    expect(staff.locator("li[id^=booking-]", has_text=again).locator(".badge")).to_have_text("nicht erschienen")
    check_page(staff, "consultation-staff-marked")
