"""The subscriber pages in-process: search and filters, a subscriber's record, STOP, export, erasure, import, topics."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from hub.contacts.models import ContactIdentity
from hub.subscribers.models import District, Subscription, Topic
from tests.unit.db import make_town
from tests.unit.test_broadcasts_pages import citizen
from tests.unit.web import clerk


def test_search_by_name_phone_and_chat_id_and_filter_by_topic_state_and_channel(session: Session) -> None:
    town = make_town(session)
    anna = citizen(session, town, "+4915111111111", topics=("baustellen",), district="mitte")
    citizen(session, town, "+4915122222222", topics=("abfall",), state="stopped")
    session.add(ContactIdentity(municipality_id=town.id, contact_id=anna, kind="telegram", address="777000111"))
    session.commit()
    viewer = clerk(session, town, "viewer")
    everyone = viewer.get("/app/subscribers")
    assert "2 Abonnenten gefunden" in everyone.text
    for query in ("q=111111", "q=person+%2B4915111", "q=777000111", "topic=baustellen", "district=mitte",
                  "channel=telegram", "state=active"):  # fmt: skip
        page = viewer.get(f"/app/subscribers?{query}").text
        assert "1 Abonnenten gefunden" in page and "+4915111111111" in page, query
    stopped = viewer.get("/app/subscribers?state=stopped").text
    assert "+4915122222222" in stopped and "+4915111111111" not in stopped
    detail = viewer.get(f"/app/subscribers/{anna}")
    assert "777000111" in detail.text and "Einwilligungen" in detail.text and "angemeldet" in detail.text
    assert "Abonnement beenden" not in detail.text and "Daten löschen" not in detail.text


def test_staff_stop_a_subscription_and_export_but_only_an_admin_erases(session: Session) -> None:
    town = make_town(session)
    anna = citizen(session, town, "+4915111111111")
    staff = clerk(session, town, "staff")
    stopped = staff.post(f"/app/subscribers/{anna}/stop")
    assert "Das Abonnement ist beendet." in stopped.text
    state = session.exec(select(Subscription.state).where(Subscription.contact_id == anna)).one()
    assert state == "stopped"
    export = staff.get(f"/app/subscribers/{anna}/export")
    assert export.headers["content-disposition"] == f'attachment; filename="kontakt-{anna}.json"'
    assert "+4915111111111" in export.text and export.json()["subscription"]["state"] == "stopped"
    assert clerk(session, town, "viewer").get(f"/app/subscribers/{anna}/export").status_code == 403

    assert staff.get(f"/app/subscribers/{anna}/erase").status_code == 403
    assert staff.post(f"/app/subscribers/{anna}/erase", {"confirm": "yes"}).status_code == 403
    admin = clerk(session, town, "admin")
    assert "Endgültig löschen" in admin.get(f"/app/subscribers/{anna}/erase").text
    unconfirmed = admin.post(f"/app/subscribers/{anna}/erase")
    assert unconfirmed.status_code == 422 and "Bitte bestätigen Sie" in unconfirmed.text
    assert session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == anna)).first() is not None
    erased = admin.post(f"/app/subscribers/{anna}/erase", {"confirm": "yes"})
    assert erased.status_code == 200 and "Die personenbezogenen Daten sind gelöscht." in erased.text
    assert session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == anna)).first() is None


def test_csv_import_reports_the_bad_line_and_imports_nothing_then_everything(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    assert "Prüfen und importieren" in staff.get("/app/subscribers/import").text
    bad = "phone;topics;consent_evidence\n+4915133333333;abfall;Formular 2024\n+4915144444444;mond;Formular 2024\n"
    answer = staff.client.post(
        "/app/subscribers/import", data={"csrf_token": staff.csrf_token},
        files={"file": ("liste.csv", bad.encode(), "text/csv")},
    )  # fmt: skip
    assert answer.status_code == 422
    assert '<th scope="row">3</th><td>Unbekanntes Thema &#39;mond&#39;' in answer.text
    assert "1 Zeilen waren in Ordnung." in answer.text
    assert session.exec(select(Subscription)).first() is None
    good = bad.replace(";mond;", ";abfall;")
    done = staff.client.post(
        "/app/subscribers/import", data={"csrf_token": staff.csrf_token},
        files={"file": ("liste.csv", good.encode(), "text/csv")},
    )  # fmt: skip
    assert done.status_code == 200 and "2 Abonnenten aus liste.csv importiert. Neu angelegt: 2." in done.text
    created = session.exec(select(Subscription)).all()
    for subscription in created:
        assert f'href="/app/subscribers/{subscription.contact_id}"' in done.text
    assert ">+4915144444444</a>" in done.text
    assert '<progress max="2" value="2"' in done.text
    assert len(session.exec(select(Subscription)).all()) == 2
    assert clerk(session, town, "viewer").get("/app/subscribers/import").status_code == 403
    sample = staff.get("/app/subscribers/import/sample.csv")
    assert sample.status_code == 200 and sample.headers["content-type"].startswith("text/csv")
    assert "attachment" in sample.headers["content-disposition"]
    assert sample.content.decode("utf-8-sig").startswith("Telefon;E-Mail;Themen;Ortsteil;")
    assert 'href="/app/subscribers/import/sample.csv"' in staff.get("/app/subscribers/import").text


def test_topics_and_districts_are_created_and_renamed_by_staff_only(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    created = staff.post("/app/subscribers/topics", {"key": "kultur", "name_de": "Kultur", "name_en": "Culture"})
    assert "Das Thema ist angelegt." in created.text
    twice = staff.post("/app/subscribers/topics", {"key": "kultur", "name_de": "Kultur"})
    assert twice.status_code == 409 and "gibt es schon" in twice.text
    topic = session.exec(select(Topic).where(Topic.municipality_id == town.id, Topic.key == "kultur")).one()
    staff.post(f"/app/subscribers/topics/{topic.id}", {"name_de": "Kultur und Feste", "name_en": "Culture"})
    session.refresh(topic)
    assert topic.name_de == "Kultur und Feste"
    assert "Der Ortsteil ist angelegt." in staff.post("/app/subscribers/districts", {"key": "au", "name": "Au"}).text
    district = session.exec(select(District).where(District.municipality_id == town.id, District.key == "au")).one()
    staff.post(f"/app/subscribers/districts/{district.id}", {"name": "In der Au"})
    session.refresh(district)
    assert district.name == "In der Au"
    viewer = clerk(session, town, "viewer")
    assert "In der Au" in viewer.get("/app/subscribers/topics").text
    assert viewer.post("/app/subscribers/districts", {"key": "x", "name": "X"}).status_code == 403


def test_the_topics_page_says_what_happened_in_english(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    created = staff.post("/app/subscribers/topics?lang=en", {"key": "kultur", "name_de": "Kultur"})
    assert "The topic has been created." in created.text
    district = staff.post("/app/subscribers/districts?lang=en", {"key": "au", "name": "Au"})
    assert "The district has been created." in district.text


def test_another_municipality_sees_none_of_the_subscribers(session: Session) -> None:
    town, other = make_town(session), make_town(session, slug="nachbarort")
    anna = citizen(session, town, "+4915111111111")
    district = session.exec(select(District).where(District.municipality_id == town.id)).first()
    assert district is not None
    neighbour = clerk(session, other, "admin")
    assert "+4915111111111" not in neighbour.get("/app/subscribers?q=4915111").text
    for path in (f"/app/subscribers/{anna}", f"/app/subscribers/{anna}/export", f"/app/subscribers/{anna}/erase"):
        assert neighbour.get(path).status_code == 404, path
    assert neighbour.post(f"/app/subscribers/{anna}/stop").status_code == 404
    assert neighbour.post(f"/app/subscribers/{anna}/erase", {"confirm": "yes"}).status_code == 404
    assert neighbour.post(f"/app/subscribers/districts/{district.id}", {"name": "Gekapert"}).status_code == 404
    session.refresh(district)
    assert district.name != "Gekapert"
    assert session.exec(select(Subscription.state).where(Subscription.contact_id == anna)).one() == "active"


def test_the_streamed_import_reports_each_line_checked_and_then_the_outcome(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    rows = "".join(f"+49151555000{n:02d};abfall;Formular 2024\n" for n in range(10))
    answer = staff.client.post(
        "/app/subscribers/import/progress", data={"csrf_token": staff.csrf_token},
        files={"file": ("liste.csv", ("phone;topics;consent_evidence\n" + rows).encode(), "text/csv")},
    )  # fmt: skip
    assert answer.headers["content-type"] == "application/x-ndjson"
    events = [json.loads(line) for line in answer.text.splitlines()]
    checks = [event["done"] for event in events if event["phase"] == "check"]
    imports = [event["done"] for event in events if event["phase"] == "import"]
    assert checks == list(range(1, 11)) and imports == list(range(1, 11))
    assert events[-1]["phase"] == "done" and events[-1]["imported"] == 10
    assert "10 Abonnenten aus liste.csv importiert." in events[-1]["html"]
    assert len(session.exec(select(Subscription)).all()) == 10

    bad = staff.client.post(
        "/app/subscribers/import/progress", data={"csrf_token": staff.csrf_token},
        files={"file": ("zwei.csv", b"phone;consent_evidence\n+4915166600000;\n", "text/csv")},
    )  # fmt: skip
    last = json.loads(bad.text.splitlines()[-1])
    assert last["imported"] is None and "Nachweis der Einwilligung" in last["html"]
    viewer = clerk(session, town, "viewer")
    refused = viewer.client.post(
        "/app/subscribers/import/progress", data={"csrf_token": viewer.csrf_token},
        files={"file": ("liste.csv", b"phone;consent_evidence\n", "text/csv")},
    )  # fmt: skip
    assert refused.status_code == 403
