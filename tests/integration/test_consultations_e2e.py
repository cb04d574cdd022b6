"""The demo hub's consultation hours, through its API: the series a newcomer sees, with their bookings."""

from __future__ import annotations

from tests.running_hub import Hub


def test_the_demo_has_the_mayors_office_hours_with_bookings_and_an_open_session(hub: Hub) -> None:
    series = {item["title"]: item for item in hub.api.get("/api/v1/consultations/series").json()}
    assert set(series) >= {"Bürgermeistersprechstunde", "Offene Sprechstunde Bauamt"}
    assert series["Offene Sprechstunde Bauamt"]["capacity"] == 10

    sessions = hub.api.get(f"/api/v1/consultations/series/{series['Bürgermeistersprechstunde']['id']}/sessions")
    assert sessions.status_code == 200
    booked = [booking["name"] for s in sessions.json() for slot in s["slots"] for booking in slot["bookings"]]
    assert sorted(booked) == ["Erika Mustermann", "Max Meier"]
    assert all(len(s["slots"]) == 8 for s in sessions.json())  # 17:00 to 19:00 in quarters of an hour
