"""The Mängelmelder on SQLite and PostgreSQL: reports by Telegram, Messenger, SMS and mail through the real
adapters and the inbound pipeline, the sandbox's geocoder, district shapes, checked photos, duplicates and merging.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from io import BytesIO
from typing import Any
from urllib.parse import urlencode

import pytest
import telegram
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, col, select

from channels.base import FileTooLarge, PermanentError, WebhookRequest
from channels.registry import build_adapter
from channels.sandbox import graph_api
from channels.sandbox.server import SandboxServer
from hub import db
from hub.app import create_app
from hub.db import utcnow
from hub.demo import seed_demo
from hub.errors import InvalidInput, TooLarge
from hub.inbox import overview, sla
from hub.inbox.models import Attachment, Conversation, Message
from hub.problems import service
from hub.problems.models import ProblemPhoto, ProblemReport
from hub.problems.places import district_at, geocode, set_district_shape
from hub.settings import Settings
from hub.subscribers.models import District
from hub.tenancy.models import ChannelAccount, Municipality, Team
from hub.webcases.photos import check_photo
from tests.unit.db import Town, make_problem_town, receive
from tests.unit.web import api_client, staff_user

CHAT = 5012345678
PSID = "7012345678901234"
PHONE = "+4915112345678"
# Points in the demo town's districts (hub/problems/demo.py) and one beyond its border.
MITTE = (51.0150, 10.0150)
NORD = (51.0250, 10.0100)
OUTSIDE = (51.1000, 10.1000)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@dataclass
class Place:
    session: Session
    settings: Settings
    town: Town

    def account(self, kind: str) -> ChannelAccount:
        return self.town.accounts[kind]

    def reports(self) -> list[ProblemReport]:
        self.session.expire_all()
        return list(self.session.exec(select(ProblemReport).order_by(col(ProblemReport.id))))

    def answers(self) -> list[str]:
        """What the hub wrote back, oldest first."""
        self.session.expire_all()
        rows = self.session.exec(select(Message).where(Message.direction == "outbound").order_by(col(Message.id)))
        return [message.body for message in rows]

    def conversation(self, report: ProblemReport) -> Conversation:
        found = self.session.get(Conversation, report.conversation_id)
        assert found is not None
        return found

    def arrives(self, kind: str, body: bytes, headers: dict[str, str] | None = None) -> list[str]:
        """A wire payload as the webhook hands it on: parsed by the real adapter, stored, run through the pipeline."""
        account = self.account(kind)
        request = WebhookRequest(url=f"http://hub/webhooks/{kind}/{account.id}", headers=headers or {}, body=body)
        events = build_adapter(kind, account.config, account.secrets).parse(request)
        return [result.outcome for result in receive(self.session, self.settings, account, *events, request=request)]


@pytest.fixture
def place(backend_settings: Settings, sandbox: SandboxServer) -> Iterator[Place]:
    settings = backend_settings.model_copy(update={"geocoder_url": f"{sandbox.url}/nominatim"})
    with Session(db.get_engine(), expire_on_commit=False) as session:
        town = make_problem_town(session)
        yield Place(session, settings, town)


# --- telegram, built with the SDK's own classes -------------------------------------------------

_update_ids = iter(range(1000, 100000))


def telegram_update(message_id: int, **fields: Any) -> bytes:
    bot_user = telegram.User(id=CHAT, first_name="Erika", is_bot=False, language_code="de")
    chat = telegram.Chat(id=CHAT, type="private")
    message = telegram.Message(
        message_id=message_id, date=datetime(2026, 12, 7, 9, 0, tzinfo=UTC), chat=chat, from_user=bot_user, **fields
    )
    return json.dumps(telegram.Update(update_id=next(_update_ids), message=message).to_dict()).encode()


def telegram_press(payload: str) -> bytes:
    user = telegram.User(id=CHAT, first_name="Erika", is_bot=False)
    query = telegram.CallbackQuery(id=f"q{next(_update_ids)}", from_user=user, chat_instance="ci", data=payload)
    return json.dumps(telegram.Update(update_id=next(_update_ids), callback_query=query).to_dict()).encode()


def test_a_telegram_location_asks_for_the_category_by_buttons_and_a_press_files_it_to_the_team(place: Place) -> None:
    place.arrives("telegram", telegram_update(1, location=telegram.Location(longitude=MITTE[1], latitude=MITTE[0])))

    [report] = place.reports()
    assert (report.lat, report.lon) == MITTE
    mitte = place.session.exec(select(District).where(District.key == "mitte")).one()
    assert report.district_id == mitte.id
    assert report.address == "12, Hauptstraße, Mitte, Musterstadt, 99999, Deutschland"
    assert report.category_id is None
    ack, question = place.answers()
    assert place.conversation(report).reference in ack
    assert question.startswith("Danke für Ihre Meldung! Worum geht es?")
    asked = place.session.exec(select(Message).where(Message.body == question)).one()
    assert {"label": "Straßenbeleuchtung", "payload": "problem:laterne"} in asked.choices

    place.arrives("telegram", telegram_press("problem:laterne"))

    [report] = place.reports()
    conversation = place.conversation(report)
    assert report.category_id is not None
    assert conversation.team_id == place.session.exec(select(Team).where(Team.name == "Bauhof")).one().id
    assert place.answers()[-1].startswith(f"Danke! Ihre Meldung {conversation.reference} (Straßenbeleuchtung")


def on_sandbox(place: Place, sandbox: SandboxServer, kind: str) -> None:
    """Points the town's Telegram bot or Page at the sandbox, where the citizen's files are."""
    account = place.account(kind)
    address = {"telegram": {"api_base_url": f"{sandbox.url}/bot"}, "facebook": {"graph_url": sandbox.url}}[kind]
    account.config = {**account.config, **address}
    place.session.add(account)
    place.session.commit()
    sandbox.state.register_account(kind, None, {**account.config, "verify_token": "v"}, dict(account.secrets))


def test_a_telegram_photo_is_fetched_and_becomes_the_reports_picture_without_exif(
    place: Place, sandbox: SandboxServer
) -> None:
    on_sandbox(place, sandbox, "telegram")
    place.arrives("telegram", telegram_update(1, text="LATERNE", location=None))
    stored = sandbox.state.add_file(jpeg_with_gps(*NORD), "image/jpeg", folder="photos", suffix=".jpg")
    photo = telegram.PhotoSize(file_id=stored.file_id, file_unique_id=stored.unique_id, width=1600, height=1200)
    place.arrives("telegram", telegram_update(2, photo=(photo,), caption="So sieht es aus"))

    [report] = place.reports()
    [picture] = place.session.exec(select(ProblemPhoto).where(ProblemPhoto.report_id == report.id)).all()
    attachment = place.session.get(Attachment, picture.attachment_id)
    assert attachment is not None and attachment.data is not None
    assert attachment.url == f"tg-file:{stored.file_id}"
    # A photo sent as it was taken keeps its EXIF on the way: its place fills the one missing, then EXIF goes.
    assert (report.lat, report.lon) == (pytest.approx(NORD[0], abs=1e-5), pytest.approx(NORD[1], abs=1e-5))
    assert dict(Image.open(BytesIO(attachment.data)).getexif()) == {}
    assert max(Image.open(BytesIO(picture.display)).size) == place.settings.photo_display_pixels


def test_a_telegram_photo_the_bot_cannot_fetch_is_answered_and_stays_a_reference(
    place: Place, sandbox: SandboxServer
) -> None:
    on_sandbox(place, sandbox, "telegram")
    place.arrives("telegram", telegram_update(1, text="LATERNE", location=None))
    photo = telegram.PhotoSize(file_id="AgAD-unknown", file_unique_id="u1", width=800, height=600)
    place.arrives("telegram", telegram_update(2, photo=(photo,)))

    assert place.session.exec(select(ProblemPhoto)).all() == []
    [attachment] = place.session.exec(select(Attachment)).all()
    assert (attachment.url, attachment.data) == ("tg-file:AgAD-unknown", None)
    assert any("Das Foto ist nicht mitgekommen" in answer for answer in place.answers())


def test_a_chat_photo_outside_any_report_is_not_fetched(place: Place, sandbox: SandboxServer) -> None:
    on_sandbox(place, sandbox, "telegram")
    stored = sandbox.state.add_file(jpeg_with_gps(*NORD), "image/jpeg", folder="photos", suffix=".jpg")
    photo = telegram.PhotoSize(file_id=stored.file_id, file_unique_id=stored.unique_id, width=1600, height=1200)
    place.arrives("telegram", telegram_update(1, photo=(photo,), caption="Guten Tag, eine Frage zum Foto"))

    assert place.reports() == []
    [attachment] = place.session.exec(select(Attachment)).all()
    assert attachment.data is None


# --- messenger ---------------------------------------------------------------------------------


def messenger(message: dict[str, Any]) -> bytes:
    page = "104857600000001"
    item = {"sender": {"id": PSID}, "recipient": {"id": page}, "timestamp": 1765098000000, "message": message}
    return json.dumps({"object": "page", "entry": [{"id": page, "time": 1765098000000, "messaging": [item]}]}).encode()


def test_a_messenger_location_with_a_category_word_is_a_complete_report(place: Place) -> None:
    location = {"type": "location", "payload": {"coordinates": {"lat": NORD[0], "long": NORD[1]}}}
    place.arrives("facebook", messenger({"mid": "m_1", "text": "Schlagloch", "attachments": [location]}))

    [report] = place.reports()
    nord = place.session.exec(select(District).where(District.key == "nord")).one()
    assert (report.lat, report.lon, report.district_id) == (*NORD, nord.id)
    assert report.category_id is not None
    [ack] = place.answers()
    assert place.conversation(report).reference in ack


def test_a_messenger_photo_is_fetched_from_the_cdn_link_and_becomes_the_reports_picture(
    place: Place, sandbox: SandboxServer
) -> None:
    on_sandbox(place, sandbox, "facebook")
    url = graph_api.cdn_url(sandbox.state, sandbox.url, jpeg_with_gps(*MITTE, size=(900, 600)))
    image = {"type": "image", "payload": {"url": url}}
    place.arrives("facebook", messenger({"mid": "m_3", "text": "Muell hier", "attachments": [image]}))

    [report] = place.reports()
    [picture] = place.session.exec(select(ProblemPhoto)).all()
    attachment = place.session.get(Attachment, picture.attachment_id)
    assert attachment is not None and attachment.data is not None
    assert (picture.width, picture.height) == (900, 600)
    assert dict(Image.open(BytesIO(attachment.data)).getexif()) == {}
    assert report.lat == pytest.approx(MITTE[0], abs=1e-5)


def test_a_messenger_link_off_the_cdn_or_expired_is_not_fetched(place: Place, sandbox: SandboxServer) -> None:
    on_sandbox(place, sandbox, "facebook")
    adapter = build_adapter("facebook", place.account("facebook").config, place.account("facebook").secrets)
    url = graph_api.cdn_url(sandbox.state, sandbox.url, jpeg_with_gps(*MITTE))
    with pytest.raises(PermanentError, match="Keine Messenger-Datei"):
        adapter.fetch_file("http://169.254.169.254/latest/meta-data", max_bytes=10_000_000)
    with pytest.raises(PermanentError, match="HTTP 403"):
        adapter.fetch_file(url.replace("oh=03_", "oh=03_0"), max_bytes=10_000_000)
    with pytest.raises(FileTooLarge):
        adapter.fetch_file(url, max_bytes=100)
    assert adapter.fetch_file(url, max_bytes=10_000_000)[:2] == b"\xff\xd8"


def test_a_place_outside_the_town_gets_the_friendly_answer_naming_who_is_responsible(place: Place) -> None:
    location = {"type": "location", "payload": {"coordinates": {"lat": OUTSIDE[0], "long": OUTSIDE[1]}}}
    place.arrives("facebook", messenger({"mid": "m_2", "text": "Muell", "attachments": [location]}))

    assert place.reports() == []
    assert "außerhalb von Gemeinde Testdorf. Dafür ist der Landkreis Musterkreis" in place.answers()[-1]


# --- SMS and mail ------------------------------------------------------------------------------


def sms(text: str, sid: str = "SM" + "a" * 32, sender: str = PHONE) -> bytes:
    return urlencode(
        {"MessageSid": sid, "AccountSid": "AC" + "1" * 32, "From": sender, "To": "+4930123456", "Body": text}
    ).encode()


def test_an_sms_with_a_category_word_and_an_address_is_geocoded(place: Place) -> None:
    place.arrives("twilio", sms("Laterne defekt Hauptstraße 12"))

    [report] = place.reports()
    assert (report.lat, report.lon) == MITTE
    assert report.address == "12, Hauptstraße, Mitte, Musterstadt, 99999, Deutschland"
    assert report.category_id is not None


def test_an_sms_with_the_report_keyword_asks_for_the_category_in_words(place: Place) -> None:
    place.arrives("twilio", sms("MELDUNG Hier liegt etwas am Lindenweg 7"))

    [report] = place.reports()
    assert report.lat is not None and report.category_id is None
    assert "Antworten Sie mit einem dieser Wörter: GRUEN, LATERNE, SCHLAGLOCH, MUELL." in place.answers()[-1]

    place.arrives("twilio", sms("muell", sid="SM" + "b" * 32))

    assert place.reports()[0].category_id is not None


def test_an_address_the_geocoder_does_not_know_is_answered_and_the_place_asked_again(place: Place) -> None:
    place.arrives("twilio", sms("Schlagloch Nirgendwostraße 99"))

    [report] = place.reports()
    assert report.lat is None
    answers = place.answers()
    assert "Die Adresse „Nirgendwostraße 99“ haben wir nicht gefunden." in answers[-2]
    assert answers[-1].startswith("Wo ist das? Schreiben Sie uns die Adresse")


def jpeg_with_gps(lat: float, lon: float, size: tuple[int, int] = (1600, 1200)) -> bytes:
    image = Image.new("RGB", size, (90, 140, 60))
    exif = Image.Exif()
    exif[0x010F] = "Kamera AG"  # Make
    exif[0x9286] = "Erika Mustermann"  # UserComment: personal, must not be kept
    gps = exif.get_ifd(0x8825)

    def dms(value: float) -> tuple[float, float, float]:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)

    gps.update({1: "N", 2: dms(lat), 3: "E", 4: dms(lon)})
    out = BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_a_mailed_photo_with_exif_gps_is_a_report_at_that_place_stored_without_exif(place: Place) -> None:
    mail = EmailMessage()
    mail["From"], mail["To"] = "erika@example.org", "rathaus@testdorf.example"
    mail["Subject"], mail["Message-ID"] = "Wilder Müll", "<foto-1@example.org>"
    mail.set_content("Hier liegt Müll im Gebüsch.")
    mail.add_attachment(jpeg_with_gps(*NORD), maintype="image", subtype="jpeg", filename="IMG_0001.jpg")
    account = place.account("email")
    request = WebhookRequest(url="mailto:x", headers={}, body=mail.as_bytes(), mail_from="erika@example.org")
    events = build_adapter("email", account.config, account.secrets).parse(request)
    receive(place.session, place.settings, account, *events, request=request)

    [report] = place.reports()
    assert report.lat == pytest.approx(NORD[0], abs=1e-5) and report.lon == pytest.approx(NORD[1], abs=1e-5)
    [photo] = place.session.exec(select(ProblemPhoto)).all()
    stored = place.session.get(Attachment, photo.attachment_id)
    assert stored is not None and stored.data is not None
    assert dict(Image.open(BytesIO(stored.data)).getexif()) == {}
    assert max(Image.open(BytesIO(photo.display)).size) == place.settings.photo_display_pixels


# --- photos and places refused -----------------------------------------------------------------


def test_bad_photos_are_refused_in_german(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="Die Datei ist kein Bild"):
        check_photo(b"%PDF-1.7 not an image", settings=settings)
    with pytest.raises(TooLarge, match="Das Foto ist zu groß"):
        check_photo(b"\xff" * (settings.max_photo_bytes + 1), settings=settings)
    bomb = BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG")  # 144 megapixels in a few kilobytes
    with pytest.raises(InvalidInput, match="zu viele Bildpunkte"):
        check_photo(bomb.getvalue(), settings=settings)
    gif = BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    with pytest.raises(InvalidInput, match="JPEG, PNG oder WebP"):
        check_photo(gif.getvalue(), settings=settings)
    with pytest.raises(InvalidInput, match="beschädigt"):
        check_photo(jpeg_with_gps(*MITTE)[:600], settings=settings)


def test_places_off_the_map_or_outside_the_town_are_refused(place: Place) -> None:
    municipality = place.town.municipality
    with pytest.raises(InvalidInput, match="Diesen Ort gibt es nicht"):
        district_at(place.session, municipality=municipality, lat=123.0, lon=10.0)
    with pytest.raises(InvalidInput, match="außerhalb von Gemeinde Testdorf"):
        district_at(place.session, municipality=municipality, lat=OUTSIDE[0], lon=OUTSIDE[1])
    with pytest.raises(InvalidInput, match="nicht gefunden"):
        geocode(place.session, settings=place.settings, municipality=municipality, address="Elm Street 13")
    bow_tie = {"type": "Polygon", "coordinates": [[[10, 51], [10.01, 51.01], [10.01, 51], [10, 51.01], [10, 51]]]}
    with pytest.raises(InvalidInput, match="selbst schneiden"):
        set_district_shape(place.session, municipality_id=place.town.id, district_key="mitte", geometry=bow_tie)


# --- duplicates, merging and progress -------------------------------------------------------------


def test_duplicates_are_open_reports_of_the_category_within_the_distance_and_merging_tells_every_reporter(
    place: Place,
) -> None:
    for number, text in enumerate(
        (
            "Laterne defekt Hauptstraße 12",
            "Laterne Hauptstraße 14",
            "Schlagloch Hauptstraße 14",
            "Laterne Bahnhofstraße 3",
        )
    ):
        place.arrives("twilio", sms(text, sid=f"SM{number:032d}", sender=f"+49151000000{number:02d}"))
    first, second, pothole, far = place.reports()
    assert first.id is not None and second.id is not None

    found = service.duplicates_of(
        place.session, settings=place.settings, municipality_id=place.town.id, report_id=first.id
    )

    assert [(item.report.id, 30 < item.metres < 45) for item in found] == [(second.id, True)]
    assert pothole.id not in [item.report.id for item in found] and far.id not in [item.report.id for item in found]

    clerk = staff_user(place.session, place.town, "staff")
    queued = service.merge_reports(
        place.session, municipality_id=place.town.id, target_id=first.id, source_ids=[second.id], author=clerk
    )
    place.session.commit()
    assert len(queued) == 1
    merged = place.conversation(place.reports()[1])
    assert merged.status == "resolved"
    assert f"wie {place.conversation(first).reference}" in place.answers()[-1]

    told = service.set_public_status(
        place.session, municipality_id=place.town.id, report_id=first.id, text="In Bearbeitung beim Bauhof"
    )
    place.session.commit()
    assert len(told) == 2
    news = f"Neuigkeiten zu Meldung {place.conversation(first).reference}: In Bearbeitung beim Bauhof"
    assert place.answers()[-2:] == [news, news]


# --- staff API, the public list and the status page -----------------------------------------------


def mailed_photo_report(place: Place, sender: str, text: str, lat_lon: tuple[float, float]) -> ProblemReport:
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, "rathaus@testdorf.example"
    mail["Subject"], mail["Message-ID"] = "Laterne", f"<{sender}>"
    mail.set_content(text)
    mail.add_attachment(jpeg_with_gps(*lat_lon), maintype="image", subtype="jpeg", filename="IMG.jpg")
    account = place.account("email")
    request = WebhookRequest(url="mailto:x", headers={}, body=mail.as_bytes(), mail_from=sender)
    events = build_adapter("email", account.config, account.secrets).parse(request)
    receive(place.session, place.settings, account, *events, request=request)
    return place.reports()[-1]


def test_staff_see_duplicates_merge_them_and_the_public_list_shows_no_personal_data(place: Place) -> None:
    first = mailed_photo_report(place, "erika.mustermann@example.org", "LATERNE kaputt, Erika Mustermann", MITTE)
    second = mailed_photo_report(place, "max@example.org", "Laterne flackert", (51.01520, 10.01510))
    api = api_client(place.session, place.town)

    found = api.get(f"/api/v1/problems/reports/{first.id}/duplicates").json()
    assert [item["id"] for item in found] == [second.id]

    assert api.post(f"/api/v1/problems/reports/{first.id}/merge", json={"source_ids": [second.id]}).json() == {
        "told": 1
    }
    answer = api.post(f"/api/v1/problems/reports/{first.id}/status", json={"text": "Bauhof ist informiert"})
    assert answer.json() == {"told": 2}

    public = TestClient(create_app()).get("/api/v1/public/testdorf/problems", params={"category": "laterne"})
    [listed] = public.json()
    assert listed["public_status"] == "Bauhof ist informiert" and listed["district"] == "mitte"
    assert listed["photos"] == []
    for personal in ("Erika", "Mustermann", "erika.mustermann", "max@", "kaputt"):
        assert personal not in public.text
    assert TestClient(create_app()).get("/api/v1/public/testdorf/problems", params={"district": "nord"}).json() == []

    released = {"text": "Bauhof ist informiert", "photos_released": True}
    api.post(f"/api/v1/problems/reports/{first.id}/status", json=released)
    [listed] = TestClient(create_app()).get("/api/v1/public/testdorf/problems").json()
    [photo_url] = listed["photos"]
    photo = TestClient(create_app()).get(photo_url)
    assert photo.headers["content-type"] == "image/jpeg"
    assert dict(Image.open(BytesIO(photo.content)).getexif()) == {}


def test_the_status_page_shows_the_place_the_public_status_and_the_own_photo(place: Place) -> None:
    report = mailed_photo_report(place, "erika@example.org", "Laterne dunkel", MITTE)
    conversation = place.conversation(report)
    page = TestClient(create_app()).get(f"/anfrage/{conversation.reference}/{conversation.public_token}")

    assert "Ihre Meldung" in page.text and "Straßenbeleuchtung" in page.text and "Hauptstraße" in page.text
    [photo] = place.session.exec(select(ProblemPhoto)).all()
    own = f"/anfrage/{conversation.reference}/{conversation.public_token}/foto/{photo.id}"
    assert own not in page.text, "unreleased photos stay off the page"
    assert TestClient(create_app()).get(own).status_code == 200
    assert TestClient(create_app()).get(f"/api/v1/public/testdorf/problems/photos/{photo.id}").status_code == 404


def test_the_demo_town_has_categories_district_shapes_and_reports_its_sandbox_addresses(place: Place) -> None:
    seeded = seed_demo(place.session, place.settings)
    place.session.commit()
    municipality = place.session.get(Municipality, seeded.municipality_id)
    assert municipality is not None

    keys = [category.key for category in service.list_categories(place.session, municipality_id=seeded.municipality_id)]
    assert sorted(keys) == ["gruen", "laterne", "muell", "schlagloch"]
    found = geocode(place.session, settings=place.settings, municipality=municipality, address="Lindenweg 7")
    district = place.session.get(
        District, district_at(place.session, municipality=municipality, lat=found.lat, lon=found.lon)
    )
    assert district is not None and district.key == "sued"


def test_a_reports_response_target_is_its_categorys_not_its_teams(place: Place) -> None:
    """Bauhof answers in 30 minutes; a dark lamp (72 h) and wild dumping (48 h) have targets of their own."""
    bauhof = place.session.exec(select(Team).where(Team.name == "Bauhof")).one()
    bauhof.first_response_minutes, bauhof.office_hours = 30, {}
    place.session.add(bauhof)
    place.session.commit()
    lamp = mailed_photo_report(place, "erika@example.org", "LATERNE dunkel", MITTE)
    dumping = mailed_photo_report(place, "max@example.org", "MUELL am Weg", NORD)
    place.arrives("twilio", sms("Wann ist der Wertstoffhof offen?"))
    municipality = place.town.municipality
    question = place.session.exec(select(Conversation).where(col(Conversation.id).not_in(
        [lamp.conversation_id, dumping.conversation_id]))).one()  # fmt: skip
    lamp_case = place.conversation(lamp)
    question.team_id = bauhof.id
    place.session.add(question)
    place.session.commit()

    own = sla.own_targets(place.session, [lamp.conversation_id, dumping.conversation_id, question.id or 0])
    assert own == {lamp.conversation_id: timedelta(hours=72), dumping.conversation_id: timedelta(hours=48)}
    lamp_clock = sla.clock(lamp_case, team=bauhof, municipality=municipality, now=utcnow(),
                           own_target=own[lamp.conversation_id])  # fmt: skip
    assert lamp_clock.first_response_due == lamp_case.created_at + timedelta(hours=72)

    in_two_days = utcnow() + timedelta(hours=50)
    overdue = sla.overdue_conversation_ids(place.session, municipality_id=place.town.id, now=in_two_days)
    assert set(overdue) == {dumping.conversation_id, question.id}
    [row] = overview.summaries(place.session, municipality=municipality, conversations=[lamp_case], now=in_two_days)
    assert not row.clock.overdue
