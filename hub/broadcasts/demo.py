"""The demo town's invitation with a calendar entry: two subscribers of events, one by mail and one by SMS, invited.

Once the workers send it, the sandbox outbox shows the mail with its calendar entry (einladung.ics,
METHOD:REQUEST) and the SMS with the link to the public calendar file; a REPLY as Erika's calendar
sends it (`rathaus sandbox email --from erika.mustermann@example.org --attach antwort.ics`) counts as
her answer.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from channels.registry import sms_kinds
from hub.broadcasts import service
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.subscribers.catalogue import find_topic
from hub.subscribers.consent import subscribe
from hub.tenancy.models import Municipality, StaffUser

# Who is invited: (name, kind of address, address).
DEMO_INVITEES = (
    ("Erika Mustermann", "email", "erika.mustermann@example.org"),
    ("Jonas Becker", "phone", "+4915199990001"),
)
DEMO_INVITATION_TITLE = "Bürgerversammlung: ein Spielplatz für den Stadtpark"


def seed_invitation_demo(session: Session, municipality: Municipality, *, author: StaffUser, mayor: StaffUser) -> None:
    """The invitees, subscribed to events, and the invitation two weeks ahead at 18:00, approved to go out now."""
    assert municipality.id is not None
    events = find_topic(session, municipality_id=municipality.id, word="veranstaltungen")
    assert events is not None and events.id is not None
    for name, kind, address in DEMO_INVITEES:
        contact = resolve_contact(session, municipality_id=municipality.id, kind=kind, address=address,
                                  display_name=name)  # fmt: skip
        assert contact.id is not None
        subscribe(session, municipality_id=municipality.id, contact_id=contact.id, channel_kind=None, source="import",
                  evidence={"demo": True}, topic_ids=[events.id])  # fmt: skip
    local_day = (utcnow() + timedelta(days=14)).astimezone(ZoneInfo(municipality.timezone)).date()
    starts = datetime.combine(local_day, time(18, 0), tzinfo=ZoneInfo(municipality.timezone))
    draft = service.Draft(
        kind="invitation", title=DEMO_INVITATION_TITLE, options=["Ja", "Nein"], topic_ids=[events.id],
        channel_kinds=["email", *sms_kinds()], event={"where": "Rathaus, Ratssaal"},
        event_starts_at=starts, event_ends_at=starts + timedelta(hours=2),
        texts={
            "de": {"body": "{{ salutation }}, die Stadt plant einen Spielplatz im Stadtpark. Sprechen Sie mit!"},
            "en": {"body": "{{ salutation }}, the town is planning a playground in the park. Have your say!"},
        },
    )  # fmt: skip
    invitation = service.create(session, author=author, draft=draft)
    assert invitation.id is not None
    service.submit(session, actor=author, broadcast_id=invitation.id)
    service.approve(session, actor=mayor, broadcast_id=invitation.id)
