"""What a citizen may see of their own request through the status link: their messages, its status, public replies.

The link carries the conversation's public reference and its unguessable `public_token`. A
wrong reference and a wrong token look the same (NotFound, same message), and the token is
compared in constant time, so the link cannot be guessed piece by piece.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from hub.errors import NotFound
from hub.i18n import N_
from hub.inbox.models import Conversation, Message
from hub.inbox.service import continued_case
from hub.settings import Settings
from hub.tenancy.models import Municipality

# Compared against when the reference does not exist, so that both failures take the same work.
_NO_TOKEN = "-" * 22


def status_path(conversation: Conversation) -> str:
    return f"/anfrage/{conversation.reference}/{conversation.public_token}"


def status_url(settings: Settings, conversation: Conversation) -> str:
    return settings.public_url.rstrip("/") + status_path(conversation)


@dataclass(frozen=True)
class CitizenView:
    municipality: Municipality
    conversation: Conversation
    # Oldest first: what the citizen wrote (inbound) and what the town hall answered (outbound).
    messages: list[Message]
    # What domains above the inbox add to the page (a problem report's place and photo), in order.
    sections: list[StatusSection] = field(default_factory=list)
    # The case this one was merged into, which goes on in its stead: the same citizen's, so its status may show.
    continued_in: Conversation | None = None


@dataclass(frozen=True)
class StatusSection:
    """A part of the status page another domain renders: a template under templates/ and its values."""

    template: str
    values: dict[str, Any]


# Given the conversation behind a status link, a section for its page, or None.
StatusSource = Callable[[Session, Conversation], StatusSection | None]
_SECTIONS: list[StatusSource] = []


def register_status_section(source: StatusSource) -> None:
    """Adds a section to every status page, after the status box; registering it again changes nothing."""
    if source not in _SECTIONS:
        _SECTIONS.append(source)


def citizen_view(session: Session, *, reference: str, token: str) -> CitizenView:
    """The conversation behind a status link; internal notes and automatic messages are never part of it."""
    # A list, not one row: the token, not the reference, is what picks the conversation.
    candidates = session.exec(select(Conversation).where(Conversation.reference == reference)).all()
    conversation = None
    for candidate in candidates:
        if hmac.compare_digest(candidate.public_token.encode(), token.encode()):
            conversation = candidate
    if not candidates:
        hmac.compare_digest(_NO_TOKEN.encode(), token.encode())  # the same work as for a reference that exists
    if conversation is None:
        raise NotFound(N_("Diese Anfrage gibt es nicht, oder der Link ist nicht vollständig."))
    municipality = session.get(Municipality, conversation.municipality_id)
    assert municipality is not None
    messages = session.exec(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.municipality_id == conversation.municipality_id,
            col(Message.direction).in_(("inbound", "outbound")),
            col(Message.automated).is_(False),
        )
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    sections = [section for source in _SECTIONS if (section := source(session, conversation)) is not None]
    kept = continued_case(session, conversation)
    return CitizenView(
        municipality=municipality, conversation=conversation, messages=list(messages), sections=sections,
        continued_in=kept if kept.id != conversation.id else None,
    )  # fmt: skip
