"""JSON routes for contacts: read one with its identities and context, name one, merge two into one."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from hub.contacts import service
from hub.contacts.merge import merge
from hub.contacts.registry import CONTACT_CONTEXT, contact_record
from hub.db import get_session
from hub.tenancy.auth import require_permission
from hub.tenancy.models import StaffUser

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


class IdentityOut(BaseModel):
    kind: str
    address: str


class ContactOut(BaseModel):
    id: int
    display_name: str | None
    name_origin: str | None = Field(
        description="Where the name came from: channel (the channel's profile), citizen (typed by them), staff; "
        "a name from a channel follows what the channel shows, the others are never replaced by it"
    )
    language: str
    merged_into_id: int | None
    created_at: datetime
    identities: list[IdentityOut]


class ContactContextOut(BaseModel):
    """The contact with what the domains hold of them: `conversations`, `subscription`, `consent`, `bookings`."""

    model_config = ConfigDict(extra="allow")

    contact: ContactOut


class MergeIn(BaseModel):
    other_contact_id: int


class ContactNameIn(BaseModel):
    display_name: str = Field(description="The name staff give the contact; empty lets the channels name them again")


def contact_out(session: Session, contact_id: int, municipality_id: int) -> ContactOut:
    contact = service.get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    identities = service.identities_of(session, contact_id=contact_id)
    return ContactOut(
        **contact.model_dump(),
        identities=[IdentityOut(kind=identity.kind, address=identity.address) for identity in identities],
    )


@router.get("/{contact_id}", response_model=ContactOut)
def get_contact(
    contact_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> ContactOut:
    return contact_out(session, contact_id, user.municipality_id)


@router.patch("/{contact_id}", response_model=ContactOut)
def name_contact(
    contact_id: int,
    body: ContactNameIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> ContactOut:
    """Sets the contact's name; no channel replaces it afterwards. Recorded in the audit log."""
    service.rename_contact(
        session, municipality_id=user.municipality_id, contact_id=contact_id, name=body.display_name,
        actor_id=user.id,
    )  # fmt: skip
    session.commit()
    return contact_out(session, contact_id, user.municipality_id)


@router.get("/{contact_id}/context", response_model=ContactContextOut)
def get_contact_context(
    contact_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> ContactContextOut:
    """The contact with their conversations, subscription and consent, and consultation bookings."""
    contact = contact_out(session, contact_id, user.municipality_id)
    found = contact_record(session, page=CONTACT_CONTEXT, municipality_id=user.municipality_id, contact_id=contact_id)
    return ContactContextOut(contact=contact, **found)


@router.post("/{contact_id}/merge", response_model=ContactOut)
def merge_contact(
    contact_id: int,
    body: MergeIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> ContactOut:
    """Makes the other contact part of this one: identities, conversations and consent move here."""
    merge(session, municipality_id=user.municipality_id, target_id=contact_id, source_id=body.other_contact_id)
    session.commit()
    return contact_out(session, contact_id, user.municipality_id)
