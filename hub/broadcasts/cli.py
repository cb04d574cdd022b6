"""`rathaus broadcast ...`: draft, approve, follow and report broadcasts from the command line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from sqlmodel import Session

from channels.registry import channel_labels, known_kinds
from hub.broadcasts import invitations, service
from hub.broadcasts.models import Broadcast
from hub.broadcasts.pages import STATUS_LABELS
from hub.db import session_scope, utcnow
from hub.errors import DomainError
from hub.settings import get_settings
from hub.subscribers.catalogue import district_by_key, topics_by_keys
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.service import get_municipality, get_user_by_email
from workers.app import enqueue_broadcast_start, enqueue_send

F = TypeVar("F", bound=Callable[..., Any])
MINUTES = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


@contextmanager
def _acting_as(email: str, slug: str | None) -> Iterator[tuple[Session, StaffUser]]:
    """A session and the staff user the command acts as (recorded in the audit trail)."""
    try:
        with session_scope() as session:
            municipality = get_municipality(session, slug=slug)
            assert municipality.id is not None
            yield session, get_user_by_email(session, municipality_id=municipality.id, email=email)
    except DomainError as error:
        raise click.ClickException(str(error)) from None


def _as_options(command: F) -> F:
    command = click.option("--as", "email", required=True, help="Email of the staff user acting.")(command)
    return click.option("--municipality", "slug", default=None, help="Slug; may be left out with one only.")(command)


@click.group()
def broadcast() -> None:
    """Announcements, warnings, surveys and invitations."""


@broadcast.command("create")
@click.option("--kind", type=click.Choice(["announcement", "warning", "all_clear", "survey", "invitation"]),
              default="announcement", show_default=True)  # fmt: skip
@click.option("--title", required=True)
@click.option("--text", "text_de", required=True, help="German text; {{ name }} is the recipient's name.")
@click.option("--text-en", default=None, help="English text (optional).")
@click.option("--severity", type=click.Choice(["Extreme", "Severe", "Moderate", "Minor"]), default=None)
@click.option("--follows", "follows_id", type=int, default=None, help="For an all-clear: the warning's id.")
@click.option("--topic", "topics", multiple=True, help="Topic key; repeat for several.")
@click.option("--district", "districts", multiple=True, help="District key; repeat for several.")
@click.option("--channel", "channels", multiple=True, type=click.Choice(known_kinds()))
@click.option("--fallback", is_flag=True, help="If a channel fails a recipient for good, try their next channel.")
@click.option("--option", "options", multiple=True, help="Survey answer or RSVP choice; repeat 2 to 9 times.")
@click.option("--send-at", type=click.DateTime(MINUTES), default=None, help="In UTC.")
@click.option("--starts-at", type=click.DateTime(MINUTES), default=None,
              help="Invitation: when the event begins, in UTC; it then carries a calendar entry.")  # fmt: skip
@click.option("--ends-at", type=click.DateTime(MINUTES), default=None, help="Invitation: when it ends, in UTC.")
@click.option("--where", default=None, help="Invitation: the place.")
@_as_options
def create(kind: str, title: str, text_de: str, text_en: str | None, severity: str | None, follows_id: int | None,
           topics: tuple[str, ...], districts: tuple[str, ...], channels: tuple[str, ...], fallback: bool,
           options: tuple[str, ...], send_at: datetime | None, starts_at: datetime | None, ends_at: datetime | None,
           where: str | None, email: str, slug: str | None) -> None:  # fmt: skip
    """Draft a broadcast; prints its id."""
    texts = {"de": {"body": text_de}} | ({"en": {"body": text_en}} if text_en else {})
    with _acting_as(email, slug) as (session, user):
        chosen_topics = topics_by_keys(session, municipality_id=user.municipality_id, words=topics)
        chosen_districts = [district_by_key(session, municipality_id=user.municipality_id, word=d) for d in districts]
        draft = service.Draft(
            kind=kind, title=title, texts=texts, severity=severity, follows_id=follows_id,
            topic_ids=[t.id for t in chosen_topics if t.id], district_ids=[d.id for d in chosen_districts if d.id],
            channel_kinds=channels, fallback=fallback, options=options,
            send_at=send_at.replace(tzinfo=UTC) if send_at else None, event={"where": where} if where else None,
            event_starts_at=starts_at.replace(tzinfo=UTC) if starts_at else None,
            event_ends_at=ends_at.replace(tzinfo=UTC) if ends_at else None,
        )  # fmt: skip
        created = service.create(session, author=user, draft=draft)
        session.flush()
        click.echo(f"Entwurf {created.id} angelegt ({created.kind}).")


@broadcast.command("list")
@click.option("--status", default=None)
@_as_options
def list_(status: str | None, email: str, slug: str | None) -> None:
    with _acting_as(email, slug) as (session, user):
        items, total = service.list_broadcasts(
            session, municipality_id=user.municipality_id, status=status, per_page=200
        )
        for item in items:
            click.echo(f"{item.id:>5}  {item.kind:<12} {item.status:<17} {item.recipient_count or '':>7}  {item.title}")
        click.echo(f"{total} insgesamt")


@broadcast.command("preview")
@click.argument("broadcast_id", type=int)
@_as_options
def preview(broadcast_id: int, email: str, slug: str | None) -> None:
    """Recipient count, each channel's text, SMS segments and cost."""
    with _acting_as(email, slug) as (session, user):
        found = service.preview_broadcast(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
        click.echo(json.dumps({**asdict(found), "channels": [asdict(c) for c in found.channels]}, indent=2,
                              ensure_ascii=False))  # fmt: skip


def _transition(name: str, broadcast_id: int, email: str, slug: str | None, **details: Any) -> None:
    with _acting_as(email, slug) as (session, user):
        changed = getattr(service, name)(session, actor=user, broadcast_id=broadcast_id, **details)
        session.flush()
        status, due, urgent = changed.status, changed.send_at, changed.kind in service.URGENT_KINDS
    if name in ("approve", "resume") and (name == "resume" or (due is not None and due <= utcnow())):
        enqueue_broadcast_start(broadcast_id, urgent=urgent)
    click.echo(f"Nachricht {broadcast_id}: {status}" + (f", Versand ab {due:%Y-%m-%d %H:%M} UTC" if due else ""))


@broadcast.command("approve")
@click.argument("broadcast_id", type=int)
@click.option("--emergency-reason", default=None,
              help="Where four eyes are required: send your own warning alone, for this reason (audited).")  # fmt: skip
@_as_options
def approve(broadcast_id: int, emergency_reason: str | None, email: str, slug: str | None) -> None:
    """Approve (mayor or admin); sends at once, at --send-at, or after quiet hours."""
    _transition("approve", broadcast_id, email, slug, emergency_reason=emergency_reason)


for _name, _help in (
    ("submit", "Hand a draft over for approval."),
    ("pause", "Hold a broadcast that is sending."),
    ("resume", "Continue a held broadcast."),
):

    def _command(broadcast_id: int, email: str, slug: str | None, _name: str = _name) -> None:
        _transition(_name, broadcast_id, email, slug)

    broadcast.command(_name, help=_help)(_as_options(click.argument("broadcast_id", type=int)(_command)))


def _tell(told: invitations.Told) -> None:
    """After the commit: the messages to those invited go to the workers; says what became of the broadcast."""
    for message_id in told.message_ids:
        enqueue_send(message_id)
    told_whom = f", {len(told.message_ids)} Nachrichten an Eingeladene" if told.message_ids else ""
    click.echo(f"Nachricht {told.broadcast.id}: {told.broadcast.status}{told_whom}")


@broadcast.command("cancel")
@click.argument("broadcast_id", type=int)
@_as_options
def cancel(broadcast_id: int, email: str, slug: str | None) -> None:
    """Stop a broadcast; nothing not yet sent goes out. An invitation already out is called off with all invited."""
    with _acting_as(email, slug) as (session, user):
        told = invitations.cancel(session, settings=get_settings(), actor=user, broadcast_id=broadcast_id)
    _tell(told)


@broadcast.command("reschedule")
@click.argument("broadcast_id", type=int)
@click.option("--starts-at", type=click.DateTime(MINUTES), required=True, help="The new beginning, in UTC.")
@click.option("--ends-at", type=click.DateTime(MINUTES), default=None, help="The new end, in UTC.")
@click.option("--where", default=None, help="The new place; left out, the place stays.")
@_as_options
def reschedule(broadcast_id: int, starts_at: datetime, ends_at: datetime | None, where: str | None, email: str,
               slug: str | None) -> None:  # fmt: skip
    """A sent invitation's new time or place; everyone invited gets the next version of its calendar entry."""
    with _acting_as(email, slug) as (session, user):
        told = invitations.reschedule(
            session, settings=get_settings(), actor=user, broadcast_id=broadcast_id,
            starts_at=starts_at.replace(tzinfo=UTC), ends_at=ends_at.replace(tzinfo=UTC) if ends_at else None,
            where=where,
        )  # fmt: skip
    _tell(told)


@broadcast.command("report")
@click.argument("broadcast_id", type=int)
@click.option("--csv", "as_csv", is_flag=True, help="One line per recipient instead of the summary.")
@click.option("--follow", is_flag=True, help="Show a progress bar per channel until the broadcast has finished.")
@_as_options
def report(broadcast_id: int, as_csv: bool, follow: bool, email: str, slug: str | None) -> None:
    """Delivery report: queued, sent, delivered, failed, skipped, opted out, per channel."""
    with _acting_as(email, slug) as (session, user):
        if as_csv:
            click.echo(service.report_csv(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id),
                       nl=False)  # fmt: skip
            return
        found = service.report(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
    if follow:
        _follow(broadcast_id, email, slug)
        return
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


def follow_note(broadcast: Broadcast, municipality: Municipality, found: dict[str, Any], now: datetime) -> str:
    """What the broadcast is doing, in a line: waiting for the end of quiet hours, choosing recipients, sending."""
    status = STATUS_LABELS.get(broadcast.status, broadcast.status)
    if broadcast.status == "approved" and broadcast.send_at is not None and broadcast.send_at > now:
        local = broadcast.send_at.astimezone(ZoneInfo(municipality.timezone))
        # Approval moves a broadcast that is not a warning to the end of quiet hours: it waits there.
        if service.after_quiet_hours(municipality, broadcast.send_at - timedelta(minutes=1)) == broadcast.send_at:
            return f"{status}: Die Ruhezeit hält die Rundsendung an; sie geht am {local:%d.%m. um %H:%M} Uhr hinaus."
        return f"{status}: geht am {local:%d.%m. um %H:%M} Uhr hinaus."
    if found["recipients"] is None and broadcast.status == "sending":
        return f"{status}: Empfänger werden ausgewählt …"
    if found["recipients"] is not None:
        return f"{status}: {found['recipients']} Empfänger"
    return status


def _follow(broadcast_id: int, email: str, slug: str | None) -> None:
    """Redraws one bar per channel (delivered or settled out of all of its deliveries) until the broadcast ends."""
    labels = channel_labels()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        console=Console(), auto_refresh=False,
    ) as bars:  # fmt: skip
        state = bars.add_task("", total=None)
        channels: dict[str, TaskID] = {}
        while True:
            with _acting_as(email, slug) as (session, user):
                broadcast = service.get(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
                found = service.report(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
                municipality = session.get(Municipality, user.municipality_id)
                assert municipality is not None
                note = follow_note(broadcast, municipality, found, utcnow())
            finished = found["status"] in ("completed", "cancelled")
            bars.update(state, description=note, total=1, completed=1 if finished else 0, visible=True)
            for kind, counts in sorted(found["per_channel"].items()):
                total = sum(counts.values())
                settled = total - sum(counts[waiting] for waiting in ("queued", "claimed", "sending"))
                if kind not in channels:
                    channels[kind] = bars.add_task(kind, total=total)
                name = labels.get(kind, kind)
                failed = sum(counts[state] for state in service.FAILED_STATES)
                description = f"{name} ({failed} nicht erreicht)" if failed else name
                bars.update(channels[kind], total=total, completed=settled, description=description)
            bars.refresh()
            if finished:
                return
            time.sleep(1)
