"""The federal warning API (warnung.bund.de/api31, what the NINA app reads): a region's dashboard and each warning.

`GET /dashboard/{ARS}.json` lists the warnings for a Kreis: data exists only per Kreis, so the
last seven digits of the 12-digit regional key (ARS) are zeros. Each item is
`{id, payload: {version, type, id, hash, data: {headline, provider, severity, msgType, transKeys, area}},
i18nTitle, sent}`; a new `payload.version` of the same `id` is an update or a cancellation.
`GET /warnings/{id}.json` is the warning as a CAP alert in JSON (identifier, sender, sent, status,
msgType, scope, references, info[] with category, event, urgency, severity, certainty, headline,
description, instruction, web, parameter[] and area[]); lists of pairs are `[{valueName, value}]`,
and the parameter `warnVerwaltungsbereiche` names the regional keys the warning is for.
`GET /warnings/{id}.geojson` is its area. The API documents no caching headers; the client sends
If-None-Match and If-Modified-Since all the same, and takes a 304 when one comes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

REQUEST_TIMEOUT_SECONDS = 15.0
USER_AGENT = "RathausHub/1.0 (Warnungen)"
# Positions where the levels of a regional key end: Land, Regierungsbezirk, Kreis, Verband, Gemeinde.
ARS_LEVELS = (2, 3, 5, 9, 12)
# The id's prefix names the warning system it came from (mow.…, dwd.…); the dashboard says so too.
PROVIDERS = {"mow": "MOWAS", "kat": "KATWARN", "biw": "BIWAPP", "dwd": "DWD", "lhp": "LHP", "pol": "POLICE"}
MSG_TYPES = ("Alert", "Update", "Cancel")


class WarningApiError(Exception):
    """The API could not be reached, or answered with an error or with something that is not a whole warning."""


def is_ars(value: str) -> bool:
    return re.fullmatch(r"\d{12}", value) is not None


def kreis_of(ars: str) -> str:
    """The key the dashboard is asked for: the Kreis's first five digits and seven zeros."""
    return ars[:5] + "0000000"


def _level_prefix(code: str) -> str:
    """The significant part of a key: up to the first level after which there are only zeros."""
    for end in (0, *ARS_LEVELS):
        if set(code[end:]) <= {"0"}:
            return code[:end]
    return code


def covers(code: str, ars: str) -> bool:
    """Whether a warning for the regional key `code` is for the place `ars` (the same place or one containing it)."""
    return ars.startswith(_level_prefix(code))


def overlaps(code: str, ars: str) -> bool:
    """Whether two regional keys share ground: one contains the other."""
    return covers(code, ars) or covers(ars, code)


@dataclass(frozen=True)
class DashboardItem:
    """One warning as the dashboard lists it: which, in which version, from which system."""

    id: str
    version: int
    provider: str
    severity: str
    msg_type: str
    headline: str


@dataclass(frozen=True)
class Dashboard:
    """The dashboard's items, or `not_modified` (304) with none; the validators to send next time."""

    items: tuple[DashboardItem, ...]
    not_modified: bool
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class WarningDetail:
    """A warning's detail: the CAP alert's fields and its first (German) info."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[str, ...]
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    instruction: str
    web: str | None
    sender_name: str
    areas: tuple[str, ...]
    region_keys: tuple[str, ...]
    expires: datetime | None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _time(value: Any, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise WarningApiError(f"{field} is not a time: {value!r}") from None
    if moment.tzinfo is None:
        raise WarningApiError(f"{field} has no time zone: {value!r}")
    return moment


def _msg_type(value: Any) -> str:
    # The archive writes "ALERT", the details "Alert": compare without case.
    for known in MSG_TYPES:
        if str(value).casefold() == known.casefold():
            return known
    raise WarningApiError(f"unknown msgType {value!r}")


def _pairs(items: Any) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {
        str(item["valueName"]): str(item.get("value", ""))
        for item in items
        if isinstance(item, dict) and "valueName" in item
    }


def provider_of(warning_id: str) -> str:
    return PROVIDERS.get(warning_id.split(".", 1)[0], "OTHER")


def parse_dashboard_item(item: Any) -> DashboardItem:
    try:
        payload = item["payload"]
        data = payload["data"]
        warning_id = str(item["id"])
        return DashboardItem(
            id=warning_id,
            version=int(payload["version"]),
            provider=str(data.get("provider") or provider_of(warning_id)).upper(),
            severity=str(data.get("severity") or "Unknown"),
            msg_type=_msg_type(data.get("msgType", "Alert")),
            headline=_text(data.get("headline")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise WarningApiError(f"dashboard item without {error}: {str(item)[:200]}") from None


def parse_warning(document: Any) -> WarningDetail:
    """The detail document as a record; a document without its required CAP fields is refused whole."""
    try:
        info = document["info"][0]
        parameters = _pairs(info.get("parameter"))
        keys = tuple(key.strip() for key in parameters.get("warnVerwaltungsbereiche", "").split(",") if key.strip())
        headline = _text(info.get("headline"))
        if not headline:
            raise WarningApiError("warning without a headline")
        return WarningDetail(
            identifier=str(document["identifier"]),
            sender=str(document["sender"]),
            sent=_time(document["sent"], "sent"),
            status=str(document["status"]),
            msg_type=_msg_type(document["msgType"]),
            scope=str(document["scope"]),
            references=tuple(str(document.get("references") or "").split()),
            categories=tuple(str(category) for category in info["category"]),
            event=_text(info["event"]),
            urgency=str(info["urgency"]),
            severity=str(info["severity"]),
            certainty=str(info["certainty"]),
            headline=headline,
            # The descriptions carry HTML line breaks.
            description=re.sub(r"<br\s*/?>", "\n", _text(info.get("description"))),
            instruction=re.sub(r"<br\s*/?>", "\n", _text(info.get("instruction") or parameters.get("instructionText"))),
            web=_text(info.get("web")) or None,
            sender_name=_text(info.get("senderName") or parameters.get("sender_langname")),
            areas=tuple(_text(area.get("areaDesc")) for area in info.get("area", []) if isinstance(area, dict)),
            region_keys=keys,
            expires=_time(info["expires"], "expires") if info.get("expires") else None,
        )
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise WarningApiError(f"warning without {error}") from None


class WarningApiClient:
    """Talks to the API at `base_url` (the federal one, a mirror, or the sandbox)."""

    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            answer = self._client.get(path, headers=headers)
        except httpx.HTTPError as error:
            raise WarningApiError(f"{path}: {error}") from error
        if answer.status_code != 304 and answer.is_error:
            raise WarningApiError(f"{path}: HTTP {answer.status_code}")
        return answer

    @staticmethod
    def _json(answer: httpx.Response) -> Any:
        try:
            return answer.json()
        except ValueError:
            raise WarningApiError(f"{answer.request.url.path}: not JSON") from None

    def dashboard(self, ars: str, *, etag: str | None = None, last_modified: str | None = None) -> Dashboard:
        """The warnings for the Kreis of `ars`; with the validators of the last answer, a 304 when nothing changed."""
        conditions = {}
        if etag:
            conditions["If-None-Match"] = etag
        if last_modified:
            conditions["If-Modified-Since"] = last_modified
        answer = self._get(f"/dashboard/{kreis_of(ars)}.json", conditions)
        validators = answer.headers.get("ETag") or etag, answer.headers.get("Last-Modified") or last_modified
        if answer.status_code == 304:
            return Dashboard(items=(), not_modified=True, etag=validators[0], last_modified=validators[1])
        items = self._json(answer)
        if not isinstance(items, list):
            raise WarningApiError("dashboard is not a list")
        return Dashboard(
            items=tuple(parse_dashboard_item(item) for item in items),
            not_modified=False,
            etag=validators[0],
            last_modified=validators[1],
        )

    def warning(self, warning_id: str) -> WarningDetail:
        return parse_warning(self._json(self._get(f"/warnings/{warning_id}.json")))

    def geometry(self, warning_id: str) -> dict[str, Any] | None:
        """The warning's area as a GeoJSON FeatureCollection, or None where the API has none."""
        try:
            answer = self._client.get(f"/warnings/{warning_id}.geojson")
        except httpx.HTTPError as error:
            raise WarningApiError(f"geometry of {warning_id}: {error}") from error
        if answer.status_code == 404:
            return None
        if answer.is_error:
            raise WarningApiError(f"geometry of {warning_id}: HTTP {answer.status_code}")
        document = self._json(answer)
        if not isinstance(document, dict) or not isinstance(document.get("features"), list):
            raise WarningApiError(f"geometry of {warning_id} is not a FeatureCollection")
        return document
