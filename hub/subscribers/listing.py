"""Staff's view of subscribers: search and filter them, one subscriber with their choices, what the hub handled."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_
from sqlmodel import Session, col, select

from hub.contacts.models import Contact, ContactIdentity
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import Message
from hub.subscribers.catalogue import district_by_key, list_districts, list_topics, topics_by_keys
from hub.subscribers.consent import STATES, consent_history, get_subscription
from hub.subscribers.models import District, Subscription, SubscriptionDistrict, SubscriptionTopic, Topic


def _existing(session: Session, municipality_id: int, contact_id: int) -> Subscription:
    subscription = get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    if subscription is None:
        raise NotFound(N_("Kontakt {contact_id} hat kein Abonnement."), contact_id=contact_id)
    return subscription


# A subscriber's page shows this many of the newest; the GDPR export has them all.
RECORD_LIMIT = 50


@dataclass(frozen=True)
class HandledWithoutCase:
    """What a citizen sent that the hub handled itself, kept on the contact rather than in a case."""

    # Commands and survey replies with the hub's answers to them, newest first.
    messages: list[Message]


def handled_without_case(session: Session, *, municipality_id: int, contact_id: int) -> HandledWithoutCase:
    """The newest commands and survey replies of one contact, for staff to see on the subscriber's page."""
    messages = session.exec(
        select(Message)
        .where(Message.municipality_id == municipality_id, Message.contact_id == contact_id)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(RECORD_LIMIT)
    ).all()
    return HandledWithoutCase(messages=list(messages))


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
        raise InvalidInput(
            N_("Unbekannter Zustand {state!r}; erlaubt: {allowed}."), state=state, allowed=", ".join(STATES)
        )
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


def contact_panel(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The subscription and consent record beside a conversation (hub.contacts.registry.CONVERSATION_PANEL).

    `consent_channels`: the channels consent was given or changed on, in the order first used.
    """
    subscription = get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    consent = consent_history(session, municipality_id=municipality_id, contact_id=contact_id)
    return {
        "subscriber": _describe(session, municipality_id, [subscription])[0] if subscription is not None else None,
        "consent": consent,
        "consent_channels": list(dict.fromkeys(event.channel_kind for event in consent if event.channel_kind)),
    }


def contact_context(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The same as JSON-ready values, for the API's contact context (hub.contacts.registry.CONTACT_CONTEXT).

    The consent events leave out their evidence (message ids, addresses); the DSGVO export has it.
    """
    panel = contact_panel(session, municipality_id, contact_id)
    subscriber: Subscriber | None = panel["subscriber"]
    return {
        "subscription": {
            "state": subscriber.subscription.state,
            "language": subscriber.subscription.language,
            "since": subscriber.subscription.created_at.isoformat(),
            "topics": [topic.key for topic in subscriber.topics],
            "districts": [district.key for district in subscriber.districts],
            "channels": panel["consent_channels"],
        }
        if subscriber is not None
        else None,
        "consent": [
            {
                "action": event.action,
                "source": event.source,
                "channel_kind": event.channel_kind,
                "created_at": event.created_at.isoformat(),
            }
            for event in panel["consent"]
        ],
    }
