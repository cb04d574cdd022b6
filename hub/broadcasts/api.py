"""JSON routes for broadcasts: draft, approve, preview, follow the report; each calls one service function."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.api_fields import ZonedDatetime
from hub.broadcasts import invitations, service
from hub.broadcasts.models import Broadcast
from hub.db import get_session, utcnow
from hub.settings import Settings, get_settings
from hub.subscribers.catalogue import district_by_key, topics_by_keys
from hub.tenancy.auth import require_permission
from hub.tenancy.models import StaffUser
from hub.web.downloads import download
from workers.app import enqueue_broadcast_start, enqueue_send

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])


class TextIn(BaseModel):
    body: str = Field(
        min_length=1, max_length=20_000, description="May use {{ salutation }} and {{ name }} (the recipient's name)."
    )
    subject: str | None = Field(None, max_length=200, description="Email subject; the title if left out.")


class DraftIn(BaseModel):
    kind: Literal["announcement", "warning", "all_clear", "survey", "invitation"]
    title: str = Field(min_length=1, max_length=200)
    texts: dict[str, TextIn] = Field(description='Per language: {"de": {...}, "en": {...}}; German is required.')
    severity: Literal["Extreme", "Severe", "Moderate", "Minor"] | None = None
    follows_id: int | None = Field(None, description="For an all-clear: the warning it ends.")
    topics: list[str] = Field(default_factory=list, description="Topic keys; empty means every subscriber.")
    topic_match: Literal["any", "all"] = "any"
    districts: list[str] = Field(default_factory=list, description="District keys; empty means the whole town.")
    district_match: Literal["any", "all"] = "any"
    channels: list[str] = Field(default_factory=list, description="Channel kinds; empty means all connected.")
    fallback: bool = Field(False, description="If a channel fails a recipient for good, try their next channel.")
    options: list[str] = Field(default_factory=list, description="Survey answers or RSVP choices (2 to 9).")
    event: dict[str, str] | None = Field(None, description='Invitation: {"when": ..., "where": ...}.')
    event_starts_at: ZonedDatetime | None = Field(
        None, description="Invitation: when the event begins, with a time zone; it then carries a calendar entry."
    )
    event_ends_at: ZonedDatetime | None = Field(None, description="Invitation: when the event ends (optional).")
    closes_at: ZonedDatetime | None = Field(
        None, description="Surveys: when answers stop counting; after the sending time, with a time zone."
    )
    send_at: ZonedDatetime | None = Field(
        None,
        description="Later sending, with a time zone (2030-06-01T09:30:00+02:00 or …Z; without one: 422); "
        "not in the past. Quiet hours still apply to non-warnings.",
    )


class BroadcastOut(BaseModel):
    id: int
    kind: str
    severity: str | None
    title: str
    texts: dict[str, Any]
    status: str
    topic_ids: list[int]
    topic_match: str
    district_ids: list[int]
    district_match: str
    channel_kinds: list[str]
    fallback: bool
    options: list[str]
    event: dict[str, Any]
    event_starts_at: datetime | None
    event_ends_at: datetime | None
    event_sequence: int
    follows_id: int | None
    send_at: datetime | None
    closes_at: datetime | None
    created_by_id: int | None
    approved_by_id: int | None
    approved_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recipient_count: int | None
    created_at: datetime


class BroadcastPageOut(BaseModel):
    items: list[BroadcastOut]
    total: int
    page: int
    per_page: int
    pages: int


def _draft(session: Session, municipality_id: int, body: DraftIn) -> service.Draft:
    topics = topics_by_keys(session, municipality_id=municipality_id, words=body.topics)
    districts = [district_by_key(session, municipality_id=municipality_id, word=key) for key in body.districts]
    return service.Draft(
        kind=body.kind, title=body.title, severity=body.severity, follows_id=body.follows_id,
        texts={lang: text.model_dump(exclude_none=True) for lang, text in body.texts.items()},
        topic_ids=[t.id for t in topics if t.id is not None], topic_match=body.topic_match,
        district_ids=[d.id for d in districts if d.id is not None], district_match=body.district_match,
        channel_kinds=body.channels, fallback=body.fallback, options=body.options, event=body.event,
        event_starts_at=body.event_starts_at, event_ends_at=body.event_ends_at,
        closes_at=body.closes_at, send_at=body.send_at,
    )  # fmt: skip


def start_if_due(broadcast: Broadcast) -> None:
    """After approval: a broadcast due now goes to the workers at once; a later one waits for beat."""
    assert broadcast.id is not None
    if broadcast.send_at is not None and broadcast.send_at <= utcnow():
        enqueue_broadcast_start(broadcast.id, urgent=broadcast.kind in service.URGENT_KINDS)


def _out(broadcast: Broadcast) -> BroadcastOut:
    return BroadcastOut.model_validate(broadcast, from_attributes=True)


@router.post("", response_model=BroadcastOut, status_code=201)
def create_broadcast(
    body: DraftIn,
    user: StaffUser = Depends(require_permission("broadcasts.draft")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    broadcast = service.create(session, author=user, draft=_draft(session, user.municipality_id, body))
    session.commit()
    return _out(broadcast)


@router.get("", response_model=BroadcastPageOut)
def list_broadcasts(
    status: str | None = Query(None),
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=200),
    user: StaffUser = Depends(require_permission("broadcasts.read")),
    session: Session = Depends(get_session),
) -> BroadcastPageOut:
    items, total = service.list_broadcasts(
        session, municipality_id=user.municipality_id, status=status, page=page, per_page=per_page
    )
    return BroadcastPageOut(
        items=[_out(b) for b in items], total=total, page=page, per_page=per_page,
        pages=max(1, math.ceil(total / per_page)),
    )  # fmt: skip


@router.get("/{broadcast_id}", response_model=BroadcastOut)
def get_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.read")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    return _out(service.get(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id))


@router.put("/{broadcast_id}", response_model=BroadcastOut)
def update_broadcast(
    broadcast_id: int,
    body: DraftIn,
    user: StaffUser = Depends(require_permission("broadcasts.draft")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    """Changes a draft (or a submitted one, which then needs submitting again)."""
    draft = _draft(session, user.municipality_id, body)
    broadcast = service.update_draft(session, actor=user, broadcast_id=broadcast_id, draft=draft)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/submit", response_model=BroadcastOut)
def submit_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.draft")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    broadcast = service.submit(session, actor=user, broadcast_id=broadcast_id)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/approve", response_model=BroadcastOut)
def approve_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.approve")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    """Approves; it goes out at once (or at send_at, or after quiet hours for non-warnings)."""
    broadcast = service.approve(session, actor=user, broadcast_id=broadcast_id)
    session.commit()
    start_if_due(broadcast)
    return _out(broadcast)


class RescheduleIn(BaseModel):
    starts_at: ZonedDatetime = Field(description="The event's new beginning, with a time zone.")
    ends_at: ZonedDatetime | None = Field(None, description="Its new end; none: the entry has no end.")
    where: str | None = Field(None, max_length=300, description="The new place; left out: the place stays.")


def _told(session: Session, told: invitations.Told) -> BroadcastOut:
    """Commits the change with its messages to those invited, then hands the messages to the workers."""
    session.commit()
    for message_id in told.message_ids:
        enqueue_send(message_id)
    return _out(told.broadcast)


class EmergencyIn(BaseModel):
    reason: str = Field(max_length=service.EMERGENCY_REASON_CHARS, description="Why no second person could approve.")


@router.post("/{broadcast_id}/send-in-emergency", response_model=BroadcastOut)
def send_in_emergency(
    broadcast_id: int,
    body: EmergencyIn,
    user: StaffUser = Depends(require_permission("warnings.override")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    """Where four eyes are required: the author (mayor or admin) sends their own warning alone, with a reason."""
    broadcast = service.approve(session, actor=user, broadcast_id=broadcast_id, emergency_reason=body.reason)
    session.commit()
    start_if_due(broadcast)
    return _out(broadcast)


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut)
def cancel_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.draft")),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> BroadcastOut:
    """Stops the broadcast; an invitation already out is called off (METHOD:CANCEL to everyone invited)."""
    told = invitations.cancel(session, settings=settings, actor=user, broadcast_id=broadcast_id)
    return _told(session, told)


@router.post("/{broadcast_id}/reschedule", response_model=BroadcastOut)
def reschedule_invitation(
    broadcast_id: int,
    body: RescheduleIn,
    user: StaffUser = Depends(require_permission("broadcasts.approve")),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> BroadcastOut:
    """A sent invitation's new time or place: the next version of its calendar entry goes to everyone invited."""
    told = invitations.reschedule(session, settings=settings, actor=user, broadcast_id=broadcast_id,
                                  starts_at=body.starts_at, ends_at=body.ends_at, where=body.where)  # fmt: skip
    return _told(session, told)


@router.post("/{broadcast_id}/pause", response_model=BroadcastOut)
def pause_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.approve")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    broadcast = service.pause(session, actor=user, broadcast_id=broadcast_id)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/resume", response_model=BroadcastOut)
def resume_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.approve")),
    session: Session = Depends(get_session),
) -> BroadcastOut:
    broadcast = service.resume(session, actor=user, broadcast_id=broadcast_id)
    session.commit()
    enqueue_broadcast_start(broadcast_id, urgent=broadcast.kind in service.URGENT_KINDS)
    return _out(broadcast)


@router.get("/{broadcast_id}/preview")
def preview_broadcast(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.read")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """How many it reaches and what each channel carries (with SMS segments and cost), before sending."""
    found = service.preview_broadcast(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
    return {**asdict(found), "channels": [asdict(channel) for channel in found.channels]}


@router.get("/{broadcast_id}/report")
def broadcast_report(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.read")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Live counts per channel and state, failure reasons and, for surveys, the tally."""
    return service.report(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)


@router.get("/{broadcast_id}/report.csv")
def broadcast_report_csv(
    broadcast_id: int,
    user: StaffUser = Depends(require_permission("broadcasts.read")),
    session: Session = Depends(get_session),
) -> Response:
    text = service.report_csv(session, municipality_id=user.municipality_id, broadcast_id=broadcast_id)
    return download(text, filename=f"versand-{broadcast_id}.csv", media_type="text/csv; charset=utf-8")
