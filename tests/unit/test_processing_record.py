"""The record of processing activities (DSGVO Art. 30): made from the town's channels and retention, for admins only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.cli import main
from hub.settings import Settings
from tests.unit.db import Town, make_town
from tests.unit.web import sign_in, staff_user


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


def signed_in(session: Session, town: Town, role: str) -> TestClient:
    client = TestClient(create_app())
    sign_in(client, staff_user(session, town, role).email)
    return client


def test_an_admin_downloads_the_record_of_the_town_as_configured(
    session: Session, settings: Settings, town: Town
) -> None:
    town.accounts["telegram"].active = False
    town.municipality.preferences = {"retention_days": 365}
    session.add_all([town.accounts["telegram"], town.municipality])
    session.commit()
    answer = signed_in(session, town, "admin").get("/app/admin/verarbeitungsverzeichnis")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="verarbeitungsverzeichnis-testdorf.html"'
    document = answer.text
    assert "Verzeichnis der Verarbeitungstätigkeiten" in document and "Gemeinde Testdorf" in document
    assert "Twilio Ireland Ltd. / Twilio Inc." in document and "Meta Platforms Ireland Ltd." in document
    assert "mailto:rathaus@testdorf.example" in document and "365 Tagen" in document
    assert "Telegram Messenger Inc." not in document  # an inactive channel carries no data
    assert "<script" not in document and "stylesheet" not in document  # prints and files as it is


@pytest.mark.parametrize("role", ["mayor", "staff", "viewer"])
def test_only_admins_get_it(session: Session, settings: Settings, town: Town, role: str) -> None:
    assert signed_in(session, town, role).get("/app/admin/verarbeitungsverzeichnis").status_code == 403


def test_the_cli_writes_it_in_english_too(settings: Settings, town: Town, tmp_path: Path) -> None:
    target = tmp_path / "record.html"
    result = CliRunner().invoke(main, ["municipality", "processing-record", "--slug", "testdorf", "--output",
                                       str(target), "--language", "en"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = target.read_text(encoding="utf-8")
    assert "Record of processing activities" in document and "joint controller" in document
