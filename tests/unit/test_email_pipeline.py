"""Bounces and other machine mail through the real email adapter and the inbound pipeline, on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from channels.base import InboundMessage, WebhookRequest
from channels.registry import build_adapter
from hub.broadcasts.models import Broadcast, Delivery
from hub.contacts.models import ContactIdentity
from hub.inbox import service
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount
from tests.unit.db import Town, make_town, receive
from tests.unit.web import staff_user

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


def arrives(session: Session, settings: Settings, account: ChannelAccount, fixture: str) -> list[str]:
    """A fixture mail as the SMTP listener hands it on: parsed by the adapter, stored, run through the pipeline."""
    raw = (FIXTURES / fixture).read_bytes()
    request = WebhookRequest(url=f"mailto:{account.address}", headers={}, body=raw, mail_from="", rcpt_tos=())
    events = build_adapter("email", account.config, account.secrets).parse(request)
    return [result.outcome for result in receive(session, settings, account, *events, request=request)]


def answered_case(session: Session, settings: Settings, town: Town, citizen: str, our_message_id: str) -> Message:
    """A citizen's mail and a clerk's answer to it, sent with the Message-ID that a fixture's mail names."""
    account = town.accounts["email"]
    asked = InboundMessage(provider_id=f"frage@{citizen}", sender=citizen, text="Geht das?", subject="Sondernutzung")
    receive(session, settings, account, asked)
    conversation = session.exec(select(Conversation)).one()
    answer = service.reply(
        session,
        municipality_id=town.id,
        conversation_id=conversation.id,  # type: ignore[arg-type]
        author=staff_user(session, town, "staff"),
        text="Ja, das geht.",
    )
    # As the send worker records the receipt: the adapter returns the mail's own Message-ID.
    answer.email_message_id = answer.provider_id = our_message_id
    answer.status = "sent"
    session.commit()
    return answer


def acknowledgements(session: Session) -> int:
    return len(session.exec(select(Message).where(Message.direction == "outbound", col(Message.automated))).all())


@pytest.mark.parametrize(
    ("fixture", "our_message_id", "code"),
    [
        ("bounce__dsn.eml", "171870240511.2002.7777@musterstadt.example", "5.1.1"),
        ("bounce__exchange_ndr_with_original.eml", "171879134102.3003.8888@musterstadt.example", "5.1.10"),
    ],
    ids=["postfix", "exchange"],
)
def test_a_bounce_marks_the_answer_failed_and_opens_no_case(
    session: Session, settings: Settings, town: Town, fixture: str, our_message_id: str, code: str
) -> None:
    answer = answered_case(session, settings, town, "s.keller@example.net", our_message_id)
    before = acknowledgements(session)

    [outcome] = arrives(session, settings, town.accounts["email"], fixture)

    session.refresh(answer)
    assert (answer.status, answer.error_code) == ("failed", code)
    assert answer.error_message is not None and answer.error_message.startswith("Unzustellbar an ")
    assert outcome == f"message {answer.id} is now failed"
    assert len(session.exec(select(Conversation)).all()) == 1
    assert acknowledgements(session) == before
    # The mailer daemon is nobody the town corresponds with.
    addresses = session.exec(select(ContactIdentity.address)).all()
    assert addresses == ["s.keller@example.net"]


def test_a_bounce_of_a_broadcast_marks_its_delivery_failed(session: Session, settings: Settings, town: Town) -> None:
    account = town.accounts["email"]
    answer = answered_case(session, settings, town, "weg.verzogen@gmail.com", "other@musterstadt.example")
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Sperrung", status="sending")
    session.add(broadcast)
    session.flush()
    delivery = Delivery(
        municipality_id=town.id,
        broadcast_id=broadcast.id,  # type: ignore[arg-type]
        contact_id=session.exec(select(Conversation.contact_id)).one(),
        channel_account_id=account.id,  # type: ignore[arg-type]
        address="weg.verzogen@gmail.com",
        state="sent",
        provider_id="171887124511.4004.9999@musterstadt.example",
    )
    session.add(delivery)
    session.commit()

    [outcome] = arrives(session, settings, account, "bounce__gmail_x_original_message_id.eml")

    session.refresh(delivery)
    session.refresh(answer)
    assert (delivery.state, delivery.error_code) == ("failed", "5.1.1")
    assert outcome == f"delivery {delivery.id} is now failed"
    assert answer.status == "sent"
    assert len(session.exec(select(Conversation)).all()) == 1


def test_a_delay_warning_leaves_the_answer_sent_and_opens_no_case(
    session: Session, settings: Settings, town: Town
) -> None:
    answer = answered_case(
        session, settings, town, "p.brandt@example.org", "171895560011.5005.1111@musterstadt.example"
    )

    assert arrives(session, settings, town.accounts["email"], "bounce__delayed_warning.eml") == []

    session.refresh(answer)
    assert answer.status == "sent"
    [warning] = session.exec(select(InboundEvent).where(InboundEvent.event_type == "ignored")).all()
    assert warning.state == "ignored" and warning.outcome is not None and "4.4.1" in warning.outcome
    assert len(session.exec(select(Conversation)).all()) == 1


def test_an_auto_reply_joins_the_case_it_answers_without_reopening_or_answering_it(
    session: Session, settings: Settings, town: Town
) -> None:
    answer = answered_case(
        session, settings, town, "m.schmidt@example.net", "171860940077.1001.5555@musterstadt.example"
    )
    conversation = session.get(Conversation, answer.conversation_id)
    assert conversation is not None
    service.update_conversation(session, municipality_id=town.id, conversation_id=conversation.id, status="resolved")  # type: ignore[arg-type]
    session.commit()
    waiting_since = conversation.last_inbound_at
    before = acknowledgements(session)

    [outcome] = arrives(session, settings, town.accounts["email"], "auto_reply__out_of_office.eml")

    session.refresh(conversation)
    assert outcome == f"stored in {conversation.reference}, automated mail: not acknowledged"
    out_of_office = session.exec(select(Message).order_by(col(Message.id).desc())).first()
    assert out_of_office is not None
    assert (out_of_office.conversation_id, out_of_office.automated) == (conversation.id, True)
    assert out_of_office.body.startswith("Vielen Dank für Ihre Nachricht.")
    assert conversation.status == "resolved"
    assert conversation.last_inbound_at == waiting_since
    assert acknowledgements(session) == before


@pytest.mark.parametrize(
    "fixture", ["auto_reply__out_of_office.eml", "html_only__newsletter_style.eml"], ids=["auto-reply", "newsletter"]
)
def test_machine_mail_that_answers_no_case_opens_none(
    session: Session, settings: Settings, town: Town, fixture: str
) -> None:
    [outcome] = arrives(session, settings, town.accounts["email"], fixture)

    assert outcome == "ignored: automated mail that answers none of our conversations"
    [event] = session.exec(select(InboundEvent)).all()
    assert event.state == "ignored" and event.raw == (FIXTURES / fixture).read_bytes()
    assert session.exec(select(Conversation)).all() == []
    assert session.exec(select(ContactIdentity)).all() == []
    assert session.exec(select(Message)).all() == []
