"""Two clerks in one conversation, on SQLite and PostgreSQL: who is typing; a reply refused once after a colleague's."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub import db
from hub.app import create_app
from hub.db import utcnow
from hub.inbox import api, live, pages, tools
from hub.inbox.models import Message
from hub.settings import Settings
from hub.tenancy import service as tenancy
from tests.unit.db import make_town
from tests.unit.test_inbox_pages import inbound
from tests.unit.web import clerk


@pytest.fixture
def both(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.setattr(pages, "enqueue_send", lambda _message_id: None)
    monkeypatch.setattr(api, "enqueue_send", lambda _message_id: None)
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def seen_id(page: str) -> str:
    found = re.search(r'name="seen" value="(\d+)"', page)
    assert found is not None, "the reply form says which message the page showed last"
    return found.group(1)


def outbound_bodies(session: Session) -> list[str]:
    session.expire_all()
    return list(session.exec(select(Message.body).where(Message.direction == "outbound", Message.author_id != None)))  # noqa: E711


def test_a_colleague_writing_a_reply_is_shown_live_and_only_for_a_few_seconds(
    both: Session, backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.3)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    town = make_town(both)
    conversation = inbound(both, backend_settings, town, "Wann kommt die Biotonne?")
    staff, colleague = clerk(both, town), clerk(both, town, "mayor")
    page = staff.get(f"/app/inbox/{conversation.id}").text
    cursor = re.search(r"events\?cursor=(\d+)", page).group(1)  # type: ignore[union-attr]
    colleague.get(f"/app/inbox/{conversation.id}")
    assert "schreibt gerade" not in staff.get(f"/app/inbox/{conversation.id}").text

    assert colleague.post(f"/app/inbox/{conversation.id}/typing").status_code == 204
    stream = staff.get(f"/app/inbox/events?cursor={cursor}&conversation={conversation.id}").text
    assert "event: presence" in stream and f"{colleague.user.name} schreibt gerade eine Antwort." in stream
    assert "schreibt gerade" not in colleague.get(f"/app/inbox/{conversation.id}").text, "not about oneself"

    # Once the colleague stops writing, the page says only that they are here.
    later = utcnow() + tools.TYPING_WINDOW + timedelta(seconds=1)
    [present] = tools.others_present(both, conversation=conversation, user_id=staff.user.id or 0, now=later)
    assert present == tools.Colleague(name=colleague.user.name, typing=False)


def test_typing_needs_write_rights_and_a_conversation_of_the_own_town(
    both: Session, backend_settings: Settings
) -> None:
    town, other = make_town(both), make_town(both, slug="nachbarort")
    foreign = inbound(both, backend_settings, other, "Fremd")
    mine = inbound(both, backend_settings, town, "Eigen")
    assert clerk(both, town, "viewer").post(f"/app/inbox/{mine.id}/typing").status_code == 403
    assert clerk(both, town).post(f"/app/inbox/{foreign.id}/typing").status_code == 404


def test_a_reply_after_a_colleagues_is_refused_once_showing_theirs_then_sent_anyway(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    conversation = inbound(both, backend_settings, town, "Ist der Wertstoffhof samstags offen?")
    staff, colleague = clerk(both, town), clerk(both, town, "mayor")
    loaded = seen_id(staff.get(f"/app/inbox/{conversation.id}").text)
    colleague_seen = seen_id(colleague.get(f"/app/inbox/{conversation.id}").text)
    assert colleague.post(f"/app/inbox/{conversation.id}/reply", {"text": "Ja, 9 bis 13 Uhr.", "seen": colleague_seen})

    refused = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Samstags bis 14 Uhr.", "seen": loaded})
    assert refused.status_code == 409
    text = html.unescape(refused.text)
    assert f"{colleague.user.name} hat inzwischen geantwortet: „Ja, 9 bis 13 Uhr.“" in text
    assert "Samstags bis 14 Uhr.</textarea>" in text, "the draft stays"
    assert "Trotzdem senden" in text
    assert outbound_bodies(both) == ["Ja, 9 bis 13 Uhr."]

    sent = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Samstags bis 14 Uhr.", "seen": seen_id(text)})
    assert sent.status_code == 200 and "Die Antwort ist unterwegs." in sent.text
    assert sorted(outbound_bodies(both)) == ["Ja, 9 bis 13 Uhr.", "Samstags bis 14 Uhr."]
    # Their own earlier reply, or none seen at all (a form from before), never holds a clerk back.
    again = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Nachtrag", "seen": seen_id(text)})
    assert again.status_code == 200
    assert staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Ohne Stand"}).status_code == 200


def test_the_api_refuses_a_reply_after_a_colleagues_with_409_in_german(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    conversation = inbound(both, backend_settings, town, "Hallo?")
    script = tenancy.create_user(both, municipality_id=town.id, email="skript@testdorf.example", name="Skript",
                                 role="staff")  # fmt: skip
    token = tenancy.create_api_token(both, user=script, name="test")
    both.commit()
    client = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)
    url = f"/api/v1/conversations/{conversation.id}/replies"
    newest = client.get(f"/api/v1/conversations/{conversation.id}/messages").json()[-1]["id"]
    colleague = clerk(both, town)
    assert colleague.post(f"/app/inbox/{conversation.id}/reply", {"text": "Guten Tag!"}).status_code == 200

    refused = client.post(url, json={"text": "Hallo!", "seen_message_id": newest})
    assert refused.status_code == 409
    assert f"{colleague.user.name} hat inzwischen geantwortet: „Guten Tag!“" in refused.json()["detail"]
    assert outbound_bodies(both) == ["Guten Tag!"]
    latest = client.get(f"/api/v1/conversations/{conversation.id}/messages").json()[-1]["id"]
    assert client.post(url, json={"text": "Hallo!", "seen_message_id": latest}).status_code == 202
    assert client.post(url, json={"text": "Ohne Angabe"}).status_code == 202
