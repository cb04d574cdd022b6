"""Broadcasts on a migrated SQLite database, sent through the real SDKs to the sandbox emulators."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from channels.base import InboundMessage, StatusUpdate, WebhookRequest
from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub.broadcasts import fanout, service
from hub.broadcasts.fanout import batch_ranges, claim_start, expand
from hub.broadcasts.models import Broadcast, Delivery
from hub.broadcasts.sending import broadcasts_needing_dispatch, claim_range, send_range, settle_stale
from hub.contacts.merge import merge
from hub.contacts.models import Contact, ContactIdentity
from hub.db import session_scope, utcnow
from hub.errors import Conflict, Forbidden, InvalidInput
from hub.inbox.models import InboundEvent
from hub.inbox.pipeline import process_event
from hub.inbox.receive import store_events
from hub.settings import Settings
from hub.subscribers import consent, demo
from hub.subscribers.models import District, Subscription, Topic
from hub.subscribers.selection import subscriber_query
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser
from tests.redis_claim import claim_redis_database
from tests.unit.conftest import FakeProvider
from tests.unit.test_admin_pages import twilio_answer
from workers.tasks import stop_everywhere, warm_up


@dataclass
class Town:
    municipality: Municipality
    staff: StaffUser
    mayor: StaffUser
    sms: ChannelAccount
    telegram: ChannelAccount
    sandbox: SandboxClient

    @property
    def id(self) -> int:
        assert self.municipality.id is not None
        return self.municipality.id


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def town(session: Session, sandbox: SandboxServer) -> Town:
    municipality = tenancy.create_municipality(session, slug="musterdorf", name="Gemeinde Musterdorf")
    assert municipality.id is not None
    staff = tenancy.create_user(session, municipality_id=municipality.id, email="s@x.de", name="Sven", role="staff")
    mayor = tenancy.create_user(session, municipality_id=municipality.id, email="m@x.de", name="Maria", role="mayor")
    demo.seed_subscriber_demo(session, municipality.id)
    sms = tenancy.create_channel_account(
        session, municipality_id=municipality.id, kind="twilio", name="SMS",
        config={"account_sid": "AC" + "5" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
    )  # fmt: skip
    telegram = tenancy.create_channel_account(
        session, municipality_id=municipality.id, kind="telegram", name="Bot",
        config={"bot_username": "DorfBot", "api_base_url": f"{sandbox.url}/bot"},
    )  # fmt: skip
    session.commit()
    client = SandboxClient(sandbox.url)
    for account in (sms, telegram):
        client.register_account(kind=account.kind, config=account.config, secrets=account.secrets, webhook_url=None)
    return Town(municipality=municipality, staff=staff, mayor=mayor, sms=sms, telegram=telegram, sandbox=client)


def topic(session: Session, town: Town, key: str) -> int:
    found = session.exec(select(Topic).where(Topic.municipality_id == town.id, Topic.key == key)).one()
    assert found.id is not None
    return found.id


def district(session: Session, town: Town, key: str) -> int:
    found = session.exec(select(District).where(District.municipality_id == town.id, District.key == key)).one()
    assert found.id is not None
    return found.id


def citizen(session: Session, town: Town, address: str, *, kind: str = "phone", topics: list[str] = (),  # type: ignore[assignment]
            districts: list[str] = (), state: str = "active", language: str = "de") -> int:  # type: ignore[assignment]  # fmt: skip
    contact = Contact(municipality_id=town.id, display_name=f"Person {address}", language=language)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    session.add(ContactIdentity(municipality_id=town.id, contact_id=contact.id, kind=kind, address=address))
    consent.subscribe(
        session, municipality_id=town.id, contact_id=contact.id, channel_kind="twilio", source="api", evidence={},
        topic_ids=[topic(session, town, key) for key in topics],
        district_ids=[district(session, town, key) for key in districts], language=language, state=state,
    )  # fmt: skip
    session.commit()
    return contact.id


def phones(count: int, start: int = 0) -> list[str]:
    return [f"+49151{start + n:08d}" for n in range(count)]


def draft(**overrides: object) -> service.Draft:
    values: dict[str, object] = {
        "kind": "announcement",
        "title": "Straßensperrung",
        "texts": {"de": {"body": "Hallo {{ name }}, die Hauptstraße ist gesperrt."}},
    }
    values.update(overrides)
    return service.Draft(**values)  # type: ignore[arg-type]


def approved(session: Session, town: Town, **overrides: object) -> Broadcast:
    broadcast = service.create(session, author=town.mayor, draft=draft(**overrides))
    assert broadcast.id is not None
    if broadcast.kind not in service.URGENT_KINDS:
        service.submit(session, actor=town.staff, broadcast_id=broadcast.id)
    service.approve(session, actor=town.mayor, broadcast_id=broadcast.id)
    broadcast.send_at = utcnow() - timedelta(seconds=1)  # past any quiet hours the clock is in
    session.commit()
    return broadcast


def start(session: Session, broadcast: Broadcast) -> int:
    assert broadcast.id is not None and claim_start(session, broadcast.id)
    session.commit()
    return expand(lambda: Session(session.get_bind(), expire_on_commit=False), broadcast.id)


def send_all(settings: Settings, broadcast_id: int, rounds: int = 40) -> None:
    """Runs the batches until nothing is left to send, as the workers would."""
    for _ in range(rounds):
        with session_scope() as session:
            ranges = batch_ranges(session, broadcast_id)
            waiting = session.exec(
                select(Delivery.id).where(Delivery.broadcast_id == broadcast_id, col(Delivery.state) == "queued")
            ).first()
            if waiting is None:
                return
            # Let retries fall due at once: the backoff itself is tested in test_inbox_pipeline.
            session.execute(
                update(Delivery).where(col(Delivery.broadcast_id) == broadcast_id).values(next_attempt_at=None)
            )
        for first, last in ranges:
            send_range(settings, broadcast_id, first, last, on_opted_out=stop_everywhere)
    raise AssertionError("deliveries still queued after all rounds")


def targeted(session: Session, town: Town, topic_ids: list[int] = (), topic_match: str = "any",  # type: ignore[assignment]
             district_ids: list[int] = (), district_match: str = "any") -> set[int]:  # type: ignore[assignment]  # fmt: skip
    query = subscriber_query(town.id, topic_ids, topic_match, district_ids, district_match)  # type: ignore[arg-type]
    return {contact_id for contact_id, _ in session.execute(query)}


def test_targeting_by_topic_and_district_excludes_stopped_and_pending(session: Session, town: Town) -> None:
    waste_north = citizen(session, town, "+4915100000001", topics=["abfall"], districts=["nord"])
    waste_and_works = citizen(session, town, "+4915100000002", topics=["abfall", "baustellen"])
    everything = citizen(session, town, "+4915100000003")
    stopped = citizen(session, town, "+4915100000004", topics=["abfall"], state="stopped")
    pending = citizen(session, town, "+4915100000005", topics=["abfall"], state="pending")
    waste, works, north = (
        topic(session, town, "abfall"),
        topic(session, town, "baustellen"),
        district(session, town, "nord"),
    )

    assert targeted(session, town) == {waste_north, waste_and_works, everything}
    assert targeted(session, town, topic_ids=[waste]) == {waste_north, waste_and_works, everything}
    assert targeted(session, town, topic_ids=[waste, works], topic_match="all") == {waste_and_works, everything}
    south = district(session, town, "sued")
    # A subscriber without a district hears about the whole town.
    assert targeted(session, town, district_ids=[south]) == {waste_and_works, everything}
    assert targeted(session, town, district_ids=[north]) == {waste_north, waste_and_works, everything}
    assert stopped not in targeted(session, town) and pending not in targeted(session, town)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"texts": {"de": {"body": "  "}}}, "deutsche Text"),
        ({"texts": {"en": {"body": "Hello"}}}, "deutsche Text"),
        ({"kind": "warning"}, "Stufe"),
        ({"kind": "survey", "options": ["Ja"]}, "2 bis 9"),
        ({"options": ["Ja", "Nein"]}, "nur bei Umfragen"),
        ({"topic_ids": [99999]}, "Thema 99999 gibt es nicht"),
        ({"channel_kinds": ["fax"]}, "Unbekannter Kanaltyp"),
        ({"kind": "all_clear", "severity": "Minor"}, "Entwarnung"),
        ({"texts": {"de": {"body": "x" * 1600}}}, "für twilio zu lang"),
    ],
)
def test_invalid_drafts_are_refused_with_a_reason(session: Session, town: Town, overrides: dict[str, object],
                                                  message: str) -> None:  # fmt: skip
    with pytest.raises(InvalidInput, match=message):
        service.create(session, author=town.staff, draft=draft(**overrides))


def test_staff_drafts_a_mayor_approves_and_only_warnings_skip_submission(session: Session, town: Town) -> None:
    announcement = service.create(session, author=town.staff, draft=draft())
    assert announcement.id is not None
    with pytest.raises(Conflict, match="eingereicht"):
        service.approve(session, actor=town.mayor, broadcast_id=announcement.id)
    service.submit(session, actor=town.staff, broadcast_id=announcement.id)
    with pytest.raises(Forbidden):
        service.approve(session, actor=town.staff, broadcast_id=announcement.id)
    assert service.approve(session, actor=town.mayor, broadcast_id=announcement.id).status == "approved"

    warning = service.create(session, author=town.mayor, draft=draft(kind="warning", severity="Severe"))
    assert warning.id is not None
    assert service.approve(session, actor=town.mayor, broadcast_id=warning.id).status == "approved"


def test_quiet_hours_hold_announcements_until_morning(town: Town) -> None:
    berlin_night = datetime(2026, 11, 21, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    morning = service.after_quiet_hours(town.municipality, berlin_night)
    assert morning == datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
    noon = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    assert service.after_quiet_hours(town.municipality, noon) == noon


def test_every_recipient_gets_exactly_one_message_even_when_sending_runs_twice(
    session: Session, settings: Settings, town: Town
) -> None:
    numbers = phones(12)
    for number in numbers:
        citizen(session, town, number, topics=["abfall"])
    broadcast = approved(session, town, topic_ids=[topic(session, town, "abfall")])
    assert start(session, broadcast) == 12
    assert broadcast.id is not None
    assert start_again_adds_nothing(session, broadcast.id)
    send_all(settings, broadcast.id)
    send_all(settings, broadcast.id)  # a second run of every batch, as after a redelivered task

    received = Counter(item["to"] for item in town.sandbox.outbox(kind="twilio"))
    assert received == dict.fromkeys(numbers, 1)
    first = town.sandbox.outbox(kind="twilio")[0]["text"]
    assert "Hallo Person +49151" in first and "STOP zum Abmelden" in first
    report = service.report(session, municipality_id=town.id, broadcast_id=broadcast.id)
    assert report["totals"]["sent"] + report["totals"]["delivered"] == 12


def start_again_adds_nothing(session: Session, broadcast_id: int) -> bool:
    again = expand(lambda: Session(session.get_bind(), expire_on_commit=False), broadcast_id)
    return again == 12


def test_injected_429_and_5xx_still_end_in_each_message_once(session: Session, settings: Settings, town: Town) -> None:
    numbers = phones(20, start=100)
    for number in numbers:
        citizen(session, town, number)
    town.sandbox.set_faults(kind="twilio", rate_429=0.1, rate_5xx=0.2, seed=7)
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)
    assert Counter(item["to"] for item in town.sandbox.outbox(kind="twilio")) == dict.fromkeys(numbers, 1)


@pytest.mark.parametrize("limiter", ["memory", pytest.param("redis", marks=pytest.mark.production)])
def test_rate_limit_is_never_exceeded_in_any_second(
    session: Session, settings: Settings, town: Town, limiter: str, request: pytest.FixtureRequest
) -> None:
    if limiter == "redis":
        settings.rate_limit_url, release = claim_redis_database()
        request.addfinalizer(release)
    else:
        settings.rate_limit_url = "memory://"
    town.sms.config = {**town.sms.config, "rate_per_second": 5}
    session.add(town.sms)
    for number in phones(16, start=200):
        citizen(session, town, number)
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)
    times = sorted(datetime.fromisoformat(item["received_at"]) for item in town.sandbox.outbox(kind="twilio"))
    assert len(times) == 16
    busiest = max(sum(1 for t in times if first <= t < first + timedelta(seconds=1)) for first in times)
    assert busiest <= 5


def test_an_announcement_yields_to_a_warning_that_is_sending(session: Session, settings: Settings, town: Town) -> None:
    for number in phones(5, start=300):
        citizen(session, town, number)
    announcement = approved(session, town)
    start(session, announcement)
    warning = approved(session, town, kind="warning", severity="Extreme", title="Hochwasser")
    start(session, warning)
    assert announcement.id is not None and warning.id is not None
    [(first, last)] = batch_ranges(session, announcement.id)
    outcome = send_range(settings, announcement.id, first, last, on_opted_out=stop_everywhere)
    assert outcome.yielded and outcome.sent == 0
    send_all(settings, warning.id)
    send_all(settings, announcement.id)
    texts = [item["text"] for item in town.sandbox.outbox(kind="twilio")]
    assert all(text.startswith("WARNUNG (extrem): Hochwasser") for text in texts[:5])
    assert len(texts) == 10


def test_provider_opt_out_stops_the_subscription_everywhere(session: Session, settings: Settings, town: Town) -> None:
    blocked, reachable = "+4915199990001", "+4915199990002"
    blocked_id = citizen(session, town, blocked)
    citizen(session, town, reachable)
    town.sandbox.send_sms(from_=blocked, to=town.sms.address, body="STOP")  # Twilio now answers 21610
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)
    delivery = session.exec(select(Delivery).where(Delivery.contact_id == blocked_id)).one()
    session.refresh(delivery)
    assert delivery.state == "opted_out" and delivery.error_code == "21610"
    subscription = session.exec(select(Subscription).where(Subscription.contact_id == blocked_id)).one()
    session.refresh(subscription)
    assert subscription.state == "stopped"
    assert [item["to"] for item in town.sandbox.outbox(kind="twilio")] == [reachable]


def test_cancel_stops_what_was_not_yet_sent(session: Session, settings: Settings, town: Town) -> None:
    for number in phones(4, start=400):
        citizen(session, town, number)
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    service.cancel(session, actor=town.mayor, broadcast_id=broadcast.id)
    session.commit()
    send_all(settings, broadcast.id)
    assert town.sandbox.outbox(kind="twilio") == []
    assert service.report(session, municipality_id=town.id, broadcast_id=broadcast.id)["totals"]["cancelled"] == 4


def test_preview_counts_recipients_and_prices_sms(session: Session, town: Town) -> None:
    for number in phones(3, start=500):
        citizen(session, town, number)
    citizen(session, town, "+4915100000599", language="en")
    broadcast = service.create(
        session, author=town.staff,
        draft=draft(texts={"de": {"body": "Kurz."}, "en": {"body": "Short."}}, channel_kinds=["twilio"]),
    )  # fmt: skip
    assert broadcast.id is not None
    found = service.preview_broadcast(session, municipality_id=town.id, broadcast_id=broadcast.id)
    assert found.recipients == 4 and found.by_language == {"de": 3, "en": 1}
    [german, english] = found.channels
    assert (german.language, german.segments, german.encoding) == ("de", 1, "GSM-7")
    assert english.text.endswith("STOP to unsubscribe")
    assert found.sms_cost_estimate_eur == pytest.approx(4 * 0.08)


def reply_sms(session: Session, settings: Settings, town: Town, sender: str, text: str, sid: str) -> str:
    """The citizen answers by SMS: stored and run through the inbound pipeline, as a worker would."""
    request = WebhookRequest(url="http://hub/webhooks/twilio/1", headers={}, body=b"")
    [stored] = store_events(
        session, account=town.sms, request=request, events=[InboundMessage(provider_id=sid, sender=sender, text=text)]
    )
    session.commit()
    outcome = process_event(session, settings, stored.id).outcome
    session.commit()
    return outcome


def test_survey_answers_by_sms_are_counted_once_per_citizen(session: Session, settings: Settings, town: Town) -> None:
    voter, other = "+4915170000001", "+4915170000002"
    citizen(session, town, voter)
    citizen(session, town, other)
    survey = approved(session, town, kind="survey", title="Neuer Spielplatz?", options=["Ja", "Nein", "Egal"],
                      texts={"de": {"body": "Soll im Park ein Spielplatz entstehen?"}})  # fmt: skip
    start(session, survey)
    assert survey.id is not None
    send_all(settings, survey.id)
    question = town.sandbox.outbox(kind="twilio", to=voter)[0]["text"]
    assert "Antworten Sie mit 1 für Ja, 2 für Nein, 3 für Egal." in question

    assert reply_sms(session, settings, town, voter, "2", "SMv1").startswith("survey: ")
    assert reply_sms(session, settings, town, voter, "ja", "SMv2").startswith("survey: ")  # changes their mind
    assert reply_sms(session, settings, town, other, "Egal!", "SMv3").startswith("survey: ")
    answers = service.report(session, municipality_id=town.id, broadcast_id=survey.id)["answers"]
    assert answers == [{"option": "Ja", "count": 1}, {"option": "Nein", "count": 0}, {"option": "Egal", "count": 1}]
    exported = service.report_csv(session, municipality_id=town.id, broadcast_id=survey.id).splitlines()
    assert exported[0].endswith(";antwort")
    assert sorted(line.split(";")[-1] for line in exported[1:]) == ["Egal", "Ja"]

    # An ordinary message is not a vote, and a closed survey says so instead of counting.
    assert not reply_sms(session, settings, town, other, "Wann öffnet das Bad?", "SMv4").startswith("survey: ")
    survey.closes_at = utcnow() - timedelta(minutes=1)
    session.add(survey)
    session.commit()
    assert reply_sms(session, settings, town, voter, "3", "SMv5").endswith("already closed")
    answers = service.report(session, municipality_id=town.id, broadcast_id=survey.id)["answers"]
    assert answers[0]["count"] == 1 and answers[2]["count"] == 1


@pytest.mark.parametrize(("kind", "in_flight_resent"), [("announcement", False), ("warning", True)])
def test_a_crashed_worker_leaves_no_duplicate_and_no_silent_gap(
    session: Session, settings: Settings, town: Town, kind: str, in_flight_resent: bool
) -> None:
    numbers = phones(6, start=600)
    for number in numbers:
        citizen(session, town, number)
    broadcast = approved(session, town, kind=kind, severity="Minor" if kind == "warning" else None)
    start(session, broadcast)
    assert broadcast.id is not None
    # The worker claimed the whole batch and was killed during its first provider call.
    [(first, last)] = batch_ranges(session, broadcast.id)
    claimed = claim_range(session, broadcast.id, first, last)
    session.execute(update(Delivery).where(col(Delivery.id) == claimed[0].id).values(state="sending"))
    long_ago = utcnow() - timedelta(seconds=settings.stale_after_seconds + 1)
    session.execute(update(Delivery).where(col(Delivery.broadcast_id) == broadcast.id).values(claimed_at=long_ago))
    session.commit()

    settled = settle_stale(session, settings)
    session.commit()
    assert settled["deliveries_unclaimed"] == 5
    assert settled["deliveries_requeued" if in_flight_resent else "deliveries_uncertain"] == 1
    send_all(settings, broadcast.id)

    received = Counter(item["to"] for item in town.sandbox.outbox(kind="twilio"))
    in_flight = claimed[0].address
    assert all(received[number] == 1 for number in numbers if number != in_flight)
    # The one in flight: a warning is sent (again), an announcement is reported as uncertain.
    assert received[in_flight] == (1 if in_flight_resent else 0)
    totals = service.report(session, municipality_id=town.id, broadcast_id=broadcast.id)["totals"]
    assert totals["uncertain"] == (0 if in_flight_resent else 1)


def test_a_long_announcement_is_redispatched_only_when_its_batches_stop_running(
    session: Session, settings: Settings, town: Town, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "BATCH", 2)
    for number in phones(6, start=650):
        citizen(session, town, number)
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    # Its rows have waited longer than the stale age, as most rows of a long announcement do.
    long_ago = utcnow() - timedelta(seconds=settings.stale_after_seconds + 1)
    session.execute(update(Delivery).where(col(Delivery.broadcast_id) == broadcast.id).values(created_at=long_ago))
    session.execute(update(Broadcast).where(col(Broadcast.id) == broadcast.id).values(progress_at=long_ago))
    session.commit()
    first, last = batch_ranges(session, broadcast.id)[0]
    assert send_range(settings, broadcast.id, first, last, on_opted_out=stop_everywhere).sent == 2

    # Its batches run: the rows still queued are waiting their turn, not lost.
    assert broadcasts_needing_dispatch(session, settings) == []
    # Then no batch runs for the stale age: their tasks were lost.
    session.execute(update(Broadcast).where(col(Broadcast.id) == broadcast.id).values(progress_at=long_ago))
    session.commit()
    assert broadcasts_needing_dispatch(session, settings) == [broadcast.id]


def test_expansion_walks_only_subscribers_on_its_channels_and_hands_out_each_chunk_once_written(
    session: Session, town: Town, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 2)
    for number in phones(3, start=700):
        citizen(session, town, number)
    by_telegram = [citizen(session, town, str(421337100 + n), kind="telegram") for n in range(5)]
    broadcast = approved(session, town, kind="warning", severity="Severe", channel_kinds=["telegram"])
    assert broadcast.id is not None and claim_start(session, broadcast.id)
    session.commit()
    accounts = fanout.target_accounts(session, broadcast)
    assert [contact_id for contact_id, _ in session.execute(fanout.recipient_query(broadcast, accounts))] == by_telegram

    handed_out: list[tuple[list[tuple[int, int]], int]] = []

    def on_chunk(ranges: list[tuple[int, int]]) -> None:
        # What a batch task sees at once: the chunk's rows are committed before their ranges go out.
        with session_scope() as other:
            ids = other.exec(select(Delivery.id).where(Delivery.broadcast_id == broadcast.id)).all()
        handed_out.append((ranges, len(ids)))

    total = expand(lambda: Session(session.get_bind(), expire_on_commit=False), broadcast.id, on_chunk=on_chunk)
    assert total == 5
    assert [committed for _, committed in handed_out] == [2, 4, 5]
    ids = session.exec(select(Delivery.id).where(Delivery.broadcast_id == broadcast.id)).all()
    covered = [i for ranges, _ in handed_out for first, last in ranges for i in ids if first <= i <= last]
    assert sorted(covered) == sorted(ids)


def test_delivery_reports_that_come_before_the_receipts_are_recorded_reach_their_deliveries(
    session: Session, settings: Settings, town: Town, fake_provider: FakeProvider
) -> None:
    """Twilio reports on each message at once, while the sender records a receipt only with the
    next row's commit (or at the end of the batch): the reports wait for it instead of being dropped."""
    numbers = phones(2, start=800)
    for number in numbers:
        citizen(session, town, number)
    town.sms.config = {**town.sms.config, "api_base_url": fake_provider.url}
    session.add(town.sms)
    session.commit()
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    sids = ["SM" + digit * 32 for digit in "12"]
    request = WebhookRequest(url="http://hub/webhooks/twilio/1/status", headers={}, body=b"")
    reports = [StatusUpdate(provider_id=sid, status=status) for sid in sids for status in ("delivered", "sent")]
    for stored in store_events(session, account=town.sms, request=request, events=reports):
        session.commit()
        assert process_event(session, settings, stored.id).outcome.startswith("waiting for message SM")
        session.commit()
    for sid, number in zip(sids, numbers, strict=True):
        fake_provider.respond(201, twilio_answer(sid, number))

    send_all(settings, broadcast.id)
    session.expire_all()
    deliveries = session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id)).all()
    assert sorted((d.provider_id, d.state) for d in deliveries) == [(sid, "delivered") for sid in sids]
    assert service.report(session, municipality_id=town.id, broadcast_id=broadcast.id)["totals"]["delivered"] == 2
    waiting = session.exec(select(InboundEvent).where(InboundEvent.state == "pending")).all()
    assert waiting == []


def test_merging_contacts_keeps_a_stop_from_either_side(session: Session, town: Town) -> None:
    by_sms = citizen(session, town, "+4915180000001")
    by_telegram = citizen(session, town, "421337999", kind="telegram")
    consent.stop(session, municipality_id=town.id, contact_id=by_telegram, channel_kind="telegram",
                     source="keyword", evidence={})  # fmt: skip
    session.commit()
    merge(session, municipality_id=town.id, target_id=by_sms, source_id=by_telegram)
    session.commit()
    assert consent.is_stopped(session, by_sms)
    history = [event.action for event in consent.consent_history(session, municipality_id=town.id, contact_id=by_sms)]
    assert history.count("stopped") == 2  # the telegram STOP, moved over, and the merged contact's
    assert targeted(session, town) == set()


def test_a_paused_broadcast_sends_nothing_until_resumed(session: Session, settings: Settings, town: Town) -> None:
    for number in phones(3, start=700):
        citizen(session, town, number)
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    with pytest.raises(Forbidden):
        service.pause(session, actor=town.staff, broadcast_id=broadcast.id)
    service.pause(session, actor=town.mayor, broadcast_id=broadcast.id)
    session.commit()
    [(first, last)] = batch_ranges(session, broadcast.id)
    assert send_range(settings, broadcast.id, first, last, on_opted_out=stop_everywhere).sent == 0
    assert town.sandbox.outbox(kind="twilio") == []
    with pytest.raises(Conflict, match="paused"):
        service.pause(session, actor=town.mayor, broadcast_id=broadcast.id)

    service.resume(session, actor=town.mayor, broadcast_id=broadcast.id)
    session.commit()
    send_all(settings, broadcast.id)
    assert len(town.sandbox.outbox(kind="twilio")) == 3


@pytest.mark.parametrize("fallback", [True, False])
def test_fallback_moves_a_permanently_failed_recipient_to_their_next_channel(
    session: Session, settings: Settings, town: Town, fallback: bool
) -> None:
    unreachable_phone, chat = "+4915190000001", "421337123"
    contact_id = citizen(session, town, unreachable_phone)
    session.add(ContactIdentity(municipality_id=town.id, contact_id=contact_id, kind="telegram", address=chat))
    session.commit()
    town.sandbox.set_faults(kind="telegram", permanent_to=[chat])  # e.g. "chat not found"
    broadcast = approved(session, town, fallback=fallback)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)

    delivery = session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id)).one()
    session.refresh(delivery)
    sms = town.sandbox.outbox(kind="twilio", to=unreachable_phone)
    if fallback:
        assert (delivery.state, delivery.address, len(sms)) == ("sent", unreachable_phone, 1)
        assert delivery.error_message is not None and delivery.error_message.startswith("telegram:")
    else:
        assert (delivery.state, sms) == ("failed", [])
    assert town.sandbox.outbox(kind="telegram", to=chat) == []


def test_outside_messengers_window_a_fallback_broadcast_uses_the_next_channel(
    session: Session, settings: Settings, town: Town, sandbox: SandboxServer
) -> None:
    page = tenancy.create_channel_account(
        session, municipality_id=town.id, kind="facebook", name="Seite",
        config={"page_id": "104857600000042", "graph_url": f"{sandbox.url}/"},
    )  # fmt: skip
    session.commit()
    town.sandbox.register_account(kind="facebook", config=page.config, secrets=page.secrets, webhook_url=None)
    phone, psid = "+4915190000002", "7100000000000042"
    with_fallback, without = citizen(session, town, phone), citizen(session, town, "+4915190000003")
    for contact_id, address in ((with_fallback, psid), (without, "7100000000000043")):
        session.add(ContactIdentity(municipality_id=town.id, contact_id=contact_id, kind="facebook", address=address))
    session.commit()
    broadcast = approved(session, town, fallback=True, channel_kinds=["facebook", "twilio"])
    start(session, broadcast)
    rows = {d.contact_id: d for d in session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id))}
    # Neither has written to the page in 24 hours: Messenger may not carry the news, SMS does.
    assert rows[with_fallback].address == phone and rows[with_fallback].state == "queued"
    assert rows[without].address == "+4915190000003"

    plain = approved(session, town, channel_kinds=["facebook", "twilio"])
    start(session, plain)
    skipped = session.exec(
        select(Delivery).where(Delivery.broadcast_id == plain.id, Delivery.contact_id == with_fallback)
    ).one()
    assert skipped.state == "skipped" and "24-Stunden" in (skipped.error_message or "")


def test_a_broadcast_with_name_reads_well_for_a_subscriber_without_a_name(
    session: Session, settings: Settings, town: Town
) -> None:
    named, nameless = "+4915170000901", "+4915170000902"
    citizen(session, town, named)
    contact = session.get(Contact, citizen(session, town, nameless))
    assert contact is not None
    contact.display_name = None
    session.commit()
    for body in ("Hallo {{ name }}, die Hauptstraße ist gesperrt. Danke, {{ name }}.",
                 "{{ salutation }}, die Hauptstraße ist gesperrt."):  # fmt: skip
        broadcast = approved(session, town, texts={"de": {"body": body}}, channel_kinds=["twilio"])
        start(session, broadcast)
        assert broadcast.id is not None
        send_all(settings, broadcast.id)
    to_nameless = [item["text"] for item in town.sandbox.outbox(kind="twilio", to=nameless)]
    to_named = [item["text"] for item in town.sandbox.outbox(kind="twilio", to=named)]
    assert "Hallo, die Hauptstraße ist gesperrt. Danke.\n" in to_nameless[0]
    assert "Guten Tag, die Hauptstraße ist gesperrt.\n" in to_nameless[1]
    assert f"Hallo Person {named}, die Hauptstraße ist gesperrt. Danke, Person {named}.\n" in to_named[0]
    assert f"Guten Tag Person {named}, die Hauptstraße ist gesperrt.\n" in to_named[1]
    for text in to_nameless:
        assert " ," not in text and ", ." not in text and "  " not in text, text


def test_a_messenger_subscriber_who_only_pressed_the_buttons_is_inside_the_window(
    session: Session, settings: Settings, town: Town, sandbox: SandboxServer
) -> None:
    page = tenancy.create_channel_account(
        session, municipality_id=town.id, kind="facebook", name="Seite",
        config={"page_id": "104857600000044", "graph_url": f"{sandbox.url}/"},
    )  # fmt: skip
    session.commit()
    psid = "7100000000000044"
    request = WebhookRequest(url="http://hub/webhooks/facebook/1", headers={}, body=b"")
    for provider_id, payload in (("mid.1", "GET_STARTED"), ("mid.2", "sub:done")):
        press = InboundMessage(provider_id=provider_id, sender=psid, text=payload, kind="postback")
        [stored] = store_events(session, account=page, request=request, events=[press])
        session.commit()
        process_event(session, settings, stored.id)
        session.commit()
    # The presses are commands, outside any case, and still count as the citizen's last message.
    broadcast = approved(session, town, channel_kinds=["facebook"])
    start(session, broadcast)
    [delivery] = session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id)).all()
    assert (delivery.address, delivery.state) == (psid, "queued")


def test_an_announcement_makes_way_for_a_warning_that_is_due_but_not_yet_started(
    session: Session, settings: Settings, town: Town
) -> None:
    for number in phones(3, start=800):
        citizen(session, town, number)
    announcement = approved(session, town)
    start(session, announcement)
    approved(session, town, kind="warning", severity="Severe", title="Glätte")  # no worker has taken it yet
    assert announcement.id is not None
    [(first, last)] = batch_ranges(session, announcement.id)
    outcome = send_range(settings, announcement.id, first, last, on_opted_out=stop_everywhere)
    assert outcome.yielded and town.sandbox.outbox(kind="twilio") == []


def test_a_worker_warms_up_every_connected_channel_before_its_first_task(
    town: Town, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="workers.tasks"):
        warm_up()
    assert [record.getMessage().split(" in ")[0] for record in caplog.records] == ["worker warmed up"]
    assert caplog.records[0].getMessage().endswith("(2 channel accounts)")
