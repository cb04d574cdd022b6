"""Shared unit-test fixtures: `fake_provider` (a real local HTTP server) and a migrated SQLite database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import Session

from hub import db, ratelimit
from hub import settings as settings_module
from hub.migrate import upgrade_to_head
from hub.settings import Settings
from tests.running_hub import start_postgres_database


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake provider received it.

    `path` excludes the query string, which is parsed into `query`. Header names are
    lower-cased because HTTP header names are case-insensitive. `form` is filled only for
    `application/x-www-form-urlencoded` bodies, `json` only for bodies that parse as JSON.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]]
    json: Any


@dataclass(frozen=True)
class CannedResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    path_contains: str | None


@dataclass
class FakeProvider:
    """A provider API stand-in: queue answers with `respond`, then inspect `requests`.

    Queued answers are served first-in first-out; one with `path_contains` only answers a
    request whose path contains that text. With nothing matching, the answer is 200 `{}`.
    """

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    _queue: list[CannedResponse] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(
        self,
        status: int,
        body: dict[str, Any] | list[Any] | str,
        headers: dict[str, str] | None = None,
        path_contains: str | None = None,
    ) -> None:
        if isinstance(body, str):
            encoded, content_type = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            encoded, content_type = json.dumps(body).encode("utf-8"), "application/json"
        all_headers = {"Content-Type": content_type, **(headers or {})}
        with self._lock:
            self._queue.append(CannedResponse(status, encoded, all_headers, path_contains))

    def _answer(self, request: RecordedRequest) -> CannedResponse:
        with self._lock:
            self.requests.append(request)
            for index, canned in enumerate(self._queue):
                if canned.path_contains is None or canned.path_contains in request.path:
                    return self._queue.pop(index)
        return CannedResponse(200, b"{}", {"Content-Type": "application/json"}, None)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _handler_for(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive, as the SDKs' pooled clients expect.
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = urlsplit(self.path)
            content_type = self.headers.get("Content-Type", "")
            is_form = content_type.startswith("application/x-www-form-urlencoded")
            recorded = RecordedRequest(
                method=self.command,
                path=target.path,
                query=parse_qs(target.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                form=parse_qs(body.decode("utf-8"), keep_blank_values=True) if is_form else {},
                json=_parse_json(body) if body else None,
            )
            canned = provider._answer(recorded)
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        # http.server dispatches on these exact names.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            # Keep pytest output clean; the recorded requests are the log.
            pass

    return Handler


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    provider = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(provider))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    provider.url = f"http://{host!s}:{port}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fake-provider",
        daemon=True,
    )
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at a fresh data folder whose SQLite database has been migrated to head."""
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path))
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    # The embedded limiter lives in this process: one test's sign-in failures must not throttle the next.
    ratelimit._limiter.cache_clear()
    upgrade_to_head()
    yield settings_module.get_settings()
    db.get_engine().dispose()
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()


@contextmanager
def _fresh_backend(
    backend: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch, *, migrated: bool
) -> Iterator[Settings]:
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path))
    drop = None
    if backend == "production":
        url, drop = start_postgres_database()
        monkeypatch.setenv("RATHAUS_DATABASE_URL", url)
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    ratelimit._limiter.cache_clear()
    if migrated:
        upgrade_to_head()
    try:
        yield settings_module.get_settings()
    finally:
        db.get_engine().dispose()
        settings_module.get_settings.cache_clear()
        db.get_engine.cache_clear()
        if drop:
            drop()


BACKENDS = ["embedded", pytest.param("production", marks=pytest.mark.production)]


@pytest.fixture(params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Like `settings`, once on SQLite and once on a new database on this machine's PostgreSQL."""
    with _fresh_backend(request.param, tmp_path, monkeypatch, migrated=True) as settings:
        yield settings


@pytest.fixture(params=BACKENDS)
def empty_backend_settings(
    request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Like `backend_settings`, with the database left empty, for tests that migrate it themselves."""
    with _fresh_backend(request.param, tmp_path, monkeypatch, migrated=False) as settings:
        yield settings


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session
