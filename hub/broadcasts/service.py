"""Broadcasts from draft to report: validation, approval, scheduling with quiet hours, cancel and resume.

Who may do what: staff draft and submit; a mayor or admin approves; a mayor (or admin) may
send a warning or all-clear at once, without a second person. A town that requires four eyes
(preference `broadcast_four_eyes`) has every broadcast approved by someone who did not write it;
its own author may then send a warning only as an emergency, with a reason. Every transition is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.audit.models import AuditEvent
from hub.broadcasts.calendar_entry import check_event_times, new_calendar_token, when_text
from hub.broadcasts.models import BROADCAST_KINDS, SEVERITIES, SEVERITY_LABELS, Broadcast, Delivery, SurveyAnswer
from hub.broadcasts.rendering import preview
from hub.db import utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, Joined, NotFound, Term, require_channel_kind
from hub.i18n import N_
from hub.subscribers.models import District, Topic
from hub.subscribers.selection import subscriber_query
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser
from hub.tenancy.preferences import preference
from hub.tenancy.roles import allows

APPROVERS = frozenset({"admin", "mayor"})
DRAFTERS = frozenset({"admin", "mayor", "staff"})
URGENT_KINDS = frozenset({"warning", "all_clear"})
# A broadcast in one of these has reached nobody: written, or waiting for approval.
UNSENT_STATUSES = ("draft", "pending_approval")
# The composer picks whole minutes and a caller's clock may be a little behind: "now" is not the past.
SEND_AT_SLACK = timedelta(minutes=1)
EMERGENCY_REASON_CHARS = 500


def audit(session: Session, *, actor: StaffUser | None, municipality_id: int, action: str, broadcast_id: int,
          **details: Any) -> None:  # fmt: skip
    session.add(
        AuditEvent(
            municipality_id=municipality_id, actor_id=actor.id if actor else None, action=action,
            object_type="broadcast", object_id=broadcast_id, details=details,
        )
    )  # fmt: skip


@dataclass(frozen=True)
class Draft:
    """What staff send to create or change a broadcast."""

    kind: str
    title: str
    texts: dict[str, dict[str, str]]
    severity: str | None = None
    follows_id: int | None = None
    topic_ids: Sequence[int] = ()
    topic_match: str = "any"
    district_ids: Sequence[int] = ()
    district_match: str = "any"
    channel_kinds: Sequence[str] = ()
    fallback: bool = False
    options: Sequence[str] = ()
    event: dict[str, str] | None = None
    event_starts_at: datetime | None = None
    event_ends_at: datetime | None = None
    closes_at: datetime | None = None
    send_at: datetime | None = None


def _validate(session: Session, municipality_id: int, draft: Draft) -> None:
    if draft.kind not in BROADCAST_KINDS:
        raise InvalidInput(
            N_("Unbekannte Art {kind!r}; erlaubt: {allowed}."), kind=draft.kind, allowed=", ".join(BROADCAST_KINDS)
        )
    if not draft.title.strip():
        raise InvalidInput(N_("Der Titel ist leer."))
    german = draft.texts.get("de", {}).get("body", "")
    if not german.strip():
        raise InvalidInput(N_("Der deutsche Text fehlt oder ist leer."))
    for language, variant in draft.texts.items():
        if language not in ("de", "en"):
            raise InvalidInput(N_("Sprache {language!r} wird nicht unterstützt (de, en)."), language=language)
        if not variant.get("body", "").strip():
            raise InvalidInput(N_("Der Text für {language!r} ist leer."), language=language)
    if draft.kind in URGENT_KINDS and draft.severity not in SEVERITIES:
        allowed = Joined(Term(SEVERITY_LABELS[level]) for level in SEVERITIES)
        raise InvalidInput(N_("Eine Warnung braucht eine Stufe: {allowed}."), allowed=allowed)
    if draft.kind not in URGENT_KINDS and draft.severity is not None:
        raise InvalidInput(N_("Nur Warnungen und Entwarnungen haben eine Stufe."))
    if draft.kind == "all_clear":
        warning = session.get(Broadcast, draft.follows_id) if draft.follows_id else None
        if warning is None or warning.kind != "warning" or warning.municipality_id != municipality_id:
            raise InvalidInput(N_("Eine Entwarnung muss sich auf eine Warnung beziehen (follows_id)."))
    if draft.kind == "survey" and not 2 <= len(draft.options) <= 9:
        raise InvalidInput(N_("Eine Umfrage braucht 2 bis 9 Antwortmöglichkeiten."))
    if draft.kind == "invitation" and not draft.options:
        raise InvalidInput(N_("Eine Einladung braucht Antwortmöglichkeiten (z. B. Ja, Nein)."))
    if draft.kind not in ("survey", "invitation") and draft.options:
        raise InvalidInput(N_("Antwortmöglichkeiten gibt es nur bei Umfragen und Einladungen."))
    if any(not option.strip() for option in draft.options):
        raise InvalidInput(N_("Eine Antwortmöglichkeit ist leer."))
    if draft.kind != "invitation" and (draft.event_starts_at or draft.event_ends_at):
        raise InvalidInput(N_("Beginn und Ende einer Veranstaltung gibt es nur bei Einladungen."))
    check_event_times(draft.event_starts_at, draft.event_ends_at)
    for match in (draft.topic_match, draft.district_match):
        if match not in ("any", "all"):
            raise InvalidInput(N_("Abgleich {match!r} unbekannt; erlaubt: any, all."), match=match)
    _check_times(draft)
    _require_ids(session, Topic, municipality_id, draft.topic_ids, N_("Thema {ids} gibt es nicht."))
    _require_ids(session, District, municipality_id, draft.district_ids, N_("Ortsteil {ids} gibt es nicht."))
    for kind in draft.channel_kinds:
        require_channel_kind(kind)


def _check_times(draft: Draft) -> None:
    now = utcnow()
    if draft.send_at is not None and draft.send_at < now - SEND_AT_SLACK:
        raise InvalidInput(
            N_(
                "Die Versandzeit liegt in der Vergangenheit. Wählen Sie eine spätere oder lassen Sie sie "
                "leer, dann geht die Nachricht nach der Freigabe hinaus."
            )
        )
    if draft.closes_at is not None and draft.closes_at <= (draft.send_at or now):
        raise InvalidInput(N_("Das Ende der Umfrage muss in der Zukunft und nach der Versandzeit liegen."))


def _require_ids(session: Session, table: Any, municipality_id: int, ids: Sequence[int], refusal: str) -> None:
    if not ids:
        return
    found = set(session.exec(select(table.id).where(table.municipality_id == municipality_id, table.id.in_(ids))))
    missing = sorted(set(ids) - found)
    if missing:
        raise InvalidInput(refusal, ids=", ".join(map(str, missing)))


def _check_lengths(session: Session, broadcast: Broadcast) -> None:
    """Refuses a text that some targeted channel cannot carry, before anything is sent."""
    for channel in preview(broadcast, target_kinds(session, broadcast)):
        if channel.too_long:
            limit = adapter_class(channel.kind).max_body_chars
            raise InvalidInput(
                N_(
                    "Der Text ({language}) ist für {kind} zu lang: {characters} Zeichen, höchstens "
                    "{limit}. Kürzen Sie ihn oder wählen Sie diesen Kanal ab."
                ),
                language=channel.language,
                kind=channel.kind,
                characters=channel.characters,
                limit=limit,
            )


def _check_templates(session: Session, broadcast: Broadcast) -> None:
    """Refuses approval while a targeted channel that sends broadcasts only as approved templates has none for a
    language the broadcast is written in."""
    kinds = [kind for kind in target_kinds(session, broadcast) if adapter_class(kind).templates_outside_window]
    if not kinds:
        return
    for account in session.exec(
        select(ChannelAccount).where(
            ChannelAccount.municipality_id == broadcast.municipality_id,
            col(ChannelAccount.kind).in_(kinds),
            ChannelAccount.active == True,  # noqa: E712
        )
    ):
        adapter = adapter_class(account.kind)
        for language in sorted(broadcast.texts):
            if not adapter.template_for(account.config, language):
                raise InvalidInput(
                    N_(
                        "Für {channel} ({account}) ist keine freigegebene Vorlage für den Text ({language}) "
                        "eingetragen; ohne sie kann {channel} die Nachricht nicht zustellen. Tragen Sie die "
                        "Vorlage in den Kanaleinstellungen ein oder wählen Sie diesen Kanal ab."
                    ),
                    channel=adapter.label,
                    account=account.name,
                    language=language,
                )


def _apply(session: Session, broadcast: Broadcast, draft: Draft) -> None:
    broadcast.kind, broadcast.title, broadcast.severity = draft.kind, draft.title.strip(), draft.severity
    broadcast.texts = {lang: dict(variant) for lang, variant in draft.texts.items()}
    broadcast.follows_id = draft.follows_id
    broadcast.topic_ids, broadcast.topic_match = sorted(set(draft.topic_ids)), draft.topic_match
    broadcast.district_ids, broadcast.district_match = sorted(set(draft.district_ids)), draft.district_match
    broadcast.channel_kinds = sorted(set(draft.channel_kinds))
    broadcast.fallback = draft.fallback
    broadcast.options = [option.strip() for option in draft.options]
    broadcast.event = dict(draft.event or {})
    broadcast.event_starts_at, broadcast.event_ends_at = draft.event_starts_at, draft.event_ends_at
    if draft.event_starts_at is not None:
        # The text shows the time the calendar entry has, in the town's time.
        municipality = session.get(Municipality, broadcast.municipality_id)
        assert municipality is not None
        broadcast.event["when"] = when_text(draft.event_starts_at, draft.event_ends_at, municipality.timezone)
        broadcast.calendar_token = broadcast.calendar_token or new_calendar_token()
    broadcast.closes_at, broadcast.send_at = draft.closes_at, draft.send_at


def create(session: Session, *, author: StaffUser, draft: Draft) -> Broadcast:
    if author.role not in DRAFTERS:
        raise Forbidden(N_("Die Rolle {role!r} darf keine Nachrichten entwerfen."), role=author.role)
    _validate(session, author.municipality_id, draft)
    broadcast = Broadcast(municipality_id=author.municipality_id, kind=draft.kind, title=draft.title,
                          created_by_id=author.id)  # fmt: skip
    _apply(session, broadcast, draft)
    _check_lengths(session, broadcast)
    session.add(broadcast)
    session.flush()
    assert broadcast.id is not None
    audit(session, actor=author, municipality_id=author.municipality_id, action="broadcast.drafted",
          broadcast_id=broadcast.id)  # fmt: skip
    return broadcast


def relay(session: Session, *, municipality_id: int, draft: Draft, send: bool, source: str) -> Broadcast:
    """A warning or all-clear the hub writes itself (from an official warning), checked as staff's are.

    With `send` it is approved at once, as a mayor's warning would be, unless a channel it targets
    cannot carry it yet; otherwise, or then, it waits in the approval queue. Audited without a person.
    """
    if draft.kind not in URGENT_KINDS:
        raise InvalidInput(N_("Nur Warnungen und Entwarnungen werden weitergeleitet."))
    _validate(session, municipality_id, draft)
    broadcast = Broadcast(municipality_id=municipality_id, kind=draft.kind, title=draft.title)
    _apply(session, broadcast, draft)
    _check_lengths(session, broadcast)
    broadcast.status = "pending_approval"
    session.add(broadcast)
    session.flush()
    assert broadcast.id is not None
    held = None
    if send:
        try:
            _check_templates(session, broadcast)
        except InvalidInput as refusal:
            held = refusal.text("de")
        else:
            now = utcnow()
            broadcast.status, broadcast.send_at, broadcast.approved_at = "approved", now, now
    audit(session, actor=None, municipality_id=municipality_id, action="broadcast.relayed", broadcast_id=broadcast.id,
          source=source, status=broadcast.status, held=held)  # fmt: skip
    return broadcast


def withdraw_relayed(session: Session, *, municipality_id: int, broadcast_id: int, source: str,
                     reason: str) -> bool:  # fmt: skip
    """Withdraws a relayed warning that reached nobody, because the official warning was cancelled or updated.

    One conditional UPDATE: if a person approved it in the meantime it stays approved (False), and the
    relay follows it up as a warning that went out. Audited without a person, with the version that
    withdrew it (`source`) and whether that was a cancellation or an update (`reason`).
    """
    withdrawn = session.execute(  # type: ignore[attr-defined]
        update(Broadcast)
        .where(
            col(Broadcast.id) == broadcast_id,
            col(Broadcast.municipality_id) == municipality_id,
            col(Broadcast.status).in_(UNSENT_STATUSES),
        )
        .values(status="cancelled", finished_at=utcnow())
    ).rowcount
    if withdrawn:
        audit(session, actor=None, municipality_id=municipality_id, action="broadcast.withdrawn",
              broadcast_id=broadcast_id, source=source, reason=reason)  # fmt: skip
    return bool(withdrawn)


def get(session: Session, *, municipality_id: int, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.municipality_id != municipality_id:
        raise NotFound(N_("Nachricht {broadcast_id} nicht gefunden."), broadcast_id=broadcast_id)
    return broadcast


def list_broadcasts(session: Session, *, municipality_id: int, status: str | None = None, page: int = 1,
                    per_page: int = 25) -> tuple[list[Broadcast], int]:  # fmt: skip
    query = select(Broadcast).where(Broadcast.municipality_id == municipality_id)
    if status:
        query = query.where(Broadcast.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    items = session.exec(
        query.order_by(col(Broadcast.created_at).desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


def update_draft(session: Session, *, actor: StaffUser, broadcast_id: int, draft: Draft) -> Broadcast:
    broadcast = get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    if broadcast.status not in ("draft", "pending_approval"):
        raise Conflict(
            N_("Nachricht {broadcast_id} ist {status} und kann nicht mehr geändert werden."),
            broadcast_id=broadcast_id,
            status=broadcast.status,
        )
    _validate(session, actor.municipality_id, draft)
    _apply(session, broadcast, draft)
    _check_lengths(session, broadcast)
    broadcast.status = "draft"  # a change needs approval again
    audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.edited",
          broadcast_id=broadcast_id)  # fmt: skip
    return broadcast


def submit(session: Session, *, actor: StaffUser, broadcast_id: int) -> Broadcast:
    broadcast = get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    if broadcast.status != "draft":
        raise Conflict(
            N_("Nur Entwürfe können zur Freigabe gegeben werden; diese ist {status}."), status=broadcast.status
        )
    broadcast.status = "pending_approval"
    audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.submitted",
          broadcast_id=broadcast_id)  # fmt: skip
    return broadcast


def announce(session: Session, *, author: StaffUser, topic_id: int, title: str, texts: dict[str, str]) -> Broadcast:
    """An announcement to one topic's subscribers (texts by language), submitted for a leader's approval."""
    draft = Draft(kind="announcement", title=title, texts={lang: {"body": body} for lang, body in texts.items()},
                  topic_ids=(topic_id,))  # fmt: skip
    broadcast = create(session, author=author, draft=draft)
    assert broadcast.id is not None
    return submit(session, actor=author, broadcast_id=broadcast.id)


def withdrawn(session: Session, *, broadcast_ids: list[int]) -> set[int]:
    """The broadcasts among `broadcast_ids` that were cancelled: refused at approval or stopped."""
    cancelled = select(Broadcast.id).where(col(Broadcast.id).in_(broadcast_ids), Broadcast.status == "cancelled")
    return {broadcast_id for broadcast_id in session.exec(cancelled) if broadcast_id is not None}


def writers(session: Session, broadcast: Broadcast) -> set[int]:
    """The staff who wrote the broadcast: its author and whoever changed it since (from the audit log)."""
    changed_by = session.exec(
        select(AuditEvent.actor_id).where(
            col(AuditEvent.object_type) == "broadcast",
            col(AuditEvent.object_id) == broadcast.id,
            col(AuditEvent.action).in_(("broadcast.drafted", "broadcast.edited")),
        )
    )
    return {user_id for user_id in (broadcast.created_by_id, *changed_by) if user_id is not None}


def needs_second_person(session: Session, *, actor: StaffUser, broadcast: Broadcast) -> bool:
    """Whether the town requires four eyes and `actor` wrote the broadcast, so may not approve it alone."""
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    return bool(preference(municipality, "broadcast_four_eyes")) and actor.id in writers(session, broadcast)


def may_override(actor: StaffUser, broadcast: Broadcast) -> bool:
    """Whether `actor` may send this broadcast in an emergency without a second person: warnings, named roles."""
    return broadcast.kind in URGENT_KINDS and allows(actor.role, "warnings.override")


def _check_four_eyes(
    session: Session, actor: StaffUser, broadcast: Broadcast, emergency_reason: str | None
) -> str | None:
    """The emergency's reason if the approval goes ahead as one; refuses an author's own approval otherwise."""
    if not needs_second_person(session, actor=actor, broadcast=broadcast):
        return None
    if emergency_reason is None or not may_override(actor, broadcast):
        raise Forbidden(
            N_(
                "Vier-Augen-Prinzip: Sie haben diese Nachricht geschrieben oder geändert, freigeben muss sie eine "
                "zweite Person. Nur eine Warnung oder Entwarnung darf eine Bürgermeisterin, ein Bürgermeister oder "
                "Admin im Notfall mit Begründung selbst senden."
            )
        )
    if not emergency_reason.strip():
        raise InvalidInput(
            N_("Ohne zweite Person geht eine Warnung nur mit einer Begründung hinaus. Bitte nennen Sie den Notfall.")
        )
    if len(emergency_reason.strip()) > EMERGENCY_REASON_CHARS:
        raise InvalidInput(N_("Die Begründung ist zu lang: höchstens {limit} Zeichen."), limit=EMERGENCY_REASON_CHARS)
    return emergency_reason.strip()


def approve(session: Session, *, actor: StaffUser, broadcast_id: int, emergency_reason: str | None = None) -> Broadcast:
    """Approves for sending at send_at (or now), moved past quiet hours unless it is urgent.

    A mayor may approve their own warning directly from draft; anything else needs to have
    been submitted, so that announcements are always seen by a second person. Where the town
    requires four eyes, no one approves what they wrote, except a warning sent in an emergency
    (`emergency_reason`, recorded in the audit log).
    """
    broadcast = get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    if actor.role not in APPROVERS:
        raise Forbidden(N_("Die Rolle {role!r} darf keine Nachrichten freigeben."), role=actor.role)
    direct_warning = broadcast.kind in URGENT_KINDS and broadcast.status == "draft"
    if broadcast.status != "pending_approval" and not direct_warning:
        raise Conflict(
            N_("Nachricht {broadcast_id} ist {status}; freigeben lässt sich nur, was eingereicht ist."),
            broadcast_id=broadcast_id,
            status=broadcast.status,
        )
    emergency = _check_four_eyes(session, actor, broadcast, emergency_reason)
    _check_lengths(session, broadcast)  # channels may have been connected since the draft
    _check_templates(session, broadcast)
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    now = utcnow()
    wanted = broadcast.send_at if broadcast.send_at and broadcast.send_at > now else now
    broadcast.send_at = wanted if broadcast.kind in URGENT_KINDS else after_quiet_hours(municipality, wanted)
    broadcast.status = "approved"
    broadcast.approved_by_id, broadcast.approved_at = actor.id, now
    held = broadcast.send_at != wanted  # the detail page says so (quiet_hours_shift)
    if emergency is None:
        audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.approved",
              broadcast_id=broadcast_id, send_at=broadcast.send_at.isoformat(), quiet_hours=held)  # fmt: skip
    else:
        audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.approved_in_emergency",
              broadcast_id=broadcast_id, send_at=broadcast.send_at.isoformat(), reason=emergency)  # fmt: skip
    return broadcast


@dataclass(frozen=True)
class QuietShift:
    """Quiet hours that hold an approved broadcast back until their end."""

    start: str
    end: str


def quiet_hours_shift(session: Session, broadcast: Broadcast) -> QuietShift | None:
    """The quiet hours an approved broadcast still waits for, if its approval moved it past them; else None."""
    if broadcast.status != "approved":
        return None
    approval = session.exec(
        select(AuditEvent)
        .where(
            col(AuditEvent.object_type) == "broadcast",
            col(AuditEvent.object_id) == broadcast.id,
            col(AuditEvent.action) == "broadcast.approved",
        )
        .order_by(col(AuditEvent.id).desc())
    ).first()
    if approval is None or not approval.details.get("quiet_hours"):
        return None
    municipality = session.get(Municipality, broadcast.municipality_id)
    assert municipality is not None
    hours = preference(municipality, "quiet_hours")
    return QuietShift(start=hours["start"], end=hours["end"])


def after_quiet_hours(municipality: Municipality, moment: datetime) -> datetime:
    """`moment`, or the end of the municipality's quiet hours if it falls within them."""
    hours = preference(municipality, "quiet_hours")
    start, end = time.fromisoformat(hours["start"]), time.fromisoformat(hours["end"])
    local = moment.astimezone(ZoneInfo(municipality.timezone))
    clock = local.time()
    quiet = (clock >= start or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return moment
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo).astimezone(moment.tzinfo)


def cancel(session: Session, *, actor: StaffUser, broadcast_id: int) -> Broadcast:
    """Stops a broadcast: what has not been claimed for sending yet is never sent."""
    broadcast = get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    # An invitation that has gone out is still called off (hub.broadcasts.invitations tells those invited).
    finished = ("cancelled",) if broadcast.kind == "invitation" else ("completed", "cancelled")
    if broadcast.status in finished:
        raise Conflict(
            N_("Nachricht {broadcast_id} ist bereits {status}."), broadcast_id=broadcast_id, status=broadcast.status
        )
    if broadcast.status in ("approved", "sending", "paused", "completed") and actor.role not in APPROVERS:
        raise Forbidden(N_("Nur Bürgermeisterin, Bürgermeister oder Admin können eine freigegebene Nachricht stoppen."))
    broadcast.status = "cancelled"
    broadcast.finished_at = utcnow()
    session.execute(
        update(Delivery)
        .where(col(Delivery.broadcast_id) == broadcast_id, col(Delivery.state).in_(("queued", "claimed")))
        .values(state="cancelled")
    )
    audit(session, actor=actor, municipality_id=actor.municipality_id, action="broadcast.cancelled",
          broadcast_id=broadcast_id)  # fmt: skip
    return broadcast


def pause(session: Session, *, actor: StaffUser, broadcast_id: int) -> Broadcast:
    return _hold_or_continue(session, actor, broadcast_id, expected="sending", to="paused", verb=N_("anhalten"))


def resume(session: Session, *, actor: StaffUser, broadcast_id: int) -> Broadcast:
    return _hold_or_continue(session, actor, broadcast_id, expected="paused", to="sending", verb=N_("fortsetzen"))


def _hold_or_continue(
    session: Session, actor: StaffUser, broadcast_id: int, *, expected: str, to: str, verb: str
) -> Broadcast:
    broadcast = get(session, municipality_id=actor.municipality_id, broadcast_id=broadcast_id)
    if actor.role not in APPROVERS:
        raise Forbidden(N_("Die Rolle {role!r} darf den Versand nicht {verb}."), role=actor.role, verb=Term(verb))
    if broadcast.status != expected:
        raise Conflict(
            N_("Nur eine Nachricht im Zustand {expected} lässt sich {verb}; diese ist {status}."),
            expected=expected,
            verb=Term(verb),
            status=broadcast.status,
        )
    broadcast.status = to
    audit(session, actor=actor, municipality_id=actor.municipality_id,
          action="broadcast.paused" if to == "paused" else "broadcast.resumed", broadcast_id=broadcast_id)  # fmt: skip
    return broadcast


def target_kinds(session: Session, broadcast: Broadcast) -> list[str]:
    """The channel kinds the broadcast may use: its own choice, limited to connected accounts."""
    connected = set(
        session.exec(
            select(ChannelAccount.kind).where(
                ChannelAccount.municipality_id == broadcast.municipality_id,
                ChannelAccount.active == True,  # noqa: E712
            )
        )
    )
    wanted = set(broadcast.channel_kinds) or connected
    return sorted(wanted & connected)


@dataclass(frozen=True)
class Preview:
    recipients: int
    by_language: dict[str, int]
    channels: list[Any]
    sms_cost_estimate_eur: float | None


def recipients_by_language(session: Session, *, municipality_id: int, topic_ids: Sequence[int], topic_match: str,
                           district_ids: Sequence[int], district_match: str) -> dict[str, int]:  # fmt: skip
    """How many active subscribers a targeting reaches, per language; the composer counts with it as staff choose."""
    # subscriber_query itself refuses a match word other than "any" or "all".
    query = subscriber_query(municipality_id, topic_ids, topic_match, district_ids, district_match)  # type: ignore[arg-type]
    targeted = query.subquery()
    counts = session.execute(select(targeted.c.language, func.count()).group_by(targeted.c.language)).all()
    return {language: count for language, count in counts}


def preview_broadcast(session: Session, *, municipality_id: int, broadcast_id: int) -> Preview:
    """The recipient count and what each channel carries, before anything is sent."""
    broadcast = get(session, municipality_id=municipality_id, broadcast_id=broadcast_id)
    counts = recipients_by_language(
        session, municipality_id=municipality_id, topic_ids=broadcast.topic_ids, topic_match=broadcast.topic_match,
        district_ids=broadcast.district_ids, district_match=broadcast.district_match,
    )  # fmt: skip
    kinds = target_kinds(session, broadcast)
    channels = preview(broadcast, kinds)
    cost = None
    paid = [p for p in channels if p.segments is not None]  # texts paid per segment: SMS
    if paid:
        municipality = session.get(Municipality, municipality_id)
        assert municipality is not None
        price = float(preference(municipality, "sms_segment_price_eur"))
        segments: dict[str, int] = {}
        for p in paid:
            segments[p.language] = max(segments.get(p.language, 0), p.segments or 0)
        # An upper bound: as if every recipient were reached by SMS.
        cost = round(sum(count * segments.get(lang if lang in segments else "de", 0) * price
                         for lang, count in counts.items()), 2)  # fmt: skip
    return Preview(recipients=sum(counts.values()), by_language=counts, channels=channels, sms_cost_estimate_eur=cost)


DELIVERY_STATES = (
    "queued",
    "claimed",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "skipped",
    "opted_out",
    "cancelled",
    "uncertain",
)
FAILED_STATES = ("failed", "skipped", "opted_out", "uncertain")


def report(session: Session, *, municipality_id: int, broadcast_id: int) -> dict[str, Any]:
    """Counts per channel and state, failure reasons, and survey results; live while sending."""
    broadcast = get(session, municipality_id=municipality_id, broadcast_id=broadcast_id)
    rows = session.execute(
        select(col(ChannelAccount.kind), col(Delivery.state), func.count())
        .join(ChannelAccount, col(ChannelAccount.id) == Delivery.channel_account_id)
        .where(col(Delivery.broadcast_id) == broadcast_id)
        .group_by(col(ChannelAccount.kind), col(Delivery.state))
    ).all()
    per_channel: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(DELIVERY_STATES, 0)
    for kind, state, count in rows:
        per_channel.setdefault(kind, dict.fromkeys(DELIVERY_STATES, 0))[state] = count
        totals[state] += count
    reasons = session.execute(
        select(col(Delivery.error_code), col(Delivery.error_message), func.count())
        .where(
            col(Delivery.broadcast_id) == broadcast_id,
            col(Delivery.state).in_(FAILED_STATES),
        )
        .group_by(col(Delivery.error_code), col(Delivery.error_message))
        .order_by(func.count().desc())
        .limit(20)
    ).all()
    done = sum(totals[state] for state in DELIVERY_STATES if state not in ("queued", "claimed", "sending"))
    result: dict[str, Any] = {
        "broadcast_id": broadcast_id,
        "status": broadcast.status,
        "recipients": broadcast.recipient_count,
        "progress": round(done / broadcast.recipient_count, 4) if broadcast.recipient_count else None,
        "totals": totals,
        "per_channel": per_channel,
        "failure_reasons": [{"code": code, "message": message, "count": count} for code, message, count in reasons],
    }
    if broadcast.options:
        tally: dict[int, int] = dict(
            session.execute(
                select(col(SurveyAnswer.option_index), func.count())
                .where(col(SurveyAnswer.broadcast_id) == broadcast_id)
                .group_by(col(SurveyAnswer.option_index))
            ).all()
        )
        result["answers"] = [
            {"option": option, "count": tally.get(index, 0)} for index, option in enumerate(broadcast.options)
        ]
    return result


def report_csv(session: Session, *, municipality_id: int, broadcast_id: int) -> str:
    """One line per delivery, for a spreadsheet: who, which channel, what became of it, and their answer."""
    broadcast = get(session, municipality_id=municipality_id, broadcast_id=broadcast_id)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(
        [
            "lieferung",
            "kontakt",
            "kanal",
            "adresse",
            "status",
            "fehlercode",
            "fehler",
            "gesendet",
            "zugestellt",
            "antwort",
        ]
    )
    rows = session.execute(
        select(Delivery, ChannelAccount.kind, SurveyAnswer.option_index)
        .join(ChannelAccount, col(ChannelAccount.id) == Delivery.channel_account_id)
        .outerjoin(
            SurveyAnswer,
            (col(SurveyAnswer.broadcast_id) == Delivery.broadcast_id)
            & (col(SurveyAnswer.contact_id) == Delivery.contact_id),
        )
        .where(col(Delivery.broadcast_id) == broadcast_id)
        .order_by(col(Delivery.id))
        .execution_options(yield_per=1000)
    )
    for delivery, kind, answer in rows:
        writer.writerow([
            delivery.id, delivery.contact_id, kind, delivery.address, delivery.state, delivery.error_code or "",
            delivery.error_message or "", delivery.sent_at.isoformat() if delivery.sent_at else "",
            delivery.delivered_at.isoformat() if delivery.delivered_at else "",
            broadcast.options[answer] if answer is not None and answer < len(broadcast.options) else "",
        ])  # fmt: skip
    return out.getvalue()


def failures(session: Session, *, municipality_id: int, broadcast_id: int, page: int = 1,
             per_page: int = 25) -> tuple[list[tuple[Delivery, str]], int]:  # fmt: skip
    """The deliveries that did not reach their recipient, with the channel kind, a page at a time."""
    get(session, municipality_id=municipality_id, broadcast_id=broadcast_id)
    where = (col(Delivery.broadcast_id) == broadcast_id, col(Delivery.state).in_(FAILED_STATES))
    total = session.exec(select(func.count()).select_from(Delivery).where(*where)).one()
    rows = session.execute(
        select(Delivery, ChannelAccount.kind)
        .join(ChannelAccount, col(ChannelAccount.id) == Delivery.channel_account_id)
        .where(*where)
        .order_by(col(Delivery.id))
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return [(delivery, kind) for delivery, kind in rows], total


def trail(session: Session, *, municipality_id: int, broadcast_id: int) -> list[tuple[AuditEvent, str | None]]:
    """Who drafted, submitted, approved, paused or cancelled the broadcast, and when, oldest first."""
    get(session, municipality_id=municipality_id, broadcast_id=broadcast_id)
    rows = session.execute(
        select(AuditEvent, StaffUser.name)
        .outerjoin(StaffUser, col(StaffUser.id) == AuditEvent.actor_id)
        .where(
            col(AuditEvent.municipality_id) == municipality_id,
            col(AuditEvent.object_type) == "broadcast",
            col(AuditEvent.object_id) == broadcast_id,
        )
        .order_by(col(AuditEvent.created_at), col(AuditEvent.id))
    ).all()
    return [(event, name) for event, name in rows]
