"""Migrations on a SQLite database that holds data: tables rebuilt by batch mode keep their rows and search."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from channels.base import Attachment as InboundAttachment
from channels.base import InboundMessage
from hub import db
from hub.inbox import service as inbox
from hub.inbox.models import Attachment, Message
from hub.migrate import alembic_config
from hub.settings import Settings
from tests.unit.db import make_town, receive


def mail(local_id: str, text: str, **fields: object) -> InboundMessage:
    return InboundMessage(provider_id=f"{local_id}@example.org", sender="erika@example.org", text=text, **fields)  # type: ignore[arg-type]


def test_a_database_with_cases_and_attachments_migrates_down_and_up(session: Session, settings: Settings) -> None:
    town = make_town(session)
    photo = InboundAttachment(filename="foto.jpg", content_type="image/jpeg", data=b"jpg")
    receive(session, settings, town.accounts["email"],
            mail("m1", "Die Straßenlaterne ist dunkel.", subject="Laterne", attachments=(photo,)),
            mail("m2", "ANMELDEN abfall"))  # fmt: skip
    session.close()

    # Rebuilding the conversation (0005) and message (0010) tables must not trip over the rows
    # pointing at them.
    command.downgrade(alembic_config(), "0004")
    command.upgrade(alembic_config(), "head")

    with Session(db.get_engine()) as fresh:
        # The old schema had no place for the command outside a case; the case is whole.
        assert [m.body for m in fresh.exec(select(Message).where(Message.direction == "inbound"))] == [
            "Die Straßenlaterne ist dunkel."
        ]
        assert fresh.exec(select(Attachment)).one().data == b"jpg"
        found = inbox.list_conversations(fresh, municipality_id=town.id, search="Straßenlaterne")
        assert found.total == 1
        assert fresh.exec(text("PRAGMA foreign_keys")).one()[0] == 1  # type: ignore[call-overload]
        # New messages are still found: the rebuilt message table kept its full-text triggers.
        receive(fresh, settings, town.accounts["email"], mail("m3", "Die Biotonne fehlt."))
        assert inbox.list_conversations(fresh, municipality_id=town.id, search="Biotonne").total == 1
