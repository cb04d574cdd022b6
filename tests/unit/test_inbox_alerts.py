"""What waits for a clerk and what their browser is told, on SQLite and PostgreSQL; each person's alert settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session

from hub import db
from hub.db import utcnow
from hub.inbox import alerts, live, service
from hub.inbox.alerts import Alert
from hub.settings import Settings
from hub.tenancy import service as tenancy
from tests.unit.db import make_town
from tests.unit.test_inbox_pages import inbound
from tests.unit.web import clerk


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def test_news_is_a_conversation_assigned_new_in_the_team_or_about_to_miss_its_target(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    town.municipality.preferences = {"office_hours": {}}  # around the clock, so the test does not depend on the day
    team = tenancy.create_team(both, municipality_id=town.id, name="Bauamt")
    user = tenancy.create_user(both, municipality_id=town.id, email="t@testdorf.example", name="Tina", role="staff")
    user.team_id = team.id
    colleague = tenancy.create_user(both, municipality_id=town.id, email="c@testdorf.example", name="C", role="staff")
    earlier = inbound(both, backend_settings, town, "Schon da")
    service.update_conversation(both, municipality_id=town.id, conversation_id=earlier.id or 0, assignee_id=user.id,
                                team_id=team.id)  # fmt: skip
    both.commit()
    watch = alerts.Watch()
    assert watch.look(both, user=user, now=utcnow()) and watch.count == 1 and watch.fresh == [], "the page showed it"
    assert not watch.look(both, user=user, now=utcnow()), "nothing new"

    for_team = inbound(both, backend_settings, town, "Für das Bauamt")
    elsewhere = inbound(both, backend_settings, town, "Niemandes Team")
    for_team.team_id = team.id
    both.commit()
    assert watch.look(both, user=user, now=utcnow())
    assert watch.fresh == [Alert(for_team.id or 0, for_team.reference, "team")] and watch.count == 2

    service.update_conversation(both, municipality_id=town.id, conversation_id=elsewhere.id or 0, assignee_id=user.id)
    # Taken by a colleague, the team's conversation no longer waits for this clerk.
    service.update_conversation(both, municipality_id=town.id, conversation_id=for_team.id or 0,
                                assignee_id=colleague.id)  # fmt: skip
    both.commit()
    assert watch.look(both, user=user, now=utcnow())
    assert watch.fresh == [Alert(elsewhere.id or 0, elsewhere.reference, "assigned")] and watch.count == 2

    team.first_response_minutes = 60
    both.commit()
    later = utcnow() + timedelta(minutes=60) - alerts.DUE_SOON + timedelta(minutes=1)
    assert watch.look(both, user=user, now=utcnow()) is False, "an hour left is not soon"
    assert watch.look(both, user=user, now=later)
    assert watch.fresh == [Alert(earlier.id or 0, earlier.reference, "due")], "the team's target; the other has none"

    service.update_conversation(both, municipality_id=town.id, conversation_id=earlier.id or 0, status="resolved")
    both.commit()
    assert watch.look(both, user=user, now=later) and watch.count == 1 and watch.fresh == []


def test_the_live_stream_carries_the_count_and_the_notifications_in_german(
    both: Session, backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.3)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(live, "ALERTS_EVERY_SECONDS", 0.0)
    town = make_town(both)
    staff = clerk(both, town)
    conversation = inbound(both, backend_settings, town, "Hallo")
    page = staff.get("/app/inbox").text
    assert 'data-notify="0" data-sound="0"' in page, "off until the clerk allows it"
    cursor = re.search(r"events\?cursor=(\d+)", page).group(1)  # type: ignore[union-attr]
    quiet = staff.get(f"/app/inbox/events?cursor={cursor}").text
    assert json.loads(quiet.split("event: waiting\ndata: ")[1].split("\n")[0]) == {"count": 0, "alerts": []}
    service.update_conversation(both, municipality_id=town.id, conversation_id=conversation.id or 0,
                                assignee_id=staff.user.id)  # fmt: skip
    both.commit()
    # A new stream knows only what it has seen itself: the count, no news.
    stream = staff.get(f"/app/inbox/events?cursor={cursor}&lang=en").text
    assert '"count": 1' in stream and '"alerts": []' in stream


def test_each_person_chooses_their_own_alerts_on_the_settings_page(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    viewer, staff = clerk(both, town, "viewer"), clerk(both, town)
    page = viewer.get("/app/inbox/notifications")
    assert page.status_code == 200 and "Benachrichtigungen im Browser erlauben" in page.text
    assert 'id="alert-browser" name="browser" value="1">' in page.text, "off by default"
    saved = viewer.post("/app/inbox/notifications", {"browser": "1", "sound": "1"})
    assert saved.status_code == 200 and "Ihre Benachrichtigungen sind gespeichert." in saved.text
    assert 'name="browser" value="1" checked' in saved.text and 'name="sound" value="1" checked' in saved.text
    assert 'data-notify="1" data-sound="1"' in viewer.get("/app/inbox").text
    assert 'data-notify="0" data-sound="0"' in staff.get("/app/inbox").text, "another person's stay off"
    viewer.post("/app/inbox/notifications", {"browser": "1"})
    both.expire_all()
    chosen = alerts.settings_of(both, user_id=viewer.user.id or 0)
    assert (chosen.browser, chosen.sound) == (True, False)
    assert "Notifications" in viewer.get("/app/inbox/notifications?lang=en").text
