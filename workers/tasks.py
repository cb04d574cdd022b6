"""Celery tasks: run the inbound pipeline, send a message, and sweep up what was left behind."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.concurrency import get_implementation
from celery.concurrency.thread import TaskPool as ThreadPool
from celery.signals import worker_init, worker_process_init
from sqlmodel import Session

from channels.registry import adapter_classes, build_adapter
from hub.broadcasts.fanout import batch_ranges, claim_start, due_broadcast_ids, expand, queue_for, record_progress
from hub.broadcasts.models import Broadcast
from hub.broadcasts.sending import broadcasts_needing_dispatch, complete_finished, send_range, settle_stale
from hub.composition import install
from hub.consultations.feedback import apply_feedback_retention, queue_feedback_requests
from hub.consultations.gdpr import apply_booking_retention
from hub.consultations.reminders import queue_due_reminders
from hub.consultations.rooms import prepare_rooms
from hub.db import get_engine, session_scope
from hub.delivery.engine import OptedOutRecipient
from hub.inbox.imap_poll import poll_mailbox, polls_imap
from hub.inbox.models import InboundEvent
from hub.inbox.outbound import send_message, settle_stale_sending, stale_queued_ids
from hub.inbox.pipeline import process_event, stale_pending_events
from hub.inbox.retention import apply_retention
from hub.logs import about_town
from hub.metrics import SWEEPER_REPAIRS
from hub.official_warnings.relay import client_for, poll, relaying_towns
from hub.ratelimit import shared_limiter
from hub.settings import get_settings
from hub.subscribers.consent import stop as stop_subscription
from hub.tenancy.models import ChannelAccount
from hub.tenancy.service import list_channel_accounts
from workers.app import BULK_QUEUE, WARNINGS_QUEUE, celery_app, enqueue_broadcast_start, enqueue_inbound, enqueue_send

log = logging.getLogger(__name__)
# The worker imports this module to find its tasks: the domains are wired before any runs.
install()

MAX_PIPELINE_ATTEMPTS = 5
SWEEP_BATCH = 500


def warm_up() -> None:
    """Pays at start what the first task would: the channel modules and SDK clients, the database's first connection.

    Without it a warning that reaches a fresh worker waits about a second for imports and
    connections. A failure here (the database still starting) only leaves the cost to that task.
    """
    started = time.monotonic()
    try:
        adapter_classes()
        shared_limiter(get_settings())
        with session_scope() as session:  # the engine and its first connection
            accounts = [account for account in list_channel_accounts(session) if account.active]
        for account in accounts:
            build_adapter(account.kind, account.config, account.secrets).warm()
    except Exception:
        log.warning("warming the worker up failed; its first task pays the start-up instead", exc_info=True)
        return
    log.info("worker warmed up in %.2f s (%s channel accounts)", time.monotonic() - started, len(accounts))


@worker_process_init.connect
def _warm_pool_process(**_: Any) -> None:
    """A prefork child (or the solo pool), before it takes its first task."""
    warm_up()


@worker_init.connect
def _warm_threads_worker(sender: Any, **_: Any) -> None:
    """The threads pool (the CLI's default) runs tasks in the worker's own process, which no pool signal announces."""
    if issubclass(get_implementation(sender.pool_cls), ThreadPool):
        warm_up()


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
        if result.postback_ref:
            acknowledge_postback(event_id, result.postback_ref)


def acknowledge_postback(event_id: int, ref: str) -> None:
    """Confirms a button press where the provider waits for that (its spinner stops); best effort, after the commit."""
    with session_scope() as session:
        event = session.get(InboundEvent, event_id)
        account = session.get(ChannelAccount, event.channel_account_id) if event else None
    if account is not None:
        build_adapter(account.kind, account.config, account.secrets).acknowledge_postback(ref)


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
    result = send_message(get_settings(), message_id, on_opted_out=stop_everywhere)
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


@celery_app.task(name="workers.tasks.start_broadcast")
def start_broadcast(broadcast_id: int) -> str:
    """Claims a due broadcast (once), writes its deliveries, and hands out id ranges to send as each chunk is written.

    Run again by the sweeper for a broadcast whose tasks were lost: an expansion resumes where
    it stopped, and an expanded broadcast has its queued rows dispatched anew.
    """
    with session_scope() as session:
        started = claim_start(session, broadcast_id)
        broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or (not started and broadcast.status != "sending"):
        return f"not started: broadcast is {broadcast.status if broadcast else 'gone'}"
    if broadcast.expanded_at is not None:
        return dispatch(broadcast_id)
    queue = queue_for(broadcast)
    dispatched = 0

    def send_batches(ranges: list[tuple[int, int]]) -> None:
        nonlocal dispatched
        _send_batches(broadcast_id, ranges, queue)
        dispatched += len(ranges)

    expand(session_scope_factory, broadcast_id, on_chunk=send_batches)
    return f"dispatched {dispatched} batches"


def session_scope_factory() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def dispatch(broadcast_id: int) -> str:
    with session_scope() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        ranges = batch_ranges(session, broadcast_id)
        queue = queue_for(broadcast)
        record_progress(session, broadcast_id)
    _send_batches(broadcast_id, ranges, queue)
    return f"dispatched {len(ranges)} batches"


def _send_batches(broadcast_id: int, ranges: list[tuple[int, int]], queue: str) -> None:
    for first_id, last_id in ranges:
        celery_app.send_task("workers.tasks.send_broadcast_batch", args=[broadcast_id, first_id, last_id], queue=queue)


@celery_app.task(name="workers.tasks.send_broadcast_batch")
def send_broadcast_batch(broadcast_id: int, first_id: int, last_id: int) -> str:
    outcome = send_range(get_settings(), broadcast_id, first_id, last_id, on_opted_out=stop_everywhere)
    if outcome.yielded or outcome.retry_in is not None:
        with session_scope() as session:
            broadcast = session.get(Broadcast, broadcast_id)
            queue = queue_for(broadcast) if broadcast else BULK_QUEUE
        countdown = 1.0 if outcome.yielded else outcome.retry_in
        celery_app.send_task(
            "workers.tasks.send_broadcast_batch", args=[broadcast_id, first_id, last_id], queue=queue,
            countdown=countdown,
        )  # fmt: skip
    return f"sent {outcome.sent}, failed {outcome.failed}, skipped {outcome.skipped}, yielded {outcome.yielded}"


def stop_everywhere(session: Session, recipient: OptedOutRecipient) -> None:
    """The provider says the citizen blocked us or texted STOP there, whatever was sent: stop everything, everywhere."""
    stop_subscription(
        session, municipality_id=recipient.municipality_id, contact_id=recipient.contact_id,
        channel_kind=None, source="provider_error", evidence=recipient.evidence,
    )  # fmt: skip


@celery_app.task(name="workers.tasks.start_due_broadcasts")
def start_due_broadcasts() -> int:
    """Scheduled broadcasts whose time has come (and any whose start task was lost)."""
    with session_scope() as session:
        due = due_broadcast_ids(session)
    for broadcast_id in due:
        start_broadcast.apply_async(args=[broadcast_id], queue=WARNINGS_QUEUE)
    return len(due)


@celery_app.task(name="workers.tasks.poll_official_warnings")
def poll_official_warnings() -> dict[str, int]:
    """Each relaying town's dashboard of the federal warning API; new versions become broadcasts, started at once."""
    settings = get_settings()
    client = client_for(settings)
    totals = {"towns": 0, "taken": 0, "started": 0, "failed": 0}
    try:
        for municipality_id, slug in relaying_towns():
            with about_town(slug):
                result = poll(municipality_id=municipality_id, client=client, settings=settings)
            totals["towns"] += 1
            totals["taken"] += result.taken
            totals["failed"] += len(result.failed)
            for broadcast_id in result.to_start:
                enqueue_broadcast_start(broadcast_id, urgent=True)
                totals["started"] += 1
    finally:
        client.close()
    return totals


@celery_app.task(name="workers.tasks.send_consultation_reminders")
def send_consultation_reminders() -> int:
    """Reminders of booked consultation slots whose time has come, each queued once and sent as a reply."""
    with session_scope() as session:
        queued = queue_due_reminders(session)
    for message_id in queued:
        enqueue_send(message_id)
    return len(queued)


@celery_app.task(name="workers.tasks.prepare_video_rooms")
def prepare_video_rooms() -> int:
    """Rooms of video consultations starting soon that have none yet (the video server was down, or no one looked)."""
    with session_scope() as session:
        return prepare_rooms(session)


@celery_app.task(name="workers.tasks.send_feedback_requests")
def send_feedback_requests() -> int:
    """Feedback requests after consultations (and resolved cases, where wanted), each queued once and sent."""
    with session_scope() as session:
        queued = queue_feedback_requests(session, settings=get_settings())
    for message_id in queued:
        enqueue_send(message_id)
    return len(queued)


@celery_app.task(name="workers.tasks.apply_retention")
def delete_expired_messages() -> int:
    """Messages of conversations resolved longer ago than the municipality's retention period, feedback texts and
    what citizens gave with their bookings."""
    with session_scope() as session:
        deleted = apply_retention(session)
        apply_feedback_retention(session)
        apply_booking_retention(session)
        return deleted


@celery_app.task(name="workers.tasks.sweep")
def sweep() -> dict[str, int]:
    """Re-queues inbound events and outbound messages whose tasks were lost (crash, broker restart)."""
    settings = get_settings()
    with session_scope() as session:
        # Bounded: after an outage the backlog is worked off a slice per sweep instead of one
        # ever larger task every interval.
        pending = stale_pending_events(session, settings, SWEEP_BATCH)
        queued = stale_queued_ids(session, settings)
        uncertain = settle_stale_sending(session, settings)
        deliveries = settle_stale(session, settings)
        redispatch = broadcasts_needing_dispatch(session, settings)
        completed = complete_finished(session)
    enqueue_inbound([event_id for event_id, _ in pending])
    for message_id in queued:
        enqueue_send(message_id)
    for broadcast_id in redispatch:
        start_broadcast.apply_async(args=[broadcast_id], queue=WARNINGS_QUEUE)
    reports = sum(1 for _, event_type in pending if event_type == "status")
    recovered = {
        "inbound_requeued": len(pending) - reports,
        "outbound_requeued": len(queued),
        "outbound_uncertain": uncertain,
        "broadcasts_redispatched": len(redispatch),
        "broadcasts_completed": len(completed),
        **deliveries,
    }
    for kind, repaired in recovered.items():
        if repaired:
            SWEEPER_REPAIRS.labels(kind).inc(repaired)
    counts = {**recovered, "reports_retried": reports}
    if any(recovered.values()):
        log.warning("sweeper: %s", counts)
    elif reports:
        # Reports on messages whose send is not recorded yet wait for it a while: no failure.
        log.info("sweeper: %s", counts)
    return counts
