"""The inbound pipeline and outbound bookkeeping on a real, migrated SQLite database."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlmodel import Session, select

from channels.base import InboundMessage, StatusUpdate, WebhookRequest
from channels.registry import build_adapter
from hub.db import utcnow
from hub.delivery.engine import retry_delay
from hub.errors import InvalidInput
from hub.inbox import service
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.inbox.outbound import settle_stale_sending, stale_queued_ids
from hub.inbox.pipeline import EARLY_REPORT_WAIT, process_event, stale_pending_events
from hub.inbox.receive import store_events, store_unreadable
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount


@pytest.fixture
def sms_account(session: Session) -> ChannelAccount:
    municipality = tenancy.create_municipality(session, slug="testdorf", name="Gemeinde Testdorf")
    assert municipality.id is not None
    account = tenancy.create_channel_account(
        session,
        municipality_id=municipality.id,
        kind="twilio",
        name="SMS",
        config={"account_sid": "AC" + "1" * 32, "phone_number": "+4930123456"},
    )
    session.commit()
    return account


REQUEST = WebhookRequest(url="http://hub/webhooks/twilio/1", headers={"content-type": "x"}, body=b"raw")


def sms(provider_id: str, text: str, sender: str = "+4915112345678") -> InboundMessage:
    return InboundMessage(provider_id=provider_id, sender=sender, text=text)


def receive(session: Session, settings: Settings, account: ChannelAccount, *events: object) -> list[int]:
    ids = [row.id for row in store_events(session, account=account, request=REQUEST, events=events)]  # type: ignore[arg-type]
    session.commit()
    for event_id in ids:
        process_event(session, settings, event_id)
        session.commit()
    return ids


def test_new_message_opens_a_conversation_with_a_reference_and_an_acknowledgement(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    [event_id] = receive(session, settings, sms_account, sms("SM1", "Hallo"))
    conversation = session.exec(select(Conversation)).one()
    assert conversation.reference == f"A-{utcnow().year}-00001"
    messages = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
    assert [(m.direction, m.status) for m in messages] == [("inbound", None), ("outbound", "queued")]
    assert conversation.reference in messages[1].body
    assert messages[1].automated and messages[1].segments == 1
    assert session.get(InboundEvent, event_id).outcome.startswith("stored, acknowledged")  # type: ignore[union-attr]


def test_running_an_event_twice_stores_it_once(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    [event_id] = receive(session, settings, sms_account, sms("SM1", "Hallo"))
    again = process_event(session, settings, event_id)
    session.commit()
    assert again.outcome == "already processed" and again.to_send == []
    assert len(session.exec(select(Message)).all()) == 2


def test_a_retried_webhook_stores_nothing_new(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    assert receive(session, settings, sms_account, sms("SM1", "Hallo"))
    assert receive(session, settings, sms_account, sms("SM1", "Hallo")) == []
    assert len(session.exec(select(InboundEvent)).all()) == 1


def test_references_count_up_per_municipality(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    receive(session, settings, sms_account, sms("SM1", "a", "+4915100000001"), sms("SM2", "b", "+4915100000002"))
    references = sorted(c.reference for c in session.exec(select(Conversation)))
    year = utcnow().year
    assert references == [f"A-{year}-00001", f"A-{year}-00002"]


def test_two_towns_each_have_their_own_first_reference(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    other = tenancy.create_municipality(session, slug="nachbarort", name="Gemeinde Nachbarort")
    assert other.id is not None
    other_account = tenancy.create_channel_account(
        session, municipality_id=other.id, kind="twilio", name="SMS",
        config={"account_sid": "AC" + "2" * 32, "phone_number": "+4930654321"},
    )  # fmt: skip
    session.commit()
    receive(session, settings, sms_account, sms("SM1", "a"))
    receive(session, settings, other_account, sms("SM1", "b"))
    year = utcnow().year
    references = {c.municipality_id: c.reference for c in session.exec(select(Conversation))}
    assert references == {sms_account.municipality_id: f"A-{year}-00001", other.id: f"A-{year}-00001"}


def test_resolved_conversation_reopens_or_a_new_one_opens_per_setting(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    receive(session, settings, sms_account, sms("SM1", "erste"))
    conversation = session.exec(select(Conversation)).one()
    service.update_conversation(
        session, municipality_id=sms_account.municipality_id, conversation_id=conversation.id, status="resolved"
    )
    session.commit()
    receive(session, settings, sms_account, sms("SM2", "zweite"))
    session.refresh(conversation)
    assert conversation.status == "open" and conversation.resolved_at is None

    service.update_conversation(
        session, municipality_id=sms_account.municipality_id, conversation_id=conversation.id, status="resolved"
    )
    session.commit()
    no_reopen = settings.model_copy(update={"reopen_resolved": False})
    receive(session, no_reopen, sms_account, sms("SM3", "dritte"))
    assert len(session.exec(select(Conversation)).all()) == 2


def test_status_callbacks_only_move_forward(session: Session, settings: Settings, sms_account: ChannelAccount) -> None:
    receive(session, settings, sms_account, sms("SM1", "Hallo"))
    ack = session.exec(select(Message).where(Message.direction == "outbound")).one()
    ack.status, ack.provider_id = "sent", "SMout"
    session.commit()
    receive(session, settings, sms_account, StatusUpdate(provider_id="SMout", status="delivered"))
    receive(
        session, settings, sms_account, StatusUpdate(provider_id="SMout", status="sent", event_id="SMout:sent-late")
    )
    session.refresh(ack)
    assert ack.status == "delivered" and ack.delivered_at is not None


def test_a_report_the_sender_did_not_see_is_applied_when_the_sweeper_brings_it_back_and_given_up_in_the_end(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    receive(session, settings, sms_account, sms("SM1", "Hallo"))
    ack = session.exec(select(Message).where(Message.direction == "outbound")).one()
    [early] = receive(session, settings, sms_account, StatusUpdate(provider_id="SMout", status="delivered"))
    report = session.get(InboundEvent, early)
    assert report is not None and (report.state, report.outcome) == (
        "pending",
        "waiting for message SMout to be recorded as sent",
    )
    # The receipt was committed together with the report, so the sender could not see it.
    ack.status, ack.provider_id = "sent", "SMout"
    session.commit()
    process_event(session, settings, early)  # what the sweeper's task runs for a pending event
    session.commit()
    session.refresh(ack)
    session.refresh(report)
    assert ack.status == "delivered" and report.state == "done"

    # A report on a message never recorded as sent (its worker died) is not retried forever.
    [lost] = receive(session, settings, sms_account, StatusUpdate(provider_id="SMnever", status="delivered"))
    report = session.get(InboundEvent, lost)
    assert report is not None and report.state == "pending"
    report.received_at = utcnow() - EARLY_REPORT_WAIT - timedelta(minutes=1)
    session.commit()
    process_event(session, settings, lost)
    session.commit()
    session.refresh(report)
    assert (report.state, report.outcome) == ("ignored", "status for unknown message SMnever")


def test_the_sweeper_takes_citizens_messages_before_reports_that_wait_for_their_message(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    [report] = receive(session, settings, sms_account, StatusUpdate(provider_id="SMwaiting", status="delivered"))
    [lost] = store_events(session, account=sms_account, request=REQUEST, events=[sms("SM9", "Hallo")])  # task lost
    for event in session.exec(select(InboundEvent)):
        event.received_at = utcnow() - timedelta(minutes=5)
    session.commit()
    assert stale_pending_events(session, settings, 1) == [(lost.id, "message")]
    assert stale_pending_events(session, settings, 5) == [(lost.id, "message"), (report, "status")]


def test_unreadable_body_is_kept_once_and_flagged(session: Session, sms_account: ChannelAccount) -> None:
    first = store_unreadable(session, account=sms_account, request=REQUEST, reason="Feld From fehlt")
    second = store_unreadable(session, account=sms_account, request=REQUEST, reason="Feld From fehlt")
    session.commit()
    assert first == second
    event = session.get(InboundEvent, first)
    assert event is not None and event.state == "flagged" and event.raw == b"raw"


def test_reply_is_refused_when_empty_or_too_long(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    receive(session, settings, sms_account, sms("SM1", "Hallo"))
    conversation = session.exec(select(Conversation)).one()
    with pytest.raises(InvalidInput, match="leer"):
        service.queue_outbound(session, conversation=conversation, text="   ", author=None)
    with pytest.raises(InvalidInput, match="1600"):
        service.queue_outbound(session, conversation=conversation, text="x" * 1601, author=None)


def test_sweeper_finds_lost_sends_and_never_resends_an_uncertain_one(
    session: Session, settings: Settings, sms_account: ChannelAccount
) -> None:
    receive(session, settings, sms_account, sms("SM1", "Hallo"))
    ack = session.exec(select(Message).where(Message.direction == "outbound")).one()
    ack.created_at = utcnow() - timedelta(minutes=5)
    session.commit()
    assert stale_queued_ids(session, settings) == [ack.id]

    ack.status, ack.claimed_at = "sending", utcnow() - timedelta(minutes=5)
    session.commit()
    assert settle_stale_sending(session, settings) == 1
    session.commit()
    session.refresh(ack)
    assert ack.status == "failed" and ack.error_code == "uncertain"
    assert stale_queued_ids(session, settings) == []


def test_retry_delay_grows_and_honours_retry_after(settings: Settings) -> None:
    assert 1.0 <= retry_delay(settings, 1, None) <= 2.0
    assert 8.0 <= retry_delay(settings, 4, None) <= 16.0
    assert retry_delay(settings, 1, 30.0) == 30.0


def test_national_numbers_are_read_in_the_municipalitys_region(session: Session, settings: Settings) -> None:
    austrian = tenancy.create_municipality(
        session, slug="grenzdorf", name="Marktgemeinde Grenzdorf", default_region="AT"
    )
    assert austrian.id is not None
    account = tenancy.create_channel_account(
        session, municipality_id=austrian.id, kind="twilio", name="SMS",
        config={"account_sid": "AC" + "2" * 32, "phone_number": "+43512123456"},
    )  # fmt: skip
    session.commit()
    assert account.config["default_region"] == "AT"
    adapter = build_adapter("twilio", account.config, account.secrets)
    form = urlencode({"MessageSid": "SM" + "3" * 32, "From": "0664 1234567", "To": "+43512123456", "Body": "Servus"})
    signed_url = "https://hub.example/webhooks/twilio/1"
    [event] = adapter.parse(WebhookRequest(url=signed_url, headers={}, body=form.encode()))
    assert isinstance(event, InboundMessage)
    assert event.sender == "+436641234567"
