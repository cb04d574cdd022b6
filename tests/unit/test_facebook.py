"""Tests for the Facebook adapter: signatures, webhook parsing from fixtures, and sending."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import facebook
import pytest

from channels.base import (
    Attachment,
    ChannelAdapter,
    Choice,
    IgnoredEvent,
    InboundMessage,
    OptedOutError,
    OutboundMessage,
    PayloadError,
    PermanentError,
    TransientError,
    VerificationError,
    WebhookRequest,
)
from channels.facebook import FacebookAdapter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "facebook"
PAGE_ID = "102938475610293"
CITIZEN = "7412589630147852"
OTHER_CITIZEN = "6398521470258963"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY_TOKEN = "rathaus-verify-7f3a"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAKZCZCtestpagetoken"
POST_ID = f"{PAGE_ID}_845612309876543"
COMMENT_ID = "845612309876543_1203456789012345"


def make_adapter(graph_url: str | None = None) -> FacebookAdapter:
    config = {"page_id": PAGE_ID}
    if graph_url is not None:
        config["graph_url"] = graph_url
    secrets = {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "page_access_token": PAGE_TOKEN,
    }
    return FacebookAdapter(config, secrets)


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        url="https://hub.example/webhooks/facebook/1",
        headers=headers if headers is not None else {"X-Hub-Signature-256": sign(body)},
        body=body,
    )


def fixture_request(name: str) -> WebhookRequest:
    return signed_request((FIXTURES / name).read_bytes())


def parse_fixture(name: str) -> list:
    adapter = make_adapter()
    request = fixture_request(name)
    adapter.verify(request)
    return adapter.parse(request)


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def test_adapter_satisfies_the_channel_protocol() -> None:
    adapter = make_adapter()

    assert isinstance(adapter, ChannelAdapter)
    assert (adapter.kind, adapter.max_body_chars, adapter.max_segments) == ("facebook", 2000, None)


# --- GET handshake -------------------------------------------------------------------------


def test_subscription_handshake_returns_the_challenge() -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }

    assert make_adapter().verify_subscription(query) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "falsch", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
    ],
    ids=["wrong-token", "no-token", "wrong-mode", "no-challenge"],
)
def test_subscription_handshake_rejects(query: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        make_adapter().verify_subscription(query)


# --- signatures ----------------------------------------------------------------------------


def test_signature_over_raw_bytes_with_escaped_umlauts_passes() -> None:
    body = (FIXTURES / "messages__umlauts.json").read_bytes()
    # Meta escapes non-ASCII; the signature covers these exact bytes, not re-serialised JSON.
    assert b"Gr\\u00fc\\u00dfe" in body

    make_adapter().verify(signed_request(body))


def test_signature_header_name_is_case_insensitive_in_a_plain_dict() -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()

    make_adapter().verify(signed_request(body, {"x-hub-signature-256": sign(body)}))


def test_signature_over_reserialised_json_fails() -> None:
    raw = (FIXTURES / "messages__umlauts.json").read_bytes()
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")

    with pytest.raises(VerificationError):
        make_adapter().verify(signed_request(reserialised, {"X-Hub-Signature-256": sign(raw)}))


def test_signature_with_wrong_secret_fails() -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()

    with pytest.raises(VerificationError, match="passt nicht"):
        make_adapter().verify(signed_request(body, {"X-Hub-Signature-256": sign(body, "other")}))


def test_missing_signature_header_fails() -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()

    with pytest.raises(VerificationError, match="fehlt"):
        make_adapter().verify(signed_request(body, {"Content-Type": "application/json"}))


def test_legacy_sha1_signature_alone_fails() -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()
    sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()

    with pytest.raises(VerificationError, match="SHA-1"):
        make_adapter().verify(signed_request(body, {"X-Hub-Signature": sha1}))


@pytest.mark.parametrize("header", ["", "sha256", "sha256=", "md5=abcdef", "abcdef0123"])
def test_malformed_signature_header_fails(header: str) -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()

    with pytest.raises(VerificationError):
        make_adapter().verify(signed_request(body, {"X-Hub-Signature-256": header}))


def test_tampered_body_fails() -> None:
    body = (FIXTURES / "messages__text.json").read_bytes()
    tampered = body.replace(b"Samstag", b"Sonntag")

    with pytest.raises(VerificationError):
        make_adapter().verify(signed_request(tampered, {"X-Hub-Signature-256": sign(body)}))


# --- payload errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"object":"page","entry":[', "JSON"),
        (b"\xff\xfe not utf-8", "JSON"),
        (b'["page"]', "JSON-Objekt"),
        (b'{"object":"instagram","entry":[]}', "instagram"),
        (b'{"object":"page"}', "entry"),
        (b'{"object":"page","entry":[{"messaging":[{"message":{"mid":"m_1"}}]}]}', "sender"),
        # Found by the fuzz tests: these were a TypeError, and the webhook answered 500.
        (b'{"object":"page","entry":[{"messaging":0}]}', "messaging: JSON-Array erwartet"),
        (b'{"object":"page","entry":[{"changes":"feed"}]}', "changes: JSON-Array erwartet"),
        (
            b'{"object":"page","entry":[{"messaging":[{"sender":{"id":"1"},"recipient":{"id":"2"},'
            b'"message":{"mid":"m_2","attachments":7}}]}]}',
            "attachments: JSON-Array erwartet",
        ),
    ],
)
def test_unreadable_payload_raises_payload_error(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        make_adapter().parse(signed_request(body))


# --- Messenger fixtures --------------------------------------------------------------------


def test_messages_text() -> None:
    assert parse_fixture("messages__text.json") == [
        InboundMessage(
            provider_id="m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789text01",
            sender=CITIZEN,
            recipient=PAGE_ID,
            text="Guten Tag, wann ist das Rathaus am Samstag offen?",
            kind="message",
            sent_at=ms(1718791234001),
        )
    ]


def test_messages_umlauts() -> None:
    [event] = parse_fixture("messages__umlauts.json")

    assert isinstance(event, InboundMessage)
    assert event.text == (
        "Die Straßenlaterne vor Hausnummer 12 in der Bahnhofstraße ist kaputt 💡 Grüße, Jürgen Öztürk"
    )
    assert (event.sender, event.kind, event.thread_key) == (CITIZEN, "message", None)


def test_messages_image_attachment() -> None:
    [event] = parse_fixture("messages__image_attachment.json")

    assert isinstance(event, InboundMessage)
    assert event.text == ""
    assert event.attachments == (
        Attachment(
            filename="448912345_1029384756102938_4758697089123456789_n.jpg",
            content_type="image/jpeg",
            url=(
                "https://scontent.xx.fbcdn.net/v/t1.15752-9/"
                "448912345_1029384756102938_4758697089123456789_n.jpg?_nc_cat=104&ccb=1-7"
                "&_nc_sid=fc17b8&_nc_ht=scontent.xx&oh=03_Q7cD1QGx&oe=66A1B2C3"
            ),
        ),
    )


def test_messages_quick_reply_is_a_postback_with_the_payload() -> None:
    [event] = parse_fixture("messages__quick_reply.json")

    assert isinstance(event, InboundMessage)
    assert (event.provider_id, event.kind, event.text) == (
        "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789quik04",
        "postback",
        "TERMIN_BESTAETIGEN",
    )


def test_messages_echo_is_ignored() -> None:
    [event] = parse_fixture("messages__echo.json")

    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789echo05"
    assert "Echo" in event.reason


def test_messaging_postbacks_get_started() -> None:
    assert parse_fixture("messaging_postbacks__get_started.json") == [
        InboundMessage(
            provider_id="m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789post06",
            sender=CITIZEN,
            recipient=PAGE_ID,
            text="GET_STARTED",
            kind="postback",
            sent_at=ms(1718791234006),
        )
    ]


def test_postback_without_mid_gets_a_deterministic_id() -> None:
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": 1,
                    "messaging": [
                        {
                            "sender": {"id": CITIZEN},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": 1718791234099,
                            "postback": {"title": "Start", "payload": "GET_STARTED"},
                        }
                    ],
                }
            ],
        }
    ).encode()

    [event] = make_adapter().parse(signed_request(body))

    assert isinstance(event, InboundMessage)
    assert event.provider_id == f"postback:{CITIZEN}:1718791234099"


def test_message_reads_read_is_ignored_with_its_type() -> None:
    [event] = parse_fixture("message_reads__read.json")

    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == f"read:{CITIZEN}:1718791234007"
    assert "'read'" in event.reason


def test_message_edits_text_changed_is_an_edit() -> None:
    assert parse_fixture("message_edits__text_changed.json") == [
        InboundMessage(
            provider_id="m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789text01:edited:1",
            sender=CITIZEN,
            recipient=PAGE_ID,
            text="Guten Tag, wann ist das Bürgerbüro am Samstag offen?",
            kind="edit",
            sent_at=ms(1718791234008),
            in_reply_to=("m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789text01",),
        )
    ]


def test_messages_two_entries_batched() -> None:
    events = parse_fixture("messages__two_entries_batched.json")

    assert [(e.provider_id, e.sender, e.text) for e in events if isinstance(e, InboundMessage)] == [
        ("m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789btch01", CITIZEN, "Erste Nachricht"),
        ("m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789btch02", OTHER_CITIZEN, "Zweite Nachricht"),
    ]


# --- Page feed fixtures --------------------------------------------------------------------


def test_feed_comment_add() -> None:
    assert parse_fixture("feed__comment_add.json") == [
        InboundMessage(
            provider_id=COMMENT_ID,
            sender=CITIZEN,
            sender_name="Jürgen Öztürk",
            recipient=PAGE_ID,
            text="Wann wird die Baustelle in der Schulstraße fertig?",
            kind="comment",
            sent_at=datetime(2024, 6, 19, 10, 15, 40, tzinfo=UTC),
            thread_key=f"post:{POST_ID}",
            reply_to_ref=COMMENT_ID,
        )
    ]


def test_feed_comment_reply_to_comment_points_at_its_parent() -> None:
    [event] = parse_fixture("feed__comment_reply_to_comment.json")

    assert isinstance(event, InboundMessage)
    assert event.kind == "comment"
    assert (event.sender, event.sender_name) == (OTHER_CITIZEN, "Anna Weiß")
    assert event.thread_key == f"post:{POST_ID}"
    assert event.reply_to_ref == "845612309876543_1203456789099999"
    assert event.in_reply_to == (COMMENT_ID,)


def test_feed_comment_by_page_is_ignored() -> None:
    [event] = parse_fixture("feed__comment_by_page.json")

    assert event == IgnoredEvent("845612309876543_1203456789055555", "Kommentar der Seite selbst")


def test_feed_comment_edited() -> None:
    [event] = parse_fixture("feed__comment_edited.json")

    assert isinstance(event, InboundMessage)
    assert event.provider_id == f"{COMMENT_ID}:edited:1718792400"
    assert event.kind == "edit"
    assert event.text == "Wann wird die Baustelle in der Schulstraße endlich fertig?"
    assert (event.thread_key, event.reply_to_ref) == (f"post:{POST_ID}", COMMENT_ID)
    assert event.in_reply_to == (COMMENT_ID,)


def test_feed_comment_remove_is_ignored() -> None:
    [event] = parse_fixture("feed__comment_remove.json")

    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == f"{COMMENT_ID}:remove:1718792500"
    assert "'remove'" in event.reason


def test_comment_without_author_is_ignored_rather_than_failing_the_delivery() -> None:
    payload = json.loads((FIXTURES / "feed__comment_add.json").read_bytes())
    del payload["entry"][0]["changes"][0]["value"]["from"]

    [event] = make_adapter().parse(signed_request(json.dumps(payload).encode()))

    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == COMMENT_ID


def test_feed_items_other_than_comments_and_other_fields_are_ignored() -> None:
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": 1718792142,
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "item": "reaction",
                                "verb": "add",
                                "post_id": POST_ID,
                                "reaction_type": "like",
                                "created_time": 1718792141,
                                "from": {"id": CITIZEN},
                            },
                        },
                        {"field": "ratings", "value": {"rating": 5}},
                    ],
                }
            ],
        }
    ).encode()

    events = make_adapter().parse(signed_request(body))

    assert [e.provider_id for e in events] == [
        f"feed:reaction:add:{POST_ID}:1718792141",
        f"ratings:{PAGE_ID}:1718792142",
    ]
    assert all(isinstance(e, IgnoredEvent) for e in events)


# --- sending -------------------------------------------------------------------------------


def graph_error(code: int, subcode: int | None = None) -> dict:
    error = {
        "message": f"(#{code}) Testfehler",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGh123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def test_direct_message_inside_window_uses_response(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN, "message_id": "m_sent_1"})
    adapter = make_adapter(fake_provider.url)

    receipt = adapter.send(OutboundMessage(to=CITIZEN, text="Grüße aus dem Rathaus"))

    assert receipt.provider_id == "m_sent_1"
    [request] = fake_provider.requests
    assert (request.method, request.path) == ("POST", "/v19.0/me/messages")
    assert json.loads(request.form["recipient"][0]) == {"id": CITIZEN}
    assert json.loads(request.form["message"][0]) == {"text": "Grüße aus dem Rathaus"}
    assert request.form["messaging_type"] == ["RESPONSE"]
    assert "tag" not in request.form
    assert request.form["access_token"] == [PAGE_TOKEN]
    # Several accounts share the process: the SDK's module global must stay untouched.
    assert facebook.FACEBOOK_GRAPH_URL == "https://graph.facebook.com/"


def test_direct_message_outside_window_uses_human_agent_tag(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN, "message_id": "m_sent_2"})

    make_adapter(fake_provider.url).send(
        OutboundMessage(to=CITIZEN, text="Antwort nach dem Wochenende", window_open=False)
    )

    [request] = fake_provider.requests
    assert request.form["messaging_type"] == ["MESSAGE_TAG"]
    assert request.form["tag"] == ["HUMAN_AGENT"]


def test_comment_reply_posts_to_the_comments_edge(fake_provider) -> None:
    fake_provider.respond(200, {"id": "845612309876543_1203456789077777"})

    receipt = make_adapter(fake_provider.url).send(
        OutboundMessage(to=CITIZEN, text="Voraussichtlich Ende Juli.", reply_to_ref=COMMENT_ID)
    )

    assert receipt.provider_id == "845612309876543_1203456789077777"
    [request] = fake_provider.requests
    assert (request.method, request.path) == ("POST", f"/v19.0/{COMMENT_ID}/comments")
    assert request.form["message"] == ["Voraussichtlich Ende Juli."]


def test_choices_go_out_as_quick_replies(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN, "message_id": "m_sent_3"})
    choices = (Choice("Ja", "survey:42:yes"), Choice("Nein", "survey:42:no"))

    make_adapter(fake_provider.url).send(
        OutboundMessage(to=CITIZEN, text="Ist Ihr Anliegen erledigt?", choices=choices)
    )

    [request] = fake_provider.requests
    assert json.loads(request.form["message"][0]) == {
        "text": "Ist Ihr Anliegen erledigt?",
        "quick_replies": [
            {"content_type": "text", "title": "Ja", "payload": "survey:42:yes"},
            {"content_type": "text", "title": "Nein", "payload": "survey:42:no"},
        ],
    }


def test_quick_reply_titles_are_cut_to_20_characters(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN, "message_id": "m_sent_4"})
    choice = Choice("Bitte rufen Sie mich zurück", "termin:anruf")

    make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Wie weiter?", choices=(choice,)))

    [quick_reply] = json.loads(fake_provider.requests[0].form["message"][0])["quick_replies"]
    assert quick_reply["title"] == "Bitte rufen Sie mich"
    assert quick_reply["payload"] == "termin:anruf"


def test_thirteen_quick_replies_are_sent(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN, "message_id": "m_sent_5"})
    choices = tuple(Choice(str(n), f"n:{n}") for n in range(13))

    make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Welche Nummer?", choices=choices))

    assert len(json.loads(fake_provider.requests[0].form["message"][0])["quick_replies"]) == 13


@pytest.mark.parametrize(
    ("choices", "reason"),
    [
        (tuple(Choice(str(n), f"n:{n}") for n in range(14)), "höchstens 13"),
        ((Choice("Ja", "x" * 1001),), "1001 Zeichen"),
        ((Choice("Ja", ""),), "0 Zeichen"),
    ],
    ids=["14 quick replies", "payload of 1001 characters", "empty payload"],
)
def test_quick_replies_beyond_meta_limits_are_refused_before_sending(fake_provider, choices, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo", choices=choices))

    assert fake_provider.requests == []


def test_comment_reply_drops_choices(fake_provider) -> None:
    fake_provider.respond(200, {"id": "845612309876543_1203456789077778"})

    make_adapter(fake_provider.url).send(
        OutboundMessage(to=CITIZEN, text="Erledigt?", reply_to_ref=COMMENT_ID, choices=(Choice("Ja", "ja"),))
    )

    [request] = fake_provider.requests
    assert request.path == f"/v19.0/{COMMENT_ID}/comments"
    assert request.form == {"message": ["Erledigt?"], "access_token": [PAGE_TOKEN]}


def test_accounts_with_different_graph_urls_do_not_interfere(fake_provider) -> None:
    first = make_adapter(f"{fake_provider.url}/konto-a/")
    second = make_adapter(f"{fake_provider.url}/konto-b")
    fake_provider.respond(200, {"message_id": "m_a"})
    fake_provider.respond(200, {"message_id": "m_b"})

    first.send(OutboundMessage(to=CITIZEN, text="A"))
    second.send(OutboundMessage(to=CITIZEN, text="B"))

    assert [r.path for r in fake_provider.requests] == [
        "/konto-a/v19.0/me/messages",
        "/konto-b/v19.0/me/messages",
    ]


def test_text_over_2000_characters_is_refused_before_sending(fake_provider) -> None:
    with pytest.raises(PermanentError, match="2001"):
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="x" * 2001))

    assert fake_provider.requests == []


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_rate_limit_codes_are_transient(fake_provider, code: int) -> None:
    fake_provider.respond(400, graph_error(code))

    with pytest.raises(TransientError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert caught.value.code == str(code)


def test_person_unavailable_is_opted_out(fake_provider) -> None:
    fake_provider.respond(400, graph_error(551, 1545041))

    with pytest.raises(OptedOutError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert caught.value.code == "551"


def test_outside_allowed_window_is_permanent(fake_provider) -> None:
    fake_provider.respond(400, graph_error(10, 2018278))

    with pytest.raises(PermanentError, match="Antwortfenster") as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert not isinstance(caught.value, OptedOutError)


def test_invalid_page_token_is_permanent_and_does_not_leak_the_token(fake_provider) -> None:
    fake_provider.respond(400, graph_error(190, 463))

    with pytest.raises(PermanentError, match="Seitentoken ungültig") as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert caught.value.code == "190"
    assert PAGE_TOKEN not in str(caught.value)


def test_other_graph_codes_are_permanent_with_the_code(fake_provider) -> None:
    fake_provider.respond(400, graph_error(100, 2018001))

    with pytest.raises(PermanentError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert type(caught.value) is PermanentError
    assert caught.value.code == "100"


def test_server_error_with_html_body_is_transient(fake_provider) -> None:
    fake_provider.respond(500, "<html><body>Sorry, something went wrong.</body></html>", {"Content-Type": "text/html"})

    with pytest.raises(TransientError, match="500"):
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))


def test_server_error_with_json_body_is_transient(fake_provider) -> None:
    fake_provider.respond(503, graph_error(2))

    with pytest.raises(TransientError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))

    assert caught.value.code == "2"


def test_success_without_message_id_is_permanent_to_avoid_double_sending(fake_provider) -> None:
    fake_provider.respond(200, {"recipient_id": CITIZEN})

    with pytest.raises(PermanentError, match="message_id"):
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))


def test_unreadable_json_answer_is_permanent_to_avoid_double_sending(fake_provider) -> None:
    fake_provider.respond(200, "{kaputt", {"Content-Type": "application/json"})

    with pytest.raises(PermanentError, match="fehlgeschlagen"):
        make_adapter(fake_provider.url).send(OutboundMessage(to=CITIZEN, text="Hallo"))


def test_nothing_listening_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(TransientError, match="nicht erreichbar"):
        make_adapter(f"http://127.0.0.1:{closed_port}/").send(OutboundMessage(to=CITIZEN, text="Hallo"))
