"""`rathaus broadcast report --follow`: a bar per channel, and a line saying what holds the broadcast back."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from sqlmodel import Session

from hub.broadcasts import service
from hub.broadcasts.cli import follow_note
from hub.broadcasts.models import Broadcast, Delivery
from hub.cli import main
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.settings import Settings
from tests.unit.db import make_town
from tests.unit.web import staff_user

EMPTY = {"recipients": None, "per_channel": {}}


def test_follow_shows_a_bar_per_channel_until_the_broadcast_is_done(settings: Settings, session: Session) -> None:
    town = make_town(session)
    mayor = staff_user(session, town, "mayor")
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Wasser", status="completed",
                          texts={"de": {"body": "Wasser abgestellt"}}, recipient_count=3)  # fmt: skip
    session.add(broadcast)
    session.flush()
    for number, (kind, state) in enumerate((("twilio", "delivered"), ("twilio", "failed"), ("email", "sent"))):
        address = f"+4915100000{number:03d}" if kind == "twilio" else f"b{number}@example.org"
        contact = resolve_contact(session, municipality_id=town.id, kind="phone" if kind == "twilio" else "email",
                                  address=address)  # fmt: skip
        session.add(Delivery(municipality_id=town.id, broadcast_id=broadcast.id or 0, contact_id=contact.id or 0,
                             channel_account_id=town.accounts[kind].id or 0, address=address, state=state))  # fmt: skip
    session.commit()
    shown = CliRunner().invoke(main, ["broadcast", "report", str(broadcast.id), "--follow", "--as", mayor.email])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any(line.startswith("Abgeschlossen: 3 Empfänger") for line in lines), shown.output
    # One bar per channel, named as staff call it, with its count; no dictionaries.
    assert any(line.startswith("SMS (1 nicht erreicht)") and "2/2" in line for line in lines), shown.output
    assert any(line.startswith("E-Mail") and "1/1" in line and "100%" in line for line in lines), shown.output
    assert "{" not in shown.output and "twilio" not in shown.output


def test_the_follow_line_says_when_quiet_hours_hold_a_broadcast(session: Session) -> None:
    town = make_town(session)
    municipality = town.municipality
    zone = ZoneInfo(municipality.timezone)
    late = datetime.combine(utcnow().astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone)
    held_until = service.after_quiet_hours(municipality, late.replace(hour=23))
    held = Broadcast(municipality_id=town.id, kind="announcement", title="Fest", status="approved", send_at=held_until)
    note = follow_note(held, municipality, EMPTY, utcnow())
    local = held_until.astimezone(zone)
    assert note == (
        f"Freigegeben: Die Ruhezeit hält die Rundsendung an; sie geht am {local:%d.%m. um %H:%M} Uhr hinaus."
    )
    planned = Broadcast(municipality_id=town.id, kind="announcement", title="Fest", status="approved",
                        send_at=late.replace(hour=12))  # fmt: skip
    assert follow_note(planned, municipality, EMPTY, utcnow()) == "Freigegeben: geht am " + (
        f"{late.replace(hour=12):%d.%m. um %H:%M} Uhr hinaus."
    )
    choosing = Broadcast(municipality_id=town.id, kind="warning", title="Sturm", status="sending")
    assert follow_note(choosing, municipality, EMPTY, utcnow()) == "Wird gesendet: Empfänger werden ausgewählt …"
