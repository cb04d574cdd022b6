"""The Mängelmelder in the browser: on a phone (375 px) a citizen files a report with a pin on the map and a photo,
then, placed by the phone's location beside a known report, sees "Ist das schon gemeldet?" and says "Ich auch"
with a photo; a clerk finds the new report on the staff map and its place beside the case, then merges the demo's
two reports of one hedge from the case's duplicates suggestion, and the report that remains lists both reporters.
Every page is checked with axe-core at desktop width and at 375 px. The browser has no tiles (their server is
blocked): the pins sit on a blank map.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import BytesIO

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import sign_in
from tests.e2e.test_consultations import PHONE_WIDTH, check_page
from tests.running_hub import Hub

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)

# The demo's web report of dumped rubbish (hub/problems/web_demo.py), where the phone says it is.
GARTENWEG = {"latitude": 51.02000, "longitude": 10.03502}


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A phone's browser at 375 px that may share its location, with the tile server out of reach."""
    created = browser.new_context(
        locale="de-DE", viewport=PHONE_WIDTH, bypass_csp=True, geolocation=GARTENWEG, permissions=["geolocation"]
    )
    created.set_default_timeout(15_000)
    created.route(re.compile(r"^https?://[^/]*tile\.openstreetmap\.org/.*"), lambda route: route.abort())
    yield created
    created.close()


def photo() -> bytes:
    out = BytesIO()
    Image.new("RGB", (640, 480), (120, 120, 60)).save(out, "JPEG")
    return out.getvalue()


def open_form(page: Page, hub: Hub) -> None:
    page.goto(f"{hub.url}/musterstadt/meldung")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mangel melden")
    expect(page.locator("#report-map .leaflet-pane").first).to_be_attached()  # the map started


def test_citizen_reports_with_pin_and_photo_supports_a_known_report_and_staff_see_it_on_the_map_and_merge(
    phone: BrowserContext, context: BrowserContext, hub: Hub
) -> None:
    page = phone.new_page()
    open_form(page, hub)
    check_page(page, "problem-form")

    page.get_by_label("Was ist es?").select_option("laterne")
    page.locator("#report-map").click()  # the middle of the town, in Mitte: a pin
    expect(page.locator("#pin-status")).to_have_text("Ort markiert. Sie können die Markierung verschieben.")
    assert page.locator("#f-lat").input_value() and page.locator("#f-lon").input_value()
    expect(page.locator("#report-map .leaflet-marker-icon")).to_have_count(1)
    page.get_by_label("Beschreibung").fill("Die Laterne an der Ecke blinkt nur noch.")
    page.get_by_label("Fotos (freiwillig, höchstens 3)").set_input_files(
        [{"name": "laterne.jpg", "mimeType": "image/jpeg", "buffer": photo()}]
    )
    check_page(page, "problem-form-filled")
    page.get_by_role("button", name="Meldung absenden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vielen Dank für Ihre Meldung")
    reference = page.locator("strong.big").inner_text().strip()
    assert re.fullmatch(r"[A-Z]+-\d{4}-\d{5}", reference)
    check_page(page, "problem-filed")
    page.get_by_role("link", name="Stand Ihrer Meldung ansehen").click()
    expect(page.locator("#problem-heading")).to_have_text("Ihre Meldung")
    expect(page.locator("main")).to_contain_text("Straßenbeleuchtung")

    # By the phone's location, beside the demo's report of dumped rubbish: it is shown, and "Ich auch" joins it.
    open_form(page, hub)
    page.get_by_label("Was ist es?").select_option("muell")
    page.get_by_role("button", name="Meinen Standort verwenden").click()
    nearby = page.locator("#nearby")
    expect(nearby).to_be_visible()
    expect(nearby.get_by_role("heading", name="Ist das schon gemeldet?")).to_be_visible()
    known = nearby.locator("li", has_text="Gartenweg 2")
    expect(known).to_contain_text("Personen haben das gemeldet")
    check_page(page, "problem-form-nearby")
    known_reference = known.inner_text().split(" · ")[0].strip()
    page.get_by_label("Fotos (freiwillig, höchstens 3)").set_input_files(
        [{"name": "muell.jpg", "mimeType": "image/jpeg", "buffer": photo()}]
    )
    known.get_by_role("button", name=f"Ich auch: {known_reference} unterstützen statt neu melden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vielen Dank für Ihre Meldung")
    expect(page.locator("main")).to_contain_text(f"Wir haben Sie bei der Meldung {known_reference} mitgezählt.")
    check_page(page, "problem-supported")

    page.goto(f"{hub.url}/musterstadt/meldungen")
    expect(page.get_by_role("heading", level=1)).to_have_text("Gemeldete Mängel")
    expect(page.locator("main")).to_contain_text(reference)
    expect(page.locator("#problems-map .leaflet-marker-icon").first).to_be_visible()
    check_page(page, "problem-public-list")

    staff = context.new_page()
    sign_in(staff, hub, "staff", next_path="/app/problems")
    expect(staff.get_by_role("heading", level=1)).to_have_text("Mängelmelder")
    expect(staff.locator("#problems-map .leaflet-marker-icon").first).to_be_visible()
    row = staff.locator(".problem-list li", has_text=reference)
    expect(row).to_contain_text("Straßenbeleuchtung")
    check_page(staff, "problem-staff-map")
    staff.get_by_label("Art", exact=True).select_option("muell")
    staff.get_by_role("button", name="Anzeigen").click()
    expect(staff.locator(".problem-list li", has_text=reference)).to_have_count(0)
    expect(staff.locator(".problem-list li", has_text=known_reference)).to_contain_text("Meldende: 3")  # demo's 2, hers

    staff.goto(f"{hub.url}/app/problems")
    staff.get_by_role("link", name=reference).click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(staff.locator("#report-place .leaflet-marker-icon")).to_have_count(1)
    check_page(staff, "problem-staff-case")

    # The demo's hedge at the market, reported twice a few metres apart: merged from the first one's case.
    staff.goto(f"{hub.url}/app/problems?category=gruen")
    hedge = staff.locator(".problem-list li", has_text="Am Markt 1").get_by_role("link")
    hedge_reference = hedge.inner_text().strip()
    hedge.click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text(hedge_reference)
    expect(staff.locator("#unreachable")).to_contain_text("keine Adresse hinterlassen")  # a web report, no address
    suggested = staff.locator("#problem-duplicates")
    expect(suggested.get_by_role("heading", name="Vielleicht derselbe Mangel")).to_be_visible()
    duplicate = suggested.locator("li", has_text="Am Markt").first
    duplicate_reference = duplicate.get_by_role("link").inner_text().strip()
    check_page(staff, "problem-staff-duplicates")
    duplicate.get_by_role("button", name=f"Zusammenführen {duplicate_reference}").click()
    expect(staff.locator(".notice.success")).to_contain_text("Die Meldungen sind zusammengeführt.")
    expect(staff.locator("#problem-merged")).to_contain_text(duplicate_reference)
    expect(staff.locator("aside")).to_contain_text("Meldende: 2")
    expect(staff.locator("#problem-duplicates")).to_have_count(0)
    check_page(staff, "problem-staff-merged")
