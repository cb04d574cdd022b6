"""The inbox in a real browser: a citizen's SMS appears live, staff answer it, the citizen's phone gets it; bulk
actions and saved views at phone width."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from channels.sms_segments import sms_segments
from hub.demo import DEMO_LATE_WHATSAPP, DEMO_PASSWORD
from hub.inbox.pages import PER_PAGE
from tests.e2e.conftest import DEMO_USERS, assert_accessible
from tests.e2e.test_consultations import PHONE_WIDTH, check_page
from tests.running_hub import DEADLINE, Hub, wait_for

# How many open cases the demo has once its citizens have written in.
DEMO_CASES = 13

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)


def test_staff_see_a_new_sms_live_answer_it_and_the_citizen_receives_it(
    signed_in: Callable[..., Page], hub: Hub, browser: Browser
) -> None:
    dialogs: list[str] = []
    page = signed_in("staff", next_path="/app/inbox")
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    rows = page.locator("#conversation-rows tr")
    # Every open case is listed, on pages of PER_PAGE: the demo's (five citizens on four channels, two
    # problem reports by SMS, a place shared on WhatsApp, two bookings' concerns, a WhatsApp message from
    # yesterday, one citizen's two mails about a hedge) and any a test before this one opened.
    open_cases = wait_for(
        lambda: len(found := hub.conversations(status="open")) >= DEMO_CASES and found, what="the demo's cases"
    )
    expect(rows).to_have_count(min(len(open_cases), PER_PAGE))
    assert_accessible(page, "inbox-list")

    # A citizen writes while the list is open: the row appears without reloading.
    citizen = "+49151" + str(uuid.uuid4().int)[:8]
    hub.sandbox.send_sms(from_=citizen, to=hub.accounts["twilio"]["address"], body="Die Ampel am Markt ist aus.")
    expect(rows.first).to_contain_text(citizen, timeout=DEADLINE * 1000)
    expect(rows.first.locator(".preview")).to_have_text("Die Ampel am Markt ist aus.")  # the row's last message
    expect(page.locator("#live-status")).to_contain_text("A-")

    # j selects the first row, Enter opens it.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(citizen)
    conversation_url = page.url
    expect(page.locator("#messages")).to_contain_text("Die Ampel am Markt ist aus.")
    assert_accessible(page, "inbox-conversation")

    # A colleague opens the same conversation: each sees the other.
    other_context = browser.new_context(locale="de-DE")
    other = other_context.new_page()
    other.goto(f"{hub.url}/app/login?next={conversation_url.removeprefix(hub.url)}")
    other.get_by_label("E-Mail-Adresse").fill(DEMO_USERS["mayor"])
    other.get_by_label("Passwort", exact=True).fill(DEMO_PASSWORD)
    other.get_by_role("button", name="Anmelden").click()
    expect(other.locator("#presence")).to_contain_text("Stefan Sachbearbeiter")
    expect(page.locator("#presence")).to_contain_text("Birgit Bürgermeisterin")
    # She starts writing a reply: this page says so; then she sends it, which this page has not seen yet.
    other.locator("#reply-text").press_sequentially("Wir kümmern uns")
    expect(page.locator("#typing-notice")).to_have_text("Birgit Bürgermeisterin schreibt gerade eine Antwort.")
    assert_accessible(page, "inbox-colleague-typing")
    other.locator("#reply-text").fill("Wir kümmern uns darum.")
    other.get_by_role("button", name="Antwort senden").click()
    expect(other.get_by_role("status").first).to_contain_text("Die Antwort ist unterwegs.")
    other_context.close()

    # Markup from a citizen arrives live and stays text.
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    hub.sandbox.send_sms(from_=citizen, to=hub.accounts["twilio"]["address"], body=hostile)
    expect(page.locator("#messages")).to_contain_text(hostile, timeout=DEADLINE * 1000)
    assert page.locator("#messages img").count() == 0

    # r focuses the reply box; the SMS counter follows the text.
    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()
    emoji = "Grüße aus dem Rathaus 😀 " * 4  # UCS-2, an emoji costs two units
    page.locator("#reply-text").fill(emoji)
    parts, encoding = sms_segments(emoji.strip())
    expect(page.locator("#sms-counter")).to_contain_text(f"{parts} SMS-Teile ({encoding})")
    page.locator("#reply-text").fill("")
    page.keyboard.type("Danke, die Ampel wird heute repariert.")
    expect(page.locator("#sms-counter")).to_contain_text("1 SMS-Teil (GSM-7)")
    # Sent after the colleague's reply, it is held once, showing hers; sent anyway, it goes out.
    page.get_by_role("button", name="Antwort senden").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Birgit Bürgermeisterin hat inzwischen geantwortet: „Wir kümmern uns darum.“"
    )
    assert_accessible(page, "inbox-reply-held")
    page.get_by_role("button", name="Trotzdem senden").click()
    expect(page.get_by_role("status").first).to_contain_text("Die Antwort ist unterwegs.")
    received = wait_for(
        lambda: [m for m in hub.outbox(kind="twilio", to=citizen) if "Ampel wird heute" in m["text"]],
        what="the reply on the citizen's phone",
    )
    assert received[0]["text"] == "Danke, die Ampel wird heute repariert."
    # Its delivery state follows live (the sandbox reports delivery by a signed callback).
    expect(page.locator("#messages li.outbound").last).to_contain_text(re.compile("gesendet|zugestellt"))

    # SMS tells no name: the clerk gives one in the side panel, and the page goes by it.
    page.get_by_label("Name des Kontakts").fill("Ampel-Melderin Weiß")
    page.get_by_role("button", name="Name speichern").click()
    expect(page.get_by_role("status").first).to_contain_text("Der Name ist gespeichert.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ampel-Melderin Weiß")
    expect(page.locator("#contact-name")).to_contain_text("von Mitarbeitenden eingetragen")
    assert_accessible(page, "inbox-conversation-named")
    assert dialogs == []


# Records what the page shows as a notification, and shows it: the browser's own notifications cannot be read.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.shownNotifications = [];
  window.Notification = function (title, options) {
    window.shownNotifications.push([title, options.body]);
    return new Real(title, options);
  };
  Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
  window.Notification.requestPermission = () => Real.requestPermission();
})();
"""


def test_a_clerk_who_allows_notifications_is_told_of_a_conversation_assigned_to_them(
    signed_in: Callable[..., Page], context: BrowserContext, hub: Hub
) -> None:
    context.grant_permissions(["notifications"], origin=hub.url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = signed_in("staff", next_path="/app/inbox/notifications")
    expect(page.locator("#notification-permission")).to_have_text("Der Browser darf Benachrichtigungen zeigen.")
    page.get_by_label("Benachrichtigungen im Browser zeigen").check()
    page.get_by_label("Dazu einen kurzen Ton spielen").check()
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status").first).to_contain_text("Ihre Benachrichtigungen sind gespeichert.")
    assert_accessible(page, "inbox-notifications")

    page.goto(f"{hub.url}/app/inbox")
    citizen = "+49151" + str(uuid.uuid4().int)[:8]
    hub.sandbox.send_sms(from_=citizen, to=hub.accounts["twilio"]["address"], body="Der Gehweg ist vereist.")
    [case] = wait_for(lambda: hub.conversations_with(citizen), what="the citizen's conversation")
    # Once the list shows it live, the page knows what waited before; the assignment is news.
    expect(page.locator("#conversation-rows")).to_contain_text(citizen, timeout=DEADLINE * 1000)
    clerk = next(user for user in hub.api.get("/api/v1/users").json() if user["email"] == DEMO_USERS["staff"])
    hub.api.patch(f"/api/v1/conversations/{case['id']}", json={"assignee_id": clerk["id"]}).raise_for_status()
    expect(page).to_have_title(re.compile(r"^\(\d+\) "), timeout=DEADLINE * 1000)
    shown = wait_for(
        lambda: page.evaluate("window.shownNotifications").count(["Ihnen zugewiesen", case["reference"]]),
        what="the notification of the assigned conversation",
    )
    assert shown == 1


def test_after_whatsapps_window_the_composer_sends_an_approved_template(
    signed_in: Callable[..., Page], hub: Hub
) -> None:
    [case] = hub.conversations_with(DEMO_LATE_WHATSAPP)  # wrote 30 hours ago (hub/demo.py)
    page = signed_in("staff", next_path=f"/app/inbox/{case['id']}")
    expect(page.get_by_role("heading", name="Mit freigegebener Vorlage antworten")).to_be_visible()
    assert_accessible(page, "inbox-template-reply")

    page.get_by_label(re.compile("Vorlage auf Deutsch")).fill("Ihr Antrag ist bearbeitet.")
    page.get_by_role("button", name="Vorlage senden").first.click()
    expect(page.get_by_role("status").first).to_contain_text("Die Antwort ist unterwegs.")
    received = wait_for(
        lambda: [m for m in hub.outbox(kind="whatsapp", to=DEMO_LATE_WHATSAPP) if "Antrag" in m["text"]],
        what="the template on the citizen's WhatsApp",
    )
    assert received[0]["text"] == "Neues aus der Stadt Musterstadt: Ihr Antrag ist bearbeitet."


def test_canned_replies_labels_and_help(signed_in: Callable[..., Page], hub: Hub) -> None:
    page = signed_in("staff", next_path="/app/inbox/canned-replies")
    page.get_by_label("Titel", exact=True).fill("Eingangsbestätigung")
    page.get_by_label("Text", exact=True).fill("Guten Tag {{ name }}, Ihr Anliegen {{ reference }} ist bei uns.")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_contain_text("Gespeichert.")
    assert_accessible(page, "inbox-canned-replies")

    page.goto(f"{hub.url}/app/inbox/labels")
    page.get_by_label("Name", exact=True).fill("Verkehr")
    page.get_by_role("button", name="Anlegen").click()
    expect(page.locator("table")).to_contain_text("Verkehr")
    assert_accessible(page, "inbox-labels")

    page.goto(f"{hub.url}/app/inbox/shortcuts")
    assert_accessible(page, "inbox-shortcuts")

    page.goto(f"{hub.url}/app/inbox?channel=telegram")
    page.locator("#conversation-rows a").first.click()
    page.get_by_role("button", name="Einfügen").click()
    reference = page.get_by_role("heading", level=1).inner_text().split(" ")[0]
    expect(page.locator("#reply-text")).to_have_value(
        re.compile(rf"Guten Tag \w[\w ]*, Ihr Anliegen {reference} ist bei uns\.")
    )
    page.locator("#reply-text").press("Escape")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("dialog")).to_contain_text("Als erledigt markieren")


def test_at_phone_width_staff_change_a_range_of_rows_at_once_undo_it_and_open_a_saved_view(
    signed_in: Callable[..., Page], hub: Hub
) -> None:
    page = signed_in("staff", next_path="/app/inbox")
    check_page(page, "inbox-list-bulk")
    page.set_viewport_size(PHONE_WIDTH)
    rows = page.locator("#conversation-rows tr")
    wait_for(lambda: len(hub.conversations(status="open")) >= DEMO_CASES, what="the demo's cases")
    page.reload()
    views = page.get_by_role("navigation", name="Ansichten")
    expect(views).to_contain_text("Offene SMS")  # the demo clerk's own view
    expect(views.get_by_role("link", name=re.compile("Nicht zugewiesen"))).to_be_visible()

    # A tick, then a shift-click three rows down, ticks the four between.
    references = [rows.nth(i).locator("th a").inner_text() for i in range(4)]
    rows.nth(0).locator('input[name="ids"]').check()
    rows.nth(3).locator('input[name="ids"]').click(modifiers=["Shift"])
    expect(page.locator("#bulk-count")).to_have_text("4 ausgewählt")
    page.locator("#b-status").select_option("pending")
    page.get_by_role("button", name="Status setzen").click()
    expect(page.locator("#bulk-notice")).to_contain_text("4 Unterhaltungen geändert.")
    pending = {c["reference"] for c in hub.conversations(status="pending")}
    assert set(references) <= pending
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the list scrolls {overflow} px sideways at 375 px"
    assert_accessible(page, "inbox-list-bulk-done-375")

    page.get_by_role("button", name="Rückgängig").click()
    expect(page.locator("#bulk-notice")).to_contain_text("4 Unterhaltungen zurückgesetzt.")
    assert not set(references) & {c["reference"] for c in hub.conversations(status="pending")}

    views.get_by_role("link", name=re.compile("Offene SMS")).click()
    expect(page.locator("#f-channel")).to_have_value("twilio")
