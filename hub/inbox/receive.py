"""The inbox's one entry point for inbound traffic: store what arrived, exactly once, then hand it on."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from channels.base import InboundEvent, WebhookRequest
from hub.inbox.events import event_key, event_type, to_json
from hub.inbox.models import InboundEvent as InboundEventRow
from hub.tenancy.models import ChannelAccount

log = logging.getLogger(__name__)


def store_events(
    session: Session,
    *,
    account: ChannelAccount,
    request: WebhookRequest,
    events: Sequence[InboundEvent],
) -> list[int]:
    """Stores each event unless its provider id is already there; returns the ids of new pending rows.

    Each insert runs in its own savepoint so that a duplicate (a retried webhook, or two
    deliveries racing) is skipped without undoing the others.
    """
    assert account.id is not None
    content_type = request.headers.get("content-type", "")
    new_ids: list[int] = []
    for event in events:
        kind = event_type(event)
        row = InboundEventRow(
            municipality_id=account.municipality_id,
            channel_account_id=account.id,
            provider_id=event_key(event)[:300],
            event_type=kind,
            payload=to_json(event),
            raw=request.body,
            content_type=content_type[:120],
            state="ignored" if kind == "ignored" else "pending",
            outcome=getattr(event, "reason", None),
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            log.info("duplicate %s event %s on channel %s skipped", kind, row.provider_id, account.id)
            continue
        if row.state == "pending":
            assert row.id is not None
            new_ids.append(row.id)
    return new_ids


def store_unreadable(session: Session, *, account: ChannelAccount, request: WebhookRequest, reason: str) -> int:
    """Keeps a correctly signed body that the adapter could not read, flagged for staff.

    Its id is the body's digest, so the provider's retries of the same body store it once.
    """
    assert account.id is not None
    digest = "unreadable:" + hashlib.sha256(request.body).hexdigest()
    row = InboundEventRow(
        municipality_id=account.municipality_id,
        channel_account_id=account.id,
        provider_id=digest,
        event_type="unreadable",
        payload={"url": request.url, "headers": dict(request.headers)},
        raw=request.body,
        content_type=request.headers.get("content-type", "")[:120],
        state="flagged",
        outcome=reason[:300],
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return session.exec(
            select(InboundEventRow.id).where(
                InboundEventRow.channel_account_id == account.id,
                InboundEventRow.provider_id == digest,
            )
        ).one()  # type: ignore[return-value]
    assert row.id is not None
    return row.id
