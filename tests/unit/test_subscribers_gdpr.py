"""GDPR: the Art. 15 export holds everything about the citizen; erasure removes it and keeps the counts."""

from __future__ import annotations

import base64
import json

import pytest
from sqlmodel import Session, select

from channels.base import Attachment as InboundAttachment
from channels.base import InboundMessage
from hub.audit.models import AuditEvent
from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.contacts import gdpr
from hub.contacts.models import Contact, ContactIdentity
from hub.db import utcnow
from hub.errors import NotFound
from hub.inbox import service as inbox
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.settings import Settings
from hub.subscribers.models import ConsentEvent, PhoneVerification, Subscription, SubscriptionTopic
from hub.tenancy import service as tenancy
from tests.unit.db import Town, make_town, receive

MAIL = "erika@example.org"
PDF = b"%PDF-1.4 Antrag"


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


@pytest.fixture
def erika(session: Session, settings: Settings, town: Town) -> int:
    """A citizen who subscribed by mail keyword, wrote with an attachment, got a note, a broadcast and a survey."""
    receive(
        session,
        settings,
        town.accounts["email"],
        InboundMessage(
            provider_id="m1@example.org",
            sender=MAIL,
            sender_name="Erika Mustermann",
            subject="Antrag Straßenfest",
            text="Anbei mein Antrag, Lindenstraße 3.",
            attachments=(InboundAttachment(filename="antrag.pdf", content_type="application/pdf", data=PDF),),
        ),
        InboundMessage(provider_id="m2@example.org", sender=MAIL, text="ANMELDEN abfall"),
    )
    contact = session.exec(select(Contact)).one()
    assert contact.id is not None
    conversation = session.exec(select(Conversation)).one()
    staff = tenancy.create_user(session, municipality_id=town.id, email="clerk@testdorf.example", name="Clerk")
    inbox.add_note(
        session,
        municipality_id=town.id,
        conversation_id=conversation.id,
        author=staff,
        text="Frau M. rief an.",  # type: ignore[arg-type]
    )
    survey = Broadcast(municipality_id=town.id, kind="survey", title="Stadtfest-Termin", options=["Mai", "Juni"])
    session.add(survey)
    session.flush()
    assert survey.id is not None
    session.add(
        Delivery(
            municipality_id=town.id,
            broadcast_id=survey.id,
            contact_id=contact.id,
            channel_account_id=town.accounts["email"].id,  # type: ignore[arg-type]
            address=MAIL,
            state="delivered",
        )
    )
    session.add(
        SurveyAnswer(
            municipality_id=town.id, broadcast_id=survey.id, contact_id=contact.id, option_index=1, channel_kind="email"
        )
    )
    session.commit()
    return contact.id


def test_export_holds_everything_about_the_citizen(session: Session, town: Town, erika: int) -> None:
    document = gdpr.export_contact(session, town.id, erika)
    json.dumps(document)  # one JSON document, nothing that does not serialise
    assert document["controller"] == "Gemeinde Testdorf"
    assert document["contact"]["display_name"] == "Erika Mustermann"
    assert [(i["kind"], i["address"]) for i in document["identities"]] == [("email", MAIL)]
    assert document["subscription"]["state"] == "active" and document["subscription"]["topics"] == ["abfall"]
    assert [e["action"] for e in document["consent_events"]] == ["subscribed"]
    [conversation] = document["conversations"]
    assert conversation["subject"] == "Antrag Straßenfest" and "public_token" not in conversation
    bodies = [(m["direction"], m["body"]) for m in conversation["messages"]]
    assert ("inbound", "Anbei mein Antrag, Lindenstraße 3.") in bodies
    assert ("note", "Frau M. rief an.") in bodies  # staff notes are personal data about her too
    assert any(direction == "outbound" and "Vorgangsnummer" in body for direction, body in bodies)
    [attachment] = [a for m in conversation["messages"] for a in m["attachments"]]
    assert base64.b64decode(attachment["data_base64"]) == PDF
    # The subscription command is hers too, though it belongs to no case.
    assert "ANMELDEN abfall" not in [body for _direction, body in bodies]
    outside = [(m["direction"], m["body"]) for m in document["messages_outside_cases"]]
    assert outside[0] == ("inbound", "ANMELDEN abfall") and outside[1][1].startswith("Sie sind angemeldet")
    [delivery] = document["deliveries"]
    assert delivery["broadcast"] == "Stadtfest-Termin" and delivery["address"] == MAIL
    assert document["survey_answers"][0]["option_index"] == 1
    with pytest.raises(NotFound):
        gdpr.export_contact(session, make_town(session, slug="nachbarort").id, erika)


def test_erase_removes_personal_data_keeps_counts_and_can_run_twice(session: Session, town: Town, erika: int) -> None:
    session.add(PhoneVerification(municipality_id=town.id, phone="+4915112345678", code_hash="x", expires_at=utcnow()))
    session.add(ContactIdentity(municipality_id=town.id, contact_id=erika, kind="phone", address="+4915112345678"))
    session.commit()
    messages_before = len(session.exec(select(Message)).all())

    kept = gdpr.erase_contact(session, municipality_id=town.id, contact_id=erika, actor_id=None)
    session.commit()
    assert kept == {"messages": messages_before, "deliveries": 1, "survey_answers": 1}
    contact = session.get(Contact, erika)
    assert contact is not None and contact.display_name is None
    assert session.exec(select(ContactIdentity)).all() == []
    assert session.exec(select(PhoneVerification)).all() == []
    assert {m.body for m in session.exec(select(Message))} == {"[gelöscht]"}
    assert {m.subject for m in session.exec(select(Message)) if m.subject} <= {"[gelöscht]"}
    assert session.exec(select(Conversation)).one().subject == "[gelöscht]"
    attachment = session.exec(select(Attachment)).one()
    assert attachment.data is None and attachment.filename == "[gelöscht]"
    assert all(event.raw == b"" and event.payload == {} for event in session.exec(select(InboundEvent)))
    assert session.exec(select(Delivery)).one().address == "[gelöscht]"
    assert session.exec(select(SurveyAnswer)).one().option_index == 1
    subscription = session.exec(select(Subscription)).one()
    assert subscription.state == "stopped" and session.exec(select(SubscriptionTopic)).all() == []
    actions = [(e.action, e.evidence) for e in session.exec(select(ConsentEvent).order_by(ConsentEvent.id))]  # type: ignore[arg-type]
    assert actions[0] == ("subscribed", {"redacted": True})
    assert actions[-1][0] == "erased"
    export = json.dumps(gdpr.export_contact(session, town.id, erika), ensure_ascii=False)
    for trace in (MAIL, "Erika", "Lindenstraße", "Straßenfest", "Frau M.", "+4915112345678"):
        assert trace not in export

    gdpr.erase_contact(session, municipality_id=town.id, contact_id=erika, actor_id=None)
    session.commit()
    assert [e.action for e in session.exec(select(ConsentEvent))].count("erased") == 1
    audits = session.exec(select(AuditEvent).where(AuditEvent.action == "contact.erased")).all()
    assert [a.details["repeated"] for a in audits] == [False, True]


def test_erasing_a_stopped_contact_still_records_the_erasure(session: Session, settings: Settings, town: Town) -> None:
    receive(
        session,
        settings,
        town.accounts["twilio"],
        InboundMessage(provider_id="SM1", sender="+4915100000001", text="STOP"),
    )
    contact_id = session.exec(select(Contact.id)).one()
    gdpr.erase_contact(session, municipality_id=town.id, contact_id=contact_id, actor_id=None)  # type: ignore[arg-type]
    assert [e.action for e in session.exec(select(ConsentEvent))] == ["stopped", "erased"]
