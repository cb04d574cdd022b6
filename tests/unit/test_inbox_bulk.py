"""Bulk actions on the inbox, on SQLite and PostgreSQL: set-based changes, "alle Treffer", the audit record, undo,
and merging conversations into one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub import db
from hub.app import create_app
from hub.audit.models import AuditEvent
from hub.consultations.models import Booking, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.demo import seed_demo
from hub.errors import Conflict, InvalidInput, NotFound
from hub.inbox import bulk, service, tools
from hub.inbox.models import Attachment, Conversation, ConversationLabel, Message
from hub.problems.models import ProblemReport
from hub.settings import Settings
from hub.tenancy import service as tenancy
from tests.unit.db import Town, make_town
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


def _one_persons_cases(session: Session, settings: Settings, town: Town, *texts: str) -> list[Conversation]:
    """One citizen writing again after each case was resolved, so that each text opens a case of its own."""
    separate = settings.model_copy(update={"reopen_resolved": False})
    cases = []
    for text in texts:
        case = inbound(session, separate, town, text, sender="+4915112345678")
        service.update_conversation(session, municipality_id=town.id, conversation_id=case.id or 0, status="resolved")
        cases.append(case)
    session.commit()
    return cases


def _inbound_texts(session: Session, municipality_id: int, conversation: Conversation) -> list[str]:
    found = service.list_messages(session, municipality_id=municipality_id, conversation_id=conversation.id or 0)
    return [m.body for m in found if m.direction == "inbound"]


def test_merge_keeps_the_oldest_with_everyones_messages_in_order_and_closes_the_others(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    oldest, middle, newest = _one_persons_cases(both, backend_settings, town, "Erste", "Zweite", "Dritte")
    user = tenancy.create_user(both, municipality_id=town.id, email="m@testdorf.example", name="Mia", role="staff")
    service.update_conversation(both, municipality_id=town.id, conversation_id=newest.id or 0, status="open")
    service.add_note(both, municipality_id=town.id, conversation_id=newest.id or 0, author=user, text="Rückruf")
    photo = next(m for m in both.exec(select(Message).where(Message.conversation_id == middle.id)))
    both.add(Attachment(municipality_id=town.id, message_id=photo.id or 0, filename="laterne.jpg",
                        content_type="image/jpeg", data=b"jpeg"))  # fmt: skip
    label = tools.create_label(both, municipality_id=town.id, name="Licht")
    tools.add_label(both, municipality_id=town.id, conversation_id=middle.id or 0, label_id=label.id)
    both.commit()
    ids = [newest.id or 0, oldest.id or 0, middle.id or 0]

    with pytest.raises(InvalidInput):  # it cannot be undone, so it needs a yes
        bulk.apply(both, municipality_id=town.id, actor_id=user.id or 0, action="merge", value=None,
                   conversation_ids=ids)  # fmt: skip
    plan = bulk.merge_plan(both, municipality_id=town.id, conversation_ids=ids)
    assert (plan.kept_reference, plan.merged_references) == (oldest.reference, (middle.reference, newest.reference))
    change = bulk.apply(
        both, municipality_id=town.id, actor_id=user.id or 0, action="merge", value=None, conversation_ids=ids,
        confirmed=True,
    )  # fmt: skip
    both.commit()

    assert _inbound_texts(both, town.id, oldest) == ["Erste", "Zweite", "Dritte"]
    kept = service.list_messages(both, municipality_id=town.id, conversation_id=oldest.id or 0)
    assert "Rückruf" in [m.body for m in kept if m.direction == "note"]
    assert photo.id in [m.id for m in kept]
    assert [link.conversation_id for link in both.exec(select(ConversationLabel))].count(oldest.id) == 1
    # Open work joining a resolved case opens it again; the others are closed, pointing to the one that stays.
    assert _fresh(both, oldest).status == "open"
    for closed in (middle, newest):
        assert _fresh(both, closed).status == "resolved"
        left = service.list_messages(both, municipality_id=town.id, conversation_id=closed.id or 0)
        assert [(m.direction, oldest.reference in m.body) for m in left] == [("note", True)]
    record = both.get(AuditEvent, change.id)
    assert record is not None and record.details["change"] == "merge" and record.details["value"] == oldest.id
    assert sorted(record.details["previous"]) == sorted([str(middle.id), str(newest.id)])
    assert bulk.summary(change, "de") == f"2 Unterhaltungen in {oldest.reference} zusammengeführt."
    assert bulk.summary(change, "en") == f"2 conversations merged into {oldest.reference}."
    assert not bulk.get_change(both, municipality_id=town.id, change_id=change.id).undoable
    with pytest.raises(Conflict):
        bulk.undo(both, municipality_id=town.id, actor_id=user.id or 0, change_id=change.id)


def test_merge_refuses_two_peoples_conversations_and_a_single_one(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    anna, ben = inbound(both, backend_settings, town, "Von Anna"), inbound(both, backend_settings, town, "Von Ben")
    user = tenancy.create_user(both, municipality_id=town.id, email="r@testdorf.example", name="Rolf", role="staff")
    both.commit()
    for ids in ([anna.id or 0, ben.id or 0], [anna.id or 0]):
        with pytest.raises(InvalidInput) as refused:
            bulk.apply(both, municipality_id=town.id, actor_id=user.id or 0, action="merge", value=None,
                       conversation_ids=ids, confirmed=True)  # fmt: skip
        both.rollback()
    assert "zuerst die Kontakte zusammenführen" not in refused.value.text("de")
    with pytest.raises(InvalidInput) as refused:
        bulk.merge_plan(both, municipality_id=town.id, conversation_ids=[anna.id or 0, ben.id or 0])
    assert "zuerst die Kontakte zusammenführen" in refused.value.text("de")
    assert _inbound_texts(both, town.id, anna) == ["Von Anna"] and _fresh(both, ben).status == "open"


def test_api_merges_only_when_confirmed_and_offers_no_undo(session: Session, settings: Settings) -> None:
    town = make_town(session)
    cases = _one_persons_cases(session, settings, town, "Eins", "Zwei")
    client = api_client(session, town)
    body = {"action": "merge", "ids": [c.id for c in cases]}
    unconfirmed = client.post("/api/v1/conversations/bulk", json=body)
    assert unconfirmed.status_code == 422 and "nicht rückgängig" in unconfirmed.text
    merged = client.post("/api/v1/conversations/bulk", json={**body, "confirm": True})
    assert merged.status_code == 200, merged.text
    assert merged.json()["undoable"] is False and merged.json()["merged_into"] == cases[0].reference
    assert client.post(f"/api/v1/conversations/bulk/{merged.json()['change_id']}/undo").status_code == 409
    assert _fresh(session, cases[1]).status == "resolved"


def test_the_lists_form_asks_before_merging(session: Session, settings: Settings) -> None:
    town = make_town(session)
    cases = _one_persons_cases(session, settings, town, "Eins", "Zwei")
    staff = clerk(session, town)
    form = {"ids": [c.id for c in cases], "action": "merge", "filter": "status=resolved"}
    asked = staff.post("/app/inbox/bulk", form)
    assert asked.status_code == 200 and "Das lässt sich nicht rückgängig machen." in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert _inbound_texts(session, town.id, cases[1]) == ["Zwei"]  # nothing yet
    done = staff.post("/app/inbox/bulk", {**form, "confirm": "yes"})
    assert f"1 Unterhaltung in {cases[0].reference} zusammengeführt." in done.text
    assert "/undo" not in done.text
    assert _inbound_texts(session, town.id, cases[0]) == ["Eins", "Zwei"]
    refused = staff.post("/app/inbox/bulk", {**form, "ids": [cases[0].id]})
    assert refused.status_code == 422 and "mindestens zwei" in refused.text


def test_the_demo_has_one_citizens_two_cases_to_merge(session: Session, settings: Settings) -> None:
    seeded = seed_demo(session, settings)
    session.commit()
    found = session.exec(
        select(Conversation).where(
            Conversation.municipality_id == seeded.municipality_id, col(Conversation.subject).contains("Hecke")
        )
    ).all()
    plan = bulk.merge_plan(session, municipality_id=seeded.municipality_id, conversation_ids=[c.id or 0 for c in found])
    assert len(found) == 2 and plan.kept_id == min(found, key=lambda c: c.created_at).id


SENDER = "+4915187654321"


def _merged_across_channels(session: Session, settings: Settings, town: Town) -> tuple[Conversation, Conversation]:
    """One citizen's older Telegram case, kept, and their SMS case, merged away into it."""
    away = inbound(session, settings, town, "Per SMS", sender=SENDER)
    kept = service.open_conversation(session, account=town.accounts["telegram"], contact_id=away.contact_id,
                                     subject="Laterne")  # fmt: skip
    kept.created_at = away.created_at - timedelta(days=1)
    session.add(Message(municipality_id=town.id, conversation_id=kept.id, channel_account_id=kept.channel_account_id,
                        direction="inbound", body="Per Telegram", created_at=kept.created_at))  # fmt: skip
    user = tenancy.create_user(session, municipality_id=town.id, email="z@testdorf.example", name="Zoe", role="staff")
    session.commit()
    bulk.apply(session, municipality_id=town.id, actor_id=user.id or 0, action="merge", value=None,
               conversation_ids=[away.id or 0, kept.id or 0], confirmed=True)  # fmt: skip
    session.commit()
    return kept, away


def test_a_citizen_writing_again_on_a_merged_away_thread_reaches_the_kept_case(
    both: Session, backend_settings: Settings
) -> None:
    town = make_town(both)
    kept, away = _merged_across_channels(both, backend_settings, town)
    assert _fresh(both, away).merged_into_id == kept.id and _fresh(both, kept).merged_into_id is None

    again = inbound(both, backend_settings, town, "Ist das schon erledigt?", sender=SENDER)
    assert again.id == kept.id and _fresh(both, away).status == "resolved"
    assert _inbound_texts(both, town.id, kept) == ["Per Telegram", "Per SMS", "Ist das schon erledigt?"]
    # Once the kept case is resolved as well, the next SMS reopens it, not the merged-away one.
    service.update_conversation(both, municipality_id=town.id, conversation_id=kept.id or 0, status="resolved")
    both.commit()
    later = inbound(both, backend_settings, town, "Die Laterne ist wieder aus.", sender=SENDER)
    assert later.id == kept.id and _fresh(both, kept).status == "open" and _fresh(both, away).status == "resolved"
    # A merged-away case cannot be merged again: its messages are elsewhere now.
    newest = service.open_conversation(both, account=town.accounts["twilio"], contact_id=kept.contact_id, subject=None)
    with pytest.raises(InvalidInput) as refused:
        bulk.merge_plan(both, municipality_id=town.id, conversation_ids=[away.id or 0, newest.id or 0])
    assert refused.value.text("de").startswith(f"{away.reference} ist schon in ein anderes Anliegen zusammengeführt")


def test_the_status_page_of_a_merged_away_request_shows_the_kept_ones(session: Session, settings: Settings) -> None:
    town = make_town(session)
    kept, away = _merged_across_channels(session, settings, town)
    citizen = TestClient(create_app())
    page = citizen.get(f"/anfrage/{away.reference}/{away.public_token}")
    assert page.status_code == 200
    assert f"unter der Vorgangsnummer {kept.reference} weitergeführt" in page.text
    assert f'href="/anfrage/{kept.reference}/{kept.public_token}"' in page.text
    assert '<p class="state">In Bearbeitung</p>' in page.text  # the kept case's state, not "Erledigt"
    english = citizen.get(f"/anfrage/{away.reference}/{away.public_token}", headers={"Accept-Language": "en"})
    assert f"This request continues under the reference {kept.reference}" in english.text
    kept_page = citizen.get(f"/anfrage/{kept.reference}/{kept.public_token}")
    assert "Per SMS" in kept_page.text and "Per Telegram" in kept_page.text and "weitergeführt" not in kept_page.text


def _booking_for(session: Session, town: Town, conversation: Conversation) -> None:
    series = ConsultationSeries(municipality_id=town.id, title="Bürgersprechstunde", first_day=date(2026, 1, 6),
                                start_time="17:00", end_time="18:00", rrule="FREQ=MONTHLY;BYDAY=1TU")  # fmt: skip
    session.add(series)
    session.flush()
    starts = conversation.created_at + timedelta(days=7)
    sitting = ConsultationSession(municipality_id=town.id, series_id=series.id or 0, starts_at=starts,
                                  ends_at=starts + timedelta(hours=1))  # fmt: skip
    session.add(sitting)
    session.flush()
    slot = ConsultationSlot(session_id=sitting.id or 0, starts_at=starts, ends_at=starts + timedelta(minutes=15),
                            capacity=1)  # fmt: skip
    session.add(slot)
    session.flush()
    session.add(Booking(municipality_id=town.id, session_id=sitting.id or 0, slot_id=slot.id or 0,
                        contact_id=conversation.contact_id, reference="T-2026-00001", name="Erika",
                        conversation_id=conversation.id))  # fmt: skip


def test_merge_refuses_a_problem_reports_and_a_bookings_conversation(both: Session, backend_settings: Settings) -> None:
    town = make_town(both)
    plain, reported, booked = _one_persons_cases(both, backend_settings, town, "Frage", "Schlagloch", "Wegen morgen")
    both.add(ProblemReport(municipality_id=town.id, conversation_id=reported.id or 0))
    _booking_for(both, town, booked)
    both.commit()
    for held, why in ((reported, "gehört zu einer Mängelmeldung"), (booked, "gehört zu einer Terminbuchung")):
        with pytest.raises(InvalidInput) as refused:
            bulk.apply(both, municipality_id=town.id, actor_id=0, action="merge", value=None,
                       conversation_ids=[plain.id or 0, held.id or 0], confirmed=True)  # fmt: skip
        both.rollback()
        assert _inbound_texts(both, town.id, held) != [] and _fresh(both, held).merged_into_id is None
        assert refused.value.text("de").startswith(f"{held.reference} {why}")
    assert refused.value.text("en") == f"{booked.reference} belongs to a consultation booking and stays with it; " + (
        "cases with a booking cannot be merged."
    )
