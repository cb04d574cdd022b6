"""Celery tasks: run the inbound pipeline, send a message, and sweep up what was left behind."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import col, select

from hub.db import session_scope, utcnow
from hub.inbox.imap_poll import poll_mailbox, polls_imap
from hub.inbox.models import InboundEvent
from hub.inbox.outbound import send_message, settle_stale_sending, stale_queued_ids
from hub.inbox.pipeline import process_event
from hub.settings import get_settings
from hub.tenancy.service import list_channel_accounts
from workers.app import celery_app, enqueue_inbound, enqueue_send

log = logging.getLogger(__name__)

MAX_PIPELINE_ATTEMPTS = 5


@celery_app.task(name="workers.tasks.process_inbound")
def process_inbound(event_ids: list[int]) -> None:
    settings = get_settings()
    for event_id in event_ids:
        try:
            with session_scope() as session:
                result = process_event(session, settings, event_id)
        except Exception as error:
            log.exception("inbound event %s failed in the pipeline", event_id)
            _count_failure(event_id, error)
            continue
        for message_id in result.to_send:
            enqueue_send(message_id)


def _count_failure(event_id: int, error: Exception) -> None:
    """An event that keeps failing is flagged for staff instead of being retried forever."""
    with session_scope() as session:
        event = session.get(InboundEvent, event_id)
        if event is None or event.state != "pending":
            return
        event.attempts += 1
        event.outcome = f"Verarbeitung fehlgeschlagen: {error}"[:300]
        if event.attempts >= MAX_PIPELINE_ATTEMPTS:
            event.state = "flagged"


@celery_app.task(name="workers.tasks.send_outbound")
def send_outbound(message_id: int) -> str:
    result = send_message(get_settings(), message_id)
    if result.retry_in is not None:
        enqueue_send(message_id, countdown=result.retry_in)
    return result.outcome


@celery_app.task(name="workers.tasks.poll_mailboxes")
def poll_mailboxes() -> dict[str, int]:
    """Polls every email channel that has an IMAP mailbox; one failing mailbox does not stop the rest."""
    with session_scope() as session:
        accounts = [account for account in list_channel_accounts(session) if polls_imap(account)]
    totals = {"fetched": 0, "stored": 0, "flagged": 0, "failed_mailboxes": 0}
    for account in accounts:
        try:
            result = poll_mailbox(account)
        except Exception:
            log.exception("polling the IMAP mailbox of channel %s failed", account.id)
            totals["failed_mailboxes"] += 1
            continue
        totals["fetched"] += result.fetched
        totals["stored"] += result.stored
        totals["flagged"] += result.flagged
    return totals


@celery_app.task(name="workers.tasks.sweep")
def sweep() -> dict[str, int]:
    """Re-queues inbound events and outbound messages whose tasks were lost (crash, broker restart)."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    with session_scope() as session:
        pending = list(
            session.exec(
                select(InboundEvent.id).where(InboundEvent.state == "pending", col(InboundEvent.received_at) <= cutoff)
            ).all()
        )
        queued = stale_queued_ids(session, settings)
        uncertain = settle_stale_sending(session, settings)
    enqueue_inbound([event_id for event_id in pending if event_id is not None])
    for message_id in queued:
        enqueue_send(message_id)
    counts = {
        "inbound_requeued": len(pending),
        "outbound_requeued": len(queued),
        "outbound_uncertain": uncertain,
    }
    if any(counts.values()):
        log.warning("sweeper: %s", counts)
    return counts
