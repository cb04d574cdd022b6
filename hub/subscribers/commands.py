"""Inbound pipeline step: STOP, START/ANMELDEN, HILFE and the subscription buttons, on every channel.

Keywords are whole messages (trimmed, case and trailing punctuation ignored), so "STOP bitte"
stays a question for staff. START may be followed by topic or district words. Telegram's
/start and Messenger's GET_STARTED open a button flow whose presses come back as postbacks
`sub:topic:<key>`, `sub:district:<key>` and `sub:done`. Everything else passes on unchanged
(survey answers belong to the broadcasts' step).

A command is answered and never becomes part of a case: it runs before the message is
threaded, so it and its answer stay on the contact (staff see them on the subscriber's page),
and an open case is not added to, nor a resolved one reopened. The outcome starts with "command:".

A provider's opt-out (the bot blocked, or removed from a group) is a STOP without words:
`stop_after_opt_out` records it the same way and answers nothing, as nothing can reach there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session

from channels.base import Choice, OptOut
from channels.registry import adapter_class
from hub.contacts.models import Contact
from hub.contacts.service import find_contact
from hub.errors import DomainError
from hub.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, gettext_for
from hub.inbox import service as inbox
from hub.inbox.context import InboundContext
from hub.subscribers import catalogue, consent, verification
from hub.subscribers.models import District, Topic
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference

OUTCOME_PREFIX = "command: "
TOPIC_PREFIX = "sub:topic:"
DISTRICT_PREFIX = "sub:district:"
DONE_PAYLOAD = "sub:done"
ALL_DISTRICTS = "*"
GET_STARTED = "GET_STARTED"

# The flow's own buttons; German msgids, shown in the subscriber's language.
DONE_LABEL = N_("Fertig")
ALL_DISTRICTS_LABEL = N_("Ganze Stadt")

CommandName = Literal["stop", "start", "help", "welcome", "topic", "district", "done", "phone", "code"]


@dataclass(frozen=True)
class Command:
    name: CommandName
    words: tuple[str, ...] = ()


def _normalise(text: str) -> str:
    # "Stop." and "stop!" are as clear as "STOP"; a citizen must not be messaged for a full stop.
    return " ".join(text.split()).strip(".!?").strip().casefold()


def parse_command(
    text: str,
    *,
    stop_words: list[str],
    start_words: list[str],
    help_words: list[str],
    phone_words: Sequence[str] = (),
) -> Command | None:
    """The command a message is, or None if it is an ordinary message (pure: no database)."""
    raw = text.strip()
    if raw.startswith(TOPIC_PREFIX):
        return Command("topic", (raw[len(TOPIC_PREFIX) :],))
    if raw.startswith(DISTRICT_PREFIX):
        return Command("district", (raw[len(DISTRICT_PREFIX) :],))
    if raw == DONE_PAYLOAD:
        return Command("done")
    if raw == GET_STARTED:
        return Command("welcome")
    normalised = _normalise(raw)
    if not normalised:
        return None
    first, _, rest = normalised.partition(" ")
    # Bot commands may name the bot: /start@MusterstadtBot.
    bot_command = first.split("@", 1)[0] if first.startswith("/") else None
    if bot_command == "/start":
        return Command("welcome")
    if bot_command == "/stop" and not rest:
        return Command("stop")
    if bot_command in ("/help", "/hilfe") and not rest:
        return Command("help")
    if normalised in {word.casefold() for word in stop_words}:
        return Command("stop")
    if normalised in {word.casefold() for word in help_words}:
        return Command("help")
    if first in {word.casefold() for word in start_words}:
        return Command("start", tuple(word for word in re.split(r"[\s,;]+", rest) if word))
    if first in {word.casefold() for word in phone_words} and rest:
        return Command("phone", (rest,))
    if re.fullmatch(r"\d{6}", normalised):
        return Command("code", (normalised,))
    return None


def apply_subscriber_commands(ctx: InboundContext) -> str | None:
    """Pipeline step (after store_message, before threading): answers a command, or lets the message pass."""
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    inbound = ctx.inbound
    # A public comment is not the place for subscriptions (robots never get this far in the pipeline).
    if inbound.kind in ("comment", "edit"):
        return None
    municipality = ctx.session.get(Municipality, ctx.account.municipality_id)
    assert municipality is not None
    # A mail with an empty body may carry its command in the subject.
    has_subject = adapter_class(ctx.account.kind).supports_subject
    text = inbound.text if inbound.text.strip() or not has_subject else inbound.subject or ""
    command = parse_command(
        text,
        stop_words=preference(municipality, "stop_keywords"),
        start_words=preference(municipality, "start_keywords"),
        help_words=preference(municipality, "help_keywords"),
        phone_words=preference(municipality, "phone_keywords"),
    )
    if command is None:
        return None
    handled = _Handler(ctx, municipality, ctx.contact, text).run(command)
    return None if handled is None else OUTCOME_PREFIX + handled


def stop_after_opt_out(session: Session, *, account: ChannelAccount, event_id: int, opt_out: OptOut) -> str:
    """Stops the subscription of the contact behind the address, with the provider's reason as evidence.

    An address no contact has was never subscribed, and no contact is made up for it.
    """
    adapter = adapter_class(account.kind)
    contact = find_contact(
        session, municipality_id=account.municipality_id, kind=adapter.identity.kind, address=opt_out.sender
    )
    if contact is None or contact.id is None:
        return "ignored: no contact has this address, nothing to stop"
    change = consent.stop(
        session,
        municipality_id=account.municipality_id,
        contact_id=contact.id,
        channel_kind=account.kind,
        source=adapter.consent_source,
        evidence={"inbound_event_id": event_id, "reason": opt_out.reason},
    )
    return f"opted out ({opt_out.reason})" if change.event else f"opted out ({opt_out.reason}), already stopped"


class _Handler:
    """Carries out one command for one message and queues the answer."""

    def __init__(self, ctx: InboundContext, municipality: Municipality, contact: Contact, text: str) -> None:
        assert municipality.id is not None and contact.id is not None and ctx.message is not None
        self.ctx = ctx
        self.evidence = {"message_id": ctx.message.id, "text": text.strip()[:160]}
        self.session = ctx.session
        self.municipality = municipality
        self.municipality_id: int = municipality.id
        self.contact_id: int = contact.id
        self.kind = ctx.account.kind
        adapter = adapter_class(self.kind)
        self.source = adapter.consent_source
        self.buttons = adapter.supports_choices
        self.subscription = consent.get_subscription(
            self.session, municipality_id=self.municipality_id, contact_id=self.contact_id
        )
        self.language = self.subscription.language if self.subscription else contact.language
        self.topics = catalogue.list_topics(self.session, municipality_id=self.municipality_id)
        self.districts = catalogue.list_districts(self.session, municipality_id=self.municipality_id)

    def run(self, command: Command) -> str | None:
        if command.name == "stop":
            return self.stop()
        if command.name == "start":
            return self.start(command.words)
        if command.name == "help":
            self.answer("help.txt.j2")
            return "help"
        if command.name in ("phone", "code"):
            if not self.buttons:
                return None  # on SMS and mail the number is known already; six digits are just a message
            return self.add_phone(command.words[0]) if command.name == "phone" else self.confirm_phone(command.words[0])
        if not self.buttons:
            # Buttons need a channel that shows them; SMS and mail get the keywords instead.
            self.answer("help.txt.j2")
            return "help"
        if command.name == "welcome":
            self.answer("subscribe_welcome.txt.j2", choices=self.topic_choices())
            return "welcome"
        if command.name == "topic":
            return self.toggle_topic(command.words[0])
        if command.name == "done":
            return self.done()
        return self.pick_district(command.words[0])

    # --- the commands ---------------------------------------------------------------------

    def stop(self) -> str:
        change = consent.stop(
            self.session,
            municipality_id=self.municipality_id,
            contact_id=self.contact_id,
            channel_kind=self.kind,
            source=self.source,
            evidence=self.evidence,
        )
        self.subscription = change.subscription
        self.answer("stop_confirmation.txt.j2")
        return "stop" if change.event else "stop (already stopped)"

    def start(self, words: tuple[str, ...]) -> str | None:
        chosen_topics: list[Topic] = []
        chosen_district: District | None = None
        unknown: list[str] = []
        for word in words:
            topic = catalogue.find_topic(self.session, municipality_id=self.municipality_id, word=word)
            district = catalogue.find_district(self.session, municipality_id=self.municipality_id, word=word)
            if topic is not None:
                chosen_topics.append(topic)
            elif district is not None:
                chosen_district = district
            else:
                unknown.append(word)
        if unknown:
            # "Anmelden Wohnsitz wie geht das" or "Anmelden Abfall, und wann kommt die Biotonne"
            # is a question for staff, not a typo of a topic.
            if len(unknown) > 1:
                return None
            self.answer("unknown_topics.txt.j2", unknown=unknown)
            return "start with unknown topics"
        topic_ids: list[int] | None = None  # START alone keeps the topics (none: every topic)
        if chosen_topics:
            # An active subscriber adds topics; a new or returning one gets exactly what they named.
            active = self.subscription is not None and self.subscription.state == "active"
            current = consent.topic_ids_of(self.session, self.subscription) if self.subscription and active else []
            topic_ids = sorted({*current, *(t.id for t in chosen_topics if t.id is not None)})
        self.subscribe(
            topic_ids=topic_ids,
            district_ids=[chosen_district.id] if chosen_district and chosen_district.id else None,
        )
        self.answer("start_confirmation.txt.j2")
        return "start"

    def toggle_topic(self, key: str) -> str:
        topic = next((t for t in self.topics if t.key == key), None)
        active = self.subscription is not None and self.subscription.state == "active"
        current = set(consent.topic_ids_of(self.session, self.subscription)) if self.subscription and active else set()
        if topic is not None and topic.id is not None:
            current ^= {topic.id}
            self.subscribe(topic_ids=sorted(current))
        self.answer("subscribe_selection.txt.j2", choices=self.topic_choices())
        return f"topic {key}"

    def done(self) -> str:
        # Done without a topic press means every topic; either way the citizen is subscribed now.
        self.subscribe()
        choices = [Choice(label=d.name, payload=DISTRICT_PREFIX + d.key) for d in self.districts]
        choices.append(Choice(label=self._label(ALL_DISTRICTS_LABEL), payload=DISTRICT_PREFIX + ALL_DISTRICTS))
        self.answer("subscribe_districts.txt.j2", choices=choices)
        return "done"

    def pick_district(self, key: str) -> str:
        district = next((d for d in self.districts if d.key == key), None)
        if district is not None or key == ALL_DISTRICTS:
            self.subscribe(district_ids=[district.id] if district and district.id else [])
        self.answer("start_confirmation.txt.j2")
        return f"district {key}"

    # --- helpers --------------------------------------------------------------------------

    def subscribe(self, **changes: Any) -> None:
        """A press on a subscription button is an explicit wish: it makes the subscription active."""
        change = consent.subscribe(
            self.session,
            municipality_id=self.municipality_id,
            contact_id=self.contact_id,
            channel_kind=self.kind,
            source=self.source,
            evidence=self.evidence,
            **changes,
        )
        self.subscription = change.subscription

    def chosen_topics(self) -> list[Topic]:
        if self.subscription is None or self.subscription.state != "active":
            return []
        ids = set(consent.topic_ids_of(self.session, self.subscription))
        return [topic for topic in self.topics if topic.id in ids]

    def chosen_district(self) -> District | None:
        if self.subscription is None:
            return None
        ids = consent.district_ids_of(self.session, self.subscription)
        return next((d for d in self.districts if d.id in ids), None)

    def topic_choices(self) -> list[Choice]:
        chosen = {topic.id for topic in self.chosen_topics()}
        choices = [
            Choice(label=("✓ " if topic.id in chosen else "") + self._name(topic), payload=TOPIC_PREFIX + topic.key)
            for topic in self.topics
        ]
        choices.append(Choice(label=self._label(DONE_LABEL), payload=DONE_PAYLOAD))
        return choices

    def _lang(self) -> str:
        return self.language if self.language in LANGUAGES else DEFAULT_LANGUAGE

    def _label(self, message: str) -> str:
        return gettext_for(self._lang()).gettext(message)

    def _name(self, topic: Topic) -> str:
        return topic.name_en if self._lang() == "en" else topic.name_de

    def add_phone(self, number: str) -> str:
        """Sends a code to the number; the citizen answers with it here, in the messenger."""
        try:
            started = verification.start_verification(
                self.session, municipality=self.municipality, phone=number, topics=[], district=None,
                language=self.language, client_ip=None, link_contact_id=self.contact_id,
            )  # fmt: skip
        except DomainError as error:
            self.answer("phone_problem.txt.j2", problem=str(error))
            return "phone refused"
        self.answer("phone_code_sent.txt.j2", phone=started.phone)
        return "phone code sent"

    def confirm_phone(self, code: str) -> str | None:
        pending = verification.pending_link(
            self.session, municipality_id=self.municipality_id, contact_id=self.contact_id
        )
        if pending is None:
            return None  # six digits with no code asked for: an ordinary message
        try:
            verification.verify_code(
                self.session, municipality=self.municipality, phone=pending.phone, code=code, client_ip=None,
                user_agent=None, language=self.language,
            )  # fmt: skip
        except DomainError as error:
            self.answer("phone_problem.txt.j2", problem=str(error))
            return "phone code refused"
        self.answer("phone_verified.txt.j2", phone=pending.phone)
        return "phone verified"

    def answer(self, template: str, *, choices: list[Choice] | None = None, **context: Any) -> None:
        keywords = {
            "start_keyword": preference(self.municipality, "start_keywords")[0],
            "stop_keyword": preference(self.municipality, "stop_keywords")[0],
            "help_keyword": preference(self.municipality, "help_keywords")[0],
        }
        district = self.chosen_district()
        text = render_message(
            template,
            self.language,
            overrides=preference(self.municipality, "texts"),
            municipality=self.municipality.name,
            topics=[self._name(topic) for topic in self.chosen_topics()],
            all_topics=[topic.key.upper() for topic in self.topics],
            district=district.name if district else None,
            **keywords,
            **context,
        )
        message = inbox.queue_outbound(
            self.session,
            answering=self.ctx.message,
            text=text,
            author=None,
            automated=True,
            choices=choices if choices and self.buttons else (),
        )
        assert message.id is not None
        self.ctx.to_send.append(message.id)
