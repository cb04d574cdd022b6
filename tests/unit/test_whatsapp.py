"""WhatsApp adapter: signed captured webhooks, parsing, and sends to the sandbox through the twilio SDK."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from channels.base import (
    Attachment,
    ChannelAdapter,
    Choice,
    InboundMessage,
    OptedOutError,
    OutboundMessage,
    PermanentError,
    StatusUpdate,
    TransientError,
    VerificationError,
    WebhookRequest,
)
from channels.registry import adapter_class, kinds_reaching
from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from channels.whatsapp import WhatsAppAdapter
from hub.tenancy import administration as admin
from hub.tenancy import service as tenancy
from tests.running_hub import wait_for
from tests.unit.conftest import FakeProvider

FIXTURES = Path(__file__).parent.parent / "fixtures" / "whatsapp"
ACCOUNT_SID = "ACcc9afeecd42403639f338b03fedf5171"
AUTH_TOKEN = "5f1c8e0b9a7d4c2e8f3a6b1d0e9c7a42"
HUB_NUMBER = "+4915735982140"
CITIZEN = "+4915112345678"
WEBHOOK_URL = "https://rathaus.example.de/webhooks/whatsapp/9"


def load_fixture(name: str) -> dict[str, str]:
    fields: dict[str, str] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return fields


def make_adapter(**config: Any) -> WhatsAppAdapter:
    return WhatsAppAdapter(
        {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER, **config}, {"auth_token": AUTH_TOKEN}
    )


def signed_request(fields: dict[str, str], url: str = WEBHOOK_URL, token: str = AUTH_TOKEN) -> WebhookRequest:
    signature = RequestValidator(token).compute_signature(url, fields)
    return WebhookRequest(
        url=url,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        body=urlencode(fields).encode("utf-8"),
    )


def parse_fixture(name: str) -> Any:
    request = signed_request(load_fixture(name))
    adapter = make_adapter()
    adapter.verify(request)
    [event] = adapter.parse(request)
    return event


# What the class declares


def test_adapter_satisfies_the_protocol_and_shares_the_phone_identity_with_sms() -> None:
    assert isinstance(make_adapter(), ChannelAdapter)
    assert adapter_class("whatsapp") is WhatsAppAdapter
    assert set(kinds_reaching("phone")) == {"twilio", "whatsapp"}
    assert WhatsAppAdapter.reply_window is not None and WhatsAppAdapter.reply_window.total_seconds() == 24 * 3600
    assert WhatsAppAdapter.supports_choices and WhatsAppAdapter.supports_media
    assert WhatsAppAdapter.templates_outside_window and WhatsAppAdapter.opt_in_required


def test_settings_offer_templates_per_language_and_the_tier() -> None:
    keys = [field.key for field in WhatsAppAdapter.configuration.fields() if field.on_form]
    assert keys[:10] == [
        "phone_number", "account_sid", "auth_token", "template_de", "template_en", "reminder_template_de",
        "reminder_template_en", "feedback_template_de", "feedback_template_en", "daily_recipients",
    ]  # fmt: skip
    assert WhatsAppAdapter.template_for({"template_en": "HXen"}, "en") == "HXen"
    assert WhatsAppAdapter.template_for({}, "de") is None
    # A purpose has its own template; the notices' one is not it.
    assert (
        WhatsAppAdapter.template_for({"template_de": "HXde", "reminder_template_de": "HXr"}, "de", "reminder") == "HXr"
    )
    assert WhatsAppAdapter.template_for({"template_de": "HXde"}, "de", "feedback") is None
    assert WhatsAppAdapter.daily_recipient_limit({}) == 250
    assert WhatsAppAdapter.daily_recipient_limit({"daily_recipients": 10000}) == 10000
    assert WhatsAppAdapter.daily_recipient_limit({"daily_recipients": 0}) is None


# Signatures (the SDK's own validator signs the captured fixtures)


def test_signed_fixture_passes() -> None:
    make_adapter().verify(signed_request(load_fixture("message__text.json")))


def test_signature_of_another_auth_token_is_refused() -> None:
    with pytest.raises(VerificationError, match="stimmt nicht"):
        make_adapter().verify(signed_request(load_fixture("message__text.json"), token="0" * 32))


def test_missing_signature_is_refused() -> None:
    request = signed_request(load_fixture("message__text.json"))
    with pytest.raises(VerificationError, match="fehlt"):
        make_adapter().verify(WebhookRequest(url=request.url, headers={}, body=request.body))


def test_tampered_body_is_refused() -> None:
    request = signed_request(load_fixture("message__text.json"))
    tampered = request.body.replace(b"Samstag", b"Sonntag")
    with pytest.raises(VerificationError):
        make_adapter().verify(WebhookRequest(url=request.url, headers=request.headers, body=tampered))


# Inbound messages


def test_text_message_comes_from_the_bare_number_with_the_profile_name() -> None:
    assert parse_fixture("message__text.json") == InboundMessage(
        provider_id="SM8f2c3b9d0e7a41c6b5d4e3f2a1b0c9d8",
        sender=CITIZEN,
        recipient=HUB_NUMBER,
        sender_name="Erika Mustermann",
        text="Guten Tag, wann ist der Wertstoffhof am Samstag geöffnet?",
    )


def test_image_with_caption_is_an_attachment_with_the_caption_as_text() -> None:
    fields = load_fixture("message__image_with_caption.json")
    event = parse_fixture("message__image_with_caption.json")
    assert event.text == "Umgestürzter Baum am Spielplatz Lindenweg"
    assert event.attachments == (Attachment(filename=None, content_type="image/jpeg", url=fields["MediaUrl0"]),)


def test_voice_note_is_an_audio_attachment() -> None:
    event = parse_fixture("message__voice_note.json")
    assert event.text == ""
    assert [attachment.content_type for attachment in event.attachments] == ["audio/ogg"]


def test_shared_location_becomes_a_readable_place_with_a_map_link() -> None:
    event = parse_fixture("message__location.json")
    assert isinstance(event, InboundMessage)
    assert "Rathaus Musterstadt, Marktplatz 1, 10178 Berlin" in event.text
    assert "52.520007, 13.404954" in event.text
    assert "openstreetmap.org/?mlat=52.520007&mlon=13.404954" in event.text


def test_button_reply_is_a_postback_with_the_button_payload() -> None:
    event = parse_fixture("message__button_reply.json")
    assert isinstance(event, InboundMessage)
    assert (event.kind, event.text, event.sender) == ("postback", "survey:12:0", CITIZEN)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("status__sent.json", "sent", None),
        ("status__delivered.json", "delivered", None),
        ("status__read.json", "read", None),
        ("status__failed_63016.json", "failed", "63016"),
    ],
)
def test_status_callbacks_including_read(name: str, status: str, code: str | None) -> None:
    event = parse_fixture(name)
    assert isinstance(event, StatusUpdate)
    assert (event.provider_id, event.status, event.error_code) == ("SMa6431ed45c8bdfc4e3b5a0e0f0f497ac", status, code)
    assert event.event_id == f"SMa6431ed45c8bdfc4e3b5a0e0f0f497ac:{status}"


# Sends through the sandbox


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[SandboxClient]:
    with SandboxClient(sandbox.url) as sandbox_client:
        sandbox_client.register_account(
            "whatsapp",
            {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER, "messaging_limit": 2},
            {"auth_token": AUTH_TOKEN},
        )
        yield sandbox_client


def sandbox_adapter(sandbox: SandboxServer, **config: Any) -> WhatsAppAdapter:
    return make_adapter(api_base_url=sandbox.url, **config)


def callbacks(hub: FakeProvider, count: int) -> list[dict[str, str]]:
    """The status callbacks the sandbox posted to the hub stand-in, checked with the adapter's verify."""
    wait_for(lambda: len(hub.requests) >= count, what=f"{count} status callbacks")
    forms = []
    for recorded in hub.requests:
        request = WebhookRequest(url=hub.url + recorded.path, headers=recorded.headers, body=recorded.body)
        make_adapter().verify(request)
        forms.append(dict(parse_qsl(recorded.body.decode())))
    return forms


def test_reply_inside_the_window_arrives_as_text_and_is_reported_read(
    sandbox: SandboxServer, client: SandboxClient, fake_provider: FakeProvider
) -> None:
    client.send_whatsapp(CITIZEN, "Hallo Rathaus")

    receipt = sandbox_adapter(sandbox).send(
        OutboundMessage(to=CITIZEN, text="Guten Tag!", status_callback=f"{fake_provider.url}/status")
    )

    [item] = client.outbox(kind="whatsapp")
    assert (item["to"], item["from"], item["text"], item["provider_id"]) == (
        CITIZEN,
        HUB_NUMBER,
        "Guten Tag!",
        receipt.provider_id,
    )
    assert [form["MessageStatus"] for form in callbacks(fake_provider, 3)] == ["sent", "delivered", "read"]


def test_choices_go_out_as_reply_buttons_or_as_a_list(sandbox: SandboxServer, client: SandboxClient) -> None:
    client.send_whatsapp(CITIZEN, "Hallo")
    adapter = sandbox_adapter(sandbox)
    two = (Choice("Ja", "survey:1:0"), Choice("Nein", "survey:1:1"))
    five = tuple(Choice(f"Ortsteil {n}", f"district:{n}") for n in range(5))

    adapter.send(OutboundMessage(to=CITIZEN, text="Kommen Sie?", choices=two))
    adapter.send(OutboundMessage(to=CITIZEN, text="Welcher Ortsteil?", choices=five))

    buttons, listed = client.outbox(kind="whatsapp")
    assert buttons["text"] == "Kommen Sie?"
    assert buttons["quick_replies"] == [
        {"title": "Ja", "payload": "survey:1:0"},
        {"title": "Nein", "payload": "survey:1:1"},
    ]
    assert [reply["payload"] for reply in listed["quick_replies"]] == [f"district:{n}" for n in range(5)]


def test_more_than_ten_choices_are_refused_before_sending(sandbox: SandboxServer, client: SandboxClient) -> None:
    client.send_whatsapp(CITIZEN, "Hallo")
    choices = tuple(Choice(str(n), f"c:{n}") for n in range(11))
    with pytest.raises(PermanentError, match="höchstens 10"):
        sandbox_adapter(sandbox).send(OutboundMessage(to=CITIZEN, text="Welche?", choices=choices))
    assert client.outbox(kind="whatsapp") == []


def test_outside_the_window_without_a_template_nothing_is_sent(sandbox: SandboxServer, client: SandboxClient) -> None:
    client.send_whatsapp(CITIZEN, "Hallo", hours_ago=30)
    with pytest.raises(PermanentError, match="Antwort nur mit Vorlage möglich"):
        sandbox_adapter(sandbox).send(OutboundMessage(to=CITIZEN, text="Späte Antwort", window_open=False))
    assert client.outbox(kind="whatsapp") == []


def test_outside_the_window_the_approved_template_of_the_language_carries_the_text(
    sandbox: SandboxServer, client: SandboxClient
) -> None:
    german = client.whatsapp_template("Neues aus Ihrem Rathaus: {{1}}", language="de")
    english = client.whatsapp_template("News from your town hall: {{1}}", language="en")
    adapter = sandbox_adapter(sandbox, template_de=german, template_en=english)

    adapter.send(OutboundMessage(to=CITIZEN, text="Die Hauptstraße\nist gesperrt.", window_open=False, language="de"))
    adapter.send(OutboundMessage(to=CITIZEN, text="Main street is closed.", unprompted=True, language="en"))

    first, second = client.outbox(kind="whatsapp")
    assert (first["content_sid"], first["text"]) == (german, "Neues aus Ihrem Rathaus: Die Hauptstraße ist gesperrt.")
    assert (second["content_sid"], second["text"]) == (english, "News from your town hall: Main street is closed.")


def test_free_text_the_window_no_longer_allows_is_failed_with_63016(
    sandbox: SandboxServer, client: SandboxClient, fake_provider: FakeProvider
) -> None:
    client.send_whatsapp(CITIZEN, "Hallo", hours_ago=25)

    sandbox_adapter(sandbox).send(OutboundMessage(to=CITIZEN, text="Antwort", status_callback=f"{fake_provider.url}/s"))

    [failed] = callbacks(fake_provider, 1)
    assert (failed["MessageStatus"], failed["ErrorCode"]) == ("failed", "63016")
    assert client.outbox(kind="whatsapp") == []


def test_a_recipient_beyond_the_messaging_limit_is_failed_with_63018(
    sandbox: SandboxServer, client: SandboxClient, fake_provider: FakeProvider
) -> None:
    adapter = sandbox_adapter(sandbox, template_de=client.whatsapp_template("Info: {{1}}"))
    callback = f"{fake_provider.url}/s"
    for number in ("+4915100000001", "+4915100000002", "+4915100000001", "+4915100000003"):
        adapter.send(OutboundMessage(to=number, text="Müllabfuhr", unprompted=True, status_callback=callback))

    forms = callbacks(fake_provider, 10)
    failed = [(form["To"], form["ErrorCode"]) for form in forms if form["MessageStatus"] == "failed"]
    assert failed == [("whatsapp:+4915100000003", "63018")]
    assert [item["to"] for item in client.outbox(kind="whatsapp")] == [
        "+4915100000001",
        "+4915100000002",
        "+4915100000001",
    ]


def test_rate_limits_and_server_errors_are_transient(sandbox: SandboxServer, client: SandboxClient) -> None:
    client.send_whatsapp(CITIZEN, "Hallo")
    adapter = sandbox_adapter(sandbox)
    client.set_faults("whatsapp", rate_429=1.0)
    with pytest.raises(TransientError) as limited:
        adapter.send(OutboundMessage(to=CITIZEN, text="x"))
    client.set_faults("whatsapp", rate_5xx=1.0)
    with pytest.raises(TransientError):
        adapter.send(OutboundMessage(to=CITIZEN, text="x"))
    assert limited.value.code == "20429"


def test_a_sender_twilio_does_not_know_is_permanent(sandbox: SandboxServer, client: SandboxClient) -> None:
    adapter = WhatsAppAdapter(
        {"account_sid": ACCOUNT_SID, "phone_number": "+4930999999", "api_base_url": sandbox.url},
        {"auth_token": AUTH_TOKEN},
    )
    with pytest.raises(PermanentError) as refused:
        adapter.send(OutboundMessage(to=CITIZEN, text="x"))
    assert refused.value.code == "63007"


def test_a_template_twilio_does_not_know_is_permanent(sandbox: SandboxServer, client: SandboxClient) -> None:
    with pytest.raises(PermanentError) as refused:
        sandbox_adapter(sandbox, template_de="HX" + "0" * 32).send(
            OutboundMessage(to=CITIZEN, text="x", unprompted=True)
        )
    assert refused.value.code == "21655"


def twilio_error_body(code: int, status: int = 400) -> dict[str, Any]:
    return {"code": code, "message": f"error {code}", "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (63016, PermanentError, "Antwort nur mit Vorlage"),
        (63024, PermanentError, "kein WhatsApp"),
        (63032, PermanentError, "gerade nicht"),
        (63018, TransientError, "Tageslimit"),
        (21610, OptedOutError, "abbestellt"),
        (21211, PermanentError, "lehnt ab"),
    ],
)
def test_every_twilio_answer_maps_to_one_of_the_three_errors(
    fake_provider: FakeProvider, code: int, error: type[Exception], words: str
) -> None:
    fake_provider.respond(400, twilio_error_body(code))
    with pytest.raises(error, match=words) as raised:
        make_adapter(api_base_url=fake_provider.url).send(OutboundMessage(to=CITIZEN, text="x"))
    assert getattr(raised.value, "code", None) == str(code)
    [sent] = fake_provider.requests
    assert (sent.form["To"], sent.form["From"]) == (["whatsapp:" + CITIZEN], ["whatsapp:" + HUB_NUMBER])


def test_nothing_listening_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="nicht erreichbar"):
        make_adapter(api_base_url=f"http://127.0.0.1:{port}").send(OutboundMessage(to=CITIZEN, text="x"))


def test_an_invalid_number_is_refused_before_sending(fake_provider: FakeProvider) -> None:
    with pytest.raises(PermanentError, match="Ungültige Telefonnummer"):
        make_adapter(api_base_url=fake_provider.url).send(OutboundMessage(to="0000", text="x"))
    assert fake_provider.requests == []


def test_the_administration_connects_a_whatsapp_sender_with_its_templates_and_tier(session: Session) -> None:
    town = tenancy.create_municipality(session, slug="wastadt", name="Wastadt")
    assert town.id is not None
    actor = tenancy.create_user(session, municipality_id=town.id, email="a@wa.de", name="A", role="admin")
    assert actor.id is not None
    values = {"phone_number": HUB_NUMBER, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
              "template_de": "HX" + "1" * 32, "daily_recipients": "2000"}  # fmt: skip

    account = admin.create_channel_account(
        session, municipality_id=town.id, actor_id=actor.id, kind="whatsapp", name="WhatsApp", values=values
    )

    assert account.address == HUB_NUMBER and account.secrets == {"auth_token": AUTH_TOKEN}
    assert WhatsAppAdapter.template_for(account.config, "de") == "HX" + "1" * 32
    assert WhatsAppAdapter.daily_recipient_limit(account.config) == 2000
