"""Reports on a small known dataset: messages per day, medians and 90th percentiles, missed targets, reach, CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from sqlmodel import Session

from hub.broadcasts.models import Broadcast, Delivery
from hub.contacts.models import Contact
from hub.inbox.models import Conversation, Message
from hub.reports import service
from hub.tenancy import service as tenancy
from tests.unit.db import Town, make_town
from tests.unit.web import clerk

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
QUERY = "?start=2026-03-02&end=2026-03-04"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def conversation(
    session: Session,
    town: Town,
    *,
    number: int,
    created: datetime,
    team_id: int | None,
    first_response: int | None,
    resolved: int | None,
    kind: str = "twilio",
) -> Conversation:
    contact = Contact(municipality_id=town.id)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    found = Conversation(
        municipality_id=town.id,
        contact_id=contact.id,
        channel_account_id=town.accounts[kind].id,
        reference=f"A-2026-{number:05d}",
        public_token=f"t{number}",
        team_id=team_id,
        created_at=created,
        first_response_at=created + timedelta(minutes=first_response) if first_response is not None else None,
        resolved_at=created + timedelta(minutes=resolved) if resolved is not None else None,
        status="resolved" if resolved is not None else "open",
    )
    session.add(found)
    session.flush()
    return found


def message(session: Session, town: Town, thread: Conversation, direction: str, when: datetime) -> None:
    session.add(
        Message(
            municipality_id=town.id,
            conversation_id=thread.id,
            channel_account_id=thread.channel_account_id,
            direction=direction,
            body="x",
            created_at=when,
        )
    )


@pytest.fixture
def dataset(session: Session) -> Town:
    """Five conversations of the Bauamt (targets 35 and 120 minutes), one without team, messages, a broadcast."""
    town = make_town(session)
    team = tenancy.create_team(session, municipality_id=town.id, name="Bauamt")
    team.first_response_minutes, team.resolution_minutes = 35, 120
    times = [(10, 60), (20, 90), (30, 200), (40, None), (100, None)]
    threads = [
        conversation(
            session,
            town,
            number=index,
            created=START + timedelta(hours=index),
            team_id=team.id,
            first_response=first,
            resolved=resolved,
        )
        for index, (first, resolved) in enumerate(times, start=1)
    ]
    telegram = conversation(
        session, town, number=9, created=at(3, 23, 30), team_id=None, first_response=5, resolved=None, kind="telegram"
    )
    message(session, town, threads[0], "inbound", at(2, 10))
    message(session, town, threads[1], "inbound", at(2, 11))
    message(session, town, threads[0], "outbound", at(2, 12))
    message(session, town, threads[0], "note", at(2, 12))
    # 23:30 UTC on the 3rd is 00:30 on the 4th in Berlin.
    message(session, town, telegram, "inbound", at(3, 23, 30))
    message(session, town, threads[2], "inbound", at(5, 9))  # after the period

    def broadcast(title: str, started: datetime, states: list[str]) -> None:
        sent = Broadcast(
            municipality_id=town.id, kind="announcement", title=title, status="completed", started_at=started
        )
        session.add(sent)
        session.flush()
        assert sent.id is not None
        for state in states:
            contact = Contact(municipality_id=town.id)
            session.add(contact)
            session.flush()
            assert contact.id is not None
            session.add(
                Delivery(
                    municipality_id=town.id,
                    broadcast_id=sent.id,
                    contact_id=contact.id,
                    channel_account_id=town.accounts["twilio"].id,
                    address="+4915100000",
                    state=state,
                )
            )

    broadcast("Straßenfest", at(3, 9), ["delivered"] * 4 + ["failed", "opted_out", "sent"])
    broadcast("Vorher", at(1, 9), ["delivered"])
    session.commit()
    return town


def test_percentile_interpolates_between_ranks_like_percentile_cont() -> None:
    assert service.percentile([], 0.5) is None
    assert service.percentile([7], 0.9) == 7
    assert service.percentile([10, 20, 30, 40, 100], 0.5) == 30
    assert service.percentile([10, 20, 30, 40, 100], 0.9) == pytest.approx(76)
    assert service.percentile([40, 10, 30, 20], 0.5) == 25


def test_the_numbers_of_a_known_dataset(session: Session, dataset: Town) -> None:
    municipality = dataset.municipality
    period = service.period(municipality, date(2026, 3, 2), date(2026, 3, 4))
    messages = service.messages_per_day(session, municipality_id=dataset.id, period=period)
    assert messages.count(date(2026, 3, 2), "twilio", "inbound") == 2
    assert messages.count(date(2026, 3, 2), "twilio", "outbound") == 1
    assert messages.count(date(2026, 3, 3), "telegram", "inbound") == 0
    assert messages.count(date(2026, 3, 4), "telegram", "inbound") == 1
    assert messages.per_day("inbound") == [2, 0, 1]

    times = service.response_times(
        session, municipality=municipality, period=period, no_team="Ohne Team", everyone="Alle"
    )
    bauamt, no_team = times.teams
    assert (bauamt.name, bauamt.conversations, no_team.name, no_team.conversations) == ("Bauamt", 5, "Ohne Team", 1)
    assert bauamt.first_response_median == 30 * 60
    assert bauamt.first_response_p90 == pytest.approx(76 * 60)
    assert bauamt.resolution_median == 90 * 60
    assert bauamt.resolution_p90 == pytest.approx(178 * 60)
    assert (bauamt.first_response_due, bauamt.first_response_missed) == (5, 2)
    assert bauamt.first_response_missed_share == pytest.approx(0.4)
    # 200 minutes, and two still open long after their 120 minutes.
    assert (bauamt.resolution_due, bauamt.resolution_missed) == (5, 3)
    # Without a team the town's default targets count (480 and 2400 minutes of office time):
    # answered in time, but still open long after.
    assert (no_team.first_response_due, no_team.first_response_missed) == (1, 0)
    assert (no_team.resolution_due, no_team.resolution_missed) == (1, 1)
    assert times.overall.conversations == 6
    assert times.overall.first_response_median == 25 * 60
    assert times.overall.first_response_p90 == pytest.approx(70 * 60)

    reach = service.broadcast_reach(session, municipality_id=dataset.id, period=period)
    assert [(item.title, item.recipients, item.delivered, item.failed, item.opted_out) for item in reach] == [
        ("Straßenfest", 7, 4, 1, 1)
    ]


def table_rows(html: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert table is not None, table_id
    body = table.group(1).split("<tbody>")[1]
    return [
        [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_reports_page_draws_charts_and_tables_and_the_csv_matches(session: Session, dataset: Town) -> None:
    mayor = clerk(session, dataset, "mayor")
    page = mayor.get(f"/app/reports{QUERY}")
    assert page.status_code == 200
    # Six of messages, times, targets and broadcasts; one of the consultations' ratings.
    assert page.text.count('<svg class="chart"') == 7
    assert "<title" in page.text and "<desc" in page.text
    # Values are written in the chart, not only drawn.
    assert "Straßenfest: 4" in page.text

    for report, table_id in (("messages", "table-messages"), ("broadcasts", "table-broadcasts")):
        answer = mayor.get(f"/app/reports/{report}.csv{QUERY}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.text), delimiter=";"))
        assert rows[1:] == table_rows(page.text, table_id)

    times = list(csv.reader(io.StringIO(mayor.get(f"/app/reports/response-times.csv{QUERY}").text), delimiter=";"))
    assert times[1][:4] == ["Bauamt", "5", "1800.0", "4560.0"]
    assert times[-1][0] == "Alle"
    shown = table_rows(page.text, "table-response-times")
    assert shown[0][:4] == ["Bauamt", "5", "30 Min.", "1 Std. 16 Min."]
    targets = list(csv.reader(io.StringIO(mayor.get(f"/app/reports/targets.csv{QUERY}").text), delimiter=";"))
    assert targets[1] == ["Bauamt", "35", "5", "2", "0.4", "120", "5", "3", "0.6"]
    assert table_rows(page.text, "table-targets")[0][4] == "40 %"
    # The page shows targets and times as durations under plain names; the CSV names the unit of its numbers.
    assert targets[0][1] == "Ziel erste Antwort (Min.)" and times[0][2] == "Erste Antwort, Median (s)"
    assert table_rows(page.text, "table-targets")[0][1:6:4] == ["35 Min.", "2 Std."]
    assert ">Erste Antwort, Median</th>" in page.text and "(s)</th>" not in page.text
    # Channels and kinds are named as staff call them, not by the system's keys.
    channels = {row[1] for row in table_rows(page.text, "table-messages")}
    assert "SMS" in channels and "twilio" not in channels
    assert {row[2] for row in table_rows(page.text, "table-broadcasts")} == {"Mitteilung"}

    assert mayor.get(f"/app/reports/unknown.csv{QUERY}").status_code == 404
    assert mayor.get("/app/reports?start=gestern").status_code == 422
    assert mayor.get("/app/reports?start=2020-01-01&end=2026-01-01").status_code == 422


def test_staff_without_reports_permission_get_403(session: Session) -> None:
    town = make_town(session)
    assert clerk(session, town, "staff").get("/app/reports").status_code == 403
    assert clerk(session, town, "admin").get("/app/reports").status_code == 200
