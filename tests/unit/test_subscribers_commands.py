"""Keywords and subscription buttons in the inbound pipeline: what the citizen gets back and what is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from channels.base import InboundMessage
from hub.contacts.models import ContactIdentity
from hub.contacts.service import merge_contacts, resolve_contact
from hub.inbox.models import Conversation, Message
from hub.settings import Settings
from hub.subscribers import service
from hub.subscribers.commands import Command, parse_command
from hub.subscribers.models import ConsentEvent, Subscription
from tests.unit.db import Town, make_town, receive

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
    topics = {t.id: t.key for t in service.list_topics(session, municipality_id=town.id)}
    districts = {d.id: d.key for d in service.list_districts(session, municipality_id=town.id)}
    return (
        [topics[i] for i in service.topic_ids_of(session, sub)],
        [districts[i] for i in service.district_ids_of(session, sub)],
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
    conversation = session.exec(select(Conversation)).one()
    assert conversation.status == "resolved"
    # The command stays visible in the history.
    assert [m.body for m in session.exec(select(Message).where(Message.direction == "inbound"))] == [
        "ANMELDEN abfall Nord"
    ]
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
    merge_contacts(session, municipality_id=town.id, target_id=phone_owner, source_id=chat_owner)
    session.commit()

    [result] = receive(
        session, settings, town.accounts["telegram"], InboundMessage(provider_id="2", sender=CHAT, text="STOP")
    )
    assert result.outcome == "command: stop"
    assert subscription(session).state == "stopped" and service.is_stopped(session, phone_owner)
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
    # The whole exchange is commands only: one conversation, resolved, no acknowledgement.
    conversation = session.exec(select(Conversation)).one()
    assert conversation.status == "resolved"
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
