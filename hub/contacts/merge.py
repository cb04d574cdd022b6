"""Merging two contacts that are one person: identities, conversations, and their consent, as one act.

Consent follows the stricter side: if either contact said STOP, the merged contact stays
stopped, since a citizen who objected on one channel objected as a person.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from hub.contacts import service as contacts
from hub.contacts.models import Contact
from hub.subscribers import consent
from hub.subscribers.models import ConsentEvent


def merge(session: Session, *, municipality_id: int, target_id: int, source_id: int) -> Contact:
    target = contacts.merge_contacts(session, municipality_id=municipality_id, target_id=target_id, source_id=source_id)
    source_subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=source_id)
    target_subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=target_id)
    # The consent record is evidence about the person: it moves with them.
    session.execute(
        update(ConsentEvent)
        .where(col(ConsentEvent.contact_id) == source_id, col(ConsentEvent.municipality_id) == municipality_id)
        .values(contact_id=target_id)
    )
    if source_subscription is None:
        return target
    if target_subscription is None:
        source_subscription.contact_id = target_id
    elif source_subscription.state == "stopped" and target_subscription.state != "stopped":
        consent.stop(
            session, municipality_id=municipality_id, contact_id=target_id, channel_kind=None, source="api",
            evidence={"merged_from_contact": source_id},
        )  # fmt: skip
    session.flush()
    return target
