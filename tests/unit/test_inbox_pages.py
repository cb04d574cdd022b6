"""The staff inbox in-process: list filters and search, a conversation's tools, live updates, roles and tenancy."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from channels.base import InboundMessage
from hub.contacts.models import Contact
from hub.inbox import live, pages, service, tools
from hub.inbox.models import CannedReply, Conversation, ConversationLabel, Message
from hub.inbox.search import fts5_query
from hub.settings import Settings
from hub.subscribers import catalogue, consent
from hub.tenancy import service as tenancy
from tests.unit.db import Town, make_town, receive
from tests.unit.web import Clerk, clerk


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Reply ids the pages handed to the broker."""
    queued: list[int] = []
    monkeypatch.setattr(pages, "enqueue_send", queued.append)
    return queued


def inbound(
    session: Session, settings: Settings, town: Town, text: str, *, kind: str = "twilio", sender: str | None = None,
    name: str | None = None,
) -> Conversation:  # fmt: skip
    """A citizen writes in through the pipeline, as a webhook would bring it."""
    sender = sender or "+49151" + str(uuid.uuid4().int)[:8]
    event = InboundMessage(provider_id=uuid.uuid4().hex, sender=sender, text=text, sender_name=name)
    result = receive(session, settings, town.accounts[kind], event)[0]
    conversation = session.get(Conversation, result.conversation_id)
    assert conversation is not None
    session.refresh(conversation)
    return conversation


def rows(page_html: str) -> list[str]:
    """The references listed, in order."""
    return re.findall(r'<a href="/app/inbox/\d+">(A-\d{4}-\d{5})</a>', page_html)


def test_list_shows_open_conversations_with_contact_channel_and_waiting_time(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    first = inbound(session, settings, town, "Die Laterne ist aus.", name="Erika")
    second = inbound(session, settings, town, "Wann ist Sperrmüll?", kind="telegram", sender="4242")
    service.update_conversation(session, municipality_id=town.id, conversation_id=second.id or 0, status="resolved")
    session.commit()
    staff = clerk(session, town)
    page = staff.get("/app/inbox")
    assert page.status_code == 200
    assert rows(page.text) == [first.reference]  # open by default
    assert "Erika" in page.text and "SMS" in page.text and "Offen" in page.text
    assert "Min." in page.text  # how long the citizen has waited
    everything = staff.get("/app/inbox?status=all")
    assert set(rows(everything.text)) == {first.reference, second.reference}


def test_filters_by_channel_assignee_team_and_label(session: Session, settings: Settings) -> None:
    town = make_town(session)
    sms = inbound(session, settings, town, "SMS-Frage")
    chat = inbound(session, settings, town, "Telegram-Frage", kind="telegram", sender="777")
    staff = clerk(session, town)
    team = tenancy.create_team(session, municipality_id=town.id, name="Bauamt")
    session.commit()
    assert staff.post(f"/app/inbox/{sms.id}/assign", {"assignee": "me", "team": str(team.id)}).status_code == 200
    assert staff.post(f"/app/inbox/{chat.id}/labels", {"name": "Straßenbau"}).status_code == 200
    label = tools.find_label(session, municipality_id=town.id, name="Straßenbau")
    assert label is not None

    assert rows(staff.get("/app/inbox?channel=telegram").text) == [chat.reference]
    assert rows(staff.get("/app/inbox?assignee=mine").text) == [sms.reference]
    assert rows(staff.get("/app/inbox?assignee=unassigned").text) == [chat.reference]
    assert rows(staff.get(f"/app/inbox?assignee={staff.user.id}").text) == [sms.reference]
    assert rows(staff.get(f"/app/inbox?team={team.id}").text) == [sms.reference]
    assert rows(staff.get(f"/app/inbox?label={label.id}").text) == [chat.reference]
    # Nonsense in the query string is ignored, not a server error.
    assert staff.get("/app/inbox?team=abc&status=kaputt&channel=fax").status_code == 200


def test_search_finds_words_in_messages_and_never_breaks_on_fts_syntax(session: Session, settings: Settings) -> None:
    town = make_town(session)
    lamp = inbound(session, settings, town, "Die Straßenlaterne vor Hausnummer 12 ist dunkel.")
    bins = inbound(session, settings, town, "Die Biotonne wurde nicht geleert.")
    staff = clerk(session, town)
    assert rows(staff.get("/app/inbox?q=Straßenlaterne").text) == [lamp.reference]
    assert rows(staff.get("/app/inbox?q=biotonne").text) == [bins.reference]
    assert rows(staff.get("/app/inbox?q=Bioton").text) == [bins.reference]  # a word's beginning is enough
    assert rows(staff.get(f"/app/inbox?q={bins.reference}").text) == [bins.reference]
    for hostile in ['"', "AND OR NOT", "NEAR(", "*", "body:x", "'; DROP TABLE message; --", "^", "((", "_"]:
        answer = staff.get("/app/inbox", params={"q": hostile})
        assert answer.status_code == 200, hostile
    assert fts5_query('Laterne" OR x') == '"Laterne"* "OR"* "x"*'
    # The REST list takes the same search.
    token = tenancy.create_api_token(session, user=staff.user, name="test")
    session.commit()
    listed = staff.client.get("/api/v1/conversations?q=geleert", headers={"Authorization": f"Bearer {token}"})
    assert [item["reference"] for item in listed.json()["items"]] == [bins.reference]


def test_list_is_paginated(session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "PER_PAGE", 2)
    town = make_town(session)
    for number in range(3):
        inbound(session, settings, town, f"Nachricht {number}")
    staff = clerk(session, town)
    first = staff.get("/app/inbox")
    assert len(rows(first.text)) == 2 and "Seite 1 von 2" in first.text
    assert len(rows(staff.get("/app/inbox?page=2").text)) == 1


def test_conversation_shows_messages_notes_channel_and_delivery_state(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Guten Tag, eine Frage.")
    staff = clerk(session, town)
    acknowledgement = session.exec(
        select(Message).where(Message.conversation_id == conversation.id, Message.direction == "outbound")
    ).one()
    acknowledgement.status, acknowledgement.error_message = "failed", "Nummer ungültig (21211)"
    session.commit()
    assert staff.post(f"/app/inbox/{conversation.id}/note", {"text": "Bauhof informiert."}).status_code == 200
    page = staff.get(f"/app/inbox/{conversation.id}")
    text = page.text
    assert text.index("Guten Tag, eine Frage.") < text.index("Automatische Antwort") < text.index("Bauhof informiert.")
    assert "Interne Notiz" in text and "fehlgeschlagen" in text and "Nummer ungültig (21211)" in text
    assert "SMS" in text


def test_reply_queues_an_outbound_message_on_the_conversations_channel(
    session: Session, settings: Settings, sent: list[int]
) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Wann kommt die Müllabfuhr?")
    staff = clerk(session, town)
    answer = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "Morgen früh."}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/app/inbox/{conversation.id}?done=reply"
    reply = session.exec(select(Message).where(Message.body == "Morgen früh.")).one()
    assert reply.direction == "outbound" and reply.status == "queued" and reply.author_id == staff.user.id
    assert reply.channel_account_id == town.accounts["twilio"].id and reply.segments == 1
    assert sent == [reply.id]
    shown = staff.get(answer.headers["location"]).text
    assert "Die Antwort ist unterwegs." in shown and "in der Warteschlange" in shown
    empty = staff.post(f"/app/inbox/{conversation.id}/reply", {"text": "   "})
    assert empty.status_code == 422 and "Die Antwort ist leer." in empty.text
    english = staff.post(f"/app/inbox/{conversation.id}/reply?lang=en", {"text": "   "})
    assert english.status_code == 422 and "The reply is empty." in english.text
    note = staff.post(f"/app/inbox/{conversation.id}/note", {"text": ""})
    assert note.status_code == 422 and "The note is empty." in note.text
    stranger = staff.post(f"/app/inbox/{conversation.id}/merge", {"other": "A-1999-99999"})
    assert stranger.status_code == 422 and "There is no contact for “A-1999-99999”." in stranger.text
    assert sent == [reply.id]  # nothing refused went to the broker


def test_assign_status_and_labels(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Hallo")
    staff = clerk(session, town)
    colleague = clerk(session, town, "mayor")
    team = tenancy.create_team(session, municipality_id=town.id, name="Ordnungsamt")
    session.commit()
    staff.post(f"/app/inbox/{conversation.id}/assign", {"assignee": str(colleague.user.id), "team": str(team.id)})
    session.refresh(conversation)
    assert conversation.assignee_id == colleague.user.id and conversation.team_id == team.id
    staff.post(f"/app/inbox/{conversation.id}/assign", {"assignee": "me", "team": "keep"})
    session.refresh(conversation)
    assert conversation.assignee_id == staff.user.id and conversation.team_id == team.id

    staff.post(f"/app/inbox/{conversation.id}/status", {"status": "resolved"})
    session.refresh(conversation)
    assert conversation.status == "resolved" and conversation.resolved_at is not None
    assert staff.post(f"/app/inbox/{conversation.id}/status", {"status": "weg"}).status_code == 422

    staff.post(f"/app/inbox/{conversation.id}/labels", {"name": "  Lärm  "})
    label = tools.find_label(session, municipality_id=town.id, name="Lärm")
    assert label is not None
    staff.post(f"/app/inbox/{conversation.id}/labels", {"label": str(label.id)})  # twice is still once
    links = session.exec(select(ConversationLabel).where(ConversationLabel.conversation_id == conversation.id)).all()
    assert len(links) == 1
    assert "Lärm" in staff.get(f"/app/inbox/{conversation.id}").text
    staff.post(f"/app/inbox/{conversation.id}/labels/{label.id}/remove")
    assert session.exec(select(ConversationLabel)).all() == []


def test_canned_reply_is_filled_with_the_contacts_variables_in_a_sandbox(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Frage", kind="telegram", sender="99", name="Erika")
    staff = clerk(session, town)
    made = staff.post(
        "/app/inbox/canned-replies",
        {"title": "Dank", "body": "Hallo {{ name }}, Ihr Vorgang {{ reference }} ist bei uns."},
        follow_redirects=False,
    )
    assert made.status_code == 303
    canned = session.exec(select(CannedReply)).one()
    filled = staff.get(f"/app/inbox/{conversation.id}/canned/{canned.id}").json()["text"]
    assert filled == f"Hallo Erika, Ihr Vorgang {conversation.reference} ist bei uns."
    # Without JavaScript, the same text lands in the reply box.
    assert (
        f"Ihr Vorgang {conversation.reference} ist bei uns.</textarea>"
        in staff.get(f"/app/inbox/{conversation.id}?canned={canned.id}").text
    )
    # A snippet may not reach Python's internals, and a misspelt variable is refused when saved.
    escape = staff.post("/app/inbox/canned-replies", {"title": "Böse", "body": "{{ name.__class__.__mro__ }}"})
    assert escape.status_code == 422
    typo = staff.post("/app/inbox/canned-replies", {"title": "Tippfehler", "body": "Hallo {{ nmae }}"})
    assert typo.status_code == 422 and "Textbaustein, Zeile 1: den Platzhalter „nmae“ gibt es nicht." in typo.text
    assert len(session.exec(select(CannedReply)).all()) == 1
    staff.post(f"/app/inbox/canned-replies/{canned.id}", {"title": "Dank", "body": "Danke, {{ name }}!"})
    assert staff.get(f"/app/inbox/{conversation.id}/canned/{canned.id}").json()["text"] == "Danke, Erika!"
    staff.post(f"/app/inbox/canned-replies/{canned.id}/delete")
    assert session.exec(select(CannedReply)).all() == []


def test_a_canned_reply_greets_a_citizen_without_a_name_without_a_stray_comma(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Frage ohne Namen")
    staff = clerk(session, town)
    for title, body in (("Name", "Guten Tag {{ name }}, Ihr Vorgang {{ reference }} ist bei uns."),
                        ("Anrede", "{{ salutation }}, Ihr Vorgang {{ reference }} ist bei uns.")):  # fmt: skip
        assert staff.post("/app/inbox/canned-replies", {"title": title, "body": body}).status_code == 200
    for canned in session.exec(select(CannedReply)).all():
        filled = staff.get(f"/app/inbox/{conversation.id}/canned/{canned.id}").json()["text"]
        assert filled == f"Guten Tag, Ihr Vorgang {conversation.reference} ist bei uns."


def test_labels_page_creates_renames_and_deletes(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Hallo")
    staff = clerk(session, town)
    staff.post("/app/inbox/labels", {"name": "Baustelle"})
    assert staff.post("/app/inbox/labels", {"name": "Baustelle"}).status_code == 409
    label = tools.find_label(session, municipality_id=town.id, name="Baustelle")
    assert label is not None
    tools.add_label(session, municipality_id=town.id, conversation_id=conversation.id or 0, label_id=label.id)
    session.commit()
    staff.post(f"/app/inbox/labels/{label.id}", {"name": "Baustellen"})
    assert "Baustellen" in staff.get("/app/inbox/labels").text
    staff.post(f"/app/inbox/labels/{label.id}/delete")
    assert tools.list_labels(session, municipality_id=town.id) == []
    assert session.exec(select(ConversationLabel)).all() == []


def test_a_refused_label_or_canned_reply_says_why_in_the_pages_language_and_keeps_what_was_typed(
    session: Session,
) -> None:
    town = make_town(session)
    staff = clerk(session, town)
    staff.post("/app/inbox/labels", {"name": "Baustelle"})
    again = staff.post("/app/inbox/labels", {"name": "Baustelle"})
    assert again.status_code == 409 and "Das Label „Baustelle“ gibt es schon." in again.text
    assert 'id="label-new" name="name" maxlength="60" required value="Baustelle"' in again.text
    english = staff.post("/app/inbox/labels?lang=en", {"name": "Baustelle"})
    assert english.status_code == 409 and "The label “Baustelle” already exists." in english.text
    empty = staff.post("/app/inbox/canned-replies?lang=en", {"title": "Leer", "body": " "})
    assert empty.status_code == 422 and "The text of the canned reply is empty." in empty.text
    assert 'name="title" maxlength="120" required value="Leer"' in empty.text
    assert "Saved." in staff.get("/app/inbox/labels?lang=en&done=saved").text


def test_contact_panel_identities_subscription_consent_and_merge(session: Session, settings: Settings) -> None:
    town = make_town(session)
    by_sms = inbound(session, settings, town, "Per SMS", sender="+4915100000001")
    by_chat = inbound(session, settings, town, "Per Telegram", kind="telegram", sender="31337", name="Erika")
    consent.subscribe(
        session, municipality_id=town.id, contact_id=by_chat.contact_id, channel_kind="telegram", source="telegram",
        topic_ids=[catalogue.list_topics(session, municipality_id=town.id)[0].id or 0], evidence={"message": 1},
    )  # fmt: skip
    session.commit()
    staff = clerk(session, town)
    merged = staff.post(f"/app/inbox/{by_chat.id}/merge", {"other": "+49 151 00000001"}, follow_redirects=False)
    assert merged.status_code == 303
    panel = staff.get(merged.headers["location"]).text
    assert "Die Kontakte sind zusammengeführt." in panel
    assert "+4915100000001" in panel and "31337" in panel  # identities on both channels
    assert "aktiv" in panel and "angemeldet" in panel  # subscription and its consent history
    session.refresh(by_sms)
    assert by_sms.contact_id == by_chat.contact_id
    assert session.get(Contact, by_chat.contact_id) is not None
    unknown = staff.post(f"/app/inbox/{by_chat.id}/merge", {"other": "niemand@nirgends.example"})
    assert unknown.status_code == 422 and "keinen Kontakt" in unknown.text


def test_viewer_sees_everything_but_no_forms_and_every_post_is_refused(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Hallo")
    before = len(session.exec(select(Message)).all())
    viewer = clerk(session, town, "viewer")
    page = viewer.get(f"/app/inbox/{conversation.id}")
    assert page.status_code == 200 and "Hallo" in page.text
    assert 'method="post" action="/app/inbox' not in page.text
    assert viewer.get("/app/inbox").status_code == 200
    assert viewer.get("/app/inbox/canned-replies").status_code == 403
    for path, form in [
        ("reply", {"text": "x"}), ("note", {"text": "x"}), ("assign", {"assignee": "me"}),
        ("status", {"status": "resolved"}), ("labels", {"name": "x"}), ("merge", {"other": "x"}),
    ]:  # fmt: skip
        assert viewer.post(f"/app/inbox/{conversation.id}/{path}", form).status_code == 403, path
    assert viewer.post("/app/inbox/labels", {"name": "x"}).status_code == 403
    assert viewer.post("/app/inbox/canned-replies", {"title": "x", "body": "y"}).status_code == 403
    assert len(session.exec(select(Message)).all()) == before


def test_staff_of_another_town_never_see_its_conversations(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.2)
    town_a = make_town(session, "stadt-a")
    town_b = make_town(session, "stadt-b")
    secret = inbound(session, settings, town_a, "Vertraulich: Baugenehmigung Lindenweg")
    label = tools.create_label(session, municipality_id=town_a.id, name="Geheim")
    canned = tools.save_canned(session, municipality_id=town_a.id, title="A", body="Hallo")
    session.commit()
    other = clerk(session, town_b)
    assert other.get(f"/app/inbox/{secret.id}").status_code == 404
    assert other.get(f"/app/inbox/{secret.id}/canned/{canned.id}").status_code == 404
    assert other.get(f"/app/inbox/events?conversation={secret.id}").status_code == 404
    assert "event: row" not in other.get("/app/inbox/events?cursor=0&status=all").text
    assert other.post(f"/app/inbox/{secret.id}/reply", {"text": "x"}).status_code == 404
    assert other.post(f"/app/inbox/{secret.id}/status", {"status": "resolved"}).status_code == 404
    assert other.post(f"/app/inbox/labels/{label.id}/delete").status_code == 404
    assert rows(other.get("/app/inbox?status=all").text) == []
    assert rows(other.get("/app/inbox?q=Baugenehmigung").text) == []
    assert rows(other.get(f"/app/inbox?q={secret.reference}").text) == []
    # B's own conversation cannot be given A's label, and a merge cannot reach A's contacts.
    own = inbound(session, settings, town_b, "Meine Frage")
    assert other.post(f"/app/inbox/{own.id}/labels", {"label": str(label.id)}).status_code == 404
    sender = tools.find_contact(session, municipality_id=town_a.id, address_or_reference=secret.reference)
    assert sender.municipality_id == town_a.id
    refused = other.post(f"/app/inbox/{own.id}/merge", {"other": secret.reference})
    assert refused.status_code == 422


@pytest.mark.parametrize(
    "hostile", ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<b onmouseover=alert(1)>Hallo</b>"]
)
def test_a_citizens_markup_is_shown_as_inert_text(session: Session, settings: Settings, hostile: str) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, hostile, name=hostile)
    staff = clerk(session, town)
    for path in (f"/app/inbox/{conversation.id}", "/app/inbox"):
        page = staff.get(path)
        assert hostile not in page.text
        assert html.escape(hostile, quote=False).replace("&quot;", '"') in page.text.replace("&#34;", '"')
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_live_stream_sends_new_rows_messages_and_presence(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.5)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    town = make_town(session)
    conversation = inbound(session, settings, town, "Erste Nachricht", sender="+4915100000077")
    staff = clerk(session, town)
    colleague = clerk(session, town, "mayor")
    page = staff.get("/app/inbox").text
    cursor = int(re.search(r"events\?cursor=(\d+)", page).group(1))  # type: ignore[union-attr]
    assert staff.get(f"/app/inbox/events?cursor={cursor}").text.count("event: row") == 0

    newer = inbound(session, settings, town, "<script>alert(1)</script> Zweite", sender="+4915199999999")
    stream = staff.get(f"/app/inbox/events?cursor={cursor}").text
    assert "event: row" in stream and newer.reference in stream
    assert "<script>alert" not in stream  # fragments are escaped like the page
    # A filter the new conversation does not match keeps it out.
    assert newer.reference not in staff.get(f"/app/inbox/events?cursor={cursor}&channel=telegram").text

    colleague.get(f"/app/inbox/{conversation.id}")
    inbound(session, settings, town, "Nachtrag", sender="+4915100000077")
    opened = staff.get(f"/app/inbox/events?cursor={cursor}&conversation={conversation.id}").text
    assert "event: message" in opened and "Nachtrag" in opened
    assert "event: presence" in opened and colleague.user.name in opened


def test_presence_shows_colleagues_seen_in_the_last_half_minute(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Hallo")
    staff = clerk(session, town)
    colleague = clerk(session, town, "viewer")
    assert "Gerade auch hier" not in staff.get(f"/app/inbox/{conversation.id}").text
    colleague.get(f"/app/inbox/{conversation.id}")
    assert f"Gerade auch hier: {colleague.user.name}" in staff.get(f"/app/inbox/{conversation.id}").text


def test_pages_for_managing_and_help_render(session: Session, settings: Settings) -> None:
    town = make_town(session)
    staff: Clerk = clerk(session, town)
    assert "Textbausteine" in staff.get("/app/inbox/canned-replies").text
    assert "Labels" in staff.get("/app/inbox/labels").text
    assert "Zur Suche springen" in staff.get("/app/inbox/shortcuts").text
    assert staff.get("/app/inbox/999999").status_code == 404


def test_pages_in_english(session: Session, settings: Settings) -> None:
    town = make_town(session)
    conversation = inbound(session, settings, town, "Hallo")
    staff = clerk(session, town)
    assert "Search messages" in staff.get("/app/inbox?lang=en").text
    page = staff.get(f"/app/inbox/{conversation.id}?lang=en").text
    assert "Reply by SMS" in page and "Citizen's message" in page


def test_conversations_past_their_teams_target_are_marked_and_can_be_listed(
    session: Session, settings: Settings, sent: list[int]
) -> None:
    town = make_town(session)
    town.municipality.preferences = {"office_hours": {}}  # around the clock, so the test does not depend on the day
    team = tenancy.create_team(session, municipality_id=town.id, name="Bauamt")
    team.first_response_minutes = 60
    late = inbound(session, settings, town, "Seit Stunden keine Antwort")
    fresh = inbound(session, settings, town, "Gerade geschrieben")
    late.created_at = late.created_at - timedelta(hours=2)
    late.last_inbound_at = late.created_at
    late.team_id = fresh.team_id = team.id
    session.commit()
    staff = clerk(session, town)
    listed = staff.get("/app/inbox").text
    late_row = listed[listed.index(late.reference) :].split("</tr>")[0]
    fresh_row = listed[listed.index(fresh.reference) :].split("</tr>")[0]
    assert "überfällig" in late_row and "2 Std." in late_row
    assert "überfällig" not in fresh_row
    assert rows(staff.get("/app/inbox?overdue=1").text) == [late.reference]
    assert "überfällig" in staff.get(f"/app/inbox/{late.id}").text
    # Answered: the citizen no longer waits, though the first answer came late.
    staff.post(f"/app/inbox/{late.id}/reply", {"text": "Entschuldigung, wir kümmern uns."})
    answered = staff.get("/app/inbox").text
    assert "beantwortet" in answered[answered.index(late.reference) :].split("</tr>")[0]
