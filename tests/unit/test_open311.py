"""Open311 GeoReport v2: the spec's examples, and a small client written from the spec, against the town's endpoint.

Both backends; the sandbox's geocoder finds the demo addresses. XML answers are read with
defusedxml, as any XML from outside is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from click.testing import CliRunner
from defusedxml import ElementTree
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from channels.sandbox.server import SandboxServer
from hub import db
from hub.app import create_app
from hub.cli import main
from hub.contacts.models import ContactIdentity
from hub.demo import seed_demo
from hub.inbox.models import Conversation, Message
from hub.inbox.service import update_conversation
from hub.open311.demo import DEMO_OPEN311_KEY
from hub.problems import service as problems
from hub.problems.models import ProblemReport
from hub.settings import Settings, get_settings
from hub.tenancy.models import Team
from hub.tenancy.service import create_api_token
from tests.unit.db import Town, make_problem_town
from tests.unit.web import staff_user

MITTE = (51.0150, 10.0150)
OUTSIDE = (51.1000, 10.1000)
ENDPOINT = "/open311/v2/testdorf"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@dataclass
class Endpoint:
    session: Session
    settings: Settings
    town: Town
    http: TestClient
    api_key: str

    def count(self, table: type[Any]) -> int:
        self.session.expire_all()
        return int(self.session.exec(select(func.count()).select_from(table)).one())


@pytest.fixture
def endpoint(backend_settings: Settings, sandbox: SandboxServer) -> Iterator[Endpoint]:
    settings = backend_settings.model_copy(update={"geocoder_url": f"{sandbox.url}/nominatim"})
    with Session(db.get_engine(), expire_on_commit=False) as session:
        town = make_problem_town(session)
        app = create_app()
        app.dependency_overrides[get_settings] = lambda: settings
        admin = staff_user(session, town, "admin")
        http = TestClient(app, raise_server_exceptions=False)
        token = create_api_token(session, user=admin, name="test")
        session.commit()
        issued = http.post("/api/v1/open311/clients", json={"name": "Stadt-App"},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert issued.status_code == 201, issued.text
        yield Endpoint(session, settings, town, http, issued.json()["api_key"])


# --- a client written from the GeoReport v2 specification ------------------------------------------


class GeoReportClient:
    """What an app does with the spec in hand: discovery for the endpoint, then services and requests.

    Every answer is read in the format asked for: XML by its elements (lists are elements of
    items), JSON as the list or object it is.
    """

    def __init__(self, http: TestClient, discovery_url: str, fmt: str) -> None:
        self.http, self.fmt = http, fmt
        discovery = self._read(self.http.get(f"{discovery_url}.{fmt}"), expect=200)
        [endpoint] = [item for item in discovery["endpoints"] if item["type"] == "production"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert {"text/xml", "application/json"} <= set(endpoint["formats"])
        self.base = urlsplit(endpoint["url"]).path

    def _read(self, answer: Any, *, expect: int) -> Any:
        assert answer.status_code == expect, answer.text
        if self.fmt == "json":
            assert answer.headers["content-type"].startswith("application/json")
            return answer.json()
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.content.startswith(b"<?xml")
        return _element(ElementTree.fromstring(answer.content))

    def services(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._read(self.http.get(f"{self.base}/services.{self.fmt}"), expect=200)
        return found

    def create(self, expect: int = 201, **fields: str) -> Any:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self._read(
            self.http.post(f"{self.base}/requests.{self.fmt}", content=body, headers=headers), expect=expect
        )

    def requests(self, expect: int = 200, **params: str) -> Any:
        return self._read(self.http.get(f"{self.base}/requests.{self.fmt}", params=params), expect=expect)

    def request(self, request_id: str, expect: int = 200) -> Any:
        return self._read(self.http.get(f"{self.base}/requests/{request_id}.{self.fmt}"), expect=expect)


LISTS = {"services", "service_requests", "errors", "endpoints", "formats", "attributes"}


def _element(element: Any) -> Any:
    """An XML answer as the JSON the spec maps it to: list elements become lists, leaves text (empty: None)."""
    children = list(element)
    if element.tag in LISTS:
        return [_element(child) for child in children]
    if not children:
        text = element.text
        return {"true": True, "false": False}.get(text, text) if text is not None else None
    return {child.tag: _element(child) for child in children}


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_a_client_from_the_spec_lists_services_files_a_request_and_follows_it(endpoint: Endpoint, fmt: str) -> None:
    client = GeoReportClient(endpoint.http, f"{ENDPOINT}/discovery", fmt)

    services = client.services()
    lamp = next(item for item in services if item["service_code"] == "laterne")
    assert lamp == {
        "service_code": "laterne", "service_name": "Straßenbeleuchtung", "description": "Straßenbeleuchtung",
        "metadata": False, "type": "realtime", "keywords": "laterne, Mängelmelder, Beleuchtung", "group": "Bauhof",
    }  # fmt: skip

    [created] = client.create(
        api_key=endpoint.api_key, service_code="laterne", lat=str(MITTE[0]), long=str(MITTE[1]),
        description="Die Laterne vor Hausnummer 12 ist dunkel.", email="erika@example.org", first_name="Erika",
        last_name="Mustermann",
    )  # fmt: skip
    reference = created["service_request_id"]
    assert "token" not in created and reference in created["service_notice"]

    [one] = client.request(reference)
    assert one["status"] == "open" and one["service_code"] == "laterne" and one["service_name"] == "Straßenbeleuchtung"
    assert float(one["lat"]) == MITTE[0] and float(one["long"]) == MITTE[1]
    assert one["address"] == "12, Hauptstraße, Mitte, Musterstadt, 99999, Deutschland"
    assert one["agency_responsible"] == "Bauhof"
    assert datetime.fromisoformat(one["requested_datetime"]).tzinfo is not None
    assert [item["service_request_id"] for item in client.requests(status="open")] == [reference]
    assert client.requests(status="closed") == []
    assert client.requests(service_code="schlagloch,muell") == []

    # Staff mark the public status and resolve it: the client sees it closed, with the notes.
    report = endpoint.session.exec(select(ProblemReport)).one()
    problems.set_public_status(endpoint.session, municipality_id=endpoint.town.id, report_id=report.id or 0,
                               text="Erledigt am 8. Dezember")  # fmt: skip
    update_conversation(endpoint.session, municipality_id=endpoint.town.id, conversation_id=report.conversation_id,
                        status="resolved")  # fmt: skip
    endpoint.session.commit()
    [closed] = client.requests(service_request_id=reference)
    assert closed["status"] == "closed" and closed["status_notes"] == "Erledigt am 8. Dezember"
    assert closed["updated_datetime"] >= closed["requested_datetime"]

    answer = endpoint.http.get(f"{ENDPOINT}/requests.{fmt}")
    for personal in ("Erika", "Mustermann", "erika@", "Hausnummer 12 ist dunkel"):
        assert personal not in answer.text


def test_the_request_becomes_a_report_on_a_conversation_of_the_reporter_filed_to_the_categorys_team(
    endpoint: Endpoint,
) -> None:
    client = GeoReportClient(endpoint.http, f"{ENDPOINT}/discovery", "json")
    [created] = client.create(api_key=endpoint.api_key, service_code="schlagloch", address_string="Lindenweg 7",
                              email="Erika@Example.org", description="Tiefes Loch")  # fmt: skip

    conversation = endpoint.session.exec(select(Conversation)).one()
    assert conversation.reference == created["service_request_id"]
    assert conversation.team_id == endpoint.session.exec(select(Team).where(Team.name == "Bauhof")).one().id
    identity = endpoint.session.exec(select(ContactIdentity)).one()
    assert (identity.kind, identity.address) == ("email", "erika@example.org")
    [message] = endpoint.session.exec(select(Message).where(Message.conversation_id == conversation.id)).all()
    assert message.body == "Tiefes Loch" and message.direction == "inbound"
    report = endpoint.session.exec(select(ProblemReport)).one()
    assert report.lat is not None and report.category_id is not None


def test_the_specs_example_post_and_its_xml_answer(endpoint: Endpoint) -> None:
    """The spec's example request, with this town's service code and place; the answer has the example's shape."""
    example = (
        f"api_key={endpoint.api_key}&jurisdiction_id=testdorf&service_code=laterne&lat={MITTE[0]}&long={MITTE[1]}"
        "&address_string=1234+5th+street&email=smit333%40sfgov.edu&device_id=tt222111&account_id=123456"
        "&first_name=john&last_name=smith&phone=111111111&description=A+large+sinkhole+is+destroying+the+street"
        "&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg"
        "&attribute[WHISPAWN]=123456&attribute[WHISDORN]=COISL001"
    )
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    answer = endpoint.http.post(f"{ENDPOINT}/requests.xml", content=example.encode(), headers=form)
    assert answer.status_code == 201, answer.text
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "service_requests"
    [request] = list(root)
    assert request.tag == "request"
    assert [child.tag for child in request] == ["service_request_id", "service_notice", "account_id"]
    assert request.findtext("account_id") is None or request.findtext("account_id") == ""
    message = endpoint.session.exec(select(Message)).one()
    assert "farm3.static.flickr.com" in message.body


def test_the_specs_example_get_requests_and_service_list_in_xml(endpoint: Endpoint) -> None:
    endpoint.http.post(f"{ENDPOINT}/requests.json", data={"api_key": endpoint.api_key, "service_code": "muell",
                                                          "lat": MITTE[0], "long": MITTE[1]})  # fmt: skip
    services = ElementTree.fromstring(endpoint.http.get(f"{ENDPOINT}/services.xml?jurisdiction_id=testdorf").content)
    assert services.tag == "services" and {child.tag for child in services} == {"service"}
    assert {element.tag for element in services[0]} == {
        "service_code", "service_name", "description", "metadata", "type", "keywords", "group"}  # fmt: skip
    requests = ElementTree.fromstring(endpoint.http.get(f"{ENDPOINT}/requests.xml").content)
    [request] = list(requests)
    assert request.tag == "request"
    assert {element.tag for element in request} >= {
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
        "address", "address_id", "zipcode", "lat", "long", "media_url",
    }  # fmt: skip
    definition = endpoint.http.get(f"{ENDPOINT}/services/muell.json").json()
    assert definition == {"service_code": "muell", "attributes": []}


def error_of(answer: Any) -> tuple[int, int, str]:
    """(HTTP status, the error's code, its description) from a JSON or XML error answer."""
    if answer.headers["content-type"].startswith("application/json"):
        [error] = answer.json()
        return answer.status_code, error["code"], error["description"]
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "errors"
    [error] = list(root)
    return answer.status_code, int(error.findtext("code")), error.findtext("description")


def test_refusals_are_in_the_specs_error_format_in_german_and_store_nothing(endpoint: Endpoint) -> None:
    def post(fmt: str = "json", **fields: Any) -> tuple[int, int, str]:
        return error_of(endpoint.http.post(f"{ENDPOINT}/requests.{fmt}", data=fields))

    here = {"lat": MITTE[0], "long": MITTE[1]}
    assert post(service_code="laterne", **here)[:2] == (403, 403)
    assert "api_key fehlt" in post("xml", service_code="laterne", **here)[2]
    assert post(api_key="o311_falsch", service_code="laterne", **here)[:2] == (403, 403)
    status, _, text = post(api_key=endpoint.api_key, service_code="ampel", **here)
    assert status == 404 and "Den service_code 'ampel' gibt es nicht" in text
    assert post(api_key=endpoint.api_key, **here)[2] == "service_code fehlt."
    assert "Der Ort fehlt" in post(api_key=endpoint.api_key, service_code="laterne", address_id="4711")[2]
    assert "lat und long" in post(api_key=endpoint.api_key, service_code="laterne", lat="51,0")[2]
    outside = post(api_key=endpoint.api_key, service_code="laterne", lat=OUTSIDE[0], long=OUTSIDE[1])
    assert outside[0] == 400 and "außerhalb" in outside[2]
    unknown = post(api_key=endpoint.api_key, service_code="laterne", address_string="Nirgendwostraße 99")
    assert unknown[0] == 400 and "nicht gefunden" in unknown[2]
    long_text = post(api_key=endpoint.api_key, service_code="laterne", description="x" * 4001, **here)
    assert long_text[0] == 400 and "höchstens 4000 Zeichen" in long_text[2]
    assert endpoint.count(Conversation) == 0 and endpoint.count(ProblemReport) == 0

    assert error_of(endpoint.http.get("/open311/v2/nirgendwo/services.json"))[0] == 404
    assert error_of(endpoint.http.get(f"{ENDPOINT}/services.json?jurisdiction_id=anderswo"))[0] == 404
    assert error_of(endpoint.http.get(f"{ENDPOINT}/requests/A-2026-99999.xml"))[0] == 404
    assert error_of(endpoint.http.get(f"{ENDPOINT}/services.csv"))[0] == 404
    now = datetime.now(UTC)
    span = {"start_date": (now - timedelta(days=120)).isoformat(), "end_date": now.isoformat()}
    assert "90 Tage" in error_of(endpoint.http.get(f"{ENDPOINT}/requests.json", params=span))[2]
    naive = error_of(endpoint.http.get(f"{ENDPOINT}/requests.json", params={"start_date": "2026-12-01T10:00:00"}))
    assert naive[0] == 400 and "Zeitzone" in naive[2]


def test_admins_issue_and_revoke_keys_by_api_and_cli_and_a_revoked_key_stops_working(endpoint: Endpoint) -> None:
    here = {"service_code": "laterne", "lat": MITTE[0], "long": MITTE[1]}
    staff = staff_user(endpoint.session, endpoint.town, "staff")
    token = create_api_token(endpoint.session, user=staff, name="t")
    endpoint.session.commit()
    refused = endpoint.http.post("/api/v1/open311/clients", json={"name": "X"},
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert refused.status_code == 403

    runner = CliRunner()
    issued = runner.invoke(main, ["open311", "key", "--name", "Kreisportal", "--municipality", "testdorf"])
    assert issued.exit_code == 0, issued.output
    key = issued.output.rsplit("api_key: ", 1)[1].strip()
    assert endpoint.http.post(f"{ENDPOINT}/requests.json", data={"api_key": key, **here}).status_code == 201
    listed = runner.invoke(main, ["open311", "list", "--municipality", "testdorf"]).output
    assert "Kreisportal" in listed and "Stadt-App" in listed
    client_id = next(line.split()[0] for line in listed.splitlines() if "Kreisportal" in line)
    assert runner.invoke(main, ["open311", "revoke", client_id, "--municipality", "testdorf"]).exit_code == 0
    assert error_of(endpoint.http.post(f"{ENDPOINT}/requests.json", data={"api_key": key, **here}))[0] == 403
    assert json.loads(endpoint.http.get(f"{ENDPOINT}/requests.json").text)[0]["status"] == "open"


def test_the_demo_has_a_client_key_and_a_request_it_filed(endpoint: Endpoint) -> None:
    seed_demo(endpoint.session, endpoint.settings)
    endpoint.session.commit()

    # The demo's other reports (web form, chats) are listed too; the client's is the one at its address.
    requests = endpoint.http.get("/open311/v2/musterstadt/requests.json").json()
    [request] = [item for item in requests if item.get("address") == "Hauptstraße 12, Musterstadt"]
    assert (request["service_code"], request["status"]) == ("laterne", "open")
    assert request["address"] == "Hauptstraße 12, Musterstadt"
    filed = endpoint.http.post("/open311/v2/musterstadt/requests.json", data={
        "api_key": DEMO_OPEN311_KEY, "service_code": "muell", "address_string": "Lindenweg 7"})  # fmt: skip
    assert filed.status_code == 201, filed.text
    # The key is the demo town's only.
    elsewhere = {"api_key": DEMO_OPEN311_KEY, "service_code": "muell", "lat": MITTE[0], "long": MITTE[1]}
    assert error_of(endpoint.http.post(f"{ENDPOINT}/requests.json", data=elsewhere))[0] == 403
