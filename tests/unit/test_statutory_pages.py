"""The accessibility statement and the Leichte Sprache page with the town's contact, linked from each citizen page,
and how admins set that contact in Verwaltung and by CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.cli import main
from hub.settings import Settings
from tests.unit.db import Town, make_town
from tests.unit.web import clerk


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


def test_an_admin_sets_the_contact_and_enforcement_body_that_the_statement_names(
    session: Session, town: Town, citizen: TestClient
) -> None:
    admin = clerk(session, town, "admin")
    assert 'href="/app/admin/accessibility"' in admin.get("/app/admin").text
    saved = admin.post("/app/admin/accessibility", {
        "email": "Barrierefrei@Testdorf.example", "phone": " 030  1234567",
        "enforcement_name": "Durchsetzungsstelle des Landes", "enforcement_url": "https://land.example/durchsetzung",
    })  # fmt: skip
    assert "wurden gespeichert" in saved.text
    assert 'value="barrierefrei@testdorf.example"' in saved.text and 'value="030 1234567"' in saved.text
    statement = citizen.get("/testdorf/barrierefreiheit").text
    assert 'href="mailto:barrierefrei@testdorf.example"' in statement and 'href="tel:0301234567"' in statement
    assert '<a href="https://land.example/durchsetzung" rel="noopener">Durchsetzungsstelle des Landes</a>' in statement
    assert "barrierefrei@testdorf.example" in citizen.get("/testdorf/leichte-sprache").text

    admin.post("/app/admin/accessibility", {"email": "", "phone": "", "enforcement_name": "", "enforcement_url": ""})
    statement = citizen.get("/testdorf/barrierefreiheit").text
    assert 'href="mailto:rathaus@testdorf.example"' in statement and "tel:" not in statement
    assert 'href="https://www.schlichtungsstelle-bgg.de"' in statement


@pytest.mark.parametrize(
    ("form", "refusal"),
    [
        ({"email": "barrierefrei(at)testdorf"}, "„barrierefrei(at)testdorf“ ist keine gültige E-Mail-Adresse"),
        ({"phone": "0800 kein Anschluss"}, "„0800 kein Anschluss“ ist keine gültige Telefonnummer"),
        ({"enforcement_name": "Landesstelle", "enforcement_url": "land.example"},
         "„land.example“ ist keine Internetadresse"),
        ({"enforcement_name": "Landesstelle", "enforcement_url": "javascript:alert(1)"}, "ist keine Internetadresse"),
        ({"enforcement_url": "https://land.example"}, "bitte Name und Internetadresse angeben"),
    ],
)  # fmt: skip
def test_a_wrong_field_is_refused_in_german_and_nothing_is_kept(
    session: Session, town: Town, form: dict[str, str], refusal: str
) -> None:
    admin = clerk(session, town, "admin")
    refused = admin.post("/app/admin/accessibility", {"email": "neu@testdorf.example", **form})
    assert refused.status_code == 422 and refusal in refused.text
    assert f'value="{next(iter(form.values()))}"' in refused.text  # the form keeps what was typed
    session.refresh(town.municipality)
    assert "accessibility_contact" not in town.municipality.preferences


@pytest.mark.parametrize("role", ["mayor", "staff", "viewer"])
def test_only_admins_change_the_statement(session: Session, town: Town, role: str) -> None:
    other = clerk(session, town, role)
    assert other.get("/app/admin/accessibility").status_code == 403
    assert other.post("/app/admin/accessibility", {"email": "x@testdorf.example"}).status_code == 403


def test_the_cli_sets_shows_and_refuses_like_the_form(session: Session, town: Town, citizen: TestClient) -> None:
    run = CliRunner().invoke
    done = run(main, ["municipality", "accessibility", "set", "--slug", "testdorf", "--phone", "+49 30 123456",
                      "--enforcement-name", "Landesstelle", "--enforcement-url", "https://land.example"])  # fmt: skip
    assert done.exit_code == 0, done.output
    kept = run(
        main, ["municipality", "accessibility", "set", "--slug", "testdorf", "--email", "hilfe@testdorf.example"]
    )
    assert kept.exit_code == 0, kept.output
    shown = run(main, ["municipality", "accessibility", "show", "--slug", "testdorf"]).output
    assert (
        "hilfe@testdorf.example" in shown and "+49 30 123456" in shown and "Landesstelle, https://land.example" in shown
    )
    assert 'href="tel:+4930123456"' in citizen.get("/testdorf/barrierefreiheit").text

    refused = run(main, ["municipality", "accessibility", "set", "--slug", "testdorf", "--email", "kaputt",
                         "--enforcement-url", ""])  # fmt: skip
    assert refused.exit_code != 0 and "„kaputt“ ist keine gültige E-Mail-Adresse" in refused.output
    assert "hilfe@testdorf.example" in run(main, ["municipality", "accessibility", "show", "--slug", "testdorf"]).output
