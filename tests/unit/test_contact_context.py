"""A contact's name from each channel through the real adapters and the pipeline, a clerk's name kept, and the
contact's context (earlier conversations, subscription and consent, bookings) beside a conversation and in the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from itertools import count

import pytest
import telegram
from sqlmodel import Session, select

from channels.base import InboundMessage, WebhookRequest
from channels.registry import build_adapter
from channels.sandbox.server import SandboxServer
from hub import db
from hub.audit.models import AuditEvent
from hub.consultations import service as consultations
from hub.contacts.gdpr import export_contact
from hub.contacts.models import Contact
from hub.inbox import service
from hub.inbox.demo import DEMO_NAMED_CALLER, seed_known_caller
from hub.inbox.models import Conversation, Message
from hub.settings import Settings
from hub.subscribers import catalogue, consent
from tests.unit.db import Town, make_town, receive
from tests.unit.web import api_client, clerk, staff_user

PAGE_ID = "104857600000001"
_ids = count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@dataclass
class Inbox:
    session: Session
    settings: Settings
    town: Town

    def arrives(self, kind: str, body: bytes, *, mail_from: str | None = None) -> Conversation:
        """A wire payload as the webhook hands it on: parsed by the real adapter, stored, run through the pipeline."""
        account = self.town.accounts[kind]
        request = WebhookRequest(url=f"http://hub/webhooks/{kind}/{account.id}", headers={}, body=body,
                                 mail_from=mail_from)  # fmt: skip
        events = build_adapter(kind, account.config, account.secrets).parse(request)
        [result] = receive(self.session, self.settings, account, *events, request=request)
        assert result.outcome.startswith("stored"), result.outcome
        self.session.expire_all()
        conversation = self.session.get(Conversation, result.conversation_id)
        assert conversation is not None
        return conversation

    def contact(self, conversation: Conversation) -> Contact:
        found = self.session.get(Contact, conversation.contact_id)
        assert found is not None
        return found

    def answers(self, conversation: Conversation) -> list[str]:
        rows = self.session.exec(
            select(Message.body).where(Message.conversation_id == conversation.id, Message.direction == "outbound")
        )
        return list(rows)


@pytest.fixture
def inbox(backend_settings: Settings) -> Iterator[Inbox]:
    """On SQLite and on PostgreSQL, for what the pipeline stores."""
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield Inbox(session, backend_settings, make_town(session))


@pytest.fixture
def pages(settings: Settings) -> Iterator[Inbox]:
    """On SQLite only, for what the pages and the API show, like the inbox's page tests."""
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield Inbox(session, settings, make_town(session))


def telegram_message(chat_id: int, text: str, first_name: str, last_name: str | None = None) -> bytes:
    """A private chat's update, built with python-telegram-bot's own classes."""
    user = telegram.User(id=chat_id, first_name=first_name, last_name=last_name, is_bot=False, language_code="de")
    message = telegram.Message(
        message_id=next(_ids), date=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        chat=telegram.Chat(id=chat_id, type="private"), from_user=user, text=text,
    )  # fmt: skip
    return json.dumps(telegram.Update(update_id=next(_ids), message=message).to_dict()).encode()


def mail(sender: str, display_name: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = Address(display_name=display_name, addr_spec=sender)
    message["To"], message["Subject"] = "rathaus@testdorf.example", "Frage"
    message["Message-ID"] = f"<{next(_ids)}@buerger.example>"
    message.set_content(text)
    return message.as_bytes()


def messenger(psid: str, text: str) -> bytes:
    item = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": 1765098000000,
            "message": {"mid": f"m_{next(_ids)}", "text": text}}  # fmt: skip
    return json.dumps(
        {"object": "page", "entry": [{"id": PAGE_ID, "time": 1765098000000, "messaging": [item]}]}
    ).encode()


def page_on_sandbox(inbox: Inbox, sandbox: SandboxServer) -> None:
    """Points the town's Page at the sandbox's Graph API."""
    account = inbox.town.accounts["facebook"]
    account.config = {**account.config, "graph_url": sandbox.url}
    inbox.session.add(account)
    inbox.session.commit()
    sandbox.state.register_account("facebook", None, {**account.config, "verify_token": "v"}, dict(account.secrets))


# --- names from the channels -------------------------------------------------------------------


def test_a_telegram_citizen_is_named_by_first_and_last_name_and_the_dsgvo_export_says_so(inbox: Inbox) -> None:
    conversation = inbox.arrives("telegram", telegram_message(5012345678, "Hallo", "Jürgen", "Müller"))

    contact = inbox.contact(conversation)
    assert (contact.display_name, contact.name_origin) == ("Jürgen Müller", "channel")
    document = export_contact(inbox.session, inbox.town.id, conversation.contact_id)
    assert (document["contact"]["display_name"], document["contact"]["name_origin"]) == ("Jürgen Müller", "channel")


def test_a_mail_sender_is_named_by_the_display_name_of_from(inbox: Inbox) -> None:
    conversation = inbox.arrives(
        "email", mail("erika@buerger.example", "Erika Schäfer", "Guten Tag"), mail_from="erika@buerger.example"
    )

    contact = inbox.contact(conversation)
    assert (contact.display_name, contact.name_origin) == ("Erika Schäfer", "channel")
    # A display name that only repeats the address names nobody.
    bare = inbox.arrives("email", mail("max@buerger.example", "max@buerger.example", "Hallo"), mail_from="max@x")
    assert inbox.contact(bare).display_name is None


def test_a_messenger_citizen_is_named_by_the_user_profile_api_of_the_emulated_graph(
    inbox: Inbox, sandbox: SandboxServer
) -> None:
    page_on_sandbox(inbox, sandbox)
    sandbox.state.note_inbound(PAGE_ID, "7012345678901234", 1765098000.0)
    sandbox.state.set_profile(PAGE_ID, "7012345678901234", "Lena", "Groß")

    conversation = inbox.arrives("facebook", messenger("7012345678901234", "Wann hat das Bürgerbüro offen?"))

    contact = inbox.contact(conversation)
    assert (contact.display_name, contact.name_origin) == ("Lena Groß", "channel")


def test_a_messenger_profile_the_graph_refuses_leaves_the_name_empty_and_the_message_in_its_case(
    inbox: Inbox, sandbox: SandboxServer
) -> None:
    page_on_sandbox(inbox, sandbox)
    # The sandbox never heard of this PSID, so the Graph API refuses its profile (code 100).
    conversation = inbox.arrives("facebook", messenger("7099999999999999", "Hallo"))

    contact = inbox.contact(conversation)
    assert (contact.display_name, contact.name_origin) == (None, None)
    assert len(inbox.answers(conversation)) == 1


def test_a_changed_telegram_name_follows_but_a_name_a_clerk_set_stays(inbox: Inbox) -> None:
    first = inbox.arrives("telegram", telegram_message(5012345679, "Hallo", "Anna"))
    inbox.arrives("telegram", telegram_message(5012345679, "Noch was", "Anna", "Berg"))
    assert inbox.contact(first).display_name == "Anna Berg"

    staff = clerk(inbox.session, inbox.town)
    named = staff.post(f"/app/inbox/{first.id}/contact-name", {"name": "Anna Berg-Schmidt"}, follow_redirects=False)
    assert named.status_code == 303
    assert "Der Name ist gespeichert." in staff.get(named.headers["location"]).text
    refused = staff.post(f"/app/inbox/{first.id}/contact-name", {"name": "y" * 201})
    assert refused.status_code == 422 and "höchstens 200 Zeichen" in refused.text
    inbox.arrives("telegram", telegram_message(5012345679, "Und noch was", "Anni"))

    contact = inbox.contact(first)
    assert (contact.display_name, contact.name_origin) == ("Anna Berg-Schmidt", "staff")
    [renamed] = inbox.session.exec(select(AuditEvent).where(AuditEvent.action == "contact.renamed")).all()
    assert (renamed.actor_id, renamed.object_id) == (staff.user.id, contact.id)


def test_by_api_a_name_that_does_not_fit_is_refused_and_an_empty_one_lets_the_channel_name_again(
    pages: Inbox,
) -> None:
    conversation = pages.arrives("telegram", telegram_message(5012345680, "Hallo", "Paul"))
    api = api_client(pages.session, pages.town)
    named = f"/api/v1/contacts/{conversation.contact_id}"

    long = api.patch(named, json={"display_name": "x" * 201})
    two_lines = api.patch(named, json={"display_name": "Paul\nSchmitt"})
    assert long.status_code == 422 and "höchstens 200 Zeichen" in long.text
    assert two_lines.status_code == 422 and "in eine Zeile" in two_lines.text
    pages.session.expire_all()
    assert pages.contact(conversation).display_name == "Paul"

    cleared = api.patch(named, json={"display_name": ""})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["display_name"], cleared.json()["name_origin"]) == (None, None)
    pages.arrives("telegram", telegram_message(5012345680, "Hallo?", "Paula"))
    assert pages.contact(conversation).display_name == "Paula"


# --- the context beside a conversation ---------------------------------------------------------


def test_the_side_panel_and_the_api_show_earlier_conversations_subscription_and_bookings(pages: Inbox) -> None:
    session, town = pages.session, pages.town
    current = pages.arrives("telegram", telegram_message(5012345683, "Laterne aus", "Tom"))
    # An earlier case of the same citizen, by mail, since closed.
    earlier = service.open_conversation(
        session, account=town.accounts["email"], contact_id=current.contact_id, subject="Sperrmüll"
    )
    service.update_conversation(session, municipality_id=town.id, conversation_id=earlier.id or 0, status="resolved")
    session.commit()
    topic = catalogue.list_topics(session, municipality_id=town.id)[0]
    consent.subscribe(
        session, municipality_id=town.id, contact_id=current.contact_id, channel_kind="telegram", source="telegram",
        topic_ids=[topic.id or 0], evidence={"message": 1},
    )  # fmt: skip
    staff = clerk(session, town)
    series = consultations.define_series(session, municipality=town.municipality, draft=consultations.SeriesDraft(
        title="Bürgersprechstunde Kontext", rrule="FREQ=DAILY", first_day=date.today(), start_time="10:00",
        end_time="12:00", host_user_id=staff.user.id, closes_hours_before=0,
    ))  # fmt: skip
    session.commit()
    consultations.ensure_sessions(session, series=series, municipality=town.municipality)
    slot = consultations.free_slots(session, series=series)[0]
    booking = consultations.book(
        session, municipality=town.municipality, slot_id=slot.slot_id, contact_id=current.contact_id, name="Tom"
    )
    session.commit()

    panel = staff.get(f"/app/inbox/{current.id}").text
    other = panel.split("Frühere Vorgänge", 1)[1].split("Abonnement", 1)[0]
    assert f'<a href="/app/inbox/{earlier.id}">{earlier.reference}</a> · Erledigt · E-Mail' in other
    assert "Sperrmüll" in other
    assert current.reference not in other
    assert "Tom" in panel and "(wie im Kanal angezeigt)" in panel
    subscription = panel.split("<h3>Abonnement</h3>", 1)[1]
    assert "seit" in subscription and topic.name_de in subscription and "Über: Telegram" in subscription
    assert "Bürgersprechstunde Kontext" in panel and booking.reference in panel

    context = api_client(session, town).get(f"/api/v1/contacts/{current.contact_id}/context")
    assert context.status_code == 200, context.text
    found = context.json()
    assert (found["contact"]["display_name"], found["contact"]["name_origin"]) == ("Tom", "channel")
    assert [(c["reference"], c["status"], c["channel_kind"]) for c in found["conversations"]] == [
        (earlier.reference, "resolved", "email"), (current.reference, "open", "telegram"),
    ]  # fmt: skip
    assert found["subscription"]["topics"] == [topic.key] and found["subscription"]["channels"] == ["telegram"]
    assert [c["action"] for c in found["consent"]] == ["subscribed"]
    assert "evidence" not in found["consent"][0]
    assert [(b["reference"], b["series_title"]) for b in found["bookings"]] == [
        (booking.reference, "Bürgersprechstunde Kontext")
    ]


def test_a_contact_without_history_says_so_and_another_towns_contact_is_not_found(pages: Inbox) -> None:
    conversation = pages.arrives("telegram", telegram_message(5012345684, "Hallo", "Eva"))
    staff = clerk(pages.session, pages.town)

    panel = staff.get(f"/app/inbox/{conversation.id}").text
    assert "Keine anderen Vorgänge." in panel and "Kein Abonnement." in panel

    other_town = make_town(pages.session, slug="nachbarort")
    foreign = api_client(pages.session, other_town).get(f"/api/v1/contacts/{conversation.contact_id}/context")
    assert foreign.status_code == 404 and "Eva" not in foreign.text


def test_the_demos_sms_caller_keeps_the_name_a_clerk_gave_and_sees_the_earlier_case_beside_the_new_one(
    pages: Inbox,
) -> None:
    seed_known_caller(pages.session, pages.town.id, clerk_id=staff_user(pages.session, pages.town, "staff").id)
    pages.session.commit()
    [result] = receive(pages.session, pages.settings, pages.town.accounts["twilio"], InboundMessage(
        provider_id="SM-demo", sender=DEMO_NAMED_CALLER, text="Die Laterne ist dunkel.",
    ))  # fmt: skip

    case = pages.session.get_one(Conversation, result.conversation_id)
    found = api_client(pages.session, pages.town).get(f"/api/v1/contacts/{case.contact_id}/context").json()
    assert (found["contact"]["display_name"], found["contact"]["name_origin"]) == ("Karl Becker", "staff")
    assert [(c["status"], c["subject"]) for c in found["conversations"]] == [
        ("open", None), ("resolved", "Sperrmüll Lindenweg"),
    ]  # fmt: skip
