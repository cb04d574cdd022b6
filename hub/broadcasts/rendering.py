"""Renders a broadcast for one recipient on one channel, and estimates SMS segments and cost up front.

The text staff write is itself a template with per-recipient variables ({{ name }},
{{ salutation }}); it is rendered in Jinja2's sandbox, since whoever drafts a broadcast must
not reach into Python. A recipient without a name gets "Guten Tag" as the salutation, and
where the text puts {{ name }}, its place closes up ("Hallo {{ name }}, …" reads "Hallo, …").
The result is then wrapped by the channel's template from templates/messages/<lang>/.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from channels.base import ChannelAdapter
from channels.registry import adapter_class
from hub.broadcasts import calendar_entry
from hub.broadcasts.models import Broadcast
from hub.errors import Phrase, template_error
from hub.i18n import N_, gettext_for
from hub.settings import get_settings
from hub.subscribers.topic_choice import HOW_TO_LEAVE
from hub.templating import close_name_gaps, greeting, render_message, render_page

SAMPLE_RECIPIENT = {"name": "Erika Mustermann", "district": "Mitte"}


@lru_cache
def _sandbox() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class MailLinks:
    """What an email broadcast links to; one pair per recipient."""

    municipality: str
    unsubscribe_url: str
    answer_url: str | None = None
    # The recipient's "Themen ändern" page (hub.subscribers.topic_choice); chats carry it too.
    topics_url: str | None = None


SAMPLE_LINKS = MailLinks(municipality="Gemeinde", unsubscribe_url="https://…/u/…", answer_url="https://…/a/…",
                         topics_url="https://…/themen/…")  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _wrapper(adapter: type[ChannelAdapter]) -> str:
    """The template that wraps the text, by what the channel carries: a mail, a short paid SMS, a chat.

    A chat whose broadcasts go out as approved templates (WhatsApp) has no buttons there either, so
    it gets the SMS text: answers typed as numbers, and STOP, which that provider does not handle.
    """
    if adapter.supports_subject:
        return "broadcast_email.txt.j2"
    plain = adapter.max_segments is not None or adapter.templates_outside_window
    return "broadcast_sms.txt.j2" if plain else "broadcast_chat.txt.j2"


def language_of(broadcast: Broadcast, wanted: str) -> str:
    """The recipient's language if the broadcast has a text in it, else German."""
    return wanted if wanted in broadcast.texts else "de"


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """A broadcast's text compiled once per process, not once per recipient (compiling cost more than sending)."""
    return _sandbox().from_string(source)


def render(
    broadcast: Broadcast, *, kind: str, language: str, recipient: dict[str, Any], links: MailLinks | None = None,
    calendar_url: str | None = None,
) -> Rendered:  # fmt: skip
    """The broadcast as one recipient gets it on `kind`; `calendar_url` links an invitation's calendar file."""
    lang = language_of(broadcast, language)
    variant = broadcast.texts[lang]
    variables = {**recipient, **greeting(lang, recipient.get("name"))}
    try:
        body = close_name_gaps(_compiled(variant["body"]).render(**variables))
    except TemplateError as error:
        raise template_error(error, what=Phrase(N_("Text ({lang})"), lang=lang), known=variables) from None
    context: dict[str, Any] = {
        "kind": broadcast.kind, "severity": broadcast.severity, "title": variant.get("subject") or broadcast.title,
        "body": body, "options": broadcast.options, "event": broadcast.event, "calendar_url": calendar_url,
        "how_to_leave": gettext_for(lang).gettext(HOW_TO_LEAVE), "topics_url": links.topics_url if links else None,
    }  # fmt: skip
    adapter = adapter_class(kind)
    if not adapter.supports_subject:
        return Rendered(text=render_message(_wrapper(adapter), lang, **context))
    mail_links = links or SAMPLE_LINKS
    context.update(
        municipality=mail_links.municipality, unsubscribe_url=mail_links.unsubscribe_url,
        answer_url=mail_links.answer_url if broadcast.options else None, topics_url=mail_links.topics_url,
    )  # fmt: skip
    return Rendered(
        text=render_message(_wrapper(adapter), lang, **context),
        subject=context["title"],
        html=render_page(f"messages/{lang}/broadcast_email.html.j2", **context),
        headers=(
            # RFC 8058: the HTTPS link unsubscribes with one POST, no further confirmation.
            ("List-Unsubscribe", f"<{mail_links.unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            # A broadcast is not an auto-reply: bounces come back, and robots should not answer.
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "OOF, AutoReply"),
        ),
    )


@dataclass(frozen=True)
class ChannelPreview:
    kind: str
    language: str
    text: str
    characters: int
    too_long: bool
    segments: int | None = None
    encoding: str | None = None


def preview(broadcast: Broadcast, kinds: list[str]) -> list[ChannelPreview]:
    """What each channel would carry, in each language, with SMS segments; checks the texts render."""
    previews = []
    for kind in kinds:
        adapter = adapter_class(kind)
        limit = adapter.max_body_chars
        # An invitation's calendar link is as long as the one sent: its length counts.
        link = None if adapter.supports_subject else calendar_entry.calendar_url(get_settings(), broadcast)
        for language in sorted(broadcast.texts):
            text = render(broadcast, kind=kind, language=language, recipient=SAMPLE_RECIPIENT, calendar_url=link).text
            segments, encoding = adapter.segments(text) or (None, None)
            previews.append(
                ChannelPreview(
                    kind=kind, language=language, text=text, characters=len(text), too_long=len(text) > limit,
                    segments=segments, encoding=encoding,
                )
            )  # fmt: skip
    return previews
