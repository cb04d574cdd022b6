"""`/metrics`: the hub's counters plus what is read at scrape time (queue depths, broadcast progress, overdue cases)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select

from hub.broadcasts.models import Broadcast, Delivery
from hub.db import session_scope, utcnow
from hub.errors import Forbidden, NotSignedIn
from hub.i18n import N_
from hub.inbox.sla import overdue_conversation_ids
from hub.metrics import exposition
from hub.settings import Settings, get_settings
from hub.tenancy.models import Municipality
from workers.app import QUEUES, celery_app

log = logging.getLogger(__name__)
router = APIRouter(tags=["monitoring"])

_NO_TOKEN = N_("Für /metrics fehlt das Token (Authorization: Bearer …) oder es stimmt nicht.")
_NOT_LOOPBACK = N_("/metrics ist ohne RATHAUS_METRICS_TOKEN nur von diesem Rechner aus erreichbar.")


class _ReadAtScrape(Collector):
    """Values that live in the broker and the database, read when Prometheus asks and only then."""

    def collect(self) -> Iterable[Metric]:
        yield from _queue_depths()
        with session_scope() as session:
            progress = GaugeMetricFamily(
                "rathaus_broadcast_deliveries",
                "Deliveries of the broadcasts being sent, by state.",
                labels=["town", "broadcast", "state"],
            )
            rows = session.exec(
                select(Municipality.slug, Delivery.broadcast_id, Delivery.state, func.count())
                .join(Broadcast, col(Broadcast.id) == Delivery.broadcast_id)
                .join(Municipality, col(Municipality.id) == Broadcast.municipality_id)
                .where(Broadcast.status == "sending")
                .group_by(col(Municipality.slug), col(Delivery.broadcast_id), col(Delivery.state))
            ).all()
            for slug, broadcast_id, state, count in rows:
                progress.add_metric([slug, str(broadcast_id), state], count)
            yield progress
            breaches = GaugeMetricFamily(
                "rathaus_response_target_breaches",
                "Unresolved conversations past their first-response or resolution target.",
                labels=["town"],
            )
            now = utcnow()
            for town in session.exec(select(Municipality)).all():
                assert town.id is not None
                breaches.add_metric(
                    [town.slug], len(overdue_conversation_ids(session, municipality_id=town.id, now=now))
                )
            yield breaches


def _queue_depths() -> Iterable[Metric]:
    depth = GaugeMetricFamily("rathaus_queue_depth", "Tasks waiting in each broker queue.", labels=["queue"])
    try:
        with celery_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            for queue in QUEUES:
                # passive: only look, never create; a queue no one has used yet holds nothing.
                try:
                    depth.add_metric([queue], channel.queue_declare(queue, passive=True).message_count)
                except connection.channel_errors:
                    depth.add_metric([queue], 0)
                    channel = connection.channel()
    except Exception:
        # The counters are still worth having when the broker is away; the missing depths say so.
        log.warning("metrics: could not read the queue depths from the broker", exc_info=True)
        return
    yield depth


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scrape(*, settings: Settings, request: Request) -> bytes:
    """The metrics for a caller with the token, or, without a token configured, for one on this machine."""
    expected = settings.metrics_token
    if expected:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
            raise NotSignedIn(_NO_TOKEN)
    elif not _from_loopback(request):
        raise Forbidden(_NOT_LOOPBACK)
    return exposition([_ReadAtScrape()])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(scrape(settings=get_settings(), request=request), media_type=CONTENT_TYPE_LATEST)
