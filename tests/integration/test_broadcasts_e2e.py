"""Broadcasts end to end: citizens subscribe through the sandbox, staff send through the API, workers deliver."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx

from tests.running_hub import Hub, wait_for


def mobile() -> str:
    return "+49152" + str(uuid.uuid4().int)[:8]


def subscribe_by_sms(hub: Hub, number: str, words: str) -> None:
    hub.sandbox.send_sms(from_=number, to=hub.accounts["twilio"]["address"], body=f"ANMELDEN {words}".strip())
    outbox_has(hub, "twilio", number, lambda text: "angemeldet" in text.lower())


def outbox_has(hub: Hub, kind: str, to: str, matches: Any, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(
        lambda: len(found := [i for i in hub.outbox(kind=kind, to=to) if matches(i["text"])]) >= count and found,
        what=f"{count} matching {kind} message(s) to {to}",
    )


def send(hub: Hub, **draft: Any) -> dict[str, Any]:
    created = hub.api.post("/api/v1/broadcasts", json={"kind": "announcement", **draft})
    assert created.status_code == 201, created.text
    broadcast_id = created.json()["id"]
    if created.json()["kind"] not in ("warning", "all_clear"):
        assert hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/submit").status_code == 200
    approved = hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/approve")
    assert approved.status_code == 200, approved.text
    return approved.json()  # type: ignore[no-any-return]


def finished_report(hub: Hub, broadcast_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        report = hub.api.get(f"/api/v1/broadcasts/{broadcast_id}/report").json()
        return report if report["status"] == "completed" else None

    return wait_for(done, what=f"broadcast {broadcast_id} to complete")


def test_targeted_announcement_reaches_exactly_the_subscribers_of_the_topic(hub: Hub) -> None:
    waste = [mobile() for _ in range(3)]
    roadworks = mobile()
    for number in waste:
        subscribe_by_sms(hub, number, "ABFALL")
    subscribe_by_sms(hub, roadworks, "BAUSTELLEN")
    title = f"Abfuhr verschoben {uuid.uuid4().hex[:6]}"

    preview_of = send(hub, title=title, texts={"de": {"body": "Die Biotonne wird am Samstag geleert."}},
                      topics=["abfall"], channels=["twilio"])  # fmt: skip
    report = finished_report(hub, preview_of["id"])
    received = Counter(i["to"] for i in hub.outbox(kind="twilio") if title in i["text"])
    assert all(received[number] == 1 for number in waste)
    assert received[roadworks] == 0
    assert report["per_channel"]["twilio"]["sent"] + report["per_channel"]["twilio"]["delivered"] >= 3

    csv_lines = hub.api.get(f"/api/v1/broadcasts/{preview_of['id']}/report.csv").text.splitlines()
    assert csv_lines[0].startswith("lieferung;kontakt;kanal")
    assert {line.split(";")[3] for line in csv_lines[1:]} >= set(waste)


def test_stop_on_telegram_silences_the_same_citizen_on_sms(hub: Hub) -> None:
    number, chat_id = mobile(), 600000000 + uuid.uuid4().int % 100000000
    subscribe_by_sms(hub, number, "")
    hub.sandbox.send_telegram(chat_id=chat_id, text="Hallo, ich bin es auch per Telegram.", first_name="Jana")
    by_sms, by_telegram = hub.wait_for_conversation_with(number), hub.wait_for_conversation_with(str(chat_id))
    merged = hub.api.post(
        f"/api/v1/contacts/{by_sms['contact']['id']}/merge", json={"other_contact_id": by_telegram["contact"]["id"]}
    )
    assert merged.status_code == 200
    hub.sandbox.send_telegram(chat_id=chat_id, text="STOP", first_name="Jana")
    outbox_has(hub, "telegram", str(chat_id), lambda text: "abgemeldet" in text.lower())

    title = f"Stadtfest {uuid.uuid4().hex[:6]}"
    # A topic of its own keeps the broadcast small; the citizen chose no topic, so hears of all.
    topic = "t" + uuid.uuid4().hex[:8]
    assert hub.api.post("/api/v1/topics", json={"key": topic, "name_de": f"Test {topic}"}).status_code == 201
    broadcast = send(hub, title=title, texts={"de": {"body": "Am Sonntag ist Stadtfest."}}, topics=[topic])
    finished_report(hub, broadcast["id"])
    assert [i for i in hub.outbox(to=number) if title in i["text"]] == []
    assert [i for i in hub.outbox(to=str(chat_id)) if title in i["text"]] == []


def test_a_warning_goes_out_at_once_without_a_second_approver(hub: Hub) -> None:
    number = mobile()
    subscribe_by_sms(hub, number, "WARNUNGEN")
    storm = {"de": {"body": "Orkanböen bis 120 km/h. Bleiben Sie drinnen."}}
    warning = send(hub, kind="warning", severity="Severe", title="Sturmwarnung", texts=storm, topics=["warnungen"])
    assert warning["status"] == "approved"
    [message] = outbox_has(hub, "twilio", number, lambda text: "Sturmwarnung" in text)
    assert message["text"].startswith("WARNUNG (schwer): Sturmwarnung")


def test_survey_answered_with_a_telegram_button_is_tallied(hub: Hub) -> None:
    chat_id = 700000000 + uuid.uuid4().int % 100000000
    hub.sandbox.send_telegram(chat_id=chat_id, text="ANMELDEN VERANSTALTUNGEN", first_name="Tom")
    outbox_has(hub, "telegram", str(chat_id), lambda text: "angemeldet" in text.lower())
    question = f"Kinoabend im Park {uuid.uuid4().hex[:6]}?"
    survey = send(hub, kind="survey", title=question, options=["Ja", "Nein"], topics=["veranstaltungen"],
                  texts={"de": {"body": "Hätten Sie Lust auf einen Kinoabend?"}})  # fmt: skip
    [sent] = outbox_has(hub, "telegram", str(chat_id), lambda text: question in text)
    buttons = [button["text"] for row in sent["reply_markup"]["inline_keyboard"] for button in row]
    assert buttons == ["Ja", "Nein"]

    hub.sandbox.press_telegram_button(chat_id=chat_id, data=f"survey:{survey['id']}:0", first_name="Tom")
    outbox_has(hub, "telegram", str(chat_id), lambda text: "gezählt" in text)
    answers = hub.api.get(f"/api/v1/broadcasts/{survey['id']}/report").json()["answers"]
    assert answers == [{"option": "Ja", "count": 1}, {"option": "Nein", "count": 0}]


def test_bad_broadcasts_are_refused_with_a_reason(hub: Hub) -> None:
    cases = [
        ({"title": "x", "texts": {"de": {"body": "Hallo"}}, "topics": ["gibtsnicht"]}, "Unbekannte Themen"),
        ({"title": "x", "texts": {"de": {"body": "   "}}}, "Text"),
        ({"kind": "survey", "title": "x", "texts": {"de": {"body": "Frage"}}, "options": ["nur eine"]}, "2 bis 9"),
        ({"kind": "warning", "title": "x", "texts": {"de": {"body": "Achtung"}}}, "Stufe"),
    ]
    for draft, reason in cases:
        refused = hub.api.post("/api/v1/broadcasts", json={"kind": "announcement", **draft})
        assert refused.status_code == 422, refused.text
        assert reason in refused.json()["detail"]
    too_long = hub.api.post(
        "/api/v1/broadcasts", json={"kind": "announcement", "title": "x", "texts": {"de": {"body": "x" * 1700}}}
    )
    assert too_long.status_code == 422
    assert "für twilio zu lang" in too_long.json()["detail"]
    by_mail = hub.api.post(
        "/api/v1/broadcasts",
        json={"kind": "announcement", "title": "x", "texts": {"de": {"body": "x" * 1700}}, "channels": ["email"]},
    )
    assert by_mail.status_code == 201


def test_email_survey_with_answer_link_and_one_click_unsubscribe(hub: Hub) -> None:
    address = f"leserin-{uuid.uuid4().hex[:8]}@example.org"
    hub.sandbox.send_email(from_=address, to=hub.accounts["email"]["address"], subject="ANMELDEN", text="ANMELDEN")
    outbox_has(hub, "email", address, lambda text: "angemeldet" in text.lower())
    title = f"Bücherei länger offen {uuid.uuid4().hex[:6]}?"
    survey = send(hub, kind="survey", title=title, options=["Ja", "Nein"], channels=["email"],
                  texts={"de": {"body": "Soll die Bücherei samstags öffnen?"}})  # fmt: skip
    [mail] = outbox_has(hub, "email", address, lambda text: "samstags" in text)
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = mail["headers"]["List-Unsubscribe"].strip("<>")
    assert unsubscribe_url.startswith(f"{hub.url}/u/")
    assert f"Abmelden: {unsubscribe_url}" in mail["text"]
    answer_url = next(line.split(": ", 1)[1] for line in mail["text"].splitlines() if line.startswith("Antworten: "))

    with httpx.Client() as browser:  # the answer page's form carries the CSRF token of its cookie
        page = browser.get(answer_url)
        assert page.status_code == 200 and "Soll die Bücherei samstags öffnen?" in page.text
        vote = {"option": "1", "csrf_token": browser.cookies["rathaus_csrf"]}
        assert browser.post(answer_url, data=vote).status_code == 200
    answers = hub.api.get(f"/api/v1/broadcasts/{survey['id']}/report").json()["answers"]
    assert answers == [{"option": "Ja", "count": 0}, {"option": "Nein", "count": 1}]

    # Following the link only asks; a mail scanner opening it unsubscribes nobody.
    assert "Ja, abmelden" in httpx.get(unsubscribe_url).text
    contact_id = hub.wait_for_conversation_with(address)["contact"]["id"]
    assert hub.api.get(f"/api/v1/subscribers/{contact_id}").json()["state"] == "active"
    one_click = httpx.post(unsubscribe_url, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert one_click.status_code == 200 and "keine Nachrichten mehr" in one_click.text
    assert hub.api.get(f"/api/v1/subscribers/{contact_id}").json()["state"] == "stopped"
    forged = httpx.post(unsubscribe_url[:-3] + "abc")
    assert forged.status_code == 400 and "ungültig" in forged.text


def test_messenger_subscription_and_survey_answer_by_quick_reply(hub: Hub) -> None:
    page, psid = hub.accounts["facebook"]["address"], str(8000000000000000 + uuid.uuid4().int % 10**15)
    hub.sandbox.send_messenger(psid=psid, text="ANMELDEN VERANSTALTUNGEN", page_id=page)
    outbox_has(hub, "facebook", psid, lambda text: "angemeldet" in text.lower())
    question = f"Flohmarkt im Mai {uuid.uuid4().hex[:6]}?"
    survey = send(hub, kind="survey", title=question, options=["Ja", "Nein"], topics=["veranstaltungen"],
                  channels=["facebook"], texts={"de": {"body": "Kommen Sie zum Flohmarkt?"}})  # fmt: skip
    [sent] = outbox_has(hub, "facebook", psid, lambda text: question in text)
    assert [reply["title"] for reply in sent["quick_replies"]] == ["Ja", "Nein"]
    assert sent["messaging_type"] == "RESPONSE"  # inside the 24-hour window the citizen opened

    hub.sandbox.send_messenger(psid=psid, text="Nein", page_id=page, quick_reply_payload=f"survey:{survey['id']}:1")
    outbox_has(hub, "facebook", psid, lambda text: "gezählt" in text)
    answers = hub.api.get(f"/api/v1/broadcasts/{survey['id']}/report").json()["answers"]
    assert answers == [{"option": "Ja", "count": 0}, {"option": "Nein", "count": 1}]


def test_survey_answered_by_sms_reply(hub: Hub) -> None:
    number = mobile()
    subscribe_by_sms(hub, number, "VERANSTALTUNGEN")
    question = f"Weihnachtsmarkt verlängern {uuid.uuid4().hex[:6]}?"
    survey = send(hub, kind="survey", title=question, options=["Ja", "Nein", "Egal"], topics=["veranstaltungen"],
                  channels=["twilio"], texts={"de": {"body": "Bis zum 30.12.?"}})  # fmt: skip
    [sent] = outbox_has(hub, "twilio", number, lambda text: question in text)
    assert "Antworten Sie mit 1 für Ja, 2 für Nein, 3 für Egal." in sent["text"]
    hub.sandbox.send_sms(from_=number, to=hub.accounts["twilio"]["address"], body="3")
    outbox_has(hub, "twilio", number, lambda text: "gezählt" in text)
    answers = hub.api.get(f"/api/v1/broadcasts/{survey['id']}/report").json()["answers"]
    assert answers == [{"option": "Ja", "count": 0}, {"option": "Nein", "count": 0}, {"option": "Egal", "count": 1}]
