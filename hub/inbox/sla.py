"""Response targets: how long a citizen has waited, and when a conversation is past its team's target.

Targets are minutes of office time: a message at 15:50 with a 30-minute target and office hours
until 16:00 is due at 08:20 the next working day. Office hours come from the team, else the
municipality; none at all means the clock runs around the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.inbox.models import Conversation
from hub.tenancy.models import Municipality, Team
from hub.tenancy.preferences import preference

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A deadline further out than this many days of looking means the hours are effectively closed.
_SEARCH_DAYS = 400

OfficeHours = dict[str, list[list[str]]]


@dataclass(frozen=True)
class Targets:
    first_response_minutes: int | None
    resolution_minutes: int | None


@dataclass(frozen=True)
class ResponseClock:
    """What the inbox shows for one conversation at `now`."""

    waiting_seconds: float | None  # since the citizen's last unanswered message; None: nobody waits
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_overdue: bool
    resolution_overdue: bool

    @property
    def overdue(self) -> bool:
        return self.first_response_overdue or self.resolution_overdue


def office_hours(municipality: Municipality, team: Team | None) -> OfficeHours:
    own = team.office_hours if team is not None else None
    return dict(own) if own else dict(preference(municipality, "office_hours"))


def targets(municipality: Municipality, team: Team | None) -> Targets:
    if team is not None and (team.first_response_minutes or team.resolution_minutes):
        return Targets(team.first_response_minutes, team.resolution_minutes)
    defaults: dict[str, Any] = preference(municipality, "response_targets")
    return Targets(defaults.get("first_response_minutes"), defaults.get("resolution_minutes"))


def _intervals(hours: OfficeHours, day: datetime) -> list[tuple[datetime, datetime]]:
    """The office intervals of one local calendar day, as aware datetimes."""
    spans = []
    for start, end in hours.get(WEEKDAYS[day.weekday()], []):
        opens = datetime.combine(day.date(), time.fromisoformat(start), tzinfo=day.tzinfo)
        closes = datetime.combine(day.date(), time.fromisoformat(end), tzinfo=day.tzinfo)
        if closes > opens:
            spans.append((opens, closes))
    return sorted(spans)


def deadline(start: datetime, minutes: int, hours: OfficeHours, timezone: str) -> datetime:
    """The moment `minutes` of office time after `start` have passed."""
    if not hours:
        return start + timedelta(minutes=minutes)
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    remaining = timedelta(minutes=minutes)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(_SEARCH_DAYS):
        for opens, closes in _intervals(hours, day):
            begin = max(opens, local)
            if begin >= closes:
                continue
            if begin + remaining <= closes:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= closes - begin
        day = (day + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=_SEARCH_DAYS)


def clock(
    conversation: Conversation,
    *,
    team: Team | None,
    municipality: Municipality,
    now: datetime,
    last_reply_at: datetime | None = None,
) -> ResponseClock:
    """The conversation's waiting time and targets; `last_reply_at` defaults to its first response."""
    replied = last_reply_at or conversation.first_response_at
    last_inbound = conversation.last_inbound_at
    unanswered = last_inbound is not None and (replied is None or last_inbound > replied)
    waiting = (
        (now - last_inbound).total_seconds()
        if unanswered and last_inbound and conversation.status != "resolved"
        else None
    )
    goal = targets(municipality, team)
    hours = office_hours(municipality, team)
    first_due = (
        deadline(conversation.created_at, goal.first_response_minutes, hours, municipality.timezone)
        if goal.first_response_minutes
        else None
    )
    resolution_due = (
        deadline(conversation.created_at, goal.resolution_minutes, hours, municipality.timezone)
        if goal.resolution_minutes
        else None
    )
    return ResponseClock(
        waiting_seconds=waiting,
        first_response_due=first_due,
        resolution_due=resolution_due,
        first_response_overdue=first_due is not None and (conversation.first_response_at or now) > first_due,
        resolution_overdue=resolution_due is not None and (conversation.resolved_at or now) > resolution_due,
    )


def overdue_conversation_ids(session: Session, *, municipality_id: int, now: datetime) -> list[int]:
    """Open and pending conversations past a target, oldest first.

    Computed in Python because office hours do not fit a query; a town has hundreds of
    unresolved conversations, not millions.
    """
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        return []
    teams = {team.id: team for team in session.exec(select(Team).where(Team.municipality_id == municipality_id))}
    unresolved = session.exec(
        select(Conversation)
        .where(Conversation.municipality_id == municipality_id, col(Conversation.status) != "resolved")
        .order_by(col(Conversation.created_at))
    )
    return [
        conversation.id
        for conversation in unresolved
        if conversation.id is not None
        and clock(conversation, team=teams.get(conversation.team_id), municipality=municipality, now=now).overdue
    ]
