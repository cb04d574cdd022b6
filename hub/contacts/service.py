"""Finding a citizen by a channel address, and reading one with their identities."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hub.contacts.models import Contact, ContactIdentity
from hub.errors import NotFound
from hub.i18n import N_


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
