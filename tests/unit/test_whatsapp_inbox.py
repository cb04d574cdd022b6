"""WhatsApp through the webhook and pipeline, on SQLite and PostgreSQL: cases, replies, the window, opt-in, STOP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db
from hub.app import create_app
from hub.broadcasts.fanout import daily_budgets
from hub.contacts.models import ContactIdentity
from hub.contacts.service import resolve_contact
from hub.demo import seed_demo
from hub.errors import Conflict
from hub.inbox import service
from hub.inbox.models import Conversation, Message
from hub.inbox.outbound import send_message
from hub.inbox.pipeline import process_event
from hub.settings import Settings
from hub.subscribers.demo import seed_subscriber_demo
from hub.subscribers.models import ConsentEvent, Subscription
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser
from tests.unit import db as test_db
from tests.unit.web import api_client, clerk
from workers.tasks import stop_everywhere

FIXTURES = Path(__file__).parent.parent / "fixtures" / "whatsapp"
ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "whatsapp-auth-token"
HUB_NUMBER = "+4930901820"
CITIZEN = "+4915112345678"


@dataclass
class WhatsAppTown:
    """A town with a WhatsApp sender on the sandbox, its webhook in this process, and a clerk."""

    session: Session
    settings: Settings
    web: TestClient
    municipality: Municipality
    account: ChannelAccount
    clerk: StaffUser
    sandbox: SandboxClient
    queued: list[list[int]]

    def citizen_writes(self, fixture: str, **fields: str) -> None:
        """The citizen's message: the sandbox opens WhatsApp's window, the captured form reaches the webhook."""
        form: dict[str, str] = {**json.loads((FIXTURES / fixture).read_text(encoding="utf-8")), **fields}
        form.update(From=f"whatsapp:{CITIZEN}", To=f"whatsapp:{HUB_NUMBER}", AccountSid=ACCOUNT_SID)
        if "MessageStatus" not in form:
            self.sandbox.send_whatsapp(CITIZEN, form.get("Body", ""))
        self.post(form, "/status" if "MessageStatus" in form else "")

    def post(self, form: dict[str, str], suffix: str = "") -> None:
        path = f"/webhooks/whatsapp/{self.account.id}{suffix}"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(self.settings.public_url.rstrip("/") + path, form)
        answer = self.web.post(
            path,
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
        assert answer.status_code == 200, answer.text
        for event_id in self.queued.pop() if self.queued else []:
            process_event(self.session, self.settings, event_id)
            self.session.commit()
        self.session.expire_all()

    def conversation(self) -> Conversation:
        return self.session.exec(select(Conversation).where(Conversation.channel_account_id == self.account.id)).one()

    def outbound(self) -> list[Message]:
        return list(self.session.exec(select(Message).where(Message.direction == "outbound").order_by(col(Message.id))))

    def consent(self) -> list[tuple[str, str | None, str]]:
        events = self.session.exec(select(ConsentEvent).order_by(col(ConsentEvent.id)))
        return [(event.action, event.channel_kind, event.source) for event in events]


@pytest.fixture
def town(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[WhatsAppTown]:
    with SandboxServer() as sandbox, Session(db.get_engine(), expire_on_commit=False) as session:
        municipality = tenancy.create_municipality(session, slug="wadorf", name="Gemeinde Wadorf")
        assert municipality.id is not None
        clerk = tenancy.create_user(
            session, municipality_id=municipality.id, email="c@x.de", name="Clara", role="staff"
        )
        account = tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="whatsapp", name="WhatsApp",
            config={"account_sid": ACCOUNT_SID, "phone_number": HUB_NUMBER, "api_base_url": sandbox.url},
            secrets_={"auth_token": AUTH_TOKEN},
        )  # fmt: skip
        seed_subscriber_demo(session, municipality.id)
        session.commit()
        client = SandboxClient(sandbox.url)
        client.register_account("whatsapp", account.config, account.secrets)
        queued: list[list[int]] = []
        monkeypatch.setattr("hub.webhooks.enqueue_inbound", queued.append)
        with TestClient(create_app()) as web:
            yield WhatsAppTown(session, backend_settings, web, municipality, account, clerk, client, queued)
        client.close()


def send(town: WhatsAppTown, message: Message) -> str:
    assert message.id is not None
    town.session.commit()
    outcome = send_message(town.settings, message.id, on_opted_out=stop_everywhere).outcome
    town.session.expire_all()
    return outcome


def test_a_message_opens_a_case_on_the_citizens_number_and_records_the_opt_in(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json")
    town.citizen_writes("message__text.json")  # Twilio retries: stored once

    conversation = town.conversation()
    inbound = [m.body for m in town.session.exec(select(Message).where(Message.direction == "inbound"))]
    assert inbound == ["Guten Tag, wann ist der Wertstoffhof am Samstag geöffnet?"]
    identity = town.session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == conversation.contact_id))
    assert [(i.kind, i.address) for i in identity] == [("phone", CITIZEN)]
    assert town.consent() == [("opted_in", "whatsapp", "whatsapp")]


def test_a_reply_inside_the_window_goes_out_and_its_read_receipt_shows(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json")
    reply = service.reply(
        town.session, municipality_id=town.account.municipality_id, conversation_id=town.conversation().id,  # type: ignore[arg-type]
        author=town.clerk, text="Samstags von 9 bis 13 Uhr.",
    )  # fmt: skip

    assert send(town, reply).startswith("sent as SM")
    [received] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["text"].startswith("Samstags")]
    assert received["to"] == CITIZEN

    sent = town.session.get(Message, reply.id)
    assert sent is not None and sent.provider_id == received["provider_id"]
    for status in ("sent", "delivered", "read"):
        town.citizen_writes(
            f"status__{status}.json", MessageSid=received["provider_id"], SmsSid=received["provider_id"]
        )
    town.session.refresh(sent)
    assert sent.status == "read"


def test_a_reply_after_the_window_is_refused_before_anything_is_sent(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json")
    conversation = town.conversation()
    conversation.last_inbound_at = conversation.last_inbound_at - timedelta(hours=25)  # type: ignore[operator]
    town.session.commit()
    before = len(town.outbound())

    with pytest.raises(Conflict) as refused:
        service.reply(town.session, municipality_id=town.account.municipality_id, conversation_id=conversation.id,  # type: ignore[arg-type]
                      author=town.clerk, text="Späte Antwort")  # fmt: skip

    assert str(refused.value).startswith("Antwort nur mit Vorlage möglich")
    assert refused.value.text("en").startswith("Reply only possible with a template")
    town.session.rollback()
    assert len(town.outbound()) == before
    assert not [item for item in town.sandbox.outbox(kind="whatsapp") if item["text"] == "Späte Antwort"]


def test_the_clerk_sees_the_refusal_on_the_conversation_page_with_the_draft_kept(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json")
    conversation = town.conversation()
    conversation.last_inbound_at = conversation.last_inbound_at - timedelta(days=2)  # type: ignore[operator]
    town.session.commit()
    staff = clerk(town.session, test_db.Town(town.municipality, {"whatsapp": town.account}))

    page = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Der Hof ist samstags offen."})
    english = staff.post(f"/app/inbox/{conversation.id}/reply?lang=en", {"text": "Der Hof ist samstags offen."})

    assert page.status_code == 409 and "Antwort nur mit Vorlage möglich" in page.text
    assert "Der Hof ist samstags offen." in page.text
    assert english.status_code == 409 and "Reply only possible with a template" in english.text


def test_anmelden_and_stop_on_whatsapp_keep_the_consent_record(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json", Body="ANMELDEN", MessageSid="SM" + "1" * 32)
    contact_id = town.session.exec(select(ContactIdentity.contact_id).where(ContactIdentity.address == CITIZEN)).one()
    subscription = town.session.exec(select(Subscription).where(Subscription.contact_id == contact_id)).one()
    assert subscription.state == "active"

    town.citizen_writes("message__stop.json", MessageSid="SM" + "2" * 32)

    town.session.refresh(subscription)
    assert subscription.state == "stopped"
    actions = [action for action, _, _ in town.consent()]
    assert actions[0] == "opted_in" and actions[-1] == "stopped"
    confirmation = town.outbound()[-1]
    assert send(town, confirmation).startswith("sent")
    assert town.sandbox.outbox(kind="whatsapp")[-1]["text"] == confirmation.body


def test_a_new_message_after_stop_is_a_new_opt_in(town: WhatsAppTown) -> None:
    town.citizen_writes("message__stop.json", MessageSid="SM" + "3" * 32)
    town.citizen_writes("message__text.json", MessageSid="SM" + "4" * 32)

    assert [action for action, _, _ in town.consent()] == ["opted_in", "stopped", "opted_in"]


def test_a_reminder_the_hub_starts_goes_out_as_the_towns_template(town: WhatsAppTown) -> None:
    town.citizen_writes("message__text.json")
    template = town.sandbox.whatsapp_template("Erinnerung Ihres Rathauses: {{1}}")
    town.account.config = {**town.account.config, "template_de": template}
    town.session.commit()
    contact_id = town.conversation().contact_id

    reminder = service.queue_outbound(
        town.session,
        starting=(town.account.id, contact_id),
        text="Ihr Termin ist morgen um 10 Uhr.",
        author=None,  # type: ignore[arg-type]
    )

    assert send(town, reminder).startswith("sent")
    [item] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"] == template]
    assert item["text"] == "Erinnerung Ihres Rathauses: Ihr Termin ist morgen um 10 Uhr."


def window_closed_with_templates(town: WhatsAppTown) -> tuple[Conversation, str]:
    """The citizen wrote two days ago; the town has an approved German template for answers after the window."""
    town.citizen_writes("message__text.json")
    template = town.sandbox.whatsapp_template("Antwort Ihres Rathauses: {{1}}")
    town.account.config = {**town.account.config, "template_de": template}
    conversation = town.conversation()
    conversation.last_inbound_at = conversation.last_inbound_at - timedelta(days=2)  # type: ignore[operator]
    town.session.commit()
    return conversation, template


def test_after_the_window_the_composer_offers_the_towns_template_and_it_goes_out_with_the_text(
    town: WhatsAppTown, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("hub.inbox.pages.enqueue_send", queued.append)
    conversation, template = window_closed_with_templates(town)
    staff = clerk(town.session, test_db.Town(town.municipality, {"whatsapp": town.account}))

    page = staff.get(f"/app/inbox/{conversation.id}")
    assert "Mit freigegebener Vorlage antworten" in page.text and template in page.text
    assert 'name="template" value="en"' not in page.text  # no English template registered
    answer = staff.post(
        f"/app/inbox/{conversation.id}/reply", {"text": "Der Hof ist\nsamstags offen.", "template": "de"},
        follow_redirects=False,
    )  # fmt: skip

    assert answer.status_code == 303, answer.text
    [message_id] = queued
    reply = town.session.get(Message, message_id)
    assert reply is not None and reply.template == template
    assert send(town, reply).startswith("sent")
    [item] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"] == template]
    assert item["to"] == CITIZEN and item["text"] == "Antwort Ihres Rathauses: Der Hof ist samstags offen."
    assert "als Vorlage" in staff.get(f"/app/inbox/{conversation.id}").text

    town.citizen_writes("message__text.json", MessageSid="SM" + "5" * 32)  # the window is open again
    assert "Mit freigegebener Vorlage antworten" not in staff.get(f"/app/inbox/{conversation.id}").text


def test_the_api_lists_the_templates_and_refuses_a_language_without_one(
    town: WhatsAppTown, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("hub.inbox.api.enqueue_send", queued.append)
    conversation, template = window_closed_with_templates(town)
    api = api_client(town.session, test_db.Town(town.municipality, {"whatsapp": town.account}))
    base = f"/api/v1/conversations/{conversation.id}"

    assert api.get(f"{base}/templates").json() == [{"language": "de", "template": template}]
    english = api.post(f"{base}/replies", json={"text": "Hello", "template": "en"})
    free = api.post(f"{base}/replies", json={"text": "Hallo"})
    sent = api.post(f"{base}/replies", json={"text": "Hallo", "template": "de"})

    assert english.status_code == 422 and "keine freigegebene Vorlage" in english.text
    assert free.status_code == 409 and "Antwort nur mit Vorlage möglich" in free.text
    assert sent.status_code == 202 and sent.json()["template"] == template
    assert len(queued) == 1


def test_the_demo_has_a_whatsapp_case_past_the_window_that_offers_both_templates(
    session: Session, settings: Settings
) -> None:
    seeded = seed_demo(session, settings)
    [whatsapp] = [account for account in seeded.accounts if account.kind == "whatsapp"]
    [late] = session.exec(select(Conversation).where(Conversation.channel_account_id == whatsapp.id))

    offers = service.reply_templates(session, municipality_id=seeded.municipality_id, conversation_id=late.id)  # type: ignore[arg-type]
    assert [offer.language for offer in offers] == ["de", "en"]


def test_reminders_count_against_the_senders_daily_limit_and_beyond_it_are_refused_with_the_reason(
    town: WhatsAppTown,
) -> None:
    town.citizen_writes("message__text.json")
    template = town.sandbox.whatsapp_template("Erinnerung Ihres Rathauses: {{1}}")
    town.account.config = {**town.account.config, "template_de": template, "daily_recipients": 1}
    town.session.commit()
    writer = town.conversation().contact_id
    other = resolve_contact(town.session, municipality_id=town.municipality.id, kind="phone", address="+4915199999999")  # type: ignore[arg-type]
    assert other.id is not None

    def remind(contact_id: int) -> Message:
        return service.queue_outbound(
            town.session, starting=(town.account.id, contact_id), text="Ihr Termin ist morgen.", author=None,  # type: ignore[arg-type]
        )  # fmt: skip

    first, again, beyond = remind(writer), remind(writer), remind(other.id)

    assert send(town, first).startswith("sent") and send(town, again).startswith("sent")  # one recipient, twice
    assert send(town, beyond).startswith("not claimed")
    town.session.refresh(beyond)
    assert (beyond.status, beyond.error_message) == (
        "failed",
        "WhatsApp: Tageslimit von 1 Empfängern in 24 Stunden erreicht; nicht gesendet",
    )
    assert len([item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"] == template]) == 2
    # A broadcast sees the same budget: the reminder's recipient is counted, no one else fits.
    budget = daily_budgets(town.session, {"whatsapp": town.account})["whatsapp"]
    assert budget.reached == {writer} and not budget.take(other.id)
