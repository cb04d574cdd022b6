"""CSV import: every problem reported by line, nothing imported if one line is bad, evidence on record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from hub.cli import main
from hub.contacts.models import ContactIdentity
from hub.settings import Settings
from hub.subscribers import consent, importer, listing
from hub.subscribers.models import ConsentEvent, Subscription
from tests.unit.db import Town, make_town

GOOD = """phone;email;topics;district;language;consent_evidence;consent_date
0151 11111111;;abfall baustellen;Nord;de;Unterschrift Bürgerfest 2025;2025-06-14
+4915122222222;anna@example.org;;;en;Formular Rathaus;14.06.2025
;otto@example.org;Veranstaltungen,abfall;sued;;Newsletter-Liste alt;
"""

BROKEN = """phone,topics,district,consent_evidence,consent_date
+4915111111111,abfall,nord,Unterschrift,2025-06-14
12345,abfall,nord,Unterschrift,
+4915133333333,sperrmuell,nord,Unterschrift,
+4915144444444,abfall,west,Unterschrift,
+4915155555555,abfall,,,
+4915111111111,abfall,,Unterschrift,gestern
"""


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


def test_every_problem_is_reported_by_line_and_nothing_is_written(session: Session, town: Town) -> None:
    checked = importer.validate(session, municipality=town.municipality, text=BROKEN)
    assert not checked.ok
    by_line = {line: problem for line, problem in checked.problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert "Ungültige Telefonnummer '12345'" in by_line[3]
    assert "Unbekanntes Thema 'sperrmuell'" in by_line[4]
    assert "Unbekannter Ortsteil 'west'" in by_line[5]
    assert "Spalte Einwilligung" in by_line[6]
    problems_7 = [problem for line, problem in checked.problems if line == 7]
    assert any("steht schon in Zeile 2" in p for p in problems_7) and any("Ungültiges Datum" in p for p in problems_7)
    assert session.exec(select(ContactIdentity)).all() == []


def test_missing_columns_are_reported_on_the_header_line(session: Session, town: Town) -> None:
    checked = importer.validate(session, municipality=town.municipality, text="name;topics\nErika;abfall\n")
    assert [line for line, _ in checked.problems] == [1, 1]
    assert checked.problems[0][1] == "Spalte(n) fehlen: Einwilligung, Telefon oder E-Mail."
    assert "Unbekannte Spalte(n): name" in checked.problems[1][1]


def test_a_good_file_imports_everyone_with_evidence(session: Session, town: Town) -> None:
    checked = importer.validate(session, municipality=town.municipality, text=GOOD)
    assert checked.ok, checked.problems
    seen: list[int] = []
    imported = importer.import_rows(
        session, municipality=town.municipality, rows=checked.rows, file_name="liste.csv", progress=seen.append
    )
    assert [(item.address, item.created) for item in imported] == [
        ("+4915111111111", True), ("+4915122222222", True), ("otto@example.org", True),
    ]  # fmt: skip
    session.commit()
    assert seen == [1, 1, 1]
    subscribers = listing.list_subscribers(session, municipality_id=town.id, state="active").items
    by_address = {s.identities[0].address: s for s in subscribers}
    first = by_address["+4915111111111"]
    assert [t.key for t in first.topics] == ["baustellen", "abfall"] and [d.key for d in first.districts] == ["nord"]
    anna = next(s for s in subscribers if any(i.address == "anna@example.org" for i in s.identities))
    assert sorted(i.kind for i in anna.identities) == ["email", "phone"] and anna.subscription.language == "en"
    assert anna.topics == [] and anna.districts == []
    event = session.exec(select(ConsentEvent).where(ConsentEvent.contact_id == first.contact.id)).one()
    assert (event.action, event.source) == ("imported", "import")
    assert event.evidence["file"] == "liste.csv" and event.evidence["line"] == 2
    assert event.evidence["consent_evidence"] == "Unterschrift Bürgerfest 2025"
    assert event.evidence["consent_date"] == "2025-06-14"


def test_a_stopped_citizen_is_not_imported_again(session: Session, town: Town) -> None:
    checked = importer.validate(session, municipality=town.municipality, text=GOOD)
    importer.import_rows(session, municipality=town.municipality, rows=checked.rows, file_name="a.csv")
    anna = session.exec(select(ContactIdentity).where(ContactIdentity.address == "anna@example.org")).one()
    consent.stop(
        session, municipality_id=town.id, contact_id=anna.contact_id, channel_kind=None, source="api", evidence={}
    )
    session.commit()
    again = importer.validate(session, municipality=town.municipality, text=GOOD)
    assert [(line, "abgemeldet" in problem) for line, problem in again.problems] == [(3, True), (3, True)]


def test_cli_import_is_all_or_nothing(settings: Settings, session: Session, town: Town, tmp_path: Path) -> None:
    runner = CliRunner()
    broken = tmp_path / "kaputt.csv"
    broken.write_text(BROKEN, encoding="utf-8")
    failed = runner.invoke(main, ["subscribers", "import", str(broken)])
    assert failed.exit_code != 0
    assert "kaputt.csv:3: Ungültige Telefonnummer" in failed.output and "nichts importiert" in failed.output
    assert session.exec(select(Subscription)).all() == []

    good = tmp_path / "liste.csv"
    good.write_text(GOOD, encoding="utf-8")
    done = runner.invoke(main, ["subscribers", "import", str(good)])
    assert done.exit_code == 0, done.output
    assert "3 Abonnent(en) importiert, davon 3 neu angelegt." in done.output and "neu: otto@example.org" in done.output
    assert len(session.exec(select(Subscription)).all()) == 3

    listed = runner.invoke(main, ["subscribers", "list", "--topic", "abfall"])
    assert "+4915111111111" in listed.output and "otto@example.org" in listed.output
    contact_id = session.exec(select(Subscription)).first().contact_id  # type: ignore[union-attr]
    exported = runner.invoke(main, ["subscribers", "export", str(contact_id)])
    assert json.loads(exported.output)["consent_events"][0]["action"] == "imported"
    refused = runner.invoke(main, ["subscribers", "erase", str(contact_id)])
    assert refused.exit_code != 0 and "--yes" in refused.output
    erased = runner.invoke(main, ["subscribers", "erase", str(contact_id), "--yes"])
    assert erased.exit_code == 0 and "gelöscht" in erased.output


GERMAN = """Telefon;E-Mail;Themen;Ortsteil;Sprache;Einwilligung;Einwilligungsdatum
0151 11111111;;abfall;Nord;de;Unterschrift Bürgerfest 2025;2025-06-14
;anna@example.org;;;en;Formular Rathaus;
"""


def test_german_column_names_are_read_and_known_contacts_are_told_from_new_ones(session: Session, town: Town) -> None:
    first = importer.validate(session, municipality=town.municipality, text=GERMAN)
    assert first.ok, first.problems
    importer.import_rows(session, municipality=town.municipality, rows=first.rows[:1], file_name="a.csv")
    again = importer.validate(session, municipality=town.municipality, text=GERMAN)
    imported = importer.import_rows(session, municipality=town.municipality, rows=again.rows, file_name="b.csv")
    assert [(item.address, item.created) for item in imported] == [
        ("+4915111111111", False),
        ("anna@example.org", True),
    ]
    # A column named twice, in German and in English, is refused rather than one of them silently dropped.
    twice = importer.validate(session, municipality=town.municipality, text="Telefon;phone;Einwilligung\n1;2;3\n")
    assert twice.problems == [(1, "Spalte(n) doppelt (deutsch und englisch benannt?): Telefon.")]
    unknown = importer.validate(session, municipality=town.municipality, text="Name;Telefon;Einwilligung\nA;1;x\n")
    assert unknown.problems[0][1].startswith("Unbekannte Spalte(n): Name; erlaubt: Telefon (phone), E-Mail (email),")


def test_the_sample_file_passes_its_own_check(session: Session, town: Town) -> None:
    sample = importer.sample_csv(session, municipality_id=town.id)
    assert sample.startswith("\ufeffTelefon;E-Mail;Themen;Ortsteil;Sprache;Einwilligung;Einwilligungsdatum\r\n")
    checked = importer.validate(session, municipality=town.municipality, text=sample.removeprefix("\ufeff"))
    assert checked.ok, checked.problems
    assert len(checked.rows) == 2 and checked.rows[0].topics and checked.rows[0].district is not None
