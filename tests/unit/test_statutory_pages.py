"""The accessibility statement and the Leichte Sprache page with the town's contact, linked from each citizen page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.settings import Settings
from tests.unit.db import Town, make_town


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


@pytest.fixture
def citizen(settings: Settings) -> TestClient:
    return TestClient(create_app())


def test_the_statement_names_the_town_its_mailbox_and_the_enforcement_body(town: Town, citizen: TestClient) -> None:
    page = citizen.get("/testdorf/barrierefreiheit")
    assert page.status_code == 200
    for part in ("Gemeinde Testdorf", "Stand der Vereinbarkeit", "Nicht barrierefreie Inhalte", "Barrieren melden",
                 'href="mailto:rathaus@testdorf.example"', 'href="https://www.schlichtungsstelle-bgg.de"'):  # fmt: skip
        assert part in page.text


def test_the_town_names_its_own_contact_and_enforcement_body(session: Session, town: Town, citizen: TestClient) -> None:
    town.municipality.preferences = {
        "accessibility_contact": {"email": "barrierefrei@testdorf.example", "phone": "+49 30 123456"},
        "accessibility_enforcement": {"name": "Landesdurchsetzungsstelle", "url": "https://land.example/stelle"},
    }
    session.add(town.municipality)
    session.commit()
    page = citizen.get("/testdorf/barrierefreiheit").text
    assert "mailto:barrierefrei@testdorf.example" in page and 'href="tel:+4930123456"' in page
    assert '<a href="https://land.example/stelle" rel="noopener">Landesdurchsetzungsstelle</a>' in page


def test_leichte_sprache_says_how_to_leave_and_speaks_english_when_asked(town: Town, citizen: TestClient) -> None:
    page = citizen.get("/testdorf/leichte-sprache")
    assert page.status_code == 200
    assert "Gemeinde Testdorf hat einen Nachrichten-Dienst." in page.text and "<strong>STOP</strong>" in page.text
    assert 'href="/abo/testdorf"' in page.text
    english = citizen.get("/testdorf/leichte-sprache?lang=en").text
    assert "How to leave" in english


def test_every_citizen_page_of_a_town_links_both(town: Town, citizen: TestClient) -> None:
    for path in ("/abo/testdorf", "/sprechstunden/testdorf", "/testdorf/barrierefreiheit"):
        page = citizen.get(path).text
        assert 'href="/testdorf/barrierefreiheit"' in page and 'href="/testdorf/leichte-sprache"' in page, path


def test_an_unknown_town_is_a_404_in_german(citizen: TestClient, town: Town) -> None:
    page = citizen.get("/nirgendwo/barrierefreiheit")
    assert page.status_code == 404
    assert "nicht gefunden" in page.text
