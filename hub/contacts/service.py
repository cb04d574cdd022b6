"""Finding a citizen by a channel address, and merging two contacts that are one person."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.contacts.models import Contact, ContactIdentity
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import Conversation, Message


def resolve_contact(
    session: Session,
    *,
    municipality_id: int,
    kind: str,
    address: str,
    display_name: str | None = None,
    language: str | None = None,
) -> Contact:
    """The contact behind an address, created on first sight (race-safe on the unique identity)."""
    identity = _find_identity(session, municipality_id, kind, address)
    if identity is None:
        contact = Contact(municipality_id=municipality_id, display_name=display_name, language=_language(language))
        try:
            with session.begin_nested():
                session.add(contact)
                session.flush()
                assert contact.id is not None
                session.add(
                    ContactIdentity(
                        municipality_id=municipality_id,
                        contact_id=contact.id,
                        kind=kind,
                        address=address,
                    )
                )
                session.flush()
            return contact
        except IntegrityError:
            # Another worker created the same identity a moment ago; use theirs.
            identity = _find_identity(session, municipality_id, kind, address)
            assert identity is not None
    known = session.get(Contact, identity.contact_id)
    assert known is not None
    if display_name and not known.display_name:
        known.display_name = display_name
    return known


def find_contact(session: Session, *, municipality_id: int, kind: str, address: str) -> Contact | None:
    """The contact behind an address if there is one; unlike `resolve_contact`, never creates one."""
    identity = _find_identity(session, municipality_id, kind, address)
    return session.get(Contact, identity.contact_id) if identity is not None else None


def _find_identity(session: Session, municipality_id: int, kind: str, address: str) -> ContactIdentity | None:
    return session.exec(
        select(ContactIdentity).where(
            ContactIdentity.municipality_id == municipality_id,
            ContactIdentity.kind == kind,
            ContactIdentity.address == address,
        )
    ).first()


def _language(code: str | None) -> str:
    return "en" if code and code.lower().startswith("en") else "de"


def get_contact(session: Session, *, municipality_id: int, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.municipality_id != municipality_id:
        raise NotFound(N_("Kontakt {contact_id} nicht gefunden."), contact_id=contact_id)
    return contact


def identities_of(session: Session, *, contact_id: int) -> list[ContactIdentity]:
    return list(
        session.exec(
            select(ContactIdentity).where(ContactIdentity.contact_id == contact_id).order_by(ContactIdentity.id)  # type: ignore[arg-type]
        ).all()
    )


def identity_address(session: Session, *, contact_id: int, kind: str) -> str | None:
    identity = session.exec(
        select(ContactIdentity).where(ContactIdentity.contact_id == contact_id, ContactIdentity.kind == kind)
    ).first()
    return identity.address if identity else None


def merge_contacts(session: Session, *, municipality_id: int, target_id: int, source_id: int) -> Contact:
    """Moves the source's identities, conversations and messages to the target; the source remains as a pointer."""
    if target_id == source_id:
        raise InvalidInput(N_("Ein Kontakt kann nicht mit sich selbst zusammengeführt werden."))
    target = get_contact(session, municipality_id=municipality_id, contact_id=target_id)
    source = get_contact(session, municipality_id=municipality_id, contact_id=source_id)
    if source.merged_into_id is not None:
        raise InvalidInput(N_("Kontakt {source_id} wurde bereits zusammengeführt."), source_id=source_id)
    session.execute(
        update(ContactIdentity).where(ContactIdentity.contact_id == source_id).values(contact_id=target_id)  # type: ignore[arg-type]
    )
    session.execute(
        update(Conversation).where(Conversation.contact_id == source_id).values(contact_id=target_id)  # type: ignore[arg-type]
    )
    # Commands and survey answers are kept on the contact, not in a case: they move too.
    session.execute(update(Message).where(col(Message.contact_id) == source_id).values(contact_id=target_id))
    source.merged_into_id = target_id
    if not target.display_name:
        target.display_name = source.display_name
    session.flush()
    return target
