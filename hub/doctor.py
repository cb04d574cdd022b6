"""`rathaus doctor`: the checks of a running deployment, one named step each, and the problems they find."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from gettext import NullTranslations
from typing import Any, Literal

import httpx
from celery import Celery
from dkim import DnsTimeoutError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from channels.base import ChannelError, TransientError
from channels.dkim import TxtLookup, get_txt, public_key_of, published_key, record_name, record_text
from channels.registry import build_adapter
from hub.errors import Phrase, in_language
from hub.i18n import N_
from hub.logs import REQUEST_ID_HEADER
from hub.migrate import schema_state
from hub.settings import Settings
from hub.tenancy.mail_signing import mail_domain, signing_kinds
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import list_channel_accounts, webhook_url

# More apart than this and signed links, sign-in codes and deadlines start to disagree between processes.
MAX_CLOCK_SKEW_SECONDS = 5.0
WEBHOOK_PROBE_TIMEOUT_SECONDS = 10.0
_CLOCK_AHEAD = N_(
    "Die Uhr dieses Rechners geht gegenüber der Datenbank {seconds} Sekunden vor: bitte die Zeit per NTP abgleichen."
)
_CLOCK_BEHIND = N_(
    "Die Uhr dieses Rechners geht gegenüber der Datenbank {seconds} Sekunden nach: bitte die Zeit per NTP abgleichen."
)


@dataclass(frozen=True)
class Deployment:
    """What the checks look at: the settings, the database and broker they name, and the outside world.

    `http` reaches the public URL as a provider would (with a timeout of its own, e.g.
    WEBHOOK_PROBE_TIMEOUT_SECONDS); `txt_lookup` asks the DNS; `now` is this
    machine's clock. Each is the real thing for `rathaus doctor`.
    """

    settings: Settings
    engine: Engine
    celery: Celery
    http: httpx.Client
    txt_lookup: TxtLookup = get_txt
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Check:
    """One step of the doctor: its title (a German msgid) and what it finds wrong, nothing when all is well.

    `needs`: what the step reads, so that it is skipped rather than failing while that is missing:
    the database, or the hub's tables in it.
    """

    title: str
    find: Callable[[Deployment], list[Phrase]]
    needs: Literal["database", "tables"] | None = "tables"


@dataclass(frozen=True)
class Finding:
    """What one check found; `skipped_because` (a German msgid) when it could not run."""

    check: Check
    problems: list[Phrase]
    skipped_because: str | None = None


_UNREACHABLE = N_("die Datenbank ist nicht erreichbar")
_EMPTY = N_("die Datenbank ist leer")


def database_error(engine: Engine) -> SQLAlchemyError | None:
    """Why the database cannot be reached, or None when it answers."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return error
    return None


def broker_error(celery: Celery) -> Exception | None:
    """Why the broker cannot be reached, or None when it answers."""
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:  # kombu raises whatever its transport's client raises
        return error
    return None


def _reason(error: BaseException) -> str:
    """The error's first line, which names what failed without the driver's pages of context."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def database_reachable(deployment: Deployment) -> list[Phrase]:
    error = database_error(deployment.engine)
    if error is None:
        return []
    url = deployment.engine.url.render_as_string(hide_password=True)
    message = N_("Die Datenbank ist nicht erreichbar ({error}). Stimmt RATHAUS_DATABASE_URL ({url})?")
    return [Phrase(message, error=_reason(error), url=url)]


def broker_reachable(deployment: Deployment) -> list[Phrase]:
    error = broker_error(deployment.celery)
    if error is None:
        return []
    url = maybe_sanitize_url(str(deployment.celery.conf.broker_url))
    message = N_("Der Broker ist nicht erreichbar ({error}). Stimmt RATHAUS_BROKER_URL ({url})?")
    return [Phrase(message, error=_reason(error), url=url)]


def migrations_current(deployment: Deployment) -> list[Phrase]:
    difference = schema_state(deployment.engine).difference()
    return [] if difference is None else [difference]


def clock_agrees(deployment: Deployment) -> list[Phrase]:
    """This machine's clock against the database server's, the one clock every process of the hub shares."""
    with deployment.engine.connect() as connection:
        before = deployment.now()
        answer: Any = connection.execute(text("SELECT CURRENT_TIMESTAMP")).scalar_one()
        after = deployment.now()
    # PostgreSQL answers with a timestamp with time zone, SQLite with its text in UTC.
    server = answer if isinstance(answer, datetime) else datetime.fromisoformat(str(answer))
    server = server if server.tzinfo else server.replace(tzinfo=UTC)
    ours = before + (after - before) / 2
    skew = (ours - server).total_seconds()
    if abs(skew) <= MAX_CLOCK_SKEW_SECONDS:
        return []
    return [Phrase(_CLOCK_AHEAD if skew > 0 else _CLOCK_BEHIND, seconds=round(abs(skew)))]


def _active_accounts(deployment: Deployment) -> Iterator[tuple[str, ChannelAccount]]:
    """Every active channel account with the slug of its town."""
    with Session(deployment.engine) as session:
        towns = {town.id: town.slug for town in session.exec(select(Municipality)).all()}
        accounts = [account for account in list_channel_accounts(session) if account.active]
    for account in accounts:
        yield towns.get(account.municipality_id, "?"), account


def channel_credentials(deployment: Deployment) -> list[Phrase]:
    """A cheap authenticated call per channel (ChannelAdapter.check_credentials), which sends nothing."""
    problems: list[Phrase] = []
    for town, account in _active_accounts(deployment):
        where = {"town": town, "channel": account.name, "kind": account.kind}
        try:
            build_adapter(account.kind, account.config, account.secrets).check_credentials()
        except TransientError as error:
            message = N_("{town}, Kanal „{channel}“ ({kind}): der Anbieter ist nicht erreichbar ({error}).")
            problems.append(Phrase(message, **where, error=error))
        except ChannelError as error:
            message = N_("{town}, Kanal „{channel}“ ({kind}): der Anbieter lehnt die Zugangsdaten ab ({error}).")
            problems.append(Phrase(message, **where, error=error))
        except (KeyError, ValueError) as error:  # a setting the adapter cannot be built without
            message = N_("{town}, Kanal „{channel}“ ({kind}): die Einstellungen sind unvollständig ({error}).")
            problems.append(Phrase(message, **where, error=error))
    return problems


def webhooks_reachable(deployment: Deployment) -> list[Phrase]:
    """An unsigned POST to each webhook at the public URL, which the hub there must refuse with 403.

    The probe's request id comes back only from a Rathaus hub, not from a proxy or another server
    answering in its place; the hub logs the refusal under that id.
    """
    problems: list[Phrase] = []
    for town, account in _active_accounts(deployment):
        url = webhook_url(deployment.settings, account)
        if url is None:  # mail, which reaches the hub by SMTP
            continue
        where = {"town": town, "channel": account.name, "kind": account.kind, "url": url}
        probe = f"doctor-{uuid.uuid4().hex}"
        try:
            answer = deployment.http.post(url, content=b"", headers={REQUEST_ID_HEADER: probe})
        except httpx.HTTPError as error:
            message = N_("{town}, Kanal „{channel}“ ({kind}): {url} ist nicht erreichbar ({error}).")
            problems.append(Phrase(message, **where, error=_reason(error)))
            continue
        if answer.headers.get(REQUEST_ID_HEADER) != probe:
            message = N_(
                "{town}, Kanal „{channel}“ ({kind}): unter {url} antwortet nicht der Hub (HTTP {status}); "
                "leitet der Proxy /webhooks/ weiter?"
            )
            problems.append(Phrase(message, **where, status=answer.status_code))
        elif answer.status_code == 404:
            message = N_(
                "{town}, Kanal „{channel}“ ({kind}): der Hub unter {url} kennt diesen Kanal nicht; "
                "zeigt RATHAUS_PUBLIC_URL auf eine andere Installation?"
            )
            problems.append(Phrase(message, **where))
        elif answer.status_code != 403:
            message = N_(
                "{town}, Kanal „{channel}“ ({kind}): {url} antwortet auf eine unsignierte Probe mit HTTP {status} "
                "statt 403."
            )
            problems.append(Phrase(message, **where, status=answer.status_code))
    return problems


def dkim_records(deployment: Deployment) -> list[Phrase]:
    """Each mailbox's DKIM record in the DNS, holding the public half of the key the hub signs with."""
    problems: list[Phrase] = []
    for town, account in _active_accounts(deployment):
        if account.kind not in signing_kinds():
            continue
        selector, private_pem = account.config.get("dkim_selector"), account.secrets.get("dkim_private_key")
        where = {"town": town, "mailbox": account.address}
        if not (selector and private_pem):
            message = N_(
                "{town}, Postfach {mailbox}: ausgehende E-Mails sind nicht DKIM-signiert; "
                "`rathaus dkim generate` erzeugt einen Schlüssel und nennt den DNS-Eintrag."
            )
            problems.append(Phrase(message, **where))
            continue
        domain, public = mail_domain(account.address), public_key_of(str(private_pem))
        record = {"name": record_name(str(selector), domain), "text": record_text(public)}
        try:
            published = published_key(str(selector), domain, deployment.txt_lookup)
        except DnsTimeoutError as error:
            message = N_("{town}, Postfach {mailbox}: der DNS antwortet nicht auf die Frage nach {name} ({error}).")
            problems.append(Phrase(message, **where, **record, error=error))
            continue
        if published is None:
            message = N_(
                "{town}, Postfach {mailbox}: der DKIM-Eintrag {name} fehlt im DNS; zu veröffentlichen: TXT „{text}“."
            )
            problems.append(Phrase(message, **where, **record))
        elif published != public:
            message = N_(
                "{town}, Postfach {mailbox}: der DKIM-Eintrag {name} enthält nicht den Schlüssel, mit dem der Hub "
                "signiert; zu veröffentlichen: TXT „{text}“."
            )
            problems.append(Phrase(message, **where, **record))
    return problems


# In this order: what the later steps need comes first. Adding a check is adding an entry.
DOCTOR_CHECKS: tuple[Check, ...] = (
    Check(N_("Datenbank erreichbar"), database_reachable, needs=None),
    Check(N_("Broker erreichbar"), broker_reachable, needs=None),
    Check(N_("Migrationen auf dem Stand des Codes"), migrations_current, needs="database"),
    Check(N_("Uhr stimmt mit der Datenbank überein"), clock_agrees, needs="database"),
    Check(N_("Zugangsdaten der Kanäle"), channel_credentials),
    Check(N_("Webhooks über die öffentliche Adresse erreichbar"), webhooks_reachable),
    Check(N_("DKIM-Einträge im DNS"), dkim_records),
)


def examine(deployment: Deployment, checks: tuple[Check, ...] = DOCTOR_CHECKS) -> list[Finding]:
    """Runs the checks in order, skipping those whose database or tables are missing."""
    missing: dict[str, str] = {}
    if database_error(deployment.engine) is not None:
        missing = {"database": _UNREACHABLE, "tables": _UNREACHABLE}
    elif schema_state(deployment.engine).state == "empty":
        missing = {"tables": _EMPTY}
    findings: list[Finding] = []
    for check in checks:
        if check.needs in missing:
            findings.append(Finding(check, [], skipped_because=missing[check.needs]))
            continue
        try:
            problems = check.find(deployment)
        except SQLAlchemyError as error:  # a table or column this code expects but the database lacks
            problems = [Phrase(N_("Prüfung fehlgeschlagen: {error}"), error=_reason(error))]
        findings.append(Finding(check, problems))
    return findings


def report(findings: list[Finding], texts: NullTranslations) -> list[str]:
    """The findings as the command prints them, in the language of `texts`: a line per check, one per problem."""
    lines: list[str] = []
    for finding in findings:
        title = texts.gettext(finding.check.title)
        if finding.skipped_because is not None:
            skipped = texts.gettext("[–] {title}: nicht geprüft, {reason}")
            lines.append(skipped.format(title=title, reason=texts.gettext(finding.skipped_because)))
        elif not finding.problems:
            lines.append(texts.gettext("[ok] {title}").format(title=title))
        else:
            lines.append(texts.gettext("[!!] {title}:").format(title=title))
            lines.extend(f"     - {in_language(texts, problem)}" for problem in finding.problems)
    count = sum(len(finding.problems) for finding in findings)
    lines.append(texts.gettext("Gefundene Probleme: {count}.").format(count=count) if count
                 else texts.gettext("Alles in Ordnung."))  # fmt: skip
    return lines
