"""Expands an approved broadcast into one delivery row per recipient, in chunks, never all in memory.

Expansion is safe to run again after a crash: rows are inserted with ON CONFLICT DO NOTHING
on (broadcast, contact), and it is marked done only at the end.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from channels.base import window_open
from channels.registry import adapter_class, adapter_classes
from hub.broadcasts.models import Broadcast, Delivery
from hub.broadcasts.service import URGENT_KINDS, target_kinds
from hub.contacts.models import ContactIdentity
from hub.db import utcnow
from hub.inbox.models import Conversation, Message
from hub.inbox.reach import limit_reason, reached_today
from hub.subscribers.models import Subscription
from hub.subscribers.opt_in import opted_in
from hub.subscribers.selection import subscriber_query
from hub.tenancy.models import ChannelAccount

log = logging.getLogger(__name__)

CHUNK = 1000
BATCH = 100
# The heartbeat of a sending broadcast is written at most this often, however many batches run.
PROGRESS_SECONDS = 1.0


def kind_order() -> list[str]:
    """The channels in the order a recipient is tried on: free messengers before paid SMS, mail last."""
    return [adapter.kind for adapter in sorted(adapter_classes(), key=lambda adapter: adapter.broadcast_rank)]


def queue_for(broadcast: Broadcast) -> str:
    return "warnings" if broadcast.kind in URGENT_KINDS else "bulk"


def claim_start(session: Session, broadcast_id: int) -> bool:
    """approved and due -> sending; only one caller wins, so a broadcast starts once."""
    now = utcnow()
    started = session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.status) == "approved", col(Broadcast.send_at) <= now)
        .values(status="sending", started_at=now)
    )
    return bool(started.rowcount)  # type: ignore[attr-defined]


def record_progress(session: Session, broadcast_id: int) -> None:
    """Marks the broadcast's work as alive (expansion, dispatch, a batch), at most once per PROGRESS_SECONDS.

    The sweeper re-dispatches a sending broadcast only when this heartbeat has gone stale: rows
    that merely wait their turn behind running batches are not lost. The condition in the WHERE
    keeps concurrent batches from queueing on the row's lock once it is fresh.
    """
    now = utcnow()
    session.execute(
        update(Broadcast)
        .where(
            col(Broadcast.id) == broadcast_id,
            col(Broadcast.progress_at).is_(None)
            | (col(Broadcast.progress_at) <= now - timedelta(seconds=PROGRESS_SECONDS)),
        )
        .values(progress_at=now)
    )


def due_broadcast_ids(session: Session) -> list[int]:
    return [
        broadcast_id
        for broadcast_id in session.exec(
            select(Broadcast.id).where(Broadcast.status == "approved", col(Broadcast.send_at) <= utcnow())
        )
        if broadcast_id is not None
    ]


def recipient_query(broadcast: Broadcast, accounts: dict[str, ChannelAccount]) -> Select[tuple[int, str]]:
    """(contact_id, language) of the subscribers the broadcast targets who have an address on one of its channels.

    The channel filter is an EXISTS in SQL: a warning by Telegram to a thousand does not walk
    a town's every SMS subscriber only to find no route for them.
    """
    identity_kinds = sorted({adapter_class(kind).identity.kind for kind in accounts})
    reachable = exists().where(
        col(ContactIdentity.contact_id) == Subscription.contact_id, col(ContactIdentity.kind).in_(identity_kinds)
    )
    return subscriber_query(
        broadcast.municipality_id, broadcast.topic_ids, broadcast.topic_match,  # type: ignore[arg-type]
        broadcast.district_ids, broadcast.district_match,  # type: ignore[arg-type]
    ).where(reachable)  # fmt: skip


def _recipient_chunks(session: Session, query: Select[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Recipients in contact-id order, a chunk at a time (keyset pagination)."""
    after = 0
    while True:
        chunk = [tuple(row) for row in session.execute(query.where(col(Subscription.contact_id) > after).limit(CHUNK))]
        if not chunk:
            return
        yield chunk
        after = chunk[-1][0]


@dataclass(frozen=True)
class Route:
    """Where one recipient is reached: the account, the address, or why not."""

    account_id: int
    address: str
    skipped: str | None = None


@dataclass
class Budget:
    """What is left of an account's daily limit of recipients (ChannelAdapter.daily_recipient_limit)."""

    label: str
    limit: int
    reached: set[int] = field(default_factory=set)

    def take(self, contact_id: int) -> bool:
        """Counts the contact (once a day); False when a new one would exceed the limit."""
        if contact_id in self.reached:
            return True
        if len(self.reached) >= self.limit:
            return False
        self.reached.add(contact_id)
        return True


def daily_budgets(session: Session, accounts: dict[str, ChannelAccount]) -> dict[str, Budget]:
    """Per limited account: the contacts it has written to unprompted in the last 24 hours, and its limit."""
    budgets: dict[str, Budget] = {}
    for kind, account in accounts.items():
        adapter = adapter_class(kind)
        limit = adapter.daily_recipient_limit(account.config)
        if limit is not None:
            budgets[kind] = Budget(adapter.label, limit, reached_today(session, account))
    return budgets


def contacts_reached(session: Session, account_id: int, since: datetime) -> set[int]:
    """The broadcasts' part of an account's daily count (hub.inbox.reach): deliveries not skipped or failed."""
    return set(
        session.exec(
            select(Delivery.contact_id)
            .where(
                Delivery.channel_account_id == account_id,
                col(Delivery.created_at) >= since,
                col(Delivery.state).not_in(("skipped", "cancelled", "failed", "opted_out")),
            )
            .distinct()
        ).all()
    )


def target_accounts(session: Session, broadcast: Broadcast) -> dict[str, ChannelAccount]:
    """The account used per channel kind the broadcast may use (the first connected one)."""
    accounts: dict[str, ChannelAccount] = {}
    for account in session.exec(
        select(ChannelAccount)
        .where(
            ChannelAccount.municipality_id == broadcast.municipality_id,
            col(ChannelAccount.kind).in_(target_kinds(session, broadcast)),
            ChannelAccount.active == True,  # noqa: E712
        )
        .order_by(col(ChannelAccount.id))
    ):
        accounts.setdefault(account.kind, account)
    return accounts


def _routes(
    session: Session,
    broadcast: Broadcast,
    contact_ids: list[int],
    accounts: dict[str, ChannelAccount],
    budgets: dict[str, Budget],
    exclude: frozenset[str] = frozenset(),
) -> dict[int, Route]:
    identities: dict[int, dict[str, str]] = {}
    for contact_id, kind, address in session.execute(
        select(ContactIdentity.contact_id, ContactIdentity.kind, ContactIdentity.address).where(
            col(ContactIdentity.contact_id).in_(contact_ids),
            col(ContactIdentity.kind).in_({adapter_class(kind).identity.kind for kind in accounts}),
        )
    ):
        identities.setdefault(contact_id, {})[kind] = address
    # Channels that may only write within a window after the citizen's last message (Messenger):
    # a broadcast is unprompted, and the ways to write later may not carry news.
    last_inbound = {
        kind: _last_inbound(session, contact_ids, account)
        for kind, account in accounts.items()
        if adapter_class(kind).reply_window is not None
    }
    # An opt-in is a first message there (in last_inbound) or a consent given elsewhere (a form's box).
    opted_in_on = {
        kind: opted_in(session, contact_ids=contact_ids, kind=kind)
        for kind in accounts
        if adapter_class(kind).opt_in_required
    }
    routes: dict[int, Route] = {}
    now = utcnow()
    order = [adapter_class(kind) for kind in kind_order()]
    for contact_id in contact_ids:
        reachable = identities.get(contact_id, {})
        for adapter in order:
            account = accounts.get(adapter.kind)
            address = reachable.get(adapter.identity.kind)
            if adapter.kind in exclude or account is None or address is None:
                continue
            assert account.id is not None
            windowed = last_inbound.get(adapter.kind)
            if (
                adapter.opt_in_required
                and contact_id not in (windowed or {})
                and contact_id not in opted_in_on[adapter.kind]
            ):
                continue  # never opted in: not reachable on this channel
            reason = None
            # Outside the window only channels with templates may still carry news.
            closed = windowed is not None and not window_open(adapter, windowed.get(contact_id), now)
            if closed and not adapter.templates_outside_window:
                assert adapter.reply_window is not None
                hours = int(adapter.reply_window.total_seconds() // 3600)
                reason = f"{adapter.label}: außerhalb des {hours}-Stunden-Fensters"
            budget = budgets.get(adapter.kind)
            if reason is None and budget is not None and not budget.take(contact_id):
                # Beyond the sender's daily limit the provider would refuse; stop here and say so.
                reason = limit_reason(budget.label, budget.limit)
            if reason is not None:
                routes.setdefault(contact_id, Route(account.id, address, skipped=reason))
                if broadcast.fallback:
                    continue  # the next channel, if the contact has one, instead of skipping
                break
            routes[contact_id] = Route(account_id=account.id, address=address)
            break
    return routes


@dataclass(frozen=True)
class Plan:
    """Where the broadcast would go if it were expanded now: recipients per channel kind, and those skipped there."""

    reached: dict[str, int]
    skipped: dict[str, int]


def plan(session: Session, broadcast: Broadcast) -> Plan:
    """The routes expansion would write, counted and not stored: the figures staff confirm before sending."""
    accounts = target_accounts(session, broadcast)
    budgets = daily_budgets(session, accounts)
    kind_of = {account.id: kind for kind, account in accounts.items()}
    reached: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for chunk in _recipient_chunks(session, recipient_query(broadcast, accounts)):
        for route in _routes(session, broadcast, [contact_id for contact_id, _ in chunk], accounts, budgets).values():
            (skipped if route.skipped else reached)[kind_of[route.account_id]] += 1
    return Plan(reached=dict(reached), skipped=dict(skipped))


def reroute(session: Session, broadcast: Broadcast, contact_id: int, failed_kind: str) -> Route | None:
    """The contact's next channel after one that failed for good; only ever forward, so it cannot loop."""
    order = kind_order()
    tried = frozenset(order[: order.index(failed_kind) + 1])
    accounts = target_accounts(session, broadcast)
    route = _routes(session, broadcast, [contact_id], accounts, daily_budgets(session, accounts), exclude=tried).get(
        contact_id
    )
    return route if route is not None and route.skipped is None else None


def _last_inbound(session: Session, contact_ids: list[int], account: ChannelAccount) -> dict[int, Any]:
    """When each contact last wrote to the account, in a case or outside one."""
    inbound = (col(Message.channel_account_id) == account.id, col(Message.direction) == "inbound")
    in_cases = (
        select(col(Conversation.contact_id), func.max(Message.created_at))
        .join(Message, col(Message.conversation_id) == Conversation.id)
        .where(col(Conversation.contact_id).in_(contact_ids), *inbound)
        .group_by(col(Conversation.contact_id))
    )
    # A subscriber may never have written more than the subscription's button presses.
    outside_cases = (
        select(col(Message.contact_id), func.max(Message.created_at))
        .where(col(Message.contact_id).in_(contact_ids), *inbound)
        .group_by(col(Message.contact_id))
    )
    last: dict[int, Any] = {}
    for query in (in_cases, outside_cases):
        for contact_id, at in session.execute(query).all():
            last[contact_id] = max(at, last.get(contact_id, at))
    return last


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Delivery).on_conflict_do_nothing(index_elements=["broadcast_id", "contact_id"]), rows)


def expand(
    session_factory: Any, broadcast_id: int, *, on_chunk: Callable[[list[tuple[int, int]]], None] = lambda _: None
) -> int:
    """Writes the delivery rows (committing chunk by chunk) and returns how many there are.

    After each chunk's commit, `on_chunk` gets the id ranges of its queued rows, so the first
    batches are sending while the rest is still being written. A range also covers rows that an
    earlier, interrupted expansion wrote for the same contacts.
    """
    with session_factory() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        if broadcast.expanded_at is not None:
            return int(broadcast.recipient_count or 0)
        accounts = target_accounts(session, broadcast)
        budgets = daily_budgets(session, accounts)
        after = 0
        for chunk in _recipient_chunks(session, recipient_query(broadcast, accounts)):
            routes = _routes(session, broadcast, [contact_id for contact_id, _ in chunk], accounts, budgets)
            rows = [
                {
                    "municipality_id": broadcast.municipality_id,
                    "broadcast_id": broadcast_id,
                    "contact_id": contact_id,
                    "channel_account_id": route.account_id,
                    "address": route.address,
                    "language": language,
                    "state": "skipped" if route.skipped else "queued",
                    "error_message": route.skipped,
                    "created_at": utcnow(),
                    "attempts": 0,
                }
                for contact_id, language in chunk
                if (route := routes.get(contact_id)) is not None
            ]
            if rows:
                _insert_ignoring_duplicates(session, rows)
            record_progress(session, broadcast_id)
            ranges = _queued_ranges(session, broadcast_id, col(Delivery.contact_id).between(after + 1, chunk[-1][0]))
            session.commit()
            on_chunk(ranges)
            after = chunk[-1][0]
        total = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.broadcast_id == broadcast_id)
        ).one()
        broadcast.recipient_count = total
        broadcast.expanded_at = utcnow()
        session.commit()
    log.info("broadcast %s expanded into %s deliveries", broadcast_id, total)
    return int(total)


def batch_ranges(session: Session, broadcast_id: int) -> list[tuple[int, int]]:
    """Id ranges of about BATCH queued deliveries each: task arguments, never one task per recipient."""
    return _queued_ranges(session, broadcast_id, true())


def _queued_ranges(session: Session, broadcast_id: int, where: ColumnElement[bool]) -> list[tuple[int, int]]:
    low, high = session.execute(
        select(func.min(Delivery.id), func.max(Delivery.id)).where(
            col(Delivery.broadcast_id) == broadcast_id, col(Delivery.state) == "queued", where
        )
    ).one()
    if low is None:
        return []
    return [(start, min(start + BATCH - 1, high)) for start in range(low, high + 1, BATCH)]
