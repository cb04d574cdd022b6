"""Turns messages on every channel into problem reports: a pipeline step that runs once the message is in its case.

What makes a message a report (decided here, documented in docs/entwicklung/maengelmelder.md):
- a text starting with a category's key ("LATERNE defekt Hauptstraße 12", "Schlagloch Lindenweg 7"),
  or with one of the town's report keywords ("MELDUNG …", preference problem_keywords), the
  category then asked for unless the next word is one;
- a location shared in a chat (Telegram, Messenger);
- a photo whose EXIF holds the place it was taken (mail; chat photos only count in a report, see below);
- any message in a conversation that already is a report: it adds the place, photo or category
  still missing, and a category button's payload ("problem:<key>") files it. Photos of Telegram
  and Messenger arrive as the provider's reference and are fetched through the channel then.
An address in the text is geocoded; a place outside the town gets the friendly answer naming
who is responsible. What is missing is asked for, with buttons where the channel has them.
Group chats and public comments never become reports: the answers carry the status of one person.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from channels.base import Choice
from channels.registry import adapter_class
from hub.errors import DomainError
from hub.inbox.context import InboundContext
from hub.inbox.models import Attachment
from hub.inbox.pipeline import acknowledge
from hub.inbox.service import queue_outbound
from hub.problems import service
from hub.problems.models import ProblemCategory, ProblemReport
from hub.problems.places import district_at, geocode
from hub.templating import render_message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference
from hub.webcases.photos import CheckedPhoto

PAYLOAD_PREFIX = "problem:"
# "Hauptstraße 12", "Am Markt 1", "Lange Str. 3a": up to four capitalised words, then a house number.
_ADDRESS = re.compile(r"((?:[A-ZÄÖÜ][\w.\-]*\s+){1,4}\d{1,4}\s?[a-zA-Z]?)(?!\w)")
_PUNCTUATION = ".,:;!?"


def _plain(word: str) -> str:
    """A typed word as a category key: lower case, umlauts spelled out ("Müll" → "muell")."""
    word = word.strip(_PUNCTUATION).lower()
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        word = word.replace(umlaut, spelled)
    return word


def read_text(session: Session, *, municipality: Municipality, text: str) -> tuple[bool, ProblemCategory | None, str]:
    """(a report keyword or button was used, the category named, the rest of the text to find an address in)."""
    assert municipality.id is not None
    stripped = text.strip()
    if stripped.startswith(PAYLOAD_PREFIX):
        key = stripped.removeprefix(PAYLOAD_PREFIX)
        return True, service.find_category(session, municipality_id=municipality.id, word=key), ""
    words = stripped.split()
    keywords = {word.upper() for word in preference(municipality, "problem_keywords")}
    keyword = bool(words) and words[0].strip(_PUNCTUATION).upper() in keywords
    if keyword:
        words = words[1:]
    category = service.find_category(session, municipality_id=municipality.id, word=_plain(words[0])) if words else None
    if category is not None:
        words = words[1:]
    return keyword, category, " ".join(words)


def find_address(text: str) -> str | None:
    """The last street and house number in a text, or None."""
    found = _ADDRESS.findall(text)
    return found[-1].strip() if found else None


class _Answers:
    """What the step says back in the report's conversation, in the citizen's language."""

    def __init__(self, ctx: InboundContext, municipality: Municipality) -> None:
        assert ctx.contact is not None
        self.ctx, self.municipality, self.language = ctx, municipality, ctx.contact.language
        self.buttons = adapter_class(ctx.account.kind).supports_choices
        # Written only at the end, after the acknowledgement of a new case, so that they follow it.
        self.pending: list[tuple[str, list[Choice]]] = []

    def say(self, text: str, choices: list[Choice] | None = None) -> None:
        self.pending.append((text, choices if choices and self.buttons else []))

    def send(self) -> None:
        for text, choices in self.pending:
            message = queue_outbound(
                self.ctx.session, conversation=self.ctx.conversation, text=text, author=None, automated=True,
                choices=choices,
            )  # fmt: skip
            assert message.id is not None
            self.ctx.to_send.append(message.id)

    def template(self, name: str, choices: list[Choice] | None = None, **context: object) -> None:
        overrides = preference(self.municipality, "texts")
        text = render_message(name, self.language, overrides=overrides, buttons=self.buttons, **context)
        self.say(text, choices)

    def refusal(self, error: DomainError) -> None:
        self.say(error.text(self.language))


def _photos(ctx: InboundContext) -> list[Attachment]:
    assert ctx.message is not None
    return list(
        ctx.session.exec(
            select(Attachment)
            .where(Attachment.message_id == ctx.message.id, col(Attachment.content_type).startswith("image/"))
            .order_by(col(Attachment.id))
        )
    )


def record_problem_report(ctx: InboundContext) -> str | None:
    """Makes the message (part of) a problem report where it is one; other messages go on unchanged."""
    assert ctx.conversation is not None and ctx.conversation.id is not None
    if ctx.inbound.shared_chat or ctx.inbound.kind == "comment":
        return None
    session, settings = ctx.session, ctx.settings
    municipality = session.get(Municipality, ctx.account.municipality_id)
    assert municipality is not None and municipality.id is not None
    report = service.report_of(session, conversation_id=ctx.conversation.id)
    keyword, category, rest = read_text(session, municipality=municipality, text=ctx.inbound.text)
    answers = _Answers(ctx, municipality)

    location = ctx.inbound.location
    # A chat photo is only the provider's reference until fetched: it is, once the message is
    # (part of) a report. A photo alone in a chat holds no place (Telegram and Messenger drop EXIF).
    fetch = report is not None or keyword or category is not None or location is not None
    checked: list[tuple[Attachment, CheckedPhoto]] = []
    refusals: list[DomainError] = []
    for attachment in _photos(ctx):
        if attachment.data is None and not fetch:
            continue
        try:
            checked.append(
                (attachment, service.checked_photo(settings=settings, account=ctx.account, attachment=attachment))
            )
        except DomainError as error:
            refusals.append(error)
    gps = next((photo.gps for _, photo in checked if photo.gps is not None), None)
    if report is None and not (keyword or category or location or gps):
        return None

    point, address = None, None
    if report is None or report.lat is None:
        if location is not None:
            point = (location.lat, location.lon)
        elif (typed := find_address(rest)) is not None:
            try:
                place = geocode(session, settings=settings, municipality=municipality, address=typed)
                point, address = (place.lat, place.lon), place.address
            except DomainError as error:
                refusals.append(error)
        if point is None and gps is not None:
            point = gps
    if point is not None:
        try:
            district_at(session, municipality=municipality, lat=point[0], lon=point[1])
        except DomainError as outside:
            if report is None:
                # Not the town's to handle: no report, only the friendly answer in the case.
                return _finish(ctx, answers, [outside], "not a report: the place is outside the town")
            refusals.append(outside)
            point = None

    report = report or service.open_report(session, conversation=ctx.conversation)
    was_complete = _complete(report)
    if point is not None:
        service.set_place(
            session, settings=settings, municipality=municipality, report=report, lat=point[0], lon=point[1],
            address=address,
        )  # fmt: skip
    if category is not None and report.category_id != category.id:
        service.set_category(session, report=report, category=category)
    for attachment, photo in checked:
        service.add_photo(session, report=report, attachment=attachment, checked=photo)
    _ask_or_thank(session, answers, municipality, report, was_complete)
    return _finish(ctx, answers, refusals, f"report {report.id}")


def _complete(report: ProblemReport) -> bool:
    return report.category_id is not None and report.lat is not None


def _ask_or_thank(
    session: Session, answers: _Answers, municipality: Municipality, report: ProblemReport, was_complete: bool
) -> None:
    assert municipality.id is not None and answers.ctx.conversation is not None
    if report.category_id is None:
        categories = service.list_categories(session, municipality_id=municipality.id)
        answers.template(
            "problem_ask_category.txt.j2",
            choices=[
                Choice(label=service.category_name(item, answers.language), payload=f"{PAYLOAD_PREFIX}{item.key}")
                for item in categories
            ],
            options=[item.key.upper() for item in categories],
        )
    elif report.lat is None:
        answers.template("problem_ask_place.txt.j2", chat=answers.buttons)
    elif not was_complete and not answers.ctx.is_new_conversation:
        category = session.get(ProblemCategory, report.category_id)
        assert category is not None
        answers.template(
            "problem_complete.txt.j2",
            reference=answers.ctx.conversation.reference,
            category=service.category_name(category, answers.language),
            address=report.address,
        )


def _finish(ctx: InboundContext, answers: _Answers, refusals: list[DomainError], outcome: str) -> str | None:
    """Sends what the step has to say after the acknowledgement of a new case; says nothing: the inbox goes on."""
    if not answers.pending and not refusals:
        return None
    said = acknowledge(ctx) if ctx.is_new_conversation else "stored"
    asks, answers.pending = answers.pending, []
    for error in refusals:
        answers.refusal(error)
    answers.pending.extend(asks)
    answers.send()
    return f"{said}; {outcome}"
