"""Log lines as JSON or text, each carrying the request id and the town of the request or task it belongs to."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from celery.signals import before_task_publish, task_postrun, task_prerun
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# Task header names: Celery hands a message's own headers to the task as attributes of task.request.
_REQUEST_ID_TASK_HEADER = "rathaus_request_id"
_TOWN_TASK_HEADER = "rathaus_town"
# An id from outside is taken only if it is short and plain, so that it cannot forge or flood a log line.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class LogContext:
    """What a request or task is: its id and, once known, the town (slug) it is about.

    Mutable on purpose: FastAPI runs sync dependencies and routes on copies of the request's context,
    and a town found there must still reach the lines logged after them; the copies share this object.
    """

    request_id: str
    town: str | None = None


_current: ContextVar[LogContext | None] = ContextVar("rathaus_log_context", default=None)


def bind_town(slug: str) -> None:
    """Marks the running request or task as being about the town `slug`; outside of one it does nothing."""
    context = _current.get()
    if context is not None:
        context.town = slug


@contextmanager
def about_town(slug: str) -> Iterator[None]:
    """Marks the lines logged within as about the town `slug`, then gives back the town before: one town of a
    loop over all of them, as beat's tasks run."""
    context = _current.get()
    before = context.town if context is not None else None
    bind_town(slug)
    try:
        yield
    finally:
        if context is not None:
            context.town = before


def start_log_context() -> None:
    """A new request id for work that no request or task carries, such as a mail at the SMTP listener."""
    _current.set(LogContext(request_id=uuid.uuid4().hex))


def _acceptable_request_id(value: str | None) -> str | None:
    return value if value is not None and _ACCEPTABLE_REQUEST_ID.fullmatch(value) else None


class RequestIdMiddleware:
    """Takes the request id from X-Request-ID or makes one, logs the request under it and answers with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), None)
        context = LogContext(request_id=_acceptable_request_id(incoming) or uuid.uuid4().hex)
        # Not reset afterwards: each request runs in a task of its own, and the server's error
        # middleware outside this one logs an unhandled error after it returned, in this context.
        _current.set(context)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", context.request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class _ContextFilter(logging.Filter):
    """Puts the request id and the town of the running request or task on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.request_id = context.request_id if context else None
        record.town = context.town if context else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for a log collector (Loki, Elasticsearch, journald's JSON view)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "town": getattr(record, "town", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A line to read in a terminal, with the request id and town in brackets where there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{name}={value}" for name in ("request_id", "town") if (value := getattr(record, name, None))]
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def log_handler(settings: Settings, stream: TextIO = sys.stderr) -> logging.Handler:
    """A handler writing to `stream` in the format the settings choose, with the context on each record."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    return handler


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), handlers=[log_handler(settings)], force=True)
    # httpx logs each request URL at INFO, and Telegram's URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@before_task_publish.connect
def _carry_context_into_task(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task enqueued while a request or task runs carries its id and town in the message's headers."""
    context = _current.get()
    if context is not None and headers is not None:
        headers[_REQUEST_ID_TASK_HEADER] = context.request_id
        headers[_TOWN_TASK_HEADER] = context.town


@task_prerun.connect
def _enter_task_context(task: Any = None, **_: Any) -> None:
    """A task runs under the request id it was enqueued with (a new one for beat's), and that request's town."""
    request = task.request if task is not None else None
    _current.set(
        LogContext(
            request_id=_acceptable_request_id(getattr(request, _REQUEST_ID_TASK_HEADER, None)) or uuid.uuid4().hex,
            town=getattr(request, _TOWN_TASK_HEADER, None),
        )
    )


@task_postrun.connect
def _leave_task_context(**_: Any) -> None:
    # A pool thread takes the next task: nothing of this one's context may stay on its lines.
    _current.set(None)
