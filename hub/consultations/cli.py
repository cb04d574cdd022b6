"""`rathaus consultations ...`: the series, their sessions with bookings, cancelling one, and the video platform."""

from __future__ import annotations

import click

from channels.video import video_platform_kinds
from hub.consultations import rooms, service
from hub.consultations import sessions as held_sessions
from hub.consultations.recurrence import zone
from hub.db import session_scope
from hub.errors import DomainError
from hub.tenancy.service import get_municipality
from workers.app import enqueue_send


@click.group()
def consultations() -> None:
    """Consultation hours: series, sessions, bookings."""


@consultations.command("list")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def list_series(slug: str | None) -> None:
    """Each series with its recurrence, places and free places in the booking window."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            for series in service.list_series(session, municipality_id=municipality.id):
                views = service.upcoming(session, series=series, municipality=municipality)
                click.echo(
                    f"{series.id}\t{series.title}\t{series.rrule} {series.start_time}-{series.end_time}\t"
                    f"{len(views)} Termine, {sum(view.free for view in views)} Plätze frei"
                )
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@consultations.command("sessions")
@click.argument("series_id", type=int)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def sessions(series_id: int, slug: str | None) -> None:
    """The series' sessions in the booking window, each slot with its bookings, in the town's time."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            series = service.get_series(session, municipality_id=municipality.id, series_id=series_id)
            tz = zone(municipality.timezone)
            for view in service.upcoming(session, series=series, municipality=municipality):
                click.echo(f"{view.session.starts_at.astimezone(tz):%d.%m.%Y %H:%M}\t{view.free} frei")
                for slot in view.slots:
                    for booking in slot.bookings:
                        click.echo(f"  {slot.slot.starts_at.astimezone(tz):%H:%M}\t{booking.reference}\t{booking.name}")
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@consultations.command("cancel-session")
@click.argument("session_id", type=int)
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def cancel_session(session_id: int, slug: str | None) -> None:
    """Cancels a session and its bookings; every booked citizen is told on their channel, with free slots offered."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            told = held_sessions.cancel_session(session, municipality=municipality, session_id=session_id)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    for message_id in told.message_ids:
        enqueue_send(message_id)
    click.echo(f"Abgesagt; {len(told.message_ids)} Buchende benachrichtigt.")
    for booking in told.unreached:
        click.echo(f"Nicht erreichbar, bitte anrufen: {booking.reference}\t{booking.name}")


@consultations.group("video")
def video() -> None:
    """The town's video platform for consultations held by video."""


@video.command("set")
@click.option("--kind", required=True, type=click.Choice(video_platform_kinds()))
@click.option("--config", "config_pairs", multiple=True, help="KEY=VALUE, a setting of the platform")
@click.option("--secret", "secret_pairs", multiple=True, help="KEY=VALUE, a secret of the platform (never shown)")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def video_set(kind: str, config_pairs: tuple[str, ...], secret_pairs: tuple[str, ...], slug: str | None) -> None:
    """Sets the platform; secrets not given again keep their stored value."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            account = rooms.configure_platform(
                session, municipality_id=municipality.id, actor_id=None, kind=kind,
                values=rooms.parse_pairs(kind, config_pairs + secret_pairs),
            )  # fmt: skip
            click.echo(rooms.settings_summary(account))
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@video.command("show")
@click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")
def video_show(slug: str | None) -> None:
    """The platform and its settings; secrets only as set."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            account = rooms.platform_account(session, municipality_id=municipality.id)
            click.echo(rooms.settings_summary(account) if account else "Keine Videoplattform eingerichtet.")
    except DomainError as error:
        raise click.ClickException(str(error)) from None
