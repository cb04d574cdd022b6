"""`rathaus doctor` against a deployment like the demo's: all fine, then each kind of breakage named in German."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alembic import command
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db
from hub import settings as settings_module
from hub.app import create_app
from hub.cli import main
from hub.demo import demo_channel_configs
from hub.doctor import Deployment, Finding, examine, report
from hub.errors import in_language
from hub.i18n import gettext_for
from hub.migrate import alembic_config
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.mail_signing import generate_dkim_key
from hub.tenancy.models import ChannelAccount
from workers.app import celery_app


@dataclass
class Setup:
    """A town with the demo's channel accounts on a sandbox, and the DNS zone its admin published."""

    settings: Settings
    sandbox: SandboxServer
    zone: dict[bytes, bytes]
    accounts: dict[str, ChannelAccount]

    def deployment(self) -> Deployment:
        return Deployment(
            settings=self.settings,
            engine=db.get_engine(),
            celery=celery_app,
            http=TestClient(create_app()),
            txt_lookup=self.zone.get,
        )


@pytest.fixture
def setup(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    with SandboxServer() as sandbox:
        monkeypatch.setenv("RATHAUS_SANDBOX_PORT", str(sandbox.http_port))
        monkeypatch.setenv("RATHAUS_SANDBOX_SMTP_PORT", str(sandbox.smtp_port))
        settings_module.get_settings.cache_clear()
        settings = settings_module.get_settings()
        with Session(db.get_engine(), expire_on_commit=False) as session:
            town = tenancy.create_municipality(session, slug="heilstadt", name="Stadt Heilstadt")
            assert town.id is not None
            accounts = {
                kind: tenancy.create_channel_account(
                    session, municipality_id=town.id, kind=kind, name=name, config=config
                )
                for kind, name, config in demo_channel_configs(settings)
            }
            records = generate_dkim_key(session, municipality_id=town.id, selector="doc")
            session.commit()
        client = SandboxClient(sandbox.url)
        for account in accounts.values():
            client.register_account(kind=account.kind, config=account.config, secrets=account.secrets)
        zone = {f"{record.name}.".encode(): record.text.encode() for record in records}
        yield Setup(settings=settings, sandbox=sandbox, zone=zone, accounts=accounts)


def german_problems(findings: list[Finding]) -> dict[str, list[str]]:
    """Each check's title with its problems in German, as the command prints them."""
    german = gettext_for("de")
    return {finding.check.title: [str(in_language(german, problem)) for problem in finding.problems]
            for finding in findings}  # fmt: skip


def test_a_healthy_deployment_is_all_fine(setup: Setup) -> None:
    findings = examine(setup.deployment())
    assert german_problems(findings) == {finding.check.title: [] for finding in findings}
    assert len(findings) == 7 and not any(finding.skipped_because for finding in findings)
    english = report(findings, gettext_for("en"))
    assert english[0] == "[ok] Database reachable" and english[-1] == "All is well."


def test_bad_credentials_a_missing_dns_record_and_old_migrations_are_each_named(setup: Setup) -> None:
    wrong = {"twilio": "auth_token", "telegram": "bot_token", "facebook": "page_access_token"}
    with Session(db.get_engine()) as session:
        for kind, secret in wrong.items():
            account = session.get(ChannelAccount, setup.accounts[kind].id)
            assert account is not None
            account.secrets = {**account.secrets, secret: "falsch"}
            session.add(account)
        session.commit()
    setup.zone.clear()
    command.downgrade(alembic_config(), "-1")
    skewed = replace(setup.deployment(), now=lambda: datetime.now(UTC) + timedelta(minutes=3))

    found = german_problems(examine(skewed))

    assert found["Datenbank erreichbar"] == [] and found["Broker erreichbar"] == []
    [behind] = found["Migrationen auf dem Stand des Codes"]
    assert "bitte `rathaus migrate` ausführen" in behind
    sms, telegram, facebook = found["Zugangsdaten der Kanäle"]
    assert sms.startswith("heilstadt, Kanal „SMS Bürgertelefon“ (twilio): der Anbieter lehnt die Zugangsdaten ab")
    assert "HTTP 401" in sms
    assert "(telegram): der Anbieter lehnt die Zugangsdaten ab (Telegram lehnt das Bot-Token ab)" in telegram
    assert "(facebook): der Anbieter lehnt die Zugangsdaten ab (Seitentoken ungültig)" in facebook
    [dkim] = found["DKIM-Einträge im DNS"]
    assert "der DKIM-Eintrag doc._domainkey.musterstadt.example fehlt im DNS" in dkim and "v=DKIM1; k=rsa; p=" in dkim
    [clock] = found["Uhr stimmt mit der Datenbank überein"]
    # SQLite's clock counts whole seconds.
    assert re.match(r"Die Uhr dieses Rechners geht gegenüber der Datenbank 18[01] Sekunden vor", clock), clock
    assert found["Webhooks über die öffentliche Adresse erreichbar"] == []


def test_a_webhook_the_public_url_does_not_lead_to_is_named(setup: Setup) -> None:
    nowhere = setup.settings.model_copy(update={"public_url": "http://127.0.0.1:9"})
    with httpx.Client() as http:
        elsewhere = replace(setup.deployment(), settings=nowhere, http=http)
        [found] = [finding for finding in examine(elsewhere) if finding.check.title.startswith("Webhooks")]
    problems = [str(in_language(gettext_for("de"), problem)) for problem in found.problems]
    assert len(problems) == 4  # every channel but mail is called over HTTP
    assert all("http://127.0.0.1:9/webhooks/" in problem and "ist nicht erreichbar" in problem for problem in problems)


def test_the_command_names_a_wrong_database_url_and_exits_1(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATHAUS_DATABASE_URL", "postgresql+psycopg://rathaus:geheim@127.0.0.1:1/fehlt")
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    shown = CliRunner().invoke(main, ["doctor"])
    assert shown.exit_code == 1, shown.output
    assert "Die Datenbank ist nicht erreichbar" in shown.output and "Stimmt RATHAUS_DATABASE_URL" in shown.output
    assert "geheim" not in shown.output and "rathaus:***@127.0.0.1:1/fehlt" in shown.output
    assert "[–] Zugangsdaten der Kanäle: nicht geprüft, die Datenbank ist nicht erreichbar" in shown.output
    assert shown.output.rstrip().endswith("Gefundene Probleme: 1.")
