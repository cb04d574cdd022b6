"""Subscriptions and their consent record, targeting, and signed links, on a migrated SQLite database."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from hub.contacts.service import resolve_contact
from hub.errors import Conflict, InvalidInput, NotFound
from hub.subscribers import catalogue, consent, demo, listing, selection, signed_links
from hub.subscribers.models import ConsentEvent, Topic
from tests.unit.db import Town, make_town


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


def new_contact(session: Session, town: Town, phone: str = "+4915112345678") -> int:
    contact = resolve_contact(session, municipality_id=town.id, kind="phone", address=phone)
    assert contact.id is not None
    return contact.id


def topic_id(session: Session, town: Town, key: str) -> int:
    topic = catalogue.find_topic(session, municipality_id=town.id, word=key)
    assert topic is not None and topic.id is not None
    return topic.id


def district_id(session: Session, town: Town, key: str) -> int:
    district = catalogue.find_district(session, municipality_id=town.id, word=key)
    assert district is not None and district.id is not None
    return district.id


def events(session: Session, contact_id: int) -> list[str]:
    return [e.action for e in session.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id))]


def test_topics_and_districts_are_found_by_key_or_name_ignoring_case(session: Session, town: Town) -> None:
    assert catalogue.find_topic(session, municipality_id=town.id, word="ABFALL").key == "abfall"  # type: ignore[union-attr]
    assert catalogue.find_topic(session, municipality_id=town.id, word="roadworks").key == "baustellen"  # type: ignore[union-attr]
    assert catalogue.find_district(session, municipality_id=town.id, word="süd").key == "sued"  # type: ignore[union-attr]
    assert catalogue.find_topic(session, municipality_id=town.id, word="sperrmüll") is None
    with pytest.raises(Conflict):
        catalogue.create_topic(session, municipality_id=town.id, key="Abfall", name_de="Abfall")
    with pytest.raises(InvalidInput, match="Schlüssel"):
        catalogue.create_district(session, municipality_id=town.id, key="süd west", name="Südwest")


def test_topics_of_another_municipality_are_not_visible(session: Session, town: Town) -> None:
    other = make_town(session, slug="nachbarort")
    contact_id = new_contact(session, town)
    with pytest.raises(InvalidInput, match="gibt es nicht"):
        consent.subscribe(
            session,
            municipality_id=town.id,
            contact_id=contact_id,
            channel_kind="twilio",
            source="keyword",
            evidence={},
            topic_ids=[topic_id(session, other, "abfall")],
        )
    with pytest.raises(NotFound):
        consent.subscribe(
            session, municipality_id=other.id, contact_id=contact_id, channel_kind=None, source="api", evidence={}
        )


def test_every_change_of_consent_writes_exactly_one_event(session: Session, town: Town) -> None:
    contact_id = new_contact(session, town)
    kwargs = {"municipality_id": town.id, "contact_id": contact_id, "channel_kind": "twilio", "evidence": {}}
    first = consent.subscribe(session, source="keyword", topic_ids=[topic_id(session, town, "abfall")], **kwargs)  # type: ignore[arg-type]
    assert first.subscription.state == "active" and first.event is not None
    again = consent.subscribe(session, source="keyword", topic_ids=[topic_id(session, town, "abfall")], **kwargs)  # type: ignore[arg-type]
    assert again.event is None
    consent.subscribe(session, source="api", district_ids=[district_id(session, town, "nord")], **kwargs)  # type: ignore[arg-type]
    stopped = consent.stop(session, source="keyword", **kwargs)  # type: ignore[arg-type]
    assert stopped.subscription.state == "stopped" and consent.is_stopped(session, contact_id)
    assert consent.stop(session, source="keyword", **kwargs).event is None  # type: ignore[arg-type]
    restarted = consent.restart(session, source="keyword", **kwargs)  # type: ignore[arg-type]
    assert restarted.subscription.state == "active" and not consent.is_stopped(session, contact_id)
    # The topics and district survive STOP and come back with START.
    assert consent.topic_ids_of(session, restarted.subscription) == [topic_id(session, town, "abfall")]
    assert consent.district_ids_of(session, restarted.subscription) == [district_id(session, town, "nord")]
    assert events(session, contact_id) == ["subscribed", "topics_changed", "stopped", "restarted"]
    history = consent.consent_history(session, municipality_id=town.id, contact_id=contact_id)
    assert history[0].source == "keyword" and history[0].channel_kind == "twilio"
    assert history[1].evidence["districts"] == [district_id(session, town, "nord")]


def test_stop_without_a_subscription_records_the_objection(session: Session, town: Town) -> None:
    contact_id = new_contact(session, town)
    change = consent.stop(
        session,
        municipality_id=town.id,
        contact_id=contact_id,
        channel_kind="telegram",
        source="telegram",
        evidence={"message_id": 7},
    )
    assert change.subscription.state == "stopped"
    assert events(session, contact_id) == ["stopped"]


def subscribe(session: Session, town: Town, phone: str, topics: list[str], districts: list[str]) -> int:
    contact_id = new_contact(session, town, phone)
    consent.subscribe(
        session,
        municipality_id=town.id,
        contact_id=contact_id,
        channel_kind="twilio",
        source="api",
        evidence={},
        topic_ids=[topic_id(session, town, key) for key in topics],
        district_ids=[district_id(session, town, key) for key in districts],
    )
    return contact_id


def test_subscriber_query_targets_topics_and_districts_with_any_and_all(session: Session, town: Town) -> None:
    abfall_nord = subscribe(session, town, "+4915100000001", ["abfall"], ["nord"])
    both_anywhere = subscribe(session, town, "+4915100000002", ["abfall", "baustellen"], [])
    everything = subscribe(session, town, "+4915100000003", [], [])
    baustellen_sued = subscribe(session, town, "+4915100000004", ["baustellen"], ["sued"])
    stopped = subscribe(session, town, "+4915100000005", [], [])
    consent.stop(session, municipality_id=town.id, contact_id=stopped, channel_kind=None, source="api", evidence={})
    other_town = make_town(session, slug="nachbarort")
    subscribe(session, other_town, "+4915100000006", [], [])

    def reached(topics: list[str], topic_match: str, districts: list[str], district_match: str) -> set[int]:
        query = selection.subscriber_query(
            town.id,
            [topic_id(session, town, key) for key in topics],
            topic_match,  # type: ignore[arg-type]
            [district_id(session, town, key) for key in districts],
            district_match,  # type: ignore[arg-type]
        )
        return {row[0] for row in session.execute(query)}

    assert reached([], "any", [], "any") == {abfall_nord, both_anywhere, everything, baustellen_sued}
    assert reached(["abfall"], "any", [], "any") == {abfall_nord, both_anywhere, everything}
    assert reached(["abfall", "baustellen"], "all", [], "any") == {both_anywhere, everything}
    assert reached(["baustellen"], "any", ["nord"], "any") == {both_anywhere, everything}
    assert reached([], "any", ["nord", "sued"], "any") == {abfall_nord, both_anywhere, everything, baustellen_sued}
    assert reached([], "any", ["nord", "sued"], "all") == {both_anywhere, everything}
    rows = session.execute(selection.subscriber_query(town.id, [], "any", [], "any")).all()
    assert all(language == "de" for _, language in rows)


def test_subscribers_are_listed_filtered_and_searched(session: Session, town: Town) -> None:
    first = subscribe(session, town, "+4915100000011", ["abfall"], ["nord"])
    second = subscribe(session, town, "+4915100000022", ["baustellen"], [])
    consent.stop(session, municipality_id=town.id, contact_id=second, channel_kind=None, source="api", evidence={})
    listed = listing.list_subscribers(session, municipality_id=town.id, per_page=1)
    assert listed.total == 2 and listed.pages == 2 and len(listed.items) == 1
    assert [s.contact.id for s in listing.list_subscribers(session, municipality_id=town.id, state="active").items] == [
        first
    ]
    assert [s.contact.id for s in listing.list_subscribers(session, municipality_id=town.id, topic="ABFALL").items] == [
        first
    ]
    assert [
        s.contact.id for s in listing.list_subscribers(session, municipality_id=town.id, district="nord").items
    ] == [first]
    found = listing.list_subscribers(session, municipality_id=town.id, search="00022").items
    assert [s.contact.id for s in found] == [second]
    assert [i.address for i in found[0].identities] == ["+4915100000022"]
    with pytest.raises(InvalidInput):
        listing.list_subscribers(session, municipality_id=town.id, topic="sperrmuell")


def test_demo_seed_is_idempotent(session: Session, town: Town) -> None:
    demo.seed_subscriber_demo(session, town.id)
    keys = [t.key for t in session.exec(select(Topic).where(Topic.municipality_id == town.id))]
    assert keys == ["baustellen", "abfall", "veranstaltungen", "warnungen"]
    assert [t.is_warning for t in catalogue.list_topics(session, municipality_id=town.id)] == [
        False,
        False,
        False,
        True,
    ]
    assert [d.name for d in catalogue.list_districts(session, municipality_id=town.id)] == [
        "Mitte",
        "Nord",
        "Süd",
        "Ost",
    ]


def test_signed_tokens_refuse_tampering_other_purposes_and_age() -> None:
    token = signed_links.sign_token({"e": "erika@example.org"}, purpose="a")
    assert signed_links.read_token(token, purpose="a", max_age_seconds=60)["e"] == "erika@example.org"
    body, _, signature = token.partition(".")
    forged = signed_links.sign_token({"e": "mallory@example.org"}, purpose="a").split(".")[0] + "." + signature
    for bad in (forged, token + "x", "garbage", body):
        with pytest.raises(InvalidInput, match="ungültig"):
            signed_links.read_token(bad, purpose="a", max_age_seconds=60)
    with pytest.raises(InvalidInput, match="ungültig"):
        signed_links.read_token(token, purpose="b", max_age_seconds=60)
    time.sleep(1.1)
    with pytest.raises(InvalidInput, match="abgelaufen"):
        signed_links.read_token(token, purpose="a", max_age_seconds=0)
