"""Publishing a held session's recording: an announcement to the series' topic that a leader approves, then sends.

Every test runs on both backends (SQLite, and PostgreSQL when the machine has it); what reached
the citizens is read back from the sandbox emulators through the real SDKs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, func, select

from hub.broadcasts import service as broadcasts
from hub.broadcasts.models import Broadcast
from hub.consultations import service
from hub.consultations.models import ConsultationSeries, ConsultationSession
from hub.consultations.recording import publish_recording
from hub.consultations.recurrence import zone
from hub.db import utcnow
from hub.errors import Conflict, DomainError, InvalidInput
from hub.settings import Settings
from tests.unit import test_broadcasts as sending
from tests.unit.db import Town as PlainTown
from tests.unit.test_broadcasts import Town, citizen, topic
from tests.unit.web import api_client, clerk

# The broadcast tests' town: an SMS and a Telegram account on the sandbox, the demo topics.
sandbox, town = sending.sandbox, sending.town
LINK = "https://video.musterdorf.example/aufzeichnung/42"


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_settings


def daily_hours(session: Session, town: Town, *, topic_key: str | None = "veranstaltungen") -> ConsultationSeries:
    """Office hours every day at 00:30 since three days ago, so that some sessions are held and some to come."""
    three_days_ago = utcnow() - timedelta(days=3)
    series = service.define_series(session, municipality=town.municipality, draft=service.SeriesDraft(
        title="Bürgermeistersprechstunde", rrule="FREQ=DAILY", first_day=three_days_ago.date(), start_time="00:30",
        end_time="01:30", host_user_id=town.mayor.id, closes_hours_before=0,
        topic_id=topic(session, town, topic_key) if topic_key else None,
    ))  # fmt: skip
    session.commit()
    service.ensure_sessions(session, series=series, municipality=town.municipality, now=three_days_ago)
    service.ensure_sessions(session, series=series, municipality=town.municipality)
    session.commit()
    return series


def held_and_coming(session: Session, series: ConsultationSeries) -> tuple[ConsultationSession, ConsultationSession]:
    """The series' first (held) session and its first one still to come."""
    ordered = session.exec(
        select(ConsultationSession)
        .where(ConsultationSession.series_id == series.id)
        .order_by(col(ConsultationSession.starts_at))
    ).all()
    coming = next(held for held in ordered if held.starts_at > utcnow())
    return ordered[0], coming


def plain(town: Town) -> PlainTown:
    return PlainTown(municipality=town.municipality, accounts={})


def broadcast_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Broadcast)).one()


def test_the_announcement_waits_for_approval_then_reaches_the_topics_subscribers_only(
    session: Session, settings: Settings, town: Town
) -> None:
    german, english, other = "+4915170001111", "+4915170002222", "+4915170003333"
    citizen(session, town, german, topics=["veranstaltungen"])
    citizen(session, town, english, topics=["veranstaltungen"], language="en")
    citizen(session, town, other, topics=["abfall"])
    series = daily_hours(session, town)
    held, _coming = held_and_coming(session, series)
    assert held.id is not None

    announced = publish_recording(session, actor=town.staff, municipality=town.municipality, session_id=held.id,
                                  url=f"  {LINK} ")  # fmt: skip
    session.commit()
    broadcast = session.get(Broadcast, announced.id)
    assert broadcast is not None
    assert (broadcast.kind, broadcast.status) == ("announcement", "pending_approval")
    assert broadcast.topic_ids == [topic(session, town, "veranstaltungen")]
    day = held.starts_at.astimezone(zone(town.municipality.timezone)).strftime("%d.%m.%Y")
    german_text = f"Die Aufzeichnung der Bürgermeistersprechstunde vom {day} ist online: {LINK}"
    assert broadcast.texts["de"]["body"] == german_text
    assert LINK in broadcast.texts["en"]["body"] and "recording" in broadcast.texts["en"]["body"]
    session.refresh(held)
    assert (held.recording_url, held.recording_broadcast_id) == (LINK, broadcast.id)
    assert town.sandbox.outbox(kind="twilio") == []  # nothing leaves before a leader approves

    assert broadcast.id is not None
    broadcasts.approve(session, actor=town.mayor, broadcast_id=broadcast.id)
    broadcast.send_at = utcnow() - timedelta(seconds=1)  # past any quiet hours the clock is in
    session.commit()
    assert sending.start(session, broadcast) == 2
    sending.send_all(settings, broadcast.id)

    received = {item["to"]: item["text"] for item in town.sandbox.outbox(kind="twilio")}
    assert set(received) == {german, english}
    assert f"ist online: {LINK}" in received[german]
    assert "The recording of Bürgermeistersprechstunde" in received[english] and LINK in received[english]


def test_refusals_say_why_and_store_nothing(session: Session, town: Town) -> None:
    series = daily_hours(session, town)
    held, coming = held_and_coming(session, series)
    untopical = daily_hours(session, town, topic_key=None)
    untopical_held, _ = held_and_coming(session, untopical)
    assert held.id is not None and coming.id is not None and untopical_held.id is not None

    def refused(session_id: int, url: str) -> DomainError:
        with pytest.raises(DomainError) as caught:
            publish_recording(session, actor=town.staff, municipality=town.municipality, session_id=session_id,
                              url=url)  # fmt: skip
        session.rollback()
        return caught.value

    for bad in ("video.example/aufzeichnung", "ftp://video.example/a", "javascript:alert(1)", "https://", ""):
        problem = refused(held.id, bad)
        assert isinstance(problem, InvalidInput) and "http:// oder https://" in problem.text("de"), bad
    too_early = refused(coming.id, LINK)
    assert isinstance(too_early, InvalidInput) and "erst veröffentlichen, wenn der Termin begonnen hat" in (
        too_early.text("de")
    )
    no_topic = refused(untopical_held.id, LINK)
    assert isinstance(no_topic, InvalidInput) and "hat kein Thema" in no_topic.text("de")
    assert "have no topic" in no_topic.text("en")
    for held_session in (held, coming, untopical_held):
        session.refresh(held_session)
        assert held_session.recording_url is None
    assert broadcast_count(session) == 0

    publish_recording(session, actor=town.staff, municipality=town.municipality, session_id=held.id, url=LINK)
    session.commit()
    twice = refused(held.id, "https://video.musterdorf.example/andere")
    assert isinstance(twice, Conflict) and twice.status_code == 409 and "schon angekündigt" in twice.text("de")
    session.refresh(held)
    assert held.recording_url == LINK
    assert broadcast_count(session) == 1


def test_a_clerk_publishes_on_the_series_page_and_lands_on_the_announcement(session: Session, town: Town) -> None:
    series = daily_hours(session, town)
    held, coming = held_and_coming(session, series)
    person = clerk(session, plain(town), "staff")
    page = person.get(f"/app/consultations/{series.id}")
    assert page.status_code == 200 and "Aufzeichnung veröffentlichen" in page.text
    assert f"/sessions/{held.id}/recording" in page.text and f"/sessions/{coming.id}/recording" not in page.text

    wrong = person.post(f"/app/consultations/{series.id}/sessions/{held.id}/recording?lang=en", {"url": "www.x.de"})
    assert wrong.status_code == 422 and "begins with http:// or https://" in wrong.text
    published = person.post(f"/app/consultations/{series.id}/sessions/{held.id}/recording?lang=de", {"url": LINK},
                            follow_redirects=False)  # fmt: skip
    assert published.status_code == 303
    [broadcast] = session.exec(select(Broadcast)).all()
    assert published.headers["location"] == f"/app/broadcasts/{broadcast.id}?saved=1"
    landed = person.get(published.headers["location"])
    assert landed.status_code == 200 and "zur Freigabe eingereicht" in landed.text and LINK in landed.text
    shown = person.get(f"/app/consultations/{series.id}")
    assert f'href="{LINK}"' in shown.text and f"/sessions/{held.id}/recording" not in shown.text
    again = person.post(f"/app/consultations/{series.id}/sessions/{held.id}/recording", {"url": LINK})
    assert again.status_code == 409 and "schon angekündigt" in again.text
    assert broadcast_count(session) == 1


def test_a_viewer_cannot_publish(session: Session, town: Town) -> None:
    series = daily_hours(session, town)
    held, _coming = held_and_coming(session, series)
    person = clerk(session, plain(town), "viewer")
    assert "Aufzeichnung veröffentlichen" not in person.get(f"/app/consultations/{series.id}").text
    refused = person.post(f"/app/consultations/{series.id}/sessions/{held.id}/recording", {"url": LINK},
                          follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403
    session.refresh(held)
    assert held.recording_url is None and broadcast_count(session) == 0


def test_the_api_publishes_once_and_refuses_in_german(session: Session, town: Town) -> None:
    series = daily_hours(session, town)
    held, coming = held_and_coming(session, series)
    api = api_client(session, plain(town))

    early = api.post(f"/api/v1/consultations/sessions/{coming.id}/recording", json={"url": LINK})
    assert early.status_code == 422 and "begonnen" in early.text
    made = api.post(f"/api/v1/consultations/sessions/{held.id}/recording", json={"url": LINK})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["session_id"], body["recording_url"], body["broadcast_status"]) == (held.id, LINK, "pending_approval")
    twice = api.post(f"/api/v1/consultations/sessions/{held.id}/recording", json={"url": LINK})
    assert twice.status_code == 409 and "schon angekündigt" in twice.text
    assert session.exec(select(Broadcast.id)).all() == [body["broadcast_id"]]


def test_a_corrected_link_may_follow_an_announcement_that_was_cancelled(session: Session, town: Town) -> None:
    series = daily_hours(session, town)
    held, _coming = held_and_coming(session, series)
    assert held.id is not None
    first = publish_recording(session, actor=town.staff, municipality=town.municipality, session_id=held.id,
                              url="https://video.musterdorf.example/falsch")  # fmt: skip
    session.commit()
    assert first.id is not None
    # The mayor sees the wrong link and refuses the announcement instead of approving it.
    broadcasts.cancel(session, actor=town.mayor, broadcast_id=first.id)
    session.commit()
    person = clerk(session, plain(town), "staff")
    page = person.get(f"/app/consultations/{series.id}")
    assert "abgesagt; ein berichtigter Link lässt sich neu veröffentlichen" in page.text
    assert f"/sessions/{held.id}/recording" in page.text

    corrected = person.post(f"/app/consultations/{series.id}/sessions/{held.id}/recording", {"url": LINK},
                            follow_redirects=False)  # fmt: skip
    assert corrected.status_code == 303
    session.refresh(held)
    second = session.get(Broadcast, held.recording_broadcast_id)
    assert second is not None and second.id != first.id
    assert (held.recording_url, second.status) == (LINK, "pending_approval") and LINK in second.texts["de"]["body"]
    # The corrected announcement stands: a third link is refused as before.
    with pytest.raises(Conflict):
        publish_recording(session, actor=town.staff, municipality=town.municipality, session_id=held.id,
                          url="https://video.musterdorf.example/dritte")  # fmt: skip
    session.rollback()
    assert broadcast_count(session) == 2
