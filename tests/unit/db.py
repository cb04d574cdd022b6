"""Helpers for unit tests on the migrated SQLite database (the `settings` and `session` fixtures are in conftest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from channels.base import InboundEvent, OutboundMessage, Receipt, WebhookRequest
from hub.inbox.pipeline import PipelineResult, process_event
from hub.inbox.receive import store_events
from hub.problems.demo import seed_problem_demo
from hub.settings import Settings
from hub.subscribers.demo import seed_subscriber_demo
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, Team


@dataclass(frozen=True)
class Town:
    municipality: Municipality
    accounts: dict[str, ChannelAccount]

    @property
    def id(self) -> int:
        assert self.municipality.id is not None
        return self.municipality.id


def make_town(session: Session, slug: str = "testdorf") -> Town:
    """A municipality with the demo topics and districts and one channel account per kind."""
    municipality = tenancy.create_municipality(session, slug=slug, name="Gemeinde Testdorf")
    assert municipality.id is not None
    configs: dict[str, dict[str, Any]] = {
        "twilio": {"account_sid": "AC" + "1" * 32, "phone_number": "+4930123456"},
        "telegram": {"bot_username": "TestdorfBot"},
        "facebook": {"page_id": "104857600000001"},
        "email": {"address": "rathaus@testdorf.example", "smtp_host": "127.0.0.1", "smtp_port": 1},
    }
    accounts = {
        kind: tenancy.create_channel_account(
            session,
            municipality_id=municipality.id,
            kind=kind,
            name=kind,
            config=config,
            secrets_={"auth_token": "t", "bot_token": "1:x", "app_secret": "s", "page_access_token": "p"},
        )
        for kind, config in configs.items()
    }
    seed_subscriber_demo(session, municipality.id)
    session.commit()
    return Town(municipality=municipality, accounts=accounts)


def make_problem_town(session: Session) -> Town:
    """make_town with the Mängelmelder's demo categories for a team "Bauhof", and the demo's district shapes."""
    town = make_town(session)
    bauhof = Team(municipality_id=town.id, name="Bauhof")
    session.add(bauhof)
    session.flush()
    seed_problem_demo(session, town.id, team_id=bauhof.id)
    session.commit()
    return town


REQUEST = WebhookRequest(url="http://hub/webhooks/x/1", headers={"content-type": "x"}, body=b"raw")


def receive(
    session: Session,
    settings: Settings,
    account: ChannelAccount,
    *events: InboundEvent,
    request: WebhookRequest = REQUEST,
) -> list[PipelineResult]:
    """Stores events as a webhook would and runs the pipeline on each, committing like the worker."""
    stored = store_events(session, account=account, request=request, events=events)
    session.commit()
    results = []
    for row in stored:
        results.append(process_event(session, settings, row.id))
        session.commit()
    return results


@dataclass
class FakeAdapter:
    """Stands in for a provider adapter: records what was sent, or fails as told."""

    sent: list[OutboundMessage] = field(default_factory=list)
    fail_with: Exception | None = None
    rate_per_second: float = 10.0

    def __call__(self, kind: str, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> FakeAdapter:
        return self

    def send(self, message: OutboundMessage) -> Receipt:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return Receipt(provider_id=f"SM{len(self.sent)}")
