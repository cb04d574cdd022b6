"""`rathaus open311 ...`: the API keys of the apps that file requests through Open311 (issue, list, revoke)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from hub.db import session_scope
from hub.errors import DomainError
from hub.open311 import service
from hub.tenancy.service import get_municipality


@click.group()
def open311() -> None:
    """Open311 GeoReport v2: keys of client apps."""


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@open311.command("key")
@click.option("--name", required=True, help="The app the key is for, e.g. 'Stadt-App'.")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def issue(name: str, slug: str | None) -> None:
    """Issue a key for a client app; it is shown once."""
    with _refusals(), session_scope() as session:
        town = get_municipality(session, slug=slug)
        assert town.id is not None
        client, key = service.issue_key(session, municipality_id=town.id, name=name)
        click.echo(f"Anwendung {client.id} ({client.name}), api_key: {key}")


@open311.command("list")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def list_keys(slug: str | None) -> None:
    """Every client app with when its key was last used and whether it is revoked."""
    with _refusals(), session_scope() as session:
        town = get_municipality(session, slug=slug)
        assert town.id is not None
        for client in service.list_clients(session, municipality_id=town.id):
            used = client.last_used_at.isoformat(timespec="minutes") if client.last_used_at else "nie benutzt"
            state = "widerrufen" if client.revoked_at else "aktiv"
            click.echo(f"{client.id:>4}  {client.name:<30} {used:<25} {state}")


@open311.command("revoke")
@click.argument("client_id", type=int)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def revoke(client_id: int, slug: str | None) -> None:
    """Revoke a client app's key; it stops working at once."""
    with _refusals(), session_scope() as session:
        town = get_municipality(session, slug=slug)
        assert town.id is not None
        client = service.revoke_client(session, municipality_id=town.id, client_id=client_id)
        click.echo(f"Der Schlüssel von {client.name} ist widerrufen.")
