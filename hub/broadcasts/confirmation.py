"""What approving or sending a broadcast will do, shown on the page before the button that does it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from channels.registry import adapter_class
from hub.broadcasts import fanout, service
from hub.broadcasts.models import Broadcast
from hub.broadcasts.rendering import ChannelPreview
from hub.db import utcnow
from hub.subscribers.catalogue import list_districts, list_topics
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.preferences import preference


@dataclass(frozen=True)
class ChannelPlan:
    """One channel: how many it reaches, how many it skips (and why they count), and its text per language."""

    kind: str
    recipients: int
    skipped: int
    previews: list[ChannelPreview]
    subjects: dict[str, str]  # per language, where the channel has a subject (email)
    templates: dict[str, str]  # per language, the approved template it goes out as (WhatsApp)


@dataclass(frozen=True)
class Confirmation:
    broadcast: Broadcast
    targeted: int  # active subscribers the topics and districts name
    unreachable: int  # of those, the ones with no address on any of the broadcast's channels
    channels: list[ChannelPlan]
    topic_names: list[str]
    district_names: list[str]
    urgent: bool
    quiet_start: str
    quiet_end: str
    in_quiet_hours: bool  # the moment it would go out falls within quiet hours
    send_at: datetime  # when it goes out if approved now (after quiet hours unless urgent)
    sms_cost_estimate_eur: float | None
    second_person_needed: bool  # four eyes and the person asking wrote it
    may_override: bool  # ...and may send it as an emergency all the same


def confirmation(session: Session, *, actor: StaffUser, broadcast_id: int) -> Confirmation:
    """Recipients per channel, targeting, quiet hours and each channel's text, as approving now would send it."""
    broadcast = service.get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    preview = service.preview_broadcast(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    routes = fanout.plan(session, broadcast)
    accounts = fanout.target_accounts(session, broadcast)
    channels = []
    for kind in service.target_kinds(session, broadcast):
        adapter = adapter_class(kind)
        languages = sorted(broadcast.texts)
        subjects = {
            lang: broadcast.texts[lang].get("subject") or broadcast.title for lang in languages
        } if adapter.supports_subject else {}  # fmt: skip
        templates = {}
        if adapter.templates_outside_window and kind in accounts:
            templates = {
                lang: name for lang in languages if (name := adapter.template_for(accounts[kind].config, lang))
            }
        channels.append(
            ChannelPlan(
                kind=kind, recipients=routes.reached.get(kind, 0), skipped=routes.skipped.get(kind, 0),
                previews=[channel for channel in preview.channels if channel.kind == kind], subjects=subjects,
                templates=templates,
            )
        )  # fmt: skip
    now = utcnow()
    wanted = broadcast.send_at if broadcast.send_at and broadcast.send_at > now else now
    after_quiet = service.after_quiet_hours(municipality, wanted)
    urgent = broadcast.kind in service.URGENT_KINDS
    hours = preference(municipality, "quiet_hours")
    topics = {topic.id: topic.name_de for topic in list_topics(session, municipality_id=actor.municipality_id)}
    districts = {place.id: place.name for place in list_districts(session, municipality_id=actor.municipality_id)}
    second = service.needs_second_person(session, actor=actor, broadcast=broadcast)
    return Confirmation(
        broadcast=broadcast, targeted=preview.recipients,
        unreachable=preview.recipients - sum(routes.reached.values()) - sum(routes.skipped.values()),
        channels=channels, topic_names=[topics[i] for i in broadcast.topic_ids if i in topics],
        district_names=[districts[i] for i in broadcast.district_ids if i in districts], urgent=urgent,
        quiet_start=hours["start"], quiet_end=hours["end"], in_quiet_hours=after_quiet != wanted,
        send_at=wanted if urgent else after_quiet, sms_cost_estimate_eur=preview.sms_cost_estimate_eur,
        second_person_needed=second, may_override=second and service.may_override(actor, broadcast),
    )  # fmt: skip
