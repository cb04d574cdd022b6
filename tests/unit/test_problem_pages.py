"""The Mängelmelder's citizens' pages on both backends: the web form with pin, address and photos, refusals that
store nothing, "ist das schon gemeldet?" with "ich auch", being told by a code or a mailed link, the public list.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, col, func, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db, ratelimit
from hub import settings as settings_module
from hub.app import create_app
from hub.contacts.gdpr import erase_contact, export_contact
from hub.contacts.models import Contact, ContactIdentity
from hub.demo import seed_demo
from hub.inbox.models import Attachment, Conversation, Message
from hub.problems import service
from hub.problems.demo import seed_problem_demo
from hub.problems.models import ProblemPhoto, ProblemReport
from hub.problems.web_demo import DEMO_WEB_REPORTS
from hub.settings import Settings
from hub.subscribers.demo import seed_subscriber_demo
from hub.subscribers.models import District
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.signin import set_password
from hub.web.security import CSRF_COOKIE
from tests.unit.test_problems import MITTE, NORD, OUTSIDE, jpeg_with_gps
from tests.unit.web import PASSWORD, sign_in

PHONE = "+4915112345678"
NEARBY = "/musterdorf/meldung/in-der-naehe"


@dataclass
class Town:
    session: Session
    municipality: Municipality
    sandbox: SandboxClient
    clerk: StaffUser

    def count(self, table: Any) -> int:
        self.session.expire_all()
        return int(self.session.exec(select(func.count()).select_from(table)).one())

    def reports(self) -> list[ProblemReport]:
        self.session.expire_all()
        return list(self.session.exec(select(ProblemReport).order_by(col(ProblemReport.id))))

    def conversation(self, report: ProblemReport) -> Conversation:
        found = self.session.get(Conversation, report.conversation_id)
        assert found is not None
        return found


@pytest.fixture
def town(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Town]:
    ratelimit._limiter.cache_clear()
    with SandboxServer() as sandbox, Session(db.get_engine(), expire_on_commit=False) as session:
        # The pages read the settings themselves: the geocoder is the sandbox's emulator, no tiles (no network).
        monkeypatch.setenv("RATHAUS_GEOCODER_URL", f"{sandbox.url}/nominatim")
        monkeypatch.setenv("RATHAUS_MAP_TILE_URL", "")
        settings_module.get_settings.cache_clear()
        municipality = tenancy.create_municipality(session, slug="musterdorf", name="Gemeinde Musterdorf")
        assert municipality.id is not None
        seed_subscriber_demo(session, municipality.id)
        sms = tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="twilio", name="SMS",
            config={"account_sid": "AC" + "5" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
            secrets_={"auth_token": "t"},
        )  # fmt: skip
        tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="email", name="Mail",
            config={"address": "rathaus@musterdorf.example", "smtp_host": "127.0.0.1", "smtp_port": sandbox.smtp_port},
        )  # fmt: skip
        team = tenancy.create_team(session, municipality_id=municipality.id, name="Bauhof")
        seed_problem_demo(session, municipality.id, team_id=team.id)
        clerk = tenancy.create_user(session, municipality_id=municipality.id, email="a@x.de", name="A", role="staff")
        session.commit()
        client = SandboxClient(sandbox.url)
        client.register_account(kind=sms.kind, config=sms.config, secrets=sms.secrets, webhook_url=None)
        yield Town(session=session, municipality=municipality, sandbox=client, clerk=clerk)
    settings_module.get_settings.cache_clear()


@pytest.fixture
def citizen(town: Town) -> TestClient:
    return TestClient(create_app())


def post(client: TestClient, path: str, data: dict[str, str], files: list[Any] | None = None) -> Any:
    """Submits a form as the page would, CSRF field included, without following the redirect."""
    if CSRF_COOKIE not in client.cookies:
        client.get("/musterdorf/meldung")
    fields = {"csrf_token": client.cookies[CSRF_COOKIE], **data}
    return client.post(path, data=fields, files=files, follow_redirects=False)


def report(client: TestClient, files: list[Any] | None = None, **fields: str) -> Any:
    data = {"category": "laterne", "description": "Die Laterne ist seit Tagen dunkel.", "way": "none", **fields}
    return post(client, "/musterdorf/meldung", data, files)


def pin(point: tuple[float, float]) -> dict[str, str]:
    return {"lat": str(point[0]), "lon": str(point[1])}


def test_the_form_offers_categories_a_map_served_here_and_the_address_without_javascript(citizen: TestClient) -> None:
    page = citizen.get("/musterdorf/meldung")
    assert page.status_code == 200
    assert "Straßenbeleuchtung" in page.text and 'name="address"' in page.text
    assert 'src="/static/vendor/leaflet/leaflet.js"' in page.text and 'data-map="pick"' in page.text
    assert 'data-nearby="/musterdorf/meldung/in-der-naehe" aria-describedby="map-hint"' in page.text
    assert re.search(r'data-bounds="10\.00000,51\.00000,10\.04000,51\.03000"', page.text)
    assert "Ihr Browser fragt Sie dann, ob er Ihren Standort weitergeben darf" in page.text
    assert "https://" not in re.sub(r"<a [^>]*>", "", page.text.split("<main", 1)[1])  # nothing from elsewhere
    assert citizen.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    assert citizen.get("/static/vendor/leaflet/images/marker-icon.png").status_code == 200


def test_a_report_by_pin_with_a_photo_is_a_case_with_place_team_and_photo_without_exif(
    town: Town, citizen: TestClient
) -> None:
    photo = ("files", ("IMG_0001.jpg", jpeg_with_gps(*NORD), "image/jpeg"))
    filed = report(citizen, files=[("photos", photo[1])], **pin(MITTE))
    assert filed.status_code == 303 and filed.headers["location"] == "/musterdorf/meldung/danke"

    [made] = town.reports()
    conversation = town.conversation(made)
    assert (made.lat, made.lon) == MITTE and made.address and "Hauptstraße" in made.address
    assert town.session.get(District, made.district_id).key == "mitte"  # type: ignore[union-attr]
    assert conversation.team_id is not None and conversation.reference.startswith(town.municipality.reference_prefix)
    [message] = town.session.exec(select(Message).where(Message.conversation_id == conversation.id)).all()
    assert message.direction == "inbound" and message.body == "Die Laterne ist seit Tagen dunkel."
    [stored] = town.session.exec(select(ProblemPhoto)).all()
    attachment = town.session.get(Attachment, stored.attachment_id)
    assert attachment is not None and attachment.data is not None
    assert dict(Image.open(BytesIO(attachment.data)).getexif()) == {}, "EXIF and GPS removed"
    assert town.session.exec(select(ContactIdentity)).first() is None, "no address was given"

    thanks = citizen.get("/musterdorf/meldung/danke")
    assert conversation.reference in thanks.text
    assert f"/anfrage/{conversation.reference}/{conversation.public_token}" in thanks.text
    # Nobody to write to: a public status is set, but no message is queued for the reporter.
    assert (
        service.set_public_status(
            town.session, municipality_id=town.municipality.id or 0, report_id=made.id or 0, text="Bauhof informiert"
        )
        == []
    )


def test_a_report_by_address_is_geocoded_into_its_district(town: Town, citizen: TestClient) -> None:
    assert report(citizen, address="Lindenweg 7").status_code == 303
    [made] = town.reports()
    assert made.lat == pytest.approx(51.005) and made.address and "Lindenweg" in made.address
    assert town.session.get(District, made.district_id).key == "sued"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "files", "status", "words"),
    [
        ({"category": "ufo", **pin(MITTE)}, None, 422, "Die Kategorie 'ufo' gibt es nicht"),
        (pin(OUTSIDE), None, 422, "außerhalb von Gemeinde Musterdorf"),
        ({"lat": "91", "lon": "10"}, None, 422, "Diesen Ort gibt es nicht"),
        ({"lat": "x", "lon": "10"}, None, 422, "Der Punkt auf der Karte ist unlesbar"),
        ({}, None, 422, "Bitte setzen Sie einen Punkt auf der Karte oder geben Sie eine Adresse an"),
        ({"address": "Nirgendwo 99"}, None, 422, "haben wir nicht gefunden"),
        ({"description": " ", **pin(MITTE)}, None, 422, "Bitte beschreiben Sie kurz"),
        (pin(MITTE), [("photos", ("a.jpg", b"kein Bild", "image/jpeg"))], 422, "Die Datei ist kein Bild"),
        ({"way": "phone", "phone": "123", **pin(MITTE)}, None, 422, "Telefonnummer"),
        ({"way": "email", "email": "nicht-da", **pin(MITTE)}, None, 422, "keine gültige E-Mail-Adresse"),
    ],
)
def test_bad_input_is_refused_in_german_and_nothing_is_stored(
    town: Town, citizen: TestClient, fields: dict[str, str], files: list[Any] | None, status: int, words: str
) -> None:
    refused = report(citizen, files=files, **fields)
    assert refused.status_code == status and words in html.unescape(refused.text), refused.text[-2000:]
    assert 'name="description"' in refused.text, "the form again, with what was typed"
    for table in (ProblemReport, Conversation, Message, Attachment, Contact):
        assert town.count(table) == 0, table


def test_too_large_and_too_many_photos_are_refused(town: Town, citizen: TestClient) -> None:
    settings_module.get_settings().max_photo_bytes = 1000
    big = [("photos", ("a.jpg", jpeg_with_gps(*MITTE), "image/jpeg"))]
    assert report(citizen, files=big, **pin(MITTE)).status_code == 413
    settings_module.get_settings().max_photo_bytes = 10_485_760
    four = [("photos", (f"{n}.jpg", jpeg_with_gps(*MITTE, size=(40, 30)), "image/jpeg")) for n in range(4)]
    refused = report(citizen, files=four, **pin(MITTE))
    assert refused.status_code == 422 and "höchstens 3 Fotos" in refused.text
    assert town.count(ProblemReport) == 0


def test_nearby_reports_of_the_category_are_shown_without_personal_data(town: Town, citizen: TestClient) -> None:
    report(citizen, description="Erika Mustermann sagt: dunkel", **pin(MITTE))
    report(citizen, category="muell", **pin(MITTE))
    [first, _other] = town.reports()

    close = citizen.get(NEARBY, params={"category": "laterne", "lat": 51.0152, "lon": 10.0151})
    [found] = close.json()
    assert found["id"] == first.id and found["reporters"] == 1 and 0 < found["metres"] < 50
    assert "Erika" not in close.text and "dunkel" not in close.text
    far = {"category": "laterne", "lat": NORD[0], "lon": NORD[1]}
    assert citizen.get(NEARBY, params=far).json() == []
    assert citizen.get(NEARBY, params={"category": "ufo", "lat": 51.0, "lon": 10.0}).json() == []
    assert citizen.get(NEARBY, params={"lat": 95, "lon": 10}).status_code == 422


def code_for(town: Town) -> str:
    found = re.search(r"\b(\d{6})\b", str(town.sandbox.outbox(kind="twilio", to=PHONE)[-1]["text"]))
    assert found
    return found.group(1)


def test_ich_auch_counts_a_reporter_who_proven_by_code_hears_of_progress(town: Town, citizen: TestClient) -> None:
    report(citizen, **pin(MITTE))
    [target] = town.reports()
    supporter = TestClient(create_app())
    joined = post(supporter, f"/musterdorf/meldung/ich-auch/{target.id}", {"way": "phone", "phone": "0151 12345678"})
    assert joined.status_code == 303
    [_, support] = town.reports()
    assert support.merged_into_id == target.id and town.conversation(support).status == "resolved"
    thanks = supporter.get("/musterdorf/meldung/danke")
    assert town.conversation(target).reference in thanks.text and "+4915112345678" in thanks.text

    wrong = post(supporter, "/musterdorf/meldung/code", {"code": "000000" if code_for(town) != "000000" else "111111"})
    assert wrong.status_code == 422 and "Der Code stimmt nicht" in wrong.text
    proven = post(supporter, "/musterdorf/meldung/code", {"code": code_for(town)})
    assert proven.status_code == 200 and "Ihre Nummer ist bestätigt" in proven.text
    moved = town.conversation(support)
    identity = town.session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == moved.contact_id)).one()
    assert identity.address == PHONE and town.count(Contact) == 2, "the placeholder contact is gone"

    near = citizen.get(NEARBY, params={"category": "laterne", "lat": MITTE[0], "lon": MITTE[1]})
    assert near.json()[0]["reporters"] == 2
    told = service.set_public_status(
        town.session, municipality_id=town.municipality.id or 0, report_id=target.id or 0, text="Bauhof informiert"
    )
    assert len(told) == 1, "the proven supporter; the first reporter left no address"
    town.session.commit()


def test_ich_auch_on_a_finished_report_is_refused(town: Town, citizen: TestClient) -> None:
    report(citizen, **pin(MITTE))
    [target] = town.reports()
    conversation = town.conversation(target)
    conversation.status = "resolved"
    town.session.add(conversation)
    town.session.commit()
    refused = post(citizen, f"/musterdorf/meldung/ich-auch/{target.id}", {"way": "none"})
    assert refused.status_code == 409 and "schon erledigt" in refused.text
    assert post(citizen, "/musterdorf/meldung/ich-auch/999999", {"way": "none"}).status_code == 404
    assert town.count(ProblemReport) == 1


def test_a_mailed_link_lets_the_reporter_hear_of_progress_by_email(town: Town, citizen: TestClient) -> None:
    assert report(citizen, way="email", email="Max@Example.org", **pin(MITTE)).status_code == 303
    assert "max@example.org" in citizen.get("/musterdorf/meldung/danke").text
    mail = town.sandbox.outbox(kind="email", to="max@example.org")[-1]
    link = re.search(r"http\S+/meldung/bestaetigen\?token=\S+", str(mail["text"]))
    assert link is not None
    path = "/" + link.group(0).split("://", 1)[1].split("/", 1)[1]
    [made] = town.reports()
    assert town.conversation(made).reference in citizen.get(path).text
    assert town.session.exec(select(ContactIdentity)).first() is None, "opening the link alone changes nothing"
    confirmed = post(citizen, path, {})
    assert confirmed.status_code == 200 and "E-Mail-Adresse bestätigt" in confirmed.text
    assert post(citizen, path, {}).status_code == 200, "following it twice is fine"
    identity = town.session.exec(
        select(ContactIdentity).where(ContactIdentity.contact_id == town.conversation(made).contact_id)
    ).one()
    assert identity.address == "max@example.org"
    assert post(citizen, path.replace("token=", "token=x"), {}).status_code in (400, 422)


def test_the_public_list_shows_reports_on_a_map_without_personal_data(town: Town, citizen: TestClient) -> None:
    report(citizen, description="Erika Mustermann, Tel. 0151", way="email", email="erika@example.org", **pin(MITTE))
    report(citizen, category="muell", address="Lindenweg 7")
    page = citizen.get("/musterdorf/meldungen")
    assert page.status_code == 200 and 'data-map="pins"' in page.text
    assert "Straßenbeleuchtung" in page.text and "Wilder Müll" in page.text and "Meldungen: 2" in page.text
    for personal in ("Erika", "erika@", "0151"):
        assert personal not in page.text
    only = citizen.get("/musterdorf/meldungen", params={"category": "muell", "district": "sued", "status": "offen"})
    assert "Wilder Müll" in only.text and "Meldungen: 1" in only.text
    assert citizen.get("/musterdorf/meldungen", params={"status": "kaputt"}).status_code == 422


def test_staff_see_the_reports_on_a_map_filtered_like_the_list_and_the_place_beside_the_case(
    town: Town, citizen: TestClient
) -> None:
    report(citizen, **pin(MITTE))
    report(citizen, category="muell", address="Lindenweg 7")
    report(citizen, category="muell", **pin(NORD))
    lamp, dumped, done = town.reports()
    finished = town.conversation(done)
    finished.status = "resolved"
    town.session.add(finished)
    set_password(town.session, user=town.clerk, password=PASSWORD)
    town.session.commit()
    clerk = TestClient(create_app())
    assert sign_in(clerk, town.clerk.email).status_code == 303

    page = clerk.get("/app/problems")
    assert page.status_code == 200 and 'data-map="pins"' in page.text and "Meldungen: 2" in page.text
    assert (
        f"/app/inbox/{town.conversation(lamp).id}" in page.text and town.conversation(done).reference not in page.text
    )
    only = clerk.get("/app/problems", params={"category": "muell", "district": "sued"}).text
    assert town.conversation(dumped).reference in only and town.conversation(lamp).reference not in only
    assert town.conversation(done).reference in clerk.get("/app/problems", params={"status": "erledigt"}).text
    assert clerk.get("/app/problems", params={"status": "kaputt"}).status_code == 422

    case = clerk.get(f"/app/inbox/{town.conversation(lamp).id}")
    assert case.status_code == 200 and 'data-map="point"' in case.text
    assert f'data-lat="{MITTE[0]}" data-lon="{MITTE[1]}"' in case.text


def test_the_demo_town_shows_reports_on_its_maps(town: Town, citizen: TestClient) -> None:
    seeded = seed_demo(town.session, settings_module.get_settings())
    town.session.commit()
    slug = town.session.get(Municipality, seeded.municipality_id).slug  # type: ignore[union-attr]
    page = citizen.get(f"/{slug}/meldungen")
    # Every report listed is a pin on the map: the web form's three and the demo's chat reports.
    listed = re.search(r"Meldungen: (\d+)", page.text)
    assert listed is not None and int(listed.group(1)) >= len(DEMO_WEB_REPORTS)
    assert "Gartenweg 2" in page.text and page.text.count("&#34;lat&#34;") == int(listed.group(1))
    near = citizen.get(f"/{slug}/meldung/in-der-naehe", params={"category": "muell", "lat": 51.02, "lon": 10.035})
    assert near.json()[0]["reporters"] == 2


def test_the_public_list_and_the_report_page_name_the_district_not_its_key(town: Town, citizen: TestClient) -> None:
    report(citizen, category="muell", address="Lindenweg 7")
    page = citizen.get("/musterdorf/meldungen")
    assert "(Süd)" in page.text and "(sued)" not in page.text
    [listed] = citizen.get("/api/v1/public/musterdorf/problems").json()
    assert (listed["district"], listed["district_name"]) == ("sued", "Süd"), "the key stays what the filter takes"
    conversation = town.conversation(town.reports()[0])
    status = citizen.get(f"/anfrage/{conversation.reference}/{conversation.public_token}")
    assert "<dd>Süd</dd>" in status.text and "sued" not in status.text


def staff_client(town: Town) -> TestClient:
    set_password(town.session, user=town.clerk, password=PASSWORD)
    town.session.commit()
    clerk = TestClient(create_app())
    assert sign_in(clerk, town.clerk.email).status_code == 303
    return clerk


def test_ich_auch_brings_checked_photos_to_the_reports_case_unreleased(town: Town, citizen: TestClient) -> None:
    own = [("photos", ("eigenes.jpg", jpeg_with_gps(*MITTE, size=(40, 30)), "image/jpeg"))]
    report(citizen, files=own, **pin(MITTE))
    [target] = town.reports()
    service.set_public_status(
        town.session, municipality_id=town.municipality.id or 0, report_id=target.id or 0, text="Bauhof informiert",
        photos_released=True,
    )  # fmt: skip
    town.session.commit()
    supporter = TestClient(create_app())
    action = f"/musterdorf/meldung/ich-auch/{target.id}"
    refused = post(supporter, action, {"way": "none"}, [("photos", ("a.jpg", b"kein Bild", "image/jpeg"))])
    assert refused.status_code == 422 and "Die Datei ist kein Bild" in refused.text
    assert (town.count(ProblemReport), town.count(Message), town.count(Attachment)) == (1, 1, 1), "nothing stored"

    theirs = [("photos", ("auch.jpg", jpeg_with_gps(*NORD, size=(40, 30)), "image/jpeg"))]
    assert post(supporter, action, {"way": "none"}, theirs).status_code == 303
    [_, support] = town.reports()
    case, supporters_case = town.conversation(target), town.conversation(support)
    note = town.session.exec(
        select(Message).where(Message.conversation_id == case.id, Message.direction == "note")
    ).one()
    assert supporters_case.reference in note.body and "noch nicht freigegeben" in note.body
    [kept] = town.session.exec(
        select(Attachment).join(Message).where(Message.conversation_id == supporters_case.id)
    ).all()
    assert kept.data is not None and dict(Image.open(BytesIO(kept.data)).getexif()) == {}, "EXIF removed"
    photo = town.session.exec(select(ProblemPhoto).where(ProblemPhoto.attachment_id == kept.id)).one()
    assert photo.report_id == support.id, "the supporter's photo, not released with the report's own"
    [listed] = citizen.get("/api/v1/public/musterdorf/problems").json()
    assert len(listed["photos"]) == 1 and str(photo.id) not in listed["photos"][0]
    assert citizen.get(f"/api/v1/public/musterdorf/problems/photos/{photo.id}").status_code == 404

    clerk = staff_client(town)
    assert supporters_case.reference in clerk.get(f"/app/inbox/{case.id}").text
    page = clerk.get(f"/app/inbox/{supporters_case.id}")
    assert f"/app/inbox/attachments/{kept.id}" in page.text and "auch.jpg" in page.text
    first = export_contact(town.session, municipality_id=town.municipality.id or 0, contact_id=case.contact_id)
    assert "auch.jpg" not in json.dumps(first, default=str), "another reporter's photo is not in this one's export"

    erase_contact(
        town.session, municipality_id=town.municipality.id or 0, contact_id=town.conversation(support).contact_id,
        actor_id=town.clerk.id,
    )  # fmt: skip
    town.session.commit()
    town.session.expire_all()
    assert town.session.get(Attachment, kept.id).data is None  # type: ignore[union-attr]
    assert town.session.get(ProblemPhoto, photo.id) is None


def test_a_reporter_without_an_address_cannot_be_answered_and_the_case_says_so_first(
    town: Town, citizen: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hub.inbox.api.enqueue_send", lambda _message_id: None)
    report(citizen, **pin(MITTE))
    [made] = town.reports()
    case = town.conversation(made)
    clerk = staff_client(town)
    page = clerk.get(f"/app/inbox/{case.id}")
    assert 'id="unreachable"' in page.text and "keine Adresse hinterlassen" in page.text
    assert 'id="reply-text"' not in page.text and 'id="note-text"' in page.text, "notes still work"
    csrf = clerk.cookies[CSRF_COOKIE]
    refused = clerk.post(f"/app/inbox/{case.id}/reply", data={"csrf_token": csrf, "text": "Danke!"})
    assert refused.status_code == 409 and "Keine Antwort kann sie erreichen" in html.unescape(refused.text)
    token = tenancy.create_api_token(town.session, user=town.clerk, name="Skript")
    town.session.commit()
    api = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})
    answer = api.post(f"/api/v1/conversations/{case.id}/replies", json={"text": "Danke!"})
    assert answer.status_code == 409 and "keine Adresse hinterlassen" in answer.json()["detail"]
    assert town.session.exec(select(Message).where(Message.direction == "outbound")).first() is None

    assert report(citizen, way="email", email="max@example.org", **pin(NORD)).status_code == 303
    mail = town.sandbox.outbox(kind="email", to="max@example.org")[-1]
    link = re.search(r"http\S+/meldung/bestaetigen\?token=\S+", str(mail["text"]))
    assert link is not None
    post(citizen, "/" + link.group(0).split("://", 1)[1].split("/", 1)[1], {})
    proven = town.conversation(town.reports()[-1])
    assert 'id="unreachable"' not in clerk.get(f"/app/inbox/{proven.id}").text, "once proven, the reply box is back"
    assert api.post(f"/api/v1/conversations/{proven.id}/replies", json={"text": "Danke!"}).status_code == 202


def test_staff_merge_a_suggested_duplicate_from_the_case_and_it_lists_both_reporters(
    town: Town, citizen: TestClient
) -> None:
    report(citizen, **pin(MITTE))
    report(citizen, description="Die Laterne flackert.", **pin((51.01520, 10.01510)))
    report(citizen, category="muell", **pin(MITTE))
    first, second, other_kind = town.reports()
    case, duplicate = town.conversation(first), town.conversation(second)
    clerk = staff_client(town)
    page = clerk.get(f"/app/inbox/{case.id}").text
    suggested = page.split('id="problem-duplicates"', 1)[1].split("</section>", 1)[0]
    assert duplicate.reference in suggested and town.conversation(other_kind).reference not in suggested
    assert f'action="/app/problems/reports/{first.id}/merge"' in suggested

    csrf = {"csrf_token": clerk.cookies[CSRF_COOKIE]}
    merged = clerk.post(f"/app/problems/reports/{first.id}/merge", data={**csrf, "source": str(second.id)},
                        follow_redirects=False)  # fmt: skip
    assert merged.status_code == 303 and merged.headers["location"] == f"/app/inbox/{case.id}?done=reports_merged"
    after = clerk.get(merged.headers["location"]).text
    assert "Die Meldungen sind zusammengeführt" in after and "Meldende: 2" in after
    assert duplicate.reference in after.split('id="problem-merged"', 1)[1].split("</p>", 1)[0]
    assert 'id="problem-duplicates"' not in after
    assert town.reports()[1].merged_into_id == first.id and town.conversation(second).status == "resolved"

    again = clerk.post(f"/app/problems/reports/{second.id}/merge", data={**csrf, "source": str(first.id)})
    assert again.status_code == 409 and "schon mit einer anderen zusammengeführt" in html.unescape(again.text)
    assert clerk.post(f"/app/problems/reports/{first.id}/merge", data=csrf).status_code == 404
