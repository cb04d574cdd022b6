"""Inbox search on PostgreSQL: the German configuration, web-search syntax, and no error on odd input."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from channels.base import InboundMessage
from hub import db
from hub import settings as settings_module
from hub.inbox import service
from hub.migrate import upgrade_to_head
from tests.integration.conftest import _start_postgres_database
from tests.unit.db import make_town, receive

pytestmark = pytest.mark.production


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[Session]:
    url, drop = _start_postgres_database()
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RATHAUS_DATABASE_URL", url)
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        upgrade_to_head()
        with Session(db.get_engine(), expire_on_commit=False) as opened:
            yield opened
    finally:
        db.get_engine().dispose()
        settings_module.get_settings.cache_clear()
        db.get_engine.cache_clear()
        drop()


def test_german_full_text_search_over_messages(session: Session) -> None:
    town = make_town(session)
    settings = settings_module.get_settings()
    texts = {
        "lamps": "Die Straßenlaternen in der Lindenstraße sind seit Tagen dunkel.",
        "bins": "Meine Biotonne wurde nicht geleert, bitte kommen Sie noch einmal.",
        "market": "Die Ampel am Markt ist ausgefallen.",
    }
    ids = {}
    for key, text in texts.items():
        event = InboundMessage(provider_id=uuid.uuid4().hex, sender="+49151" + str(uuid.uuid4().int)[:8], text=text)
        ids[key] = receive(session, settings, town.accounts["twilio"], event)[0].conversation_id

    def found(words: str) -> set[int | None]:
        return {c.id for c in service.list_conversations(session, municipality_id=town.id, search=words).items}

    assert found("Straßenlaterne") == {ids["lamps"]}  # the German stemmer joins singular and plural
    assert found("BIOTONNE geleert") == {ids["bins"]}  # every word, any case
    assert found("Ampel -Markt") == set()  # web-search syntax: minus excludes
    assert found('"Ampel am Markt"') == {ids["market"]}
    for odd in ['"', "&|!", "(((", "':*", "\\"]:
        found(odd)  # never a syntax error
