"""Upgrades from every earlier release: a database filled at an old migration head migrates to today's with its data.

Each release's rows are plain SQL for its schema in tests/fixtures/schema/<head>.sql; a database at a
head holds the rows of that release and of every earlier one, as a town's database would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlmodel import Session, select

from hub import db
from hub.consultations.models import Booking
from hub.contacts.models import ContactIdentity
from hub.inbox.models import Attachment, Conversation, Message
from hub.migrate import alembic_config, code_head
from hub.settings import Settings
from hub.subscribers.models import ConsentEvent, Subscription

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema"
# The heads of earlier releases worth keeping: each one a fixture.
HEADS = sorted(path.stem for path in FIXTURES.glob("*.sql"))
PDF = b"%PDF-1.4\n% Bauantrag\n%%EOF\n\x00\xff"
RAW = b"Body=Die+Ampel+an+der+Hauptstra%C3%9Fe+ist+aus."


def load(connection: Connection, head: str) -> None:
    """The rows of every release up to `head`, statement by statement."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET TIME ZONE 'UTC'"))  # the fixtures' times are UTC, as the hub stores them
    for fixture in (FIXTURES / f"{release}.sql" for release in HEADS if release <= head):
        lines = [line for line in fixture.read_text().splitlines() if not line.startswith("--")]
        for statement in "\n".join(lines).split(";\n"):
            if statement.strip():
                bound = {name: value for name, value in (("pdf", PDF), ("raw", RAW)) if f":{name}" in statement}
                connection.execute(text(statement), bound)


def counts(connection: Connection) -> dict[str, int]:
    names = [name for name in inspect(connection).get_table_names() if name not in ("alembic_version",)]
    return {name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}  # noqa: S608


def test_the_fixtures_cover_the_heads_worth_keeping() -> None:
    assert {"0006", "0010", "0014", "0018"} <= set(HEADS)


@pytest.mark.parametrize("head", HEADS)
def test_a_database_of_an_earlier_release_upgrades_with_its_data(empty_backend_settings: Settings, head: str) -> None:
    command.upgrade(alembic_config(), head)
    with db.get_engine().begin() as connection:
        load(connection, head)
        before = counts(connection)
    command.upgrade(alembic_config(), "head")

    with db.get_engine().connect() as connection:
        after = counts(connection)
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == code_head()
    assert {name: after[name] for name in before} == before
    assert sum(before.values()) >= 30

    # A sample read through today's models: texts, umlauts, bytes, times and states as they were.
    with Session(db.get_engine()) as session:
        first = session.get(Message, 1)
        assert first is not None and first.body == "Die Ampel an der Hauptstraße ist aus."
        assert first.created_at.isoformat() == "2026-01-06T09:00:00+00:00"
        assert session.get(Attachment, 1).data == PDF  # type: ignore[union-attr]
        assert [c.reference for c in session.exec(select(Conversation).order_by(Conversation.id))] == [
            "A-2026-00001", "A-2026-00002",
        ]  # fmt: skip
        assert session.exec(select(ContactIdentity.address).where(ContactIdentity.contact_id == 2)).one() == (
            "joerg@example.org"
        )
        consent = [event.action for event in session.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
        subscription = session.get(Subscription, 1)
        assert subscription is not None
        if head >= "0010":
            assert consent == ["subscribed", "stopped"] and subscription.state == "stopped"
            assert session.get(Message, 5).conversation_id is None  # type: ignore[union-attr]
        else:
            assert consent == ["subscribed"] and subscription.state == "active"
        if head >= "0014":
            booking = session.get(Booking, 1)
            assert booking is not None and booking.name == "Jörg Weiß" and booking.status == "booked"


def test_the_newest_migration_steps_down_and_up_again_with_the_data(empty_backend_settings: Settings) -> None:
    newest = HEADS[-1]
    command.upgrade(alembic_config(), newest)
    with db.get_engine().begin() as connection:
        load(connection, newest)
    command.upgrade(alembic_config(), "head")
    with db.get_engine().connect() as connection:
        at_head = counts(connection)

    command.downgrade(alembic_config(), "-1")
    with db.get_engine().connect() as connection:
        # A table the newest step adds goes with it; every other table keeps its rows.
        stepped_down = counts(connection)
    assert stepped_down == {table: rows for table, rows in at_head.items() if table in stepped_down}
    command.upgrade(alembic_config(), "head")
    with db.get_engine().connect() as connection:
        assert counts(connection) == at_head
