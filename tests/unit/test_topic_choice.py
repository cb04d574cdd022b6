"""The "Themen ändern" link of subscriber messages: change topics and district, leave per topic or altogether."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.app import create_app
from hub.broadcasts.models import Broadcast
from hub.broadcasts.rendering import MailLinks, render
from hub.contacts.service import resolve_contact
from hub.i18n import gettext_for
from hub.settings import Settings
from hub.subscribers import catalogue, consent, listing
from hub.subscribers.models import ConsentEvent
from hub.subscribers.topic_choice import HOW_TO_LEAVE, topics_url
from tests.unit.db import Town, make_town
from tests.unit.test_citizen_pages import form


def subscriber(session: Session, town: Town) -> int:
    contact = resolve_contact(session, municipality_id=town.id, kind="email", address="leser@example.org")
    assert contact.id is not None
    abfall = catalogue.find_topic(session, municipality_id=town.id, word="abfall")
    assert abfall is not None
    consent.subscribe(session, municipality_id=town.id, contact_id=contact.id, channel_kind="email", source="form",
                      evidence={}, topic_ids=[abfall.id], district_ids=[])  # fmt: skip
    session.commit()
    return contact.id


def chosen(session: Session, town: Town, contact_id: int) -> tuple[list[str], list[str], str]:
    session.expire_all()
    found = listing.get_subscriber(session, municipality_id=town.id, contact_id=contact_id)
    return [t.key for t in found.topics], [d.key for d in found.districts], found.subscription.state


def test_a_subscriber_changes_topics_and_district_from_the_link_then_leaves(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    contact_id = subscriber(session, town)
    path = topics_url(settings, municipality_id=town.id, contact_id=contact_id).removeprefix(settings.public_url)
    citizen = TestClient(create_app())
    page = citizen.get(path)
    assert page.status_code == 200
    assert 'value="abfall" checked' in page.text and 'value="baustellen">' in page.text
    assert gettext_for("de").gettext(HOW_TO_LEAVE) in page.text

    saved = form(citizen, path, {"topics": ["baustellen"], "districts": ["nord"]})
    assert saved.status_code == 200 and "Gespeichert" in saved.text
    assert chosen(session, town, contact_id) == (["baustellen"], ["nord"], "active")  # one topic off, not all
    [event] = session.exec(select(ConsentEvent).where(ConsentEvent.source == "topics_link")).all()
    assert event.action == "topics_changed"

    wrong = form(citizen, path, {"topics": ["gibtsnicht"]})
    assert wrong.status_code == 422 and "Unbekannte Themen: gibtsnicht" in wrong.text
    assert chosen(session, town, contact_id) == (["baustellen"], ["nord"], "active")  # nothing half-stored

    left = form(citizen, f"{path}/abmelden", {})
    assert left.status_code == 200 and "keine Nachrichten mehr" in left.text
    assert chosen(session, town, contact_id)[2] == "stopped"
    # Changing topics after leaving keeps the citizen stopped: only START subscribes again.
    form(citizen, path, {"topics": ["abfall"]})
    assert chosen(session, town, contact_id) == (["abfall"], [], "stopped")

    forged = citizen.get(path[:-3] + "abc")
    assert forged.status_code == 422 and "Link nicht gültig" in forged.text
    assert "Change topics" in citizen.get(path, headers={"Accept-Language": "en"}).text


def test_mails_and_chats_carry_the_link_and_the_one_text_on_leaving_that_the_pages_show(session: Session) -> None:
    town = make_town(session)
    texts = {"de": {"body": "Die Brücke ist zu."}, "en": {"body": "The bridge is closed."}}
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Sperrung", texts=texts)
    links = MailLinks(municipality="Gemeinde Testdorf", unsubscribe_url="https://hub.example/u/x",
                      topics_url="https://hub.example/themen/t")  # fmt: skip
    for language in ("de", "en"):
        leave = gettext_for(language).gettext(HOW_TO_LEAVE)
        mail = render(broadcast, kind="email", language=language, recipient={}, links=links)
        chat = render(broadcast, kind="telegram", language=language, recipient={}, links=links)
        assert leave in mail.text and leave in (mail.html or "") and leave in chat.text
        assert "https://hub.example/themen/t" in mail.text and "https://hub.example/themen/t" in chat.text
        assert ("/stop" in leave) and ("STOP" in leave)
    sign_up = TestClient(create_app()).get("/abo/testdorf")
    assert gettext_for("de").gettext(HOW_TO_LEAVE) in sign_up.text
