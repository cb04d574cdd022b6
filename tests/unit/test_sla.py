"""Response targets counted in office hours, and which conversations are past them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from hub.contacts.models import Contact
from hub.inbox.models import Conversation
from hub.inbox.sla import clock, overdue_conversation_ids
from hub.tenancy.models import Municipality, Team
from hub.tenancy.office_hours import deadline
from tests.unit.db import make_town

WEEKDAYS_8_TO_16 = {day: [["08:00", "16:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
BERLIN = "Europe/Berlin"


def berlin(text: str) -> datetime:
    """A Berlin wall-clock time in winter (UTC+1) as UTC."""
    return (datetime.fromisoformat(text) - timedelta(hours=1)).replace(tzinfo=UTC)


def test_a_deadline_within_the_same_office_day() -> None:
    assert deadline(berlin("2026-11-23 09:00"), 60, WEEKDAYS_8_TO_16, BERLIN) == berlin("2026-11-23 10:00")


def test_a_deadline_carries_over_to_the_next_morning() -> None:
    # Monday 15:50 + 30 office minutes: 10 today, 20 on Tuesday from 08:00.
    assert deadline(berlin("2026-11-23 15:50"), 30, WEEKDAYS_8_TO_16, BERLIN) == berlin("2026-11-24 08:20")


def test_a_message_on_friday_evening_is_due_on_monday() -> None:
    assert deadline(berlin("2026-11-27 18:00"), 60, WEEKDAYS_8_TO_16, BERLIN) == berlin("2026-11-30 09:00")


def test_no_office_hours_means_around_the_clock() -> None:
    assert deadline(berlin("2026-11-28 23:30"), 60, {}, BERLIN) == berlin("2026-11-29 00:30")


def conversation(
    town_id: int, contact_and_account: tuple[int, int], created: datetime, **fields: object
) -> Conversation:
    contact_id, account_id = contact_and_account
    return Conversation(
        municipality_id=town_id, contact_id=contact_id, channel_account_id=account_id,
        reference=f"A-{created.timestamp()}", public_token="t", created_at=created,
        last_inbound_at=fields.pop("last_inbound_at", created), **fields,
    )  # fmt: skip


def test_waiting_time_and_overdue_marks(session: Session) -> None:
    town = make_town(session)
    municipality = session.get(Municipality, town.id)
    assert municipality is not None
    team = Team(
        municipality_id=town.id, name="Bauamt", first_response_minutes=60, resolution_minutes=600, office_hours={}
    )
    session.add(team)
    session.commit()
    now = berlin("2026-11-23 12:00")
    fresh = conversation(town.id, (1, 1), now - timedelta(minutes=20), team_id=team.id)
    late = conversation(town.id, (1, 1), now - timedelta(minutes=90), team_id=team.id)
    answered = conversation(
        town.id, (1, 1), now - timedelta(minutes=90), team_id=team.id, first_response_at=now - timedelta(minutes=80)
    )
    fresh_clock = clock(fresh, team=team, municipality=municipality, now=now)
    assert fresh_clock.waiting_seconds == 20 * 60
    assert not fresh_clock.overdue
    late_clock = clock(late, team=team, municipality=municipality, now=now)
    assert late_clock.first_response_overdue
    answered_clock = clock(answered, team=team, municipality=municipality, now=now)
    assert answered_clock.waiting_seconds is None
    assert not answered_clock.overdue


def test_overdue_conversations_are_listed(session: Session) -> None:
    town = make_town(session)
    # Around the clock, so the test does not depend on the weekday it runs on.
    town.municipality.preferences = {"office_hours": {}}
    team = Team(municipality_id=town.id, name="Ordnungsamt", first_response_minutes=30)
    session.add_all([town.municipality, team])
    session.commit()
    now = datetime.now(UTC)
    contact = Contact(municipality_id=town.id)
    session.add(contact)
    session.commit()
    assert contact.id is not None and town.accounts["twilio"].id is not None
    contact_account = (contact.id, town.accounts["twilio"].id)
    late = conversation(town.id, contact_account, now - timedelta(hours=2), team_id=team.id)
    fresh = conversation(town.id, contact_account, now - timedelta(minutes=5), team_id=team.id)
    session.add_all([late, fresh])
    session.commit()
    assert overdue_conversation_ids(session, municipality_id=town.id, now=now) == [late.id]
