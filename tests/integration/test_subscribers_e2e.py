"""End to end through the running hub and the sandbox: citizens subscribe and leave, staff see the consent record."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.running_hub import Hub, wait_for

PUBLIC = "/api/v1/public/musterstadt"


def unique_mobile() -> str:
    return "+49151" + str(uuid.uuid4().int)[:8]


def unique_chat() -> int:
    return 500_000_000 + uuid.uuid4().int % 100_000_000


def received(hub: Hub, kind: str, to: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (items := hub.outbox(kind=kind, to=to)) and len(items) >= count and items,
        what=f"{count} {kind} message(s) to {to}",
    )


def subscriber_with(hub: Hub, address: str, **params: Any) -> dict[str, Any] | None:
    response = hub.api.get("/api/v1/subscribers", params={"q": address, **params})
    response.raise_for_status()
    items = response.json()["items"]
    return next((item for item in items if any(i["address"] == address for i in item["identities"])), None)


def wait_for_subscriber(hub: Hub, address: str, **expected: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = subscriber_with(hub, address)
        return found if found and all(found[key] == value for key, value in expected.items()) else None

    return wait_for(check, what=f"subscriber {address} with {expected}")


def consent(hub: Hub, contact_id: int) -> list[dict[str, Any]]:
    response = hub.api.get(f"/api/v1/subscribers/{contact_id}")
    response.raise_for_status()
    return list(response.json()["consent_events"])


def code_from(hub: Hub, phone: str, count: int = 1) -> str:
    text = received(hub, "twilio", phone, count)[count - 1]["text"]
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def test_sms_keyword_subscribes_and_stop_on_telegram_silences_it(hub: Hub) -> None:
    phone, chat = unique_mobile(), unique_chat()
    hub.sandbox.send_sms(from_=phone, to=hub.accounts["twilio"]["address"], body="ANMELDEN Abfall Nord")
    confirmation = received(hub, "twilio", phone)[0]["text"]
    assert confirmation.startswith("Sie sind angemeldet") and "Abfall" in confirmation and "Nord" in confirmation
    sms_subscriber = wait_for_subscriber(hub, phone, state="active")
    assert (sms_subscriber["topics"], sms_subscriber["districts"]) == (["abfall"], ["nord"])
    # A command is not a case: no reference was sent, and none was opened (the answer came after it was handled).
    assert "Vorgangsnummer" not in confirmation
    assert hub.conversations_with(phone) == []

    # The same citizen writes on Telegram; staff see it is one person and merge the contacts.
    hub.sandbox.send_telegram(chat_id=chat, text="Hallo, hier Erika vom Lindenweg", first_name="Erika")
    telegram_contact = hub.wait_for_conversation_with(str(chat))["contact"]["id"]
    merged = hub.api.post(
        f"/api/v1/contacts/{sms_subscriber['contact_id']}/merge", json={"other_contact_id": telegram_contact}
    )
    assert merged.status_code == 200, merged.text

    hub.sandbox.send_telegram(chat_id=chat, text="Stop")
    wait_for(
        lambda: any(
            item["text"].startswith("Sie sind abgemeldet") for item in hub.outbox(kind="telegram", to=str(chat))
        ),
        what="the STOP confirmation on Telegram",
    )
    stopped = wait_for_subscriber(hub, phone, state="stopped")
    events = consent(hub, stopped["contact_id"])
    assert [(e["action"], e["source"], e["channel_kind"]) for e in events] == [
        ("subscribed", "keyword", "twilio"),
        ("stopped", "telegram", "telegram"),
    ]
    assert hub.api.get("/api/v1/subscribers", params={"state": "active", "q": phone}).json()["items"] == []


def test_telegram_start_and_buttons_choose_topics_and_district(hub: Hub) -> None:
    chat = unique_chat()
    hub.sandbox.send_telegram(chat_id=chat, text="/start", first_name="Jonas")
    welcome = received(hub, "telegram", str(chat))[0]
    assert welcome["text"].startswith("Willkommen")
    buttons = [button["callback_data"] for row in welcome["reply_markup"]["inline_keyboard"] for button in row]
    # One button per topic of the town (other tests may add topics), then "Fertig".
    town_topics = [t["key"] for t in httpx.get(f"{hub.url}/api/v1/public/musterstadt/topics").json()]
    assert buttons == [f"sub:topic:{key}" for key in town_topics] + ["sub:done"]
    assert town_topics[:4] == ["baustellen", "abfall", "veranstaltungen", "warnungen"]

    hub.sandbox.press_telegram_button(chat, "sub:topic:veranstaltungen")
    assert "Ihre Themen: Veranstaltungen" in received(hub, "telegram", str(chat), 2)[1]["text"]
    hub.sandbox.press_telegram_button(chat, "sub:topic:warnungen")
    assert "Veranstaltungen, Warnungen" in received(hub, "telegram", str(chat), 3)[2]["text"]
    hub.sandbox.press_telegram_button(chat, "sub:done")
    districts = received(hub, "telegram", str(chat), 4)[3]
    assert "Ortsteil" in districts["text"]
    labels = [button["text"] for row in districts["reply_markup"]["inline_keyboard"] for button in row]
    assert labels == ["Mitte", "Nord", "Süd", "Ost", "Ganze Stadt"]
    hub.sandbox.press_telegram_button(chat, "sub:district:ost")
    final = received(hub, "telegram", str(chat), 5)[4]["text"]
    assert "Veranstaltungen, Warnungen" in final and "Ortsteil Ost" in final

    subscriber = wait_for_subscriber(hub, str(chat), districts=["ost"])
    assert subscriber["state"] == "active" and subscriber["topics"] == ["veranstaltungen", "warnungen"]
    assert {e["source"] for e in consent(hub, subscriber["contact_id"])} == {"telegram"}
    assert hub.conversations_with(str(chat)) == []


def test_web_form_with_a_code_by_sms(hub: Hub) -> None:
    phone = unique_mobile()
    public = httpx.Client(base_url=hub.url, timeout=10, headers={"User-Agent": "Testbrowser/1.0"})
    topics = public.get(f"{PUBLIC}/topics").json()
    assert [t["key"] for t in topics][:4] == ["baustellen", "abfall", "veranstaltungen", "warnungen"]

    started = public.post(
        f"{PUBLIC}/subscriptions/phone", json={"phone": phone, "topics": ["baustellen"], "district": "mitte"}
    )
    assert started.status_code == 202, started.text
    assert started.json()["phone"] == phone and "Code per SMS" in started.json()["detail"]
    code = code_from(hub, phone)
    assert "Stadt Musterstadt" in received(hub, "twilio", phone)[0]["text"]

    again = public.post(f"{PUBLIC}/subscriptions/phone", json={"phone": phone, "topics": ["baustellen"]})
    assert again.status_code == 429 and "warten Sie noch" in again.json()["detail"]

    wrong = public.post(
        f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": f"{(int(code) + 1) % 10**6:06d}"}
    )
    assert wrong.status_code == 422 and "Der Code stimmt nicht. Sie haben noch 4" in wrong.json()["detail"]

    right = public.post(f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": code})
    assert right.status_code == 200, right.text
    assert (right.json()["state"], right.json()["topics"], right.json()["districts"]) == (
        "active",
        ["baustellen"],
        ["mitte"],
    )
    [event] = consent(hub, right.json()["contact_id"])
    assert (event["action"], event["source"]) == ("subscribed", "form")
    assert event["evidence"]["ip"] == "127.0.0.1" and event["evidence"]["user_agent"] == "Testbrowser/1.0"

    used = public.post(f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": code})
    assert used.status_code == 422 and "keinen gültigen Code" in used.json()["detail"]


def test_web_form_refuses_guessing_other_countries_and_unknown_topics(hub: Hub) -> None:
    public = httpx.Client(base_url=hub.url, timeout=10)
    phone = unique_mobile()
    never_asked = public.post(f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": "123456"})
    assert never_asked.status_code == 422 and "keinen gültigen Code" in never_asked.json()["detail"]

    assert public.post(f"{PUBLIC}/subscriptions/phone", json={"phone": phone}).status_code == 202
    code = code_from(hub, phone)
    guess = f"{(int(code) + 1) % 10**6:06d}"
    statuses = [
        public.post(f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": guess}).status_code
        for _ in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 429]
    late = public.post(f"{PUBLIC}/subscriptions/phone/verify", json={"phone": phone, "code": code})
    assert late.status_code == 429 and "zu oft falsch" in late.json()["detail"]
    assert subscriber_with(hub, phone) is None

    american = public.post(f"{PUBLIC}/subscriptions/phone", json={"phone": "+1 202 555 0123", "language": "en"})
    assert american.status_code == 422 and "only send codes to numbers from these countries: DE" in american.text
    assert hub.outbox(kind="twilio", to="+12025550123") == []

    unknown = public.post(f"{PUBLIC}/subscriptions/phone", json={"phone": unique_mobile(), "topics": ["sperrmuell"]})
    assert unknown.status_code == 422 and "sperrmuell" in unknown.json()["detail"]
    assert public.get("/api/v1/public/nirgendwo/topics").status_code == 404


def test_email_double_opt_in(hub: Hub) -> None:
    address = f"opt-in-{uuid.uuid4().hex[:8]}@example.org"
    public = httpx.Client(base_url=hub.url, timeout=10)
    asked = public.post(
        f"{PUBLIC}/subscriptions/email", json={"email": address, "topics": ["abfall"], "district": "sued"}
    )
    assert asked.status_code == 202, asked.text
    assert subscriber_with(hub, address) is None  # nothing until the link is followed
    mail = received(hub, "email", address)[0]
    assert mail["subject"] == "Bitte bestätigen Sie Ihre Anmeldung bei der Stadt Musterstadt"
    link = re.search(r"http\S+/confirm\?token=\S+", mail["text"])
    assert link, mail["text"]

    forged = httpx.get(link.group(0)[:-3] + "AAA", timeout=10)
    assert (
        forged.status_code == 422
        and "ungültig" in forged.text
        and forged.headers["content-type"].startswith("text/html")
    )
    # Opening the link (as a mail scanner does) only shows the button.
    page = httpx.get(link.group(0), timeout=10)
    assert page.status_code == 200 and "Anmeldung bestätigen" in page.text
    assert subscriber_with(hub, address) is None
    confirmed = httpx.post(link.group(0), timeout=10, headers={"User-Agent": "Mailprogramm"})
    assert confirmed.status_code == 200 and "Anmeldung bei der Stadt Musterstadt ist bestätigt" in confirmed.text
    assert '<html lang="de">' in confirmed.text
    subscriber = wait_for_subscriber(hub, address, state="active")
    assert (subscriber["topics"], subscriber["districts"]) == (["abfall"], ["sued"])
    [event] = consent(hub, subscriber["contact_id"])
    assert (event["action"], event["source"], event["evidence"]["user_agent"]) == (
        "confirmed",
        "email_link",
        "Mailprogramm",
    )
    # Confirming again changes nothing.
    assert httpx.post(link.group(0), timeout=10).status_code == 200
    assert len(consent(hub, subscriber["contact_id"])) == 1


def test_email_opt_in_cannot_be_used_to_flood_a_mailbox(hub: Hub) -> None:
    stranger = f"fremd-{uuid.uuid4().hex[:8]}@example.org"
    public = httpx.Client(base_url=hub.url, timeout=10)
    answers = [public.post(f"{PUBLIC}/subscriptions/email", json={"email": stranger}) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert "Zu viele Anmeldeversuche" in answers[-1].json()["detail"]
    assert len(received(hub, "email", stranger, 3)) == 3


def test_gdpr_export_and_erase(hub: Hub) -> None:
    phone = unique_mobile()
    hub.sandbox.send_sms(
        from_=phone, to=hub.accounts["twilio"]["address"], body="Meine Hecke am Birkenweg 7 ist zu hoch?"
    )
    hub.sandbox.send_sms(from_=phone, to=hub.accounts["twilio"]["address"], body="START")
    subscriber = wait_for_subscriber(hub, phone, state="active")
    contact_id = subscriber["contact_id"]

    export = hub.api.get(f"/api/v1/contacts/{contact_id}/export")
    assert export.status_code == 200
    document = export.json()
    assert [i["address"] for i in document["identities"]] == [phone]
    bodies = [m["body"] for c in document["conversations"] for m in c["messages"]]
    assert "Meine Hecke am Birkenweg 7 ist zu hoch?" in bodies
    assert [e["action"] for e in document["consent_events"]] == ["subscribed"]

    erased = hub.api.post(f"/api/v1/contacts/{contact_id}/erase")
    assert erased.status_code == 200, erased.text
    assert erased.json()["kept"]["messages"] >= 3
    after = hub.api.get(f"/api/v1/contacts/{contact_id}/export").json()
    assert after["identities"] == [] and phone not in str(after) and "Birkenweg" not in str(after)
    assert after["subscription"]["state"] == "stopped"
    assert [e["action"] for e in after["consent_events"]] == ["subscribed", "erased"]
    assert hub.api.post(f"/api/v1/contacts/{contact_id}/erase").status_code == 200
    assert hub.api.post("/api/v1/contacts/999999/erase").status_code == 404


def test_csv_import_is_all_or_nothing(hub: Hub, tmp_path: Path) -> None:
    first, second = unique_mobile(), unique_mobile()
    broken = tmp_path / "alt.csv"
    broken.write_text(
        "phone;topics;district;consent_evidence\n"
        f"{first};abfall;nord;Unterschriftenliste Stadtfest\n"
        f"{second};abfall;atlantis;Unterschriftenliste Stadtfest\n",
        encoding="utf-8",
    )
    failed = hub.cli("subscribers", "import", str(broken))
    assert failed.returncode != 0
    assert "alt.csv:3: Unbekannter Ortsteil 'atlantis'" in failed.stderr
    assert subscriber_with(hub, first) is None

    good = tmp_path / "neu.csv"
    good.write_text(
        "phone;topics;district;consent_evidence;consent_date\n"
        f"{first};abfall;nord;Unterschriftenliste Stadtfest;2025-06-14\n"
        f"{second};;;Formular Bürgerbüro;2025-06-15\n",
        encoding="utf-8",
    )
    done = hub.cli("subscribers", "import", str(good))
    assert done.returncode == 0, done.stderr
    imported = wait_for_subscriber(hub, first, state="active")
    assert (imported["topics"], imported["districts"]) == (["abfall"], ["nord"])
    [event] = consent(hub, imported["contact_id"])
    assert (event["action"], event["source"]) == ("imported", "import")
    assert event["evidence"]["consent_evidence"] == "Unterschriftenliste Stadtfest" and event["evidence"]["line"] == 2
    assert wait_for_subscriber(hub, second, state="active")["topics"] == []


def test_a_telegram_subscriber_adds_a_verified_phone_by_code(hub: Hub) -> None:
    chat, phone = 800000000 + uuid.uuid4().int % 100000000, unique_mobile()
    # The number wrote to the town before, so it is a contact of its own until it is proven.
    hub.sandbox.send_sms(from_=phone, to=hub.accounts["twilio"]["address"], body="Wann ist Sperrmüll?")
    by_sms = hub.wait_for_conversation_with(phone)

    hub.sandbox.send_telegram(chat_id=chat, text="ANMELDEN ABFALL", first_name="Ida")
    received(hub, "telegram", str(chat))
    hub.sandbox.send_telegram(chat_id=chat, text=f"TELEFON {phone}", first_name="Ida")
    assert "Code per SMS" in received(hub, "telegram", str(chat), 2)[1]["text"]
    code = re.search(r"\b(\d{6})\b", received(hub, "twilio", phone, 2)[-1]["text"])
    assert code, "no code in the SMS"

    hub.sandbox.send_telegram(chat_id=chat, text="000000" if code.group(1) != "000000" else "111111", first_name="Ida")
    assert "stimmt nicht" in received(hub, "telegram", str(chat), 3)[2]["text"]
    hub.sandbox.send_telegram(chat_id=chat, text=code.group(1), first_name="Ida")
    assert "bestätigt" in received(hub, "telegram", str(chat), 4)[3]["text"]

    subscriber = wait_for_subscriber(hub, str(chat), state="active")
    identities = hub.api.get(f"/api/v1/contacts/{subscriber['contact_id']}").json()["identities"]
    assert {(i["kind"], i["address"]) for i in identities} == {("telegram", str(chat)), ("phone", phone)}
    # The earlier SMS conversation now belongs to the same person.
    assert hub.api.get(f"/api/v1/conversations/{by_sms['id']}").json()["contact"]["id"] == subscriber["contact_id"]
