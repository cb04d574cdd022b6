"""Wiedervorlage, list previews and live lists, on SQLite and PostgreSQL where the database decides the outcome."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from hub import db
from hub.audit.models import AuditEvent
from hub.db import utcnow
from hub.demo import seed_demo
from hub.errors import InvalidInput
from hub.inbox import bulk, live, overview, service, snooze
from hub.inbox.models import Conversation
from hub.inbox.sla import DUE_SOON, clock
from hub.inbox.snooze import town as town_of
from hub.settings import Settings
from hub.tenancy.models import Municipality, Team
from tests.unit.db import Town, make_town
from tests.unit.test_inbox_pages import inbound, rows
from tests.unit.test_inbox_views import navigation
from tests.unit.web import api_client, clerk


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def _fresh(session: Session, conversation: Conversation) -> Conversation:
    session.expire_all()
    found = session.get(Conversation, conversation.id)
    assert found is not None
    return found


def _town_day(town: Town, days: int) -> str:
    """The day `days` from today in the town's time, as a form sends it."""
    return (utcnow().astimezone(ZoneInfo(town.municipality.timezone)).date() + timedelta(days=days)).isoformat()


def _audit(session: Session, action: str, conversation: Conversation) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.object_id == conversation.id)
        ).all()
    )


def _day_arrives(session: Session, conversation: Conversation) -> None:
    """The Wiedervorlage's moment is reached: now, so it lies in the past for whatever looks next."""
    stored = _fresh(session, conversation)
    stored.snoozed_until = utcnow()
    session.commit()


def test_a_snoozed_conversation_leaves_the_open_lists_and_is_open_again_on_its_day(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    later = inbound(both, backend_settings, town, "Bitte nächste Woche nachfragen")
    other = inbound(both, backend_settings, town, "Andere Frage")
    service.update_conversation(both, municipality_id=town.id, conversation_id=later.id or 0, status="pending")
    both.commit()
    staff = clerk(both, town)
    day = _town_day(town, 2)

    done = staff.post(f"/app/inbox/{later.id}/snooze", {"day": day, "at": "09:30"})
    assert done.status_code == 200 and "Die Wiedervorlage ist gesetzt" in done.text
    stored = _fresh(both, later)
    local = datetime.combine(datetime.fromisoformat(day).date(), time(9, 30), ZoneInfo(town.municipality.timezone))
    assert stored.snoozed_until == local.astimezone(UTC) and stored.status == "open"
    [record] = _audit(both, snooze.SNOOZED, later)
    assert record.actor_id == staff.user.id and record.details["previous_status"] == "pending"

    listed = staff.get("/app/inbox")
    assert rows(listed.text) == [other.reference]
    assert navigation(listed.text)["Wiedervorlage"] == "1"
    set_aside = staff.get("/app/inbox?snoozed=1").text
    assert rows(set_aside) == [later.reference] and "Wiedervorlage " in set_aside
    assert set(rows(staff.get("/app/inbox?status=all").text)) == {later.reference, other.reference}
    assert "Kommt am" in staff.get(f"/app/inbox/{later.id}").text

    _day_arrives(both, later)
    back = staff.get("/app/inbox").text
    assert set(rows(back)) == {later.reference, other.reference}
    assert navigation(back)["Wiedervorlage"] == "0"


def test_the_citizen_writing_brings_it_back_at_once(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    case = inbound(both, backend_settings, town, "Ich melde mich wieder", sender="+4915100004242")
    staff = clerk(both, town)
    snooze.snooze(both, municipality_id=town.id, conversation_id=case.id or 0, actor_id=staff.user.id or 0,
                  day=_town_day(town, 7))  # fmt: skip
    both.commit()
    assert rows(staff.get("/app/inbox").text) == []

    inbound(both, backend_settings, town, "Da bin ich wieder", sender="+4915100004242")
    assert _fresh(both, case).snoozed_until is None
    assert rows(staff.get("/app/inbox").text) == [case.reference]
    [ended] = _audit(both, snooze.ENDED, case)
    assert ended.actor_id is None and ended.details["reason"] == "message"


def test_a_moment_that_cannot_be_is_refused_in_german_and_nothing_is_stored(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    case = inbound(session, settings, town, "Frage")
    staff = clerk(session, town)
    for form, says in (
        ({"day": _town_day(town, -1)}, "muss in der Zukunft liegen"),
        ({"day": ""}, "Bitte einen Tag"),
        ({"day": "10.12.2026"}, "kein Datum im Format JJJJ-MM-TT"),
        ({"day": _town_day(town, 3), "at": "25:00"}, "keine Uhrzeit"),
        ({"day": _town_day(town, 400)}, "höchstens ein Jahr"),
    ):
        refused = staff.post(f"/app/inbox/{case.id}/snooze", form)
        assert refused.status_code == 422 and says in refused.text, (form, refused.text[:300])
    assert _fresh(session, case).snoozed_until is None
    with pytest.raises(InvalidInput, match="Zeitumstellung"):
        snooze.ReturnDay.from_text("2027-03-28", "02:30").moment(
            town.municipality, now=datetime(2027, 3, 1, tzinfo=UTC)
        )
    assert _audit(session, snooze.SNOOZED, case) == []


def test_the_api_sets_lists_and_ends_a_wiedervorlage(session: Session, settings: Settings) -> None:
    town = make_town(session)
    case = inbound(session, settings, town, "Frage")
    client = api_client(session, town)
    past = client.put(f"/api/v1/conversations/{case.id}/snooze", json={"day": _town_day(town, -2)})
    assert past.status_code == 422 and "Zukunft" in past.text
    answer = client.put(f"/api/v1/conversations/{case.id}/snooze", json={"day": _town_day(town, 1)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["snoozed_until"] is not None
    moment = datetime.fromisoformat(answer.json()["snoozed_until"]).astimezone(ZoneInfo(town.municipality.timezone))
    assert moment.time() == snooze.DEFAULT_TIME
    assert client.get("/api/v1/conversations").json()["total"] == 0
    assert client.get("/api/v1/conversations?snoozed=only").json()["total"] == 1
    ended = client.delete(f"/api/v1/conversations/{case.id}/snooze")
    assert ended.status_code == 200 and ended.json()["snoozed_until"] is None
    assert client.get("/api/v1/conversations").json()["total"] == 1


def test_bulk_snooze_sets_many_aside_a_status_ends_it_and_undo_puts_it_back(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    cases = [inbound(both, backend_settings, town, f"Frage {n}") for n in range(3)]
    ids = [c.id or 0 for c in cases[:2]]
    staff = clerk(both, town)
    day = _town_day(town, 3)
    page = staff.post("/app/inbox/bulk", {"ids": ids, "action": "snooze", "day": day, "at": "", "filter": ""})
    assert page.status_code == 200 and "2 Unterhaltungen geändert." in page.text
    assert rows(page.text) == [cases[2].reference]
    assert all(_fresh(both, c).snoozed_until is not None for c in cases[:2])

    change = bulk.apply(both, municipality_id=town.id, actor_id=staff.user.id or 0, action="status", value="open",
                        conversation_ids=ids)  # fmt: skip
    both.commit()
    assert change.changed == 2 and all(_fresh(both, c).snoozed_until is None for c in cases[:2])
    bulk.undo(both, municipality_id=town.id, actor_id=staff.user.id or 0, change_id=change.id)
    both.commit()
    restored = [_fresh(both, c).snoozed_until for c in cases[:2]]
    assert all(moment is not None and moment > utcnow() for moment in restored)
    refused = staff.post("/app/inbox/bulk", {"ids": ids, "action": "snooze", "day": "morgen", "filter": ""})
    assert refused.status_code == 422 and "kein Datum" in refused.text


def test_rows_show_the_last_message_shortened_in_a_fixed_number_of_queries(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    long_text = "Die Straßenlaterne  vor\n\nHausnummer 12 " + "flackert seit Tagen " * 20
    case = inbound(both, backend_settings, town, long_text)
    staff = clerk(both, town)
    row = overview.summaries(both, municipality=town.municipality, conversations=[_fresh(both, case)], now=utcnow())[0]
    assert row.preview is not None and not row.preview.outbound
    assert row.preview.text.startswith("Die Straßenlaterne vor Hausnummer 12 flackert")
    assert row.preview.text.endswith(" …") and len(row.preview.text) <= overview.PREVIEW_CHARS
    assert row.preview.text in staff.get("/app/inbox").text

    service.reply(
        both, municipality_id=town.id, conversation_id=case.id or 0, author=staff.user, text="Wir kümmern uns."
    )
    service.add_note(both, municipality_id=town.id, conversation_id=case.id or 0, author=staff.user,
                     text="Vermerk nur fürs Haus")  # fmt: skip
    both.commit()
    listed = staff.get("/app/inbox").text
    assert "Antwort:</span> Wir kümmern uns." in listed and "Vermerk nur fürs Haus" not in listed

    def queries(count: int) -> int:
        conversations = list(both.exec(select(Conversation).where(Conversation.municipality_id == town.id)))[:count]
        seen: list[str] = []
        engine = both.get_bind()
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            overview.summaries(both, municipality=town.municipality, conversations=conversations, now=utcnow())
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    for n in range(5):
        inbound(both, backend_settings, town, f"Weitere Frage {n}")
    assert queries(1) == queries(6)


def test_the_response_target_reads_on_time_due_soon_or_overdue(session: Session) -> None:
    town = make_town(session)
    municipality = session.get(Municipality, town.id)
    assert municipality is not None
    municipality.preferences = {"office_hours": {}}  # around the clock, whatever the weekday
    team = Team(municipality_id=town.id, name="Bauamt", first_response_minutes=180)
    session.add_all([municipality, team])
    session.commit()
    now = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)

    def state(age: timedelta, **fields: object) -> str | None:
        case = Conversation(
            municipality_id=town.id, contact_id=1, channel_account_id=1, reference="A", public_token="t",
            created_at=now - age, last_inbound_at=now - age, **fields,
        )  # fmt: skip
        return clock(case, team=team, municipality=municipality, now=now).state

    assert state(timedelta(minutes=10)) == "on_time"
    assert state(timedelta(minutes=180) - DUE_SOON + timedelta(minutes=5)) == "due_soon"
    assert state(timedelta(minutes=200)) == "overdue"
    assert state(timedelta(minutes=10), first_response_at=now) is None


def test_status_and_assignment_changes_reach_an_open_list_live(
    both: Session, backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.3)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    town = make_town(both)
    taken, finished, aside, back = (inbound(both, backend_settings, town, f"Frage {n}") for n in range(4))
    staff = clerk(both, town)
    snooze.snooze(both, municipality_id=town.id, conversation_id=back.id or 0, actor_id=staff.user.id or 0,
                  day=_town_day(town, 1))  # fmt: skip
    both.commit()
    page = staff.get("/app/inbox").text
    assert back.reference not in rows(page)
    events = re.search(r'data-events="([^"]+)"', page).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "changes=" in events
    assert "event: row" not in staff.get(events).text  # what the page shows already is not sent again

    service.update_conversation(both, municipality_id=town.id, conversation_id=taken.id or 0, assignee_id=staff.user.id)
    service.update_conversation(both, municipality_id=town.id, conversation_id=finished.id or 0, status="resolved")
    snooze.snooze(both, municipality_id=town.id, conversation_id=aside.id or 0, actor_id=staff.user.id or 0,
                  day=_town_day(town, 2))  # fmt: skip
    both.commit()
    _day_arrives(both, back)  # its Wiedervorlage runs out while the list is open: it is back
    stream = staff.get(events).text
    rows_sent = re.findall(r'event: row\ndata: \{"id": (\d+)', stream)
    gone = re.findall(r'event: gone\ndata: \{"id": (\d+)', stream)
    assert sorted(rows_sent) == sorted([str(taken.id), str(back.id)]) and staff.user.name in stream
    assert f'"id": {taken.id}, "html"' in stream and '"in_place": true' in stream
    assert sorted(gone) == sorted([str(finished.id), str(aside.id)])
    # A reconnect resumes from the id of the last event: nothing is sent twice.
    last_id = re.findall(r"^id: (\S+)$", stream, re.MULTILINE)[-1]
    again = staff.get(events, headers={"Last-Event-ID": last_id}).text
    assert "event: row" not in again and "event: gone" not in again


def test_the_demo_has_a_case_set_aside_that_the_citizen_can_bring_back(session: Session, settings: Settings) -> None:
    seeded = seed_demo(session, settings)
    session.commit()
    set_aside = service.list_conversations(session, municipality_id=seeded.municipality_id, snoozed=True).items
    [case] = [c for c in set_aside if c.subject == "Unterlagen zum Bauantrag"]
    assert case.snoozed_until is not None and case.status == "open"
    [row] = overview.summaries(session, municipality=town_of(session, seeded.municipality_id), conversations=[case],
                               now=utcnow())  # fmt: skip
    assert row.preview is not None and row.preview.outbound and row.returns_at == case.snoozed_until
