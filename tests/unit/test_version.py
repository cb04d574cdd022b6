"""`rathaus version` and /healthz compare the database's migration head with the code's, on both backends."""

from __future__ import annotations

from alembic import command
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub import db
from hub.app import create_app
from hub.cli import main
from hub.migrate import alembic_config, code_head, code_version
from hub.settings import Settings


def test_a_current_database_is_ok(backend_settings: Settings) -> None:
    shown = CliRunner().invoke(main, ["version"])
    assert shown.exit_code == 0, shown.output
    assert code_version() in shown.output
    assert shown.output.count(code_head()) == 2
    answer = TestClient(create_app()).get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok", "version": code_version(), "code_schema": code_head(), "database_schema": code_head(),
    }  # fmt: skip


def test_a_database_behind_the_code_is_named_and_not_served(backend_settings: Settings) -> None:
    command.downgrade(alembic_config(), "-1")
    with db.get_engine().connect() as connection:
        older = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    shown = CliRunner().invoke(main, ["version"])
    assert shown.exit_code == 1
    assert f"Die Datenbank ist auf Stand {older}, der Code erwartet {code_head()}" in shown.output
    client = TestClient(create_app())
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "database_behind"
    assert "rathaus migrate" in answer.json()["detail"] and older in answer.json()["detail"]
    english = client.get("/healthz", headers={"Accept-Language": "en"}).json()["detail"]
    assert english.startswith(f"The database is at revision {older}")


def test_a_database_migrated_by_a_newer_version_is_still_served(backend_settings: Settings) -> None:
    # A rolling upgrade: the new version migrated, this process is the old one (migrations add before they remove).
    with db.get_engine().begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    shown = CliRunner().invoke(main, ["version"])
    assert shown.exit_code == 1 and "von einer neueren Version migriert" in shown.output
    answer = TestClient(create_app()).get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "database_ahead" and "9999" in answer.json()["detail"]


def test_an_empty_database_asks_for_the_migrations(backend_settings: Settings) -> None:
    command.downgrade(alembic_config(), "base")
    shown = CliRunner().invoke(main, ["version"])
    assert shown.exit_code == 1 and "Die Datenbank ist leer" in shown.output and "(leer)" in shown.output
    answer = TestClient(create_app()).get("/healthz")
    assert answer.status_code == 503 and answer.json()["status"] == "database_empty"
