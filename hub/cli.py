"""The `rathaus` command: run the hub (embedded or as separate processes) and administer it."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx

from channels.registry import adapter_class, adapter_classes, known_kinds
from channels.sandbox.cli import sandbox
from hub.broadcasts.cli import broadcast
from hub.composition import install
from hub.consultations.cli import consultations
from hub.db import session_scope
from hub.errors import DomainError
from hub.i18n import DEFAULT_LANGUAGE, LANGUAGES, gettext_for
from hub.logs import configure_logging
from hub.open311.cli import open311
from hub.settings import Settings, get_settings
from hub.subscribers.cli import subscribers

if TYPE_CHECKING:
    from channels.sandbox.server import SandboxServer

log = logging.getLogger("rathaus")


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Rathaus Hub: ein Posteingang für SMS, Telegram, Facebook und E-Mail."""
    settings = get_settings()
    configure_logging(settings)
    install()
    # channels/ knows nothing of the hub's settings: the sandbox commands get where the emulators run from here.
    ctx.default_map = {
        "sandbox": {
            "url": settings.sandbox_url,
            "serve": {"host": settings.sandbox_host, "port": settings.sandbox_port,
                      "smtp_port": settings.sandbox_smtp_port},
        }
    }  # fmt: skip


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from hub.migrate import upgrade_to_head

    upgrade_to_head()
    click.echo("Datenbank ist auf dem neuesten Stand.")


@main.command("version")
def version_command() -> None:
    """The code's version and migration head beside the database's; exits 1 when they differ."""
    from hub.db import get_engine
    from hub.migrate import code_version, schema_state

    found = schema_state(get_engine())
    click.echo(f"Rathaus Hub {code_version()}")
    click.echo(f"Migrationsstand des Codes:     {found.code}")
    click.echo(f"Migrationsstand der Datenbank: {found.database or '(leer)'}")
    if (problem := found.problem(gettext_for("de"))) is not None:
        raise click.ClickException(problem)


@main.command("doctor")
@click.option("--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True,
              help="Language of the report.")  # fmt: skip
def doctor_command(lang: str) -> None:
    """Check this deployment (database, broker, migrations, clock, each channel's credentials and webhook, DKIM
    records) and say what is wrong; exits 1 if anything is."""
    from hub.db import get_engine
    from hub.doctor import WEBHOOK_PROBE_TIMEOUT_SECONDS, Deployment, examine, report
    from workers.app import celery_app

    with httpx.Client(timeout=WEBHOOK_PROBE_TIMEOUT_SECONDS) as http:
        findings = examine(Deployment(settings=get_settings(), engine=get_engine(), celery=celery_app, http=http))
    for line in report(findings, gettext_for(lang)):
        click.echo(line)
    if any(finding.problems for finding in findings):
        raise SystemExit(1)


@main.command("backup")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="TARGET is a folder: keep only this many of its backups, the newest.")  # fmt: skip
def backup_command(target: Path, keep: int | None) -> None:
    """Write a backup of the running hub to TARGET (a file, or a folder for a dated one): the database with its
    attachments, and the settings it needs."""
    from hub.backup import backup, dated_in, prune
    from hub.db import get_engine

    with _domain_errors():
        written = dated_in(target) if target.is_dir() or keep is not None else target
        manifest = backup(engine=get_engine(), settings=get_settings(), target=written)
        removed = prune(target, keep=keep) if keep is not None else []
    click.echo(f"Sicherung {written} geschrieben: {sum(manifest.rows.values())} Zeilen in {len(manifest.rows)} "
               f"Tabellen, Migrationsstand {manifest.schema}.")  # fmt: skip
    for path in removed:
        click.echo(f"Ältere Sicherung {path} gelöscht.")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(source: Path) -> None:
    """Restore the backup SOURCE into the configured database, which must be empty, and migrate it."""
    from hub.backup import restore
    from hub.db import get_engine

    with _domain_errors():
        restored = restore(engine=get_engine(), settings=get_settings(), source=source)
    manifest = restored.manifest
    click.echo(f"Sicherung vom {manifest.created_at[:16]} (Version {manifest.version}) zurückgespielt: "
               f"{sum(manifest.rows.values())} Zeilen, alle geprüft.")  # fmt: skip
    if restored.settings_file is not None:
        differing = ", ".join(restored.differing_settings)
        click.echo(f"Anders als in der Sicherung: {differing}. Die Werte der Sicherung stehen in "
                   f"{restored.settings_file}; ohne sie gelten signierte Links und Webhooks nicht.")  # fmt: skip


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    # The inbox's live streams stay open for 30 s; shutting down should not wait for them.
    # Forwarded headers are read by the app itself, from RATHAUS_TRUSTED_PROXIES only: uvicorn's
    # own default would believe any process on loopback.
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        # The hub's own handler writes uvicorn's lines too, in the chosen format with the request id.
        log_config=None,
        log_level="info",
        timeout_graceful_shutdown=3,
    )


@main.command()
def api() -> None:
    """Run the web app and webhooks only (production: one process per replica)."""
    _run_uvicorn(get_settings())


@main.command()
@click.option(
    "--queues", "-Q", default="warnings,replies,inbound,bulk", show_default=True, help="Queues, highest priority first."
)
@click.option("--concurrency", "-c", default=4, show_default=True, help="Parallel tasks.")
@click.option(
    "--pool",
    default="threads",
    show_default=True,
    type=click.Choice(["threads", "prefork", "solo"]),
)
def worker(queues: str, concurrency: int, pool: str) -> None:
    """Run a Celery worker for the inbound pipeline and outbound sends."""
    from workers.app import celery_app

    celery_app.worker_main(
        [
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "--pool",
            pool,
            "--loglevel",
            get_settings().log_level,
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"rathaus-{os.getpid()}@%h",
        ]
    )


@main.command()
def beat() -> None:
    """Run Celery beat, which starts the sweeper on schedule."""
    from workers.app import celery_app

    settings = get_settings()
    celery_app.start(
        [
            "beat",
            "--schedule",
            str(settings.data_dir / "beat-schedule"),
            "--loglevel",
            settings.log_level,
        ]
    )


@main.command()
def smtp() -> None:
    """Run the inbound SMTP listener alone (production)."""
    from hub.smtp_listener import start_listener

    controller = start_listener(get_settings())
    click.echo(f"SMTP-Empfang auf {controller.hostname}:{controller.port}; Strg-C beendet.")
    _wait_for_signal()
    controller.stop()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def _die_with_parent() -> None:
    """Runs in a child before exec: the kernel sends it SIGTERM when `rathaus serve` dies, however."""
    PR_SET_PDEATHSIG = 1  # noqa: N806 (the constant's name in <sys/prctl.h>)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class _Children:
    """The worker and beat processes beside the web app: started with it, restarted if they die, stopped with it.

    A Celery worker can exit on its own, e.g. when the broker goes away at the wrong moment;
    in production the service manager restarts it, and here this does.
    """

    def __init__(self, commands: list[list[str]]) -> None:
        # Started before any thread exists: preexec_fn is only safe in a single-threaded parent.
        self._commands = commands
        self._processes = [subprocess.Popen(c, preexec_fn=_die_with_parent) for c in commands]  # noqa: S603
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="children", daemon=True).start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                for index, process in enumerate(self._processes):
                    if process.poll() is not None and not self._stopping.is_set():
                        log.warning("%s exited with %s; starting it again", " ".join(self._commands[index][2:]),
                                    process.returncode)  # fmt: skip
                        # From this thread without preexec_fn: a restarted child relies on stop().
                        self._processes[index] = subprocess.Popen(self._commands[index])  # noqa: S603

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for process in self._processes:
                process.terminate()
            for process in self._processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"{url} antwortet nicht.")


@main.command()
@click.option(
    "--demo/--no-demo",
    default=True,
    show_default=True,
    help="Demo municipality and sandbox providers.",
)
def serve(demo: bool) -> None:
    """Run everything in one go: migrations, web app, SMTP listener, worker, beat (and the sandbox)."""
    from hub.migrate import upgrade_to_head
    from hub.smtp_listener import start_listener

    settings = get_settings()
    upgrade_to_head()
    me = [sys.executable, "-m", "hub.cli"]
    workers = [
        # Citizens' messages and staff replies never wait behind a long, rate-limited broadcast;
        # broadcasts share one process so its in-memory rate limit covers all of them.
        [*me, "worker", "-Q", "inbound,replies", "-c", "2"],
        [*me, "worker", "-Q", "warnings,bulk", "-c", "2"],
    ]
    _share_metrics_with_children(settings)
    children = _Children([*workers, [*me, "beat"]])
    try:
        # uvicorn re-raises SIGTERM once it has shut down; exiting normally instead lets the
        # finally blocks below stop the listeners and the children.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sandbox_server = None
        if demo:
            sandbox_server = _start_demo(settings)
        controller = start_listener(settings)
        try:
            _run_uvicorn(settings)
        finally:
            controller.stop()
            if sandbox_server is not None:
                sandbox_server.stop()
    finally:
        children.stop()


def _share_metrics_with_children(settings: Settings) -> None:
    """Points the workers' counters at a folder of this run, which /metrics of the web app reads too."""
    from hub.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        return
    shared = settings.data_dir / "metrics"
    # Counts of an earlier run would be added to this one's.
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(shared.resolve())


def _start_demo(settings: Settings) -> SandboxServer:
    """Starts the emulators, seeds the demo town, and once the web app answers, lets citizens write in."""
    from channels.sandbox.client import SandboxClient
    from channels.sandbox.server import SandboxServer
    from hub.demo import (
        DEMO_ADMIN,
        DEMO_PASSWORD,
        DEMO_SLUG,
        citizens_have_written,
        register_with_sandbox,
        seed_demo,
        send_demo_citizen_messages,
    )
    from hub.official_warnings.demo import publish_demo_warnings
    from hub.open311.demo import DEMO_OPEN311_KEY
    from hub.tenancy.service import create_api_token, get_user_by_email
    from workers.app import celery_app

    sandbox_server = SandboxServer(
        host=settings.sandbox_host, http_port=settings.sandbox_port, smtp_port=settings.sandbox_smtp_port
    )
    sandbox_server.start()
    with session_scope() as session:
        seeded = seed_demo(session, settings)
        admin = get_user_by_email(session, municipality_id=seeded.municipality_id, email=DEMO_ADMIN)
        token = create_api_token(session, user=admin, name="demo")
        first_run = not citizens_have_written(session, seeded.municipality_id)
    sandbox = SandboxClient(settings.sandbox_url)
    register_with_sandbox(settings, sandbox, seeded.accounts)

    def after_start() -> None:
        _wait_until_up(f"http://{settings.host}:{settings.port}/healthz")
        if first_run:
            send_demo_citizen_messages(sandbox, seeded.accounts)
            publish_demo_warnings(sandbox)
            # At once rather than at beat's first interval, so that the demo shows them relayed.
            celery_app.send_task("workers.tasks.poll_official_warnings")
        click.echo(
            "\nRathaus Hub läuft (Demo: Stadt Musterstadt).\n"
            f"  Im Browser: {settings.public_url}/app/  ({DEMO_ADMIN}, Passwort {DEMO_PASSWORD})\n"
            f"  API:        {settings.public_url}/docs\n"
            f"  API-Token:  {token}\n"
            f"  Vorgänge:   curl -H 'Authorization: Bearer {token}' \\\n"
            f"                {settings.public_url}/api/v1/conversations\n"
            f"  Bürgerseiten: {settings.public_url}/{DEMO_SLUG}/start  (Stand einer Anfrage: /{DEMO_SLUG}/anfrage)\n"
            f"                {settings.public_url}/abo/{DEMO_SLUG}  {settings.public_url}/sprechstunden/{DEMO_SLUG}\n"
            f"                {settings.public_url}/{DEMO_SLUG}/barrierefreiheit  "
            f"{settings.public_url}/{DEMO_SLUG}/leichte-sprache\n"
            f"  Open311:    {settings.public_url}/open311/v2/{DEMO_SLUG}/requests.json  (api_key {DEMO_OPEN311_KEY})\n"
            f"  Warnungen (CAP): {settings.public_url}/public/{DEMO_SLUG}/cap.atom\n"
            f"  Sandbox:    {settings.sandbox_url}/sandbox/outbox  (was Bürgerinnen und Bürger erhalten)\n"
            f"  Metriken:   curl {settings.public_url}/metrics  (Prometheus-Format, nur von diesem Rechner)\n"
            f"  Als Bürger schreiben: {citizen_sms_hint(settings)}\n"
            "  Sichern:    rathaus backup sicherung.tar  (zurück in eine leere Datenbank: rathaus restore …)\n"
        )

    threading.Thread(target=after_start, daemon=True).start()
    return sandbox_server


def citizen_sms_hint(settings: Settings) -> str:
    """The command that writes to the demo as a citizen, as it runs from another terminal in this folder.

    `make run` leaves `rathaus` in .venv/bin, not on the PATH, and that terminal may not have this
    one's RATHAUS_SANDBOX_PORT: the hint names the script's path and the sandbox's URL.
    """
    script = Path(sys.executable).parent / "rathaus"
    if not script.exists():  # not installed: run from a checkout
        command = f"{shlex.quote(sys.executable)} -m hub.cli"
    else:
        command = shlex.quote(str(script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else script))
    return f"{command} sandbox --url {settings.sandbox_url} sms --text 'Hallo Rathaus'"


@main.group()
def municipality() -> None:
    """Municipalities (tenants)."""


@municipality.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--region", default="DE", show_default=True, help="Default region for phone numbers.")
def municipality_create(slug: str, name: str, region: str) -> None:
    from hub.tenancy.service import create_municipality

    with _domain_errors(), session_scope() as session:
        created = create_municipality(session, slug=slug, name=name, default_region=region)
        click.echo(f"Gemeinde {created.slug} angelegt (id {created.id}).")


@municipality.command("processing-record")
@click.option("--slug", default=None, help="The municipality (the only one if omitted).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="File (default: stdout).")
@click.option("--language", type=click.Choice(["de", "en"]), default="de", show_default=True)
def municipality_processing_record(slug: str | None, output: str | None, language: str) -> None:
    """The record of processing activities (DSGVO Art. 30) as a printable HTML document."""
    from hub.tenancy.processing_record import processing_record
    from hub.tenancy.service import get_municipality
    from hub.web.processing_record import record_document

    with _domain_errors(), session_scope() as session:
        record = processing_record(session, municipality=get_municipality(session, slug=slug))
    document = record_document(record, language=language)
    if output is None:
        click.echo(document)
    else:
        Path(output).write_text(document, encoding="utf-8")
        click.echo(f"Verzeichnis geschrieben: {output}")


@municipality.group("accessibility")
def municipality_accessibility() -> None:
    """Whom the accessibility statement names for reporting a barrier, and the enforcement body."""


@municipality_accessibility.command("show")
@click.option("--slug", default=None, help="The municipality (the only one if omitted).")
def municipality_accessibility_show(slug: str | None) -> None:
    from hub.tenancy.administration import accessibility_contact
    from hub.tenancy.preferences import DEFAULTS
    from hub.tenancy.service import get_municipality

    with _domain_errors(), session_scope() as session:
        own = accessibility_contact(get_municipality(session, slug=slug))
    default = DEFAULTS["accessibility_enforcement"]
    click.echo(f"E-Mail: {own.email or '(das erste E-Mail-Postfach der Gemeinde)'}")
    click.echo(f"Telefon: {own.phone or '(keine)'}")
    click.echo(f"Durchsetzungsstelle: {own.enforcement_name or default['name']}, "
               f"{own.enforcement_url or default['url']}")  # fmt: skip


@municipality_accessibility.command("set")
@click.option("--slug", default=None, help="The municipality (the only one if omitted).")
@click.option("--email", default=None, help="Where to report a barrier; '' names the first mailbox again.")
@click.option("--phone", default=None, help="A phone number for it; '' removes it.")
@click.option("--enforcement-name", default=None, help="The Land's enforcement body; '' with --enforcement-url '' "
              "names the federal one.")  # fmt: skip
@click.option("--enforcement-url", default=None, help="Its web address (https://…).")
def municipality_accessibility_set(
    slug: str | None, email: str | None, phone: str | None, enforcement_name: str | None, enforcement_url: str | None
) -> None:
    """Sets the options given; the others keep their value."""
    from hub.tenancy.administration import accessibility_contact, save_accessibility_contact
    from hub.tenancy.service import get_municipality

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        own = accessibility_contact(found)
        save_accessibility_contact(
            session, municipality_id=found.id, actor_id=None,
            email=(own.email or "") if email is None else email, phone=(own.phone or "") if phone is None else phone,
            enforcement_name=own.enforcement_name if enforcement_name is None else enforcement_name,
            enforcement_url=own.enforcement_url if enforcement_url is None else enforcement_url,
        )  # fmt: skip
        click.echo(f"Erklärung zur Barrierefreiheit von {found.slug} gespeichert.")


@main.group()
def user() -> None:
    """Staff users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    default="staff",
    show_default=True,
    type=click.Choice(["admin", "mayor", "staff", "viewer"]),
)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out when there is only one.")
@click.option(
    "--password",
    prompt="Passwort für die Anmeldung im Browser",
    hide_input=True,
    confirmation_prompt=True,
    help="At least 10 characters; asked for when left out.",
)
def user_create(email: str, name: str, role: str, slug: str | None, password: str) -> None:
    """Creates a staff user who can sign in (the first admin of a new installation, say)."""
    from hub.tenancy.service import create_user, get_municipality
    from hub.tenancy.signin import set_password

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        created = create_user(session, municipality_id=found.id, email=email, name=name, role=role)
        set_password(session, user=created, password=password)
        click.echo(f"Benutzer {created.email} ({created.role}) angelegt, id {created.id}.")


@user.command("password")
@click.option("--email", required=True)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out when there is only one.")
@click.option("--password", prompt="Neues Passwort", hide_input=True, confirmation_prompt=True)
def user_password(email: str, slug: str | None, password: str) -> None:
    """Sets a staff user's password and ends their sessions (also lifts a lock-out)."""
    from hub.tenancy.service import get_municipality, get_user_by_email
    from hub.tenancy.signin import end_all_sessions, set_password

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        staff = get_user_by_email(session, municipality_id=found.id, email=email)
        set_password(session, user=staff, password=password)
        assert staff.id is not None
        end_all_sessions(session, user_id=staff.id)
        click.echo(f"Passwort für {staff.email} gesetzt.")


@main.group()
def token() -> None:
    """API tokens for /api/v1."""


@token.command("create")
@click.option("--email", required=True, help="The staff user the token acts as.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out when there is only one.")
def token_create(email: str, name: str, slug: str | None) -> None:
    """Create a token; it is shown once."""
    from hub.tenancy.service import create_api_token, get_municipality, get_user_by_email

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        staff = get_user_by_email(session, municipality_id=found.id, email=email)
        click.echo(create_api_token(session, user=staff, name=name))


@token.command("list")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out when there is only one.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def token_list(slug: str | None, as_json: bool) -> None:
    """Every token of the municipality: whom it acts as, when it was last used, whether it is revoked."""
    from hub.tenancy.service import get_municipality, list_api_tokens

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        listed: list[dict[str, Any]] = [
            {
                "id": item.token.id,
                "name": item.token.name,
                "user": item.user.email,
                "created_at": item.token.created_at.isoformat(),
                "last_used_at": item.token.last_used_at.isoformat() if item.token.last_used_at else None,
                "revoked_at": item.token.revoked_at.isoformat() if item.token.revoked_at else None,
            }
            for item in list_api_tokens(session, municipality_id=found.id)
        ]
    if as_json:
        click.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    for row in listed:
        state = f"widerrufen {row['revoked_at'][:16]}" if row["revoked_at"] else "aktiv"
        used = row["last_used_at"][:16] if row["last_used_at"] else "nie benutzt"
        click.echo(f"{row['id']:>4}  {row['name']:<20} {row['user']:<32} {used:<16}  {state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out when there is only one.")
def token_revoke(token_id: int, slug: str | None) -> None:
    """Revoke the token with this id (see `rathaus token list`); it stops working at once."""
    from hub.tenancy.administration import revoke_token
    from hub.tenancy.service import get_municipality

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        revoked = revoke_token(session, municipality_id=found.id, actor_id=None, token_id=token_id).token
        click.echo(f"Token {revoked.id} ({revoked.name}) ist widerrufen.")


@main.group()
def channel() -> None:
    """Channel accounts: one per provider account (a number, a bot, a page, a mailbox)."""


@channel.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--show-secrets", is_flag=True, help="Include tokens and secrets (for the provider's console).")
def channel_list(as_json: bool, show_secrets: bool) -> None:
    from hub.tenancy.service import describe_channel_account, list_channel_accounts

    settings = get_settings()
    with session_scope() as session:
        described = [
            describe_channel_account(settings, account, show_secrets=show_secrets)
            for account in list_channel_accounts(session)
        ]
    if as_json:
        click.echo(json.dumps(described, indent=2, ensure_ascii=False))
        return
    for item in described:
        where = item["webhook_url"] or f"SMTP {item['smtp_listener']}"
        click.echo(f"{item['id']:>4}  {item['kind']:<9} {item['address']:<32} {where}")


def _parse_pairs(kind: str, pairs: tuple[str, ...], *, secret: bool) -> dict[str, Any]:
    """KEY=VALUE pairs of the adapter's settings (secrets or config), each read as the setting's type."""
    what = "--secret" if secret else "--config"
    fields = {field.key: field for field in adapter_class(kind).configuration.fields() if field.secret == secret}
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: erwartet SCHLÜSSEL=WERT", param_hint=what)
        if key not in fields:
            raise click.BadParameter(f"{key!r} gibt es für {kind} nicht; bekannt: {', '.join(fields)}", param_hint=what)
        try:
            parsed[key] = fields[key].parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint=what) from None
    return parsed


def _settings_help() -> str:
    """Per kind the settings `channel add` takes, from each adapter's configuration."""
    lines = []
    for adapter in adapter_classes():
        fields = adapter.configuration.fields()
        for secret, option in ((False, "--config"), (True, "--secret")):
            keys = [f"{field.key}{'*' if field.required else ''}" for field in fields if field.secret == secret]
            lines.append(f"{adapter.kind} {option}: {', '.join(keys)}")
    footer = "* required; a required secret not given is generated (webhook secrets are meant to be)."
    return "\b\n" + "\n".join(lines) + "\n\n" + footer


@channel.command("add", epilog=_settings_help())
@click.option("--kind", required=True, type=click.Choice(known_kinds()))
@click.option("--name", required=True)
@click.option("--config", "config_pairs", multiple=True, help="KEY=VALUE, e.g. phone_number=+4930123456")
@click.option("--secret", "secret_pairs", multiple=True, help="KEY=VALUE, e.g. auth_token=…")
@click.option("--municipality", "slug", default=None)
def channel_add(
    kind: str,
    name: str,
    config_pairs: tuple[str, ...],
    secret_pairs: tuple[str, ...],
    slug: str | None,
) -> None:
    """Connect a provider account; prints the webhook URL to paste into the provider's console."""
    from hub.tenancy.service import create_channel_account, get_municipality, webhook_url

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        account = create_channel_account(
            session,
            municipality_id=found.id,
            kind=kind,
            name=name,
            config=_parse_pairs(kind, config_pairs, secret=False),
            secrets_=_parse_pairs(kind, secret_pairs, secret=True),
        )
        click.echo(f"Kanal {account.id} angelegt. Webhook: {webhook_url(get_settings(), account) or 'SMTP-Empfang'}")


@main.group()
def dkim() -> None:
    """DKIM signatures of outbound mail."""


@dkim.command("generate")
@click.option("--town", "slug", required=True, help="Slug of the municipality.")
@click.option("--selector", default="rathaus", show_default=True, help="DNS selector; a new one for each new key.")
def dkim_generate(slug: str, selector: str) -> None:
    """Make the town's signing key for all its mailboxes and print the DNS TXT record to publish."""
    from hub.tenancy.mail_signing import generate_dkim_key
    from hub.tenancy.service import get_municipality

    with _domain_errors(), session_scope() as session:
        found = get_municipality(session, slug=slug)
        assert found.id is not None
        records = generate_dkim_key(session, municipality_id=found.id, selector=selector)
    click.echo("Neuer DKIM-Schlüssel gespeichert. Bitte diesen TXT-Eintrag im DNS veröffentlichen:")
    for record in records:
        # Zone-file syntax; the value in strings of at most 255 characters (RFC 1035 §3.3.14).
        chunks = " ".join(f'"{record.text[i : i + 255]}"' for i in range(0, len(record.text), 255))
        click.echo(f"{record.name}. IN TXT ( {chunks} )")


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except DomainError as error:
        raise click.ClickException(str(error)) from None


main.add_command(sandbox)
main.add_command(broadcast)
main.add_command(consultations)
main.add_command(subscribers)
main.add_command(open311)

if __name__ == "__main__":
    main()
