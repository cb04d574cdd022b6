"""Citizens without their link: a one-time link by reference on its channel; the start and error pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from channels.base import InboundMessage
from hub import db
from hub.app import create_app
from hub.inbox.models import Conversation, Message, StatusLink
from hub.settings import Settings
from tests.unit.db import Town, make_town, receive
from tests.unit.test_citizen_pages import form

PHONE = "+4915112345678"


def asked_messages(session: Session, conversation: Conversation) -> list[Message]:
    session.expire_all()
    return list(
        session.exec(
            select(Message).where(Message.conversation_id == conversation.id, col(Message.body).contains("einmal"))
        ).all()
    )


def one_request(session: Session, settings: Settings, town: Town) -> Conversation:
    sms = InboundMessage(provider_id="SM-lookup", sender=PHONE, text="Wann kommt die Müllabfuhr?")
    receive(session, settings, town.accounts["twilio"], sms)
    return session.exec(select(Conversation)).one()


def test_a_reference_gets_a_one_time_link_on_its_channel_and_an_unknown_one_the_same_page(
    backend_settings: Settings,
) -> None:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        town = make_town(session)
        conversation = one_request(session, backend_settings, town)
        citizen = TestClient(create_app())
        page = citizen.get("/testdorf/anfrage")
        assert page.status_code == 200 and '<label for="f-reference">Vorgangsnummer</label>' in page.text

        known = form(citizen, "/testdorf/anfrage", {"reference": f" {conversation.reference.lower()} "})
        unknown = form(citizen, "/testdorf/anfrage", {"reference": "A-1999-00001"})
        assert known.status_code == unknown.status_code == 200
        assert "Gibt es eine Anfrage mit dieser Nummer" in known.text
        assert known.text == unknown.text  # the reference alone reveals nothing

        [sent] = asked_messages(session, conversation)
        assert sent.channel_account_id == conversation.channel_account_id and sent.status == "queued"
        assert sent.automated  # not part of what the status page shows
        found = re.search(r"/anfrage-link/(\S+)", sent.body)
        assert found, sent.body
        link = f"/anfrage-link/{found.group(1)}"

        # Opening the link shows a button (a mail scanner's visit uses nothing up), the button the status page.
        assert "Anfrage ansehen" in citizen.get(link).text
        opened = form(citizen, link, {}, follow_redirects=False)
        assert opened.status_code == 303
        assert opened.headers["location"].endswith(f"/anfrage/{conversation.reference}/{conversation.public_token}")
        again = form(citizen, link, {}, follow_redirects=False)
        assert again.status_code == 404 and "schon benutzt" in again.text
        assert "Stand Ihrer Anfrage" not in again.text or conversation.public_token not in again.text


def test_an_expired_link_is_refused(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = one_request(session, settings, town)
    citizen = TestClient(create_app())
    form(citizen, "/testdorf/anfrage", {"reference": conversation.reference})
    [sent] = asked_messages(session, conversation)
    token = re.search(r"/anfrage-link/(\S+)", sent.body).group(1)  # type: ignore[union-attr]
    stored = session.exec(select(StatusLink)).one()
    stored.expires_at = db.utcnow() - timedelta(seconds=1)
    session.add(stored)
    session.commit()
    refused = form(citizen, f"/anfrage-link/{token}", {}, follow_redirects=False)
    assert refused.status_code == 404 and "abgelaufen" in refused.text


@pytest.mark.parametrize("english", [False, True])
def test_asking_is_limited_per_reference_and_an_empty_reference_is_explained(
    session: Session, settings: Settings, english: bool
) -> None:
    town = make_town(session)
    conversation = one_request(session, settings, town)
    citizen = TestClient(create_app(), headers={"Accept-Language": "en" if english else "de"})
    empty = form(citizen, "/testdorf/anfrage", {"reference": "  "})
    assert empty.status_code == 422
    assert ("Please enter the reference number" if english else "Bitte geben Sie die Vorgangsnummer ein") in empty.text
    for _ in range(3):
        assert form(citizen, "/testdorf/anfrage", {"reference": conversation.reference}).status_code == 200
    throttled = form(citizen, "/testdorf/anfrage", {"reference": conversation.reference})
    assert throttled.status_code == 429
    assert ("asked for a link several times" if english else "schon mehrmals nach einem Link gefragt") in throttled.text
    assert len(asked_messages(session, conversation)) == 3


def test_an_error_page_leads_to_the_towns_start_page_and_contact_options(session: Session, settings: Settings) -> None:
    town = make_town(session)
    citizen = TestClient(create_app())
    for missing in ("/abo/testdorf/nichts-hier", "/anfrage/A-1999-00001/falsch"):
        page = citizen.get(missing)
        assert page.status_code == 404
        assert 'href="/testdorf/start"' in page.text and "So erreichen Sie uns" in page.text
    start = citizen.get("/testdorf/start")
    assert start.status_code == 200
    assert 'href="/testdorf/anfrage"' in start.text and 'href="/abo/testdorf"' in start.text
    mailbox = town.accounts["email"].address
    assert f'href="mailto:{mailbox}"' in start.text
    assert "What now?" in citizen.get("/abo/testdorf/nichts-hier", headers={"Accept-Language": "en"}).text


def test_an_error_page_of_an_unknown_place_without_a_town_still_says_how_to_go_on(settings: Settings) -> None:
    page = TestClient(create_app()).get("/nirgends")
    assert page.status_code == 404 and "Öffnen Sie den Link aus unserer Nachricht bitte noch einmal" in page.text
