"""Turns the adapters' normalised events into JSON for the inbound table, and back."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Any

from channels.base import (
    Attachment,
    CalendarReply,
    IgnoredEvent,
    InboundEvent,
    InboundMessage,
    Location,
    OptOut,
    StatusUpdate,
)

EVENT_TYPES: dict[type, str] = {
    InboundMessage: "message",
    StatusUpdate: "status",
    OptOut: "opt_out",
    IgnoredEvent: "ignored",
}


def event_type(event: InboundEvent) -> str:
    return EVENT_TYPES[type(event)]


def event_key(event: InboundEvent) -> str:
    """The id that makes a retried delivery a no-op (status callbacks: one per sid and status)."""
    if isinstance(event, StatusUpdate):
        return event.event_id or f"{event.provider_id}:{event.status}"
    return event.provider_id


def without_nul(event: InboundEvent) -> InboundEvent:
    """The event with every NUL character taken out of its texts (attachment bytes stay as they are).

    No channel shows the character, and PostgreSQL cannot store it in a text column: a citizen's
    message that carries one would stay in the pipeline, failing each time, and never reach the inbox.
    """
    return _cleaned(event)


def _cleaned(value: Any) -> Any:
    # Returns the very object where nothing changed: a webhook on the hot path almost never has a NUL.
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, tuple):
        items = tuple(_cleaned(item) for item in value)
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for field in dataclasses.fields(value):
            original = getattr(value, field.name)
            cleaned = _cleaned(original)
            if cleaned is not original:
                changed[field.name] = cleaned
        return dataclasses.replace(value, **changed) if changed else value
    return value


def to_json(event: InboundEvent) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif field.name == "attachments":
            value = [_attachment_to_json(attachment) for attachment in value]
        elif isinstance(value, Location | CalendarReply):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[field.name] = value
    return data


def _attachment_to_json(attachment: Attachment) -> dict[str, Any]:
    data = dataclasses.asdict(attachment)
    raw = data.pop("data")
    data["data_b64"] = base64.b64encode(raw).decode() if raw is not None else None
    return data


def message_from_json(data: dict[str, Any]) -> InboundMessage:
    values = dict(data)
    if values.get("sent_at"):
        values["sent_at"] = datetime.fromisoformat(values["sent_at"])
    values["in_reply_to"] = tuple(values.get("in_reply_to") or ())
    values["attachments"] = tuple(
        Attachment(
            filename=item.get("filename"),
            content_type=item["content_type"],
            url=item.get("url"),
            # An empty file is b"", not a file without bytes (one only the provider holds).
            data=base64.b64decode(item["data_b64"]) if item.get("data_b64") is not None else None,
            size=item.get("size"),
        )
        for item in values.get("attachments") or ()
    )
    values["location"] = Location(**values["location"]) if values.get("location") else None
    values["calendar_reply"] = CalendarReply(**values["calendar_reply"]) if values.get("calendar_reply") else None
    return InboundMessage(**values)


def status_from_json(data: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate(**data)


def opt_out_from_json(data: dict[str, Any]) -> OptOut:
    return OptOut(**data)
