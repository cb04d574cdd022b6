"""HTTP delivery of provider webhooks to the hub, reporting what the hub answered instead of raising."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

# Twilio waits 15 s for a webhook answer; Telegram and Meta are similar. Longer only hides bugs.
WEBHOOK_TIMEOUT_S = 15.0
# Connections of the shared client for callbacks posted from plain threads.
CALLBACK_CONNECTIONS = 32


@dataclass(frozen=True)
class Delivery:
    """The hub's answer: status_code None means it could not be reached (text says why)."""

    status_code: int | None
    response_text: str

    def to_json(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "response_text": self.response_text}


async def deliver(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    form: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    timeout: float = WEBHOOK_TIMEOUT_S,
) -> Delivery:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(method, url, headers=headers, content=content, data=form, params=params)
    except httpx.HTTPError as exc:
        log.warning("webhook %s %s failed: %r", method, url, exc)
        return Delivery(None, f"{type(exc).__name__}: {exc}")
    return Delivery(response.status_code, response.text)


_sync_client: httpx.Client | None = None
_sync_client_lock = threading.Lock()


def _shared_sync_client() -> httpx.Client:
    """One pooled client for every callback thread: a new client per POST builds an SSL context and
    a connection each time, which made the emulator, not the hub, the bottleneck of a broadcast."""
    global _sync_client
    with _sync_client_lock:
        if _sync_client is None:
            limits = httpx.Limits(max_connections=CALLBACK_CONNECTIONS, max_keepalive_connections=CALLBACK_CONNECTIONS)
            _sync_client = httpx.Client(limits=limits)
        return _sync_client


def deliver_sync(
    url: str, *, headers: dict[str, str], form: dict[str, str], timeout: float = WEBHOOK_TIMEOUT_S
) -> Delivery:
    """POST a form from a plain thread (Twilio status callbacks run outside the event loop)."""
    try:
        response = _shared_sync_client().post(url, headers=headers, data=form, timeout=timeout)
    except httpx.HTTPError as exc:
        log.warning("callback POST %s failed: %r", url, exc)
        return Delivery(None, f"{type(exc).__name__}: {exc}")
    return Delivery(response.status_code, response.text)


class CallbackQueue:
    """Callbacks waiting for one of a fixed pool of sender threads, as a provider queues its webhooks.

    A thread per callback grew without bound whenever the hub answered more slowly than messages
    were sent, until, 40,000 messages into a 100,000 run, no thread could be started and the
    sandbox answered sends with 500. A benchmark reads `pending` and may `discard` what waits.
    """

    def __init__(self, senders: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending = 0
        self._generation = 0

    def submit(self, job: Callable[[], None]) -> None:
        generation = self._generation

        def unless_discarded() -> None:
            if generation == self._generation:
                job()

        with self._lock:
            self._pending += 1
        self._pool.submit(unless_discarded).add_done_callback(self._finished)

    def discard(self) -> int:
        """Drops every callback not yet started; returns how many were waiting."""
        with self._lock:
            self._generation += 1
            return self._pending

    def _finished(self, _: Future[None]) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def pending(self) -> int:
        return self._pending
