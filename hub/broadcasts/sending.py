"""Sends a range of a broadcast's deliveries through the delivery engine: claim, send, record.

A range is claimed with one UPDATE ... RETURNING (queued -> claimed), so a task that runs
twice, or two workers on one range, send each delivery once. Each row then moves claimed ->
sending with its own UPDATE just before the provider call: after a crash, claimed rows are
known unsent and go back to the queue, and only the few rows in flight are in doubt. An
announcement yields to a warning of the same municipality that is sending: it hands its
unsent rows back and comes again a moment later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import event, exists, func, update
from sqlmodel import Session, col, select

from channels.base import (
    Choice,
    OutboundMessage,
    PermanentError,
    Receipt,
)
from hub.broadcasts.calendar_entry import calendar_url, has_calendar, invitation_attachment
from hub.broadcasts.fanout import PROGRESS_SECONDS, Route, queue_for, record_progress, reroute
from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, link
from hub.broadcasts.models import Broadcast, Delivery
from hub.broadcasts.rendering import MailLinks, language_of, render
from hub.broadcasts.service import URGENT_KINDS
from hub.contacts.models import Contact
from hub.db import session_scope, utcnow
from hub.delivery.classes import ANNOUNCEMENT, WARNING, DeliveryClass
from hub.delivery.engine import OnOptedOut, OptedOutRecipient, Outcome, Sender
from hub.inbox.pipeline import apply_early_reports
from hub.settings import Settings
from hub.subscribers.models import Subscription
from hub.subscribers.topic_choice import topics_url
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import status_callback_url
from workers.app import enqueue_broadcast_batch

log = logging.getLogger(__name__)

UNFINISHED = ("queued", "claimed", "sending")
# A row moved to another channel is picked up by the same batch when it runs again.
FALLBACK_DELAY = 0.5
# How often a running announcement looks for a warning that should go first.
PREEMPTION_CHECK_SECONDS = 0.5
# The sender keeps no Delivery objects in its sessions, so the ORM's evaluation of each UPDATE
# against them (synchronize_session) is skipped: it was a fifth of the worker's time per message.
UPDATE_DELIVERIES = update(Delivery).execution_options(synchronize_session=False)


def delivery_class(broadcast: Broadcast) -> DeliveryClass:
    """Warnings and all-clears go in the priority lane and are sent again after a crash; the rest is bulk."""
    return WARNING if broadcast.kind in URGENT_KINDS else ANNOUNCEMENT


@dataclass
class BatchOutcome:
    sent: int = 0
    failed: int = 0
    retry_in: float | None = None
    yielded: bool = False
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


def claim_range(session: Session, broadcast_id: int, first_id: int, last_id: int) -> list[Delivery]:
    now = utcnow()
    claimed_ids = list(
        session.execute(
            UPDATE_DELIVERIES.where(
                col(Delivery.broadcast_id) == broadcast_id,
                col(Delivery.id).between(first_id, last_id),
                col(Delivery.state) == "queued",
                col(Delivery.next_attempt_at).is_(None) | (col(Delivery.next_attempt_at) <= now),
            )
            .values(state="claimed", claimed_at=now)
            .returning(col(Delivery.id))
        ).scalars()
    )
    if not claimed_ids:
        return []
    return list(session.exec(select(Delivery).where(col(Delivery.id).in_(claimed_ids)).order_by(col(Delivery.id))))


def warning_sending(session: Session, municipality_id: int) -> bool:
    """A warning or all-clear of this municipality is due or still has deliveries to go.

    Due counts too: a warning approved while every worker thread is inside an announcement's
    batch could not even start until those batches ended, so the announcement makes way first.
    """
    pending = exists().where(col(Delivery.broadcast_id) == Broadcast.id, col(Delivery.state).in_(UNFINISHED))
    due = (col(Broadcast.status) == "approved") & (col(Broadcast.send_at) <= utcnow())
    return (
        session.exec(
            select(Broadcast.id)
            .where(
                Broadcast.municipality_id == municipality_id,
                col(Broadcast.kind).in_(URGENT_KINDS),
                ((col(Broadcast.status) == "sending") & pending) | due,
            )
            .limit(1)
        ).first()
        is not None
    )


def _stopped_contacts(session: Session, contact_ids: list[int]) -> set[int]:
    return set(
        session.exec(
            select(Subscription.contact_id).where(
                col(Subscription.contact_id).in_(contact_ids), Subscription.state != "active"
            )
        )
    )


def send_range(
    settings: Settings,
    broadcast_id: int,
    first_id: int,
    last_id: int,
    *,
    on_opted_out: OnOptedOut,
) -> BatchOutcome:
    outcome = BatchOutcome()
    with session_scope() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != "sending":
            outcome.notes.append(f"broadcast is {broadcast.status if broadcast else 'gone'}")
            return outcome
        urgent = broadcast.kind in URGENT_KINDS
        if not urgent and warning_sending(session, broadcast.municipality_id):
            record_progress(session, broadcast_id)  # a batch that yields is alive too: it comes again soon
            outcome.yielded = True
            return outcome
        deliveries = claim_range(session, broadcast_id, first_id, last_id)
        # Last in the transaction, so that concurrent batches wait on the broadcast's row only for the commit.
        record_progress(session, broadcast_id)
    if not deliveries:
        return outcome

    senders: dict[int, Sender] = {}
    with session_scope() as session:
        stopped = _stopped_contacts(session, [d.contact_id for d in deliveries])
        names = dict(
            session.execute(
                select(Contact.id, Contact.display_name).where(col(Contact.id).in_([d.contact_id for d in deliveries]))
            ).all()
        )
        municipality = session.get(Municipality, broadcast.municipality_id)
        assert municipality is not None
        for account_id in {d.channel_account_id for d in deliveries}:
            account = session.get(ChannelAccount, account_id)
            assert account is not None
            senders[account_id] = Sender(settings, account, delivery_class(broadcast))

    # A receipt is recorded in the same transaction that marks the next row as sending (one
    # commit per message instead of two); before any wait, and at the end, it is recorded alone.
    unrecorded: list[tuple[Delivery, Receipt]] = []

    def record_unrecorded() -> None:
        while unrecorded:
            _record_receipt(*unrecorded.pop())

    try:
        _send_claimed(settings, broadcast, deliveries, senders, stopped, names, municipality, outcome,
                      unrecorded, record_unrecorded, on_opted_out=on_opted_out)  # fmt: skip
    finally:
        record_unrecorded()
    return outcome


def _send_claimed(
    settings: Settings,
    broadcast: Broadcast,
    deliveries: list[Delivery],
    senders: dict[int, Sender],
    stopped: set[int],
    names: dict[int, str | None],
    municipality: Municipality,
    outcome: BatchOutcome,
    unrecorded: list[tuple[Delivery, Receipt]],
    record_unrecorded: Callable[[], None],
    *,
    on_opted_out: OnOptedOut,
) -> None:
    assert broadcast.id is not None
    broadcast_id = broadcast.id
    urgent = broadcast.kind in URGENT_KINDS
    last_check = last_progress = time.monotonic()
    for position, delivery in enumerate(deliveries):
        if time.monotonic() - last_progress > PROGRESS_SECONDS:
            # A batch under a low rate cap may take longer than the stale age.
            last_progress = time.monotonic()
            with session_scope() as session:
                record_progress(session, broadcast_id)
        if not urgent and time.monotonic() - last_check > PREEMPTION_CHECK_SECONDS:
            last_check = time.monotonic()
            with session_scope() as session:
                if warning_sending(session, broadcast.municipality_id) or _status(session, broadcast_id) != "sending":
                    _release(session, [d.id for d in deliveries[position:] if d.id is not None])
                    outcome.yielded = True
                    return
        if delivery.contact_id in stopped:
            # STOP arrived after the rows were written: never message a citizen after STOP.
            _finish(delivery.id, state="skipped", error_message="abgemeldet", claimed_at=None)
            outcome.skipped += 1
            continue
        sender = senders[delivery.channel_account_id]
        # The slot first: if the limiter's store is unreachable, the row is still only claimed
        # (known unsent) rather than in flight (unknowable). The last receipt is recorded before
        # waiting, so that the provider's status callback finds it.
        slot = sender.reserve(before_waiting=record_unrecorded)
        assert slot is not None, "a broadcast's classes wait for a slot as long as it takes"
        marked = _mark_sending(delivery.id, record=unrecorded[-1] if unrecorded else None)
        unrecorded.clear()  # only once committed: if the UPDATE failed, the finally records it
        if not marked:
            sender.release(slot)
            continue  # cancelled since the claim
        message = _message(settings, broadcast, delivery, sender, names, municipality)
        sent = sender.send(slot, message, attempt=delivery.attempts + 1)
        if sent.receipt is not None:
            unrecorded.append((delivery, sent.receipt))
            outcome.sent += 1
        elif sent.state == "opted_out":
            with session_scope() as session:
                row = session.get(Delivery, delivery.id)
                assert row is not None
                _apply_failure(row, "opted_out", sent)
                on_opted_out(session, OptedOutRecipient(
                    municipality_id=row.municipality_id, contact_id=row.contact_id,
                    evidence={"delivery_id": row.id, "error": str(sent.error)},
                ))  # fmt: skip
            outcome.failed += 1
        elif sent.state == "rejected":
            assert isinstance(sent.error, PermanentError)
            if broadcast.fallback and _fall_back(broadcast, delivery, sender.account.kind, sent.error):
                outcome.retry_in = min(outcome.retry_in or FALLBACK_DELAY, FALLBACK_DELAY)
                continue
            _finish(delivery.id, state="failed", error_code=sent.error_code, error_message=sent.error_text)
            outcome.failed += 1
        elif sent.state == "retry":
            assert sent.retry_in is not None
            _finish(
                delivery.id, state="queued", next_attempt_at=utcnow() + timedelta(seconds=sent.retry_in),
                error_code=sent.error_code, error_message=sent.error_text,
            )  # fmt: skip
            outcome.retry_in = min(outcome.retry_in or sent.retry_in, sent.retry_in)
        else:
            _finish(delivery.id, state="failed", error_code=sent.error_code,
                    error_message=f"{sent.error} (aufgegeben)"[:500])  # fmt: skip
            outcome.failed += 1


def _message(
    settings: Settings,
    broadcast: Broadcast,
    delivery: Delivery,
    sender: Sender,
    names: dict[int, str | None],
    municipality: Municipality,
) -> OutboundMessage:
    # A mail carries its own unsubscribe and answer links, and an invitation's calendar entry
    # addressed to its recipient; a chat the "Themen ändern" link; other channels take STOP and
    # buttons (an SMS, paid per segment, gets no link but the calendar entry's).
    adapter = sender.adapter
    mail = adapter.supports_subject
    linked = mail or (adapter.max_segments is None and not adapter.templates_outside_window)
    rendered = render(
        broadcast, kind=sender.account.kind, language=delivery.language,
        recipient={"name": names.get(delivery.contact_id) or "", "district": ""},
        links=_mail_links(settings, broadcast, delivery, municipality.name) if linked else None,
        calendar_url=None if mail else calendar_url(settings, broadcast),
    )  # fmt: skip
    entry = (
        (invitation_attachment(broadcast, municipality, method="REQUEST", account=sender.account,
                               attendee=delivery.address),)
        if mail and has_calendar(broadcast)
        else ()
    )  # fmt: skip
    return OutboundMessage(
        to=delivery.address,
        text=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        headers=rendered.headers,
        attachments=entry,
        # Only replies to a citizen are auto-replies (null sender); a broadcast wants its bounces.
        automated=False,
        status_callback=status_callback_url(settings, sender.account),
        choices=tuple(
            Choice(label=option, payload=f"survey:{broadcast.id}:{index}")
            for index, option in enumerate(broadcast.options)
        )
        if sender.adapter.supports_choices
        else (),
        # A broadcast answers nothing: where the channel wants such messages as approved
        # templates, the language picks the template.
        language=language_of(broadcast, delivery.language),
        unprompted=True,
    )


def _fall_back(broadcast: Broadcast, delivery: Delivery, failed_kind: str, error: PermanentError) -> bool:
    """Moves the row to the contact's next channel and queues it again; False if there is none.

    The row stays the one per (broadcast, contact), so the citizen still gets it at most once.
    """
    with session_scope() as session:
        route = reroute(session, broadcast, delivery.contact_id, failed_kind)
        if route is None:
            return False
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery.id, col(Delivery.state) == "sending")
            .values(error_code=error.code, **_moved_to(route, f"{failed_kind}: {error}"))
        )
    return True


def _moved_to(route: Route, reason: str) -> dict[str, Any]:
    """A row's values once it goes to the contact's next channel, queued as new, with why the last one failed."""
    return {
        "state": "queued", "channel_account_id": route.account_id, "address": route.address, "claimed_at": None,
        "attempts": 0, "error_message": f"{reason}; nächster Kanal"[:500],
    }  # fmt: skip


def fall_back_after_report(session: Session, delivery_id: int) -> str | None:
    """A delivery the provider took and later reported failed (a WhatsApp number without WhatsApp): where the
    broadcast falls back, to the contact's next channel, once.

    Called by the report in its transaction. The row then belongs to the next account, so a
    repeated report on the first message no longer finds it; the guarded UPDATE keeps two
    reports at once from moving it twice. Its batch is sent once that transaction commits (else
    the sweeper finds the queued row).
    """
    delivery = session.get(Delivery, delivery_id, populate_existing=True)
    assert delivery is not None
    broadcast = session.get(Broadcast, delivery.broadcast_id)
    failed = session.get(ChannelAccount, delivery.channel_account_id)
    assert broadcast is not None and failed is not None and broadcast.id is not None
    if not broadcast.fallback or delivery.state != "failed":
        return None
    route = reroute(session, broadcast, delivery.contact_id, failed.kind)
    if route is None:
        return None
    reason = f"{failed.kind}: {delivery.error_message or delivery.error_code or 'nicht zugestellt'}"
    moved = session.execute(
        UPDATE_DELIVERIES.where(
            col(Delivery.id) == delivery_id, col(Delivery.state) == "failed",
            col(Delivery.channel_account_id) == failed.id,
        ).values(provider_id=None, next_attempt_at=None, **_moved_to(route, reason))
    )  # fmt: skip
    if not moved.rowcount:  # type: ignore[attr-defined]
        return None
    # A broadcast already reported completed has a row to send again.
    session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast.id, col(Broadcast.status) == "completed")
        .values(status="sending", finished_at=None)
    )
    broadcast_id, queue = broadcast.id, queue_for(broadcast)
    event.listen(
        session, "after_commit",
        lambda _: enqueue_broadcast_batch(broadcast_id, delivery_id, delivery_id, queue=queue), once=True,
    )  # fmt: skip
    return f"falls back to account {route.account_id}"


def _mail_links(settings: Settings, broadcast: Broadcast, delivery: Delivery, municipality: str) -> MailLinks:
    target = LinkTarget(
        municipality_id=broadcast.municipality_id, contact_id=delivery.contact_id, broadcast_id=delivery.broadcast_id
    )
    return MailLinks(
        municipality=municipality,
        unsubscribe_url=link(settings, UNSUBSCRIBE, target),
        answer_url=link(settings, ANSWER, target) if broadcast.options else None,
        topics_url=topics_url(settings, municipality_id=broadcast.municipality_id, contact_id=delivery.contact_id),
    )


def _status(session: Session, broadcast_id: int) -> str | None:
    broadcast = session.get(Broadcast, broadcast_id)
    return broadcast.status if broadcast else None


def _release(session: Session, delivery_ids: list[int]) -> None:
    """Hands claimed but unsent rows back for a later batch."""
    session.execute(
        UPDATE_DELIVERIES.where(col(Delivery.id).in_(delivery_ids), col(Delivery.state) == "claimed").values(
            state="queued", claimed_at=None
        )
    )


def _mark_sending(delivery_id: int | None, *, record: tuple[Delivery, Receipt] | None = None) -> bool:
    """claimed -> sending, the moment before the provider call; False if it was cancelled meanwhile.

    `record` is the previous row's receipt, written in the same transaction.
    """
    with session_scope() as session:
        if record is not None:
            _write_receipt(session, *record)
        marked = session.execute(
            UPDATE_DELIVERIES.where(col(Delivery.id) == delivery_id, col(Delivery.state) == "claimed").values(
                state="sending", claimed_at=utcnow(), attempts=Delivery.attempts + 1
            )
        )
        return bool(marked.rowcount)  # type: ignore[attr-defined]


def _apply_failure(row: Delivery, state: str, outcome: Outcome) -> None:
    row.state = state
    row.error_code, row.error_message = outcome.error_code, outcome.error_text


def _finish(delivery_id: int | None, **values: Any) -> None:
    with session_scope() as session:
        session.execute(UPDATE_DELIVERIES.where(col(Delivery.id) == delivery_id).values(**values))


def _write_receipt(session: Session, delivery: Delivery, receipt: Receipt) -> None:
    # The last problem (a retried 429, the channel it fell back from) stays as history.
    session.execute(
        UPDATE_DELIVERIES.where(col(Delivery.id) == delivery.id).values(
            state="sent", provider_id=receipt.provider_id, segments=receipt.segments, sent_at=utcnow()
        )
    )
    # The provider reports at once, and the receipt may wait for the next row's commit.
    apply_early_reports(session, channel_account_id=delivery.channel_account_id, provider_id=receipt.provider_id)


def _record_receipt(delivery: Delivery, receipt: Receipt) -> None:
    with session_scope() as session:
        _write_receipt(session, delivery, receipt)


def settle_stale(session: Session, settings: Settings) -> dict[str, int]:
    """Deliveries a crashed worker left behind.

    Claimed rows were never attempted and simply go back to the queue. For rows left in
    "sending", whether the provider took them is unknowable, and their delivery class decides:
    warnings are sent again (WARNING: a duplicate beats a missed one); announcements are not
    sent twice and are marked uncertain (ANNOUNCEMENT).
    """
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    unclaimed = session.execute(
        update(Delivery)
        .where(col(Delivery.state) == "claimed", col(Delivery.claimed_at) <= cutoff)
        .values(state="queued", claimed_at=None)
    ).rowcount  # type: ignore[attr-defined]
    stale = (col(Delivery.state) == "sending") & (col(Delivery.claimed_at) <= cutoff)
    urgent = select(Broadcast.id).where(col(Broadcast.kind).in_(URGENT_KINDS))
    resent = session.execute(
        update(Delivery).where(stale, col(Delivery.broadcast_id).in_(urgent)).values(state="queued", claimed_at=None)
    ).rowcount  # type: ignore[attr-defined]
    uncertain = session.execute(
        update(Delivery)
        .where(stale, col(Delivery.broadcast_id).not_in(urgent))
        .values(state="uncertain", error_message="Versand abgebrochen; ob zugestellt, ist unbekannt.")
    ).rowcount  # type: ignore[attr-defined]
    return {
        "deliveries_unclaimed": int(unclaimed),
        "deliveries_requeued": int(resent),
        "deliveries_uncertain": int(uncertain),
    }


def complete_finished(session: Session) -> list[int]:
    """Marks sending broadcasts with nothing left to send as completed."""
    open_rows = exists().where(col(Delivery.broadcast_id) == Broadcast.id, col(Delivery.state).in_(UNFINISHED))
    finished = list(
        session.exec(
            select(Broadcast).where(Broadcast.status == "sending", col(Broadcast.expanded_at).is_not(None), ~open_rows)
        )
    )
    for broadcast in finished:
        broadcast.status, broadcast.finished_at = "completed", utcnow()
    return [b.id for b in finished if b.id is not None]


def broadcasts_needing_dispatch(session: Session, settings: Settings) -> list[int]:
    """Sending broadcasts with work left whose heartbeat (record_progress) is past the stale age: their tasks were lost.

    Queued rows alone say nothing: in a long announcement most rows wait their turn behind the
    running batches, which keep the heartbeat fresh. A retry counts as left once it has been due
    for the stale age, since its task comes back only at its time.
    """
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    waiting = exists().where(
        col(Delivery.broadcast_id) == Broadcast.id,
        col(Delivery.state) == "queued",
        col(Delivery.next_attempt_at).is_(None) | (col(Delivery.next_attempt_at) <= cutoff),
    )
    quiet = func.coalesce(col(Broadcast.progress_at), col(Broadcast.started_at)) <= cutoff
    unexpanded = col(Broadcast.expanded_at).is_(None)
    return [
        broadcast_id
        for broadcast_id in session.exec(
            select(Broadcast.id).where(Broadcast.status == "sending", quiet, waiting | unexpanded)
        )
        if broadcast_id is not None
    ]
