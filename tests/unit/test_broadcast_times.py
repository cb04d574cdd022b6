"""A broadcast's sending and closing times: the API wants them with a time zone, and nobody can schedule the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.broadcasts.models import Broadcast
from hub.db import utcnow
from tests.unit.db import Town, make_town
from tests.unit.web import api_client, clerk


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


@pytest.fixture
def api(session: Session, town: Town) -> TestClient:
    return api_client(session, town)


def draft(**times: str) -> dict[str, object]:
    return {"kind": "survey", "title": "Spielplatz", "texts": {"de": {"body": "Rutsche oder Schaukel?"}},
            "options": ["Rutsche", "Schaukel"], **times}  # fmt: skip


def later(days: int = 7) -> datetime:
    return utcnow() + timedelta(days=days)


def stored(session: Session, town: Town) -> list[Broadcast]:
    session.expire_all()
    return list(session.exec(select(Broadcast).where(Broadcast.municipality_id == town.id)).all())


@pytest.mark.parametrize("field", ["send_at", "closes_at"])
def test_a_time_without_time_zone_is_refused_with_what_is_expected(
    session: Session, town: Town, api: TestClient, field: str
) -> None:
    naive = later().replace(tzinfo=None).isoformat(timespec="seconds")
    created = api.post("/api/v1/broadcasts", json=draft(**{field: naive}))
    assert created.status_code == 422, created.text
    detail = created.json()["detail"]
    assert field in detail and "ohne Zeitzone" in detail and "+02:00" in detail
    assert stored(session, town) == []

    good = api.post("/api/v1/broadcasts", json=draft())
    assert good.status_code == 201, good.text
    changed = api.put(f"/api/v1/broadcasts/{good.json()['id']}", json=draft(**{field: naive}))
    assert changed.status_code == 422 and "ohne Zeitzone" in changed.json()["detail"]


def test_times_with_an_offset_or_z_are_taken_as_that_moment(session: Session, town: Town, api: TestClient) -> None:
    send_at = later().astimezone(ZoneInfo("Asia/Tokyo")).replace(microsecond=0)
    closes_at = later(14).replace(microsecond=0)
    created = api.post(
        "/api/v1/broadcasts",
        json=draft(send_at=send_at.isoformat(), closes_at=closes_at.isoformat().replace("+00:00", "Z")),
    )
    assert created.status_code == 201, created.text
    [broadcast] = stored(session, town)
    assert broadcast.send_at == send_at and broadcast.closes_at == closes_at


def test_a_sending_time_in_the_past_is_refused_by_the_api(session: Session, town: Town, api: TestClient) -> None:
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    refused = api.post("/api/v1/broadcasts", json=draft(send_at=yesterday))
    assert refused.status_code == 422
    assert "Versandzeit liegt in der Vergangenheit" in refused.json()["detail"]
    closing = api.post("/api/v1/broadcasts", json=draft(send_at=later(7).isoformat(), closes_at=later(6).isoformat()))
    assert closing.status_code == 422
    assert "nach der Versandzeit" in closing.json()["detail"]
    assert stored(session, town) == []


def test_a_sending_time_in_the_past_is_refused_in_the_composer(session: Session, town: Town) -> None:
    staff = clerk(session, town, "staff")
    local = datetime.now(UTC).astimezone(ZoneInfo(town.municipality.timezone)) - timedelta(hours=2)
    form = {"kind": "announcement", "title": "Straßenfest", "body_de": "Am Samstag ist Straßenfest.",
            "topic_match": "any", "district_match": "any", "action": "save",
            "send_at": local.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    refused = staff.post("/app/broadcasts/new", form)
    assert refused.status_code == 422
    assert "Versandzeit liegt in der Vergangenheit" in refused.text
    assert f'value="{form["send_at"]}"' in refused.text  # what they typed stays, to correct it
    assert stored(session, town) == []
