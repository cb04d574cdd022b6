"""An invitation's calendar entry (RFC 5545): its UID, its time as text, the iTIP message of a method, its public link.

An invitation with a start time is a calendar entry; one with only a worded time ("im Mai")
is not, and goes out as before. The entry keeps one UID for every version and recipient, so
calendars update what they hold instead of adding it again.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

from channels.base import CALENDAR_METHOD_TYPE, Attachment
from channels.registry import adapter_class
from hub.broadcasts.models import Broadcast
from hub.db import utcnow
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount, Municipality

CALENDAR_FILENAME = "einladung.ics"
UID_PATTERN = re.compile(r"^einladung-(\d+)@([a-z0-9-]+)\.rathaus-hub$")


def has_calendar(broadcast: Broadcast) -> bool:
    """An invitation with a start time is a calendar entry; one with only a worded time is not."""
    return broadcast.kind == "invitation" and broadcast.event_starts_at is not None


def new_calendar_token() -> str:
    return secrets.token_urlsafe(16)


def event_uid(broadcast: Broadcast, municipality: Municipality) -> str:
    """The entry's UID, the same for every version and recipient, so calendars update what they hold."""
    return f"einladung-{broadcast.id}@{municipality.slug}.rathaus-hub"


def when_text(starts_at: datetime, ends_at: datetime | None, timezone: str) -> str:
    """The event's time as the invitation's text shows it, in the town's time: "12.05.2027 18:00–20:00"."""
    zone = ZoneInfo(timezone)
    start = starts_at.astimezone(zone)
    if ends_at is None:
        return start.strftime("%d.%m.%Y %H:%M")
    end = ends_at.astimezone(zone)
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%d.%m.%Y %H:%M")
    return f"{start.strftime('%d.%m.%Y %H:%M')}–{until}"


def calendar_url(settings: Settings, broadcast: Broadcast) -> str | None:
    """The public address of the invitation's calendar file, for channels that cannot carry the file."""
    if not has_calendar(broadcast) or not broadcast.calendar_token:
        return None
    return f"{settings.public_url.rstrip('/')}/einladung/{broadcast.calendar_token}.ics"


def mailbox_of(account: ChannelAccount) -> str:
    """The address a mail account sends from: the invitation's organizer, to whom calendars reply."""
    return str(account.config.get(adapter_class(account.kind).configuration.address_key(), ""))


def calendar_file(
    broadcast: Broadcast, municipality: Municipality, *, method: str, organizer: str | None, attendee: str | None = None
) -> bytes:
    """The invitation as an iTIP message: REQUEST or CANCEL to one attendee, or PUBLISH to nobody in particular.

    Times are in UTC; the entry is cancelled once the broadcast is, whatever the method.
    """
    assert broadcast.event_starts_at is not None
    calendar = Calendar()
    calendar.add("prodid", "-//Rathaus Hub//Einladungen//DE")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", event_uid(broadcast, municipality))
    event.add("dtstamp", utcnow())
    event.add("sequence", broadcast.event_sequence)
    event.add("dtstart", broadcast.event_starts_at)
    if broadcast.event_ends_at is not None:
        event.add("dtend", broadcast.event_ends_at)
    event.add("summary", broadcast.title)
    if broadcast.event.get("where"):
        event.add("location", broadcast.event["where"])
    cancelled = method == "CANCEL" or broadcast.status == "cancelled"
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if organizer:
        town = vCalAddress(f"mailto:{organizer}")
        town.params["CN"] = municipality.name
        event.add("organizer", town)
    if attendee:
        invited = vCalAddress(f"mailto:{attendee}")
        invited.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"})
        event.add("attendee", invited)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def check_event_times(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """Refuses an event that begins in the past or ends before it begins."""
    if starts_at is None:
        if ends_at is not None:
            raise InvalidInput(N_("Ein Ende ohne Beginn der Veranstaltung geht nicht; geben Sie den Beginn an."))
        return
    if starts_at < utcnow():
        raise InvalidInput(N_("Der Beginn der Veranstaltung liegt in der Vergangenheit."))
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput(N_("Das Ende der Veranstaltung muss nach ihrem Beginn liegen."))


def invitation_attachment(
    broadcast: Broadcast, municipality: Municipality, *, method: str, account: ChannelAccount, attendee: str
) -> Attachment:
    """The entry as the mail to `attendee` carries it: an iTIP message from the account's mailbox."""
    data = calendar_file(broadcast, municipality, method=method, organizer=mailbox_of(account), attendee=attendee)
    return Attachment(filename=CALENDAR_FILENAME, content_type=CALENDAR_METHOD_TYPE.format(method=method), data=data)
