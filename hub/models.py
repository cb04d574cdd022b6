"""Imports every table so that SQLModel.metadata (Alembic, tests) sees the whole schema."""

from hub.contacts.models import Contact, ContactIdentity
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message, ReferenceCounter
from hub.tenancy.models import ApiToken, ChannelAccount, Municipality, StaffUser, Team

__all__ = [
    "ApiToken",
    "Attachment",
    "ChannelAccount",
    "Contact",
    "ContactIdentity",
    "Conversation",
    "InboundEvent",
    "Message",
    "Municipality",
    "ReferenceCounter",
    "StaffUser",
    "Team",
]
