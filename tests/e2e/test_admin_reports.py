"""Administration and reports in a real browser: a webhook address copied, a test message sent, the official warnings
relay set (also at 375 px), charts drawn."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import assert_accessible
from tests.running_hub import DEADLINE, Hub

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)

CITIZEN = "+491701234567"


def test_admin_copies_a_webhook_address_and_sends_a_test_message(signed_in: Callable[..., Page], hub: Hub) -> None:
    page = signed_in("admin", next_path="/app/admin")
    assert_accessible(page, "admin")
    page.get_by_role("link", name="Kanäle").first.click()
    expect(page.get_by_role("heading", name="Kanäle", level=1)).to_be_visible()
    assert_accessible(page, "admin-channels")

    page.get_by_role("link", name="SMS Bürgertelefon").click()
    webhook = page.locator("#webhook-url")
    expect(webhook).to_contain_text(re.compile(r"/webhooks/twilio/\d+$"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    page.get_by_role("button", name="Kopieren").first.click()
    expect(page.locator("#copy-status")).to_have_text("Kopiert.")
    assert page.evaluate("navigator.clipboard.readText()") == webhook.inner_text()
    # The auth token is shown masked, never as it is.
    assert hub.accounts["twilio"]["secrets"]["auth_token"] not in page.content()
    expect(page.get_by_text("Gespeichert: ********.")).to_be_visible()

    page.get_by_label("Empfänger").fill(CITIZEN)
    page.get_by_label("Text").fill("Probe aus der Verwaltung")
    page.get_by_role("button", name="Testnachricht senden").click()
    expect(page.locator("#test-result")).to_contain_text("Der Anbieter hat die Nachricht angenommen.")
    received = hub.sandbox.wait_for_outbox(kind="twilio", to=CITIZEN, timeout=DEADLINE)
    assert any("Probe aus der Verwaltung" in item.get("text", item.get("body", "")) for item in received), received
    assert_accessible(page, "admin-channel")

    page.get_by_role("link", name="Alle Kanäle").click()
    page.get_by_role("link", name="Kanal hinzufügen").click()
    page.get_by_label("Telegram").check()
    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_label("Bot-Token")).to_have_attribute("type", "password")
    assert_accessible(page, "admin-channel-new")


def test_staff_teams_settings_and_reports_pages(signed_in: Callable[..., Page], hub: Hub) -> None:
    page = signed_in("admin", next_path="/app/admin/staff")
    expect(page.get_by_role("heading", name="Mitarbeitende", level=1)).to_be_visible()
    assert_accessible(page, "admin-staff")
    page.get_by_role("link", name=re.compile("Sachbearbeitung|Sachbearbeiter")).first.click()
    expect(page.get_by_role("heading", name="Rolle und Team")).to_be_visible()
    assert_accessible(page, "admin-person")

    page.goto(f"{hub.url}/app/admin/teams/new")
    page.get_by_label("Name", exact=True).fill("Standesamt")
    page.get_by_label("Ziel für die erste Antwort", exact=True).fill("2")
    page.get_by_label("Montag von").fill("08:00")
    page.get_by_label("Montag bis").fill("16:00")
    assert_accessible(page, "admin-team")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_contain_text("Das Team wurde gespeichert.")
    expect(page.get_by_role("row", name=re.compile("Standesamt"))).to_contain_text("Mo 08:00–16:00")
    expect(page.get_by_role("row", name=re.compile("Standesamt"))).to_contain_text("2 Std.")
    assert_accessible(page, "admin-teams")

    page.goto(f"{hub.url}/app/admin/settings")
    page.get_by_label("Aufbewahrungsfrist (Tage)").fill("365")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_contain_text("Die Einstellungen wurden gespeichert.")
    assert_accessible(page, "admin-settings")

    # Refused, so the demo town's statement stays as other tests expect it.
    page.goto(f"{hub.url}/app/admin/accessibility")
    expect(page.get_by_label("Telefonnummer")).to_have_value("+49 30 1234 5678")
    page.get_by_label("Name der Stelle").fill("Landesstelle für Barrierefreiheit")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("alert")).to_contain_text("bitte Name und Internetadresse angeben")
    expect(page.get_by_label("Name der Stelle")).to_have_value("Landesstelle für Barrierefreiheit")
    assert_accessible(page, "admin-accessibility")
    page.get_by_role("link", name="Amtliche Warnungen").click()
    expect(page.get_by_label("Regionalschlüssel (ARS) der Gemeinde")).not_to_have_value("")
    page.get_by_role("group", name="Deutscher Wetterdienst (DWD)").get_by_label("Mäßig").select_option("ignore")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_contain_text("Die Einstellungen der amtlichen Warnungen wurden gespeichert.")
    expect(page.get_by_role("group", name="Deutscher Wetterdienst (DWD)").get_by_label("Mäßig")).to_have_value("ignore")
    assert_accessible(page, "admin-official-warnings")
    page.set_viewport_size({"width": 375, "height": 812})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the official warnings page scrolls {overflow} px sideways at 375 px"
    assert_accessible(page, "admin-official-warnings-375")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{hub.url}/app/reports")
    expect(page.get_by_role("heading", name="Berichte", level=1)).to_be_visible()
    expect(page.get_by_role("img", name="Nachrichten pro Tag")).to_be_visible()
    assert page.locator("svg.chart").count() == 7
    assert_accessible(page, "reports")
