"""Saved views of the inbox, on SQLite and PostgreSQL: the defaults with their counts, personal and team views."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from hub import db
from hub.errors import InvalidInput, NotFound
from hub.inbox import service, views
from hub.settings import Settings
from hub.tenancy import service as tenancy
from tests.unit.db import make_town
from tests.unit.test_inbox_pages import inbound
from tests.unit.web import clerk


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def navigation(page: str) -> dict[str, str]:
    """The side navigation's views: name -> count."""
    nav = page.split('class="inbox-views"')[1].split("</ul>")[0]
    return dict(re.findall(r'">([^<]+?) <span class="count">(\d+)</span>', nav))


def test_defaults_count_and_a_team_view_is_seen_by_the_team_only(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    team = tenancy.create_team(both, municipality_id=town.id, name="Bauamt")
    first, second, _third = (inbound(both, backend_settings, town, f"Frage {n}") for n in range(3))
    staff = clerk(both, town)
    colleague = clerk(both, town, "mayor")
    outsider = clerk(both, town, "admin")
    for member in (staff, colleague):
        member.user.team_id = team.id
        both.add(member.user)
    service.update_conversation(both, municipality_id=town.id, conversation_id=first.id or 0,
                                assignee_id=staff.user.id, team_id=team.id)  # fmt: skip
    service.update_conversation(both, municipality_id=town.id, conversation_id=second.id or 0, status="pending")
    both.commit()

    listed = navigation(staff.get("/app/inbox").text)
    assert listed == {"Mir zugewiesen": "1", "Mein Team": "1", "Nicht zugewiesen": "1", "Überfällig": "0",
                      "Warten auf Bürger": "1", "Wiedervorlage": "0"}  # fmt: skip
    saved = staff.post("/app/inbox/views", {"name": " Offene  Fragen ", "share": "team",
                                            "filter": "status=open&q=Frage"})  # fmt: skip
    assert saved.status_code == 200 and navigation(saved.text)["Offene Fragen"] == "2"
    assert 'aria-current="page"' in saved.text
    assert "Offene Fragen" in navigation(colleague.get("/app/inbox").text)
    assert "Offene Fragen" not in navigation(outsider.get("/app/inbox").text)
    assert "Mein Team" not in navigation(outsider.get("/app/inbox").text)  # no team, no such view

    [view] = views.list_views(both, user=staff.user)
    with pytest.raises(NotFound):
        views.delete_view(both, user=colleague.user, view_id=view.id or 0)
    assert staff.post(f"/app/inbox/views/{view.id}/delete").status_code == 200
    assert views.list_views(both, user=colleague.user) == []


def test_a_view_needs_a_name_and_a_team_to_share_with(both: Session) -> None:
    town = make_town(both)
    staff = clerk(both, town)
    with pytest.raises(InvalidInput):
        views.save_view(both, owner=staff.user, name="  ", query="", for_team=False)
    with pytest.raises(InvalidInput):
        views.save_view(both, owner=staff.user, name="Meins", query="", for_team=True)
    refused = staff.post("/app/inbox/views", {"name": "", "filter": "status=open"})
    assert refused.status_code == 422 and "1 bis 60 Zeichen" in refused.text
    assert views.list_views(both, user=staff.user) == []
