"""Records a citizen's opt-in on channels that need one before the hub may write unprompted (WhatsApp's rule)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from channels.registry import adapter_class
from hub.inbox.context import InboundContext
from hub.subscribers.consent import get_subscription
from hub.subscribers.models import ConsentEvent

OPTED_IN = "opted_in"


def record_opt_in(ctx: InboundContext) -> str | None:
    """Pipeline step: the citizen's first message on such a channel (or the first after a STOP) is their opt-in.

    It runs before the commands, so that "ANMELDEN" as a first message is recorded as the opt-in
    it is; a first "STOP" is recorded too, and the stop that follows it wins.
    """
    adapter = adapter_class(ctx.account.kind)
    if not adapter.opt_in_required or ctx.inbound.automated:
        return None
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    contact_id, kind = ctx.contact.id, ctx.account.kind
    latest = dict(
        ctx.session.execute(
            select(ConsentEvent.action, func.max(ConsentEvent.id))
            .where(
                ConsentEvent.contact_id == contact_id,
                col(ConsentEvent.action).in_((OPTED_IN, "stopped")),
                (col(ConsentEvent.channel_kind) == kind) | (col(ConsentEvent.action) == "stopped"),
            )
            .group_by(col(ConsentEvent.action))
        ).all()
    )
    if latest.get(OPTED_IN) is not None and latest[OPTED_IN] > (latest.get("stopped") or 0):
        return None
    subscription = get_subscription(ctx.session, municipality_id=ctx.account.municipality_id, contact_id=contact_id)
    ctx.session.add(
        ConsentEvent(
            municipality_id=ctx.account.municipality_id,
            contact_id=contact_id,
            subscription_id=subscription.id if subscription else None,
            action=OPTED_IN,
            channel_kind=kind,
            source=adapter.consent_source,
            evidence={"message_id": ctx.message.id, "provider_id": ctx.inbound.provider_id, "how": "first_message"},
        )
    )
    ctx.session.flush()
    return None
