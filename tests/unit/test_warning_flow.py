"""Confirming a broadcast before it goes out, and four eyes: the author refused, a second person, an emergency."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub import db
from hub.app import create_app
from hub.audit.models import AuditEvent
from hub.broadcasts import api as broadcasts_api
from hub.broadcasts import cli as broadcast_cli
from hub.broadcasts import pages as broadcast_pages
from hub.broadcasts import service
from hub.broadcasts.confirmation import confirmation
from hub.broadcasts.models import Broadcast
from hub.cli import main
from hub.contacts.models import Contact, ContactIdentity
from hub.errors import Forbidden, InvalidInput
from hub.settings import Settings
from hub.subscribers import consent
from hub.subscribers.catalogue import create_district
from hub.tenancy import service as tenancy
from hub.tenancy.administration import set_four_eyes
from tests.unit.db import Town
from tests.unit.web import clerk, staff_user


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Broadcasts the pages handed to the workers (recorded instead of going to the broker)."""
    calls: list[int] = []
    for module in (broadcasts_api, broadcast_pages):
        monkeypatch.setattr(module, "enqueue_broadcast_start", lambda broadcast_id, urgent: calls.append(broadcast_id))
    return calls


def quiet_town(session: Session) -> Town:
    """A town with SMS, Telegram and email and no subscribers but the test's own, so every figure is the test's."""
    municipality = tenancy.create_municipality(session, slug="vieraugen", name="Gemeinde Vieraugen")
    assert municipality.id is not None
    configs = {
        "twilio": {"account_sid": "AC" + "2" * 32, "phone_number": "+4930222222"},
        "telegram": {"bot_username": "ViereBot"},
        "email": {"address": "rathaus@vieraugen.example", "smtp_host": "127.0.0.1", "smtp_port": 1},
    }
    accounts = {
        kind: tenancy.create_channel_account(
            session,
            municipality_id=municipality.id,
            kind=kind,
            name=kind,
            config=config,
            secrets_={"auth_token": "t", "bot_token": "1:x"},
        )
        for kind, config in configs.items()
    }
    session.commit()
    return Town(municipality=municipality, accounts=accounts)


def subscriber(session: Session, town: Town, identities: dict[str, str], district_ids: tuple[int, ...] = ()) -> None:
    contact = Contact(municipality_id=town.id, display_name=f"Person {len(identities)}")
    session.add(contact)
    session.flush()
    assert contact.id is not None
    for kind, address in identities.items():
        session.add(ContactIdentity(municipality_id=town.id, contact_id=contact.id, kind=kind, address=address))
    consent.subscribe(
        session, municipality_id=town.id, contact_id=contact.id, channel_kind=None, source="api", evidence={},
        district_ids=list(district_ids),
    )  # fmt: skip
    session.commit()


def draft(session: Session, author: object, *, kind: str = "warning", **targeting: object) -> Broadcast:
    broadcast = service.create(
        session, author=author,  # type: ignore[arg-type]
        draft=service.Draft(
            kind=kind, title="Hochwasser an der Saale", severity="Severe" if kind == "warning" else None,
            texts={"de": {"body": "Hallo {{ name }}, die Saale tritt über die Ufer. Meiden Sie das Ufer."}},
            **targeting,  # type: ignore[arg-type]
        ),
    )  # fmt: skip
    session.commit()
    assert broadcast.id is not None
    return broadcast


def four_eyes(session: Session, town: Town) -> None:
    admin = staff_user(session, town, "admin", email="it@vieraugen.example")
    assert admin.id is not None
    set_four_eyes(session, municipality_id=town.id, actor_id=admin.id, required=True)
    session.commit()


def test_with_four_eyes_the_author_is_refused_and_a_second_person_approves(both: Session) -> None:
    town = quiet_town(both)
    four_eyes(both, town)
    mayor = staff_user(both, town, "mayor")
    deputy = staff_user(both, town, "mayor", email="vertretung@vieraugen.example")
    announcement = draft(both, mayor, kind="announcement")
    assert announcement.id is not None
    service.submit(both, actor=mayor, broadcast_id=announcement.id)
    both.commit()

    with pytest.raises(Forbidden, match="Vier-Augen-Prinzip"):
        service.approve(both, actor=mayor, broadcast_id=announcement.id)
    with pytest.raises(Forbidden, match="Vier-Augen-Prinzip"):  # an announcement has no emergency
        service.approve(both, actor=mayor, broadcast_id=announcement.id, emergency_reason="Eilt")
    both.rollback()
    assert both.get(Broadcast, announcement.id, populate_existing=True).status == "pending_approval"  # type: ignore[union-attr]

    # Whoever changed it counts as a writer too: the deputy edits, so the deputy may not approve either.
    service.update_draft(both, actor=deputy, broadcast_id=announcement.id, draft=service.Draft(
        kind="announcement", title="Straßenfest", texts={"de": {"body": "Am Samstag ist Straßenfest."}},
    ))  # fmt: skip
    service.submit(both, actor=deputy, broadcast_id=announcement.id)
    both.commit()
    with pytest.raises(Forbidden):
        service.approve(both, actor=deputy, broadcast_id=announcement.id)
    both.rollback()
    colleague = staff_user(both, town, "admin", email="zweite@vieraugen.example")
    approved = service.approve(both, actor=colleague, broadcast_id=announcement.id)
    both.commit()
    assert approved.status == "approved" and approved.approved_by_id == colleague.id


def test_an_emergency_warning_needs_a_reason_which_the_audit_log_keeps(both: Session) -> None:
    town = quiet_town(both)
    four_eyes(both, town)
    mayor = staff_user(both, town, "mayor")
    warning = draft(both, mayor)
    assert warning.id is not None

    with pytest.raises(Forbidden, match="im Notfall mit Begründung"):
        service.approve(both, actor=mayor, broadcast_id=warning.id)
    with pytest.raises(InvalidInput, match="nur mit einer Begründung"):
        service.approve(both, actor=mayor, broadcast_id=warning.id, emergency_reason="   ")
    both.rollback()
    assert both.get(Broadcast, warning.id, populate_existing=True).status == "draft"  # type: ignore[union-attr]

    sent = service.approve(
        both, actor=mayor, broadcast_id=warning.id, emergency_reason=" Deich bricht, kein Vertreter "
    )
    both.commit()
    assert sent.status == "approved"
    [event] = both.exec(
        select(AuditEvent).where(
            col(AuditEvent.object_id) == warning.id, AuditEvent.action.startswith("broadcast.approved")
        )  # type: ignore[attr-defined]
    ).all()
    assert event.action == "broadcast.approved_in_emergency" and event.actor_id == mayor.id
    assert event.details["reason"] == "Deich bricht, kein Vertreter"


def test_without_four_eyes_the_mayor_still_sends_her_own_warning_alone(both: Session) -> None:
    town = quiet_town(both)
    mayor = staff_user(both, town, "mayor")
    warning = draft(both, mayor)
    assert warning.id is not None
    assert service.approve(both, actor=mayor, broadcast_id=warning.id).status == "approved"


def test_the_confirmation_counts_recipients_per_channel_in_the_districts_chosen(session: Session) -> None:
    town = quiet_town(session)
    ufer = create_district(session, municipality_id=town.id, key="ufer", name="Am Ufer")
    berg = create_district(session, municipality_id=town.id, key="berg", name="Am Berg")
    session.commit()
    assert ufer.id is not None and berg.id is not None
    subscriber(session, town, {"phone": "+4915100000001"}, (ufer.id,))
    subscriber(session, town, {"phone": "+4915100000002", "email": "b@buerger.example"})  # no district: whole town
    subscriber(session, town, {"telegram": "4711"}, (ufer.id,))
    subscriber(session, town, {"email": "c@buerger.example"}, (ufer.id,))
    subscriber(session, town, {"phone": "+4915100000003"}, (berg.id,))  # elsewhere: not counted
    mayor = staff_user(session, town, "mayor")
    warning = draft(session, mayor, district_ids=(ufer.id,), channel_kinds=("twilio", "email"))
    assert warning.id is not None

    found = confirmation(session, actor=mayor, broadcast_id=warning.id)
    assert {channel.kind: channel.recipients for channel in found.channels} == {"email": 1, "twilio": 2}
    assert found.targeted == 4 and found.unreachable == 1, "the Telegram subscriber has no address on SMS or email"
    assert found.district_names == ["Am Ufer"]
    sms = next(channel for channel in found.channels if channel.kind == "twilio")
    assert [preview.segments for preview in sms.previews] == [1]
    email = next(channel for channel in found.channels if channel.kind == "email")
    assert email.subjects == {"de": "Hochwasser an der Saale"}
    assert found.urgent and not found.second_person_needed


def test_the_warning_is_confirmed_on_a_page_before_it_goes_out(session: Session, started: list[int]) -> None:
    town = quiet_town(session)
    subscriber(session, town, {"phone": "+4915100000001"})
    mayor = clerk(session, town, "mayor")
    warning = draft(session, mayor.user)

    detail = mayor.get(f"/app/broadcasts/{warning.id}")
    assert f'href="/app/broadcasts/{warning.id}/send-warning"' in detail.text, "the button leads to the confirmation"
    page = mayor.get(f"/app/broadcasts/{warning.id}/send-warning")
    assert page.status_code == 200
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>(\d+)</td>', page.text))
    assert rows == {"SMS": "1", "Telegram": "0", "E-Mail": "0"}
    assert "auch in der Ruhezeit" in page.text and "SMS-Teile: 1" in page.text and "Erika Mustermann" in page.text
    assert session.get(Broadcast, warning.id, populate_existing=True).status == "draft"  # type: ignore[union-attr]

    sent = mayor.post(f"/app/broadcasts/{warning.id}/send-warning", follow_redirects=False)
    assert sent.status_code == 303 and started == [warning.id]
    assert mayor.get(f"/app/broadcasts/{warning.id}/send-warning").status_code == 409, "sent once, not twice"
    assert "Senden stoppen" in mayor.get(f"/app/broadcasts/{warning.id}").text


def test_the_author_sends_in_an_emergency_from_the_page_with_a_reason(session: Session, started: list[int]) -> None:
    town = quiet_town(session)
    four_eyes(session, town)
    mayor = clerk(session, town, "mayor")
    warning = draft(session, mayor.user)

    page = mayor.get(f"/app/broadcasts/{warning.id}/send-warning")
    assert "Im Notfall ohne zweite Person senden" in page.text and 'name="emergency_reason"' in page.text
    refused = mayor.post(f"/app/broadcasts/{warning.id}/send-warning")
    assert refused.status_code == 403 and "Vier-Augen-Prinzip" in refused.text
    blank = mayor.post(f"/app/broadcasts/{warning.id}/send-warning", {"emergency": "1", "emergency_reason": " "})
    assert blank.status_code == 422 and "Begründung" in blank.text
    assert started == []

    reason = "Pegel steigt, Vertretung nicht erreichbar"
    sent = mayor.post(f"/app/broadcasts/{warning.id}/send-warning", {"emergency": "1", "emergency_reason": reason},
                      follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303 and started == [warning.id]
    trail = mayor.get(f"/app/broadcasts/{warning.id}").text
    assert "Im Notfall ohne zweite Person freigegeben" in trail and reason in trail


def test_an_authors_own_announcement_gets_no_approve_button_a_second_person_does(session: Session) -> None:
    town = quiet_town(session)
    four_eyes(session, town)
    mayor = clerk(session, town, "mayor")
    announcement = draft(session, mayor.user, kind="announcement")
    assert announcement.id is not None
    service.submit(session, actor=mayor.user, broadcast_id=announcement.id)
    session.commit()
    page = mayor.get(f"/app/broadcasts/{announcement.id}/approve")
    assert "freigeben muss sie eine zweite Person" in page.text
    assert f'action="/app/broadcasts/{announcement.id}/approve"' not in page.text, "no button to approve one's own"
    admin = clerk(session, town, "admin")
    assert (
        f'action="/app/broadcasts/{announcement.id}/approve"'
        in admin.get(f"/app/broadcasts/{announcement.id}/approve").text
    )


def test_a_broadcast_held_by_quiet_hours_says_when_it_goes_out(session: Session) -> None:
    town = quiet_town(session)
    local = datetime.now(ZoneInfo(town.municipality.timezone))
    town.municipality.preferences = {"quiet_hours": {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"), "end": (local + timedelta(hours=1)).strftime("%H:%M"),
    }}  # fmt: skip
    session.add(town.municipality)
    session.commit()
    admin = clerk(session, town, "admin")
    announcement = draft(session, admin.user, kind="announcement")
    assert announcement.id is not None
    service.submit(session, actor=admin.user, broadcast_id=announcement.id)
    session.commit()
    page = admin.get(f"/app/broadcasts/{announcement.id}/approve")
    assert "fällt in die Ruhezeit" in page.text
    assert admin.post(f"/app/broadcasts/{announcement.id}/approve", follow_redirects=False).status_code == 303
    detail = admin.get(f"/app/broadcasts/{announcement.id}").text
    assert 'id="quiet-shift"' in detail and "Wegen der Ruhezeit" in detail


def test_admins_switch_four_eyes_on_the_settings_page_and_by_api(session: Session) -> None:
    town = quiet_town(session)
    admin = clerk(session, town, "admin")
    assert 'name="broadcast_four_eyes" value="1">' in admin.get("/app/admin/settings").text
    saved = admin.post("/app/admin/settings", {"broadcast_four_eyes": "1"})
    assert 'name="broadcast_four_eyes" value="1" checked>' in saved.text

    token = tenancy.create_api_token(session, user=admin.user, name="Skript")
    session.commit()
    api = TestClient(create_app())
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/settings/four-eyes", headers=headers).json() == {"required": True}
    assert api.put("/api/v1/settings/four-eyes", headers=headers, json={"required": False}).json() == {
        "required": False
    }
    session.refresh(town.municipality)
    assert town.municipality.preferences["broadcast_four_eyes"] is False


def test_the_api_sends_an_authors_warning_only_as_an_emergency_with_a_reason(
    session: Session, started: list[int]
) -> None:
    town = quiet_town(session)
    four_eyes(session, town)
    mayor = staff_user(session, town, "mayor")
    warning = draft(session, mayor)
    api = TestClient(create_app())
    headers = {"Authorization": f"Bearer {tenancy.create_api_token(session, user=mayor, name='Lagezentrum')}"}
    session.commit()
    refused = api.post(f"/api/v1/broadcasts/{warning.id}/approve", headers=headers)
    assert refused.status_code == 403 and "Vier-Augen-Prinzip" in refused.json()["detail"]
    blank = api.post(f"/api/v1/broadcasts/{warning.id}/send-in-emergency", headers=headers, json={"reason": ""})
    assert blank.status_code == 422 and "Begründung" in blank.json()["detail"]
    sent = api.post(f"/api/v1/broadcasts/{warning.id}/send-in-emergency", headers=headers,
                    json={"reason": "Stromausfall im Rathaus"})  # fmt: skip
    assert sent.status_code == 200 and sent.json()["status"] == "approved" and started == [warning.id]


def test_the_command_line_sends_an_authors_warning_only_with_a_reason(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(
        broadcast_cli, "enqueue_broadcast_start", lambda broadcast_id, urgent: calls.append(broadcast_id)
    )
    town = quiet_town(session)
    four_eyes(session, town)
    mayor = staff_user(session, town, "mayor")
    warning = draft(session, mayor)
    runner = CliRunner()
    acting = ["--as", mayor.email, "--municipality", town.municipality.slug]

    refused = runner.invoke(main, ["broadcast", "approve", str(warning.id), *acting])
    assert refused.exit_code != 0 and "Vier-Augen-Prinzip" in refused.output and calls == []
    sent = runner.invoke(main, ["broadcast", "approve", str(warning.id), *acting, "--emergency-reason", "Sturmflut"])
    assert sent.exit_code == 0, sent.output
    assert "approved" in sent.output and calls == [warning.id]


def test_the_confirmation_names_the_whatsapp_template_a_warning_goes_out_as(session: Session) -> None:
    town = quiet_town(session)
    tenancy.create_channel_account(
        session, municipality_id=town.id, kind="whatsapp", name="WhatsApp Rathaus",
        config={"account_sid": "AC" + "3" * 32, "phone_number": "+4930333333", "template_de": "HXwarnung"},
        secrets_={"auth_token": "wa"},
    )  # fmt: skip
    session.commit()
    mayor = clerk(session, town, "mayor")
    warning = draft(session, mayor.user, channel_kinds=("whatsapp",))
    [channel] = confirmation(session, actor=mayor.user, broadcast_id=warning.id or 0).channels
    assert channel.kind == "whatsapp" and channel.templates == {"de": "HXwarnung"}
    assert "Freigegebene Vorlage: HXwarnung" in mayor.get(f"/app/broadcasts/{warning.id}/send-warning").text
