"""The `rathaus subscribers` commands: topics, districts, the subscriber list, CSV import, GDPR export and erasure."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlmodel import Session

from hub.contacts import gdpr
from hub.db import session_scope
from hub.errors import DomainError
from hub.subscribers import catalogue, consent, importer, listing
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality

_municipality_option = click.option(
    "--municipality", "slug", default=None, help="Slug; may be left out when there is only one."
)


@contextmanager
def _tenant(slug: str | None) -> Iterator[tuple[Session, Municipality, int]]:
    """A committing session and the municipality; domain errors become a clean CLI error."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            yield session, municipality, municipality.id
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def subscribers() -> None:
    """Subscribers: topics, districts, import, GDPR export and erasure."""


@subscribers.group()
def topics() -> None:
    """Topics subscribers can choose."""


@topics.command("list")
@_municipality_option
def topics_list(slug: str | None) -> None:
    with _tenant(slug) as (session, _, municipality_id):
        for topic in catalogue.list_topics(session, municipality_id=municipality_id):
            warning = "  (Warnungen)" if topic.is_warning else ""
            click.echo(f"{topic.key:<20} {topic.name_de} / {topic.name_en}{warning}")


@topics.command("add")
@click.argument("key")
@click.argument("name_de")
@click.option("--name-en", default=None, help="English name (default: the German one).")
@click.option("--warning", is_flag=True, help="Warnings on this topic may go out in quiet hours.")
@_municipality_option
def topics_add(key: str, name_de: str, name_en: str | None, warning: bool, slug: str | None) -> None:
    with _tenant(slug) as (session, _, municipality_id):
        topic = catalogue.create_topic(
            session, municipality_id=municipality_id, key=key, name_de=name_de, name_en=name_en, is_warning=warning
        )
        click.echo(f"Thema {topic.key} angelegt.")


@subscribers.group()
def districts() -> None:
    """Districts (Ortsteile) broadcasts can be targeted at."""


@districts.command("list")
@_municipality_option
def districts_list(slug: str | None) -> None:
    with _tenant(slug) as (session, _, municipality_id):
        for district in catalogue.list_districts(session, municipality_id=municipality_id):
            click.echo(f"{district.key:<20} {district.name}")


@districts.command("add")
@click.argument("key")
@click.argument("name")
@_municipality_option
def districts_add(key: str, name: str, slug: str | None) -> None:
    with _tenant(slug) as (session, _, municipality_id):
        district = catalogue.create_district(session, municipality_id=municipality_id, key=key, name=name)
        click.echo(f"Ortsteil {district.key} angelegt.")


@subscribers.command("list")
@click.option("--state", type=click.Choice(consent.STATES), default=None)
@click.option("--topic", default=None, help="Topic key.")
@click.option("--district", default=None, help="District key.")
@click.option("--search", default=None, help="Part of a number, address or name.")
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=50, show_default=True)
@_municipality_option
def list_subscribers(
    state: str | None,
    topic: str | None,
    district: str | None,
    search: str | None,
    page: int,
    per_page: int,
    slug: str | None,
) -> None:
    """Subscribers with state, addresses, topics and district, newest change first."""
    with _tenant(slug) as (session, _, municipality_id):
        found = listing.list_subscribers(
            session,
            municipality_id=municipality_id,
            state=state,
            topic=topic,
            district=district,
            search=search,
            page=page,
            per_page=per_page,
        )
        for item in found.items:
            addresses = ", ".join(identity.address for identity in item.identities) or "-"
            chosen = " ".join(t.key for t in item.topics) or "alle Themen"
            place = " ".join(d.key for d in item.districts) or "ganze Stadt"
            click.echo(f"{item.contact.id:>6}  {item.subscription.state:<8} {addresses:<40} {chosen}; {place}")
        click.echo(f"Seite {found.page} von {max(found.pages, 1)}, {found.total} insgesamt.")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_municipality_option
def import_file(file: Path, slug: str | None) -> None:
    """Import a CSV list; every line is checked first, and if one is wrong nothing is imported."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: die Datei ist nicht UTF-8-kodiert.") from None
    with _tenant(slug) as (session, municipality, _):
        checked = importer.validate(session, municipality=municipality, text=text)
        if not checked.ok:
            for line, problem in checked.problems:
                click.echo(f"{file.name}:{line}: {problem}", err=True)
            raise click.ClickException(f"{len(checked.problems)} Fehler; es wurde nichts importiert.")
        with click.progressbar(length=len(checked.rows), label="Importiere", file=sys.stderr) as bar:
            imported = importer.import_rows(
                session, municipality=municipality, rows=checked.rows, file_name=file.name, progress=bar.update
            )
    created = [item.address for item in imported if item.created]
    click.echo(f"{len(imported)} Abonnent(en) importiert, davon {len(created)} neu angelegt.")
    for address in created:
        click.echo(f"  neu: {address}")


@subscribers.command("export")
@click.argument("contact_id", type=int)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@_municipality_option
def export_contact(contact_id: int, output: Path | None, slug: str | None) -> None:
    """Everything about one citizen as JSON, for a request under DSGVO Artikel 15."""
    with _tenant(slug) as (session, _, municipality_id):
        document = json.dumps(gdpr.export_contact(session, municipality_id, contact_id), indent=2, ensure_ascii=False)
    if output is None:
        click.echo(document)
    else:
        output.write_text(document + "\n", encoding="utf-8")
        click.echo(f"Export von Kontakt {contact_id} in {output} geschrieben.", err=True)


@subscribers.command("erase")
@click.argument("contact_id", type=int)
@click.option("--yes", is_flag=True, help="Really erase; without it nothing happens.")
@_municipality_option
def erase_contact(contact_id: int, yes: bool, slug: str | None) -> None:
    """Erase a citizen's personal data under DSGVO Artikel 17; counts stay."""
    if not yes:
        raise click.ClickException("Löschen kann nicht rückgängig gemacht werden: bitte mit --yes bestätigen.")
    with _tenant(slug) as (session, _, municipality_id):
        kept = gdpr.erase_contact(session, municipality_id=municipality_id, contact_id=contact_id, actor_id=None)
    click.echo(
        f"Kontakt {contact_id} gelöscht; erhalten bleiben {kept['messages']} Nachrichten, "
        f"{kept['deliveries']} Zustellungen und {kept['survey_answers']} Umfrageantworten (ohne Inhalt)."
    )
