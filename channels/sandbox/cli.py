"""`rathaus sandbox ...`: run the provider emulators, and act as a citizen through them."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import httpx

from channels.sandbox.client import SandboxClient, SandboxError

# The defaults of --url and of serve's options are not here: `rathaus` passes its settings
# (RATHAUS_SANDBOX_HOST, _PORT, _SMTP_PORT) as click's default_map, see hub/cli.py.


def _client(ctx: click.Context) -> SandboxClient:
    return SandboxClient(ctx.obj["sandbox_url"])


def _show(result: Any) -> None:
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


@click.group()
@click.option("--url", required=True, show_default=True, help="Where the sandbox runs.")
@click.pass_context
def sandbox(ctx: click.Context, url: str) -> None:
    """The provider emulators: write as a citizen, see what citizens received."""
    ctx.ensure_object(dict)
    ctx.obj["sandbox_url"] = url


@sandbox.command("serve")
@click.option("--host", required=True, show_default=True)
@click.option("--port", type=int, required=True, show_default=True, help="HTTP port (provider APIs and /sandbox).")
@click.option("--smtp-port", type=int, required=True, show_default=True, help="SMTP sink for the hub's outgoing mail.")
def serve(host: str, port: int, smtp_port: int) -> None:
    """Run the emulators alone (`rathaus serve --demo` starts them itself)."""
    from channels.sandbox.server import main

    main(host=host, http_port=port, smtp_port=smtp_port)


@contextmanager
def _reaching(ctx: click.Context) -> Iterator[None]:
    """One line in German and exit code 1 when the sandbox refuses or cannot be reached, not a traceback."""
    try:
        yield
    except SandboxError as error:
        raise click.ClickException(f"Sandbox antwortet {error.status_code}: {error.detail}") from None
    except httpx.TransportError as error:
        waited = "antwortet nicht" if isinstance(error, httpx.TimeoutException) else "ist nicht erreichbar"
        raise click.ClickException(
            f"Die Sandbox unter {ctx.obj['sandbox_url']} {waited}. Läuft `rathaus serve --demo` oder "
            "`rathaus sandbox serve`? Den Port nennt RATHAUS_SANDBOX_PORT (oder --url)."
        ) from None


def _call(ctx: click.Context, action: Any) -> None:
    with _reaching(ctx):
        _show(action())


@sandbox.command("sms")
@click.option("--from", "sender", default="+4915112345678", show_default=True, help="The citizen's mobile number.")
@click.option("--to", default=None, help="The hub's number (default: the only Twilio account).")
@click.option("--text", required=True)
@click.pass_context
def sms(ctx: click.Context, sender: str, to: str | None, text: str) -> None:
    """Send an SMS to the hub, signed as Twilio signs it."""
    _call(ctx, lambda: _client(ctx).send_sms(from_=sender, to=to, body=text))


@sandbox.command("whatsapp")
@click.option("--from", "sender", default="+4917612345678", show_default=True, help="The citizen's mobile number.")
@click.option("--to", default=None, help="The hub's WhatsApp number (default: the only WhatsApp account).")
@click.option("--text", default="")
@click.option(
    "--name", "profile_name", default="Erika Mustermann", show_default=True, help="The WhatsApp profile name."
)
@click.option("--location", default=None, help="A shared place as LAT,LON, e.g. 52.5163,13.3777.")
@click.option("--button", default=None, help="Press a button the hub sent: its payload.")
@click.option("--hours-ago", default=0.0, type=float, help="When the citizen wrote (over 24 closes the window).")
@click.pass_context
def whatsapp(ctx: click.Context, sender: str, to: str | None, text: str, profile_name: str, location: str | None,
             button: str | None, hours_ago: float) -> None:  # fmt: skip
    """Send a WhatsApp message (text, a place or a button press) to the hub, signed as Twilio signs it."""
    place = None
    if location:
        latitude, _, longitude = location.partition(",")
        try:
            place = (float(latitude), float(longitude))
        except ValueError:
            raise click.BadParameter("LAT,LON, e.g. 52.5163,13.3777", param_hint="--location") from None
    _call(ctx, lambda: _client(ctx).send_whatsapp(
        sender, text, to, profile_name=profile_name, location=place, button_payload=button, hours_ago=hours_ago,
    ))  # fmt: skip


@sandbox.command("telegram")
@click.option("--chat-id", default=421337001, show_default=True, type=int)
@click.option("--name", "first_name", default="Erika", show_default=True)
@click.option("--language", default="de", show_default=True)
@click.option("--text", required=True)
@click.pass_context
def telegram(ctx: click.Context, chat_id: int, first_name: str, language: str, text: str) -> None:
    """Write to the bot, as a Telegram update with the webhook's secret token."""
    _call(
        ctx,
        lambda: _client(ctx).send_telegram(chat_id=chat_id, text=text, first_name=first_name, language_code=language),
    )


@sandbox.command("messenger")
@click.option("--psid", default="7654321098765432", show_default=True, help="The citizen's page-scoped id.")
@click.option("--first-name", default=None, help="The name the Page's User Profile API tells from now on.")
@click.option("--last-name", default=None)
@click.option("--text", required=True)
@click.pass_context
def messenger(ctx: click.Context, psid: str, first_name: str | None, last_name: str | None, text: str) -> None:
    """Send a Messenger message to the page, signed with the app secret."""
    _call(
        ctx,
        lambda: _client(ctx).send_messenger(psid=psid, text=text, first_name=first_name, last_name=last_name),
    )


@sandbox.command("comment")
@click.option("--from-id", default="1234567890123456", show_default=True)
@click.option("--name", "from_name", default="Jürgen Schäfer", show_default=True)
@click.option("--post-id", required=True, help="The page post the comment is under, e.g. <page id>_<n>.")
@click.option("--text", required=True)
@click.pass_context
def comment(ctx: click.Context, from_id: str, from_name: str, post_id: str, text: str) -> None:
    """Comment under one of the page's posts."""
    _call(ctx, lambda: _client(ctx).post_comment(from_id=from_id, from_name=from_name, post_id=post_id, message=text))


@sandbox.command("email")
@click.option("--from", "sender", default="erika.mustermann@example.org", show_default=True)
@click.option("--name", "from_name", default="Erika Mustermann", show_default=True)
@click.option("--subject", default="Anfrage", show_default=True)
@click.option("--text", required=True)
@click.option("--charset", default="utf-8", show_default=True, type=click.Choice(["utf-8", "iso-8859-1"]))
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def email(
    ctx: click.Context,
    sender: str,
    from_name: str,
    subject: str,
    text: str,
    charset: str,
    attachments: tuple[Path, ...],
) -> None:
    """Mail the hub's mailbox through its SMTP listener."""
    files = [
        (path.name, mimetypes.guess_type(path.name)[0] or "application/octet-stream", path.read_bytes())
        for path in attachments
    ]
    _call(
        ctx,
        lambda: _client(ctx).send_email(
            from_=sender, from_name=from_name, subject=subject, text=text, charset=charset, attachments=files
        ),
    )


@sandbox.command("outbox")
@click.option("--kind", type=click.Choice(["twilio", "telegram", "facebook", "email"]), default=None)
@click.option("--to", default=None, help="Only what this citizen received.")
@click.pass_context
def outbox(ctx: click.Context, kind: str | None, to: str | None) -> None:
    """What citizens received from the hub, oldest first."""
    with _reaching(ctx):
        items = _client(ctx).outbox(kind=kind, to=to)
    for item in items:
        click.echo(f"{item['received_at']}  {item['kind']:<9} an {item['to']}: {item['text']}")


@sandbox.command("meetings")
@click.option("--kind", type=click.Choice(["bigbluebutton", "jitsi"]), default=None)
@click.pass_context
def meetings(ctx: click.Context, kind: str | None) -> None:
    """The video rooms and who followed a join link into them, oldest first."""
    with _reaching(ctx):
        items = _client(ctx).meetings(kind=kind)
    for item in items:
        state = "läuft" if item["running"] else ("beendet" if item["ended"] else "leer")
        people = ", ".join(f"{a['name']}{' (Moderation)' if a['moderator'] else ''}" for a in item["attendees"])
        click.echo(f"{item['kind']:<13} {item['meeting_id']}  {item['name']} [{state}]: {people or '-'}")


@sandbox.group("warning")
def warning() -> None:
    """Act as the federal warning API: publish, update and cancel official warnings."""


@warning.command("publish")
@click.option("--provider", type=click.Choice(["MOWAS", "KATWARN", "BIWAPP", "DWD", "LHP", "POLICE"]),
              default="MOWAS", show_default=True)  # fmt: skip
@click.option("--severity", type=click.Choice(["Extreme", "Severe", "Moderate", "Minor"]), default="Severe",
              show_default=True)  # fmt: skip
@click.option("--headline", required=True)
@click.option("--description", default="")
@click.option("--instruction", default="")
@click.option("--ars", "region_keys", multiple=True, required=True, help="A 12-digit regional key (repeatable).")
@click.option("--area", default="", help="The area's name (areaDesc).")
@click.pass_context
def warning_publish(ctx: click.Context, provider: str, severity: str, headline: str, description: str,
                    instruction: str, region_keys: tuple[str, ...], area: str) -> None:  # fmt: skip
    """A new warning on the dashboards of the regions it is for."""
    _call(ctx, lambda: _client(ctx).publish_warning(
        headline=headline, region_keys=region_keys, provider=provider, severity=severity, description=description,
        instruction=instruction, area=area,
    ))  # fmt: skip


@warning.command("update")
@click.argument("warning_id")
@click.option("--severity", type=click.Choice(["Extreme", "Severe", "Moderate", "Minor"]), default=None)
@click.option("--headline", default=None)
@click.option("--description", default=None)
@click.option("--instruction", default=None)
@click.pass_context
def warning_update(ctx: click.Context, warning_id: str, severity: str | None, headline: str | None,
                   description: str | None, instruction: str | None) -> None:  # fmt: skip
    """The warning's next version (msgType Update) with what changed."""
    changes = {"severity": severity, "headline": headline, "description": description, "instruction": instruction}
    _call(ctx, lambda: _client(ctx).update_warning(warning_id, **{k: v for k, v in changes.items() if v is not None}))


@warning.command("cancel")
@click.argument("warning_id")
@click.pass_context
def warning_cancel(ctx: click.Context, warning_id: str) -> None:
    """The warning's next version, msgType Cancel: the all-clear."""
    _call(ctx, lambda: _client(ctx).cancel_warning(warning_id))
