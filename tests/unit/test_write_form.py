"""Writing to the town on its web form, on both backends: a case with a reference and status link, photos without
EXIF, refusals that store nothing, the way back proven by a code or a mailed link, the case in the inbox."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, col, func, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db, ratelimit
from hub import settings as settings_module
from hub.app import create_app
from hub.contacts.models import Contact, ContactIdentity
from hub.inbox.models import Attachment, Conversation, Message
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.signin import set_password
from hub.web.security import CSRF_COOKIE
from tests.unit.test_problems import MITTE, jpeg_with_gps
from tests.unit.web import PASSWORD, sign_in

PHONE = "+4915112345678"
CONCERN = "Wann ist die Bücherei im Sommer geöffnet?"


@dataclass
class Town:
    session: Session
    municipality: Municipality
    sandbox: SandboxClient
    clerk: StaffUser

    def count(self, table: Any) -> int:
        self.session.expire_all()
        return int(self.session.exec(select(func.count()).select_from(table)).one())

    def cases(self) -> list[Conversation]:
        self.session.expire_all()
        return list(self.session.exec(select(Conversation).order_by(col(Conversation.id))))


@pytest.fixture
def town(backend_settings: Settings) -> Iterator[Town]:
    ratelimit._limiter.cache_clear()
    with SandboxServer() as sandbox, Session(db.get_engine(), expire_on_commit=False) as session:
        municipality = tenancy.create_municipality(session, slug="schreibdorf", name="Gemeinde Schreibdorf")
        assert municipality.id is not None
        sms = tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="twilio", name="SMS",
            config={"account_sid": "AC" + "5" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
            secrets_={"auth_token": "t"},
        )  # fmt: skip
        tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="email", name="Mail",
            config={"address": "rathaus@schreibdorf.example", "smtp_host": "127.0.0.1", "smtp_port": sandbox.smtp_port},
        )  # fmt: skip
        clerk = tenancy.create_user(session, municipality_id=municipality.id, email="a@x.de", name="A", role="staff")
        session.commit()
        client = SandboxClient(sandbox.url)
        client.register_account(kind=sms.kind, config=sms.config, secrets=sms.secrets, webhook_url=None)
        yield Town(session=session, municipality=municipality, sandbox=client, clerk=clerk)
    settings_module.get_settings.cache_clear()


@pytest.fixture
def citizen(town: Town) -> TestClient:
    return TestClient(create_app())


def post(client: TestClient, path: str, data: dict[str, str], files: list[Any] | None = None) -> Any:
    """Submits a form as the page would, CSRF field included, without following the redirect."""
    if CSRF_COOKIE not in client.cookies:
        client.get("/schreibdorf/schreiben")
    fields = {"csrf_token": client.cookies[CSRF_COOKIE], **data}
    return client.post(path, data=fields, files=files, follow_redirects=False)


def write(client: TestClient, files: list[Any] | None = None, **fields: str) -> Any:
    data = {"name": "Erika Muster", "concern": CONCERN, "way": "none", **fields}
    return post(client, "/schreibdorf/schreiben", data, files)


def local_path(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def test_the_start_page_and_the_ways_to_reach_the_town_lead_to_the_form(citizen: TestClient) -> None:
    start = citizen.get("/schreibdorf/start")
    assert start.text.count('href="/schreibdorf/schreiben"') == 2, "in the list of services and of ways to reach us"
    page = citizen.get("/schreibdorf/schreiben")
    assert page.status_code == 200 and 'name="concern"' in page.text and 'name="photos"' in page.text
    assert "kann Sie keine Antwort erreichen" in page.text and 'name="viewport"' in page.text


def test_a_letter_without_a_way_back_is_a_web_case_with_reference_status_link_and_photo_without_exif(
    town: Town, citizen: TestClient
) -> None:
    photo = ("photos", ("IMG_0001.jpg", jpeg_with_gps(*MITTE), "image/jpeg"))
    filed = write(citizen, files=[photo])
    assert filed.status_code == 303 and filed.headers["location"] == "/schreibdorf/schreiben/danke"

    [case] = town.cases()
    assert case.reference.startswith(town.municipality.reference_prefix) and case.subject == "Über das Webformular"
    [message] = town.session.exec(select(Message).where(Message.conversation_id == case.id)).all()
    assert message.direction == "inbound" and message.body == CONCERN
    [attachment] = town.session.exec(select(Attachment).where(Attachment.message_id == message.id)).all()
    assert attachment.data is not None and dict(Image.open(BytesIO(attachment.data)).getexif()) == {}
    contact = town.session.get(Contact, case.contact_id)
    assert contact is not None and contact.display_name == "Erika Muster"
    assert town.session.exec(select(ContactIdentity)).first() is None, "no address was given"

    thanks = citizen.get("/schreibdorf/schreiben/danke")
    status_link = f"/anfrage/{case.reference}/{case.public_token}"
    assert case.reference in thanks.text and status_link in thanks.text and 'id="no-answer"' in thanks.text
    assert citizen.get(status_link).status_code == 200

    set_password(town.session, user=town.clerk, password=PASSWORD)
    town.session.commit()
    clerk = TestClient(create_app())
    assert sign_in(clerk, town.clerk.email).status_code == 303
    page = clerk.get(f"/app/inbox/{case.id}")
    assert CONCERN in page.text and "Erika Muster" in page.text and 'id="unreachable"' in page.text


@pytest.mark.parametrize(
    ("fields", "files", "status", "words"),
    [
        ({"concern": "  "}, None, 422, "Bitte schreiben Sie, worum es geht"),
        ({"concern": "x" * 5001}, None, 422, "höchstens 5000 Zeichen"),
        ({}, [("photos", ("a.jpg", b"kein Bild", "image/jpeg"))], 422, "Die Datei ist kein Bild"),
        ({}, [("photos", (f"{n}.jpg", jpeg_with_gps(*MITTE), "image/jpeg")) for n in range(4)], 422, "höchstens 3"),
        ({"way": "phone", "phone": "123"}, None, 422, "Telefonnummer"),
        ({"way": "email", "email": "nicht-da"}, None, 422, "keine gültige E-Mail-Adresse"),
        ({"way": "taube"}, None, 422, "ob und wie wir Sie informieren sollen"),
    ],
)
def test_bad_input_is_refused_in_german_and_nothing_is_stored(
    town: Town, citizen: TestClient, fields: dict[str, str], files: list[Any] | None, status: int, words: str
) -> None:
    refused = write(citizen, files=files, **fields)
    assert refused.status_code == status and words in html.unescape(refused.text), refused.text[-2000:]
    assert "Erika Muster" in refused.text, "the form again, with what was typed"
    for table in (Conversation, Message, Attachment, Contact):
        assert town.count(table) == 0, table


def test_a_code_by_sms_proves_the_number_and_the_case_can_be_answered(town: Town, citizen: TestClient) -> None:
    assert write(citizen, way="phone", phone="0151 12345678").status_code == 303
    thanks = citizen.get("/schreibdorf/schreiben/danke")
    assert PHONE in thanks.text and 'action="/schreibdorf/schreiben/code"' in thanks.text
    sms = str(town.sandbox.outbox(kind="twilio", to=PHONE)[-1]["text"])
    assert "auf Ihre Nachricht antworten" in sms
    code = re.search(r"\b(\d{6})\b", sms)
    assert code is not None
    wrong = post(citizen, "/schreibdorf/schreiben/code", {"code": "000000" if code.group(1) != "000000" else "111111"})
    assert wrong.status_code == 422 and "Der Code stimmt nicht" in wrong.text
    proven = post(citizen, "/schreibdorf/schreiben/code", {"code": code.group(1)})
    assert proven.status_code == 200 and "Ihre Nummer ist bestätigt" in proven.text
    [case] = town.cases()
    identity = town.session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == case.contact_id)).one()
    assert identity.address == PHONE and town.count(Contact) == 1, "the placeholder contact is gone"
    contact = town.session.get(Contact, case.contact_id)
    assert contact is not None and contact.display_name == "Erika Muster", "the name came along"


def test_a_mailed_link_proves_the_address(town: Town, citizen: TestClient) -> None:
    assert write(citizen, way="email", email="Max@Example.org").status_code == 303
    assert "max@example.org" in citizen.get("/schreibdorf/schreiben/danke").text
    mail = town.sandbox.outbox(kind="email", to="max@example.org")[-1]
    assert "Ihre Nachricht" in str(mail["subject"])
    link = re.search(r"http\S+/schreiben/bestaetigen\?token=\S+", str(mail["text"]))
    assert link is not None
    path = local_path(link.group(0))
    [case] = town.cases()
    assert case.reference in citizen.get(path).text
    assert town.session.exec(select(ContactIdentity)).first() is None, "opening the link alone changes nothing"
    confirmed = post(citizen, path, {})
    assert confirmed.status_code == 200 and "E-Mail-Adresse bestätigt" in confirmed.text
    [case] = town.cases()
    identity = town.session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == case.contact_id)).one()
    assert identity.address == "max@example.org"
    assert post(citizen, path.replace("token=", "token=x"), {}).status_code in (400, 422)
