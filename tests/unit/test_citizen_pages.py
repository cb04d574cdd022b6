"""The citizens' pages in-process: sign-up by SMS code and by email, the status page, unsubscribe and survey links."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from channels.base import InboundMessage
from hub.app import create_app
from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, link
from hub.broadcasts.models import Broadcast, SurveyAnswer
from hub.contacts.service import resolve_contact
from hub.delivery import engine
from hub.inbox import service as inbox
from hub.inbox.models import Conversation, Message
from hub.settings import Settings
from hub.subscribers import consent
from hub.subscribers.models import Subscription
from hub.web.security import CSRF_COOKIE
from tests.unit.db import FakeAdapter, Town, make_town, receive
from tests.unit.web import staff_user

PHONE = "+4915112345678"


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> FakeAdapter:
    """What the sign-up pages sent (codes by SMS, confirmation mails) instead of a provider."""
    adapter = FakeAdapter()
    monkeypatch.setattr(engine, "build_adapter", adapter)
    return adapter


@pytest.fixture
def citizen(settings: Settings) -> TestClient:
    return TestClient(create_app())


def form(client: TestClient, path: str, data: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    """Submits a form as the browser would after showing the page: with the CSRF token."""
    if CSRF_COOKIE not in client.cookies:
        client.get(path)
    return client.post(path, data={"csrf_token": client.cookies[CSRF_COOKIE], **data}, **kwargs)  # type: ignore[arg-type]


def code_from(adapter: FakeAdapter) -> str:
    found = re.search(r"\b(\d{6})\b", adapter.sent[-1].text)
    assert found, adapter.sent[-1].text
    return found.group(1)


def test_phone_sign_up_sends_a_code_and_subscribes_as_chosen(
    session: Session, town: Town, sent: FakeAdapter, citizen: TestClient
) -> None:
    page = citizen.get("/abo/testdorf")
    assert page.status_code == 200
    assert '<label for="f-phone">Ihre Handynummer</label>' in page.text
    assert 'aria-current="step"' in page.text and "Schritt 1 von 3" in page.text
    choices = {"phone": "0151 12345678", "topics": ["abfall", "baustellen"], "district": "nord", "language": "de"}
    started = form(citizen, "/abo/testdorf", choices, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == "/abo/testdorf/code"
    assert sent.sent[-1].to == PHONE
    code_page = citizen.get("/abo/testdorf/code")
    assert f"an {PHONE} geschickt" in code_page.text
    assert PHONE not in started.headers["location"]  # the number stays out of URLs and logs

    wrong = form(citizen, "/abo/testdorf/code", {"code": "000000" if code_from(sent) != "000000" else "111111"})
    assert wrong.status_code == 422
    assert "Der Code stimmt nicht. Sie haben noch 4 Versuch(e)." in wrong.text
    assert 'aria-invalid="true"' in wrong.text

    done = form(citizen, "/abo/testdorf/code", {"code": code_from(sent)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/abo/testdorf/fertig"
    summary = citizen.get("/abo/testdorf/fertig").text
    assert "Sie sind angemeldet" in summary
    assert "Abfall" in summary and "Baustellen" in summary and "Nord" in summary
    subscription = session.exec(select(Subscription)).one()
    assert subscription.state == "active"
    # Done is done: the code step now leads back to the start instead of taking another code.
    assert citizen.get("/abo/testdorf/code", follow_redirects=False).headers["location"] == "/abo/testdorf"


@pytest.mark.parametrize(
    ("phone", "says"),
    [
        ("12", "Das ist keine gültige Telefonnummer."),
        ("+43 664 1234567", "Codes können wir nur an Nummern aus diesen Ländern schicken: DE."),
    ],
)
def test_a_refused_number_comes_back_on_the_form_in_plain_words(
    town: Town, sent: FakeAdapter, citizen: TestClient, phone: str, says: str
) -> None:
    refused = form(citizen, "/abo/testdorf", {"phone": phone, "topics": ["abfall"], "language": "de"})
    assert refused.status_code == 422
    assert says in refused.text
    assert 'id="f-phone-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert f'value="{phone}"' in refused.text and 'value="abfall" checked' in refused.text
    assert not sent.sent


def test_the_english_form_refuses_in_english_and_the_email_form_keeps_the_choices(
    town: Town, sent: FakeAdapter, citizen: TestClient
) -> None:
    refused = form(citizen, "/abo/testdorf?lang=en", {"phone": "12", "language": "en"})
    assert refused.status_code == 422 and "That is not a valid phone number." in refused.text
    assert "<h1>Get messages by text message</h1>" in refused.text
    choices = {"email": "erika.example.org", "topics": ["abfall"], "district": "nord"}
    typo = form(citizen, "/abo/testdorf/email", choices)
    assert typo.status_code == 422 and 'value="erika.example.org"' in typo.text
    assert 'value="abfall" checked' in typo.text and 'value="nord" selected' in typo.text
    assert not sent.sent


def test_limits_hold_on_the_pages_too(town: Town, sent: FakeAdapter, citizen: TestClient) -> None:
    form(citizen, "/abo/testdorf", {"phone": PHONE, "language": "de"})
    again = form(citizen, "/abo/testdorf/code/neu", {})
    assert again.status_code == 429 and "Bitte warten Sie noch" in again.text
    for _ in range(5):
        form(citizen, "/abo/testdorf/code", {"code": "999999" if code_from(sent) != "999999" else "888888"})
    locked = form(citizen, "/abo/testdorf/code", {"code": code_from(sent)})
    assert locked.status_code == 429
    assert "Der Code wurde zu oft falsch eingegeben." in locked.text


def test_the_code_step_without_a_started_sign_up_leads_to_the_start(town: Town, citizen: TestClient) -> None:
    assert citizen.get("/abo/testdorf/code", follow_redirects=False).headers["location"] == "/abo/testdorf"
    citizen.cookies.set("rathaus_abo", "gefaelscht.abc", domain="testserver.local")
    assert form(citizen, "/abo/testdorf/code", {"code": "123456"}, follow_redirects=False).status_code == 303
    assert citizen.get("/abo/nirgendwo").status_code == 404


def test_the_pages_speak_english_when_asked(town: Town, citizen: TestClient) -> None:
    english = citizen.get("/abo/testdorf", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<h1>Get messages by text message</h1>" in english.text
    assert '<html lang="en">' in english.text and "Waste collection" in english.text
    switched = citizen.get("/abo/testdorf?lang=en")
    assert "Your mobile number" in switched.text
    assert 'value="en" checked' in switched.text  # the messages' language follows the page's


def test_email_sign_up_mails_a_link_whose_page_confirms_with_a_button(
    session: Session, town: Town, sent: FakeAdapter, citizen: TestClient
) -> None:
    address = f"erika-{uuid.uuid4().hex[:8]}@example.org"
    typo = form(citizen, "/abo/testdorf/email", {"email": "erika.example.org", "language": "de"})
    assert typo.status_code == 422 and "keine gültige E-Mail-Adresse" in typo.text
    assert 'id="f-email-error"' in typo.text and 'href="#f-email"' in typo.text
    asked = form(citizen, "/abo/testdorf/email", {"email": address, "topics": ["abfall"], "language": "de"},
                 follow_redirects=False)  # fmt: skip
    assert asked.headers["location"] == "/abo/testdorf/email/gesendet"
    assert "Bitte öffnen Sie den Link" in citizen.get(asked.headers["location"]).text
    confirm_url = re.search(r"http\S+/confirm\?token=\S+", sent.sent[-1].text)
    assert confirm_url is not None
    path = confirm_url.group(0).split("://", 1)[1].split("/", 1)[1]
    page = citizen.get(f"/{path}")
    assert page.status_code == 200 and "Anmeldung bestätigen" in page.text and "<style" not in page.text
    # The language switch keeps the token, or the English page could not confirm anything.
    assert re.search(r'href="\?token=[^"]+&amp;lang=en"', page.text)
    assert session.exec(select(Subscription)).first() is None  # opening the link alone confirms nothing
    confirmed = citizen.post(f"/{path}")
    assert confirmed.status_code == 200 and "bestätigt" in confirmed.text
    assert session.exec(select(Subscription)).one().state == "active"
    bad = citizen.get(f"/{path[:-4]}xxxx")
    assert bad.status_code == 422 and 'class="notice error"' in bad.text


def test_the_acknowledgement_links_to_a_status_page_with_only_this_request(
    session: Session, settings: Settings, town: Town, citizen: TestClient
) -> None:
    [result] = receive(session, settings, town.accounts["twilio"],
                       InboundMessage(provider_id="SM1", sender=PHONE, text="Die Laterne ist dunkel."))  # fmt: skip
    receive(session, settings, town.accounts["twilio"],
            InboundMessage(provider_id="SM2", sender="+4915199999999", text="Ganz andere Sache."))  # fmt: skip
    conversation = session.exec(select(Conversation).order_by(Conversation.id)).first()  # type: ignore[arg-type]
    assert conversation is not None
    [ack] = session.exec(select(Message).where(Message.id == result.to_send[0])).all()
    status_link = f"{settings.public_url}/anfrage/{conversation.reference}/{conversation.public_token}"
    assert ack.body.endswith(f"Stand: {status_link}") and ack.segments == 1
    clerk = staff_user(session, town, "staff")
    inbox.add_note(session, municipality_id=town.id, conversation_id=conversation.id, author=clerk,  # type: ignore[arg-type]
                   text="Intern: Bauhof anrufen.")  # fmt: skip
    inbox.reply(session, municipality_id=town.id, conversation_id=conversation.id, author=clerk,  # type: ignore[arg-type]
                text="Der Bauhof repariert sie morgen.")  # fmt: skip
    session.commit()

    page = citizen.get(status_link.removeprefix(settings.public_url))
    assert page.status_code == 200
    assert conversation.reference in page.text and "In Bearbeitung" in page.text
    assert "Die Laterne ist dunkel." in page.text and "Der Bauhof repariert sie morgen." in page.text
    assert "Intern" not in page.text and "Ganz andere Sache" not in page.text
    assert "Danke" not in page.text  # the automatic acknowledgement is not a reply
    assert page.headers["cache-control"] == "no-store"

    inbox.update_conversation(session, municipality_id=town.id, conversation_id=conversation.id,  # type: ignore[arg-type]
                              status="resolved")  # fmt: skip
    session.commit()
    assert "Erledigt" in citizen.get(status_link.removeprefix(settings.public_url)).text


def test_a_wrong_status_link_reveals_nothing(session: Session, settings: Settings, town: Town,
                                             citizen: TestClient) -> None:  # fmt: skip
    receive(session, settings, town.accounts["twilio"], InboundMessage(provider_id="SM1", sender=PHONE, text="Hallo"))
    conversation = session.exec(select(Conversation)).one()
    wrong_token = citizen.get(f"/anfrage/{conversation.reference}/{conversation.public_token[:-1]}x")
    wrong_reference = citizen.get(f"/anfrage/A-1999-00001/{conversation.public_token}")
    assert wrong_token.status_code == wrong_reference.status_code == 404
    assert wrong_token.text == wrong_reference.text
    assert "Hallo" not in wrong_token.text and conversation.reference not in wrong_token.text


def test_a_public_comment_is_acknowledged_without_the_private_link(
    session: Session, settings: Settings, town: Town
) -> None:
    comment = InboundMessage(provider_id="c1", sender="1234", text="Wann ist Markt?", kind="comment",
                             thread_key="post:1", reply_to_ref="c1")  # fmt: skip
    [result] = receive(session, settings, town.accounts["facebook"], comment)
    ack = session.get(Message, result.to_send[0])
    assert ack is not None and "Vorgangsnummer" in ack.body and "/anfrage/" not in ack.body


def survey(session: Session, town: Town) -> Broadcast:
    broadcast = Broadcast(municipality_id=town.id, kind="survey", title="Bücherei am Samstag",
                          texts={"de": {"body": "Soll die Bücherei samstags öffnen?"},
                                 "en": {"body": "Should the library open on Saturdays?"}},
                          options=["Ja", "Nein"])  # fmt: skip
    session.add(broadcast)
    session.commit()
    return broadcast


def test_one_click_unsubscribe_needs_no_csrf_token_the_survey_form_does(
    session: Session, settings: Settings, town: Town, citizen: TestClient
) -> None:
    """RFC 8058: the mail provider POSTs to the List-Unsubscribe link with no cookie and no form token."""
    contact_id = resolve_contact(session, municipality_id=town.id, kind="email", address="a@example.org").id
    assert contact_id is not None
    consent.subscribe(session, municipality_id=town.id, contact_id=contact_id, channel_kind="email", source="form",
                      evidence={}, topic_ids=[], district_ids=[])  # fmt: skip
    broadcast = survey(session, town)
    assert broadcast.id is not None
    target = LinkTarget(municipality_id=town.id, contact_id=contact_id, broadcast_id=broadcast.id)
    unsubscribe_path = link(settings, UNSUBSCRIBE, target).removeprefix(settings.public_url)
    answer_path = link(settings, ANSWER, target).removeprefix(settings.public_url)

    asking = citizen.get(unsubscribe_path)
    assert "Ja, abmelden" in asking.text and "<style" not in asking.text
    mail_provider = TestClient(create_app())
    one_click = mail_provider.post(unsubscribe_path, content=b"List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert one_click.status_code == 200 and "keine Nachrichten mehr" in one_click.text
    subscription = consent.get_subscription(session, municipality_id=town.id, contact_id=contact_id)
    session.refresh(subscription)
    assert subscription is not None and subscription.state == "stopped"

    english = citizen.get(answer_path, headers={"Accept-Language": "en"})
    assert "Should the library open on Saturdays?" in english.text
    assert citizen.post(answer_path, data={"option": "1"}).status_code == 403
    assert session.exec(select(SurveyAnswer)).first() is None
    counted = form(citizen, answer_path, {"option": "1"})
    assert counted.status_code == 200 and "„Nein“ wurde gezählt" in counted.text
    assert session.exec(select(SurveyAnswer.option_index)).one() == 1
    again = citizen.get(answer_path)
    assert "Ihre bisherige Antwort: Nein." in again.text
    forged = citizen.get(answer_path[:-3] + "abc")
    assert forged.status_code == 400 and "Link nicht gültig" in forged.text


@pytest.mark.parametrize("path", ["/abo/testdorf", "/abo/testdorf/email", "/anfrage/A-0-0/x", "/u/kaputt"])
def test_citizen_pages_have_no_inline_style_or_script_and_offer_the_other_language(
    town: Town, citizen: TestClient, path: str
) -> None:
    page = citizen.get(path)
    assert "<style" not in page.text and " style=" not in page.text and "<script>" not in page.text
    assert "/static/citizen.css" in page.text
    assert 'lang="en">English</a>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
