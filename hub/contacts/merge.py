"""Merging two contacts that are one person: identities here, each domain's rows by registration, as one act.

The merged contact remains as a pointer (`merged_into_id`); what the subscribers, the inbox and
the consultations hold of it moves by their registered mergers (hub.contacts.registry).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.registry import personal_data
from hub.contacts.service import get_contact
from hub.errors import InvalidInput
from hub.i18n import N_


def merge(session: Session, *, municipality_id: int, target_id: int, source_id: int) -> Contact:
    """Moves the source's identities and every domain's rows to the target."""
    if target_id == source_id:
        raise InvalidInput(N_("Ein Kontakt kann nicht mit sich selbst zusammengeführt werden."))
    target = get_contact(session, municipality_id=municipality_id, contact_id=target_id)
    source = get_contact(session, municipality_id=municipality_id, contact_id=source_id)
    if source.merged_into_id is not None:
        raise InvalidInput(N_("Kontakt {source_id} wurde bereits zusammengeführt."), source_id=source_id)
    session.execute(
        update(ContactIdentity).where(ContactIdentity.contact_id == source_id).values(contact_id=target_id)  # type: ignore[arg-type]
    )
    source.merged_into_id = target_id
    if not target.display_name:
        target.display_name, target.name_origin = source.display_name, source.name_origin
    session.flush()
    for part in personal_data():
        if part.merge is not None:
            part.merge(session, municipality_id, target_id, source_id)
    session.flush()
    return target
