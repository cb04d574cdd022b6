"""Broadcasts by WhatsApp: only to citizens who opted in there, as the town's approved template, within the tier."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from channels.base import InboundMessage, StatusUpdate
from hub.app import create_app
from hub.broadcasts import service
from hub.broadcasts.models import Broadcast, Delivery
from hub.errors import InvalidInput
from hub.inbox import service as inbox
from hub.settings import Settings
from hub.subscribers.models import ConsentEvent
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount
from hub.web.security import CSRF_COOKIE
from tests.unit.db import receive
from tests.unit.test_broadcasts import Town, approved, citizen, draft, phones, send_all, start
from tests.unit.test_broadcasts import sandbox as sandbox  # the broadcast tests' fixtures
from tests.unit.test_broadcasts import town as town

WA_NUMBER = "+4930555111"


def whatsapp_account(session: Session, town: Town, template: str | None = None, **config: object) -> ChannelAccount:
    """The town's WhatsApp sender on the sandbox; `template`: the body of its approved German template."""
    config = {"account_sid": town.sms.config["account_sid"], "phone_number": WA_NUMBER,
              "api_base_url": town.sms.config["api_base_url"], **config}  # fmt: skip
    secrets = {"auth_token": "wa-token"}
    town.sandbox.register_account("whatsapp", config, secrets)
    if template is not None:
        config["template_de"] = town.sandbox.whatsapp_template(template)
    account = tenancy.create_channel_account(
        session, municipality_id=town.id, kind="whatsapp", name="WhatsApp Rathaus", config=config, secrets_=secrets
    )
    session.commit()
    return account


def writes_on_whatsapp(session: Session, settings: Settings, account: ChannelAccount, number: str) -> None:
    """The citizen writes to the town's WhatsApp number once: their opt-in there."""
    receive(session, settings, account, InboundMessage(provider_id=f"SM{number[1:]}", sender=number, text="Hallo"))


def deliveries(session: Session, broadcast: Broadcast) -> dict[str, tuple[str, str, str | None]]:
    """Per address: the channel kind, the delivery's state and its reason."""
    rows = session.exec(
        select(Delivery, ChannelAccount.kind)
        .join(ChannelAccount, col(ChannelAccount.id) == Delivery.channel_account_id)
        .where(Delivery.broadcast_id == broadcast.id)
    )
    session.expire_all()
    return {row.address: (kind, row.state, row.error_message) for row, kind in rows}


def test_approval_says_when_whatsapp_has_no_template_for_a_language(session: Session, town: Town) -> None:
    whatsapp_account(session, town, template_de="HXde")
    texts = {"de": {"body": "Die Hauptstraße ist gesperrt."}, "en": {"body": "Main street is closed."}}
    broadcast = service.create(session, author=town.staff, draft=draft(texts=texts))
    assert broadcast.id is not None
    service.submit(session, actor=town.staff, broadcast_id=broadcast.id)

    with pytest.raises(InvalidInput) as refused:
        service.approve(session, actor=town.mayor, broadcast_id=broadcast.id)
    assert "keine freigegebene Vorlage" in str(refused.value) and "(en)" in str(refused.value)
    assert "no approved template" in refused.value.text("en")

    only_sms = service.create(session, author=town.staff, draft=draft(texts=texts, channel_kinds=["twilio"]))
    assert only_sms.id is not None
    service.submit(session, actor=town.staff, broadcast_id=only_sms.id)
    assert service.approve(session, actor=town.mayor, broadcast_id=only_sms.id).status == "approved"


def test_those_who_wrote_on_whatsapp_get_the_template_and_the_others_an_sms(
    session: Session, settings: Settings, town: Town
) -> None:
    account = whatsapp_account(session, town, "Neues aus Ihrem Rathaus: {{1}}")
    template = account.config["template_de"]
    on_whatsapp, sms_only = phones(2)
    for number in (on_whatsapp, sms_only):
        citizen(session, town, number)
    writes_on_whatsapp(session, settings, account, on_whatsapp)

    broadcast = approved(session, town, texts={"de": {"body": "Morgen wird die Hauptstraße gesperrt."}})
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)

    routed = deliveries(session, broadcast)
    assert (routed[on_whatsapp][:2], routed[sms_only][:2]) == (("whatsapp", "sent"), ("twilio", "sent"))
    [message] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"]]
    assert message["to"] == on_whatsapp and message["content_sid"] == template
    # The text as for SMS (title, body, STOP) in the one line a template variable may hold.
    assert message["text"] == (
        "Neues aus Ihrem Rathaus: Straßensperrung Morgen wird die Hauptstraße gesperrt. STOP zum Abmelden"
    )
    assert [item["to"] for item in town.sandbox.outbox(kind="twilio")] == [sms_only]


def test_a_survey_by_whatsapp_template_is_answered_by_number_and_its_read_receipts_count_as_reached(
    session: Session, settings: Settings, town: Town
) -> None:
    account = whatsapp_account(session, town, "Umfrage Ihres Rathauses: {{1}}")
    [number] = phones(1)
    citizen(session, town, number)
    writes_on_whatsapp(session, settings, account, number)
    survey = approved(session, town, kind="survey", title="Stadtfest", options=["Samstag", "Sonntag"],
                      texts={"de": {"body": "Wann soll das Stadtfest sein?"}})  # fmt: skip
    start(session, survey)
    assert survey.id is not None
    send_all(settings, survey.id)
    [message] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"]]
    assert "Antworten Sie mit 1 für Samstag, 2 für Sonntag." in message["text"]

    receive(session, settings, account, StatusUpdate(provider_id=message["provider_id"], status="read"))
    receive(session, settings, account, InboundMessage(provider_id="SMvote", sender=number, text="2"))

    report = service.report(session, municipality_id=town.id, broadcast_id=survey.id)
    assert report["per_channel"]["whatsapp"]["read"] == 1
    assert report["answers"] == [{"option": "Samstag", "count": 0}, {"option": "Sonntag", "count": 1}]


@pytest.mark.parametrize("fallback", [False, True])
def test_the_hub_stops_at_the_senders_daily_limit_and_says_so(
    session: Session, settings: Settings, town: Town, fallback: bool
) -> None:
    account = whatsapp_account(session, town, "Info: {{1}}", daily_recipients=2)
    numbers = phones(3)
    contacts = []
    for number in numbers:
        contacts.append(citizen(session, town, number))
        writes_on_whatsapp(session, settings, account, number)

    broadcast = approved(session, town, fallback=fallback)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)

    routed = deliveries(session, broadcast)
    assert [routed[number][:2] for number in numbers[:2]] == [("whatsapp", "sent")] * 2
    if fallback:
        assert routed[numbers[2]][:2] == ("twilio", "sent")
    else:
        assert routed[numbers[2]] == (
            "whatsapp",
            "skipped",
            "WhatsApp: Tageslimit von 2 Empfängern in 24 Stunden erreicht",
        )
    assert len([item for item in town.sandbox.outbox(kind="whatsapp") if item["content_sid"]]) == 2
    # The broadcast used the day's budget: a reminder to the third is refused, to the first still goes.
    late = inbox.queue_outbound(session, starting=(account.id, contacts[2]), text="Termin morgen", author=None)  # type: ignore[arg-type]
    known = inbox.queue_outbound(session, starting=(account.id, contacts[0]), text="Termin morgen", author=None)  # type: ignore[arg-type]
    assert (late.status, known.status) == ("failed", "queued") and "Tageslimit von 2" in (late.error_message or "")


def sign_up_on_the_web(town: Town, number: str, **fields: object) -> None:
    """The citizen fills in the town's sign-up form and types the code the SMS brought."""
    with TestClient(create_app()) as browser:
        page = browser.get("/abo/musterdorf")
        token = browser.cookies[CSRF_COOKIE]
        started = browser.post("/abo/musterdorf", data={"csrf_token": token, "phone": number, **fields})
        assert started.status_code == 200 and "/code" in str(started.url), started.text
        [code] = re.findall(r"\b\d{6}\b", town.sandbox.outbox(kind="twilio")[-1]["text"])
        done = browser.post("/abo/musterdorf/code", data={"csrf_token": token, "code": code})
        assert done.status_code == 200 and "/fertig" in str(done.url), done.text
    assert "über WhatsApp an diese Nummer" in page.text


def test_the_sign_up_forms_opt_in_box_lets_whatsapp_carry_the_broadcast_and_without_it_sms_does(
    session: Session, settings: Settings, town: Town
) -> None:
    account = whatsapp_account(session, town, "Neues aus Ihrem Rathaus: {{1}}")
    ticked, unticked = phones(2)
    sign_up_on_the_web(town, ticked, opt_in="whatsapp")
    sign_up_on_the_web(town, unticked)

    events = session.exec(select(ConsentEvent).where(ConsentEvent.action == "opted_in"))
    assert [(event.channel_kind, event.source, event.evidence["how"]) for event in events] == [
        ("whatsapp", "form", "web_form_checkbox")
    ]
    broadcast = approved(session, town)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)

    routed = deliveries(session, broadcast)
    assert (routed[ticked][:2], routed[unticked][:2]) == (("whatsapp", "sent"), ("twilio", "sent"))
    [message] = [item for item in town.sandbox.outbox(kind="whatsapp") if item["to"] == ticked]
    assert message["content_sid"] == account.config["template_de"]  # never wrote: the window is closed


def test_the_form_refuses_an_opt_in_to_a_channel_the_town_does_not_have(town: Town) -> None:
    with TestClient(create_app()) as browser:
        page = browser.get("/abo/musterdorf")
        assert 'name="opt_in"' not in page.text
        data = {"csrf_token": browser.cookies[CSRF_COOKIE], "phone": phones(1)[0], "opt_in": "whatsapp"}
        refused = browser.post("/abo/musterdorf", data=data)
    assert refused.status_code == 422 and "bietet diese Gemeinde nicht an" in refused.text
    assert town.sandbox.outbox(kind="twilio") == []
