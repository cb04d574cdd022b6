"""The federal warning API's client against the sandbox's emulator: dashboards, details, versions, 304s, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from channels.warning_api import WarningApiClient, WarningApiError, covers, kreis_of
from hub.cli import main

TOWN = "169990001001"
NEIGHBOUR = "169990002002"
ELSEWHERE = "091620000000"


@pytest.fixture
def sandbox() -> Iterator[tuple[SandboxClient, WarningApiClient]]:
    with SandboxServer() as server, SandboxClient(server.url) as control:
        api = WarningApiClient(f"{server.url}/api31")
        yield control, api
        api.close()


def test_regional_keys_cover_the_places_inside_them() -> None:
    assert kreis_of(TOWN) == "169990000000"
    assert covers("169990000000", TOWN)
    assert covers("160000000000", TOWN)
    assert covers(TOWN, TOWN)
    assert not covers(NEIGHBOUR, TOWN)
    assert not covers("100000000000", TOWN)  # the Saarland is not Thuringia's 16


def test_a_warning_goes_through_its_versions(sandbox: tuple[SandboxClient, WarningApiClient]) -> None:
    control, api = sandbox
    published = control.publish_warning(
        headline="Großbrand in Musterstadt", region_keys=[TOWN], description="Starke Rauchentwicklung.<br/>Ost",
        instruction="Fenster und Türen schließen.", area="Stadt Musterstadt",
    )  # fmt: skip
    control.publish_warning(headline="Unwetter", region_keys=[ELSEWHERE], provider="DWD")

    board = api.dashboard(TOWN)
    assert [(item.id, item.version, item.provider, item.msg_type) for item in board.items] == [
        (published["id"], 1, "MOWAS", "Alert")
    ]
    assert board.etag
    warning = api.warning(published["id"])
    assert warning.identifier == published["id"]
    assert warning.region_keys == (TOWN,)
    assert warning.description == "Starke Rauchentwicklung.\nOst"
    assert (warning.msg_type, warning.severity, warning.categories) == ("Alert", "Severe", ("Safety",))
    assert warning.sent.tzinfo is not None

    again = api.dashboard(TOWN, etag=board.etag, last_modified=board.last_modified)
    assert again.not_modified and again.etag == board.etag

    control.update_warning(published["id"], severity="Extreme")
    updated = api.dashboard(TOWN, etag=board.etag)
    assert not updated.not_modified
    assert [(item.version, item.msg_type, item.severity) for item in updated.items] == [(2, "Update", "Extreme")]
    detail = api.warning(published["id"])
    assert detail.msg_type == "Update" and len(detail.references) == 1
    assert detail.references[0].split(",")[1] == published["id"]

    control.cancel_warning(published["id"])
    assert api.warning(published["id"]).msg_type == "Cancel"


def test_errors_and_half_answers_are_refused(sandbox: tuple[SandboxClient, WarningApiClient]) -> None:
    control, api = sandbox
    published = control.publish_warning(headline="Hochwasser", region_keys=[TOWN], provider="LHP")
    control.set_warning_fault("partial")
    with pytest.raises(WarningApiError, match="info"):
        api.warning(published["id"])
    control.set_warning_fault("error")
    with pytest.raises(WarningApiError, match="503"):
        api.dashboard(TOWN)
    control.set_warning_fault(None)
    with pytest.raises(WarningApiError, match="404"):
        api.warning("mow.unknown")
    assert api.geometry(published["id"]) is None
    unreachable = WarningApiClient("http://127.0.0.1:9")
    with pytest.raises(WarningApiError):
        unreachable.dashboard(TOWN)


def test_a_warning_with_an_area_has_its_geometry(sandbox: tuple[SandboxClient, WarningApiClient]) -> None:
    control, api = sandbox
    shape = {"type": "Polygon", "coordinates": [[[10.0, 51.0], [10.01, 51.0], [10.01, 51.01], [10.0, 51.0]]]}
    published = control.publish_warning(headline="Gefahrstoff", region_keys=[TOWN], geometry=shape, provider="POLICE")
    collection = api.geometry(published["id"])
    assert collection is not None and collection["features"][0]["geometry"] == shape
    assert api.warning(published["id"]).categories == ("Security",)


def test_the_sandbox_cli_publishes_updates_and_cancels(sandbox: tuple[SandboxClient, WarningApiClient]) -> None:
    control, api = sandbox
    runner = CliRunner()

    def run(*words: str) -> dict[str, object]:
        outcome = runner.invoke(main, ["sandbox", "--url", control.base_url, "warning", *words])
        assert outcome.exit_code == 0, outcome.output
        return dict(json.loads(outcome.output))

    published = run("publish", "--provider", "DWD", "--severity", "Moderate", "--headline", "Sturmböen",
                    "--ars", TOWN, "--instruction", "Gegenstände sichern.")  # fmt: skip
    assert (published["version"], published["msgType"]) == (1, "Alert")
    warning_id = str(published["id"])
    assert run("update", warning_id, "--severity", "Severe")["msgType"] == "Update"
    assert run("cancel", warning_id)["version"] == 3
    assert [item.msg_type for item in api.dashboard(TOWN).items] == ["Cancel"]
    missing = runner.invoke(main, ["sandbox", "--url", control.base_url, "warning", "cancel", "mow.none"])
    assert missing.exit_code == 1 and "404" in missing.output
