"""Subscriptions with their consent record, scoped by municipality.

Every change of a contact's consent (state, topics, districts) writes exactly one ConsentEvent
in the same transaction, so the record can always show who agreed to what, when, and how.
Routes and the pipeline call these functions and commit; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from channels.registry import adapter_classes
from hub.contacts.models import Contact
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.subscribers.models import ConsentEvent, District, Subscription, SubscriptionDistrict, SubscriptionTopic, Topic

STATES = ("pending", "active", "stopped")
# How consent is given or withdrawn, besides a channel's own (ChannelAdapter.consent_source).
SOURCES = ("keyword", "form", "email_link", "topics_link", "import", "api", "provider_error")
LANGUAGES = ("de", "en")


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
        refusal = (
            N_("Themen mit den Nummern {missing} gibt es nicht.")
            if model is Topic
            else N_("Ortsteile mit den Nummern {missing} gibt es nicht.")
        )
        raise InvalidInput(refusal, missing=missing)


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
        raise InvalidInput(
            N_("Unbekannter Zustand {state!r}; erlaubt: {allowed}."), state=state, allowed=", ".join(STATES)
        )
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(N_("Unbekannte Sprache {language!r}; erlaubt: de, en."), language=language)
    contact = session.get(Contact, contact_id)
    if contact is None or contact.municipality_id != municipality_id:
        raise NotFound(N_("Kontakt {contact_id} nicht gefunden."), contact_id=contact_id)
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
