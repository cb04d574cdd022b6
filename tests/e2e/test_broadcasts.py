"""In a real browser: the mayor composes, confirms and approves an announcement and watches it go out; subscribers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import assert_accessible
from tests.running_hub import DEADLINE, Hub, wait_for

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)


def subscribe_by_sms(hub: Hub, number: str) -> None:
    hub.sandbox.send_sms(from_=number, to=hub.accounts["twilio"]["address"], body="ANMELDEN ABFALL")
    wait_for(
        lambda: any("angemeldet" in item["text"].lower() for item in hub.outbox(kind="twilio", to=number)),
        what=f"the subscription confirmation to {number}",
    )


def test_mayor_composes_approves_and_sees_the_broadcast_delivered(signed_in: Callable[..., Page], hub: Hub) -> None:
    numbers = ["+49152" + str(uuid.uuid4().int)[:8] for _ in range(2)]
    for number in numbers:
        subscribe_by_sms(hub, number)
    marker = uuid.uuid4().hex[:6]

    page = signed_in("mayor", next_path="/app/broadcasts/new")
    expect(page.get_by_role("heading", name="Neue Rundsendung")).to_be_visible()
    page.get_by_label("Titel", exact=True).fill(f"Biotonne {marker}")
    page.get_by_label("Text", exact=True).first.fill(f"Die Biotonne wird am Samstag geleert. {marker}")
    page.get_by_label("Abfall").check()
    page.get_by_label("SMS", exact=True).check()
    expect(page.locator("#recipient-count")).to_contain_text(re.compile(r"\d+ Empfängerinnen und Empfänger"))
    assert_accessible(page, "broadcast-composer")

    page.get_by_role("button", name="Speichern und zur Freigabe einreichen").click()
    expect(page.get_by_role("status").first).to_contain_text("zur Freigabe eingereicht")
    expect(page.get_by_role("heading", name="Vorschau")).to_be_visible()
    # What approving will do, before it does: recipients per channel and the text each channel carries.
    page.get_by_role("link", name="Freigeben und senden").click()
    expect(page.get_by_role("table", name="Empfängerinnen und Empfänger je Kanal")).to_contain_text("SMS")
    expect(page.locator(".channel-preview.channel-twilio")).to_contain_text(marker)
    assert_accessible(page, "broadcast-confirmation")
    page.get_by_role("button", name="Freigeben und senden").click()
    expect(page.locator("#send-progress")).to_be_visible()
    # The page polls the progress and reloads with the report once every delivery is settled.
    expect(page.locator("#broadcast-status")).to_have_text("Abgeschlossen", timeout=DEADLINE * 1000)
    expect(page.get_by_role("heading", name="Zustellbericht")).to_be_visible()
    expect(page.locator("#progress-text")).to_contain_text("0 wartend")
    assert_accessible(page, "broadcast-report")
    for number in numbers:
        assert any(marker in item["text"] for item in hub.outbox(kind="twilio", to=number)), number

    page.goto(f"{hub.url}/app/broadcasts")
    expect(page.get_by_role("link", name=f"Biotonne {marker}")).to_be_visible()
    assert_accessible(page, "broadcast-list")


def test_subscriber_pages_search_open_and_are_accessible(signed_in: Callable[..., Page], hub: Hub) -> None:
    number = "+49152" + str(uuid.uuid4().int)[:8]
    subscribe_by_sms(hub, number)
    page = signed_in("admin", next_path="/app/subscribers")
    page.get_by_label("Suche").fill(number[-8:])
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("status")).to_contain_text("1 Abonnenten gefunden")
    assert_accessible(page, "subscriber-list")
    page.get_by_role("link", name=re.compile(r"Kontakt|\+49")).first.click()
    expect(page.get_by_role("heading", name="Einwilligungen")).to_be_visible()
    assert_accessible(page, "subscriber-detail")
    page.get_by_role("link", name="Daten löschen …").click()
    expect(page.get_by_role("button", name="Endgültig löschen")).to_be_visible()
    assert_accessible(page, "subscriber-erase")
    page.goto(f"{hub.url}/app/subscribers/import")
    assert_accessible(page, "subscriber-import")
    imported = "+49152" + str(uuid.uuid4().int)[:8]
    csv = f"phone;topics;consent_evidence\n{imported};abfall;Unterschrift Bürgerfest\n+49152;mond;Formular\n"
    page.get_by_label("CSV-Datei").set_input_files(files=[{"name": "liste.csv", "mimeType": "text/csv",
                                                           "buffer": csv.encode()}])  # fmt: skip
    with page.expect_response(re.compile(r"/app/subscribers/import/progress$")) as streamed:
        page.get_by_role("button", name="Prüfen und importieren").click()
    assert streamed.value.ok, "the page's script streams the import's progress"
    expect(page.get_by_role("table", name="Probleme je Zeile")).to_contain_text("Unbekanntes Thema 'mond'")
    expect(page.locator("#import-progress")).to_be_hidden()
    assert_accessible(page, "subscriber-import-problems")
    page.goto(f"{hub.url}/app/subscribers/topics")
    assert_accessible(page, "subscriber-topics")


def test_a_sent_survey_shows_its_results_chart_accessibly(signed_in: Callable[..., Page], hub: Hub) -> None:
    created = hub.api.post("/api/v1/broadcasts", json={
        "kind": "survey", "title": "Spielplatz", "texts": {"de": {"body": "Wo soll der neue Spielplatz hin?"}},
        "options": ["Am See", "Im Stadtpark"], "channels": ["twilio", "telegram"],
    })  # fmt: skip
    assert created.status_code == 201, created.text
    survey_id = created.json()["id"]
    assert hub.api.post(f"/api/v1/broadcasts/{survey_id}/submit").status_code == 200
    assert hub.api.post(f"/api/v1/broadcasts/{survey_id}/approve").status_code == 200
    page = signed_in("viewer", next_path=f"/app/broadcasts/{survey_id}")
    expect(page.locator("svg.chart")).to_contain_text("Im Stadtpark")
    expect(page.get_by_role("table", name="Antworten")).to_contain_text("Am See")
    assert_accessible(page, "broadcast-survey")
