"""Records a citizen's opt-in on channels that need one before the hub may write unprompted (WhatsApp's rule)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from channels.registry import adapter_class, kinds_reaching
from hub.inbox.context import InboundContext
from hub.subscribers.consent import get_subscription
from hub.subscribers.models import ConsentEvent
from hub.tenancy.models import ChannelAccount

OPTED_IN = "opted_in"


@dataclass(frozen=True)
class OptInChannel:
    """A channel of the town that a sign-up form offers to opt in to: its kind and its name for people."""

    kind: str
    label: str


def opt_in_channels(session: Session, *, municipality_id: int, identity: str) -> list[OptInChannel]:
    """The town's active channels reaching `identity` addresses that need an opt-in before writing unprompted."""
    kinds = [kind for kind in kinds_reaching(identity) if adapter_class(kind).opt_in_required]
    found = session.exec(
        select(ChannelAccount.kind)
        .where(
            ChannelAccount.municipality_id == municipality_id,
            col(ChannelAccount.kind).in_(kinds),
            col(ChannelAccount.active).is_(True),
        )
        .distinct()
    ).all()
    return [OptInChannel(kind, adapter_class(kind).label) for kind in kinds if kind in found]


def add_opt_in(
    session: Session, *, municipality_id: int, contact_id: int, kind: str, source: str, evidence: dict[str, Any]
) -> None:
    """The consent event that lets the hub write to the contact unprompted on `kind`."""
    subscription = get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    session.add(
        ConsentEvent(
            municipality_id=municipality_id, contact_id=contact_id,
            subscription_id=subscription.id if subscription else None, action=OPTED_IN, channel_kind=kind,
            source=source, evidence=evidence,
        )
    )  # fmt: skip
    session.flush()


def opted_in(session: Session, *, contact_ids: Collection[int], kind: str) -> set[int]:
    """Those of the contacts who opted in to `kind`, by a first message there or on a form (a STOP ends the
    subscription, so whoever is still a recipient has not withdrawn it)."""
    return set(
        session.exec(
            select(ConsentEvent.contact_id).where(
                col(ConsentEvent.contact_id).in_(contact_ids),
                ConsentEvent.action == OPTED_IN,
                ConsentEvent.channel_kind == kind,
            )
        ).all()
    )


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
    add_opt_in(
        ctx.session, municipality_id=ctx.account.municipality_id, contact_id=contact_id, kind=kind,
        source=adapter.consent_source,
        evidence={"message_id": ctx.message.id, "provider_id": ctx.inbound.provider_id, "how": "first_message"},
    )  # fmt: skip
    return None
