"""The subscribers' part of a citizen's data: the subscription, its consent record, pending phone codes.

Erasure stops the subscription and keeps the consent record's what and when, with its evidence
(IP addresses, message texts, import lines) removed. Merging carries the consent record, and
the stricter side wins: if either contact said STOP, the merged contact stays stopped, since a
citizen who objected on one channel objected as a person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, delete

from hub.contacts.registry import Erasure, PersonalData, plain
from hub.subscribers import catalogue, consent
from hub.subscribers.models import ConsentEvent, PhoneVerification


def export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    topics = {t.id: t.key for t in catalogue.list_topics(session, municipality_id=municipality_id)}
    districts = {d.id: d.key for d in catalogue.list_districts(session, municipality_id=municipality_id)}
    return {
        "subscription": None
        if subscription is None
        else {
            **plain(subscription),
            "topics": [topics[i] for i in consent.topic_ids_of(session, subscription)],
            "districts": [districts[i] for i in consent.district_ids_of(session, subscription)],
        },
        "consent_events": [
            plain(event)
            for event in consent.consent_history(session, municipality_id=municipality_id, contact_id=contact_id)
        ],
    }


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    municipality_id = erasure.municipality_id
    phones = [address for kind, address in erasure.addresses if kind == "phone"]
    if phones:
        session.execute(
            delete(PhoneVerification).where(
                col(PhoneVerification.municipality_id) == municipality_id, col(PhoneVerification.phone).in_(phones)
            )
        )
    session.execute(
        update(ConsentEvent)
        .where(
            col(ConsentEvent.municipality_id) == municipality_id, col(ConsentEvent.contact_id).in_(erasure.contact_ids)
        )
        .values(evidence={"redacted": True})
    )
    if erasure.repeated:
        return {}
    change = consent.subscribe(
        session,
        municipality_id=municipality_id,
        contact_id=erasure.contact_id,
        channel_kind=None,
        source="api",
        evidence={"actor_id": erasure.actor_id},
        state="stopped",
        topic_ids=[],
        district_ids=[],
        action="erased",
    )
    if change.event is None:
        # Already stopped with nothing chosen: the erasure still goes on record.
        consent.record_consent(
            session,
            change.subscription,
            action="erased",
            channel_kind=None,
            source="api",
            evidence={"actor_id": erasure.actor_id},
        )
    return {}


def merge(session: Session, municipality_id: int, target_id: int, source_id: int) -> None:
    source_subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=source_id)
    target_subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=target_id)
    # The consent record is evidence about the person: it moves with them.
    session.execute(
        update(ConsentEvent)
        .where(col(ConsentEvent.contact_id) == source_id, col(ConsentEvent.municipality_id) == municipality_id)
        .values(contact_id=target_id)
    )
    if source_subscription is None:
        return
    if target_subscription is None:
        source_subscription.contact_id = target_id
    elif source_subscription.state == "stopped" and target_subscription.state != "stopped":
        consent.stop(
            session, municipality_id=municipality_id, contact_id=target_id, channel_kind=None, source="api",
            evidence={"merged_from_contact": source_id},
        )  # fmt: skip
    session.flush()


PERSONAL_DATA = PersonalData(name="subscribers", export=export, erase=erase, merge=merge)
