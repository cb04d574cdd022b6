"""Official warnings in: a town's relay settings, and each poll of the federal warning API turned into hub warnings.

A new official warning becomes a warning broadcast to the warning subscribers of the districts it
touches (all of them where the API gives no area or the town no shapes); a later version an
update, a cancellation the all-clear. Per source and severity the town chooses: ignore, draft for
approval, or send at once. A later version withdraws an earlier one's draft that is still waiting
for approval: an update then goes out (or waits) as if it were the first, and a cancellation of a
warning nobody received sends no all-clear. Each version is claimed by a row unique per (town,
official id, version) in the transaction that creates its broadcast, so it is taken once whatever
polls it.
An answer that is not whole is logged and asked for again at the next poll, and the dashboard's
validators are only kept once every item on it was taken, so that a 304 never hides one.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.warning_api import (
    PROVIDERS,
    DashboardItem,
    WarningApiClient,
    WarningApiError,
    WarningDetail,
    covers,
    is_ars,
)
from hub.audit.models import AuditEvent
from hub.broadcasts import service as broadcasts
from hub.broadcasts.models import SEVERITIES, Broadcast
from hub.db import session_scope, utcnow
from hub.errors import DomainError, Forbidden, InvalidInput, NotFound
from hub.i18n import N_
from hub.official_warnings.cap import PUBLISHED_STATUSES
from hub.official_warnings.models import ACTIONS, OfficialWarning, WarningRelay
from hub.problems.places import districts_meeting
from hub.settings import Settings
from hub.subscribers.models import Topic
from hub.templating import render_message
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.service import get_municipality

log = logging.getLogger(__name__)

SOURCES = tuple(PROVIDERS.values())
# The CAP severities an official warning may carry; "Unknown" is relayed as FALLBACK_SEVERITY.
OFFICIAL_SEVERITIES = (*SEVERITIES, "Unknown")
# The official advice in the message, shortened so that an SMS stays at two or three segments; the
# link leads to the whole text.
ADVICE_CHARS = 280
# A severity the hub's warnings do not have ("Unknown") is relayed as the mildest.
FALLBACK_SEVERITY = "Minor"


def client_for(settings: Settings) -> WarningApiClient:
    return WarningApiClient(settings.effective_warning_api_url)


def _check_actions(actions: Mapping[str, Any], default_action: str) -> dict[str, dict[str, str]]:
    if default_action not in ACTIONS:
        raise InvalidInput(N_("Aktion {action!r} unbekannt; erlaubt: {allowed}."), action=default_action,
                           allowed=", ".join(ACTIONS))  # fmt: skip
    checked: dict[str, dict[str, str]] = {}
    for source, by_severity in actions.items():
        if source not in SOURCES:
            raise InvalidInput(N_("Warnquelle {source!r} unbekannt; erlaubt: {allowed}."), source=source,
                               allowed=", ".join(SOURCES))  # fmt: skip
        if not isinstance(by_severity, Mapping):
            raise InvalidInput(N_("Für {source} fehlt die Zuordnung von Stufe zu Aktion."), source=source)
        for severity, action in by_severity.items():
            if severity not in OFFICIAL_SEVERITIES:
                raise InvalidInput(N_("Stufe {severity!r} unbekannt; erlaubt: {allowed}."), severity=severity,
                                   allowed=", ".join(OFFICIAL_SEVERITIES))  # fmt: skip
            if action not in ACTIONS:
                raise InvalidInput(N_("Aktion {action!r} unbekannt; erlaubt: {allowed}."), action=action,
                                   allowed=", ".join(ACTIONS))  # fmt: skip
        checked[source] = dict(by_severity)
    return checked


def configure(session: Session, *, actor: StaffUser, ars: str, actions: Mapping[str, Any],
              default_action: str = "draft") -> WarningRelay:  # fmt: skip
    """Sets the town's regional key and what becomes of each source's warnings, by severity (admins)."""
    if actor.role != "admin":
        raise Forbidden(N_("Nur Admins stellen die amtlichen Warnungen ein."))
    if not is_ars(ars):
        raise InvalidInput(N_("Der Regionalschlüssel (ARS) hat 12 Ziffern, z. B. 091620000000."))
    checked = _check_actions(actions, default_action)
    relay = session.get(WarningRelay, actor.municipality_id)
    if relay is None:
        relay = WarningRelay(municipality_id=actor.municipality_id, ars=ars)
    if relay.ars != ars:
        relay.etag = relay.last_modified = None  # another region: its dashboard is asked for whole
    relay.ars, relay.actions, relay.default_action = ars, checked, default_action
    session.add(relay)
    session.add(
        AuditEvent(
            municipality_id=actor.municipality_id, actor_id=actor.id, action="official_warnings.configured",
            object_type="warning_relay", object_id=actor.municipality_id,
            details={"ars": ars, "actions": checked, "default_action": default_action},
        )
    )  # fmt: skip
    session.flush()
    return relay


def official_text(session: Session, *, slug: str, warning_id: int) -> tuple[Municipality, OfficialWarning]:
    """An official warning version the town took, for its public page; not one outside the town."""
    municipality = get_municipality(session, slug=slug)
    row = session.get(OfficialWarning, warning_id)
    if row is None or row.municipality_id != municipality.id or row.outcome == "outside":
        raise NotFound(N_("Diese amtliche Warnung gibt es hier nicht."))
    return municipality, row


def recent(session: Session, *, municipality_id: int, limit: int = 50) -> list[OfficialWarning]:
    """The official warning versions the town saw, newest first, with what became of each (for staff)."""
    return list(
        session.exec(
            select(OfficialWarning)
            .where(OfficialWarning.municipality_id == municipality_id)
            .order_by(col(OfficialWarning.id).desc())
            .limit(limit)
        ).all()
    )


def relay_of(session: Session, *, municipality_id: int) -> WarningRelay | None:
    """The town's relay settings and last poll; None before an admin set them up."""
    return session.get(WarningRelay, municipality_id)


@dataclass(frozen=True)
class Outcome:
    """An official warning version the town saw, and the broadcast it became (None if it became none)."""

    warning: OfficialWarning
    broadcast: Broadcast | None


def recent_outcomes(session: Session, *, municipality_id: int, limit: int = 50) -> list[Outcome]:
    """`recent`, each with its broadcast as it stands now (sent, waiting, withdrawn), for the admins' page."""
    rows = recent(session, municipality_id=municipality_id, limit=limit)
    ids = [row.broadcast_id for row in rows if row.broadcast_id is not None]
    found = {b.id: b for b in session.exec(select(Broadcast).where(col(Broadcast.id).in_(ids)))} if ids else {}
    return [Outcome(row, found.get(row.broadcast_id)) for row in rows]


def action_for(relay: WarningRelay, *, provider: str, severity: str) -> str:
    return str((relay.actions or {}).get(provider, {}).get(severity, relay.default_action))


@dataclass
class PollResult:
    """What one poll of one town did; `to_start` are the broadcasts approved for sending."""

    not_modified: bool = False
    taken: int = 0
    to_start: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def relaying_towns() -> list[tuple[int, str]]:
    """The id and slug of each town that relays official warnings."""
    with session_scope() as session:
        rows = session.exec(
            select(WarningRelay.municipality_id, Municipality.slug).join(
                Municipality, col(Municipality.id) == WarningRelay.municipality_id
            )
        ).all()
        return [(municipality_id, slug) for municipality_id, slug in rows]


def _seen(session: Session, municipality_id: int, items: tuple[DashboardItem, ...]) -> set[tuple[str, int]]:
    ids = [item.id for item in items]
    rows = session.exec(
        select(OfficialWarning.official_id, OfficialWarning.version).where(
            OfficialWarning.municipality_id == municipality_id, col(OfficialWarning.official_id).in_(ids)
        )
    ).all()
    return {(official_id, version) for official_id, version in rows}


def poll(*, municipality_id: int, client: WarningApiClient, settings: Settings) -> PollResult:
    """Asks the dashboard of the town's Kreis and takes every warning version the town has not taken yet."""
    result = PollResult()
    with session_scope() as session:
        relay = session.get(WarningRelay, municipality_id)
        if relay is None:
            return result
        ars, etag, last_modified = relay.ars, relay.etag, relay.last_modified
    try:
        board = client.dashboard(ars, etag=etag, last_modified=last_modified)
    except WarningApiError as error:
        log.warning("warning API dashboard for %s failed: %s", ars, error)
        result.failed.append(str(error))
        _note(municipality_id, result, None)
        return result
    if board.not_modified:
        result.not_modified = True
        _note(municipality_id, result, None)
        return result
    with session_scope() as session:
        seen = _seen(session, municipality_id, board.items)
    for item in board.items:
        if (item.id, item.version) in seen:
            continue
        try:
            detail = client.warning(item.id)
            area = client.geometry(item.id)
        except WarningApiError as error:
            log.warning("warning %s v%s not taken, asked again next time: %s", item.id, item.version, error)
            result.failed.append(f"{item.id}: {error}")
            continue
        try:
            with session_scope() as session:
                to_start = _take(session, settings=settings, municipality_id=municipality_id, ars=ars, item=item,
                                 detail=detail, area=area)  # fmt: skip
        except IntegrityError:
            continue  # another poll claimed this version first
        except DomainError as refusal:
            log.warning("warning %s v%s could not become a broadcast: %s", item.id, item.version, refusal)
            result.failed.append(f"{item.id}: {refusal}")
            continue
        result.taken += 1
        if to_start is not None:
            result.to_start.append(to_start)
    _note(municipality_id, result, None if result.failed else board)
    return result


def _note(municipality_id: int, result: PollResult, board: Any) -> None:
    """When the town last polled and what failed; the validators only of a dashboard taken in whole."""
    with session_scope() as session:
        relay = session.get(WarningRelay, municipality_id)
        if relay is None:
            return
        relay.polled_at = utcnow()
        relay.last_error = "; ".join(result.failed)[:500] or None
        if board is not None:
            relay.etag, relay.last_modified = board.etag, board.last_modified
        session.add(relay)


def _literal(text: str) -> str:
    # A broadcast's text is a template ({{ name }}); an official text is not, and must not become one.
    return text.replace("{", "(").replace("}", ")")


def _text(municipality: Municipality, settings: Settings, row: OfficialWarning, *, update: bool) -> str:
    advice = textwrap.shorten(row.instruction or row.description or row.headline, ADVICE_CHARS, placeholder=" …")
    url = f"{settings.public_url.rstrip('/')}/public/{municipality.slug}/amtliche-warnungen/{row.id}"
    return render_message(
        "official_warning.txt.j2", "de", advice=_literal(advice), headline=_literal(row.headline), url=url,
        sender=_literal(row.sender_name or row.sender), update=update, cancelled=row.msg_type == "Cancel",
    )  # fmt: skip


def _withdraw_unsent(session: Session, row: OfficialWarning) -> int:
    """Withdraws the drafts of earlier versions that nobody received: they are out of date. How many."""
    earlier_broadcasts = session.exec(
        select(OfficialWarning.broadcast_id).where(
            OfficialWarning.municipality_id == row.municipality_id,
            OfficialWarning.official_id == row.official_id,
            OfficialWarning.version < row.version,
        )
    ).all()
    source = f"{row.official_id} v{row.version}"
    return sum(
        broadcasts.withdraw_relayed(
            session, municipality_id=row.municipality_id, broadcast_id=broadcast_id, source=source, reason=row.msg_type
        )
        for broadcast_id in earlier_broadcasts
        if broadcast_id is not None
    )


def _earlier(session: Session, row: OfficialWarning) -> OfficialWarning | None:
    """The latest earlier version of the same warning whose broadcast went out (or is going out now)."""
    went_out = or_(col(Broadcast.status).in_(PUBLISHED_STATUSES), col(Broadcast.started_at).is_not(None))
    return session.exec(
        select(OfficialWarning)
        .join(Broadcast, col(Broadcast.id) == OfficialWarning.broadcast_id)
        .where(
            OfficialWarning.municipality_id == row.municipality_id,
            OfficialWarning.official_id == row.official_id,
            OfficialWarning.version < row.version,
            went_out,
        )
        .order_by(col(OfficialWarning.version).desc())
    ).first()


def _record(municipality_id: int, item: DashboardItem, detail: WarningDetail) -> OfficialWarning:
    return OfficialWarning(
        municipality_id=municipality_id, official_id=item.id, version=item.version, provider=item.provider,
        msg_type=detail.msg_type, status=detail.status, sender=detail.sender[:200], sent=detail.sent,
        severity=detail.severity, urgency=detail.urgency, certainty=detail.certainty, event=detail.event[:200],
        categories=list(detail.categories), headline=detail.headline[:500], description=detail.description,
        instruction=detail.instruction, sender_name=detail.sender_name[:200],
        web=detail.web[:500] if detail.web else None, areas=list(detail.areas), region_keys=list(detail.region_keys),
        outcome="pending",
    )  # fmt: skip


def _take(session: Session, *, settings: Settings, municipality_id: int, ars: str, item: DashboardItem,
          detail: WarningDetail, area: dict[str, Any] | None) -> int | None:  # fmt: skip
    """Claims the version and makes its broadcast in one transaction; the id of a broadcast to start now, if any."""
    row = _record(municipality_id, item, detail)
    session.add(row)
    session.flush()  # the claim: a second poll of this version fails here, before it made anything
    # Whatever this version becomes, an earlier one's draft nobody received no longer stands.
    withdrawn = _withdraw_unsent(session, row)
    if not any(covers(key, ars) for key in detail.region_keys):
        row.outcome = "outside"
        return None
    relay = session.get(WarningRelay, municipality_id)
    municipality = session.get(Municipality, municipality_id)
    assert relay is not None and municipality is not None
    earlier = _earlier(session, row)
    previous = session.get(Broadcast, earlier.broadcast_id) if earlier and earlier.broadcast_id else None
    if row.msg_type == "Cancel":
        if previous is None or earlier is None:
            # Nobody received the warning: its drafts are withdrawn, and there is nothing to clear.
            row.outcome = "withdrawn" if withdrawn else "unmatched"
            return None
        send = earlier.outcome == "sent"
        draft = broadcasts.Draft(
            kind="all_clear", title=row.headline[:200], texts={"de": {"body": _text(municipality, settings, row,
            update=False)}}, severity=previous.severity, follows_id=previous.id, topic_ids=previous.topic_ids,
            district_ids=previous.district_ids,
        )  # fmt: skip
    else:
        action = action_for(relay, provider=row.provider, severity=row.severity)
        if action == "ignore":
            row.outcome = "ignored"
            return None
        districts = _districts(session, municipality_id, area)
        if districts == []:
            row.outcome = "outside"  # within the town's key, but its area misses every district
            return None
        send = action == "send"
        warning_topics = session.exec(
            select(Topic.id).where(Topic.municipality_id == municipality_id, Topic.is_warning == True)  # noqa: E712
        ).all()
        draft = broadcasts.Draft(
            kind="warning", title=row.headline[:200],
            texts={"de": {"body": _text(municipality, settings, row, update=previous is not None)}},
            severity=row.severity if row.severity in SEVERITIES else FALLBACK_SEVERITY,
            topic_ids=[topic_id for topic_id in warning_topics if topic_id is not None], district_ids=districts or (),
        )  # fmt: skip
    broadcast = broadcasts.relay(session, municipality_id=municipality_id, draft=draft, send=send,
                                 source=f"{row.official_id} v{row.version}")  # fmt: skip
    row.broadcast_id = broadcast.id
    row.outcome = "sent" if broadcast.status == "approved" else "drafted"
    return broadcast.id if broadcast.status == "approved" else None


def _districts(session: Session, municipality_id: int, area: dict[str, Any] | None) -> list[int] | None:
    """The districts the warning's area touches; None for all of them (no area, or no district shapes)."""
    if area is None:
        return None
    reached: set[int] = set()
    measured = False
    for feature in area.get("features", []):
        try:
            found = districts_meeting(session, municipality_id=municipality_id, area=feature)
        except InvalidInput:
            continue  # a point or line, or a broken ring: it narrows nothing down
        if found is None:
            return None
        measured = True
        reached.update(found)
    return sorted(reached) if measured else None
