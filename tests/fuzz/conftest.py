"""The app in this process on a migrated SQLite, with one town, for generated input; and the Hypothesis profiles.

RATHAUS_FUZZ_EXAMPLES sets how many examples each property tries (CI keeps it small).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy import func
from sqlmodel import Session, select

from hub import db
from hub import settings as settings_module
from hub.app import create_app
from hub.inbox.models import InboundEvent
from hub.migrate import upgrade_to_head
from hub.tenancy.service import create_api_token, create_user
from tests.unit.db import make_town

settings.register_profile(
    "rathaus",
    max_examples=int(os.environ.get("RATHAUS_FUZZ_EXAMPLES", "40")),
    deadline=None,  # a shared 2-core machine makes timings meaningless
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("rathaus")

PUBLIC_URL = "http://testserver"


@dataclass
class FuzzHub:
    """The app under a TestClient (or a served hub under an HTTP client), the town's channel accounts as the
    provider sees them, and a staff token."""

    client: httpx.Client
    accounts: dict[str, dict[str, Any]]
    token: str

    def stored_events(self) -> int:
        with Session(db.get_engine()) as session:
            return int(session.exec(select(func.count()).select_from(InboundEvent)).one())


@pytest.fixture(scope="package")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHub]:
    patches = pytest.MonkeyPatch()
    patches.setenv("RATHAUS_DATA_DIR", str(tmp_path_factory.mktemp("fuzz")))
    patches.setenv("RATHAUS_PUBLIC_URL", PUBLIC_URL)
    # Stored events stay stored; no worker runs here, what counts is what the request stored.
    patches.setattr("hub.webhooks.enqueue_inbound", lambda ids: None)
    patches.setattr("hub.inbox.mail.enqueue_inbound", lambda ids: None)
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        upgrade_to_head()
        with Session(db.get_engine(), expire_on_commit=False) as session:
            town = make_town(session)
            admin = create_user(
                session, municipality_id=town.id, email="admin@testdorf.example", name="A", role="admin"
            )
            session.commit()
            token = create_api_token(session, user=admin, name="fuzz")
            session.commit()
            accounts = {
                kind: {
                    "id": account.id,
                    "config": dict(account.config),
                    "secrets": dict(account.secrets),
                    "webhook_url": f"{PUBLIC_URL}/webhooks/{kind}/{account.id}",
                }
                for kind, account in town.accounts.items()
            }
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield FuzzHub(client=client, accounts=accounts, token=token)
    finally:
        db.get_engine().dispose()
        patches.undo()
        settings_module.get_settings.cache_clear()
        db.get_engine.cache_clear()
