"""Finding a citizen by a channel address, and reading one with their identities."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hub.contacts.models import NAME_FROM_CHANNEL, NAME_FROM_CITIZEN, NAME_FROM_STAFF, Contact, ContactIdentity
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.tenancy.administration import audit

NAME_LIMIT = 200


def resolve_contact(
    session: Session,
    *,
    municipality_id: int,
    kind: str,
    address: str,
    display_name: str | None = None,
    name_origin: str = NAME_FROM_CITIZEN,
    language: str | None = None,
) -> Contact:
    """The contact behind an address, created on first sight (race-safe on the unique identity).

    `display_name` is the name the citizen typed (`name_origin` citizen) or the channel shows
    (channel); see `offer_name` for when it is taken.
    """
    identity = _find_identity(session, municipality_id, kind, address)
    if identity is None:
        contact = Contact(municipality_id=municipality_id, language=_language(language))
        offer_name(contact, display_name, origin=name_origin)
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
    offer_name(known, display_name, origin=name_origin)
    return known


def offer_name(contact: Contact, name: str | None, *, origin: str) -> None:
    """Takes a name for a contact that has none; a channel's name also replaces an older one from a channel.

    So a Telegram user who changes their name is shown by the new one, while a name staff set, or
    the citizen typed, stays whatever the channel shows.
    """
    name = (name or "").strip()[:NAME_LIMIT]
    if not name:
        return
    if not contact.display_name or (origin == NAME_FROM_CHANNEL and contact.name_origin == NAME_FROM_CHANNEL):
        contact.display_name, contact.name_origin = name, origin


def rename_contact(
    session: Session, *, municipality_id: int, contact_id: int, name: str, actor_id: int | None
) -> Contact:
    """Sets the name staff give a contact, which no channel replaces; an empty name lets the channels fill it again."""
    contact = get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    name = name.strip()
    if len(name) > NAME_LIMIT:
        raise InvalidInput(N_("Der Name ist zu lang (höchstens {limit} Zeichen)."), limit=NAME_LIMIT)
    if "\n" in name or "\r" in name:
        raise InvalidInput(N_("Der Name muss in eine Zeile passen."))
    contact.display_name, contact.name_origin = (name, NAME_FROM_STAFF) if name else (None, None)
    session.add(contact)
    # Not the name itself: the trail outlives an erasure of the contact.
    audit(
        session, actor_id=actor_id, municipality_id=municipality_id, action="contact.renamed",
        object_type="contact", object_id=contact.id, cleared=not name,
    )  # fmt: skip
    session.flush()
    return contact


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
