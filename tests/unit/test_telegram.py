"""Telegram adapter: secret checks, parsing captured updates, sends to a fake Bot API."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.base import (
    Attachment,
    Choice,
    IgnoredEvent,
    InboundMessage,
    Location,
    OptedOutError,
    OptOut,
    OutboundMessage,
    PayloadError,
    PermanentError,
    Receipt,
    TransientError,
    VerificationError,
    WebhookRequest,
)
from channels.telegram import (
    IGNORED_UPDATE_TYPES,
    REASON_BOT_BLOCKED,
    REASON_BOT_REMOVED,
    REASON_BOT_UNBLOCKED,
    UPDATE_HANDLERS,
    TelegramAdapter,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
BOT_TOKEN = "7123456789:AAH4kx9Qe2mT0vLrW8yZ3bN5cD6fG1hJ7kQ"
WEBHOOK_SECRET = "rathaus_musterstadt-4f9a2c7e1b"
CITIZEN_CHAT_ID = 5012345678


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_adapter(api_base_url: str = "https://api.telegram.org/bot") -> TelegramAdapter:
    return TelegramAdapter(
        {"api_base_url": api_base_url, "bot_username": "rathaus_musterstadt_bot"},
        {"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )


def webhook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        url="https://rathaus.example.de/webhooks/telegram/3",
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET} if headers is None else headers,
        body=body,
    )


def parse_fixture(name: str) -> Any:
    events = make_adapter().parse(webhook(fixture_body(name)))
    assert len(events) == 1
    return events[0]


# Secret token


def test_correct_secret_passes() -> None:
    make_adapter().verify(webhook(b"{}"))


def test_secret_header_lookup_ignores_case() -> None:
    make_adapter().verify(webhook(b"{}", {"x-telegram-bot-api-secret-token": WEBHOOK_SECRET}))


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(VerificationError, match="stimmt nicht"):
        make_adapter().verify(webhook(b"{}", {"X-Telegram-Bot-Api-Secret-Token": "geraten"}))


def test_missing_secret_is_rejected() -> None:
    with pytest.raises(VerificationError, match="fehlt"):
        make_adapter().verify(webhook(b"{}", {}))


# Updates


def test_text_message() -> None:
    event = parse_fixture("message__text.json")
    assert event == InboundMessage(
        provider_id=f"{CITIZEN_CHAT_ID}:412",
        sender=str(CITIZEN_CHAT_ID),
        text="Guten Tag, mein Personalausweis ist abgelaufen. Was muss ich tun?",
        sender_name="Jürgen Müller",
        sent_at=datetime(2024, 11, 21, 14, 32, tzinfo=UTC),
        language="de",
    )


def test_photo_with_caption_keeps_the_largest_size() -> None:
    event = parse_fixture("message__photo_with_caption.json")
    assert isinstance(event, InboundMessage)
    assert event.text == "Überfüllter Glascontainer am Lindenplatz"
    assert event.sender == "6198765432"
    assert event.sender_name == "Anna"
    assert event.attachments == (
        Attachment(
            filename=None,
            content_type="image/jpeg",
            url="tg-file:AgACAgIAAxkBAAIBnWc_k3QAAcx8tW1F0pYl9gT2kE3xAAJq4jEbV1H4SXy9c2Zf0iVDAQADAgADeQADNgQ",
            size=153377,
        ),
    )


def test_document_without_caption() -> None:
    event = parse_fixture("message__document.json")
    assert isinstance(event, InboundMessage)
    assert event.text == ""
    assert event.attachments == (
        Attachment(
            filename="Antrag_Sondernutzung.pdf",
            content_type="application/pdf",
            url="tg-file:BQACAgIAAxkBAAIBnmc_k7gAAbx9Wq3mYk0AAX2L8k1uAAJ9WwACV1H4SSf3y2lBSsgwNgQ",
            size=184233,
        ),
    )


def test_edited_message_is_an_edit_dated_at_the_edit() -> None:
    event = parse_fixture("edited_message__text.json")
    assert isinstance(event, InboundMessage)
    assert event.kind == "edit"
    assert event.provider_id == f"{CITIZEN_CHAT_ID}:412:edit:1732199644"
    assert event.text == "Guten Tag, mein Reisepass ist abgelaufen. Was muss ich tun?"
    assert event.sent_at == datetime(2024, 11, 21, 14, 34, 4, tzinfo=UTC)


def test_button_press_is_a_postback_from_the_chat() -> None:
    event = parse_fixture("callback_query__button.json")
    assert isinstance(event, InboundMessage)
    assert event.kind == "postback"
    assert event.text == "survey:42:yes"
    assert event.sender == str(CITIZEN_CHAT_ID)
    assert event.sender_name == "Jürgen Müller"
    assert event.postback_ref == "2158374659123456789"
    assert event.provider_id == "callback:2158374659123456789"
    assert not event.shared_chat


def test_the_update_id_is_no_part_of_any_key() -> None:
    """Telegram starts update ids again after a quiet week: the key must be what the update is about."""
    for name in ("message__text.json", "edited_message__text.json", "callback_query__button.json",
                 "my_chat_member__blocked.json"):  # fmt: skip
        update = json.loads(fixture_body(name))
        first = make_adapter().parse(webhook(json.dumps(update).encode()))
        update["update_id"] += 1
        assert make_adapter().parse(webhook(json.dumps(update).encode())) == first, name


def test_a_second_edit_of_a_message_is_an_event_of_its_own() -> None:
    update = json.loads(fixture_body("edited_message__text.json"))
    first = make_adapter().parse(webhook(json.dumps(update).encode()))
    update["edited_message"]["edit_date"] += 30
    [second] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert second.provider_id != first[0].provider_id


def test_a_private_message_is_not_shared_and_a_group_message_is() -> None:
    private = parse_fixture("message__text.json")
    group = parse_fixture("message__group_text.json")
    assert isinstance(private, InboundMessage) and isinstance(group, InboundMessage)
    assert (private.shared_chat, group.shared_chat) == (False, True)
    assert group.sender == "-1001987654321"
    assert group.provider_id == "-1001987654321:1187"
    # The group is the contact, so it goes by its title, not by whoever wrote last.
    assert (private.sender_name, group.sender_name) == ("Jürgen Müller", "Nachbarschaft Lindenplatz")


def test_a_button_press_in_a_group_is_shared() -> None:
    update = json.loads(fixture_body("callback_query__button.json"))
    update["callback_query"]["message"]["chat"] = {"id": -1001987654321, "title": "Lindenplatz", "type": "supergroup"}
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, InboundMessage)
    assert (event.sender, event.shared_chat) == ("-1001987654321", True)


def test_only_button_presses_carry_a_postback_ref() -> None:
    event = parse_fixture("message__text.json")
    assert isinstance(event, InboundMessage)
    assert event.postback_ref is None


def test_button_press_without_message_falls_back_to_the_user() -> None:
    update = json.loads(fixture_body("callback_query__button.json"))
    del update["callback_query"]["message"]
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, InboundMessage)
    assert event.sender == str(CITIZEN_CHAT_ID)


def test_blocking_the_bot_is_an_opt_out_of_the_chat() -> None:
    assert parse_fixture("my_chat_member__blocked.json") == OptOut(
        f"member:{CITIZEN_CHAT_ID}:1732200733:kicked", sender=str(CITIZEN_CHAT_ID), reason=REASON_BOT_BLOCKED
    )


@pytest.mark.parametrize("status", ["kicked", "left"])
def test_removing_the_bot_from_a_group_is_an_opt_out_of_the_group(status: str) -> None:
    update = json.loads(fixture_body("my_chat_member__kicked_from_group.json"))
    update["my_chat_member"]["new_chat_member"]["status"] = status
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert event == OptOut(f"member:-1001987654321:1732203600:{status}", "-1001987654321", REASON_BOT_REMOVED)


def test_unblocking_the_bot_is_recorded_but_ignored() -> None:
    assert parse_fixture("my_chat_member__unblocked.json") == IgnoredEvent(
        f"member:{CITIZEN_CHAT_ID}:1732287133:member", reason=REASON_BOT_UNBLOCKED
    )


def test_channel_post_is_ignored_by_name() -> None:
    event = parse_fixture("channel_post__ignored.json")
    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == "channel_post:283746157"
    assert "channel_post" in event.reason


def test_unknown_update_type_is_ignored_by_name() -> None:
    event = parse_fixture("poll__unknown_type.json")
    assert isinstance(event, IgnoredEvent)
    assert "poll" in event.reason


def test_an_update_type_of_no_use_reads_apart_from_one_the_hub_has_never_seen() -> None:
    [known] = make_adapter().parse(webhook(json.dumps({"update_id": 7, "poll_answer": {"poll_id": "1"}}).encode()))
    [new] = make_adapter().parse(webhook(json.dumps({"update_id": 8, "guest_message": {"id": 1}}).encode()))
    assert isinstance(known, IgnoredEvent) and known.reason == "Update-Typ poll_answer wird nicht verarbeitet"
    assert isinstance(new, IgnoredEvent) and new.reason == "Update-Typ guest_message ist unbekannt"
    assert new.provider_id == "guest_message:8"


def test_every_update_type_is_either_handled_or_named_as_ignored_not_both() -> None:
    assert not set(UPDATE_HANDLERS) & IGNORED_UPDATE_TYPES
    assert set(UPDATE_HANDLERS) == {"message", "edited_message", "callback_query", "my_chat_member"}


def test_message_from_a_bot_is_ignored() -> None:
    update = json.loads(fixture_body("message__text.json"))
    update["message"]["from"]["is_bot"] = True
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, IgnoredEvent)
    assert "Bot" in event.reason


def test_message_without_text_file_or_location_is_ignored() -> None:
    update = json.loads(fixture_body("message__text.json"))
    del update["message"]["text"]
    update["message"]["dice"] = {"emoji": "🎲", "value": 3}
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, IgnoredEvent)


def test_a_shared_location_is_a_message_with_its_place() -> None:
    update = json.loads(fixture_body("message__text.json"))
    del update["message"]["text"]
    update["message"]["location"] = {"latitude": 52.52, "longitude": 13.405}
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, InboundMessage)
    assert event.location == Location(lat=52.52, lon=13.405)


# Malformed updates


def test_truncated_json_is_a_payload_error() -> None:
    body = fixture_body("message__text.json")
    with pytest.raises(PayloadError, match="JSON"):
        make_adapter().parse(webhook(body[: len(body) // 2]))


def test_json_array_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="Objekt"):
        make_adapter().parse(webhook(b"[1, 2]"))


def test_update_without_id_is_a_payload_error() -> None:
    update = json.loads(fixture_body("message__text.json"))
    del update["update_id"]
    with pytest.raises(PayloadError, match="update_id"):
        make_adapter().parse(webhook(json.dumps(update).encode()))


def test_message_without_chat_is_a_payload_error() -> None:
    update = json.loads(fixture_body("message__text.json"))
    del update["message"]["chat"]
    with pytest.raises(PayloadError, match="chat"):
        make_adapter().parse(webhook(json.dumps(update).encode()))


# Found by the fuzz tests: each of these raised TypeError or AttributeError, and the webhook answered 500.
@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"update_id": 1, "callback_query": {"id": "q", "message": [], "from": {"id": 5}}}, "callback_query.message"),
        ({"update_id": 1, "callback_query": {"id": "q", "message": {"chat": 3}}}, "callback_query.message.chat"),
        ({"update_id": 1, "callback_query": {"id": "q", "from": {"id": 5}, "data": 7}}, "callback_query.data"),
        ({"update_id": 1, "message": {"chat": {"id": 1}, "from": "Erika", "text": "x"}}, "message.from"),
        ({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "text": 42}}, "message.text"),
        ({"update_id": 1, "message": {"chat": {"id": {}}, "text": "x"}}, "message.chat.id"),
        ({"update_id": 1, "message": {"chat": {"id": 1}, "text": "x"}}, "message.message_id"),
        ({"update_id": 1, "message": {"message_id": "1", "chat": {"id": 1}, "text": "x"}}, "message.message_id"),
        ({"update_id": 1, "edited_message": {"message_id": 1, "chat": {"id": 1}, "text": "x"}}, "edit_date"),
        ({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "photo": [1]}}, "photo"),
        ({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "document": {"file_id": []}}}, "file_id"),
        ({"update_id": 1, "callback_query": {"from": {"id": 5}, "data": "x"}}, "callback_query.id"),
        ({"update_id": 1, "my_chat_member": {"new_chat_member": "kicked"}}, "new_chat_member"),
        ({"update_id": 1, "my_chat_member": {"new_chat_member": {"status": "kicked"}}}, "my_chat_member.chat"),
        ({"update_id": 1, "my_chat_member": {"chat": {"id": 1}, "new_chat_member": {"status": ["kicked"]}}}, "date"),
    ],
)
def test_wrongly_typed_fields_are_payload_errors(update: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        make_adapter().parse(webhook(json.dumps(update).encode()))


def test_wrongly_typed_optional_fields_are_left_out() -> None:
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "chat": {"id": 1},
            "from": {"id": 1, "first_name": ["Erika"], "last_name": "Muster", "language_code": 5},
            "text": "Hallo",
            "photo": [{"file_id": "a", "width": "groß", "height": 2}, {"file_id": "b", "width": 3, "height": 2}],
            "document": {"file_id": "d", "file_size": "viel", "file_name": 3},
        },
    }
    [event] = make_adapter().parse(webhook(json.dumps(update).encode()))
    assert isinstance(event, InboundMessage)
    assert (event.sender_name, event.language) == ("Muster", None)
    assert event.attachments[0].url.endswith("b")
    assert (event.attachments[1].size, event.attachments[1].filename) == (None, None)


# Sending


def sent_message(message_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A Bot API sendMessage answer carrying the sent Message."""
    return {
        "ok": True,
        "result": {
            "message_id": message_id,
            "from": {
                "id": 7123456789,
                "is_bot": True,
                "first_name": "Rathaus Musterstadt",
                "username": "rathaus_musterstadt_bot",
            },
            "chat": {"id": chat_id, "first_name": "Jürgen", "type": "private"},
            "date": 1732201500,
            "text": text,
        },
    }


def bot_api_error(code: int, description: str, **parameters: int) -> dict[str, Any]:
    error: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        error["parameters"] = parameters
    return error


def send_hello(provider_url: str) -> Receipt:
    return make_adapter(f"{provider_url}/bot").send(
        OutboundMessage(to=str(CITIZEN_CHAT_ID), text="Grüß Gott! Ihr Antrag ist eingegangen.")
    )


def test_send_makes_one_sendmessage_call(fake_provider: Any) -> None:
    fake_provider.respond(
        200,
        sent_message(416, CITIZEN_CHAT_ID, "Grüß Gott! Ihr Antrag ist eingegangen."),
        path_contains="/sendMessage",
    )

    receipt = send_hello(fake_provider.url)

    assert receipt == Receipt(provider_id=f"{CITIZEN_CHAT_ID}:416", status="sent")
    # No getMe: the adapter skips Bot.initialize().
    [request] = fake_provider.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.form["chat_id"] == [str(CITIZEN_CHAT_ID)]
    assert request.form["text"] == ["Grüß Gott! Ihr Antrag ist eingegangen."]
    assert "parse_mode" not in request.form
    assert "reply_markup" not in request.form


def test_send_to_a_channel_name_keeps_the_name(fake_provider: Any) -> None:
    fake_provider.respond(200, sent_message(58, -1001234567890, "Hinweis"))
    receipt = make_adapter(f"{fake_provider.url}/bot").send(OutboundMessage(to="@musterstadt_info", text="Hinweis"))
    assert fake_provider.requests[0].form["chat_id"] == ["@musterstadt_info"]
    assert receipt.provider_id == "-1001234567890:58"


def test_send_works_inside_a_running_event_loop(fake_provider: Any) -> None:
    fake_provider.respond(200, sent_message(417, CITIZEN_CHAT_ID, "Hallo"))

    async def handler() -> Receipt:
        return send_hello(fake_provider.url)

    assert asyncio.run(handler()).provider_id == f"{CITIZEN_CHAT_ID}:417"


def test_blocked_bot_is_opted_out(fake_provider: Any) -> None:
    fake_provider.respond(403, bot_api_error(403, "Forbidden: bot was blocked by the user"))
    with pytest.raises(OptedOutError, match="blocked by the user"):
        send_hello(fake_provider.url)


# PTB's own RetryAfter constructor warns that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_flood_limit_is_transient_with_retry_after(fake_provider: Any) -> None:
    fake_provider.respond(429, bot_api_error(429, "Too Many Requests: retry after 5", retry_after=5))
    with pytest.raises(TransientError) as caught:
        send_hello(fake_provider.url)
    assert caught.value.retry_after == 5.0


def test_unknown_chat_is_permanent(fake_provider: Any) -> None:
    fake_provider.respond(400, bot_api_error(400, "Bad Request: chat not found"))
    with pytest.raises(PermanentError, match="Chat not found") as caught:
        send_hello(fake_provider.url)
    assert not isinstance(caught.value, OptedOutError)


def test_rejected_token_is_permanent_and_not_quoted(fake_provider: Any) -> None:
    fake_provider.respond(401, bot_api_error(401, "Unauthorized"))
    with pytest.raises(PermanentError) as caught:
        send_hello(fake_provider.url)
    assert BOT_TOKEN not in str(caught.value)


def test_bot_api_server_error_is_transient(fake_provider: Any) -> None:
    fake_provider.respond(502, "Bad Gateway")
    with pytest.raises(TransientError):
        send_hello(fake_provider.url)


def test_unreachable_bot_api_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="nicht erreichbar") as caught:
        send_hello(f"http://127.0.0.1:{closed_port}")
    assert BOT_TOKEN not in str(caught.value)


def test_overlong_text_is_refused_before_sending(fake_provider: Any) -> None:
    adapter = make_adapter(f"{fake_provider.url}/bot")
    with pytest.raises(PermanentError, match="4097"):
        adapter.send(OutboundMessage(to=str(CITIZEN_CHAT_ID), text="a" * 4097))
    assert fake_provider.requests == []


def test_empty_text_is_refused_before_sending(fake_provider: Any) -> None:
    adapter = make_adapter(f"{fake_provider.url}/bot")
    with pytest.raises(PermanentError):
        adapter.send(OutboundMessage(to=str(CITIZEN_CHAT_ID), text="  "))
    assert fake_provider.requests == []


def test_secrets_stay_out_of_repr() -> None:
    text = repr(make_adapter())
    assert BOT_TOKEN not in text
    assert WEBHOOK_SECRET not in text


# Buttons


def send_with_choices(provider: Any, *choices: Choice) -> Receipt:
    provider.respond(200, sent_message(418, CITIZEN_CHAT_ID, "Ist Ihr Anliegen erledigt?"))
    return make_adapter(f"{provider.url}/bot").send(
        OutboundMessage(to=str(CITIZEN_CHAT_ID), text="Ist Ihr Anliegen erledigt?", choices=choices)
    )


def sent_keyboard(provider: Any) -> Any:
    """The reply_markup form field of the one request, decoded: PTB sends it as JSON text."""
    [request] = provider.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    [markup] = request.form["reply_markup"]
    return json.loads(markup)


def test_choices_go_out_as_an_inline_keyboard(fake_provider: Any) -> None:
    send_with_choices(fake_provider, Choice("Ja", "survey:42:yes"), Choice("Nein", "survey:42:no"))

    assert sent_keyboard(fake_provider) == {
        "inline_keyboard": [
            [
                {"text": "Ja", "callback_data": "survey:42:yes"},
                {"text": "Nein", "callback_data": "survey:42:no"},
            ]
        ]
    }


def test_short_labels_share_rows_of_three(fake_provider: Any) -> None:
    labels = ["sehr gut", "gut", "mittel", "schlecht"]

    send_with_choices(fake_provider, *(Choice(label, f"note:{n}") for n, label in enumerate(labels)))

    rows = sent_keyboard(fake_provider)["inline_keyboard"]
    assert [[button["text"] for button in row] for row in rows] == [["sehr gut", "gut", "mittel"], ["schlecht"]]


def test_one_long_label_puts_every_button_on_its_own_row(fake_provider: Any) -> None:
    choices = [Choice("Ja", "termin:ja"), Choice("Bitte rufen Sie mich an", "termin:anruf")]

    send_with_choices(fake_provider, *choices)

    rows = sent_keyboard(fake_provider)["inline_keyboard"]
    assert [[button["callback_data"] for button in row] for row in rows] == [["termin:ja"], ["termin:anruf"]]


def test_callback_data_of_64_bytes_is_sent(fake_provider: Any) -> None:
    payload = "ä" * 32  # 64 bytes in UTF-8

    send_with_choices(fake_provider, Choice("Ja", payload))

    assert sent_keyboard(fake_provider)["inline_keyboard"][0][0]["callback_data"] == payload


@pytest.mark.parametrize("payload", ["ä" * 33, ""], ids=["66 bytes in 33 characters", "empty"])
def test_callback_data_outside_1_to_64_bytes_is_refused_before_sending(fake_provider: Any, payload: str) -> None:
    with pytest.raises(PermanentError, match="Nein"):
        send_with_choices(fake_provider, Choice("Ja", "ok"), Choice("Nein", payload))
    assert fake_provider.requests == []


def test_acknowledge_postback_answers_the_callback_query(fake_provider: Any) -> None:
    fake_provider.respond(200, {"ok": True, "result": True}, path_contains="/answerCallbackQuery")

    make_adapter(f"{fake_provider.url}/bot").acknowledge_postback("2158374659123456789")

    [request] = fake_provider.requests
    assert request.path == f"/bot{BOT_TOKEN}/answerCallbackQuery"
    assert request.form == {"callback_query_id": ["2158374659123456789"]}


def test_acknowledge_postback_logs_a_refusal_instead_of_raising(fake_provider: Any, caplog: Any) -> None:
    description = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    fake_provider.respond(400, bot_api_error(400, description))

    with caplog.at_level(logging.WARNING, logger="channels.telegram"):
        make_adapter(f"{fake_provider.url}/bot").acknowledge_postback("2158374659123456789")

    [record] = caplog.records
    assert "2158374659123456789" in record.getMessage()
    assert "Query is too old" in record.getMessage()


def test_acknowledge_postback_survives_an_unreachable_bot_api(caplog: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with caplog.at_level(logging.WARNING, logger="channels.telegram"):
        make_adapter(f"http://127.0.0.1:{closed_port}/bot").acknowledge_postback("2158374659123456789")

    [record] = caplog.records
    assert BOT_TOKEN not in record.getMessage()
