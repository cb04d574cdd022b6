"""A citizen who lost the status link asks for it by reference: a one-time link goes out on the request's own channel.

The answer is the same whether the reference exists or not, so the reference alone tells nobody
anything; only whoever reads the channel the request came from gets the link. Asking is limited
per client and per reference as typed (exists or not), like failed sign-ins (hub.tenancy.signin).
The link works once and for `LINK_VALID`, and leads to the status page of hub.inbox.public_status.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, delete, select

from hub.contacts.models import Contact
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound, TooManyRequests
from hub.i18n import DEFAULT_LANGUAGE, N_
from hub.inbox import service
from hub.inbox.models import Conversation, StatusLink
from hub.inbox.public_status import status_url
from hub.ratelimit import RateLimiter, try_acquire
from hub.settings import Settings
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference

LINK_VALID = timedelta(minutes=30)
# Asking is cheap for the asker and sends a message: a few per hour per client, fewer per reference.
ASKING_WINDOW_SECONDS = 3600
ASKS_PER_CLIENT = 10
ASKS_PER_REFERENCE = 3
_THROTTLED = N_("Sie haben schon mehrmals nach einem Link gefragt. Bitte versuchen Sie es in {minutes} Minuten wieder.")
_NO_REFERENCE = N_("Bitte geben Sie die Vorgangsnummer ein, z. B. {example}.")
_USED_OR_EXPIRED = N_(
    "Dieser Link ist abgelaufen oder wurde schon benutzt. Fragen Sie mit Ihrer Vorgangsnummer einfach einen neuen an."
)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalised_reference(reference: str) -> str:
    """The reference as the town writes it: no spaces around, upper case (A-2026-00042)."""
    return reference.strip().upper()


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/anfrage-link/{token}"


def _hold_to_limits(limiter: RateLimiter, *, municipality_id: int, client: str, reference: str) -> None:
    for key, limit in (
        (f"status-lookup:client:{client}", ASKS_PER_CLIENT),
        (f"status-lookup:reference:{municipality_id}:{reference}", ASKS_PER_REFERENCE),
    ):
        if not try_acquire(limiter, key, limit, ASKING_WINDOW_SECONDS):
            _, left = limiter.count(key, ASKING_WINDOW_SECONDS)
            raise TooManyRequests(_THROTTLED, minutes=max(1, math.ceil(left / 60)))


def request_status_link(
    session: Session,
    *,
    settings: Settings,
    limiter: RateLimiter,
    municipality: Municipality,
    reference: str,
    client: str,
) -> int | None:
    """Queues a one-time status link to the channel of the request `reference`; returns the message to send.

    None when there is nothing to send to (no such request, or one from a public comment thread,
    whose answers everyone reads); the caller says the same either way.
    """
    assert municipality.id is not None
    reference = normalised_reference(reference)
    if not reference:
        raise InvalidInput(_NO_REFERENCE, example=f"{municipality.reference_prefix}-2026-00042")
    _hold_to_limits(limiter, municipality_id=municipality.id, client=client, reference=reference)
    conversation = session.exec(
        select(Conversation).where(Conversation.municipality_id == municipality.id, Conversation.reference == reference)
    ).first()
    if conversation is None or conversation.thread_key is not None:
        return None
    account = session.get(ChannelAccount, conversation.channel_account_id)
    if account is None or not account.active:
        return None
    # Links nobody opened in time are of no use to anyone: they go when a new one is made.
    session.exec(delete(StatusLink).where(col(StatusLink.expires_at) < utcnow() - LINK_VALID))
    token = secrets.token_urlsafe(24)
    assert conversation.id is not None
    session.add(
        StatusLink(
            municipality_id=municipality.id, conversation_id=conversation.id, token_sha256=_digest(token),
            expires_at=utcnow() + LINK_VALID,
        )
    )  # fmt: skip
    contact = session.get(Contact, conversation.contact_id)
    language = contact.language if contact else DEFAULT_LANGUAGE
    values = {
        "municipality": municipality.name, "reference": conversation.reference, "link": link_url(settings, token),
        "minutes": int(LINK_VALID.total_seconds() // 60),
    }  # fmt: skip
    overrides = preference(municipality, "texts")
    message = service.queue_outbound(
        session, conversation=conversation, author=None, automated=True,
        text=render_message("status_link.txt.j2", language, overrides=overrides, **values),
        subject=render_message("status_link_subject.txt.j2", language, overrides=overrides, **values),
    )  # fmt: skip
    return message.id


def open_status_link(session: Session, *, settings: Settings, token: str) -> str:
    """Uses up the one-time link and answers with the request's status page; a used or old link is refused.

    One UPDATE that only one caller can win, so a link opened twice at once still works once.
    """
    now = utcnow()
    claimed = session.execute(
        update(StatusLink)
        .where(
            col(StatusLink.token_sha256) == _digest(token.strip()),
            col(StatusLink.used_at).is_(None),
            col(StatusLink.expires_at) > now,
        )
        .values(used_at=now)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise NotFound(_USED_OR_EXPIRED)
    link = session.exec(select(StatusLink).where(StatusLink.token_sha256 == _digest(token.strip()))).one()
    conversation = session.get(Conversation, link.conversation_id)
    assert conversation is not None
    return status_url(settings, conversation)
