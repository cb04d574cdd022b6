"""A citizen's data protection rights: everything about them as one JSON document (Art. 15), and erasure (Art. 17).

The contact and their identities are this module's; every other domain adds its own rows by
registration (hub.contacts.registry), in hub/<domain>/gdpr.py.

Erasure keeps what the municipality must still be able to count or prove without the person:
rows stay (messages, deliveries, survey answers, bookings, consent events), so statistics do
not change, but every text, address and name in them is removed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, delete, select

from hub.audit.models import AuditEvent
from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.registry import Erasure, personal_data, plain
from hub.contacts.service import get_contact, identities_of
from hub.db import utcnow
from hub.tenancy.models import Municipality

ERASED_ACTION = "contact.erased"


def export_contact(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """Everything the hub holds about one citizen, as one JSON-ready document."""
    contact = get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    municipality = session.get(Municipality, municipality_id)
    assert municipality is not None
    document: dict[str, Any] = {
        "controller": municipality.name,
        "exported_at": utcnow().isoformat(),
        "contact": plain(contact),
        "identities": [plain(identity) for identity in identities_of(session, contact_id=contact_id)],
    }
    for part in personal_data():
        document.update(part.export(session, municipality_id, contact_id))
    return document


def erase_contact(session: Session, *, municipality_id: int, contact_id: int, actor_id: int | None) -> dict[str, int]:
    """Erases the citizen's personal data and keeps the counts; a second erasure finds nothing more to do.

    Returns what was kept, as counts, for the caller to show.
    """
    contact = get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    # Contacts merged into this one are the same person.
    contact_ids = [contact_id, *session.exec(select(Contact.id).where(Contact.merged_into_id == contact_id)).all()]
    addresses = session.exec(
        select(ContactIdentity.kind, ContactIdentity.address).where(col(ContactIdentity.contact_id).in_(contact_ids))
    ).all()
    repeated = (
        session.exec(
            select(AuditEvent.id).where(
                AuditEvent.municipality_id == municipality_id,
                AuditEvent.action == ERASED_ACTION,
                AuditEvent.object_id == contact_id,
            )
        ).first()
        is not None
    )
    session.execute(delete(ContactIdentity).where(col(ContactIdentity.contact_id).in_(contact_ids)))
    session.execute(update(Contact).where(col(Contact.id).in_(contact_ids)).values(display_name=None, name_origin=None))
    erasure = Erasure(
        municipality_id=municipality_id,
        contact_id=contact_id,
        contact_ids=[i for i in contact_ids if i is not None],
        addresses=[(kind, address) for kind, address in addresses],
        actor_id=actor_id,
        repeated=repeated,
    )
    kept: dict[str, int] = {}
    for part in personal_data():
        kept.update(part.erase(session, erasure))
    session.add(
        AuditEvent(
            municipality_id=municipality_id,
            actor_id=actor_id,
            action=ERASED_ACTION,
            object_type="contact",
            object_id=contact.id,
            details={"kept": kept, "repeated": repeated},
        )
    )
    session.flush()
    return kept
