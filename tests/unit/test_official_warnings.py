"""Official warnings relayed on SQLite and PostgreSQL, polled from the sandbox's federal warning API through the real
client: new, update, cancel, outside the town, ignored, replayed and concurrent polls, and an API that fails; and every
warning sent published as CAP 1.2 (checked against the official schema) and in the town's Atom feed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import xmlschema
from defusedxml import ElementTree as SafeElementTree
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from channels.warning_api import WarningApiClient
from hub import db
from hub import settings as settings_module
from hub.app import create_app
from hub.audit.models import AuditEvent
from hub.broadcasts import service as broadcasts
from hub.broadcasts.models import Broadcast
from hub.demo import seed_demo
from hub.errors import Conflict, Forbidden, InvalidInput
from hub.official_warnings import relay as relay_module
from hub.official_warnings.demo import publish_demo_warnings
from hub.official_warnings.models import OfficialWarning, WarningRelay
from hub.official_warnings.relay import ADVICE_CHARS, PollResult, configure, poll
from hub.problems.demo import DEMO_SHAPES, seed_problem_demo
from hub.settings import Settings
from hub.subscribers.catalogue import find_district, find_topic
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality
from tests.unit.db import Town, make_town
from tests.unit.test_broadcasts import citizen, send_all, start
from tests.unit.web import Clerk, api_client, sign_in, staff_user

TOWN = "169990001001"
NEIGHBOUR = "169990002002"
LONG_ADVICE = "Halten Sie Fenster und Türen geschlossen und schalten Sie Lüftungen ab. " * 8


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@dataclass
class Relay:
    session: Session
    settings: Settings
    town: Town
    control: SandboxClient
    api: WarningApiClient

    def poll(self) -> PollResult:
        return poll(municipality_id=self.town.id, client=self.api, settings=self.settings)

    def broadcasts(self) -> list[Broadcast]:
        self.session.expire_all()
        query = select(Broadcast).where(Broadcast.municipality_id == self.town.id).order_by(col(Broadcast.id))
        return list(self.session.exec(query).all())

    def rows(self) -> list[OfficialWarning]:
        self.session.expire_all()
        query = select(OfficialWarning).where(OfficialWarning.municipality_id == self.town.id)
        return list(self.session.exec(query.order_by(col(OfficialWarning.id))).all())


@pytest.fixture
def relay(backend_settings: Settings, sandbox: SandboxServer) -> Iterator[Relay]:
    control = SandboxClient(sandbox.url)
    api = WarningApiClient(f"{sandbox.url}/api31")
    with Session(db.get_engine(), expire_on_commit=False) as session:
        town = make_town(session)
        seed_problem_demo(session, town.id)
        admin = staff_user(session, town, "admin")
        configure(session, actor=admin, ars=TOWN, default_action="draft",
                  actions={"MOWAS": {"Extreme": "send", "Severe": "send"}, "DWD": {"Minor": "ignore"}})  # fmt: skip
        session.commit()
        yield Relay(session, backend_settings, town, control, api)
    control.set_warning_fault(None)
    api.close()
    control.close()


def test_settings_are_checked(relay: Relay) -> None:
    assert relay.session.exec(select(WarningRelay)).one().ars == TOWN
    staff = staff_user(relay.session, relay.town, "mayor")
    with pytest.raises(Forbidden):
        configure(relay.session, actor=staff, ars=TOWN, actions={})
    owner = staff_user(relay.session, relay.town, "admin", email="zweite@testdorf.example")
    with pytest.raises(InvalidInput, match="12 Ziffern"):
        configure(relay.session, actor=owner, ars="0916", actions={})
    with pytest.raises(InvalidInput, match="Warnquelle"):
        configure(relay.session, actor=owner, ars=TOWN, actions={"NINA": {"Severe": "send"}})
    with pytest.raises(InvalidInput, match="Aktion"):
        configure(relay.session, actor=owner, ars=TOWN, actions={"DWD": {"Severe": "shout"}})


def test_a_warning_is_sent_updated_and_cleared(relay: Relay) -> None:
    mitte = DEMO_SHAPES["mitte"]
    published = relay.control.publish_warning(
        headline="Großbrand in einer Lagerhalle", region_keys=[TOWN], severity="Severe", instruction=LONG_ADVICE,
        description="Starke Rauchentwicklung.", area="Musterstadt Mitte", geometry=mitte,
    )  # fmt: skip
    result = relay.poll()
    [warning] = relay.broadcasts()
    assert result.to_start == [warning.id] and result.failed == []
    assert (warning.kind, warning.status, warning.severity) == ("warning", "approved", "Severe")
    assert warning.title == "Großbrand in einer Lagerhalle"
    body = warning.texts["de"]["body"]
    row = relay.rows()[0]
    assert f"/public/testdorf/amtliche-warnungen/{row.id}" in body
    assert len(body) < ADVICE_CHARS + 200 and "…" in body
    topic = find_topic(relay.session, municipality_id=relay.town.id, word="warnungen")
    district = find_district(relay.session, municipality_id=relay.town.id, word="mitte")
    assert topic is not None and district is not None
    assert warning.topic_ids == [topic.id] and warning.district_ids == [district.id]

    relay.control.update_warning(published["id"], severity="Extreme", instruction="Gebiet weiträumig meiden.")
    relay.poll()
    update = relay.broadcasts()[1]
    assert (update.kind, update.severity, update.status) == ("warning", "Extreme", "approved")
    assert update.texts["de"]["body"].startswith("Aktualisiert: Gebiet weiträumig meiden.")

    relay.control.cancel_warning(published["id"])
    relay.poll()
    clear = relay.broadcasts()[2]
    assert (clear.kind, clear.follows_id, clear.status) == ("all_clear", update.id, "approved")
    assert "ist aufgehoben" in clear.texts["de"]["body"]
    assert [(row.version, row.msg_type, row.outcome) for row in relay.rows()] == [
        (1, "Alert", "sent"), (2, "Update", "sent"), (3, "Cancel", "sent"),
    ]  # fmt: skip

    with TestClient(create_app()) as client:
        page = client.get(f"/public/testdorf/amtliche-warnungen/{row.id}")
        assert page.status_code == 200 and "Starke Rauchentwicklung." in page.text
        assert client.get("/public/testdorf/amtliche-warnungen/999999").status_code == 404


def withdrawals(relay: Relay) -> list[tuple[int | None, dict[str, Any]]]:
    query = select(AuditEvent).where(AuditEvent.action == "broadcast.withdrawn").order_by(col(AuditEvent.id))
    return [(event.object_id, event.details) for event in relay.session.exec(query).all()]


def test_a_cancellation_withdraws_the_draft_nobody_received_instead_of_clearing(relay: Relay) -> None:
    published = relay.control.publish_warning(headline="Hochwasser an der Ilm", region_keys=[TOWN], provider="LHP",
                                              severity="Moderate")  # fmt: skip
    relay.poll()
    relay.control.cancel_warning(published["id"])
    result = relay.poll()
    [draft] = relay.broadcasts()
    assert result.to_start == [] and draft.status == "cancelled"
    assert [(row.msg_type, row.outcome) for row in relay.rows()] == [("Alert", "drafted"), ("Cancel", "withdrawn")]
    assert withdrawals(relay) == [(draft.id, {"source": f"{published['id']} v2", "reason": "Cancel"})]
    mayor = staff_user(relay.session, relay.town, "mayor")
    with pytest.raises(Conflict):
        broadcasts.approve(relay.session, actor=mayor, broadcast_id=draft.id or 0)


def test_an_update_replaces_the_draft_nobody_received(relay: Relay) -> None:
    published = relay.control.publish_warning(headline="Hochwasser an der Ilm", region_keys=[TOWN], provider="LHP",
                                              severity="Moderate", instruction="Keller räumen.")  # fmt: skip
    relay.poll()
    relay.control.update_warning(published["id"], instruction="Ufer meiden.")
    relay.poll()
    first, replacement = relay.broadcasts()
    assert (first.status, replacement.status) == ("cancelled", "pending_approval")
    # Nobody had the first: the replacement is worded as a new warning, not as an update of it.
    assert replacement.texts["de"]["body"].startswith("Ufer meiden.")
    assert withdrawals(relay) == [(first.id, {"source": f"{published['id']} v2", "reason": "Update"})]
    relay.control.cancel_warning(published["id"])
    relay.poll()
    assert [b.status for b in relay.broadcasts()] == ["cancelled", "cancelled"]
    assert [row.outcome for row in relay.rows()] == ["drafted", "drafted", "withdrawn"]


def test_a_pending_update_of_a_warning_that_went_out_is_withdrawn_and_the_warning_cleared(relay: Relay) -> None:
    published = relay.control.publish_warning(headline="Großbrand", region_keys=[TOWN], severity="Severe")
    relay.poll()
    relay.control.update_warning(published["id"], severity="Moderate")  # the town drafts moderate ones
    relay.poll()
    relay.control.cancel_warning(published["id"])
    relay.poll()
    sent, update, clear = relay.broadcasts()
    assert (sent.status, update.status) == ("approved", "cancelled")
    assert (clear.kind, clear.follows_id, clear.status) == ("all_clear", sent.id, "approved")
    assert [object_id for object_id, _ in withdrawals(relay)] == [update.id]


def test_the_town_chooses_per_source_and_severity_and_other_places_are_left_out(relay: Relay) -> None:
    relay.control.publish_warning(headline="Hochwasser an der Ilm", region_keys=[TOWN], provider="LHP",
                                  severity="Moderate")  # fmt: skip
    relay.control.publish_warning(headline="Glätte", region_keys=["160000000000"], provider="DWD", severity="Minor")
    relay.control.publish_warning(headline="Bombenfund in Nachbarstadt", region_keys=[NEIGHBOUR], provider="POLICE")
    relay.control.publish_warning(headline="Gefahrstoff im Osten", region_keys=[TOWN], geometry={
        "type": "Polygon", "coordinates": [[[10.5, 51.5], [10.6, 51.5], [10.6, 51.6], [10.5, 51.5]]]})  # fmt: skip
    result = relay.poll()
    assert result.taken == 4 and result.to_start == []
    outcomes = {row.headline: row.outcome for row in relay.rows()}
    assert outcomes == {"Hochwasser an der Ilm": "drafted", "Glätte": "ignored",
                        "Bombenfund in Nachbarstadt": "outside", "Gefahrstoff im Osten": "outside"}  # fmt: skip
    [draft] = relay.broadcasts()
    assert (draft.title, draft.status) == ("Hochwasser an der Ilm", "pending_approval")
    outside = next(row for row in relay.rows() if row.outcome == "outside")
    with TestClient(create_app()) as client:
        assert client.get(f"/public/testdorf/amtliche-warnungen/{outside.id}").status_code == 404


def test_a_warning_is_taken_once_by_repeated_and_concurrent_polls(relay: Relay) -> None:
    relay.control.publish_warning(headline="Stromausfall", region_keys=[TOWN], severity="Extreme")
    results: list[PollResult] = []
    threads = [threading.Thread(target=lambda: results.append(relay.poll())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.taken for result in results) == 1
    assert relay.poll().not_modified
    relay.session.exec(select(WarningRelay)).one().etag = None  # as after a restart that lost the validators
    relay.session.commit()
    assert relay.poll().taken == 0
    assert len(relay.broadcasts()) == 1 and len(relay.rows()) == 1


def test_the_claim_holds_when_two_polls_read_the_dashboard_before_either_wrote(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay.control.publish_warning(headline="Trinkwasser abkochen", region_keys=[TOWN], severity="Severe")
    monkeypatch.setattr(relay_module, "_seen", lambda *_: set())
    assert relay.poll().taken == 1
    relay.session.exec(select(WarningRelay)).one().etag = None
    relay.session.commit()
    second = relay.poll()
    assert second.taken == 0 and second.failed == []
    assert len(relay.broadcasts()) == 1 and len(relay.rows()) == 1


def test_failing_and_half_answers_are_retried_and_never_half_applied(relay: Relay) -> None:
    relay.control.publish_warning(headline="Sturmböen", region_keys=[TOWN], provider="DWD", severity="Severe")
    relay.control.set_warning_fault("error")
    failed = relay.poll()
    assert failed.taken == 0 and "503" in failed.failed[0]
    relay.control.set_warning_fault("partial")
    half = relay.poll()
    assert half.taken == 0 and "info" in half.failed[0]
    stored = relay.session.exec(select(WarningRelay)).one()
    relay.session.refresh(stored)
    assert stored.etag is None and stored.last_error
    assert relay.rows() == [] and relay.broadcasts() == []
    relay.control.set_warning_fault(None)
    recovered = relay.poll()
    assert recovered.taken == 1 and recovered.failed == []
    relay.session.refresh(stored)
    assert stored.etag and stored.last_error is None
    assert [broadcast.status for broadcast in relay.broadcasts()] == ["pending_approval"]


def test_beat_polls_every_relaying_town_and_starts_what_is_sent(
    relay: Relay, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    monkeypatch.setenv("RATHAUS_WARNING_API_URL", f"{sandbox.url}/api31")
    settings_module.get_settings.cache_clear()
    started: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_broadcast_start", lambda broadcast_id, *, urgent: started.append(broadcast_id))
    relay.control.publish_warning(headline="Unwetter mit Orkanböen", region_keys=[TOWN], severity="Extreme")
    assert tasks.poll_official_warnings() == {"towns": 1, "taken": 1, "started": 1, "failed": 0}
    assert started == [relay.broadcasts()[0].id]


CAP_SCHEMA = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "fixtures" / "CAP-v1.2.xsd"))
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"


def valid_cap(document: bytes) -> Any:
    """The alert parsed without entities or DTDs, after the official CAP 1.2 schema accepted it."""
    tree = SafeElementTree.fromstring(document)
    CAP_SCHEMA.validate(tree)
    return tree


def test_every_warning_sent_is_published_as_cap_and_in_the_feed(relay: Relay) -> None:
    published = relay.control.publish_warning(
        headline="Großbrand in einer Lagerhalle", region_keys=[TOWN], severity="Severe", status="Exercise",
        instruction="Fenster schließen.", description="Rauch.", geometry=DEMO_SHAPES["mitte"],
    )  # fmt: skip
    relay.poll()
    relay.control.update_warning(published["id"], severity="Extreme")
    relay.poll()
    relay.control.cancel_warning(published["id"])
    relay.poll()
    mayor = staff_user(relay.session, relay.town, "mayor")
    own = broadcasts.create(relay.session, author=mayor, draft=broadcasts.Draft(
        kind="warning", title="Wasserrohrbruch", texts={"de": {"body": "Kein Trinkwasser bis 18 Uhr."}},
        severity="Moderate"))  # fmt: skip
    assert own.id is not None
    broadcasts.approve(relay.session, actor=mayor, broadcast_id=own.id)
    waiting = broadcasts.create(relay.session, author=mayor, draft=broadcasts.Draft(
        kind="warning", title="Noch nicht gesendet", texts={"de": {"body": "Entwurf"}}, severity="Minor"))  # fmt: skip
    relay.session.commit()
    alert, update, clear, _ = relay.broadcasts()[:4]

    with TestClient(create_app()) as client:
        documents = {}
        for broadcast in (alert, update, clear, own):
            answer = client.get(f"/public/testdorf/cap/{broadcast.id}.xml")
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/cap+xml"
            documents[broadcast.id] = valid_cap(answer.content)
        assert client.get(f"/public/testdorf/cap/{waiting.id}.xml").status_code == 404
        feed = SafeElementTree.fromstring(client.get("/public/testdorf/cap.atom").content)

    first, second, third, mine = (documents[b.id] for b in (alert, update, clear, own))
    assert [doc.findtext(f"{CAP}msgType") for doc in (first, second, third, mine)] == [
        "Alert", "Update", "Cancel", "Alert"]  # fmt: skip
    assert first.findtext(f"{CAP}status") == "Exercise" and mine.findtext(f"{CAP}status") == "Actual"
    references = third.findtext(f"{CAP}references").split()
    assert [triple.split(",")[1] for triple in references] == [f"testdorf-{alert.id}", f"testdorf-{update.id}"]
    assert second.findtext(f"{CAP}references").split(",")[1:] == [
        f"testdorf-{alert.id}", first.findtext(f"{CAP}sent")]  # fmt: skip
    info = first.find(f"{CAP}info")
    assert (info.findtext(f"{CAP}severity"), info.findtext(f"{CAP}instruction")) == ("Severe", "Fenster schließen.")
    [area] = info.findall(f"{CAP}area")
    assert area.findtext(f"{CAP}areaDesc") == "Gemeinde Testdorf, Mitte"
    polygon = area.findtext(f"{CAP}polygon").split()
    assert polygon[0] == polygon[-1] == "51.010000,10.000000" and len(polygon) == 5
    assert area.find(f"{CAP}geocode").findtext(f"{CAP}value") == TOWN
    assert third.find(f"{CAP}info").findtext(f"{CAP}responseType") == "AllClear"
    whole_town = mine.find(f"{CAP}info").findall(f"{CAP}area")
    assert [len(area.findall(f"{CAP}polygon")) for area in whole_town] == [1, 1, 1, 1]

    entries = feed.findall(f"{ATOM}entry")
    links = [entry.find(f"{ATOM}link").get("href") for entry in entries]
    base = relay.settings.public_url
    assert links == [f"{base}/public/testdorf/cap/{b.id}.xml" for b in (own, clear, update, alert)]
    assert feed.findtext(f"{ATOM}title") == "Warnungen: Gemeinde Testdorf"


def test_the_public_pages_give_times_in_the_towns_time_zone(relay: Relay) -> None:
    town = relay.session.get(Municipality, relay.town.id)
    assert town is not None
    town.timezone = "Asia/Tokyo"  # +09:00 all year: never mistaken for UTC or for Berlin's time
    relay.session.commit()
    relay.control.publish_warning(headline="Stromausfall", region_keys=[TOWN], severity="Severe")
    relay.poll()
    [row], [warning] = relay.rows(), relay.broadcasts()
    local = row.sent.astimezone(ZoneInfo("Asia/Tokyo"))
    with TestClient(create_app()) as client:
        page = client.get(f"/public/testdorf/amtliche-warnungen/{row.id}").text
        feed = SafeElementTree.fromstring(client.get("/public/testdorf/cap.atom").content)
        alert = valid_cap(client.get(f"/public/testdorf/cap/{warning.id}.xml").content)
    assert f"{local:%d.%m.%Y %H:%M} Uhr" in page and "UTC" not in page
    assert f'datetime="{local.replace(microsecond=0).isoformat()}"' in page
    [entry] = feed.findall(f"{ATOM}entry")
    for shown in (feed.findtext(f"{ATOM}updated"), entry.findtext(f"{ATOM}updated"), alert.findtext(f"{CAP}sent")):
        assert shown.endswith("+09:00")
        assert datetime.fromisoformat(shown) == warning.approved_at.replace(microsecond=0)


def test_the_demo_relays_what_the_emulated_api_publishes(settings: Settings, sandbox: SandboxServer) -> None:
    with Session(db.get_engine(), expire_on_commit=False) as session, SandboxClient(sandbox.url) as control:
        seeded = seed_demo(session, settings)
        session.commit()
        publish_demo_warnings(control)
        api = WarningApiClient(f"{sandbox.url}/api31")
        result = poll(municipality_id=seeded.municipality_id, client=api, settings=settings)
        api.close()
        rows = session.exec(select(OfficialWarning).order_by(col(OfficialWarning.id))).all()
        assert [(row.provider, row.outcome) for row in rows] == [
            ("MOWAS", "sent"), ("LHP", "drafted"), ("DWD", "ignored"), ("POLICE", "outside")]  # fmt: skip
        assert len(result.to_start) == 1
        with TestClient(create_app()) as client:
            feed = SafeElementTree.fromstring(client.get("/public/musterstadt/cap.atom").content)
        [entry] = feed.findall(f"{ATOM}entry")
        assert entry.findtext(f"{ATOM}title") == "Großbrand in einem Gewerbebetrieb in Musterstadt-Mitte"


def test_admins_set_the_relay_through_the_api(relay: Relay) -> None:
    admin = staff_user(relay.session, relay.town, "admin", email="it@testdorf.example")
    token = tenancy.create_api_token(relay.session, user=admin, name="test")
    relay.session.commit()
    relay.control.publish_warning(headline="Stromausfall", region_keys=[TOWN])
    relay.poll()
    with TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}) as client:
        wanted = {"ars": TOWN, "actions": {"LHP": {"Severe": "send"}}, "default_action": "ignore"}
        answer = client.put("/api/v1/official-warnings/settings", json=wanted)
        assert answer.status_code == 200, answer.text
        assert answer.json()["actions"] == {"LHP": {"Severe": "send"}} and answer.json()["polled_at"]
        refused = client.put("/api/v1/official-warnings/settings", json={"ars": "12345", "actions": {}})
        assert refused.status_code == 422 and "12 Ziffern" in refused.json()["detail"]
        [seen] = client.get("/api/v1/official-warnings").json()
        assert (seen["headline"], seen["outcome"]) == ("Stromausfall", "sent")
    with api_client(relay.session, relay.town) as staff:
        assert staff.put("/api/v1/official-warnings/settings", json={"ars": TOWN}).status_code == 403


def selected(page: str, name: str) -> str | None:
    """The value chosen in the page's select `name`, None if it shows no choice."""
    select_element = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select_element is not None, f"no select {name}"
    chosen = re.search(r'<option value="([^"]*)" selected>', select_element.group(1))
    return chosen.group(1) if chosen else None


def test_admins_set_the_relay_on_its_page_and_see_what_became_of_each_warning(relay: Relay) -> None:
    flood = relay.control.publish_warning(headline="Hochwasser an der Ilm", region_keys=[TOWN], provider="LHP",
                                          severity="Moderate")  # fmt: skip
    relay.control.publish_warning(headline="Großbrand in der Hauptstraße", region_keys=[TOWN], severity="Severe")
    relay.poll()
    relay.control.cancel_warning(flood["id"])
    relay.poll()
    relay.control.set_warning_fault("error")
    relay.poll()
    fire = next(b for b in relay.broadcasts() if b.status == "approved")
    user = staff_user(relay.session, relay.town, "admin", email="relais@testdorf.example")
    admin = Clerk(user=user, client=TestClient(create_app()))
    assert sign_in(admin.client, user.email).status_code == 303

    page = admin.get("/app/admin/official-warnings")
    assert page.status_code == 200 and f'value="{TOWN}"' in page.text
    assert selected(page.text, "action-MOWAS-Extreme") == "send" and selected(page.text, "action-LHP-Severe") is None
    assert selected(page.text, "default_action") == "draft"
    assert "503" in page.text  # the last poll's error
    assert "Entwurf zurückgezogen, keine Entwarnung nötig" in page.text and "Sofort gesendet" in page.text
    assert f'<a href="/app/broadcasts/{fire.id}">Nr. {fire.id}</a>: Freigegeben' in page.text
    assert "/public/testdorf/amtliche-warnungen/" in page.text

    chosen = {"ars": NEIGHBOUR, "default_action": "ignore", "action-LHP-Severe": "send", "action-MOWAS-Extreme": ""}
    saved = admin.post("/app/admin/official-warnings", chosen)
    assert saved.status_code == 200 and "wurden gespeichert" in saved.text
    assert selected(saved.text, "action-LHP-Severe") == "send" and selected(saved.text, "default_action") == "ignore"
    stored = relay.session.exec(select(WarningRelay)).one()
    relay.session.refresh(stored)
    assert (stored.ars, stored.actions, stored.default_action) == (NEIGHBOUR, {"LHP": {"Severe": "send"}}, "ignore")

    for wrong, said in (({"ars": "0916"}, "12 Ziffern"), ({"ars": TOWN, "action-DWD-Minor": "laut"}, "Aktion")):
        refused = admin.post("/app/admin/official-warnings", {"default_action": "draft", **wrong})
        assert refused.status_code == 422 and said in refused.text
        assert f'value="{wrong["ars"]}"' in refused.text  # what was typed stays in the form
    relay.session.refresh(stored)
    assert stored.ars == NEIGHBOUR


def test_a_relayed_warning_reaches_the_warning_subscribers_of_the_districts_it_touches(
    relay: Relay, sandbox: SandboxServer
) -> None:
    sms = relay.town.accounts["twilio"]
    sms.config = {**sms.config, "api_base_url": sandbox.url}
    relay.session.add(sms)
    relay.session.commit()
    relay.control.register_account(kind="twilio", config=sms.config, secrets=sms.secrets, webhook_url=None)
    numbers = {"mitte": "+4915100000001", "nord": "+4915100000002", "abfall": "+4915100000003"}
    citizen(relay.session, relay.town, numbers["mitte"], topics=["warnungen"], districts=["mitte"])  # type: ignore[arg-type]
    citizen(relay.session, relay.town, numbers["nord"], topics=["warnungen"], districts=["nord"])  # type: ignore[arg-type]
    citizen(relay.session, relay.town, numbers["abfall"], topics=["abfall"], districts=["mitte"])  # type: ignore[arg-type]
    relay.control.publish_warning(headline="Großbrand in der Hauptstraße", region_keys=[TOWN], severity="Severe",
                                  instruction="Fenster schließen.", geometry=DEMO_SHAPES["mitte"])  # fmt: skip
    [broadcast_id] = relay.poll().to_start
    broadcast = relay.session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    start(relay.session, broadcast)  # as the worker's start_broadcast does
    send_all(relay.settings, broadcast_id)
    [received] = relay.control.outbox(kind="twilio")
    assert received["to"] == numbers["mitte"]
    assert received["text"].startswith("WARNUNG (schwer): Großbrand in der Hauptstraße\nFenster schließen.")
    assert "/public/testdorf/amtliche-warnungen/" in received["text"]
