"""One route per channel kind: verify the provider's signature, parse, store, answer as it expects.

Nothing here waits for the pipeline: a stored event is handed to a worker, and the provider
gets its answer as soon as the row is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlmodel import Session

from channels.base import PayloadError, VerificationError, Webhook, WebhookRequest
from channels.registry import adapter_classes, build_adapter
from hub.db import session_scope
from hub.errors import DomainError, Forbidden, NotFound, TooLarge
from hub.i18n import N_
from hub.inbox.pipeline import apply_statuses_now
from hub.inbox.receive import StoredEvent, store_events, store_unreadable
from hub.logs import bind_town
from hub.metrics import WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED
from hub.settings import get_settings
from hub.tenancy.models import ChannelAccount, Municipality
from workers.app import enqueue_inbound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@dataclass(frozen=True)
class Received:
    stored: int
    unreadable_reason: str | None = None


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 before it is read in full when it is too large."""
    limit = get_settings().max_webhook_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            N_("Nachricht zu groß: {declared} Bytes, höchstens {limit} erlaubt."), declared=declared, limit=limit
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise TooLarge(N_("Nachricht zu groß: mehr als {limit} Bytes."), limit=limit)
    return bytes(body)


def public_request(request: Request, body: bytes) -> WebhookRequest:
    """The request as the provider sent it: Twilio signs the public URL, not the one behind a proxy."""
    url = get_settings().public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return WebhookRequest(
        url=url,
        headers={key.lower(): value for key, value in request.headers.items()},
        body=body,
        method=request.method,
        query=dict(request.query_params),
    )


def load_account(kind: str, channel_id: int) -> ChannelAccount:
    with session_scope() as session:
        return _account(session, kind, channel_id)


def _account(session: Session, kind: str, channel_id: int) -> ChannelAccount:
    account = session.get(ChannelAccount, channel_id)
    if account is None or not account.active:
        raise NotFound(N_("Kanal {channel_id} ist nicht eingerichtet."), channel_id=channel_id)
    if account.kind != kind:
        raise NotFound(
            N_("Kanal {channel_id} ist ein {actual}-Kanal, kein {kind}-Kanal."),
            channel_id=channel_id,
            actual=account.kind,
            kind=kind,
        )
    town = session.get(Municipality, account.municipality_id)
    if town is not None:
        bind_town(town.slug)
    return account


def receive(kind: str, channel_id: int, webhook: WebhookRequest) -> Received:
    # One session and one commit for the account, the check, the store and the delivery reports:
    # each extra session cost a connection check-out with its ping and a commit. Reports are applied
    # in savepoints, so one that fails leaves its event stored and pending, for the queue.
    queued: list[int] = []
    with session_scope() as session:
        account = _account(session, kind, channel_id)
        adapter = build_adapter(kind, account.config, account.secrets)
        WEBHOOKS_RECEIVED.labels(kind).inc()
        try:
            adapter.verify(webhook)
        except VerificationError as error:
            WEBHOOKS_REJECTED.labels(kind, "signature").inc()
            log.warning("%s webhook for channel %s refused: %s", kind, channel_id, error)
            raise Forbidden(N_("Signatur abgelehnt: {error}"), error=error) from None
        reason: str | None = None
        stored: list[StoredEvent] = []
        try:
            events = adapter.parse(webhook)
        except PayloadError as error:
            reason = str(error)
        except Exception as error:
            # A parser that trips over a shape it did not expect must not lose a signed message.
            log.exception("%s parser failed on a signed payload for channel %s", kind, channel_id)
            reason = f"unerwarteter Aufbau der Nachricht ({type(error).__name__})"
        else:
            stored = store_events(session, account=account, request=webhook, events=events)
            queued = apply_statuses_now(session, channel_id, stored)
        if reason is not None:
            WEBHOOKS_REJECTED.labels(kind, "payload").inc()
            store_unreadable(session, account=account, request=webhook, reason=reason)
    if reason is not None:
        return Received(stored=0, unreadable_reason=reason)
    enqueue_inbound(queued)
    return Received(stored=len(stored))


async def handle(kind: str, channel_id: int, request: Request) -> Received:
    webhook = public_request(request, await read_body(request))
    received = await run_in_threadpool(receive, kind, channel_id, webhook)
    if received.unreadable_reason is not None:
        # Stored raw and flagged for staff; the provider is told what was wrong.
        raise DomainError(
            N_("Nachricht nicht lesbar (gespeichert zur Prüfung): {reason}"), reason=received.unreadable_reason
        )
    return received


def _delivery_route(kind: str, answer: Webhook) -> Callable[[int, Request], Awaitable[Response]]:
    async def receive_webhook(channel_id: int, request: Request) -> Response:
        await handle(kind, channel_id, request)
        return Response(answer.answer, media_type=answer.media_type)

    return receive_webhook


def _handshake_route(kind: str) -> Callable[[int, Request], Awaitable[Response]]:
    async def answer_handshake(channel_id: int, request: Request) -> Response:
        """The provider's check when the webhook is set up in its console (Meta's verify token)."""
        account = await run_in_threadpool(load_account, kind, channel_id)
        adapter = build_adapter(kind, account.config, account.secrets)
        try:
            challenge = adapter.verify_subscription(dict(request.query_params))
        except VerificationError as error:
            raise Forbidden(N_("Verify-Token abgelehnt: {error}"), error=error) from None
        return PlainTextResponse(challenge)

    return answer_handshake


def _add_routes() -> None:
    """One route per kind the provider calls, as each adapter's Webhook declares; mail has none."""
    for adapter in adapter_classes():
        if adapter.webhook is None:
            continue
        path, name = f"/{adapter.kind}/{{channel_id}}", f"{adapter.kind}_webhook"
        deliveries = _delivery_route(adapter.kind, adapter.webhook)
        router.add_api_route(path, deliveries, methods=["POST"], name=name)
        if adapter.webhook.status_reports:
            router.add_api_route(f"{path}/status", deliveries, methods=["POST"], name=f"{name}_status")
        if adapter.webhook.handshake:
            router.add_api_route(path, _handshake_route(adapter.kind), methods=["GET"], name=f"{name}_handshake")


_add_routes()
