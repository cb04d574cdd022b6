"""Twilio SMS adapter: signature checks, parsing captured webhooks, sends to a fake API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from channels.base import (
    Attachment,
    IgnoredEvent,
    InboundMessage,
    OptedOutError,
    OutboundMessage,
    PayloadError,
    PermanentError,
    StatusUpdate,
    TransientError,
    VerificationError,
    WebhookRequest,
)
from channels.twilio_sms import TwilioSmsAdapter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twilio"
ACCOUNT_SID = "ACcc9afeecd42403639f338b03fedf5171"
AUTH_TOKEN = "5f1c8e0b9a7d4c2e8f3a6b1d0e9c7a42"
HUB_NUMBER = "+4915735982140"
WEBHOOK_URL = "https://rathaus.example.de/webhooks/twilio/7?channel=sms"


def load_fixture(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_adapter(api_base_url: str = "https://api.twilio.com") -> TwilioSmsAdapter:
    return TwilioSmsAdapter(
        {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER, "api_base_url": api_base_url},
        {"auth_token": AUTH_TOKEN},
    )


def signed_request(fields: dict[str, str], url: str = WEBHOOK_URL) -> WebhookRequest:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)
    return WebhookRequest(
        url=url,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
        body=urlencode(fields).encode("utf-8"),
    )


def parse_one(fields: dict[str, str]) -> Any:
    events = make_adapter().parse(signed_request(fields))
    assert len(events) == 1
    return events[0]


# Signatures


def test_valid_signature_passes() -> None:
    make_adapter().verify(signed_request(load_fixture("message__plain.json")))


def test_signature_header_name_is_case_insensitive() -> None:
    request = signed_request(load_fixture("message__plain.json"))
    lowered = {name.lower(): value for name, value in request.headers.items()}
    make_adapter().verify(WebhookRequest(url=request.url, headers=lowered, body=request.body))


def test_wrong_signature_is_rejected() -> None:
    request = signed_request(load_fixture("message__plain.json"))
    forged = WebhookRequest(
        url=request.url,
        headers={"X-Twilio-Signature": "bm90IHRoZSByaWdodCBzaWduYXR1cmU="},
        body=request.body,
    )
    with pytest.raises(VerificationError, match="stimmt nicht"):
        make_adapter().verify(forged)


def test_missing_signature_header_is_rejected() -> None:
    request = signed_request(load_fixture("message__plain.json"))
    unsigned = WebhookRequest(url=request.url, headers={}, body=request.body)
    with pytest.raises(VerificationError, match="fehlt"):
        make_adapter().verify(unsigned)


def test_signature_over_another_url_is_rejected() -> None:
    fields = load_fixture("message__plain.json")
    signed_elsewhere = signed_request(fields, url="https://rathaus.example.de/webhooks/twilio/8")
    replayed = WebhookRequest(url=WEBHOOK_URL, headers=signed_elsewhere.headers, body=signed_elsewhere.body)
    with pytest.raises(VerificationError):
        make_adapter().verify(replayed)


def test_tampered_body_is_rejected() -> None:
    request = signed_request(load_fixture("message__plain.json"))
    tampered = request.body.replace(b"Samstag", b"Sonntag")
    assert tampered != request.body
    with pytest.raises(VerificationError):
        make_adapter().verify(WebhookRequest(url=request.url, headers=request.headers, body=tampered))


def test_signature_from_another_account_is_rejected() -> None:
    fields = load_fixture("message__plain.json")
    other = RequestValidator("0" * 32).compute_signature(WEBHOOK_URL, fields)
    request = WebhookRequest(url=WEBHOOK_URL, headers={"X-Twilio-Signature": other}, body=urlencode(fields).encode())
    with pytest.raises(VerificationError):
        make_adapter().verify(request)


def test_repeated_form_field_is_signed_over_every_value() -> None:
    # Twilio's scheme: URL, then each name (sorted) followed by each of its values (sorted).
    pairs = [*load_fixture("message__plain.json").items(), ("Tag", "b"), ("Tag", "a")]
    signed = WEBHOOK_URL + "".join(name + value for name, value in sorted(pairs, key=lambda pair: (pair[0], pair[1])))
    digest = hmac.new(AUTH_TOKEN.encode(), signed.encode("utf-8"), hashlib.sha1).digest()
    request = WebhookRequest(
        url=WEBHOOK_URL,
        headers={"X-Twilio-Signature": base64.b64encode(digest).decode()},
        body=urlencode(pairs).encode("utf-8"),
    )
    make_adapter().verify(request)


# Inbound messages


def test_plain_message() -> None:
    event = parse_one(load_fixture("message__plain.json"))
    assert event == InboundMessage(
        provider_id="SM62341b614140958c1381d80ac64fc71f",
        sender="+4915112345678",
        recipient=HUB_NUMBER,
        text="Hallo, wann hat das Bürgerbüro am Samstag geöffnet?",
    )


def test_umlauts_and_emoji_survive_form_encoding() -> None:
    event = parse_one(load_fixture("message__umlauts.json"))
    assert isinstance(event, InboundMessage)
    assert event.text == "Grüße aus der Straße! Ärger über Öffnungszeiten 👍"
    assert event.sender == "+4917623456789"


def test_mms_with_two_images_lists_both_attachments_in_order() -> None:
    fields = load_fixture("message__mms_two_images.json")
    event = parse_one(fields)
    assert isinstance(event, InboundMessage)
    assert event.provider_id.startswith("MM")
    assert event.text == "Schlagloch in der Hauptstraße, siehe Fotos"
    assert event.attachments == (
        Attachment(filename=None, content_type="image/jpeg", url=fields["MediaUrl0"]),
        Attachment(filename=None, content_type="image/png", url=fields["MediaUrl1"]),
    )


def test_stop_keyword_still_reaches_the_inbox() -> None:
    # Twilio blocks the number itself and forwards the STOP; staff should see it.
    event = parse_one(load_fixture("message__stop_keyword.json"))
    assert isinstance(event, InboundMessage)
    assert event.text == "STOP"
    assert event.sender == "+4915112345678"


def test_national_sender_number_is_normalised_to_e164() -> None:
    fields = {**load_fixture("message__plain.json"), "From": "0151 12345678"}
    event = parse_one(fields)
    assert isinstance(event, InboundMessage)
    assert event.sender == "+4915112345678"


def test_default_region_is_configurable() -> None:
    adapter = TwilioSmsAdapter(
        {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER, "default_region": "AT"},
        {"auth_token": AUTH_TOKEN},
    )
    fields = {**load_fixture("message__plain.json"), "From": "0664 1234567"}
    [event] = adapter.parse(signed_request(fields))
    assert isinstance(event, InboundMessage)
    assert event.sender == "+436641234567"


# Status callbacks


def test_status_sent() -> None:
    event = parse_one(load_fixture("status__sent.json"))
    assert event == StatusUpdate(
        provider_id="SMa6431ed45c8bdfc4e3b5a0e0f0f497ac",
        status="sent",
        event_id="SMa6431ed45c8bdfc4e3b5a0e0f0f497ac:sent",
    )


def test_status_delivered() -> None:
    event = parse_one(load_fixture("status__delivered.json"))
    assert isinstance(event, StatusUpdate)
    assert event.status == "delivered"
    assert event.error_code is None
    assert event.event_id == "SMa6431ed45c8bdfc4e3b5a0e0f0f497ac:delivered"


def test_status_undelivered_carries_the_error() -> None:
    event = parse_one(load_fixture("status__undelivered_30003.json"))
    assert isinstance(event, StatusUpdate)
    assert event.status == "undelivered"
    assert event.error_code == "30003"
    assert event.error_message == "Unreachable destination handset"


def test_status_failed_carries_the_error() -> None:
    event = parse_one(load_fixture("status__failed_30006.json"))
    assert isinstance(event, StatusUpdate)
    assert event.status == "failed"
    assert event.error_code == "30006"
    assert event.error_message == "Landline or unreachable carrier"


def test_intermediate_status_is_ignored_with_a_stable_id() -> None:
    fields = load_fixture("status__queued.json")
    event = parse_one(fields)
    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == f"{fields['MessageSid']}:queued"
    assert "queued" in event.reason


# Malformed payloads


def test_missing_message_sid_is_a_payload_error() -> None:
    fields = load_fixture("message__plain.json")
    del fields["MessageSid"]
    with pytest.raises(PayloadError, match="MessageSid"):
        make_adapter().parse(signed_request(fields))


def test_missing_sender_is_a_payload_error() -> None:
    fields = load_fixture("message__plain.json")
    del fields["From"]
    with pytest.raises(PayloadError, match="From"):
        make_adapter().parse(signed_request(fields))


def test_invalid_sender_number_is_a_payload_error() -> None:
    fields = {**load_fixture("message__plain.json"), "From": "Rathaus"}
    with pytest.raises(PayloadError, match="Absendernummer ungültig"):
        make_adapter().parse(signed_request(fields))


def test_body_that_is_not_utf8_is_a_payload_error() -> None:
    request = WebhookRequest(url=WEBHOOK_URL, headers={}, body=b"MessageSid=SM1&Body=Gr%FC%DFe")
    with pytest.raises(PayloadError, match="UTF-8"):
        make_adapter().parse(request)


def test_body_that_is_not_a_form_is_a_payload_error() -> None:
    request = WebhookRequest(url=WEBHOOK_URL, headers={}, body=b'{"MessageSid": "SM1"}')
    with pytest.raises(PayloadError):
        make_adapter().parse(request)


def test_announced_media_that_is_missing_is_a_payload_error() -> None:
    fields = load_fixture("message__mms_two_images.json")
    del fields["MediaUrl1"]
    with pytest.raises(PayloadError, match="MediaUrl1"):
        make_adapter().parse(signed_request(fields))


# Sending


def message_resource(sid: str, to: str, body: str, status: str = "queued") -> dict[str, Any]:
    """The JSON Twilio answers a create with (201), trimmed to the fields the SDK reads."""
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": "Thu, 21 Nov 2024 14:32:10 +0000",
        "date_sent": None,
        "date_updated": "Thu, 21 Nov 2024 14:32:10 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": HUB_NUMBER,
        "to": to,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "status": status,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"},
    }


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def test_send_posts_the_message_form_and_reports_segments(fake_provider: Any) -> None:
    sid = "SM8f2c1b7e5d4a49c3b6e0f1a2d3c4b5a6"
    text = "Ihr Termin im Bürgerbüro: Di, 10:30 Uhr. Kosten 37 €."
    fake_provider.respond(201, message_resource(sid, "+4915112345678", text))

    receipt = make_adapter(fake_provider.url).send(
        OutboundMessage(
            to="+4915112345678",
            text=text,
            status_callback="https://rathaus.example.de/webhooks/twilio/7/status",
        )
    )

    assert receipt.provider_id == sid
    assert receipt.status == "sent"
    assert (receipt.segments, receipt.encoding) == (1, "GSM-7")
    [request] = fake_provider.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": ["+4915112345678"],
        "From": [HUB_NUMBER],
        "Body": [text],
        "StatusCallback": ["https://rathaus.example.de/webhooks/twilio/7/status"],
    }
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"


def test_send_without_status_callback_leaves_the_field_out(fake_provider: Any) -> None:
    fake_provider.respond(201, message_resource("SM" + "1" * 32, "+4915112345678", "Hallo"))
    make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert "StatusCallback" not in fake_provider.requests[0].form


def test_send_normalises_a_national_number(fake_provider: Any) -> None:
    fake_provider.respond(201, message_resource("SM" + "2" * 32, "+4915112345678", "Hallo"))
    make_adapter(fake_provider.url).send(OutboundMessage(to="0151 12345678", text="Hallo"))
    assert fake_provider.requests[0].form["To"] == ["+4915112345678"]


def test_send_reports_ucs2_for_a_german_quote(fake_provider: Any) -> None:
    text = "„Danke“ für Ihre Nachricht"
    fake_provider.respond(201, message_resource("SM" + "3" * 32, "+4915112345678", text))
    receipt = make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text=text))
    assert (receipt.segments, receipt.encoding) == (1, "UCS-2")


def test_environment_edge_cannot_redirect_the_client(fake_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "frankfurt")
    monkeypatch.setenv("TWILIO_REGION", "de1")
    fake_provider.respond(201, message_resource("SM" + "4" * 32, "+4915112345678", "Hallo"))
    receipt = make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert receipt.provider_id == "SM" + "4" * 32


def test_one_adapter_sends_twice(fake_provider: Any) -> None:
    adapter = make_adapter(fake_provider.url)
    fake_provider.respond(201, message_resource("SM" + "5" * 32, "+4915112345678", "Eins"))
    fake_provider.respond(201, message_resource("SM" + "6" * 32, "+4915112345678", "Zwei"))
    first = adapter.send(OutboundMessage(to="+4915112345678", text="Eins"))
    second = adapter.send(OutboundMessage(to="+4915112345678", text="Zwei"))
    assert (first.provider_id, second.provider_id) == ("SM" + "5" * 32, "SM" + "6" * 32)


def test_opted_out_recipient(fake_provider: Any) -> None:
    fake_provider.respond(
        400,
        twilio_error(21610, "Attempt to send to unsubscribed recipient", 400),
    )
    with pytest.raises(OptedOutError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert caught.value.code == "21610"


def test_rejected_number_is_permanent_with_twilio_code(fake_provider: Any) -> None:
    fake_provider.respond(400, twilio_error(21211, "The 'To' number is not a valid phone number.", 400))
    with pytest.raises(PermanentError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert not isinstance(caught.value, OptedOutError)
    assert caught.value.code == "21211"


def test_too_many_requests_is_transient_with_retry_after(fake_provider: Any) -> None:
    fake_provider.respond(429, twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert caught.value.code == "20429"
    assert caught.value.retry_after == 7.0


def test_server_error_is_transient(fake_provider: Any) -> None:
    fake_provider.respond(503, "Service Unavailable")
    with pytest.raises(TransientError) as caught:
        make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="Hallo"))
    assert caught.value.retry_after is None


def test_unreachable_api_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    adapter = make_adapter(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransientError, match="nicht erreichbar"):
        adapter.send(OutboundMessage(to="+4915112345678", text="Hallo"))


def test_overlong_body_is_refused_before_sending(fake_provider: Any) -> None:
    with pytest.raises(PermanentError, match="1601"):
        make_adapter(fake_provider.url).send(OutboundMessage(to="+4915112345678", text="a" * 1601))
    assert fake_provider.requests == []


def test_invalid_recipient_is_refused_before_sending(fake_provider: Any) -> None:
    with pytest.raises(PermanentError, match="Ungültige Telefonnummer"):
        make_adapter(fake_provider.url).send(OutboundMessage(to="+49 123", text="Hallo"))
    assert fake_provider.requests == []


def test_auth_token_stays_out_of_repr() -> None:
    assert AUTH_TOKEN not in repr(make_adapter())
