"""The context the inbound pipeline's steps share, and the type of a step, for the steps other domains register."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from channels.base import InboundMessage
from hub.contacts.models import Contact
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount


@dataclass
class InboundContext:
    session: Session
    settings: Settings
    event: InboundEvent
    account: ChannelAccount
    inbound: InboundMessage
    contact: Contact | None = None
    conversation: Conversation | None = None
    is_new_conversation: bool = False
    message: Message | None = None
    # Outbound messages written by a step, to be enqueued once the transaction commits.
    to_send: list[int] = field(default_factory=list)


# A step returns None (go on) or an outcome that ends the run.
Step = Callable[[InboundContext], str | None]
