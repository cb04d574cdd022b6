"""Citizens' attachments download with their own names, through the API and from the inbox page, for their town only."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from channels.base import Attachment as InboundAttachment
from channels.base import InboundMessage
from hub.app import create_app
from hub.inbox.models import Attachment
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.web.downloads import content_disposition
from tests.unit.db import Town, make_town, receive
from tests.unit.web import clerk

NAMES = ("Bürgerantrag – Überweisung.pdf", "申请.pdf")


def fallback_filename(header: str) -> str:
    """What a client that knows only the plain `filename` parameter sees."""
    found = re.search(r'filename="([^"]*)"', header)
    assert found is not None, header
    return found.group(1)


def browser_filename(header: str) -> str:
    """The name a browser saves under: RFC 6266 (4.3) has `filename*` (RFC 8187) win over `filename`."""
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", header, re.IGNORECASE)
    return unquote(extended.group(1), errors="strict") if extended else fallback_filename(header)


@pytest.fixture
def town(session: Session, settings: Settings) -> Town:
    town = make_town(session)
    inbound = InboundMessage(
        provider_id="<antrag@buerger.example>", sender="erika@buerger.example", text="Anbei mein Antrag",
        subject="Antrag", attachments=tuple(
            InboundAttachment(filename=name, content_type="application/pdf", data=f"%PDF {name}".encode())
            for name in NAMES
        ),
    )  # fmt: skip
    [result] = receive(session, settings, town.accounts["email"], inbound)
    assert result.outcome.startswith("stored"), result.outcome
    return town


def attachments(session: Session, town: Town) -> dict[str, Attachment]:
    found = session.exec(select(Attachment).where(Attachment.municipality_id == town.id)).all()
    return {attachment.filename or "": attachment for attachment in found}


def assert_downloads_as(answer: httpx.Response, name: str) -> None:
    assert answer.status_code == 200, answer.text
    header = answer.headers["content-disposition"]
    assert header.startswith("attachment;")
    assert browser_filename(header) == name
    assert fallback_filename(header).isascii()
    assert answer.content == f"%PDF {name}".encode()


def test_attachments_with_names_beyond_latin_1_download_through_the_api(session: Session, town: Town) -> None:
    user = tenancy.create_user(session, municipality_id=town.id, email="api@testdorf.example", name="API", role="staff")
    token = tenancy.create_api_token(session, user=user, name="test")
    session.commit()
    api = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})
    for name, attachment in attachments(session, town).items():
        assert_downloads_as(api.get(f"/api/v1/attachments/{attachment.id}"), name)


def test_a_signed_in_clerk_downloads_the_attachments_from_the_links_on_the_conversation_page(
    session: Session, town: Town
) -> None:
    staff = clerk(session, town, "viewer")  # reading the inbox is enough
    found = attachments(session, town)
    conversation = staff.get("/app/inbox").text
    [conversation_id] = set(re.findall(r'href="/app/inbox/(\d+)"', conversation))
    page = staff.get(f"/app/inbox/{conversation_id}").text
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    for name, attachment in found.items():
        [href] = [href for href, text in links if text == name]
        assert href == f"/app/inbox/attachments/{attachment.id}"
        assert_downloads_as(staff.get(href), name)


def test_another_towns_clerk_gets_404_and_no_session_goes_to_sign_in(session: Session, town: Town) -> None:
    attachment = next(iter(attachments(session, town).values()))
    path = f"/app/inbox/attachments/{attachment.id}"
    foreign = clerk(session, make_town(session, slug="nachbardorf"), "admin")
    refused = foreign.get(path)
    assert refused.status_code == 404 and b"%PDF" not in refused.content
    anonymous = TestClient(create_app()).get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/app/login?next=%2Fapp%2Finbox%2Fattachments%2F{attachment.id}"


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("bericht.csv", "bericht.csv"),
        ('say "hi"\\.txt', 'say "hi"\\.txt'),
        ("zeile\r\nSet-Cookie: x=1.pdf", "zeileSet-Cookie: x=1.pdf"),
        ("\u202egpj.exe", "gpj.exe"),  # a right-to-left override that would show it as "exe.jpg"
        ("\r\n", "datei"),
    ],
)
def test_a_file_name_cannot_break_or_disguise_the_header(given: str, saved: str) -> None:
    header = content_disposition(given)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert browser_filename(header) == saved
