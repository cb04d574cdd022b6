"""Citizens on a phone-sized screen: sign up with the SMS code, follow the acknowledgement's status link, confirm an
email sign-up, answer a survey and unsubscribe, write to the town on its form at 375 px; and a clerk refused a page
their role may not use. Every page is checked with axe-core.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, link
from hub.settings import Settings
from hub.subscribers.topic_choice import topics_url
from hub.tenancy.roles import allows
from tests.e2e.conftest import assert_accessible
from tests.running_hub import Hub, wait_for
from tests.unit.rows import parameters, permission_of, staff_routes

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)

DEMO_CITIZEN = "+4915112345678"  # writes in by SMS when the demo starts (hub/demo.py)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A phone-sized browser page (iPhone 12-14 viewport), German."""
    context = browser.new_context(locale="de-DE", viewport={"width": 390, "height": 844}, bypass_csp=True,
                                  has_touch=True, is_mobile=True)  # fmt: skip
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def sent_to(hub: Hub, kind: str, address: str, contains: str) -> str:
    """The text of the newest message the sandbox received for `address` that contains `contains`."""
    return wait_for(
        lambda: next((item["text"] for item in reversed(hub.outbox(kind=kind, to=address)) if contains in item["text"]),
                     None),
        what=f"a {kind} message to {address} with {contains!r}",
    )  # fmt: skip


def test_sign_up_by_sms_code_on_a_phone(phone: Page, hub: Hub) -> None:
    number = f"0151{uuid.uuid4().int % 10**8:08d}"
    e164 = "+49" + number[1:]
    phone.goto(f"{hub.url}/abo/musterstadt")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Nachrichten per SMS erhalten")
    assert_accessible(phone, "citizen-subscribe")

    phone.get_by_label("Ihre Handynummer").fill("12")
    phone.get_by_role("button", name="Code per SMS anfordern").click()
    expect(phone.get_by_role("alert")).to_contain_text("keine gültige Telefonnummer")
    assert_accessible(phone, "citizen-subscribe-error")

    phone.get_by_label("Ihre Handynummer").fill(number)
    phone.get_by_label("Abfall").check()
    phone.get_by_label("Ortsteil").select_option("nord")
    phone.get_by_role("button", name="Code per SMS anfordern").click()
    expect(phone).to_have_url(re.compile(r"/abo/musterstadt/code$"))
    assert_accessible(phone, "citizen-code")

    code = re.search(r"\b(\d{6})\b", sent_to(hub, "twilio", e164, "Code"))
    assert code is not None
    phone.get_by_label("Code aus der SMS (6 Ziffern)").fill(code.group(1))
    phone.get_by_role("button", name="Bestätigen").click()
    expect(phone.get_by_role("status")).to_contain_text("ist bestätigt")
    expect(phone.locator("dl.summary")).to_contain_text("Abfall")
    assert_accessible(phone, "citizen-subscribed")

    [subscriber] = hub.api.get("/api/v1/subscribers", params={"q": e164[3:]}).json()["items"]
    assert subscriber["state"] == "active"
    assert subscriber["topics"] == ["abfall"] and subscriber["districts"] == ["nord"]


def test_status_page_from_the_acknowledgement_link(phone: Page, hub: Hub) -> None:
    acknowledgement = sent_to(hub, "twilio", DEMO_CITIZEN, "/anfrage/")
    status_link = re.search(r"https?://\S+/anfrage/\S+", acknowledgement)
    assert status_link is not None
    phone.goto(status_link.group(0))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Ihre Anfrage")
    expect(phone.locator(".timeline")).to_contain_text("Straßenlaterne")
    expect(phone.locator(".status-box")).to_contain_text("In Bearbeitung")
    assert_accessible(phone, "citizen-status")

    phone.goto(status_link.group(0).rsplit("/", 1)[0] + "/falsch")
    expect(phone.get_by_role("alert")).to_contain_text("Diese Anfrage gibt es nicht")
    expect(phone.get_by_role("link", name=re.compile("^Zur Startseite von"))).to_be_visible()
    assert_accessible(phone, "citizen-not-found")

    # Without the link: the reference alone brings a one-time link to the phone the request came from.
    reference = status_link.group(0).split("/anfrage/")[1].split("/")[0]
    phone.set_viewport_size({"width": 375, "height": 812})
    phone.goto(f"{hub.url}/musterstadt/anfrage")
    assert_accessible(phone, "citizen-lookup")
    phone.get_by_label("Vorgangsnummer").fill(reference)
    phone.get_by_role("button", name="Link schicken").click()
    expect(phone.get_by_role("status")).to_contain_text("Gibt es eine Anfrage mit dieser Nummer")
    assert_accessible(phone, "citizen-lookup-asked")
    one_time = re.search(r"https?://\S+/anfrage-link/\S+", sent_to(hub, "twilio", DEMO_CITIZEN, "/anfrage-link/"))
    assert one_time is not None
    phone.goto(one_time.group(0))
    assert_accessible(phone, "citizen-lookup-link")
    phone.get_by_role("button", name="Anfrage ansehen").click()
    expect(phone.locator(".status-box")).to_contain_text("In Bearbeitung")


def test_email_sign_up_survey_answer_and_unsubscribe(phone: Page, hub: Hub) -> None:
    address = f"erika-{uuid.uuid4().hex[:8]}@example.org"
    phone.goto(f"{hub.url}/abo/musterstadt/email?lang=en")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Get messages by email")
    phone.get_by_role("link", name="Deutsch").click()
    assert_accessible(phone, "citizen-email-form")
    phone.get_by_label("Ihre E-Mail-Adresse").fill(address)
    phone.get_by_role("button", name="Bestätigungs-E-Mail anfordern").click()
    expect(phone.get_by_role("status")).to_contain_text("Bitte öffnen Sie den Link")
    assert_accessible(phone, "citizen-email-sent")

    confirm = re.search(r"http\S+/confirm\?token=\S+", sent_to(hub, "email", address, "confirm"))
    assert confirm is not None
    phone.goto(confirm.group(0))
    assert_accessible(phone, "citizen-email-confirm")
    phone.get_by_role("button", name="Anmeldung bestätigen").click()
    expect(phone.get_by_role("status")).to_contain_text("bestätigt")

    [subscriber] = hub.api.get("/api/v1/subscribers", params={"q": address}).json()["items"]
    created = hub.api.post("/api/v1/broadcasts", json={
        "kind": "survey", "title": "Bücherei am Samstag", "options": ["Ja", "Nein"], "channels": ["email"],
        "texts": {"de": {"body": "Soll die Bücherei samstags öffnen?"}},
    })  # fmt: skip
    assert created.status_code == 201, created.text
    # The links a survey mail carries, signed as the hub signs them (same key, same format).
    # The demo town is the hub's first municipality.
    target = LinkTarget(municipality_id=1, contact_id=subscriber["contact_id"], broadcast_id=created.json()["id"])
    links = Settings(public_url=hub.url)

    phone.goto(link(links, ANSWER, target))
    expect(phone.get_by_text("Soll die Bücherei samstags öffnen?")).to_be_visible()
    assert_accessible(phone, "citizen-survey")
    phone.get_by_role("button", name="Nein").click()
    expect(phone.get_by_role("status")).to_contain_text("„Nein“ wurde gezählt")
    assert_accessible(phone, "citizen-survey-answered")

    # "Themen ändern" from the mail, at the narrowest phone width: one topic more, without leaving.
    phone.set_viewport_size({"width": 375, "height": 812})
    phone.goto(topics_url(links, municipality_id=1, contact_id=subscriber["contact_id"]))
    assert_accessible(phone, "citizen-topics")
    phone.get_by_label("Baustellen").check()
    phone.get_by_role("button", name="Speichern").click()
    expect(phone.get_by_role("status")).to_contain_text("Gespeichert")
    assert_accessible(phone, "citizen-topics-saved")
    changed = hub.api.get(f"/api/v1/subscribers/{subscriber['contact_id']}").json()
    assert "baustellen" in changed["topics"] and changed["state"] == "active"

    phone.goto(link(links, UNSUBSCRIBE, target))
    assert_accessible(phone, "citizen-unsubscribe")
    phone.get_by_role("button", name="Ja, abmelden").click()
    expect(phone.get_by_role("status")).to_contain_text("keine Nachrichten mehr")
    assert_accessible(phone, "citizen-unsubscribed")
    assert hub.api.get(f"/api/v1/subscribers/{subscriber['contact_id']}").json()["state"] == "stopped"


def test_a_viewer_is_shown_the_refusal_page(signed_in: Callable[..., Page]) -> None:
    closed = [route.path for route in staff_routes() if "GET" in route.methods and not parameters(route.path)
              and not allows("viewer", permission_of(route))]  # fmt: skip
    if not closed:
        pytest.skip("no staff page without path parameters is closed to the viewer role yet")
    page = signed_in("viewer", next_path=closed[0])
    expect(page.get_by_role("heading", level=1)).to_have_text("Keine Berechtigung")
    expect(page.get_by_role("alert")).to_contain_text("Ihre Rolle erlaubt diese Seite nicht")
    assert_accessible(page, "forbidden")


def test_accessibility_statement_and_leichte_sprache_from_the_footer_and_the_letter_form_at_375_px(
    browser: Browser, hub: Hub
) -> None:
    context = browser.new_context(locale="de-DE", viewport={"width": 375, "height": 812}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{hub.url}/abo/musterstadt")
    pages = (
        ("Barrierefreiheit", "Erklärung zur Barrierefreiheit", "citizen-accessibility"),
        ("Leichte Sprache", "Der Nachrichten-Dienst der Stadt", "citizen-easy-language"),
    )
    for footer_link, heading, name in pages:
        page.get_by_role("contentinfo").get_by_role("link", name=footer_link).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        assert_accessible(page, name)

    # The town's ways to reach it lead to the form for those who use no messenger.
    page.goto(f"{hub.url}/musterstadt/start")
    page.get_by_role("link", name="Über unser Formular schreiben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schreiben Sie uns")
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    assert_accessible(page, "citizen-write")
    page.get_by_role("button", name="Nachricht absenden").click()
    expect(page.get_by_role("alert")).to_contain_text("Bitte schreiben Sie, worum es geht")
    assert_accessible(page, "citizen-write-error")
    page.get_by_label("Ihr Name (freiwillig)").fill("Erika Muster")
    page.get_by_label("Ihr Anliegen").fill("Wann hat die Bücherei im Sommer geöffnet?")
    page.get_by_role("button", name="Nachricht absenden").click()
    expect(page).to_have_url(re.compile(r"/musterstadt/schreiben/danke$"))
    expect(page.locator("strong.big")).to_have_text(re.compile(r"\S+-\d{4}-\d+"))
    expect(page.locator("#no-answer")).to_contain_text("Keine Antwort kann Sie erreichen")
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    assert_accessible(page, "citizen-write-filed")
    context.close()
