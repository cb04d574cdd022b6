"""Keywords and subscription buttons in the inbound pipeline: what the citizen gets back and what is recorded."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from channels.base import InboundMessage
from hub.app import create_app
from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.contacts.merge import merge
from hub.contacts.models import ContactIdentity
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.inbox import service as inbox
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.inbox.outbound import send_message
from hub.settings import Settings
from hub.subscribers import catalogue, consent, listing
from hub.subscribers.commands import Command, parse_command
from hub.subscribers.models import ConsentEvent, Subscription
from tests.unit.conftest import FakeProvider
from tests.unit.db import Town, make_town, receive
from tests.unit.web import clerk
from workers.tasks import stop_everywhere

WORDS = {
    "stop_words": ["STOP", "STOPP", "ABMELDEN"],
    "start_words": ["START", "ANMELDEN"],
    "help_words": ["HILFE", "HELP"],
    "phone_words": ["TELEFON", "PHONE"],
}
PHONE = "+4915112345678"
CHAT = "421337001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", Command("stop")),
        ("  stopp. ", Command("stop")),
        ("Abmelden!", Command("stop")),
        ("/stop", Command("stop")),
        ("hilfe", Command("help")),
        ("ANMELDEN", Command("start")),
        ("anmelden abfall, Baustellen", Command("start", ("abfall", "baustellen"))),
        ("/start", Command("welcome")),
        ("/start@TestdorfBot promo", Command("welcome")),
        ("GET_STARTED", Command("welcome")),
        ("sub:topic:abfall", Command("topic", ("abfall",))),
        ("sub:district:nord", Command("district", ("nord",))),
        ("sub:done", Command("done")),
        ("STOP PLEASE", None),
        ("Bitte stop", None),
        ("Wann ist Stop der Bauarbeiten?", None),
        ("Telefon +49 151 1234567", Command("phone", ("+49 151 1234567",))),
        ("TELEFON", None),
        ("123456", Command("code", ("123456",))),
        ("1234567", None),
        ("1", None),
        ("", None),
    ],
)
def test_keywords_are_whole_messages(text: str, expected: Command | None) -> None:
    assert parse_command(text, **WORDS) == expected


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


def sms(provider_id: str, text: str, sender: str = PHONE) -> InboundMessage:
    return InboundMessage(provider_id=provider_id, sender=sender, text=text)


def press(provider_id: str, payload: str) -> InboundMessage:
    return InboundMessage(provider_id=provider_id, sender=CHAT, text=payload, kind="postback", language="de")


def answers(session: Session, conversation_id: int | None = None) -> list[Message]:
    query = select(Message).where(Message.direction == "outbound").order_by(col(Message.id))
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    return list(session.exec(query).all())


def subscription(session: Session) -> Subscription:
    return session.exec(select(Subscription)).one()


def chosen(session: Session, town: Town) -> tuple[list[str], list[str]]:
    sub = subscription(session)
    topics = {t.id: t.key for t in catalogue.list_topics(session, municipality_id=town.id)}
    districts = {d.id: d.key for d in catalogue.list_districts(session, municipality_id=town.id)}
    return (
        [topics[i] for i in consent.topic_ids_of(session, sub)],
        [districts[i] for i in consent.district_ids_of(session, sub)],
    )


def test_sms_anmelden_with_topics_subscribes_and_confirms_without_opening_a_case(
    session: Session, settings: Settings, town: Town
) -> None:
    [result] = receive(session, settings, town.accounts["twilio"], sms("SM1", "ANMELDEN abfall Nord"))
    assert result.outcome == "command: start"
    assert chosen(session, town) == (["abfall"], ["nord"])
    [answer] = answers(session)
    assert answer.body.startswith("Sie sind angemeldet") and "Abfall" in answer.body and "Nord" in answer.body
    assert "Vorgangsnummer" not in answer.body and answer.automated
    assert result.to_send == [answer.id]
    assert session.exec(select(Conversation)).all() == []
    # The command stays on record, on the contact.
    [command] = session.exec(select(Message).where(Message.direction == "inbound")).all()
    assert command.body == "ANMELDEN abfall Nord" and command.contact_id == subscription(session).contact_id
    [event] = session.exec(select(ConsentEvent)).all()
    assert (event.action, event.source, event.channel_kind) == ("subscribed", "keyword", "twilio")
    assert event.evidence["text"] == "ANMELDEN abfall Nord"


def test_start_alone_means_every_topic_and_unknown_topics_are_explained(
    session: Session, settings: Settings, town: Town
) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "start"))
    assert chosen(session, town) == ([], [])
    assert "allen Themen" in answers(session)[0].body
    [result] = receive(session, settings, town.accounts["twilio"], sms("SM2", "ANMELDEN ABFAL"))
    assert result.outcome == "command: start with unknown topics"
    assert "Unbekannt: abfal" in answers(session)[-1].body and "BAUSTELLEN" in answers(session)[-1].body
    assert chosen(session, town) == ([], [])


def test_a_question_starting_with_a_keyword_goes_to_staff(session: Session, settings: Settings, town: Town) -> None:
    for provider_id, text in (("SM1", "Anmelden Wohnsitz wie geht das"), ("SM2", "STOP PLEASE")):
        [result] = receive(
            session, settings, town.accounts["twilio"], sms(provider_id, text, f"+49151000000{provider_id[-1]}")
        )
        assert result.outcome.startswith("stored, acknowledged")
    assert session.exec(select(Subscription)).all() == []
    assert {c.status for c in session.exec(select(Conversation))} == {"open"}


def test_stop_on_telegram_silences_the_merged_sms_subscription(
    session: Session, settings: Settings, town: Town
) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "START"))
    receive(session, settings, town.accounts["telegram"], InboundMessage(provider_id="1", sender=CHAT, text="Hallo"))
    phone_owner = session.exec(select(ContactIdentity).where(ContactIdentity.kind == "phone")).one().contact_id
    chat_owner = session.exec(select(ContactIdentity).where(ContactIdentity.kind == "telegram")).one().contact_id
    merge(session, municipality_id=town.id, target_id=phone_owner, source_id=chat_owner)
    session.commit()

    [result] = receive(
        session, settings, town.accounts["telegram"], InboundMessage(provider_id="2", sender=CHAT, text="STOP")
    )
    assert result.outcome == "command: stop"
    assert subscription(session).state == "stopped" and consent.is_stopped(session, phone_owner)
    assert answers(session)[-1].body.startswith("Sie sind abgemeldet")
    # The Telegram conversation held a real question, so it stays open for staff.
    telegram_case = session.exec(
        select(Conversation).where(Conversation.channel_account_id == town.accounts["telegram"].id)
    ).one()
    assert telegram_case.status == "open"
    [stop] = [e for e in session.exec(select(ConsentEvent)) if e.action == "stopped"]
    assert (stop.source, stop.channel_kind) == ("telegram", "telegram")

    # A second STOP is answered again but changes nothing.
    [again] = receive(session, settings, town.accounts["twilio"], sms("SM3", "Stopp"))
    assert again.outcome == "command: stop (already stopped)"
    assert len([e for e in session.exec(select(ConsentEvent)) if e.action == "stopped"]) == 1


def test_merging_contacts_moves_their_commands_too(session: Session, settings: Settings, town: Town) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "START"))
    receive(session, settings, town.accounts["telegram"], InboundMessage(provider_id="1", sender=CHAT, text="/start"))
    phone_owner = session.exec(select(ContactIdentity).where(ContactIdentity.kind == "phone")).one().contact_id
    chat_owner = session.exec(select(ContactIdentity).where(ContactIdentity.kind == "telegram")).one().contact_id
    merge(session, municipality_id=town.id, target_id=phone_owner, source_id=chat_owner)
    session.commit()
    handled = listing.handled_without_case(session, municipality_id=town.id, contact_id=phone_owner)
    assert {m.body for m in handled.messages if m.direction == "inbound"} == {"START", "/start"}


def test_telegram_buttons_choose_topics_and_district(session: Session, settings: Settings, town: Town) -> None:
    telegram = town.accounts["telegram"]
    [welcome] = receive(session, settings, telegram, InboundMessage(provider_id="1", sender=CHAT, text="/start"))
    assert welcome.outcome == "command: welcome"
    first = answers(session)[-1]
    assert first.body.startswith("Willkommen")
    assert [c["payload"] for c in first.choices] == [
        "sub:topic:baustellen",
        "sub:topic:abfall",
        "sub:topic:veranstaltungen",
        "sub:topic:warnungen",
        "sub:done",
    ]
    assert first.choices[-1]["label"] == "Fertig"
    # Nothing is subscribed by /start alone.
    assert session.exec(select(Subscription)).all() == []

    receive(session, settings, telegram, press("2", "sub:topic:abfall"))
    receive(session, settings, telegram, press("3", "sub:topic:baustellen"))
    receive(session, settings, telegram, press("4", "sub:topic:abfall"))
    assert chosen(session, town) == (["baustellen"], [])
    selection = answers(session)[-1]
    assert "Ihre Themen: Baustellen" in selection.body
    assert [c["label"] for c in selection.choices][:2] == ["✓ Baustellen", "Abfall"]

    receive(session, settings, telegram, press("5", "sub:done"))
    districts = answers(session)[-1]
    assert [c["payload"] for c in districts.choices] == [
        "sub:district:mitte",
        "sub:district:nord",
        "sub:district:sued",
        "sub:district:ost",
        "sub:district:*",
    ]
    [result] = receive(session, settings, telegram, press("6", "sub:district:sued"))
    assert result.outcome == "command: district sued"
    assert chosen(session, town) == (["baustellen"], ["sued"])
    final = answers(session)[-1]
    assert "Baustellen" in final.body and "Ortsteil Süd" in final.body and final.choices == []
    assert subscription(session).state == "active"
    assert [e.action for e in session.exec(select(ConsentEvent))] == [
        "subscribed",
        "topics_changed",
        "topics_changed",
        "topics_changed",
    ]
    # The whole exchange is commands only: no case, no acknowledgement.
    assert session.exec(select(Conversation)).all() == []
    assert not any("Vorgangsnummer" in m.body for m in answers(session))


def test_messenger_get_started_and_english_labels(session: Session, settings: Settings, town: Town) -> None:
    facebook = town.accounts["facebook"]
    contact = resolve_contact(
        session, municipality_id=town.id, kind="facebook", address="7412589630147852", language="en"
    )
    session.commit()
    assert contact.language == "en"
    started = InboundMessage(provider_id="m1", sender="7412589630147852", text="GET_STARTED", kind="postback")
    [result] = receive(session, settings, facebook, started)
    assert result.outcome == "command: welcome"
    welcome = answers(session)[-1]
    assert welcome.body.startswith("Welcome") and welcome.choices[-1]["label"] == "Done"
    assert welcome.choices[1]["label"] == "Waste collection"


@pytest.mark.parametrize(("language", "whole_town"), [("de", "Ganze Stadt"), ("en", "Whole town")])
def test_the_flows_own_labels_come_from_the_catalogue(
    session: Session, settings: Settings, town: Town, language: str, whole_town: str
) -> None:
    facebook = town.accounts["facebook"]
    resolve_contact(session, municipality_id=town.id, kind="facebook", address="7412589630147853", language=language)
    session.commit()
    done = InboundMessage(provider_id="m1", sender="7412589630147853", text="sub:done", kind="postback")
    [result] = receive(session, settings, facebook, done)
    assert result.outcome == "command: done"
    assert answers(session)[-1].choices[-1] == {"label": whole_town, "payload": "sub:district:*"}


def test_sms_has_no_buttons_so_start_payloads_get_help(session: Session, settings: Settings, town: Town) -> None:
    [result] = receive(session, settings, town.accounts["twilio"], sms("SM1", "hilfe"))
    assert result.outcome == "command: help"
    [answer] = answers(session)
    assert "START meldet Sie an" in answer.body and "STOP meldet Sie ab" in answer.body and answer.choices == []


def test_other_messages_and_survey_answers_pass(session: Session, settings: Settings, town: Town) -> None:
    [result] = receive(session, settings, town.accounts["twilio"], sms("SM1", "1"))
    assert result.outcome.startswith("stored")
    [postback] = receive(session, settings, town.accounts["telegram"], press("1", "survey:5:1"))
    assert not postback.outcome.startswith("command:")


def test_email_keyword_and_robots(session: Session, settings: Settings, town: Town) -> None:
    email = town.accounts["email"]
    mail = InboundMessage(provider_id="a@x", sender="erika@example.org", text="STOP\n", subject="Abmelden")
    [result] = receive(session, settings, email, mail)
    assert result.outcome == "command: stop"
    out_of_office = InboundMessage(provider_id="b@x", sender="robot@example.org", text="STOP", automated=True)
    [robot] = receive(session, settings, email, out_of_office)
    assert not robot.outcome.startswith("command:")
    assert len(session.exec(select(Subscription)).all()) == 1


def test_commands_after_a_real_question_do_not_close_the_case(session: Session, settings: Settings, town: Town) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "Die Laterne ist kaputt"))
    receive(session, settings, town.accounts["twilio"], sms("SM2", "START"))
    assert session.exec(select(Conversation)).one().status == "open"


def test_the_municipalitys_own_keywords_apply(session: Session, settings: Settings, town: Town) -> None:
    town.municipality.preferences = {"stop_keywords": ["TSCHÜSS"]}
    session.add(town.municipality)
    session.commit()
    [plain_stop] = receive(session, settings, town.accounts["twilio"], sms("SM1", "STOP"))
    assert plain_stop.outcome.startswith("stored")
    [own] = receive(session, settings, town.accounts["twilio"], sms("SM2", "tschüss"))
    assert own.outcome == "command: stop"


def status_page(settings: Settings, conversation: Conversation) -> str:
    """The citizen's status page of the case, as their browser gets it."""
    page = TestClient(create_app()).get(f"/anfrage/{conversation.reference}/{conversation.public_token}")
    assert page.status_code == 200
    return page.text


def case_of(session: Session, provider_id: str) -> Conversation:
    message = session.exec(select(Message).where(Message.provider_id == provider_id)).one()
    assert message.conversation_id is not None
    conversation = session.get(Conversation, message.conversation_id, populate_existing=True)
    assert conversation is not None
    return conversation


def case_texts(session: Session, conversation: Conversation) -> list[str]:
    query = select(Message.body).where(Message.conversation_id == conversation.id).order_by(col(Message.id))
    return list(session.exec(query).all())


def test_a_command_leaves_the_open_case_alone_and_stays_on_the_contact(
    session: Session, settings: Settings, town: Town
) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "Die Laterne vor Nr. 12 ist dunkel."))
    case = case_of(session, "SM1")
    before = (case_texts(session, case), case.status, case.last_activity_at, case.last_inbound_at)

    [result] = receive(session, settings, town.accounts["twilio"], sms("SM2", "ANMELDEN ABFALL"))
    assert result.outcome == "command: start" and result.conversation_id is None
    assert chosen(session, town) == (["abfall"], []) and subscription(session).state == "active"
    case = case_of(session, "SM1")
    assert (case_texts(session, case), case.status, case.last_activity_at, case.last_inbound_at) == before
    page = status_page(settings, case)
    assert "Die Laterne" in page and "ANMELDEN" not in page and "Sie sind angemeldet" not in page
    # The command and its answer are the contact's, with the raw event kept.
    [command] = session.exec(select(Message).where(Message.provider_id == "SM2")).all()
    [answer] = [m for m in answers(session) if m.id in result.to_send]
    assert command.conversation_id is None and answer.conversation_id is None
    assert command.contact_id == answer.contact_id == subscription(session).contact_id
    assert answer.body.startswith("Sie sind angemeldet")
    assert session.exec(select(InboundEvent).where(InboundEvent.provider_id == "SM2")).one().raw


def survey_sent_to(session: Session, town: Town, contact_id: int) -> Broadcast:
    """A survey the contact got by SMS a moment ago, so that a reply "1" or "2" answers it."""
    survey = Broadcast(municipality_id=town.id, kind="survey", title="Spielplatz?", options=["Ja", "Nein"],
                       texts={"de": {"body": "Soll ein Spielplatz entstehen?"}}, status="sent")  # fmt: skip
    session.add(survey)
    session.flush()
    session.add(Delivery(municipality_id=town.id, broadcast_id=survey.id, contact_id=contact_id,  # type: ignore[arg-type]
                         channel_account_id=town.accounts["twilio"].id, address=PHONE, state="delivered",  # type: ignore[arg-type]
                         sent_at=utcnow()))  # fmt: skip
    session.commit()
    return survey


def test_a_survey_answer_leaves_the_resolved_case_resolved_and_is_counted(
    session: Session, settings: Settings, town: Town
) -> None:
    sms_account = town.accounts["twilio"]
    receive(session, settings, sms_account, sms("SM1", "Wann ist der Wertstoffhof offen?"))
    case = case_of(session, "SM1")
    inbox.update_conversation(session, municipality_id=town.id, conversation_id=case.id, status="resolved")  # type: ignore[arg-type]
    survey = survey_sent_to(session, town, case.contact_id)
    before = case_texts(session, case)

    [result] = receive(session, settings, sms_account, sms("SM2", "2"))
    assert result.outcome == f"survey: broadcast {survey.id} option 2"
    [vote] = session.exec(select(SurveyAnswer)).all()
    assert (vote.broadcast_id, vote.contact_id, vote.option_index) == (survey.id, case.contact_id, 1)
    case = case_of(session, "SM1")
    assert case.status == "resolved" and case_texts(session, case) == before
    page = status_page(settings, case)
    assert "Erledigt" in page and "Ihre Antwort" not in page and "Nein" not in page
    [thanks] = [m for m in answers(session) if m.id in result.to_send]
    assert thanks.conversation_id is None and thanks.contact_id == case.contact_id


def test_a_command_with_a_question_reaches_staff(session: Session, settings: Settings, town: Town) -> None:
    text = "ANMELDEN ABFALL und wann wird die Biotonne abgeholt"
    [result] = receive(session, settings, town.accounts["twilio"], sms("SM1", text))
    assert result.outcome.startswith("stored, acknowledged")
    case = case_of(session, "SM1")
    assert case.status == "open" and case_texts(session, case)[0] == text


def test_staff_see_commands_and_survey_answers_on_the_subscribers_page(
    session: Session, settings: Settings, town: Town
) -> None:
    receive(session, settings, town.accounts["twilio"], sms("SM1", "ANMELDEN ABFALL"))
    contact_id = subscription(session).contact_id
    survey_sent_to(session, town, contact_id)
    receive(session, settings, town.accounts["twilio"], sms("SM2", "2"))

    page = clerk(session, town, "viewer").get(f"/app/subscribers/{contact_id}")
    assert page.status_code == 200
    commands = page.text[page.text.index("Befehle und automatische Antworten") :]
    assert "ANMELDEN ABFALL" in commands and "Sie sind angemeldet" in commands
    assert "Ihre Antwort &#34;Nein&#34; wurde gezählt" in commands
    answers_table = page.text[page.text.index("Umfrageantworten") : page.text.index("Befehle und automatische")]
    assert "Spielplatz?" in answers_table and "<td>Nein</td>" in answers_table


def test_the_answer_outside_a_case_reaches_the_messenger_user_as_a_response(
    session: Session, settings: Settings, town: Town, fake_provider: FakeProvider
) -> None:
    facebook = town.accounts["facebook"]
    facebook.config = {**facebook.config, "graph_url": fake_provider.url}
    session.add(facebook)
    session.commit()
    # The hub asks the profile for the new contact's name first, then answers.
    fake_provider.respond(200, {"id": "7412589630147852", "first_name": "Anna", "last_name": "Weiss"})
    fake_provider.respond(200, {"recipient_id": "7412589630147852", "message_id": "m_sent_1"})
    started = InboundMessage(provider_id="m1", sender="7412589630147852", text="GET_STARTED", kind="postback")
    [result] = receive(session, settings, facebook, started)

    [answer_id] = result.to_send
    assert send_message(settings, answer_id, on_opted_out=stop_everywhere).outcome == "sent as m_sent_1"
    [profile, request] = fake_provider.requests
    assert profile.method == "GET" and profile.path == "/v19.0/7412589630147852"
    assert request.form["recipient"] == ['{"id": "7412589630147852"}']
    # The citizen wrote a moment ago: an answer, not a message tagged as a person's outside the window.
    assert request.form["messaging_type"] == ["RESPONSE"] and "tag" not in request.form
    assert "Willkommen" in request.form["message"][0]
