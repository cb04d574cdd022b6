"""What waits for a clerk (the count in their tab's title) and the news their browser may notify them of.

Waiting for a clerk: an open conversation assigned to them, or one of their team that nobody has taken yet.
News: one of those is newly assigned to them, new in their team, or about to miss its response target
(within DUE_SOON). Whether the browser shows notifications or plays a sound is each person's setting;
the permission itself is the browser's, asked for on a click on the settings page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from hub.i18n import N_
from hub.inbox import sla
from hub.inbox.models import Conversation, InboxAlertSetting
from hub.tenancy.models import StaffUser

DUE_SOON = timedelta(minutes=30)
# Why a conversation is news, as the notification's title says it (German msgids).
REASONS = {
    "assigned": N_("Ihnen zugewiesen"),
    "team": N_("Neu in Ihrem Team"),
    "due": N_("Antwortziel läuft bald ab"),
}


def settings_of(session: Session, *, user_id: int) -> InboxAlertSetting:
    """The person's alert settings; everything off until they choose."""
    return session.get(InboxAlertSetting, user_id) or InboxAlertSetting(user_id=user_id)


def save_settings(session: Session, *, user_id: int, browser: bool, sound: bool) -> InboxAlertSetting:
    found = session.get(InboxAlertSetting, user_id) or InboxAlertSetting(user_id=user_id)
    found.browser, found.sound = browser, sound
    session.add(found)
    session.flush()
    return found


def waiting_for(session: Session, *, user: StaffUser, now: datetime) -> dict[int, tuple[str, str]]:
    """The open conversations waiting for `user`, by id: (reference, why it concerns them)."""
    mine = col(Conversation.assignee_id) == user.id
    team_unassigned = (col(Conversation.team_id) == user.team_id) & col(Conversation.assignee_id).is_(None)
    found = session.exec(
        select(Conversation.id, Conversation.reference, Conversation.assignee_id).where(
            Conversation.municipality_id == user.municipality_id,
            Conversation.status == "open",
            or_(mine, team_unassigned) if user.team_id is not None else mine,
        )
    ).all()
    if not found:
        return {}
    due = set(sla.overdue_conversation_ids(session, municipality_id=user.municipality_id, now=now + DUE_SOON))
    return {
        conversation_id: (reference, "due" if conversation_id in due else "assigned" if assignee else "team")
        for conversation_id, reference, assignee in found
        if conversation_id is not None
    }


@dataclass(frozen=True)
class Alert:
    conversation_id: int
    reference: str
    reason: str


@dataclass
class Watch:
    """One open page's view of what waits for its clerk: the first look is what the page showed, later ones news."""

    told: dict[int, str] | None = None
    count: int | None = None
    fresh: list[Alert] = field(default_factory=list)

    def look(self, session: Session, *, user: StaffUser, now: datetime) -> bool:
        """Updates `count` and `fresh` (news since the last look, none at first); True where either changed."""
        waiting = waiting_for(session, user=user, now=now)
        first = self.told is None
        told = self.told or {}
        self.fresh = [
            Alert(conversation_id=i, reference=reference, reason=reason)
            for i, (reference, reason) in waiting.items()
            if not first and told.get(i) != reason
        ]
        self.told = {i: reason for i, (_reference, reason) in waiting.items()}
        changed = len(waiting) != self.count or bool(self.fresh)
        self.count = len(waiting)
        return changed
