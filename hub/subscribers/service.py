"""Topics, districts and subscriptions with their consent record, scoped by municipality; email double opt-in.

Every change of a contact's consent (state, topics, districts) writes exactly one ConsentEvent
in the same transaction, so the record can always show who agreed to what, when, and how.
Routes and the pipeline call these functions and commit; nothing here commits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_
from sqlmodel import Session, col, select

from channels.base import OutboundMessage
from channels.registry import adapter_classes
from hub.broadcasts.models import Broadcast, SurveyAnswer
from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.delivery.engine import send_while_waiting
from hub.errors import ChannelUnavailable, Conflict, InvalidInput, NotFound, TooManyRequests
from hub.inbox.models import Message
from hub.ratelimit import shared_limiter, try_acquire
from hub.settings import Settings, get_settings
from hub.subscribers.models import ConsentEvent, District, Subscription, SubscriptionDistrict, SubscriptionTopic, Topic
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference
from hub.tenancy.service import channel_reaching

log = logging.getLogger(__name__)

STATES = ("pending", "active", "stopped")
# How consent is given or withdrawn, besides a channel's own (ChannelAdapter.consent_source).
SOURCES = ("keyword", "form", "email_link", "import", "api", "provider_error")
LANGUAGES = ("de", "en")
Match = Literal["any", "all"]

# --- topics and districts -------------------------------------------------------------------


def _clean_key(key: str) -> str:
    cleaned = key.strip().lower()
    if not cleaned or len(cleaned) > 40 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in cleaned):
        raise InvalidInput(
            f"Ungültiger Schlüssel {key!r}: 1 bis 40 Zeichen, nur Buchstaben a-z, Ziffern, - und _ (keine Umlaute)."
        )
    return cleaned


def create_topic(
    session: Session,
    *,
    municipality_id: int,
    key: str,
    name_de: str,
    name_en: str | None = None,
    is_warning: bool = False,
) -> Topic:
    key = _clean_key(key)
    if not name_de.strip():
        raise InvalidInput("Der Name des Themas fehlt.")
    if find_topic(session, municipality_id=municipality_id, word=key) is not None:
        raise Conflict(f"Das Thema {key!r} gibt es schon.")
    topic = Topic(
        municipality_id=municipality_id,
        key=key,
        name_de=name_de.strip(),
        name_en=(name_en or name_de).strip(),
        is_warning=is_warning,
    )
    session.add(topic)
    session.flush()
    return topic


def rename_topic(session: Session, *, municipality_id: int, topic_id: int, name_de: str, name_en: str) -> Topic:
    """Changes what subscribers read; the key stays, since SMS keywords and the API use it."""
    topic = session.get(Topic, topic_id)
    if topic is None or topic.municipality_id != municipality_id:
        raise NotFound(f"Thema {topic_id} nicht gefunden.")
    if not name_de.strip():
        raise InvalidInput("Der Name des Themas fehlt.")
    topic.name_de, topic.name_en = name_de.strip(), (name_en or name_de).strip()
    return topic


def list_topics(session: Session, *, municipality_id: int) -> list[Topic]:
    return list(
        session.exec(select(Topic).where(Topic.municipality_id == municipality_id).order_by(col(Topic.id))).all()
    )


def find_topic(session: Session, *, municipality_id: int, word: str) -> Topic | None:
    """The topic whose key or (German or English) name is `word`, ignoring case."""
    wanted = word.strip().casefold()
    return next(
        (
            topic
            for topic in list_topics(session, municipality_id=municipality_id)
            if wanted in (topic.key.casefold(), topic.name_de.casefold(), topic.name_en.casefold())
        ),
        None,
    )


def create_district(session: Session, *, municipality_id: int, key: str, name: str) -> District:
    key = _clean_key(key)
    if not name.strip():
        raise InvalidInput("Der Name des Ortsteils fehlt.")
    if find_district(session, municipality_id=municipality_id, word=key) is not None:
        raise Conflict(f"Den Ortsteil {key!r} gibt es schon.")
    district = District(municipality_id=municipality_id, key=key, name=name.strip())
    session.add(district)
    session.flush()
    return district


def rename_district(session: Session, *, municipality_id: int, district_id: int, name: str) -> District:
    district = session.get(District, district_id)
    if district is None or district.municipality_id != municipality_id:
        raise NotFound(f"Ortsteil {district_id} nicht gefunden.")
    if not name.strip():
        raise InvalidInput("Der Name des Ortsteils fehlt.")
    district.name = name.strip()
    return district


def list_districts(session: Session, *, municipality_id: int) -> list[District]:
    return list(
        session.exec(
            select(District).where(District.municipality_id == municipality_id).order_by(col(District.id))
        ).all()
    )


def find_district(session: Session, *, municipality_id: int, word: str) -> District | None:
    """The district whose key or name is `word`, ignoring case."""
    wanted = word.strip().casefold()
    return next(
        (
            district
            for district in list_districts(session, municipality_id=municipality_id)
            if wanted in (district.key.casefold(), district.name.casefold())
        ),
        None,
    )


def topics_by_keys(session: Session, *, municipality_id: int, words: Iterable[str]) -> list[Topic]:
    """The topics named by keys or names; an unknown word is an error that lists the topics there are."""
    found: list[Topic] = []
    unknown: list[str] = []
    for word in words:
        topic = find_topic(session, municipality_id=municipality_id, word=word)
        if topic is None:
            unknown.append(word)
        elif topic not in found:
            found.append(topic)
    if unknown:
        known = ", ".join(topic.key for topic in list_topics(session, municipality_id=municipality_id))
        raise InvalidInput(f"Unbekannte Themen: {', '.join(unknown)}. Es gibt: {known or 'keine'}.")
    return found


def district_by_key(session: Session, *, municipality_id: int, word: str) -> District:
    district = find_district(session, municipality_id=municipality_id, word=word)
    if district is None:
        known = ", ".join(d.key for d in list_districts(session, municipality_id=municipality_id))
        raise InvalidInput(f"Unbekannter Ortsteil {word!r}. Es gibt: {known or 'keine'}.")
    return district


# --- subscriptions and consent --------------------------------------------------------------


def get_subscription(session: Session, *, municipality_id: int, contact_id: int) -> Subscription | None:
    return session.exec(
        select(Subscription).where(
            Subscription.municipality_id == municipality_id, Subscription.contact_id == contact_id
        )
    ).first()


def topic_ids_of(session: Session, subscription: Subscription) -> list[int]:
    return sorted(
        session.exec(
            select(SubscriptionTopic.topic_id).where(SubscriptionTopic.subscription_id == subscription.id)
        ).all()
    )


def district_ids_of(session: Session, subscription: Subscription) -> list[int]:
    return sorted(
        session.exec(
            select(SubscriptionDistrict.district_id).where(SubscriptionDistrict.subscription_id == subscription.id)
        ).all()
    )


def _replace_links(session: Session, subscription: Subscription, topic_ids: list[int], district_ids: list[int]) -> None:
    session.execute(delete(SubscriptionTopic).where(col(SubscriptionTopic.subscription_id) == subscription.id))
    session.execute(delete(SubscriptionDistrict).where(col(SubscriptionDistrict.subscription_id) == subscription.id))
    assert subscription.id is not None
    session.add_all(SubscriptionTopic(subscription_id=subscription.id, topic_id=tid) for tid in topic_ids)
    session.add_all(SubscriptionDistrict(subscription_id=subscription.id, district_id=did) for did in district_ids)


def _check_ids(session: Session, model: type[Topic] | type[District], municipality_id: int, ids: list[int]) -> None:
    """Refuses ids of another municipality's (or no) topics and districts: scoping is enforced here."""
    if not ids:
        return
    found = set(
        session.exec(select(model.id).where(col(model.id).in_(ids), model.municipality_id == municipality_id)).all()
    )
    missing = sorted(set(ids) - found)
    if missing:
        what = "Themen" if model is Topic else "Ortsteile"
        raise InvalidInput(f"{what} mit den Nummern {missing} gibt es nicht.")


def record_consent(
    session: Session,
    subscription: Subscription,
    *,
    action: str,
    channel_kind: str | None,
    source: str,
    evidence: dict[str, Any],
) -> ConsentEvent:
    """Writes one consent event; callers use subscribe/stop, which decide whether anything changed."""
    if source not in SOURCES and source not in {adapter.consent_source for adapter in adapter_classes()}:
        raise ValueError(f"unknown consent source {source!r}")
    event = ConsentEvent(
        municipality_id=subscription.municipality_id,
        contact_id=subscription.contact_id,
        subscription_id=subscription.id,
        action=action,
        channel_kind=channel_kind,
        source=source,
        evidence=evidence,
    )
    session.add(event)
    subscription.updated_at = utcnow()
    session.flush()
    return event


@dataclass(frozen=True)
class Change:
    """The subscription after a call, and the consent event it wrote (None: nothing changed)."""

    subscription: Subscription
    event: ConsentEvent | None


def subscribe(
    session: Session,
    *,
    municipality_id: int,
    contact_id: int,
    channel_kind: str | None,
    source: str,
    evidence: dict[str, Any],
    topic_ids: Sequence[int] | None = None,
    district_ids: Sequence[int] | None = None,
    language: str | None = None,
    state: str = "active",
    action: str | None = None,
) -> Change:
    """Creates or updates the contact's one subscription and records the change.

    None for topics or districts keeps what the contact has (nothing, for a new subscription).
    No topics chosen means every topic, no districts the whole municipality.
    The action recorded is `action` if given (confirmed, imported), otherwise subscribed for a
    new or pending subscription, restarted after STOP, topics_changed for an active one. A call
    that changes nothing writes no event.
    """
    if state not in STATES:
        raise InvalidInput(f"Unbekannter Zustand {state!r}; erlaubt: {', '.join(STATES)}.")
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"Unbekannte Sprache {language!r}; erlaubt: de, en.")
    contact = session.get(Contact, contact_id)
    if contact is None or contact.municipality_id != municipality_id:
        raise NotFound(f"Kontakt {contact_id} nicht gefunden.")
    subscription = get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    is_new = subscription is None
    if subscription is None:
        subscription = Subscription(
            municipality_id=municipality_id, contact_id=contact_id, state="pending", language=contact.language
        )
        session.add(subscription)
        session.flush()
    before_state = subscription.state
    before_topics, before_districts = topic_ids_of(session, subscription), district_ids_of(session, subscription)
    topics = sorted(set(topic_ids)) if topic_ids is not None else before_topics
    districts = sorted(set(district_ids)) if district_ids is not None else before_districts
    _check_ids(session, Topic, municipality_id, topics)
    _check_ids(session, District, municipality_id, districts)
    changed_links = (topics, districts) != (before_topics, before_districts)
    changed_language = language is not None and language != subscription.language
    if not (is_new or changed_links or changed_language or state != before_state):
        return Change(subscription, None)
    if changed_links:
        _replace_links(session, subscription, topics, districts)
    if language is not None:
        subscription.language = language
    subscription.state = state
    if action is None:
        if before_state == "stopped" and state == "active":
            action = "restarted"
        elif state == "stopped":
            action = "stopped"
        elif is_new or before_state == "pending":
            action = "subscribed"
        else:
            action = "topics_changed"
    event = record_consent(
        session,
        subscription,
        action=action,
        channel_kind=channel_kind,
        source=source,
        evidence={**evidence, "state": state, "topics": topics, "districts": districts},
    )
    return Change(subscription, event)


def stop(
    session: Session,
    *,
    municipality_id: int,
    contact_id: int,
    channel_kind: str | None,
    source: str,
    evidence: dict[str, Any],
) -> Change:
    """Silences the contact on every channel at once; a second STOP changes (and records) nothing.

    A contact without a subscription gets a stopped one, so the objection is on record and an
    import or broadcast cannot reach them later.
    """
    return subscribe(
        session,
        municipality_id=municipality_id,
        contact_id=contact_id,
        channel_kind=channel_kind,
        source=source,
        evidence=evidence,
        state="stopped",
    )


def restart(
    session: Session,
    *,
    municipality_id: int,
    contact_id: int,
    channel_kind: str | None,
    source: str,
    evidence: dict[str, Any],
) -> Change:
    """Makes a stopped subscription active again with the topics and districts it had."""
    return subscribe(
        session,
        municipality_id=municipality_id,
        contact_id=contact_id,
        channel_kind=channel_kind,
        source=source,
        evidence=evidence,
    )


def _existing(session: Session, municipality_id: int, contact_id: int) -> Subscription:
    subscription = get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    if subscription is None:
        raise NotFound(f"Kontakt {contact_id} hat kein Abonnement.")
    return subscription


def is_stopped(session: Session, contact_id: int) -> bool:
    """Whether the contact said STOP (on any channel) and has not subscribed again since."""
    state = session.exec(select(Subscription.state).where(Subscription.contact_id == contact_id)).first()
    return state == "stopped"


def consent_history(session: Session, *, municipality_id: int, contact_id: int) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.municipality_id == municipality_id, ConsentEvent.contact_id == contact_id)
            .order_by(col(ConsentEvent.created_at), col(ConsentEvent.id))
        ).all()
    )


# A subscriber's page shows this many of the newest; the GDPR export has them all.
RECORD_LIMIT = 50


@dataclass(frozen=True)
class HandledWithoutCase:
    """What a citizen sent that the hub handled itself, kept on the contact rather than in a case."""

    # Commands and survey replies with the hub's answers to them, newest first.
    messages: list[Message]
    # Each survey answer with its survey, newest first.
    answers: list[tuple[SurveyAnswer, Broadcast]]


def handled_without_case(session: Session, *, municipality_id: int, contact_id: int) -> HandledWithoutCase:
    """The newest commands and survey answers of one contact, for staff to see on the subscriber's page."""
    messages = session.exec(
        select(Message)
        .where(Message.municipality_id == municipality_id, Message.contact_id == contact_id)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(RECORD_LIMIT)
    ).all()
    answers = session.exec(
        select(SurveyAnswer, Broadcast)
        .join(Broadcast, col(Broadcast.id) == SurveyAnswer.broadcast_id)
        .where(SurveyAnswer.municipality_id == municipality_id, SurveyAnswer.contact_id == contact_id)
        .order_by(col(SurveyAnswer.answered_at).desc())
        .limit(RECORD_LIMIT)
    ).all()
    return HandledWithoutCase(messages=list(messages), answers=[(answer, survey) for answer, survey in answers])


# --- listing subscribers --------------------------------------------------------------------


@dataclass(frozen=True)
class Subscriber:
    subscription: Subscription
    contact: Contact
    identities: list[ContactIdentity]
    topics: list[Topic]
    districts: list[District]


@dataclass(frozen=True)
class SubscriberPage:
    items: list[Subscriber]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0


def list_subscribers(
    session: Session,
    *,
    municipality_id: int,
    state: str | None = None,
    topic: str | None = None,
    district: str | None = None,
    search: str | None = None,
    channel: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> SubscriberPage:
    """Subscribers, newest change first; `search` looks in addresses and display names.

    `channel` is an identity kind (phone, email, telegram, facebook): subscribers reachable there.
    """
    if state is not None and state not in STATES:
        raise InvalidInput(f"Unbekannter Zustand {state!r}; erlaubt: {', '.join(STATES)}.")
    query = select(Subscription).where(Subscription.municipality_id == municipality_id)
    if state:
        query = query.where(Subscription.state == state)
    if topic:
        found_topic = topics_by_keys(session, municipality_id=municipality_id, words=[topic])[0]
        query = query.where(
            exists().where(
                col(SubscriptionTopic.subscription_id) == Subscription.id,
                col(SubscriptionTopic.topic_id) == found_topic.id,
            )
        )
    if district:
        found_district = district_by_key(session, municipality_id=municipality_id, word=district)
        query = query.where(
            exists().where(
                col(SubscriptionDistrict.subscription_id) == Subscription.id,
                col(SubscriptionDistrict.district_id) == found_district.id,
            )
        )
    if channel:
        query = query.where(
            exists().where(
                col(ContactIdentity.contact_id) == Subscription.contact_id, col(ContactIdentity.kind) == channel
            )
        )
    if search and search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            or_(
                exists().where(
                    col(ContactIdentity.contact_id) == Subscription.contact_id,
                    func.lower(col(ContactIdentity.address)).like(pattern),
                ),
                exists().where(
                    col(Contact.id) == Subscription.contact_id,
                    func.lower(col(Contact.display_name)).like(pattern),
                ),
            )
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    subscriptions = list(
        session.exec(
            query.order_by(col(Subscription.updated_at).desc(), col(Subscription.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
    )
    return SubscriberPage(
        items=_describe(session, municipality_id, subscriptions), total=total, page=page, per_page=per_page
    )


def get_subscriber(session: Session, *, municipality_id: int, contact_id: int) -> Subscriber:
    return _describe(session, municipality_id, [_existing(session, municipality_id, contact_id)])[0]


def _describe(session: Session, municipality_id: int, subscriptions: list[Subscription]) -> list[Subscriber]:
    """Loads contacts, identities, topics and districts of a page in a handful of queries."""
    if not subscriptions:
        return []
    sub_ids = [s.id for s in subscriptions]
    contact_ids = [s.contact_id for s in subscriptions]
    contacts = {c.id: c for c in session.exec(select(Contact).where(col(Contact.id).in_(contact_ids)))}
    identities: dict[int, list[ContactIdentity]] = {}
    for identity in session.exec(
        select(ContactIdentity)
        .where(col(ContactIdentity.contact_id).in_(contact_ids))
        .order_by(col(ContactIdentity.id))
    ):
        identities.setdefault(identity.contact_id, []).append(identity)
    topics = {t.id: t for t in list_topics(session, municipality_id=municipality_id)}
    districts = {d.id: d for d in list_districts(session, municipality_id=municipality_id)}
    chosen_topics: dict[int, list[Topic]] = {}
    for link in session.exec(select(SubscriptionTopic).where(col(SubscriptionTopic.subscription_id).in_(sub_ids))):
        chosen_topics.setdefault(link.subscription_id, []).append(topics[link.topic_id])
    chosen_districts: dict[int, list[District]] = {}
    for dlink in session.exec(
        select(SubscriptionDistrict).where(col(SubscriptionDistrict.subscription_id).in_(sub_ids))
    ):
        chosen_districts.setdefault(dlink.subscription_id, []).append(districts[dlink.district_id])
    return [
        Subscriber(
            subscription=s,
            contact=contacts[s.contact_id],
            identities=identities.get(s.contact_id, []),
            topics=sorted(chosen_topics.get(s.id or 0, []), key=lambda t: t.id or 0),
            districts=sorted(chosen_districts.get(s.id or 0, []), key=lambda d: d.id or 0),
        )
        for s in subscriptions
    ]


def subscriber_query(
    municipality_id: int,
    topic_ids: Sequence[int],
    topic_match: Match,
    district_ids: Sequence[int],
    district_match: Match,
) -> Select[tuple[int, str]]:
    """(contact_id, language) of every active subscription a broadcast with this targeting reaches.

    No topic (district) ids: no restriction. "any": the subscriber chose at least one of them;
    "all": every one of them. A subscriber who chose no topics hears about every topic, and
    one who chose no district hears about the whole municipality, so they match any targeting.
    One statement of EXISTS and counted subqueries, ordered by contact, for fan-out to page.
    """
    query: Select[tuple[int, str]] = select(  # type: ignore[assignment]
        col(Subscription.contact_id), col(Subscription.language)
    ).where(col(Subscription.municipality_id) == municipality_id, col(Subscription.state) == "active")
    if topic_ids:
        query = query.where(_matches(SubscriptionTopic, col(SubscriptionTopic.topic_id), topic_ids, topic_match))
    if district_ids:
        query = query.where(
            _matches(SubscriptionDistrict, col(SubscriptionDistrict.district_id), district_ids, district_match)
        )
    return query.order_by(col(Subscription.contact_id))


def _matches(
    link: type[SubscriptionTopic] | type[SubscriptionDistrict], column: Any, wanted: Sequence[int], match: Match
) -> ColumnElement[bool]:
    owner = col(link.subscription_id) == Subscription.id
    chose_none = ~exists().where(owner)
    ids = sorted(set(wanted))
    if match == "any":
        return or_(chose_none, exists().where(owner, column.in_(ids)))
    if match == "all":
        counted = select(func.count()).select_from(link).where(owner, column.in_(ids)).scalar_subquery()
        return or_(chose_none, counted == len(ids))
    raise InvalidInput(f"Unbekannte Verknüpfung {match!r}; erlaubt: any, all.")


# --- email double opt-in --------------------------------------------------------------------

# Development default only: anyone who knows it can forge confirmation links, so production
# must set RATHAUS_SECRET_KEY (hub.settings) to a long random value.
DEVELOPMENT_SECRET_KEY = "rathaus-hub-development-key-not-for-production"  # noqa: S105 (public on purpose)
CONFIRMATION_VALID_SECONDS = 7 * 24 * 3600
OPT_IN_PER_IP_PER_HOUR = 10
OPT_IN_PER_ADDRESS_PER_HOUR = 3


@lru_cache
def secret_key() -> bytes:
    """The server's HMAC key from RATHAUS_SECRET_KEY, or the development default (with a warning)."""
    configured = get_settings().secret_key
    if not configured:
        log.warning("RATHAUS_SECRET_KEY is not set; using the development key, which is not secret")
        configured = DEVELOPMENT_SECRET_KEY
    return configured.encode("utf-8")


def _derived_key(purpose: str) -> bytes:
    # One key per purpose, so a signature made for one use can never be replayed for another.
    return hmac.new(secret_key(), purpose.encode("utf-8"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(payload: dict[str, Any], *, purpose: str) -> str:
    """payload.signature, both URL-safe base64; the payload gets the issue time `iat`."""
    body = _b64(json.dumps({**payload, "iat": int(time.time())}, separators=(",", ":")).encode("utf-8"))
    signature = hmac.new(_derived_key(purpose), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def read_token(token: str, *, purpose: str, max_age_seconds: int) -> dict[str, Any]:
    """The payload of a token this server signed for `purpose`, if it is not older than allowed."""
    body, _, signature = token.strip().partition(".")
    try:
        expected = hmac.new(_derived_key(purpose), body.encode("ascii"), hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, _unb64(signature))
        payload = json.loads(_unb64(body)) if valid else None
    except (ValueError, UnicodeError):
        payload = None
    if not isinstance(payload, dict):
        raise InvalidInput("Der Bestätigungslink ist ungültig. Bitte melden Sie sich noch einmal an.")
    if time.time() - float(payload.get("iat", 0)) > max_age_seconds:
        raise InvalidInput("Der Bestätigungslink ist abgelaufen. Bitte melden Sie sich noch einmal an.")
    return payload


EMAIL_PURPOSE = "email-double-opt-in"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def request_email_subscription(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    email: str,
    topics: Sequence[str],
    district: str | None,
    language: str,
    client_ip: str | None,
) -> str:
    """Mails a signed confirmation link (double opt-in); nothing is stored until it is followed.

    The link carries the whole request, signed, so an unconfirmed request leaves no trace in
    the database. Returns the address the mail went to.
    """
    assert municipality.id is not None
    address = email.strip().lower()
    if not _EMAIL.fullmatch(address) or len(address) > 254:
        raise InvalidInput(f"{email!r} ist keine gültige E-Mail-Adresse.")
    if language not in LANGUAGES:
        raise InvalidInput(f"Unbekannte Sprache {language!r}; erlaubt: de, en.")
    # The form mails whoever is named in it: without limits it would mail a stranger on and on.
    limiter = shared_limiter(settings)
    if not (
        try_acquire(limiter, f"opt-in:ip:{client_ip}", OPT_IN_PER_IP_PER_HOUR, 3600)
        and try_acquire(limiter, f"opt-in:mail:{address}", OPT_IN_PER_ADDRESS_PER_HOUR, 3600)
    ):
        raise TooManyRequests(
            "Too many sign-up requests; please try again in an hour."
            if language == "en"
            else "Zu viele Anmeldeversuche. Bitte versuchen Sie es in einer Stunde noch einmal."
        )
    chosen = topics_by_keys(session, municipality_id=municipality.id, words=topics)
    place = district_by_key(session, municipality_id=municipality.id, word=district) if district else None
    account = channel_reaching(session, municipality_id=municipality.id, identity="email")
    if account is None:
        raise ChannelUnavailable("Die Anmeldung per E-Mail ist bei dieser Gemeinde derzeit nicht möglich.")
    token = sign_token(
        {
            "m": municipality.id,
            "e": address,
            "t": [topic.key for topic in chosen],
            "d": place.key if place else None,
            "l": language,
            "ip": client_ip,
        },
        purpose=EMAIL_PURPOSE,
    )
    link = (
        f"{settings.public_url.rstrip('/')}/api/v1/public/{municipality.slug}/subscriptions/email/confirm?token={token}"
    )
    texts = preference(municipality, "texts")
    context = {
        **greeting(language, None),  # the address is all the hub knows of the person yet
        "municipality": municipality.name,
        "link": link,
        "topics": [topic.name_en if language == "en" else topic.name_de for topic in chosen],
        "district": place.name if place else None,
        "days": CONFIRMATION_VALID_SECONDS // 86400,
    }
    message = OutboundMessage(
        to=address,
        subject=render_message("email_double_opt_in_subject.txt.j2", language, overrides=texts, **context),
        text=render_message("email_double_opt_in.txt.j2", language, overrides=texts, **context),
        automated=True,
    )
    send_while_waiting(settings, account, message, language=language)
    return address


def check_email_confirmation(*, municipality: Municipality, token: str) -> dict[str, Any]:
    """The request a confirmation link carries, if the link is genuine, unexpired and for this town."""
    payload = read_token(token, purpose=EMAIL_PURPOSE, max_age_seconds=CONFIRMATION_VALID_SECONDS)
    if payload.get("m") != municipality.id:
        raise InvalidInput("Der Bestätigungslink gehört zu einer anderen Gemeinde.")
    return payload


def confirm_email_subscription(
    session: Session, *, municipality: Municipality, token: str, client_ip: str | None, user_agent: str | None
) -> Change:
    """Follows a confirmation link: subscribes the address as asked; following it again changes nothing."""
    assert municipality.id is not None
    payload = check_email_confirmation(municipality=municipality, token=token)
    contact = resolve_contact(
        session, municipality_id=municipality.id, kind="email", address=payload["e"], language=payload.get("l")
    )
    assert contact.id is not None
    chosen = topics_by_keys(session, municipality_id=municipality.id, words=payload.get("t", []))
    place = district_by_key(session, municipality_id=municipality.id, word=payload["d"]) if payload.get("d") else None
    mail = channel_reaching(session, municipality_id=municipality.id, identity="email")
    return subscribe(
        session,
        municipality_id=municipality.id,
        contact_id=contact.id,
        channel_kind=mail.kind if mail else None,
        source="email_link",
        action="confirmed",
        evidence={
            "ip": client_ip,
            "user_agent": (user_agent or "")[:300],
            "requested_from_ip": payload.get("ip"),
            "requested_at": datetime.fromtimestamp(payload["iat"], UTC).isoformat(),
        },
        topic_ids=[topic.id for topic in chosen if topic.id is not None],
        district_ids=[place.id] if place and place.id else [],
        language=payload.get("l"),
    )


# --- demo -----------------------------------------------------------------------------------

DEMO_TOPICS = (
    ("baustellen", "Baustellen", "Roadworks", False),
    ("abfall", "Abfall", "Waste collection", False),
    ("veranstaltungen", "Veranstaltungen", "Events", False),
    ("warnungen", "Warnungen", "Warnings", True),
)
DEMO_DISTRICTS = (("mitte", "Mitte"), ("nord", "Nord"), ("sued", "Süd"), ("ost", "Ost"))


def seed_subscriber_demo(session: Session, municipality_id: int) -> None:
    """The demo town's topics and districts; running it again adds only what is missing."""
    for key, name_de, name_en, is_warning in DEMO_TOPICS:
        if find_topic(session, municipality_id=municipality_id, word=key) is None:
            create_topic(
                session,
                municipality_id=municipality_id,
                key=key,
                name_de=name_de,
                name_en=name_en,
                is_warning=is_warning,
            )
    for key, name in DEMO_DISTRICTS:
        if find_district(session, municipality_id=municipality_id, word=key) is None:
            create_district(session, municipality_id=municipality_id, key=key, name=name)
