"""Response targets: how long a citizen has waited, and when a conversation is past its team's target.

The office-time arithmetic is hub/tenancy/office_hours.py; this module applies it to conversations.
A domain above the inbox whose conversations carry a first-response target of their own (a
problem report's category) registers where to find it (register_own_targets, from hub/composition.py);
that target replaces the team's, in hours around the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from hub.inbox.models import Conversation
from hub.tenancy.models import Municipality, Team
from hub.tenancy.office_hours import deadline, office_hours, targets

# A target this close, not met yet, is shown as due soon.
DUE_SOON = timedelta(hours=1)
# (session, conversation ids) -> the first-response target of those that have one of their own.
OwnTargets = Callable[[Session, Collection[int]], dict[int, timedelta]]
_own_targets: list[OwnTargets] = []


def register_own_targets(source: OwnTargets) -> None:
    if source not in _own_targets:
        _own_targets.append(source)


def own_targets(session: Session, conversation_ids: Collection[int]) -> dict[int, timedelta]:
    """The conversations' own first-response targets, in one query per registered source."""
    found: dict[int, timedelta] = {}
    if conversation_ids:
        for source in _own_targets:
            found.update(source(session, conversation_ids))
    return found


@dataclass(frozen=True)
class ResponseClock:
    """What the inbox shows for one conversation at `now`."""

    waiting_seconds: float | None  # since the citizen's last unanswered message; None: nobody waits
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_overdue: bool
    resolution_overdue: bool
    # The nearest target not met yet, if one: what the list's "on time / due soon" compares with.
    next_due: datetime | None = None
    due_soon: bool = False

    @property
    def overdue(self) -> bool:
        return self.first_response_overdue or self.resolution_overdue

    @property
    def state(self) -> str | None:
        """overdue, due_soon or on_time; None when no target is still to be met."""
        if self.overdue:
            return "overdue"
        if self.next_due is None:
            return None
        return "due_soon" if self.due_soon else "on_time"


def clock(
    conversation: Conversation,
    *,
    team: Team | None,
    municipality: Municipality,
    now: datetime,
    last_reply_at: datetime | None = None,
    own_target: timedelta | None = None,
) -> ResponseClock:
    """The conversation's waiting time and targets; `last_reply_at` defaults to its first response.

    `own_target` (see own_targets) is the conversation's own first-response target, replacing the team's.
    """
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
    if own_target is not None:
        first_due: datetime | None = conversation.created_at + own_target
    elif goal.first_response_minutes:
        first_due = deadline(conversation.created_at, goal.first_response_minutes, hours, municipality.timezone)
    else:
        first_due = None
    resolution_due = (
        deadline(conversation.created_at, goal.resolution_minutes, hours, municipality.timezone)
        if goal.resolution_minutes
        else None
    )
    ahead = [
        due
        for due, met in ((first_due, conversation.first_response_at), (resolution_due, conversation.resolved_at))
        if due is not None and met is None
    ]
    next_due = min(ahead, default=None)
    return ResponseClock(
        next_due=next_due,
        due_soon=next_due is not None and now <= next_due <= now + DUE_SOON,
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
    ).all()
    own = own_targets(session, [conversation.id for conversation in unresolved if conversation.id is not None])
    return [
        conversation.id
        for conversation in unresolved
        if conversation.id is not None
        and clock(
            conversation, team=teams.get(conversation.team_id), municipality=municipality, now=now,
            own_target=own.get(conversation.id),
        ).overdue
    ]  # fmt: skip
