"""Wiedervorlage: a clerk sets a conversation aside until a day and time, when it is open again by itself.

A rule at query time rather than a timed task: a conversation whose `snoozed_until` lies ahead
is left out of the open lists (hub.inbox.service.conversation_query) and listed in the view
"Wiedervorlage"; from that moment on it is an open conversation like any other, with nothing
to wake. A message from the citizen ends it at once (wake_on_message, from the pipeline), and
so does any change of its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from hub.db import utcnow
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.inbox.models import Conversation
from hub.inbox.service import get_conversation
from hub.tenancy.administration import audit
from hub.tenancy.models import Municipality

# When a day is given without a time: the start of the office day.
DEFAULT_TIME = time(8, 0)
# Further ahead is a typo in the year rather than a plan.
LONGEST = timedelta(days=366)
SNOOZED = "conversation.snoozed"
ENDED = "conversation.snooze_ended"


@dataclass(frozen=True)
class ReturnDay:
    """When a conversation comes back: a day and a time (08:00 if not given) in the town's time."""

    day: date
    at: time | None = None

    @classmethod
    def from_text(cls, day: str, at: str = "") -> ReturnDay:
        """From a form's or the bulk API's text: the day as 2026-12-10, the time (optional) as 09:30."""
        if not day.strip():
            raise InvalidInput(N_("Bitte einen Tag für die Wiedervorlage wählen."))
        try:
            parsed_day = date.fromisoformat(day.strip())
        except ValueError:
            raise InvalidInput(N_("{value!r} ist kein Datum im Format JJJJ-MM-TT."), value=day) from None
        try:
            parsed_at = time.fromisoformat(at.strip()) if at.strip() else None
        except ValueError:
            raise InvalidInput(N_("{value!r} ist keine Uhrzeit im Format HH:MM."), value=at) from None
        return cls(parsed_day, parsed_at)

    def moment(self, municipality: Municipality, *, now: datetime) -> datetime:
        """As UTC; refused if past, skipped by the clocks' change or over a year ahead."""
        if self.at is not None and self.at.tzinfo is not None:
            raise InvalidInput(N_("Die Uhrzeit gilt in der Zeit der Gemeinde; bitte ohne Zeitzone angeben."))
        zone = ZoneInfo(municipality.timezone)
        local = datetime.combine(self.day, self.at or DEFAULT_TIME, tzinfo=zone)
        moment = local.astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
            raise InvalidInput(
                N_("Am {day} gibt es {time} Uhr wegen der Zeitumstellung nicht; bitte eine andere Uhrzeit wählen."),
                day=self.day.strftime("%d.%m.%Y"), time=local.strftime("%H:%M"),
            )  # fmt: skip
        if moment <= now:
            raise InvalidInput(N_("Die Wiedervorlage muss in der Zukunft liegen."))
        if moment > now + LONGEST:
            raise InvalidInput(N_("Die Wiedervorlage darf höchstens ein Jahr im Voraus liegen."))
        return moment


def suggested_days(municipality: Municipality, now: datetime) -> list[tuple[str, date]]:
    """The days a clerk picks most, as (German msgid, day) from today in the town."""
    today = now.astimezone(ZoneInfo(municipality.timezone)).date()
    return [
        (N_("Morgen"), today + timedelta(days=1)),
        (N_("Nächsten Montag"), today + timedelta(days=7 - today.weekday())),
        (N_("In einer Woche"), today + timedelta(days=7)),
        (N_("In vier Wochen"), today + timedelta(days=28)),
    ]


def snooze(
    session: Session, *, municipality_id: int, conversation_id: int, actor_id: int, day: date | str,
    at: time | str | None = None,
) -> Conversation:  # fmt: skip
    """Sets the conversation aside until `day` at `at` (as values, or as a form's text: ReturnDay.from_text); it
    comes back open (a resolved one is open again then). Another town's conversation is not found, whatever the day."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if isinstance(day, str) or isinstance(at, str):
        when = ReturnDay.from_text(str(day), str(at or ""))
    else:
        when = ReturnDay(day, at)
    until = when.moment(town(session, municipality_id), now=utcnow())
    audit(
        session, actor_id=actor_id, municipality_id=municipality_id, action=SNOOZED, object_type="conversation",
        object_id=conversation_id, until=until.isoformat(), previous_status=conversation.status,
    )  # fmt: skip
    conversation.snoozed_until = until
    conversation.status, conversation.resolved_at = "open", None
    conversation.changed_at = utcnow()
    session.flush()
    return conversation


def town(session: Session, municipality_id: int) -> Municipality:
    municipality = session.get(Municipality, municipality_id)
    assert municipality is not None
    return municipality


def end_snooze(session: Session, *, municipality_id: int, conversation_id: int, actor_id: int) -> Conversation:
    """Brings the conversation back now; one that is not set aside stays as it is."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if _ahead(conversation, utcnow()):
        _end(session, conversation, actor_id=actor_id, reason="staff")
    return conversation


def wake_on_message(session: Session, conversation: Conversation) -> None:
    """The citizen wrote: a conversation set aside is back in the open lists at once."""
    if _ahead(conversation, utcnow()):
        _end(session, conversation, actor_id=None, reason="message")


def _ahead(conversation: Conversation, now: datetime) -> bool:
    return conversation.snoozed_until is not None and conversation.snoozed_until > now


def _end(session: Session, conversation: Conversation, *, actor_id: int | None, reason: str) -> None:
    assert conversation.snoozed_until is not None
    audit(
        session, actor_id=actor_id, municipality_id=conversation.municipality_id, action=ENDED,
        object_type="conversation", object_id=conversation.id, until=conversation.snoozed_until.isoformat(),
        reason=reason,
    )  # fmt: skip
    conversation.snoozed_until = None
    conversation.changed_at = utcnow()
    session.flush()
