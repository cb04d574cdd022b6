"""Broadcast pages in-process: compose, count, preview, submit, approve by the right roles, progress, report, chart."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, select

from hub.broadcasts import api as broadcasts_api
from hub.broadcasts import pages as broadcast_pages
from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.contacts.models import Contact, ContactIdentity
from hub.subscribers import consent
from hub.subscribers import pages as subscriber_pages
from hub.subscribers.models import District, Topic
from hub.web.charts import bar_chart, count_with_share
from tests.unit.db import Town, make_town
from tests.unit.web import clerk


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Broadcasts the pages handed to the workers (recorded instead of going to the broker)."""
    calls: list[int] = []
    for module in (broadcasts_api, broadcast_pages):
        monkeypatch.setattr(module, "enqueue_broadcast_start", lambda broadcast_id, urgent: calls.append(broadcast_id))
    return calls


def citizen(session: Session, town: Town, phone: str, *, topics: tuple[str, ...] = (), district: str | None = None,
            state: str = "active") -> int:  # fmt: skip
    contact = Contact(municipality_id=town.id, display_name=f"Person {phone}")
    session.add(contact)
    session.flush()
    assert contact.id is not None
    session.add(ContactIdentity(municipality_id=town.id, contact_id=contact.id, kind="phone", address=phone))
    topic_ids = [
        session.exec(select(Topic.id).where(Topic.municipality_id == town.id, Topic.key == k)).one() for k in topics
    ]
    district_ids = [
        session.exec(select(District.id).where(District.municipality_id == town.id, District.key == district)).one()
    ] if district else []  # fmt: skip
    consent.subscribe(
        session, municipality_id=town.id, contact_id=contact.id, channel_kind="twilio", source="api", evidence={},
        topic_ids=topic_ids, district_ids=district_ids, state=state,  # type: ignore[arg-type]
    )  # fmt: skip
    session.commit()
    return contact.id


def topic_id(session: Session, town: Town, key: str) -> int:
    found = session.exec(select(Topic.id).where(Topic.municipality_id == town.id, Topic.key == key)).one()
    assert found is not None
    return found


def form(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "kind": "announcement", "title": "Straßenfest", "body_de": "Hallo {{ name }}, am Samstag ist Straßenfest.",
        "topic_match": "any", "district_match": "any", "action": "save",
    }  # fmt: skip
    values.update(overrides)
    return values


def new_id(location: str) -> int:
    found = re.search(r"/app/broadcasts/(\d+)", location)
    assert found is not None
    return int(found.group(1))


def test_staff_compose_and_submit_then_the_mayor_approves_from_the_queue(session: Session, started: list[int]) -> None:
    town = make_town(session)
    citizen(session, town, "+4915100000001")
    staff, mayor = clerk(session, town, "staff"), clerk(session, town, "mayor")
    page = staff.get("/app/broadcasts/new")
    assert page.status_code == 200
    assert "Empfänger zählen" in page.text and 'name="body_en"' in page.text

    saved = staff.post("/app/broadcasts/new", form(), follow_redirects=False)
    assert saved.status_code == 303
    broadcast_id = new_id(saved.headers["location"])
    edit = staff.get(saved.headers["location"])
    assert "Der Entwurf ist gespeichert." in edit.text
    assert "Erika Mustermann" in edit.text, "the preview shows the text as a citizen would read it"
    assert "SMS-Teile" in edit.text and "SMS-Kosten" in edit.text

    submitted = staff.post(f"/app/broadcasts/{broadcast_id}/edit", form(action="submit"), follow_redirects=False)
    assert submitted.status_code == 303
    assert session.get(Broadcast, broadcast_id, populate_existing=True).status == "pending_approval"  # type: ignore[union-attr]

    assert staff.post(f"/app/broadcasts/{broadcast_id}/approve").status_code == 403
    assert "Warten auf Ihre Freigabe" not in staff.get("/app/broadcasts").text
    queue = mayor.get("/app/broadcasts")
    assert "Warten auf Ihre Freigabe (1)" in queue.text and "Straßenfest" in queue.text

    approved = mayor.post(f"/app/broadcasts/{broadcast_id}/approve", follow_redirects=False)
    assert approved.status_code == 303
    assert session.get(Broadcast, broadcast_id, populate_existing=True).status == "approved"  # type: ignore[union-attr]
    detail = mayor.get(f"/app/broadcasts/{broadcast_id}")
    assert "Freigegeben" in detail.text and "Eingereicht" in detail.text and "Entworfen" in detail.text


def test_a_viewer_cannot_open_the_composer_and_invalid_drafts_come_back_with_the_reason(session: Session) -> None:
    town = make_town(session)
    assert clerk(session, town, "viewer").get("/app/broadcasts/new").status_code == 403
    staff = clerk(session, town, "staff")
    answer = staff.post("/app/broadcasts/new", form(kind="survey", options="Nur eine"))
    assert answer.status_code == 422
    assert "2 bis 9 Antwortmöglichkeiten" in answer.text
    assert "Straßenfest" in answer.text, "what was typed stays in the form"
    assert session.exec(select(Broadcast)).first() is None


def test_the_mayor_sends_a_warning_at_once_but_staff_may_not(session: Session, started: list[int]) -> None:
    town = make_town(session)
    staff, mayor = clerk(session, town, "staff"), clerk(session, town, "mayor")
    saved = staff.post("/app/broadcasts/new", form(kind="warning", severity="Severe", title="Hochwasser"),
                       follow_redirects=False)  # fmt: skip
    broadcast_id = new_id(saved.headers["location"])
    assert staff.post(f"/app/broadcasts/{broadcast_id}/send-warning").status_code == 403
    assert "Warnung sofort senden" in mayor.get(f"/app/broadcasts/{broadcast_id}").text
    assert mayor.post(f"/app/broadcasts/{broadcast_id}/send-warning", follow_redirects=False).status_code == 303
    assert session.get(Broadcast, broadcast_id, populate_existing=True).status == "approved"  # type: ignore[union-attr]
    assert started == [broadcast_id]


def test_recipient_count_follows_the_targeting_with_and_without_script(session: Session) -> None:
    town = make_town(session)
    citizen(session, town, "+4915100000001", topics=("baustellen",))
    citizen(session, town, "+4915100000002", topics=("abfall",))
    citizen(session, town, "+4915100000003")  # no topic chosen: hears about everything
    citizen(session, town, "+4915100000004", state="stopped")
    staff = clerk(session, town, "staff")
    assert staff.get("/app/broadcasts/count").json()["recipients"] == 3
    building = topic_id(session, town, "baustellen")
    answer = staff.get(f"/app/broadcasts/count?topic_ids={building}&topic_match=any")
    assert answer.json() == {"recipients": 2, "text": "2 Empfängerinnen und Empfänger"}
    page = staff.post("/app/broadcasts/new", form(action="count", topic_ids=str(building)))
    assert page.status_code == 200
    assert "2 Empfängerinnen und Empfänger" in page.text
    assert session.exec(select(Broadcast)).first() is None, "counting saves nothing"
    english = staff.get("/app/broadcasts/new?lang=en").text
    assert "Count recipients" in english and "{{ name }} inserts the recipient" in english


def test_progress_json_report_failures_and_csv(session: Session) -> None:
    town = make_town(session)
    contacts = [citizen(session, town, f"+49151000000{n:02d}") for n in range(4)]
    mayor = clerk(session, town, "mayor")
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Wasser", status="sending",
                          texts={"de": {"body": "Wasser abgestellt"}}, recipient_count=4)  # fmt: skip
    session.add(broadcast)
    session.flush()
    assert broadcast.id is not None
    for contact_id, state in zip(contacts, ("delivered", "sent", "failed", "queued"), strict=True):
        session.add(Delivery(municipality_id=town.id, broadcast_id=broadcast.id, contact_id=contact_id,
                             channel_account_id=town.accounts["twilio"].id or 0, address=f"c{contact_id}", state=state,
                             error_code="21610" if state == "failed" else None))  # fmt: skip
    session.commit()
    progress = mayor.get(f"/app/broadcasts/{broadcast.id}/progress").json()
    assert progress | {"text": ""} == {
        "status": "sending", "recipients": 4, "sent": 2, "failed": 1, "queued": 1, "cancelled": 0, "done": 3,
        "finished": False, "selecting": False, "status_text": "Wird gesendet", "text": "",
    }  # fmt: skip
    assert progress["text"] == "2 gesendet, 1 fehlgeschlagen, 1 wartend von 4"
    detail = mayor.get(f"/app/broadcasts/{broadcast.id}")
    assert '<progress id="send-progress" max="4" value="3">' in detail.text
    assert "Nicht erreicht (1)" in detail.text and "21610" in detail.text
    assert "Anhalten" in detail.text
    csv = mayor.get(f"/app/broadcasts/{broadcast.id}/report.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.count("\n") == 5 and "failed" in csv.text


def test_survey_results_are_drawn_with_answers_and_numbers_in_text(session: Session) -> None:
    town = make_town(session)
    contacts = [citizen(session, town, f"+49151000000{n:02d}") for n in range(3)]
    viewer = clerk(session, town, "viewer")
    survey = Broadcast(municipality_id=town.id, kind="survey", title="Spielplatz", status="completed",
                       texts={"de": {"body": "Wo?"}}, options=["Am See", "Im Park"], recipient_count=3)  # fmt: skip
    session.add(survey)
    session.flush()
    assert survey.id is not None
    for contact_id, option in zip(contacts, (0, 1, 1), strict=True):
        session.add(SurveyAnswer(municipality_id=town.id, broadcast_id=survey.id, contact_id=contact_id,
                                 option_index=option, channel_kind="twilio"))  # fmt: skip
    session.commit()
    page = viewer.get(f"/app/broadcasts/{survey.id}").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "<title" in svg and "<desc" in svg
    assert "Am See" in svg and "Im Park" in svg
    assert "1 (33 %)" in svg and "2 (67 %)" in svg
    assert '<th scope="row">Im Park</th><td>2</td>' in page, "a data table beside the chart"


def test_bar_chart_escapes_labels_and_handles_no_answers() -> None:
    chart = bar_chart(
        bars=[("<b>Ja</b>", 0), ("Nein", 0)], title="T & T", description="d", format_value=count_with_share(0)
    )
    assert "&lt;b&gt;Ja&lt;/b&gt;" in chart and "T &amp; T" in chart
    assert chart.count(">0 (0 %)</text>") == 2


def test_another_municipality_sees_none_of_it(session: Session, started: list[int]) -> None:
    town, other = make_town(session), make_town(session, slug="nachbarort")
    staff = clerk(session, town, "staff")
    saved = staff.post("/app/broadcasts/new", form(title="Nur für Testdorf"), follow_redirects=False)
    broadcast_id = new_id(saved.headers["location"])
    neighbour = clerk(session, other, "mayor")
    assert "Nur für Testdorf" not in neighbour.get("/app/broadcasts").text
    for path in (f"/app/broadcasts/{broadcast_id}", f"/app/broadcasts/{broadcast_id}/edit",
                 f"/app/broadcasts/{broadcast_id}/progress", f"/app/broadcasts/{broadcast_id}/report.csv"):  # fmt: skip
        assert neighbour.get(path).status_code == 404, path
    assert neighbour.post(f"/app/broadcasts/{broadcast_id}/approve").status_code == 404
    assert neighbour.post(f"/app/broadcasts/{broadcast_id}/cancel").status_code == 404
    assert started == []


def test_every_broadcast_and_subscriber_page_declares_exactly_one_permission() -> None:
    routes = [*broadcast_pages.router.routes, *subscriber_pages.router.routes]
    assert len(routes) > 20
    for route in routes:
        assert isinstance(route, APIRoute)
        declared = [dep.call.permission for dep in route.dependant.dependencies if hasattr(dep.call, "permission")]
        assert len(declared) == 1, (route.path, route.methods, declared)


def test_schedule_is_entered_and_shown_in_the_municipality_time_zone(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    saved = staff.post("/app/broadcasts/new", form(send_at="2030-06-01T09:30"), follow_redirects=False)
    broadcast = session.get(Broadcast, new_id(saved.headers["location"]))
    assert broadcast is not None and broadcast.send_at is not None
    assert broadcast.send_at.isoformat() == "2030-06-01T07:30:00+00:00"  # Berlin is UTC+2 in summer
    assert 'value="2030-06-01T09:30"' in staff.get(saved.headers["location"]).text
    wrong = staff.post("/app/broadcasts/new", form(send_at="morgen früh"))
    assert wrong.status_code == 422 and "kein Datum mit Uhrzeit" in wrong.text
    english = staff.post("/app/broadcasts/new?lang=en", form(send_at="morgen früh"))
    assert english.status_code == 422
    assert "Sending time: &#39;morgen früh&#39; is not a date with a time." in english.text


def test_only_a_mayor_or_admin_pauses_resumes_or_stops_a_broadcast_on_its_way(
    session: Session, started: list[int]
) -> None:
    town = make_town(session)
    staff, mayor = clerk(session, town, "staff"), clerk(session, town, "mayor")
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Wasser", status="sending",
                          texts={"de": {"body": "Wasser abgestellt"}}, recipient_count=0)  # fmt: skip
    session.add(broadcast)
    session.commit()
    assert "Anhalten" not in staff.get(f"/app/broadcasts/{broadcast.id}").text
    assert staff.post(f"/app/broadcasts/{broadcast.id}/pause").status_code == 403
    assert staff.post(f"/app/broadcasts/{broadcast.id}/cancel").status_code == 403
    mayor.post(f"/app/broadcasts/{broadcast.id}/pause")
    session.refresh(broadcast)
    assert broadcast.status == "paused"
    assert "Fortsetzen" in mayor.get(f"/app/broadcasts/{broadcast.id}").text
    mayor.post(f"/app/broadcasts/{broadcast.id}/resume")
    session.refresh(broadcast)
    assert broadcast.status == "sending" and started == [broadcast.id]
    mayor.post(f"/app/broadcasts/{broadcast.id}/cancel")
    session.refresh(broadcast)
    assert broadcast.status == "cancelled"


def test_the_composer_groups_the_fields_of_each_kind_and_shows_them_all_without_script(session: Session) -> None:
    town = make_town(session)
    page = clerk(session, town, "staff").get("/app/broadcasts/new").text
    groups = dict(re.findall(r'<(?:fieldset|div) data-kinds="([a-z_ ]+)">\s*(?:<legend>([^<]+)</legend>)?', page))
    assert groups == {
        "warning all_clear": "Nur Warnung und Entwarnung", "all_clear": "",
        "survey invitation": "Antworten (nur Umfrage und Einladung)", "invitation": "Veranstaltung (nur Einladung)",
    }  # fmt: skip
    # Served without script, every field is there and none is hidden; the script hides the other kinds' groups.
    for field in ('name="severity"', 'name="follows_id"', 'name="options"', 'name="closes_at"', 'name="event_when"'):
        assert field in page
    assert " hidden" not in page.split('id="composer"')[1].split("</form>")[0]


def test_progress_says_recipients_are_being_chosen_and_the_report_lists_states_by_channel(session: Session) -> None:
    town = make_town(session)
    mayor = clerk(session, town, "mayor")
    broadcast = Broadcast(municipality_id=town.id, kind="announcement", title="Wasser", status="sending",
                          texts={"de": {"body": "Wasser abgestellt"}})  # fmt: skip
    session.add(broadcast)
    session.commit()
    progress = mayor.get(f"/app/broadcasts/{broadcast.id}/progress").json()
    assert progress["selecting"] and progress["text"] == "Empfänger werden ausgewählt …"
    detail = mayor.get(f"/app/broadcasts/{broadcast.id}").text
    assert "0 gesendet" not in detail and "Empfänger werden ausgewählt …" in detail
    assert '<progress id="send-progress">' in detail  # no value: busy, not "0 of 0"

    broadcast.recipient_count = 2
    for number, (kind, state) in enumerate((("twilio", "delivered"), ("email", "failed"))):
        contact = citizen(session, town, f"+491510000009{number}")
        account = town.accounts[kind].id or 0
        session.add(Delivery(municipality_id=town.id, broadcast_id=broadcast.id or 0, contact_id=contact,
                             channel_account_id=account, address=f"{kind}-address", state=state))  # fmt: skip
    session.commit()
    assert mayor.get(f"/app/broadcasts/{broadcast.id}/progress").json()["text"].startswith("1 gesendet")
    table = mayor.get(f"/app/broadcasts/{broadcast.id}").text.split('class="report"')[1].split("</table>")[0]
    head = re.findall(r'<th scope="col">([^<]+)</th>', table)
    rows = re.findall(r'<th scope="row">([^<]+)</th>', table)
    # Channels across (as staff call them), only the states that occurred down: it fits a phone's width.
    assert head == ["Zustand", "E-Mail", "SMS", "Zusammen"] and rows == ["zugestellt", "fehlgeschlagen"]
