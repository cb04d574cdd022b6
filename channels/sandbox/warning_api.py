"""The federal warning API (api31) for tests and the demo: dashboards per Kreis, details and areas, and control.

Speaks the shapes of channels/warning_api.py's docstring: `/api31/dashboard/{ARS}.json` lists the
current warnings whose regional keys share ground with the Kreis asked for (with an ETag and
Last-Modified, answering 304 to a matching If-None-Match); `/api31/warnings/{id}.json` is the
current version as CAP in JSON, `/api31/warnings/{id}.geojson` its area. `/sandbox/warnings`
publishes, updates, cancels and withdraws warnings, and `/sandbox/warnings/fault` makes the API
fail (503) or answer details without their `info`, as a half-written answer would.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from channels.warning_api import overlaps

router = APIRouter(tags=["warning api"])

# What each system's warnings look like: id prefix, CAP sender, category, event and sender's name.
SYSTEMS: dict[str, tuple[str, str, str, str, str]] = {
    "MOWAS": ("mow", "DE-TH-MK-W001", "Safety", "Gefahreninformation", "Leitstelle Musterkreis"),
    "KATWARN": ("kat", "CAP@katwarn.de", "Safety", "Gefahreninformation", "Landkreis Musterkreis"),
    "BIWAPP": ("biw", "CAP@biwapp.de", "Safety", "Gefahreninformation", "Landkreis Musterkreis"),
    "DWD": ("dwd", "CAP@dwd.de", "Met", "STURMBÖEN", "Deutscher Wetterdienst"),
    "LHP": ("lhp", "CAP@hochwasserzentralen.de", "Env", "Hochwasser", "Landeshochwasserzentrale"),
    "POLICE": ("pol", "CAP@polizei.de", "Security", "Polizeimeldung", "Landespolizeiinspektion"),
}


class Publication(BaseModel):
    provider: Literal["MOWAS", "KATWARN", "BIWAPP", "DWD", "LHP", "POLICE"] = "MOWAS"
    severity: Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"] = "Severe"
    headline: str = Field(min_length=1)
    description: str = ""
    instruction: str = ""
    region_keys: list[str] = Field(min_length=1, description="12-digit regional keys (ARS) the warning is for.")
    area: str = Field("", description="areaDesc; the region keys when empty.")
    geometry: dict[str, Any] | None = Field(None, description="A GeoJSON Polygon or MultiPolygon of the area.")
    status: Literal["Actual", "Exercise", "Test"] = "Actual"
    urgency: Literal["Immediate", "Expected", "Future", "Past", "Unknown"] = "Immediate"
    certainty: Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"] = "Observed"


class Change(BaseModel):
    severity: Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"] | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None


class Fault(BaseModel):
    mode: Literal["error", "partial"] | None = None


@dataclass
class _Entry:
    id: str
    publication: Publication
    sent: datetime
    version: int = 1
    msg_type: str = "Alert"
    earlier: list[str] = field(default_factory=list)


class WarningFeed:
    """The warnings the emulated API currently serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._counter = 0
        self.changed_at = datetime.now(UTC).replace(microsecond=0)
        self.fault: str | None = None

    def _touch(self) -> None:
        self.changed_at = datetime.now(UTC).replace(microsecond=0)

    def publish(self, publication: Publication) -> _Entry:
        with self._lock:
            self._counter += 1
            prefix, sender, *_ = SYSTEMS[publication.provider]
            now = datetime.now(UTC).replace(microsecond=0)
            warning_id = f"{prefix}.DE-TH-MK-{sender[-4:]}-{now:%Y%m%d}-{self._counter:03d}-000"
            entry = _Entry(id=warning_id, publication=publication, sent=now)
            self._entries[warning_id] = entry
            self._touch()
            return entry

    def change(self, warning_id: str, change: Change | None) -> _Entry:
        """A new version: an update with the changed fields, or (no change given) the cancellation."""
        with self._lock:
            entry = self._entries.get(warning_id)
            if entry is None:
                raise HTTPException(404, f"no warning {warning_id}")
            entry.earlier.append(_reference(entry))
            entry.version += 1
            entry.sent = datetime.now(UTC).replace(microsecond=0)
            if change is None:
                entry.msg_type = "Cancel"
            else:
                entry.msg_type = "Update"
                entry.publication = entry.publication.model_copy(update=change.model_dump(exclude_none=True))
            self._touch()
            return entry

    def withdraw(self, warning_id: str) -> None:
        with self._lock:
            if self._entries.pop(warning_id, None) is None:
                raise HTTPException(404, f"no warning {warning_id}")
            self._touch()

    def for_region(self, ars: str) -> list[_Entry]:
        with self._lock:
            return [
                entry
                for entry in self._entries.values()
                if any(overlaps(key, ars) for key in entry.publication.region_keys)
            ]

    def get(self, warning_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(warning_id)
        if entry is None:
            raise HTTPException(404, f"no warning {warning_id}")
        return entry


def _reference(entry: _Entry) -> str:
    sender = SYSTEMS[entry.publication.provider][1]
    return f"{sender},{entry.id},{entry.sent.isoformat()}"


def _digest(entry: _Entry) -> str:
    return hashlib.sha256(f"{entry.id}/{entry.version}".encode()).hexdigest()


def _dashboard_item(entry: _Entry) -> dict[str, Any]:
    publication = entry.publication
    return {
        "id": entry.id,
        "payload": {
            "version": entry.version,
            "type": "ALERT",
            "id": entry.id,
            "hash": _digest(entry),
            "data": {
                "headline": publication.headline,
                "provider": publication.provider,
                "severity": publication.severity,
                "msgType": entry.msg_type,
                "transKeys": {"event": "BBK-EVC-001"},
                "area": {"type": "ZGEM", "data": "+".join(publication.region_keys)},
            },
        },
        "i18nTitle": {"de": publication.headline},
        "sent": entry.sent.isoformat(),
    }


def _detail(entry: _Entry) -> dict[str, Any]:
    publication = entry.publication
    _, sender, category, event, sender_name = SYSTEMS[publication.provider]
    detail: dict[str, Any] = {
        "identifier": entry.id,
        "sender": sender,
        "sent": entry.sent.isoformat(),
        "status": publication.status,
        "msgType": entry.msg_type,
        "scope": "Public",
        "code": ["DVN:2"],
        "info": [
            {
                "language": "de-DE",
                "category": [category],
                "event": event,
                "urgency": "Past" if entry.msg_type == "Cancel" else publication.urgency,
                "severity": "Minor" if entry.msg_type == "Cancel" else publication.severity,
                "certainty": publication.certainty,
                "eventCode": [{"valueName": "profile:DE-BBK-EVENTCODE", "value": "BBK-EVC-001"}],
                "senderName": sender_name,
                "headline": publication.headline,
                "description": publication.description.replace("\n", "<br/>"),
                "instruction": publication.instruction,
                "web": "https://warnung.bund.de/meldungen",
                "parameter": [
                    {"valueName": "sender_langname", "value": sender_name},
                    {"valueName": "warnVerwaltungsbereiche", "value": ",".join(publication.region_keys)},
                ],
                "area": [
                    {
                        "areaDesc": publication.area or ", ".join(publication.region_keys),
                        "geocode": [{"valueName": "AreaId", "value": "0"}],
                    }
                ],
            }
        ],
    }
    if entry.earlier:
        detail["references"] = " ".join(entry.earlier)
    return detail


def _feed(request: Request) -> WarningFeed:
    feed: WarningFeed = request.app.state.warning_feed
    if feed.fault == "error":
        raise HTTPException(503, "Service Unavailable")
    return feed


@router.get("/api31/dashboard/{ars}.json")
def dashboard(ars: str, request: Request) -> Response:
    feed = _feed(request)
    body = json.dumps([_dashboard_item(entry) for entry in feed.for_region(ars)], ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Last-Modified": format_datetime(feed.changed_at, usegmt=True)}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/api31/warnings/{warning_id}.json")
def warning(warning_id: str, request: Request) -> JSONResponse:
    feed = _feed(request)
    detail = _detail(feed.get(warning_id))
    if feed.fault == "partial":
        del detail["info"]
    return JSONResponse(detail)


@router.get("/api31/warnings/{warning_id}.geojson")
def geometry(warning_id: str, request: Request) -> JSONResponse:
    entry = _feed(request).get(warning_id)
    if entry.publication.geometry is None:
        raise HTTPException(404, "no geometry")
    feature = {"type": "Feature", "geometry": entry.publication.geometry, "properties": {"id": entry.id}}
    return JSONResponse({"type": "FeatureCollection", "features": [feature]})


def _public(entry: _Entry) -> dict[str, Any]:
    return {"id": entry.id, "version": entry.version, "msgType": entry.msg_type, "sent": entry.sent.isoformat()}


@router.post("/sandbox/warnings")
def publish(publication: Publication, request: Request) -> dict[str, Any]:
    return _public(request.app.state.warning_feed.publish(publication))


@router.post("/sandbox/warnings/{warning_id}/update")
def update(warning_id: str, change: Change, request: Request) -> dict[str, Any]:
    return _public(request.app.state.warning_feed.change(warning_id, change))


@router.post("/sandbox/warnings/{warning_id}/cancel")
def cancel(warning_id: str, request: Request) -> dict[str, Any]:
    return _public(request.app.state.warning_feed.change(warning_id, None))


@router.delete("/sandbox/warnings/{warning_id}")
def withdraw(warning_id: str, request: Request) -> dict[str, Any]:
    request.app.state.warning_feed.withdraw(warning_id)
    return {"withdrawn": warning_id}


@router.put("/sandbox/warnings/fault")
def set_fault(fault: Fault, request: Request) -> dict[str, Any]:
    request.app.state.warning_feed.fault = fault.mode
    return {"mode": fault.mode}
