"""Response targets: how long a citizen has waited, and when a conversation is past its team's target.

The office-time arithmetic is hub/tenancy/office_hours.py; this module applies it to conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from hub.inbox.models import Conversation
from hub.tenancy.models import Municipality, Team
from hub.tenancy.office_hours import deadline, office_hours, targets


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
