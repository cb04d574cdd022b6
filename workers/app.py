"""The Celery app: broker from settings, one queue per kind of work, and the helpers that enqueue."""

from __future__ import annotations

import logging

from celery import Celery
from kombu import Queue

import hub.logs  # noqa: F401 (connects the signals that carry the request id and town into tasks)
from hub.settings import get_settings

log = logging.getLogger(__name__)

INBOUND_QUEUE = "inbound"
REPLIES_QUEUE = "replies"
WARNINGS_QUEUE = "warnings"
BULK_QUEUE = "bulk"
# In priority order: a worker on several queues takes warnings first and bulk last.
QUEUES = (WARNINGS_QUEUE, REPLIES_QUEUE, INBOUND_QUEUE, BULK_QUEUE)


def _is_database(broker_url: str) -> bool:
    return broker_url.startswith(("sqla+", "sqlite", "postgresql", "mysql"))


def _transport_options(broker_url: str) -> dict[str, object]:
    if _is_database(broker_url):
        # kombu hands these to create_engine: wait for SQLite's lock instead of failing, since
        # the web app, the worker and beat all write to the one broker file.
        return {"connect_args": {"timeout": 30}}
    # Redis: an unacknowledged task comes back after this long (the sweeper covers the rest);
    # queues are polled in the order the worker lists them, not round-robin.
    return {"visibility_timeout": 3600, "queue_order_strategy": "priority"}


def create_celery() -> Celery:
    settings = get_settings()
    broker_url = settings.effective_broker_url
    database_broker = _is_database(broker_url)
    app = Celery(
        "rathaus",
        broker=broker_url.removeprefix("sqla+") if database_broker else broker_url,
        broker_transport="workers.broker:DatabaseTransport" if database_broker else None,
        include=["workers.tasks"],
    )
    app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=INBOUND_QUEUE,
        task_routes={
            "workers.tasks.process_inbound": {"queue": INBOUND_QUEUE},
            "workers.tasks.send_outbound": {"queue": REPLIES_QUEUE},
            "workers.tasks.sweep": {"queue": INBOUND_QUEUE},
            "workers.tasks.poll_mailboxes": {"queue": INBOUND_QUEUE},
            "workers.tasks.start_due_broadcasts": {"queue": WARNINGS_QUEUE},
            "workers.tasks.apply_retention": {"queue": INBOUND_QUEUE},
            "workers.tasks.send_consultation_reminders": {"queue": REPLIES_QUEUE},
            "workers.tasks.prepare_video_rooms": {"queue": REPLIES_QUEUE},
            "workers.tasks.send_feedback_requests": {"queue": REPLIES_QUEUE},
            # Waits on another server's answers: not on the warnings queue, whose workers only send.
            "workers.tasks.poll_official_warnings": {"queue": INBOUND_QUEUE},
        },
        # Tasks only carry ids and are safe to run twice, so acknowledge after running:
        # a worker that dies mid-task gives the task back instead of losing it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(broker_url),
        beat_schedule={
            "sweep": {"task": "workers.tasks.sweep", "schedule": settings.sweep_interval_seconds},
            "poll-mailboxes": {"task": "workers.tasks.poll_mailboxes", "schedule": settings.imap_poll_seconds},
            # Hourly is plenty for a period counted in days; each run works off a bounded slice.
            "apply-retention": {"task": "workers.tasks.apply_retention", "schedule": 3600},
            "consultation-reminders": {"task": "workers.tasks.send_consultation_reminders", "schedule": 60},
            "video-rooms": {"task": "workers.tasks.prepare_video_rooms", "schedule": 300},
            "feedback-requests": {"task": "workers.tasks.send_feedback_requests", "schedule": 300},
            "official-warnings": {
                "task": "workers.tasks.poll_official_warnings",
                "schedule": settings.warning_poll_seconds,
            },
            "start-due-broadcasts": {
                "task": "workers.tasks.start_due_broadcasts",
                "schedule": settings.broadcast_start_seconds,
            },
        },
        worker_hijack_root_logger=False,
    )
    return app


celery_app = create_celery()


def enqueue_inbound(event_ids: list[int]) -> None:
    """Hands stored events to the pipeline; if the broker is down, the sweeper will find them."""
    if not event_ids:
        return
    try:
        celery_app.send_task("workers.tasks.process_inbound", args=[event_ids], queue=INBOUND_QUEUE)
    except Exception:  # the row is stored; losing the task only delays it until the next sweep
        log.exception("could not enqueue inbound events %s; the sweeper will pick them up", event_ids)


def enqueue_broadcast_start(broadcast_id: int, *, urgent: bool) -> None:
    """Starts a due broadcast now; if this fails, beat's start_due_broadcasts starts it instead."""
    try:
        celery_app.send_task(
            "workers.tasks.start_broadcast", args=[broadcast_id], queue=WARNINGS_QUEUE if urgent else BULK_QUEUE
        )
    except Exception:
        log.exception("could not enqueue broadcast %s; beat will start it", broadcast_id)


def enqueue_broadcast_batch(broadcast_id: int, first_id: int, last_id: int, *, queue: str) -> None:
    """Sends a range of a broadcast's deliveries; if this fails, the sweeper dispatches the queued rows."""
    try:
        celery_app.send_task("workers.tasks.send_broadcast_batch", args=[broadcast_id, first_id, last_id], queue=queue)
    except Exception:
        log.exception("could not enqueue deliveries %s-%s of broadcast %s", first_id, last_id, broadcast_id)


def enqueue_send(message_id: int, *, countdown: float | None = None) -> None:
    try:
        celery_app.send_task(
            "workers.tasks.send_outbound",
            args=[message_id],
            queue=REPLIES_QUEUE,
            countdown=countdown,
        )
    except Exception:
        log.exception("could not enqueue message %s; the sweeper will pick it up", message_id)
