"""Bulk actions on the inbox, on SQLite and PostgreSQL: set-based changes, "alle Treffer", the audit record, undo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from hub import db
from hub.audit.models import AuditEvent
from hub.errors import Conflict, InvalidInput, NotFound
from hub.inbox import bulk, tools
from hub.inbox.models import Conversation, ConversationLabel
from hub.settings import Settings
from hub.tenancy import service as tenancy
from tests.unit.db import make_town
from tests.unit.test_inbox_pages import inbound
from tests.unit.web import api_client, clerk


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def _fresh(session: Session, conversation: Conversation) -> Conversation:
    session.expire_all()
    found = session.get(Conversation, conversation.id)
    assert found is not None
    return found


def test_each_action_changes_many_at_once_is_audited_and_undone_once(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    cases = [inbound(both, backend_settings, town, f"Frage {n}") for n in range(3)]
    ids = [c.id or 0 for c in cases]
    user = tenancy.create_user(both, municipality_id=town.id, email="a@testdorf.example", name="Anna", role="staff")
    team = tenancy.create_team(both, municipality_id=town.id, name="Bauamt")
    label = tools.create_label(both, municipality_id=town.id, name="Verkehr")
    tools.add_label(both, municipality_id=town.id, conversation_id=ids[0], label_id=label.id)
    both.commit()
    actor = user.id or 0

    change = bulk.assign_many(both, municipality_id=town.id, actor_id=actor, conversation_ids=ids, assignee_id=actor)
    both.commit()
    assert change.changed == 3 and all(_fresh(both, c).assignee_id == actor for c in cases)
    record = both.get(AuditEvent, change.id)
    assert record is not None and record.actor_id == actor and record.details["change"] == "assign"
    assert bulk.summary(change, "de") == "3 Unterhaltungen geändert."
    assert bulk.summary(change, "en") == "3 conversations changed."

    moved = bulk.move_many(both, municipality_id=town.id, actor_id=actor, conversation_ids=ids[:2], team_id=team.id)
    labelled = bulk.label_many(both, municipality_id=town.id, actor_id=actor, conversation_ids=ids, label_id=label.id)
    resolved = bulk.set_status_many(
        both, municipality_id=town.id, actor_id=actor, conversation_ids=ids, status="resolved"
    )
    both.commit()
    assert (moved.changed, labelled.changed, resolved.changed) == (2, 2, 3)  # one had the label already
    assert all(_fresh(both, c).status == "resolved" and _fresh(both, c).resolved_at for c in cases)
    assert len(both.exec(select(ConversationLabel).where(ConversationLabel.label_id == label.id)).all()) == 3

    undone = bulk.undo(both, municipality_id=town.id, actor_id=actor, change_id=resolved.id)
    bulk.undo(both, municipality_id=town.id, actor_id=actor, change_id=labelled.id)
    both.commit()
    assert undone.changed == 3 and bulk.summary(undone, "de") == "3 Unterhaltungen zurückgesetzt."
    assert all(_fresh(both, c).status == "open" and _fresh(both, c).resolved_at is None for c in cases)
    # The label stays on the conversation that had it before.
    assert [link.conversation_id for link in both.exec(select(ConversationLabel))] == [ids[0]]
    assert bulk.get_change(both, municipality_id=town.id, change_id=resolved.id).undone
    with pytest.raises(Conflict):
        bulk.undo(both, municipality_id=town.id, actor_id=actor, change_id=resolved.id)


def test_all_matches_are_chosen_on_the_server_and_another_towns_ids_are_refused(
    both: Session, backend_settings: Settings
) -> None:
    town, other = make_town(both), make_town(both, slug="nachbarort")
    sms = [inbound(both, backend_settings, town, f"SMS {n}") for n in range(3)]
    chat = inbound(both, backend_settings, town, "Telegram", kind="telegram", sender="4711")
    foreign = inbound(both, backend_settings, other, "Fremd")
    user = tenancy.create_user(both, municipality_id=town.id, email="b@testdorf.example", name="Ben", role="staff")
    both.commit()
    change = bulk.apply(
        both, municipality_id=town.id, actor_id=user.id or 0, action="status", value="pending",
        matching={"channel_kind": "twilio"},
    )  # fmt: skip
    both.commit()
    assert change.changed == 3
    assert [_fresh(both, c).status for c in [*sms, chat]] == ["pending", "pending", "pending", "open"]
    with pytest.raises(NotFound):
        bulk.apply(
            both, municipality_id=town.id, actor_id=user.id or 0, action="assign", value=None,
            conversation_ids=[sms[0].id or 0, foreign.id or 0],
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        bulk.apply(both, municipality_id=town.id, actor_id=user.id or 0, action="status", value="weg",
                   conversation_ids=[sms[0].id or 0])  # fmt: skip
    both.rollback()
    assert _fresh(both, sms[0]).assignee_id is None  # nothing half-stored


def test_undo_is_for_its_author_within_the_window(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    case = inbound(both, backend_settings, town, "Frage")
    anna = tenancy.create_user(both, municipality_id=town.id, email="c@testdorf.example", name="Anna", role="staff")
    ben = tenancy.create_user(both, municipality_id=town.id, email="d@testdorf.example", name="Ben", role="staff")
    both.commit()
    change = bulk.apply(
        both, municipality_id=town.id, actor_id=anna.id or 0, action="status", value="resolved",
        conversation_ids=[case.id or 0],
    )  # fmt: skip
    both.commit()
    with pytest.raises(Conflict):
        bulk.undo(both, municipality_id=town.id, actor_id=ben.id or 0, change_id=change.id)
    record = both.get(AuditEvent, change.id)
    assert record is not None
    record.created_at -= bulk.UNDO_WINDOW + timedelta(seconds=1)
    both.commit()
    with pytest.raises(Conflict):
        bulk.undo(both, municipality_id=town.id, actor_id=anna.id or 0, change_id=change.id)


def test_api_changes_and_undoes_in_one_request_each(session: Session, settings: Settings) -> None:
    town = make_town(session)
    cases = [inbound(session, settings, town, f"Frage {n}") for n in range(2)]
    client = api_client(session, town)
    answer = client.post(
        "/api/v1/conversations/bulk", json={"action": "status", "value": "resolved", "ids": [c.id for c in cases]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "2 Unterhaltungen geändert."
    undone = client.post(f"/api/v1/conversations/bulk/{answer.json()['change_id']}/undo")
    assert undone.status_code == 200 and undone.json()["changed"] == 2
    assert all(_fresh(session, c).status == "open" for c in cases)
    both_given = client.post(
        "/api/v1/conversations/bulk",
        json={"action": "status", "value": "open", "ids": [cases[0].id], "matching": {"status": "open"}},
    )
    assert both_given.status_code == 422 and "nicht beides" in both_given.text


def test_the_lists_form_changes_the_selection_or_every_match_and_offers_undo(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    cases = [inbound(session, settings, town, f"Frage {n}") for n in range(3)]
    staff = clerk(session, town)
    page = staff.get("/app/inbox")
    assert 'name="ids"' in page.text and "alle Treffer" in page.text
    picked = staff.post(
        "/app/inbox/bulk", {"ids": [cases[0].id, cases[1].id], "action": "assign", "assignee": "me", "filter": ""}
    )
    assert picked.status_code == 200 and "2 Unterhaltungen geändert." in picked.text
    assert "Rückgängig" in picked.text
    assert [_fresh(session, c).assignee_id for c in cases] == [staff.user.id, staff.user.id, None]
    everything = staff.post("/app/inbox/bulk", {"scope": "all", "action": "status", "status": "pending",
                                                "filter": "status=open"})  # fmt: skip
    assert "3 Unterhaltungen geändert." in everything.text
    change = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()  # type: ignore[union-attr]
    assert change is not None
    undone = staff.post(f"/app/inbox/bulk/{change.id}/undo", {"filter": "status=open"})
    assert "3 Unterhaltungen zurückgesetzt." in undone.text
    assert all(_fresh(session, c).status == "open" for c in cases)
    nothing = staff.post("/app/inbox/bulk", {"action": "status", "status": "pending", "filter": ""})
    assert nothing.status_code == 422 and "Keine Unterhaltung ausgewählt." in nothing.text
