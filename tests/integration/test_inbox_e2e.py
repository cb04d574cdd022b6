"""End to end through the sandbox: citizens write on every channel, staff answer from one inbox."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.running_hub import Hub, wait_for

REFERENCE = re.compile(r"A-\d{4}-\d{5}")


def unique_mobile() -> str:
    return "+49151" + str(uuid.uuid4().int)[:8]


def outbox_to(hub: Hub, kind: str, to: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (items := hub.outbox(kind=kind, to=to)) and len(items) >= count and items,
        what=f"{count} {kind} message(s) to {to} in the sandbox",
    )


def reply_and_wait_sent(hub: Hub, conversation_id: int, text: str) -> dict[str, Any]:
    response = hub.api.post(f"/api/v1/conversations/{conversation_id}/replies", json={"text": text})
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]

    def sent() -> dict[str, Any] | None:
        found = next(m for m in hub.messages(conversation_id) if m["id"] == message_id)
        return found if found["status"] in ("sent", "delivered") else None

    return wait_for(sent, what=f"reply {message_id} to be sent")


def test_demo_shows_conversations_from_all_five_channels(hub: Hub) -> None:
    channels = {"twilio", "telegram", "facebook", "email", "whatsapp"}
    # The seeded bookings' concerns are cases from the start; the citizens' messages come in after.
    demo = wait_for(
        lambda: (found := hub.conversations()) and {c["channel"]["kind"] for c in found} == channels and found,
        what="the demo conversations",
    )
    kinds = {conversation["channel"]["kind"] for conversation in demo}
    assert kinds == channels
    assert all(REFERENCE.fullmatch(conversation["reference"]) for conversation in demo)
    # Newest activity first.
    activity = [conversation["last_activity_at"] for conversation in demo]
    assert activity == sorted(activity, reverse=True)


def test_sms_is_acknowledged_answered_and_delivered(hub: Hub) -> None:
    citizen = unique_mobile()
    hub.sandbox.send_sms(
        from_=citizen,
        to=hub.accounts["twilio"]["address"],
        body="Müll wurde nicht abgeholt, Lindenweg 3",
    )
    conversation = hub.wait_for_conversation_with(citizen)
    assert conversation["status"] == "open"
    assert conversation["waiting_seconds"] is not None

    acknowledgement = outbox_to(hub, "twilio", citizen)[0]
    assert conversation["reference"] in acknowledgement["text"]
    assert acknowledgement["text"].startswith("Vielen Dank")

    reply = reply_and_wait_sent(hub, conversation["id"], "Danke, die Abfuhr kommt morgen früh nach.")
    assert reply["segments"] == 1 and reply["encoding"] == "GSM-7"
    received = outbox_to(hub, "twilio", citizen, count=2)
    assert received[-1]["text"] == "Danke, die Abfuhr kommt morgen früh nach."

    # The sandbox reports delivery through a signed status callback.
    wait_for(
        lambda: next(m for m in hub.messages(conversation["id"]) if m["id"] == reply["id"])["status"] == "delivered",
        what="the delivered status callback",
    )
    answered = hub.api.get(f"/api/v1/conversations/{conversation['id']}").json()
    assert answered["first_response_at"] is not None and answered["waiting_seconds"] is None


def test_second_message_joins_the_open_conversation_and_reopens_after_resolution(hub: Hub) -> None:
    citizen = unique_mobile()
    to = hub.accounts["twilio"]["address"]
    hub.sandbox.send_sms(from_=citizen, to=to, body="Erste Nachricht")
    conversation = hub.wait_for_conversation_with(citizen)
    hub.sandbox.send_sms(from_=citizen, to=to, body="Zweite Nachricht")
    wait_for(lambda: len(hub.messages(conversation["id"])) >= 3, what="the second message")  # 2 in + ack
    inbound = [m["body"] for m in hub.messages(conversation["id"]) if m["direction"] == "inbound"]
    assert inbound == ["Erste Nachricht", "Zweite Nachricht"]

    resolved = hub.api.patch(f"/api/v1/conversations/{conversation['id']}", json={"status": "resolved"})
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_at"]
    hub.sandbox.send_sms(from_=citizen, to=to, body="Doch noch eine Frage")
    wait_for(
        lambda: hub.api.get(f"/api/v1/conversations/{conversation['id']}").json()["status"] == "open",
        what="the conversation to reopen",
    )
    assert len([c for c in hub.conversations() if c["id"] == conversation["id"]]) == 1
    # Only one acknowledgement: the reopened case keeps its reference.
    assert len(hub.outbox(kind="twilio", to=citizen)) == 1


def test_telegram_message_reply_and_english_acknowledgement(hub: Hub) -> None:
    chat_id = 500000000 + uuid.uuid4().int % 100000000
    hub.sandbox.send_telegram(
        bot_username=hub.accounts["telegram"]["address"],
        chat_id=chat_id,
        first_name="John",
        language_code="en",
        text="When is the recycling centre open?",
    )
    conversation = hub.wait_for_conversation_with(str(chat_id))
    assert conversation["contact"]["display_name"] == "John"
    assert conversation["contact"]["language"] == "en"
    acknowledgement = outbox_to(hub, "telegram", str(chat_id))[0]
    assert acknowledgement["text"].startswith("Thank you") and conversation["reference"] in acknowledgement["text"]

    reply_and_wait_sent(hub, conversation["id"], "Der Wertstoffhof ist Mo–Sa von 8 bis 16 Uhr geöffnet.")
    assert outbox_to(hub, "telegram", str(chat_id), count=2)[-1]["text"].startswith("Der Wertstoffhof")


def test_messenger_message_gets_a_reply_inside_the_window(hub: Hub) -> None:
    psid = str(7000000000000000 + uuid.uuid4().int % 10**15)
    hub.sandbox.send_messenger(page_id=hub.accounts["facebook"]["address"], psid=psid, text="Hallo Rathaus 👋")
    conversation = hub.wait_for_conversation_with(psid)
    reply_and_wait_sent(hub, conversation["id"], "Hallo! Wie können wir helfen?")
    received = outbox_to(hub, "facebook", psid, count=2)[-1]
    assert received["text"] == "Hallo! Wie können wir helfen?"
    assert received["messaging_type"] == "RESPONSE"


def test_comment_is_answered_with_a_comment_reply(hub: Hub) -> None:
    page = hub.accounts["facebook"]["address"]
    author = str(1000000000000000 + uuid.uuid4().int % 10**15)
    post_id = f"{page}_{uuid.uuid4().int % 10**15}"
    sent = hub.sandbox.post_comment(
        page_id=page,
        from_id=author,
        from_name="Jürgen Schäfer",
        post_id=post_id,
        message="Wann ist die Straße wieder frei?",
    )
    conversation = hub.wait_for_conversation_with(author)
    assert conversation["thread_key"] == f"post:{post_id}"
    reply_and_wait_sent(hub, conversation["id"], "Voraussichtlich ab Freitag.")

    def comment_reply() -> dict[str, Any] | None:
        return next(
            (item for item in hub.outbox(kind="facebook") if item["text"] == "Voraussichtlich ab Freitag."),
            None,
        )

    assert wait_for(comment_reply, what="the comment reply")["reply_to_ref"] == sent["comment_id"]


def test_email_in_latin1_with_attachment_and_threaded_reply(hub: Hub) -> None:
    citizen = f"buerger-{uuid.uuid4().hex[:8]}@example.org"
    pdf = b"%PDF-1.4\n% Bauantrag\n%%EOF\n"
    sent = hub.sandbox.send_email(
        from_=citizen,
        from_name="Jörg Weiß",
        to=hub.accounts["email"]["address"],
        subject="Bauantrag Gartenhaus",
        text="Grüße aus der Straße am Bach.\nAnbei der Antrag.",
        charset="iso-8859-1",
        transfer_encoding="quoted-printable",
        attachments=[("Bauantrag.pdf", "application/pdf", pdf)],
    )
    conversation = hub.wait_for_conversation_with(citizen)
    assert conversation["subject"] == "Bauantrag Gartenhaus"
    assert conversation["contact"]["display_name"] == "Jörg Weiß"
    inbound = next(m for m in hub.messages(conversation["id"]) if m["direction"] == "inbound")
    assert inbound["body"].startswith("Grüße aus der Straße am Bach.")
    [attachment] = inbound["attachments"]
    assert attachment["filename"] == "Bauantrag.pdf"
    assert hub.api.get(attachment["download"]).content == pdf

    reply_and_wait_sent(hub, conversation["id"], "Vielen Dank, wir prüfen Ihren Antrag.")
    mails = outbox_to(hub, "email", citizen, count=2)
    acknowledgement, answer = mails[0], mails[-1]
    assert acknowledgement["headers"]["Auto-Submitted"] == "auto-replied"
    citizen_id = "<" + sent["message_id"].strip("<>") + ">"
    assert answer["headers"]["In-Reply-To"] == citizen_id
    assert citizen_id in answer["headers"]["References"]
    assert conversation["reference"] in answer["subject"]
    assert answer["text"].strip() == "Vielen Dank, wir prüfen Ihren Antrag."

    # The citizen answers the reply: it threads into the same conversation.
    hub.sandbox.send_email(
        from_=citizen,
        to=hub.accounts["email"]["address"],
        subject="Re: " + answer["subject"],
        text="Danke!",
        in_reply_to=answer["headers"]["Message-ID"],
        references=[citizen_id, answer["headers"]["Message-ID"]],
    )
    wait_for(
        lambda: [m["body"] for m in hub.messages(conversation["id"]) if m["direction"] == "inbound"][-1] == "Danke!",
        what="the citizen's answer in the same conversation",
    )


def test_machine_mail_never_opens_a_case_and_a_bounce_fails_the_answer(hub: Hub) -> None:
    citizen = f"abwesend-{uuid.uuid4().hex[:8]}@example.org"
    town = hub.accounts["email"]["address"]
    hub.sandbox.send_email(from_=citizen, to=town, subject="Sondernutzung", text="Darf ich am Samstag feiern?")
    conversation = hub.wait_for_conversation_with(citizen)
    answer = reply_and_wait_sent(hub, conversation["id"], "Ja, mit Genehmigung.")
    our_id = outbox_to(hub, "email", citizen, count=2)[-1]["headers"]["Message-ID"]

    # The citizen's out-of-office answers the clerk: it joins that case, and nobody answers it.
    hub.sandbox.send_email(
        from_=citizen, to=town, subject="Automatische Antwort: Sondernutzung", text="Ich bin bis Montag nicht im Büro.",
        in_reply_to=our_id, headers={"Auto-Submitted": "auto-replied"},
    )  # fmt: skip
    wait_for(
        lambda: (
            [m["automated"] for m in hub.messages(conversation["id"]) if m["direction"] == "inbound"] == [False, True]
        ),
        what="the out-of-office reply in the citizen's case",
    )
    cases = hub.api.get("/api/v1/conversations").json()["total"]
    # A robot writing first opens nothing: its mail is kept as an ignored event.
    robot = hub.sandbox.send_email(
        from_=f"newsletter-{uuid.uuid4().hex[:8]}@example.org", to=town, subject="Neuigkeiten", text="Unser Angebot",
        headers={"Precedence": "bulk"},
    )  # fmt: skip
    ignored = wait_for(
        lambda: [e for e in hub.api.get("/api/v1/inbound-events", params={"state": "ignored"}).json()
                 if e["provider_id"] == robot["message_id"].strip("<>")],
        what="the robot's mail kept as ignored",
    )  # fmt: skip
    assert ignored[0]["outcome"].startswith("ignored: automated mail")
    # The clerk's answer bounces: it is marked failed with the report's status code.
    bounce = (
        "From: MAILER-DAEMON@mx.example.org\nTo: " + town + "\nSubject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: <bounce-{uuid.uuid4().hex}@mx.example.org>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: text/plain\n\nUser unknown.\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        f"Final-Recipient: rfc822; {citizen}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: {our_id}\n--b--\n"
    )
    hub.sandbox.send_raw_email(town, "", bounce)

    def failed_answer() -> dict[str, Any] | None:
        found = next(m for m in hub.messages(conversation["id"]) if m["id"] == answer["id"])
        return found if found["status"] == "failed" else None

    failed = wait_for(failed_answer, what="the bounced answer marked failed")
    assert failed["error_code"] == "5.1.1"
    assert len(hub.messages(conversation["id"])) == 4  # question, acknowledgement, answer, out-of-office
    assert len(hub.outbox(kind="email", to=citizen)) == 2
    assert hub.api.get("/api/v1/conversations").json()["total"] == cases


def test_sms_and_email_of_one_citizen_merge_into_one_contact(hub: Hub) -> None:
    phone, mail = unique_mobile(), f"merge-{uuid.uuid4().hex[:8]}@example.org"
    hub.sandbox.send_sms(from_=phone, to=hub.accounts["twilio"]["address"], body="Per SMS")
    hub.sandbox.send_email(from_=mail, to=hub.accounts["email"]["address"], subject="Per Mail", text="Per Mail")
    by_sms, by_mail = hub.wait_for_conversation_with(phone), hub.wait_for_conversation_with(mail)
    assert by_sms["contact"]["id"] != by_mail["contact"]["id"]

    merged = hub.api.post(
        f"/api/v1/contacts/{by_sms['contact']['id']}/merge",
        json={"other_contact_id": by_mail["contact"]["id"]},
    )
    assert merged.status_code == 200, merged.text
    assert {(i["kind"], i["address"]) for i in merged.json()["identities"]} == {
        ("phone", phone),
        ("email", mail),
    }
    assert hub.api.get(f"/api/v1/conversations/{by_mail['id']}").json()["contact"]["id"] == by_sms["contact"]["id"]
    # A new SMS still lands in the same (now merged) contact.
    hub.sandbox.send_sms(from_=phone, to=hub.accounts["twilio"]["address"], body="Nochmal per SMS")
    wait_for(lambda: len(hub.messages(by_sms["id"])) >= 3, what="the follow-up SMS")


def test_notes_assignment_status_filters_and_pagination(hub: Hub) -> None:
    citizen = unique_mobile()
    hub.sandbox.send_sms(from_=citizen, to=hub.accounts["twilio"]["address"], body="Bitte um Rückruf")
    conversation = hub.wait_for_conversation_with(citizen)
    users = hub.api.get("/api/v1/users").json()
    clerk = next(u for u in users if u["role"] == "staff")
    team = hub.api.get("/api/v1/teams").json()[0]

    note = hub.api.post(f"/api/v1/conversations/{conversation['id']}/notes", json={"text": "Bürger ist bekannt."})
    assert note.status_code == 201 and note.json()["direction"] == "note"
    patched = hub.api.patch(
        f"/api/v1/conversations/{conversation['id']}",
        json={"assignee_id": clerk["id"], "team_id": team["id"], "status": "pending"},
    ).json()
    assert (patched["assignee_id"], patched["team_id"], patched["status"]) == (
        clerk["id"],
        team["id"],
        "pending",
    )

    mine = hub.conversations(assignee_id=clerk["id"], status="pending")
    assert [c["id"] for c in mine] == [conversation["id"]]
    assert all(c["channel"]["kind"] == "email" for c in hub.conversations(channel="email"))
    # The note never leaves the hub.
    assert all(item["text"] != "Bürger ist bekannt." for item in hub.outbox(kind="twilio", to=citizen))

    page = hub.api.get("/api/v1/conversations", params={"per_page": 2, "page": 1}).json()
    second = hub.api.get("/api/v1/conversations", params={"per_page": 2, "page": 2}).json()
    assert len(page["items"]) == 2 and page["total"] >= 5 and page["pages"] == -(-page["total"] // 2)
    assert {c["id"] for c in page["items"]}.isdisjoint({c["id"] for c in second["items"]})

    cleared = hub.api.patch(f"/api/v1/conversations/{conversation['id']}", json={"assignee_id": None}).json()
    assert cleared["assignee_id"] is None and cleared["team_id"] == team["id"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"status": "closed"}, "Unbekannter Status"),
        ({"channel": "fax"}, "Unbekannter Kanaltyp"),
        ({"page": 0}, "page"),
    ],
)
def test_bad_list_filters_get_a_clear_error(hub: Hub, params: dict[str, Any], fragment: str) -> None:
    response = hub.api.get("/api/v1/conversations", params=params)
    assert response.status_code in (400, 422)
    assert fragment in response.json()["detail"]


def test_api_refuses_missing_and_wrong_tokens(hub: Hub) -> None:
    assert httpx.get(f"{hub.url}/api/v1/conversations").status_code == 401
    wrong = httpx.get(f"{hub.url}/api/v1/conversations", headers={"Authorization": "Bearer rh_falsch"})
    assert wrong.status_code == 401 and "Token" in wrong.json()["detail"]


def test_health_readiness_and_openapi(hub: Hub) -> None:
    assert httpx.get(f"{hub.url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{hub.url}/readyz").json()
    assert ready == {"status": "ready", "database": "ok", "broker": "ok"}
    paths = httpx.get(f"{hub.url}/openapi.json").json()["paths"]
    assert "/webhooks/twilio/{channel_id}" in paths and "/api/v1/conversations" in paths


def test_channel_list_shows_webhook_urls_and_secrets_only_on_request(hub: Hub) -> None:
    listed = json.loads(hub.cli("channel", "list", "--json").stdout)
    twilio = next(item for item in listed if item["kind"] == "twilio")
    assert twilio["webhook_url"] == f"{hub.url}/webhooks/twilio/{twilio['id']}"
    assert set(twilio["secrets"].values()) == {"********"}
    assert hub.accounts["twilio"]["secrets"]["auth_token"] != "********"
