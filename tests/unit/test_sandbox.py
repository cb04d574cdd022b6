"""The sandbox emulators, driven by the real provider SDKs and checked against independent verifiers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import facebook
import pytest
import requests
import telegram
import telegram.error
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient

from channels.base import Choice, InboundMessage, OutboundMessage, WebhookRequest
from channels.facebook import FacebookAdapter
from channels.sandbox.client import SandboxClient, SandboxError
from channels.sandbox.delivery import CallbackQueue
from channels.sandbox.server import SandboxServer
from channels.sandbox.smtp_sink import AnyPortController
from channels.sandbox.state import SandboxState
from channels.telegram import TelegramAdapter

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-auth-token-123"
HUB_NUMBER = "+4930123456"
CITIZEN = "+4915112345678"
BOT_TOKEN = "123456789:AAH-sandbox-token"
BOT_USERNAME = "rathaus_test_bot"
WEBHOOK_SECRET = "tg_secret-42"
PAGE_ID = "1122334455"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "verify-me"
PAGE_TOKEN = "EAAG-page-token"
PSID = "7000000000000001"
HUB_MAIL = "buergerbuero@rathaus.example"


# The hub side: tiny receivers standing in for the hub's webhooks and SMTP listener.


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeHub:
    base: str = ""
    requests: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str) -> str:
        return self.base + path

    def wait(self, count: int, path: str | None = None, method: str = "POST", timeout: float = 5.0) -> list[Received]:
        def matching() -> list[Received]:
            return [r for r in self.requests if r.method == method and (path is None or r.path.startswith(path))]

        with self.cond:
            self.cond.wait_for(lambda: len(matching()) >= count, timeout)
            found = matching()
        assert len(found) >= count, f"hub got {len(found)} of {count} requests to {path}"
        return found


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub()

    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: bytes) -> None:
            with fake.cond:
                fake.requests.append(Received(self.command, self.path, dict(self.headers), body))
                fake.cond.notify_all()

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            self._record(b"")
            # Meta's subscription handshake, answered as the hub must.
            if query.get("hub.verify_token") == [VERIFY_TOKEN]:
                answer, status = query["hub.challenge"][0].encode(), 200
            else:
                answer, status = b"forbidden", 403
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_POST(self) -> None:
            self._record(self.rfile.read(int(self.headers["Content-Length"])))
            answer = b"<Response/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[SandboxClient]:
    with SandboxClient(sandbox.url) as sandbox_client:
        yield sandbox_client


@pytest.fixture
def twilio(client: SandboxClient, sandbox: SandboxServer, hub: FakeHub) -> TwilioClient:
    client.register_account(
        "twilio",
        {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER},
        {"auth_token": AUTH_TOKEN},
        webhook_url=hub.url("/webhooks/twilio/1"),
    )
    sdk = TwilioClient(ACCOUNT_SID, AUTH_TOKEN)
    sdk.api.base_url = sandbox.url
    return sdk


@pytest.fixture
def bot_account(client: SandboxClient) -> dict[str, Any]:
    return client.register_account("telegram", {"bot_username": BOT_USERNAME}, {"bot_token": BOT_TOKEN})


def run_bot(sandbox: SandboxServer, action: Callable[[telegram.Bot], Any]) -> Any:
    """Run PTB (asyncio-only) calls against the sandbox; initialize() itself calls getMe."""

    async def go() -> Any:
        async with telegram.Bot(BOT_TOKEN, base_url=sandbox.url + "/bot") as bot:
            return await action(bot)

    return asyncio.run(go())


class GraphSession(requests.Session):
    """Sends facebook-sdk's https://graph.facebook.com/ calls to the sandbox."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        url = str(url).replace("https://graph.facebook.com/", self.base_url + "/", 1)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def page(client: SandboxClient, hub: FakeHub) -> dict[str, Any]:
    return client.register_account(
        "facebook",
        {"page_id": PAGE_ID, "page_name": "Gemeinde Musterstadt"},
        {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "page_access_token": PAGE_TOKEN},
        webhook_url=hub.url("/webhooks/facebook/3"),
    )


@pytest.fixture
def graph(sandbox: SandboxServer, page: dict[str, Any]) -> facebook.GraphAPI:
    api = facebook.GraphAPI(PAGE_TOKEN, session=GraphSession(sandbox.url))
    api.version = "v19.0"
    return api


def send_messenger(graph: facebook.GraphAPI, psid: str, text: str, **extra: str) -> Any:
    post_args = {
        "recipient": json.dumps({"id": psid}),
        "messaging_type": "RESPONSE",
        "message": json.dumps({"text": text}),
        **extra,
    }
    return graph.request(f"{graph.version}/me/messages", post_args=post_args)


def meta_signature_ok(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


# Twilio


def test_twilio_send_through_sdk_lands_in_outbox(twilio: TwilioClient, client: SandboxClient):
    message = twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Grüße aus dem Rathaus")

    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.date_created is not None
    [item] = client.outbox(kind="twilio")
    assert (item["to"], item["from"], item["text"]) == (CITIZEN, HUB_NUMBER, "Grüße aus dem Rathaus")
    assert item["provider_id"] == message.sid


def test_twilio_counts_ucs2_segments(twilio: TwilioClient):
    message = twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="„Termin“ " * 10)
    assert message.num_segments == "2"


def test_twilio_wrong_token_is_20003(sandbox: SandboxServer, twilio: TwilioClient, client):
    wrong = TwilioClient(ACCOUNT_SID, "not-the-token")
    wrong.api.base_url = sandbox.url

    with pytest.raises(TwilioRestException) as caught:
        wrong.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Hallo")

    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert client.outbox() == []


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [("", HUB_NUMBER, 21604), ("015112345678", HUB_NUMBER, 21211), (CITIZEN, "+4930999999", 21606)],
)
def test_twilio_validates_like_twilio(twilio: TwilioClient, to: str, from_: str, code: int):
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=to, from_=from_, body="Hallo")
    assert (caught.value.status, caught.value.code) == (400, code)


def test_twilio_inbound_sms_is_signed_and_complete(twilio, client: SandboxClient, hub: FakeHub):
    media = "https://example.org/foto.png"
    answer = client.send_sms(CITIZEN, "Wann hat das Bürgerbüro offen?", media_urls=[media])

    [request] = hub.wait(1, "/webhooks/twilio/1")
    form = request.form()
    validator = RequestValidator(AUTH_TOKEN)
    url = hub.url(request.path)
    assert validator.validate(url, form, request.headers["X-Twilio-Signature"])
    assert not validator.validate(url, {**form, "Body": "manipuliert"}, request.headers["X-Twilio-Signature"])
    assert answer["status_code"] == 200
    assert answer["response_text"] == "<Response/>"
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"] == answer["message_sid"]
    assert form["MessageSid"].startswith("MM")
    assert form["AccountSid"] == ACCOUNT_SID
    assert (form["From"], form["To"]) == (CITIZEN, HUB_NUMBER)
    assert form["Body"] == "Wann hat das Bürgerbüro offen?"
    assert (form["NumMedia"], form["MediaUrl0"], form["MediaContentType0"]) == ("1", media, "image/png")
    assert (form["FromCountry"], form["ToCountry"]) == ("DE", "DE")
    assert (form["ApiVersion"], form["SmsStatus"], form["NumSegments"]) == ("2010-04-01", "received", "1")
    assert "MessagingServiceSid" not in form
    assert "OptOutType" not in form


def test_twilio_stop_opts_out_until_start(twilio: TwilioClient, client: SandboxClient, hub: FakeHub):
    client.send_sms(CITIZEN, " stop ")
    assert hub.wait(1)[0].form()["OptOutType"] == "STOP"

    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Noch da?")
    assert (caught.value.status, caught.value.code) == (400, 21610)
    assert caught.value.msg.endswith("Attempt to send to unsubscribed recipient")

    client.send_sms(CITIZEN, "START")
    assert hub.wait(2)[1].form()["OptOutType"] == "START"
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Willkommen zurück")
    assert [i["text"] for i in client.outbox()] == ["Willkommen zurück"]


def test_twilio_stop_inside_a_sentence_is_no_keyword(twilio, client: SandboxClient, hub: FakeHub):
    client.send_sms(CITIZEN, "STOP PLEASE")
    assert "OptOutType" not in hub.wait(1)[0].form()
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Alles klar")


def test_twilio_status_callbacks_are_signed(twilio: TwilioClient, hub: FakeHub):
    callback = hub.url("/webhooks/twilio/1/status?outbound=7")
    message = twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="Ihr Antrag ist da", status_callback=callback)

    reports = hub.wait(2, "/webhooks/twilio/1/status")
    validator = RequestValidator(AUTH_TOKEN)
    forms = [r.form() for r in reports]
    assert [f["MessageStatus"] for f in forms] == ["sent", "delivered"]
    for report, form in zip(reports, forms, strict=True):
        assert validator.validate(callback, form, report.headers["X-Twilio-Signature"])
        assert form["MessageSid"] == form["SmsSid"] == message.sid
        assert form["SmsStatus"] == form["MessageStatus"]
        assert (form["AccountSid"], form["From"], form["To"]) == (ACCOUNT_SID, HUB_NUMBER, CITIZEN)


def test_twilio_undelivered_recipient_gets_failed_callback_and_no_outbox(
    twilio: TwilioClient, client: SandboxClient, hub: FakeHub
):
    client.set_faults("twilio", undelivered_to=[CITIZEN])
    callback = hub.url("/status")
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x", status_callback=callback)

    final = hub.wait(2, "/status")[1].form()
    assert (final["MessageStatus"], final["ErrorCode"]) == ("undelivered", "30005")
    assert client.outbox() == []


def test_twilio_status_callbacks_can_overtake_the_answer_to_the_send(
    twilio: TwilioClient, client: SandboxClient, hub: FakeHub
):
    client.set_faults("twilio", answer_latency_ms=1_000)
    callback = hub.url("/status")
    message = twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x", status_callback=callback)
    with hub.cond:  # both reports were in before the answer with the sid came back
        forms = [r.form() for r in hub.requests]
    assert [(form["MessageSid"], form["MessageStatus"]) for form in forms] == [
        (message.sid, "sent"),
        (message.sid, "delivered"),
    ]


def test_callbacks_wait_for_a_free_sender_and_queued_ones_can_be_dropped():
    callbacks = CallbackQueue(1, "test-callbacks")
    release, posted = threading.Event(), []
    callbacks.submit(lambda: (release.wait(5), posted.append("first")))
    callbacks.submit(lambda: posted.append("second"))
    assert callbacks.pending == 2

    assert callbacks.discard() == 2
    release.set()
    deadline = time.monotonic() + 5
    while callbacks.pending and time.monotonic() < deadline:
        time.sleep(0.01)

    assert callbacks.pending == 0
    assert posted == ["first"]  # the one being posted finishes; the queued one is never sent


# Telegram


def test_telegram_get_me_and_send_message(sandbox, bot_account, client: SandboxClient):
    keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Ja", callback_data="survey:1:yes")]])

    async def act(bot: telegram.Bot) -> tuple[telegram.User, telegram.Message, telegram.Message]:
        me = await bot.get_me()
        first = await bot.send_message(424242, "Ist die Straße frei?", reply_markup=keyboard)
        second = await bot.send_message(424242, "Danke!")
        return me, first, second

    me, first, second = run_bot(sandbox, act)

    assert (me.username, me.is_bot, me.id) == (BOT_USERNAME, True, 123456789)
    assert second.message_id == first.message_id + 1
    assert first.chat.id == 424242
    assert first.from_user is not None and first.from_user.id == me.id
    items = client.outbox(kind="telegram")
    assert [(i["to"], i["text"]) for i in items] == [("424242", "Ist die Straße frei?"), ("424242", "Danke!")]
    assert items[0]["reply_markup"] == {"inline_keyboard": [[{"text": "Ja", "callback_data": "survey:1:yes"}]]}
    assert items[0]["from"] == BOT_USERNAME


def test_a_restarted_sandbox_hands_out_no_message_or_query_id_twice() -> None:
    """The hub keys Telegram messages on (chat, message id) and presses on the query id; update ids may repeat."""
    before = SandboxState()
    old_ids = [before.next_message_id(BOT_TOKEN, 424242) for _ in range(3)]
    old_serial = before.serial()
    after = SandboxState()  # the sandbox process started again, the hub's database kept
    assert after.next_message_id(BOT_TOKEN, 424242) > max(old_ids)
    assert after.serial() > old_serial
    assert after.next_update_id(BOT_TOKEN) == before.next_update_id(BOT_TOKEN) == 1  # as Telegram may


def test_telegram_errors_map_to_ptb_exceptions(sandbox, bot_account, client: SandboxClient):
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message is too long"):
        run_bot(sandbox, lambda bot: bot.send_message(1, "x" * 4097))

    async def wrong_token() -> None:
        async with telegram.Bot("999:wrong", base_url=sandbox.url + "/bot"):
            pass

    with pytest.raises(telegram.error.InvalidToken):
        asyncio.run(wrong_token())
    assert client.outbox() == []


def test_telegram_citizen_message_reaches_webhook(sandbox, bot_account, client, hub: FakeHub):
    run_bot(
        sandbox,
        lambda bot: bot.set_webhook(hub.url("/webhooks/telegram/2"), secret_token=WEBHOOK_SECRET),
    )
    first = client.send_telegram(555, "/start", bot_username=BOT_USERNAME, last_name="Mustermann")
    second = client.send_telegram(555, "Grüße 👋 /hilfe", bot_username=BOT_USERNAME)

    requests_ = hub.wait(2, "/webhooks/telegram/2")
    for request in requests_:
        assert hmac.compare_digest(request.headers["X-Telegram-Bot-Api-Secret-Token"], WEBHOOK_SECRET)
    one, two = (r.json() for r in requests_)
    assert (one["update_id"], two["update_id"]) == (first["update_id"], first["update_id"] + 1)
    message = one["message"]
    assert message["chat"] == {"id": 555, "first_name": "Erika", "last_name": "Mustermann", "type": "private"}
    assert message["from"]["is_bot"] is False
    assert message["from"]["language_code"] == "de"
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    # Offsets count UTF-16 units: the emoji takes two.
    assert two["message"]["entities"] == [{"offset": 9, "length": 6, "type": "bot_command"}]
    assert two["message"]["message_id"] == second["message_id"] == first["message_id"] + 1
    update = telegram.Update.de_json(one, None)
    assert update.message is not None and update.message.text == "/start"


def test_telegram_button_press_carries_the_keyboard_message(sandbox, bot_account, client, hub):
    client.register_account(
        "telegram",
        {"bot_username": BOT_USERNAME},
        {"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
        webhook_url=hub.url("/tg"),
    )
    keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Nein", callback_data="survey:1:no")]])
    sent = run_bot(sandbox, lambda bot: bot.send_message(777, "Zufrieden?", reply_markup=keyboard))

    pressed = client.press_telegram_button(777, "survey:1:no")
    query = hub.wait(1, "/tg")[0].json()["callback_query"]
    assert query["id"] == pressed["callback_query_id"]
    assert query["data"] == "survey:1:no"
    assert query["message"]["message_id"] == sent.message_id
    assert query["from"]["id"] == 777
    assert client.telegram_answered(777) == []
    assert run_bot(sandbox, lambda bot: bot.answer_callback_query(query["id"], text="Danke!")) is True
    [answer] = client.telegram_answered(777)
    assert answer["callback_query_id"] == query["id"]
    assert (answer["data"], answer["message_id"], answer["text"]) == ("survey:1:no", sent.message_id, "Danke!")
    assert answer["show_alert"] is False
    assert client.telegram_answered(778) == []


def test_telegram_callback_queries_belong_to_their_bot(sandbox, bot_account, client):
    keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Ja", callback_data="survey:1:yes")]])
    run_bot(sandbox, lambda bot: bot.send_message(777, "Zufrieden?", reply_markup=keyboard))
    client.register_account("telegram", {"bot_username": "other_bot"}, {"bot_token": "987654321:other"})
    pressed = client.press_telegram_button(777, "survey:1:yes", bot_username=BOT_USERNAME)

    async def other_bot_answers() -> bool:
        async with telegram.Bot("987654321:other", base_url=sandbox.url + "/bot") as bot:
            return await bot.answer_callback_query(pressed["callback_query_id"])

    with pytest.raises(telegram.error.BadRequest, match=r"(?i)query id is invalid"):
        asyncio.run(other_bot_answers())
    run_bot(sandbox, lambda bot: bot.answer_callback_query(pressed["callback_query_id"]))
    assert client.telegram_answered(777, bot_username="other_bot") == []
    assert len(client.telegram_answered(777, bot_username=BOT_USERNAME)) == 1


def test_telegram_only_buttons_the_bot_sent_can_be_pressed(sandbox, bot_account, client):
    keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Ja", callback_data="survey:1:yes")]])
    with pytest.raises(SandboxError) as no_keyboard:
        client.press_telegram_button(777, "survey:1:yes")
    assert no_keyboard.value.status_code == 404
    run_bot(sandbox, lambda bot: bot.send_message(777, "Zufrieden?", reply_markup=keyboard))

    with pytest.raises(SandboxError) as caught:
        client.press_telegram_button(777, "survey:1:no")

    assert caught.value.status_code == 404
    assert "survey:1:yes" in caught.value.detail


def test_telegram_refuses_unknown_callback_queries_and_overlong_callback_data(sandbox, bot_account, client):
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)query id is invalid"):
        run_bot(sandbox, lambda bot: bot.answer_callback_query("4711"))
    too_long = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Ja", callback_data="ä" * 33)]])
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)button_data_invalid"):
        run_bot(sandbox, lambda bot: bot.send_message(777, "Zufrieden?", reply_markup=too_long))
    assert client.outbox() == []


def test_telegram_block_gives_403_until_unblock(sandbox, bot_account, client, hub: FakeHub):
    run_bot(sandbox, lambda bot: bot.set_webhook(hub.url("/tg"), secret_token=WEBHOOK_SECRET))
    client.block_telegram(888)

    change = hub.wait(1, "/tg")[0].json()["my_chat_member"]
    assert change["new_chat_member"]["status"] == "kicked"
    assert change["old_chat_member"]["status"] == "member"
    with pytest.raises(telegram.error.Forbidden, match="bot was blocked by the user"):
        run_bot(sandbox, lambda bot: bot.send_message(888, "Hallo?"))

    client.unblock_telegram(888)
    assert hub.wait(2, "/tg")[1].json()["my_chat_member"]["new_chat_member"]["status"] == "member"
    run_bot(sandbox, lambda bot: bot.send_message(888, "Willkommen zurück"))
    assert [i["text"] for i in client.outbox()] == ["Willkommen zurück"]


# Facebook


def test_facebook_registration_does_the_handshake(client: SandboxClient, page, hub: FakeHub):
    assert page["verified"] is True
    [check] = hub.wait(1, method="GET")
    query = parse_qs(urlsplit(check.path).query)
    assert query["hub.mode"] == ["subscribe"]
    assert query["hub.verify_token"] == [VERIFY_TOKEN]
    wrong = client.register_account(
        "facebook",
        {"page_id": "999"},
        {"app_secret": "s", "verify_token": "falsch", "page_access_token": "t"},
        webhook_url=hub.url("/webhooks/facebook/9"),
    )
    assert wrong["verified"] is False


def test_facebook_message_webhook_is_signed_over_ascii_escaped_body(client, page, hub: FakeHub):
    answer = client.send_messenger(PSID, "Müll wurde nicht abgeholt", quick_reply_payload="MUELL")

    request = hub.wait(1, "/webhooks/facebook/3")[0]
    assert meta_signature_ok(request.body, request.headers["X-Hub-Signature-256"])
    assert not meta_signature_ok(request.body + b" ", request.headers["X-Hub-Signature-256"])
    assert b"M\\u00fcll" in request.body
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    assert payload["object"] == "page"
    [entry] = payload["entry"]
    [event] = entry["messaging"]
    assert entry["id"] == PAGE_ID
    assert event["sender"] == {"id": PSID}
    assert event["recipient"] == {"id": PAGE_ID}
    assert event["message"] == {
        "mid": answer["mid"],
        "text": "Müll wurde nicht abgeholt",
        "quick_reply": {"payload": "MUELL"},
    }
    assert answer["mid"].startswith("m_")


def test_facebook_send_api_through_sdk(client: SandboxClient, graph: facebook.GraphAPI):
    client.send_messenger(PSID, "Hallo")

    result = send_messenger(graph, PSID, "Wir kümmern uns darum.")

    assert result["recipient_id"] == PSID
    assert result["message_id"].startswith("m_")
    [item] = client.outbox(kind="facebook")
    assert (item["to"], item["from"], item["text"]) == (PSID, PAGE_ID, "Wir kümmern uns darum.")
    assert (item["messaging_type"], item["provider_id"]) == ("RESPONSE", result["message_id"])


def test_facebook_user_profile_answers_the_fields_asked_for_people_who_wrote_to_the_page(
    client: SandboxClient, graph: facebook.GraphAPI
):
    client.send_messenger(PSID, "Hallo", first_name="Lena", last_name="Groß")

    assert graph.get_object(PSID, fields="first_name,last_name") == {
        "id": PSID, "first_name": "Lena", "last_name": "Groß",
    }  # fmt: skip
    assert graph.get_object(PSID, fields="first_name") == {"id": PSID, "first_name": "Lena"}
    with pytest.raises(facebook.GraphAPIError) as never_wrote:
        graph.get_object("7000000000000999", fields="first_name,last_name")
    assert (never_wrote.value.code, never_wrote.value.result["error"]["error_subcode"]) == (100, 33)
    graph.access_token = "falsch"
    with pytest.raises(facebook.GraphAPIError) as bad_token:
        graph.get_object(PSID, fields="first_name")
    assert bad_token.value.code == 190


def test_facebook_records_quick_replies_and_refuses_too_many(client: SandboxClient, graph: facebook.GraphAPI):
    client.send_messenger(PSID, "Hallo")
    replies = [{"content_type": "text", "title": "Ja", "payload": "survey:1:yes"}]

    send_messenger(graph, PSID, "Zufrieden?", message=json.dumps({"text": "Zufrieden?", "quick_replies": replies}))
    with pytest.raises(facebook.GraphAPIError) as caught:
        send_messenger(graph, PSID, "Zu viele", message=json.dumps({"text": "Zu viele", "quick_replies": replies * 14}))

    assert caught.value.code == 100
    [item] = client.outbox(kind="facebook")
    assert item["quick_replies"] == [{"title": "Ja", "payload": "survey:1:yes"}]


def test_facebook_wrong_token_is_190(sandbox: SandboxServer, page, client: SandboxClient):
    api = facebook.GraphAPI("wrong", session=GraphSession(sandbox.url))
    api.version = "v19.0"
    with pytest.raises(facebook.GraphAPIError) as caught:
        send_messenger(api, PSID, "Hallo")
    assert (caught.value.code, caught.value.type) == (190, "OAuthException")


def test_facebook_enforces_the_messaging_window(client: SandboxClient, graph: facebook.GraphAPI):
    with pytest.raises(facebook.GraphAPIError) as never_wrote:
        send_messenger(graph, PSID, "Hallo")
    assert never_wrote.value.code == 10
    assert never_wrote.value.result["error"]["error_subcode"] == 2018278

    three_days_ago = int((time.time() - 3 * 24 * 3600) * 1000)
    client.send_messenger(PSID, "Hallo", timestamp_ms=three_days_ago)
    with pytest.raises(facebook.GraphAPIError):
        send_messenger(graph, PSID, "Zu spät")
    tagged = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    send_messenger(graph, PSID, "Antwort der Sachbearbeitung", **tagged)

    client.set_faults("facebook", ignore_window=True)
    send_messenger(graph, "unknown-psid", "Trotzdem")
    assert [(i["text"], i["tag"]) for i in client.outbox()] == [
        ("Antwort der Sachbearbeitung", "HUMAN_AGENT"),
        ("Trotzdem", None),
    ]


def test_facebook_comment_and_reply(client: SandboxClient, graph: facebook.GraphAPI, hub: FakeHub):
    posted = client.post_comment("4711", "Erika Mustermann", "555", "Schlagloch in der Hauptstraße")

    request = hub.wait(1, "/webhooks/facebook/3")[0]
    assert meta_signature_ok(request.body, request.headers["X-Hub-Signature-256"])
    [change] = request.json()["entry"][0]["changes"]
    value = change["value"]
    assert change["field"] == "feed"
    assert (value["item"], value["verb"]) == ("comment", "add")
    assert value["post_id"] == value["parent_id"] == f"{PAGE_ID}_555"
    assert value["comment_id"] == posted["comment_id"]
    assert value["comment_id"].startswith("555_")
    assert value["from"] == {"id": "4711", "name": "Erika Mustermann"}
    assert value["message"] == "Schlagloch in der Hauptstraße"

    reply = graph.put_comment(posted["comment_id"], "Danke, wir schicken jemanden.")

    assert reply["id"].startswith("555_")
    [item] = client.outbox(kind="facebook")
    assert (item["to"], item["reply_to_ref"]) == ("4711", posted["comment_id"])
    assert item["provider_id"] == reply["id"]
    # Meta echoes the Page's own reply through the feed webhook; the hub must skip it.
    echo = hub.wait(2, "/webhooks/facebook/3")[1].json()["entry"][0]["changes"][0]["value"]
    assert echo["from"]["id"] == PAGE_ID
    assert echo["parent_id"] == posted["comment_id"]


# Email


def test_smtp_sink_records_hub_mail(sandbox: SandboxServer, client: SandboxClient):
    mail = EmailMessage()
    mail["From"] = "Rathaus Musterstadt <buergerbuero@rathaus.example>"
    mail["To"] = "erika@example.org, max@example.org"
    mail["Subject"] = "Ihr Antrag: Bestätigung"
    mail["Message-ID"] = "<case-17@rathaus.example>"
    mail["In-Reply-To"] = "<abc@example.org>"
    mail.set_content("Sehr geehrte Frau Müller,\nwir haben Ihren Antrag erhalten.", cte="quoted-printable")
    mail.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="Bescheid.pdf")

    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port) as smtp:
        smtp.send_message(mail, from_addr="", to_addrs=["erika@example.org", "max@example.org"])

    items = client.outbox(kind="email")
    assert [i["to"] for i in items] == ["erika@example.org", "max@example.org"]
    first = items[0]
    assert first["from"] == "<>"
    assert first["subject"] == "Ihr Antrag: Bestätigung"
    assert first["text"] == "Sehr geehrte Frau Müller,\nwir haben Ihren Antrag erhalten.\n"
    assert (first["provider_id"], first["reply_to_ref"]) == ("<case-17@rathaus.example>", "<abc@example.org>")
    assert first["headers"]["From"] == "Rathaus Musterstadt <buergerbuero@rathaus.example>"
    assert first["attachments"] == [{"filename": "Bescheid.pdf", "content_type": "application/pdf", "size": 8}]


@dataclass
class HubMailbox:
    port: int
    mails: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if self.refuse:
            return "550 5.7.1 Absender abgelehnt"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def hub_mailbox(client: SandboxClient) -> Iterator[HubMailbox]:
    mailbox = HubMailbox(port=0)
    controller = AnyPortController(mailbox, hostname="127.0.0.1", port=0, server_hostname="hub.localhost")
    controller.start()
    mailbox.port = controller.port
    client.register_account(
        "email",
        {"address": HUB_MAIL, "hub_smtp_host": "127.0.0.1", "hub_smtp_port": mailbox.port},
        {},
    )
    yield mailbox
    controller.stop()


def test_citizen_email_latin1_quoted_printable_with_attachment(client, hub_mailbox: HubMailbox):
    pdf = b"%PDF-1.4\n" + bytes(range(256))
    answer = client.send_email(
        "erika@example.org",
        "Sehr geehrte Damen und Herren,\nich beantrage einen Parkausweis.\nMit freundlichen Grüßen",
        subject="Antrag für Straßenfest",
        to=HUB_MAIL,
        from_name="Erika Müller",
        charset="iso-8859-1",
        transfer_encoding="quoted-printable",
        in_reply_to="<case-1@rathaus.example>",
        references=["<case-1@rathaus.example>"],
        attachments=[("Antrag.pdf", "application/pdf", pdf)],
        headers={"X-Mailer": "Sandbox"},
    )

    assert answer["smtp_response"].startswith("250")
    [(mail_from, rcpt_tos, raw)] = hub_mailbox.mails
    assert (mail_from, rcpt_tos) == ("erika@example.org", [HUB_MAIL])
    assert b"Gr=FC=DFen" in raw
    assert b'charset="iso-8859-1"' in raw
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert b'filename="Antrag.pdf"' in raw
    assert b"Subject: Antrag =?utf-8?q?f=C3=BCr_Stra=C3=9Fenfest?=" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().endswith("Mit freundlichen Grüßen\r\n")
    assert parsed["Subject"] == "Antrag für Straßenfest"
    assert parsed["From"].addresses[0].display_name == "Erika Müller"
    assert parsed["Message-ID"] == answer["message_id"]
    assert parsed["In-Reply-To"] == "<case-1@rathaus.example>"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "Antrag.pdf"
    assert attachment.get_payload(decode=True) == pdf


def test_citizen_raw_email_keeps_bytes_and_null_sender(client, hub_mailbox: HubMailbox):
    raw = (
        b"From: MAILER-DAEMON@example.org\nTo: buergerbuero@rathaus.example\n"
        b"Subject: Undelivered\nMessage-ID: <dsn-1@example.org>\nAuto-Submitted: auto-replied\n\n"
        b"Stra\xdfe\n"
    )
    answer = client.send_raw_email(HUB_MAIL, "", raw)

    [(mail_from, _, received)] = hub_mailbox.mails
    assert mail_from == "<>"
    assert received == raw.replace(b"\n", b"\r\n")
    assert answer["message_id"] == "<dsn-1@example.org>"


def test_citizen_email_refused_is_502(client: SandboxClient, hub_mailbox: HubMailbox):
    hub_mailbox.refuse = True
    with pytest.raises(SandboxError) as caught:
        client.send_email("erika@example.org", "Hallo", to=HUB_MAIL)
    assert caught.value.status_code == 502
    assert "550 5.7.1 Absender abgelehnt" in caught.value.detail


# Faults and control


def test_server_errors_raise_in_every_sdk_and_record_nothing(
    sandbox: SandboxServer, client: SandboxClient, twilio: TwilioClient, bot_account, graph
):
    client.send_messenger(PSID, "Hallo")
    client.set_faults(None, rate_5xx=1.0)

    with pytest.raises(TwilioRestException) as twilio_error:
        twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x")
    assert (twilio_error.value.status, twilio_error.value.code) == (500, 20500)
    with pytest.raises(telegram.error.NetworkError):
        run_bot(sandbox, lambda bot: bot.send_message(1, "x"))
    with pytest.raises(facebook.GraphAPIError) as graph_error:
        send_messenger(graph, PSID, "x")
    assert graph_error.value.result["error"]["is_transient"] is True
    with pytest.raises(smtplib.SMTPDataError) as smtp_error, smtplib.SMTP("127.0.0.1", sandbox.smtp_port) as smtp:
        smtp.sendmail("hub@rathaus.example", ["erika@example.org"], b"Subject: x\r\n\r\nx\r\n")
    assert smtp_error.value.smtp_code == 421
    assert client.outbox() == []


# PTB warns about RetryAfter.retry_after's future type while building the exception.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_rate_limits_look_like_each_provider(sandbox, client, twilio: TwilioClient, bot_account, graph):
    client.send_messenger(PSID, "Hallo")
    client.set_faults(None, rate_429=1.0)

    with pytest.raises(TwilioRestException) as twilio_error:
        twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x")
    assert (twilio_error.value.status, twilio_error.value.code) == (429, 20429)
    with pytest.raises(telegram.error.RetryAfter):
        run_bot(sandbox, lambda bot: bot.send_message(1, "x"))
    with pytest.raises(facebook.GraphAPIError) as graph_error:
        send_messenger(graph, PSID, "x")
    assert graph_error.value.code == 613
    with pytest.raises(smtplib.SMTPDataError) as smtp_error, smtplib.SMTP("127.0.0.1", sandbox.smtp_port) as smtp:
        smtp.sendmail("hub@rathaus.example", ["erika@example.org"], b"Subject: x\r\n\r\nx\r\n")
    assert smtp_error.value.smtp_code == 451
    assert client.outbox() == []


def test_fault_rates_are_per_send_and_seedable(twilio: TwilioClient, client: SandboxClient):
    client.set_faults("twilio", rate_5xx=0.5, seed=7)
    outcomes = []
    for _ in range(20):
        try:
            twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x")
            outcomes.append("ok")
        except TwilioRestException:
            outcomes.append("5xx")
    assert 0 < outcomes.count("ok") < 20
    assert len(client.outbox()) == outcomes.count("ok")


def test_permanent_recipients_fail_permanently(sandbox, client, twilio: TwilioClient, bot_account):
    client.set_faults(None, permanent_to=[CITIZEN, "31337", "weg@example.org"])

    with pytest.raises(TwilioRestException) as twilio_error:
        twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="x")
    assert twilio_error.value.code == 21614
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)chat not found"):
        run_bot(sandbox, lambda bot: bot.send_message(31337, "x"))
    with pytest.raises(smtplib.SMTPRecipientsRefused), smtplib.SMTP("127.0.0.1", sandbox.smtp_port) as smtp:
        smtp.sendmail("hub@rathaus.example", ["weg@example.org"], b"Subject: x\r\n\r\nx\r\n")
    assert client.outbox() == []


def test_accounts_replace_by_identity_and_mask_secrets(client: SandboxClient, twilio, bot_account):
    again = client.register_account(
        "twilio",
        {"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER},
        {"auth_token": "a-new-token-9876"},
    )
    assert again["replaced"] is True
    accounts = client.accounts()
    assert [a["kind"] for a in accounts] == ["twilio", "telegram"]
    assert accounts[0]["id"] == again["id"]
    assert accounts[0]["secrets"] == {"auth_token": "…9876"}
    assert BOT_TOKEN not in json.dumps(accounts)
    with pytest.raises(SandboxError) as caught:
        client.register_account("twilio", {"phone_number": "+49301"}, {})
    assert caught.value.status_code == 422


def test_outbox_since_clear_and_reset(twilio: TwilioClient, client: SandboxClient):
    assert client.healthz() == {"ok": True}
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="eins")
    mark = client.outbox()[0]["received_at"]
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="zwei")

    assert [i["text"] for i in client.outbox(since=mark)] == ["zwei"]
    assert client.outbox(to="+4917000000") == []
    assert mark.endswith("+00:00") and "." in mark
    client.clear_outbox()
    assert client.outbox() == []

    client.set_faults("twilio", rate_5xx=1.0)
    client.reset()
    assert client.faults() == {"faults": {}}
    assert len(client.accounts()) == 1
    twilio.messages.create(to=CITIZEN, from_=HUB_NUMBER, body="drei")
    assert len(client.wait_for_outbox(1, kind="twilio")) == 1


# Buttons end to end: the hub's adapters send choices, the citizen presses one, the press comes back.


def as_webhook(request: Received, hub: FakeHub) -> WebhookRequest:
    return WebhookRequest(url=hub.url(request.path), headers=request.headers, body=request.body)


def test_telegram_choices_round_trip_through_the_adapter(sandbox, client: SandboxClient, hub: FakeHub):
    client.register_account(
        "telegram",
        {"bot_username": BOT_USERNAME},
        {"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
        webhook_url=hub.url("/webhooks/telegram/2"),
    )
    adapter = TelegramAdapter(
        {"api_base_url": sandbox.url + "/bot"}, {"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET}
    )
    choices = (Choice("Ja", "survey:9:yes"), Choice("Nein", "survey:9:no"))

    receipt = adapter.send(OutboundMessage(to="424242", text="Ist Ihr Anliegen erledigt?", choices=choices))

    [item] = client.outbox(kind="telegram")
    assert item["provider_id"] == receipt.provider_id.split(":")[1]
    assert item["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Ja", "callback_data": "survey:9:yes"}, {"text": "Nein", "callback_data": "survey:9:no"}]
        ]
    }

    pressed = client.press_telegram_button(424242, "survey:9:no")

    [request] = hub.wait(1, "/webhooks/telegram/2")
    assert request.json()["callback_query"]["data"] == "survey:9:no"
    webhook = as_webhook(request, hub)
    adapter.verify(webhook)
    [event] = adapter.parse(webhook)
    assert isinstance(event, InboundMessage)
    assert (event.kind, event.text, event.sender) == ("postback", "survey:9:no", "424242")
    assert event.postback_ref == pressed["callback_query_id"]
    assert client.telegram_answered(424242) == []

    adapter.acknowledge_postback(event.postback_ref)

    [answer] = client.telegram_answered(424242)
    assert (answer["callback_query_id"], answer["data"]) == (pressed["callback_query_id"], "survey:9:no")


def test_facebook_quick_reply_round_trip_through_the_adapter(sandbox, client: SandboxClient, page, hub: FakeHub):
    adapter = FacebookAdapter(
        {"page_id": PAGE_ID, "graph_url": sandbox.url},
        {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "page_access_token": PAGE_TOKEN},
    )
    client.send_messenger(PSID, "Hallo")
    choices = (Choice("Ja, alles erledigt, danke", "survey:9:yes"), Choice("Nein", "survey:9:no"))

    receipt = adapter.send(OutboundMessage(to=PSID, text="Ist Ihr Anliegen erledigt?", choices=choices))

    [item] = client.outbox(kind="facebook")
    assert item["provider_id"] == receipt.provider_id
    assert item["quick_replies"] == [
        {"title": "Ja, alles erledigt, ", "payload": "survey:9:yes"},
        {"title": "Nein", "payload": "survey:9:no"},
    ]

    tapped = item["quick_replies"][0]
    client.send_messenger(PSID, tapped["title"], quick_reply_payload=tapped["payload"])

    request = hub.wait(2, "/webhooks/facebook/3")[1]
    webhook = as_webhook(request, hub)
    adapter.verify(webhook)
    [event] = adapter.parse(webhook)
    assert isinstance(event, InboundMessage)
    assert (event.kind, event.text, event.sender) == ("postback", "survey:9:yes", PSID)
    assert event.postback_ref is None
