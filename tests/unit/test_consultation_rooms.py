"""Video rooms and department waiting rooms on both backends, against the sandbox's BigBlueButton and Jitsi emulators.

Citizens book a video consultation held by a department, check in on their join page, and are
called in, forwarded, marked done or no-show by clerks; what reached them on their channel is
read back from the sandbox's outbox.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db, ratelimit
from hub.app import create_app
from hub.cli import main
from hub.consultations import rooms, service, waiting, web_booking
from hub.consultations.models import (
    Booking,
    ConsultationSeries,
    ConsultationSlot,
    VideoPlatformAccount,
    VideoRoom,
    WaitingRoomEntry,
)
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.demo import seed_demo
from hub.errors import Conflict
from hub.inbox.models import Message
from hub.inbox.outbound import send_message
from hub.settings import get_settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality, Team
from hub.web.security import CSRF_COOKIE
from tests.unit import test_consultations
from tests.unit.db import Town as PlainTown
from tests.unit.web import clerk
from workers.tasks import stop_everywhere

any_backend = test_consultations.any_backend
BBB_SECRET = "8cd8ef52e8e101574e400365b55e11a6"
APP_ID = "rathaus_musterdorf"
APP_SECRET = "jitsi-app-secret-for-the-sandbox"


@dataclass
class Town:
    municipality: Municipality
    series: ConsultationSeries
    team: Team
    other_team: Team
    sandbox: SandboxClient
    sandbox_url: str
    clerk_ids: list[int]

    @property
    def id(self) -> int:
        assert self.municipality.id is not None
        return self.municipality.id


@pytest.fixture
def session(any_backend: None) -> Iterator[Session]:
    ratelimit._limiter.cache_clear()
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def town(session: Session) -> Iterator[Town]:
    with SandboxServer() as sandbox:
        municipality = tenancy.create_municipality(session, slug="musterdorf", name="Gemeinde Musterdorf")
        assert municipality.id is not None
        sms = tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="twilio", name="SMS",
            config={"account_sid": "AC" + "5" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
            secrets_={"auth_token": "t"},
        )  # fmt: skip
        team = tenancy.create_team(session, municipality_id=municipality.id, name="Bürgerbüro")
        other_team = tenancy.create_team(session, municipality_id=municipality.id, name="Ordnungsamt")
        clerks = [
            tenancy.create_user(session, municipality_id=municipality.id, email=f"clerk{n}@x.de", name=f"Clerk {n}")
            for n in range(4)
        ]
        series = service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
            title="Video-Sprechstunde Bürgerbüro", rrule="FREQ=DAILY", first_day=utcnow().date() + timedelta(days=1),
            start_time="09:00", end_time="11:00", slot_minutes=30, host_team_id=team.id, location="video",
            closes_hours_before=0,
        ))  # fmt: skip
        session.commit()
        client = SandboxClient(sandbox.url)
        client.register_account(kind=sms.kind, config=sms.config, secrets=sms.secrets, webhook_url=None)
        client.register_account(kind="bigbluebutton", config={}, secrets={"secret": BBB_SECRET}, webhook_url=None)
        client.register_account(kind="jitsi", config={"app_id": APP_ID}, secrets={"app_secret": APP_SECRET},
                                webhook_url=None)  # fmt: skip
        yield Town(municipality, series, team, other_team, client, sandbox.url, [user.id for user in clerks])  # type: ignore[misc]


def use_bigbluebutton(session: Session, town: Town, api_url: str | None = None) -> None:
    values = {"api_url": api_url or f"{town.sandbox_url}/bigbluebutton/", "secret": BBB_SECRET}
    rooms.configure_platform(session, municipality_id=town.id, actor_id=None, kind="bigbluebutton", values=values)
    session.commit()


def book(session: Session, town: Town, count: int, series: ConsultationSeries | None = None) -> list[Booking]:
    """`count` citizens, each with a phone, in the first free slots of the series (one each)."""
    series = series or town.series
    service.ensure_sessions(session, series=series, municipality=town.municipality)
    free = service.free_slots(session, series=series)
    bookings = []
    for number in range(count):
        contact = resolve_contact(session, municipality_id=town.id, kind="phone", address=f"+4915100000{number:03d}",
                                  display_name=f"Person {number}")  # fmt: skip
        assert contact.id is not None
        slot = free[0] if series.capacity > 1 else free[number]
        bookings.append(service.book(session, municipality=town.municipality, slot_id=slot.slot_id,
                                     contact_id=contact.id, name=f"Person {number}"))  # fmt: skip
    session.commit()
    return bookings


def check_in(session: Session, booking: Booking, minutes_after_start: int = 0) -> WaitingRoomEntry:
    """The citizen checks in at their slot's time (plus a few minutes, to order several)."""
    slot = session.get(ConsultationSlot, booking.slot_id)
    assert slot is not None
    entry = waiting.check_in(session, booking=booking, now=slot.starts_at + timedelta(minutes=minutes_after_start))
    session.commit()
    return entry


def join_path(town: Town, booking: Booking) -> str:
    return web_booking.booking_path(town.municipality, web_booking.link_token(booking, "phone")) + "/warteraum"


def send_queued(session: Session) -> None:
    """What the worker does with queued messages: send them through the delivery engine."""
    queued = session.exec(select(Message.id).where(Message.direction == "outbound", Message.status == "queued")).all()
    for message_id in queued:
        assert message_id is not None
        assert send_message(get_settings(), message_id, on_opted_out=stop_everywhere).outcome.startswith("sent")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def queue_of(town: Town) -> waiting.QueueKey:
    return waiting.QueueKey(town.team.id, None)


# Rooms


def test_a_room_is_made_on_bigbluebutton_with_different_links_for_citizen_and_host(
    session: Session, town: Town
) -> None:
    use_bigbluebutton(session, town)
    [booking] = book(session, town, 1)
    room = rooms.ensure_room(session, booking=booking)
    session.commit()
    assert room is not None and len(room.room_id) >= 32
    [meeting] = town.sandbox.meetings("bigbluebutton")
    assert meeting["meeting_id"] == room.room_id and meeting["name"] == "Video-Sprechstunde Bürgerbüro"
    assert rooms.ensure_room(session, booking=booking) == room  # made once

    citizen = rooms.citizen_link(session, booking=booking)
    host = rooms.host_link(session, booking=booking, staff_name="Petra Berger", staff_id=7)
    assert citizen and host and citizen != host
    assert parse_qs(urlsplit(citizen).query)["role"] == ["VIEWER"]
    assert parse_qs(urlsplit(host).query)["role"] == ["MODERATOR"]
    assert parse_qs(urlsplit(citizen).query)["fullName"] == ["Person 0"]


def test_an_open_session_shares_one_room(session: Session, town: Town) -> None:
    use_bigbluebutton(session, town)
    open_series = service.define_series(session, municipality=town.municipality, draft=service.SeriesDraft(
        title="Offene Video-Sprechstunde", rrule="FREQ=DAILY", first_day=utcnow().date() + timedelta(days=1),
        start_time="15:00", end_time="17:00", slot_minutes=120, capacity=5, host_team_id=town.team.id,
        location="video", closes_hours_before=0,
    ))  # fmt: skip
    session.commit()
    first, second = book(session, town, 2, series=open_series)
    assert rooms.ensure_room(session, booking=first) == rooms.ensure_room(session, booking=second)
    session.commit()
    assert len(town.sandbox.meetings("bigbluebutton")) == 1


def test_a_jitsi_link_carries_a_token_for_the_citizen_only(session: Session, town: Town) -> None:
    rooms.configure_platform(session, municipality_id=town.id, actor_id=None, kind="jitsi", values={
        "base_url": f"{town.sandbox_url}/jitsi", "app_id": APP_ID, "app_secret": APP_SECRET,
    })  # fmt: skip
    [booking] = book(session, town, 1)
    citizen = rooms.citizen_link(session, booking=booking)
    host = rooms.host_link(session, booking=booking, staff_name="Petra Berger", staff_id=7)
    session.commit()
    room = session.exec(select(VideoRoom)).one()
    assert citizen and host
    claims = jwt.decode(parse_qs(urlsplit(citizen).query)["jwt"][0], APP_SECRET, algorithms=["HS256"],
                        audience="jitsi")  # fmt: skip
    assert claims["room"] == room.room_id and claims["moderator"] is False
    assert claims["context"]["user"] == {"id": f"buchung-{booking.id}", "name": "Person 0", "moderator": "false",
                                         "affiliation": "member"}  # fmt: skip
    assert urlsplit(citizen).path.endswith(room.room_id)
    host_claims = jwt.decode(parse_qs(urlsplit(host).query)["jwt"][0], APP_SECRET, algorithms=["HS256"],
                             audience="jitsi")  # fmt: skip
    assert host_claims["moderator"] is True
    guess = "a-guessed-secret-of-thirty-two-bytes"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(parse_qs(urlsplit(citizen).query)["jwt"][0], guess, algorithms=["HS256"], audience="jitsi")


def test_the_video_server_down_still_books_and_the_room_is_made_later(session: Session, town: Town) -> None:
    use_bigbluebutton(session, town, api_url=f"http://127.0.0.1:{closed_port()}/bigbluebutton/")
    [booking] = book(session, town, 1)
    assert session.get(Booking, booking.id).status == "booked"  # type: ignore[union-attr]
    assert rooms.ensure_room(session, booking=booking) is None and rooms.citizen_link(session, booking=booking) is None
    session.commit()
    assert session.exec(select(VideoRoom)).first() is None

    use_bigbluebutton(session, town)  # the server is back
    slot = session.get(ConsultationSlot, booking.slot_id)
    assert slot is not None
    assert rooms.prepare_rooms(session, now=slot.starts_at - timedelta(hours=1)) == 1
    room = session.exec(select(VideoRoom)).one()
    assert [meeting["meeting_id"] for meeting in town.sandbox.meetings("bigbluebutton")] == [room.room_id]


def test_a_town_without_a_platform_still_runs_its_waiting_room(session: Session, town: Town) -> None:
    [booking] = book(session, town, 1)
    check_in(session, booking)
    called = waiting.call_next(session, settings=get_settings(), municipality_id=town.id, queue=queue_of(town),
                               staff_id=town.clerk_ids[0])  # fmt: skip
    session.commit()
    assert called is not None and rooms.citizen_link(session, booking=booking) is None
    send_queued(session)
    [sms] = town.sandbox.outbox(kind="twilio", to="+4915100000000")
    assert "Jetzt eintreten" in str(sms["text"]) and "/warteraum" in str(sms["text"])


# Waiting rooms


def test_checking_in_gives_a_place_and_an_estimate(session: Session, town: Town) -> None:
    bookings = book(session, town, 3)
    entries = [check_in(session, booking, minutes_after_start=-10 + n) for n, booking in enumerate(bookings)]
    assert [waiting.place_of(session, entry).number for entry in entries] == [1, 2, 3]
    # Nobody has been seen yet: each takes the slot's 30 minutes.
    assert [waiting.place_of(session, entry).minutes for entry in entries] == [0, 30, 60]
    assert check_in(session, bookings[2]).id == entries[2].id  # checking in again keeps the place

    citizen = TestClient(create_app())
    state = citizen.get(join_path(town, bookings[2]) + "/stand").json()
    assert (state["status"], state["place"], state["minutes"]) == ("waiting", 3, 60)
    page = citizen.get(join_path(town, bookings[2])).text
    assert "Sie sind an Platz 3." in page and "etwa 60 Minuten" in page and "Bürgerbüro" in page
    english = citizen.get(join_path(town, bookings[2]) + "?lang=en").text
    assert "You are number 3 in the queue." in english


def test_checking_in_too_early_is_refused_with_a_reason(session: Session, town: Town) -> None:
    [booking] = book(session, town, 1)
    citizen = TestClient(create_app())
    path = join_path(town, booking)
    citizen.get(path)
    answer = citizen.post(path, data={"csrf_token": citizen.cookies[CSRF_COOKIE]})
    assert answer.status_code == 422 and "öffnet 15 Minuten vor Ihrem Termin" in answer.text
    assert session.exec(select(WaitingRoomEntry)).first() is None


def test_two_clerks_calling_next_at_once_get_two_different_citizens(session: Session, town: Town) -> None:
    bookings = book(session, town, 4)
    for n, booking in enumerate(bookings):
        check_in(session, booking, minutes_after_start=n)
    clerks = 4
    barrier = threading.Barrier(clerks)

    def call(staff_id: int) -> int | None:
        with Session(db.get_engine(), expire_on_commit=False) as own:
            barrier.wait()
            called = waiting.call_next(own, settings=get_settings(), municipality_id=town.id, queue=queue_of(town),
                                       staff_id=staff_id)  # fmt: skip
            own.commit()
            return called.booking.id if called else None

    with ThreadPoolExecutor(max_workers=clerks) as pool:
        called = list(pool.map(call, town.clerk_ids))
    assert None not in called and sorted(called) == sorted(booking.id for booking in bookings)  # type: ignore[type-var]
    assert waiting.call_next(session, settings=get_settings(), municipality_id=town.id, queue=queue_of(town),
                             staff_id=town.clerk_ids[0]) is None  # fmt: skip


def test_a_booking_cancelled_while_waiting_is_passed_over(session: Session, town: Town) -> None:
    gone, stays = book(session, town, 2)
    check_in(session, gone)
    later = check_in(session, stays, minutes_after_start=1)
    service.cancel(session, municipality_id=town.id, booking_id=gone.id)  # type: ignore[arg-type]
    session.commit()
    assert waiting.place_of(session, later).number == 1
    called = waiting.call_next(session, settings=get_settings(), municipality_id=town.id, queue=queue_of(town),
                               staff_id=town.clerk_ids[0])  # fmt: skip
    assert called is not None and called.booking.id == stays.id


def test_forwarding_keeps_the_place_age_and_the_note(session: Session, town: Town) -> None:
    first, second = book(session, town, 2)
    forwarded = check_in(session, first, minutes_after_start=-5)
    waiting.call_next(
        session, settings=get_settings(), municipality_id=town.id, queue=queue_of(town), staff_id=town.clerk_ids[0]
    )
    session.commit()
    # Someone checks in at the other department after the forwarded citizen did at theirs.
    other_series = service.define_series(session, municipality=town.municipality, draft=service.SeriesDraft(
        title="Ordnungsamt per Video", rrule="FREQ=DAILY", first_day=utcnow().date() + timedelta(days=1),
        start_time="09:00", end_time="11:00", slot_minutes=30, host_team_id=town.other_team.id, location="video",
        closes_hours_before=0,
    ))  # fmt: skip
    session.commit()
    [there] = book(session, town, 1, series=other_series)
    already_there = check_in(session, there)

    waiting.forward(session, municipality_id=town.id, booking_id=first.id, team_id=town.other_team.id,  # type: ignore[arg-type]
                    note="Fragt nach dem Anwohnerparkausweis", staff_name="Petra")  # fmt: skip
    session.commit()
    session.refresh(forwarded)
    assert (forwarded.team_id, forwarded.status, forwarded.forwarded_from_team_id) == (
        town.other_team.id, "waiting", town.team.id)  # fmt: skip
    assert forwarded.queued_at == forwarded.checked_in_at
    assert forwarded.note == "Petra: Fragt nach dem Anwohnerparkausweis"
    assert waiting.place_of(session, forwarded).number == 1  # ahead of the one who came later
    assert waiting.place_of(session, already_there).number == 2

    page = TestClient(create_app()).get(join_path(town, first)).text
    assert "Sie wurden weitergeleitet. Sie warten jetzt im Warteraum: Ordnungsamt." in page
    staff_view = {view.name: view for view in waiting.queues(session, municipality_id=town.id)}
    [row, _] = staff_view["Ordnungsamt"].waiting
    assert row.booking.id == first.id and row.forwarded_from == "Bürgerbüro"
    assert second.id not in [r.booking.id for r in staff_view["Ordnungsamt"].waiting]


def test_done_and_no_show_close_the_entry_and_the_booking(session: Session, town: Town) -> None:
    seen, absent, next_one, later = book(session, town, 4)
    entry = check_in(session, seen)
    check_in(session, absent, minutes_after_start=1)
    check_in(session, next_one, minutes_after_start=2)
    last = check_in(session, later, minutes_after_start=2)
    start = entry.checked_in_at
    called = waiting.call_next(session, settings=get_settings(), municipality_id=town.id, queue=queue_of(town),
                               staff_id=town.clerk_ids[0], now=start + timedelta(minutes=3))  # fmt: skip
    assert called is not None and called.booking.id == seen.id
    waiting.finish(session, municipality_id=town.id, booking_id=seen.id, outcome="done",  # type: ignore[arg-type]
                   now=start + timedelta(minutes=15))  # fmt: skip
    waiting.finish(session, municipality_id=town.id, booking_id=absent.id, outcome="no_show")  # type: ignore[arg-type]
    session.commit()
    assert session.get(Booking, seen.id).status == "attended"  # type: ignore[union-attr]
    assert session.get(Booking, absent.id).status == "no_show"  # type: ignore[union-attr]
    session.refresh(entry)
    assert (entry.checked_in_at, entry.called_at, entry.done_at) == (
        start, start + timedelta(minutes=3), start + timedelta(minutes=15))  # fmt: skip
    # The estimate now goes by how long the room's consultations took (12 minutes), not the slot's 30.
    assert waiting.place_of(session, last) == waiting.Place(ahead=1, minutes=12)
    with pytest.raises(Conflict):
        waiting.finish(session, municipality_id=town.id, booking_id=seen.id, outcome="done")  # type: ignore[arg-type]
    citizen = TestClient(create_app())
    assert "Ihr Gespräch ist beendet" in citizen.get(join_path(town, seen)).text
    assert "als nicht erschienen vermerkt" in citizen.get(join_path(town, absent)).text


def test_a_called_citizen_sees_jetzt_eintreten_and_gets_the_link_never_the_host_link(
    session: Session, town: Town
) -> None:
    use_bigbluebutton(session, town)
    [booking] = book(session, town, 1)
    check_in(session, booking)
    citizen = TestClient(create_app())
    assert "Sie sind an Platz 1." in citizen.get(join_path(town, booking)).text

    staff = clerk(session, town)  # type: ignore[arg-type]
    queues = staff.get("/app/waiting-rooms")
    assert queues.status_code == 200 and "Person 0" in queues.text and "Bürgerbüro" in queues.text
    called = staff.post("/app/waiting-rooms/call", {"queue": f"team-{town.team.id}"}, follow_redirects=False)
    assert called.status_code == 303
    assert citizen.get(join_path(town, booking) + "/stand").json()["status"] == "called"

    page = citizen.get(join_path(town, booking)).text
    assert "Jetzt eintreten" in page
    [join] = re.findall(r'href="([^"]*/bigbluebutton/api/join\?[^"]*)"', page)
    assert "role=VIEWER" in join and "MODERATOR" not in page

    send_queued(session)
    [sms] = town.sandbox.outbox(kind="twilio", to="+4915100000000")
    text = str(sms["text"])
    assert "Jetzt eintreten" in text and "/bigbluebutton/api/join?" in text
    assert "role=VIEWER" in text and "MODERATOR" not in text

    assert "Als Gastgeber eintreten" in staff.get("/app/waiting-rooms").text
    host = staff.get(f"/app/waiting-rooms/bookings/{booking.id}/host", follow_redirects=False)
    assert host.status_code == 303 and "role=MODERATOR" in host.headers["location"]
    done = staff.post(f"/app/waiting-rooms/bookings/{booking.id}/finish", {"outcome": "done"}, follow_redirects=False)
    assert done.status_code == 303
    assert session.get(Booking, booking.id, populate_existing=True).status == "attended"  # type: ignore[union-attr]


def test_staff_forward_through_the_page_and_a_reader_cannot_act(session: Session, town: Town) -> None:
    [booking] = book(session, town, 1)
    check_in(session, booking)
    staff = clerk(session, town)  # type: ignore[arg-type]
    path = f"/app/waiting-rooms/bookings/{booking.id}/forward"
    moved = staff.post(path, {"team_id": town.other_team.id, "note": "Bitte Ausweis prüfen"}, follow_redirects=False)
    assert moved.status_code == 303
    page = staff.get(moved.headers["location"]).text
    assert "Weitergeleitet." in page and "Bitte Ausweis prüfen" in page
    again = staff.post(f"/app/waiting-rooms/bookings/{booking.id}/forward", {"team_id": town.other_team.id})
    assert again.status_code == 422 and "wartet schon in diesem Warteraum" in again.text
    reader = clerk(session, town, "viewer")  # type: ignore[arg-type]
    assert reader.get("/app/waiting-rooms").status_code == 200
    assert reader.post("/app/waiting-rooms/call", {"queue": f"team-{town.team.id}"}).status_code == 403


# The town's platform


def test_the_administration_sets_the_platform_and_never_shows_the_secret(session: Session, town: Town) -> None:
    admin = clerk(session, town, "admin")  # type: ignore[arg-type]
    form = admin.get("/app/video-platform?kind=bigbluebutton")
    assert form.status_code == 200 and "Gemeinsames Geheimnis" in form.text
    missing = admin.post("/app/video-platform", {"kind": "bigbluebutton", "api_url": f"{town.sandbox_url}/bbb/"})
    assert missing.status_code == 422
    saved = admin.post("/app/video-platform", {"kind": "bigbluebutton", "api_url": f"{town.sandbox_url}/bigbluebutton/",
                                               "secret": BBB_SECRET}, follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    page = admin.get(saved.headers["location"]).text
    assert "Die Videoplattform ist gespeichert." in page and BBB_SECRET not in page and "********" in page
    # Saving again without the secret keeps it.
    admin.post("/app/video-platform", {"kind": "bigbluebutton", "api_url": f"{town.sandbox_url}/bigbluebutton/"})
    stored = session.exec(select(VideoPlatformAccount)).one()
    session.refresh(stored)
    assert stored.secrets == {"secret": BBB_SECRET} and "secret" not in stored.config
    assert clerk(session, town, "staff").get("/app/video-platform").status_code == 403  # type: ignore[arg-type]


def test_the_command_line_sets_and_shows_the_platform(session: Session, town: Town) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["consultations", "video", "set", "--kind", "jitsi", "--config",
                                f"base_url={town.sandbox_url}/jitsi", "--config", f"app_id={APP_ID}",
                                "--secret", f"app_secret={APP_SECRET}"])  # fmt: skip
    assert done.exit_code == 0, done.output
    shown = runner.invoke(main, ["consultations", "video", "show"])
    assert shown.exit_code == 0 and "jitsi" in shown.output and APP_SECRET not in shown.output
    wrong = runner.invoke(main, ["consultations", "video", "set", "--kind", "jitsi", "--config", "colour=red"])
    assert wrong.exit_code != 0 and "colour" in wrong.output


def test_the_demo_has_a_video_platform_and_a_citizen_waiting(session: Session) -> None:
    seed_demo(session, get_settings())
    demo = session.exec(select(Municipality).where(Municipality.slug == "musterstadt")).one()
    assert demo.id is not None
    assert rooms.platform_of(session, municipality_id=demo.id) is not None
    views = {view.name: view for view in waiting.queues(session, municipality_id=demo.id)}
    [row] = views["Bürgerbüro"].waiting
    assert row.booking.name == "Jana Schulz" and row.series.location == "video"
    person = clerk(session, PlainTown(municipality=demo, accounts={}), "staff")
    assert "Jana Schulz" in person.get("/app/waiting-rooms").text
