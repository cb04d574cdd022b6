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
    # The demo's two bookings; tests before this one in the same hub may have booked more.
    assert {"Erika Mustermann", "Max Meier"} <= set(booked)
    assert all(len(s["slots"]) == 8 for s in sessions.json())  # 17:00 to 19:00 in quarters of an hour


def test_the_command_line_lists_the_series_and_the_mayors_bookings(hub: Hub) -> None:
    listed = hub.cli("consultations", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if "Bürgermeistersprechstunde" in line)
    series_id = line.split("\t")[0]
    shown = hub.cli("consultations", "sessions", series_id)
    assert shown.returncode == 0, shown.stderr
    assert "Erika Mustermann" in shown.stdout and "Max Meier" in shown.stdout
    unknown = hub.cli("consultations", "sessions", "999999")
    assert unknown.returncode != 0 and "gibt es nicht" in unknown.stderr
