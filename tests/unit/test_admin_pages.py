"""Administration pages in-process: channel accounts and their test message, staff, teams, the town's settings."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from channels.base import InboundMessage
from hub.audit.models import AuditEvent
from hub.db import utcnow
from hub.inbox.models import Message
from hub.settings import Settings
from hub.templating import render_message
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser, Team
from hub.tenancy.preferences import preference
from tests.unit.conftest import FakeProvider
from tests.unit.db import make_town, receive
from tests.unit.web import clerk

ACCOUNT_SID = "AC" + "7" * 32


def twilio_answer(sid: str, to: str) -> dict[str, object]:
    """Twilio's answer to a create, trimmed to what the SDK reads."""
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": "x",
        "status": "queued",
        "direction": "outbound-api",
        "from": "+4930555000",
        "to": to,
        "num_segments": "1",
        "num_media": "0",
        "error_code": None,
        "error_message": None,
        "date_created": "Thu, 21 Nov 2024 14:32:10 +0000",
        "date_sent": None,
        "date_updated": "Thu, 21 Nov 2024 14:32:10 +0000",
        "price": None,
        "price_unit": "USD",
        "messaging_service_sid": None,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        "subresource_uris": {},
    }


def test_admin_creates_a_channel_sees_its_webhook_url_and_never_its_secrets(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    form = admin.get("/app/admin/channels/new?kind=twilio")
    assert form.status_code == 200
    assert 'type="password"' in form.text

    created = admin.post(
        "/app/admin/channels/new",
        {
            "kind": "twilio",
            "name": "SMS Rathaus",
            "phone_number": "+4930555000",
            "account_sid": ACCOUNT_SID,
            "auth_token": "streng-geheimes-token",
            "api_base_url": "",
        },
    )
    assert created.status_code == 200, created.text
    account = session.exec(select(ChannelAccount).where(ChannelAccount.name == "SMS Rathaus")).one()
    assert f"http://testserver/webhooks/twilio/{account.id}" in created.text or (
        f"/webhooks/twilio/{account.id}" in created.text
    )
    assert f"/webhooks/twilio/{account.id}/status" in created.text
    assert "Der Kanal wurde angelegt" in created.text
    assert "streng-geheimes-token" not in created.text
    assert "********" in created.text
    listing = admin.get("/app/admin/channels")
    assert "SMS Rathaus" in listing.text and f"/webhooks/twilio/{account.id}" in listing.text
    assert "streng-geheimes-token" not in listing.text

    # Saving with the secret left empty keeps it; typing a new one replaces it.
    admin.post(
        f"/app/admin/channels/{account.id}",
        {"name": "SMS Bürgertelefon", "phone_number": "+4930555000", "account_sid": ACCOUNT_SID, "auth_token": ""},
    )
    session.refresh(account)
    assert account.name == "SMS Bürgertelefon" and account.secrets["auth_token"] == "streng-geheimes-token"
    admin.post(
        f"/app/admin/channels/{account.id}",
        {
            "name": "SMS Bürgertelefon",
            "phone_number": "+4930555000",
            "account_sid": ACCOUNT_SID,
            "auth_token": "neues-token",
        },
    )
    session.refresh(account)
    assert account.secrets["auth_token"] == "neues-token"

    off = admin.post(f"/app/admin/channels/{account.id}/active", {"active": "0"})
    assert "deaktiviert" in off.text
    session.refresh(account)
    assert account.active is False
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_id == account.id)).all()
    assert {"channel.created", "channel.updated", "channel.deactivated"} <= set(actions)


def test_a_missing_setting_is_named_and_the_typed_secret_not_echoed(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    answer = admin.post(
        "/app/admin/channels/new",
        {"kind": "telegram", "name": "Bot", "bot_username": "", "bot_token": "123:geheim"},
    )
    assert answer.status_code == 422
    assert "Bitte ausfüllen: Name des Bots." in answer.text
    assert "123:geheim" not in answer.text


def test_the_test_message_goes_through_the_real_adapter_and_the_providers_answer_is_shown(
    session: Session, fake_provider: FakeProvider
) -> None:
    town = make_town(session)
    account = tenancy.create_channel_account(
        session,
        municipality_id=town.id,
        kind="twilio",
        name="SMS",
        config={"account_sid": ACCOUNT_SID, "phone_number": "+4930555000", "api_base_url": fake_provider.url},
        secrets_={"auth_token": "t"},
    )
    session.commit()
    admin = clerk(session, town, "admin")

    fake_provider.respond(201, twilio_answer("SM" + "1" * 32, "+4915112345678"))
    sent = admin.post(f"/app/admin/channels/{account.id}/test", {"to": "+4915112345678", "text": "Probe"})
    assert sent.status_code == 200
    assert "Der Anbieter hat die Nachricht angenommen." in sent.text
    assert "SM" + "1" * 32 in sent.text
    request = fake_provider.requests[-1]
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form["To"] == ["+4915112345678"] and request.form["Body"] == ["Probe"]

    fake_provider.respond(
        400, {"code": 21211, "message": "The 'To' number +4915100000000 is not a valid phone number.", "status": 400}
    )
    refused = admin.post(f"/app/admin/channels/{account.id}/test", {"to": "+4915100000000", "text": "Probe"})
    assert "Der Anbieter hat die Nachricht abgelehnt." in refused.text
    assert "21211" in refused.text

    fake_provider.respond(503, {"code": 20500, "message": "Service unavailable", "status": 503})
    fake_provider.respond(503, {"code": 20500, "message": "Service unavailable", "status": 503})
    fake_provider.respond(503, {"code": 20500, "message": "Service unavailable", "status": 503})
    fake_provider.respond(503, {"code": 20500, "message": "Service unavailable", "status": 503})
    down = admin.post(f"/app/admin/channels/{account.id}/test", {"to": "+4915112345678", "text": "Probe"})
    assert "nicht erreichbar" in down.text


def test_staff_are_invited_changed_unlocked_and_deactivated_which_signs_them_out(session: Session) -> None:
    town = make_town(session)
    team = tenancy.create_team(session, municipality_id=town.id, name="Bürgerbüro")
    session.commit()
    admin = clerk(session, town, "admin")

    # The test town's mailbox points at a closed port, so the link is shown once instead.
    invited = admin.post(
        "/app/admin/staff",
        {"name": "Erika Muster", "email": "Erika@Testdorf.example", "role": "staff", "team_id": str(team.id)},
    )
    assert invited.status_code == 200
    assert "Erika Muster wurde angelegt" in invited.text
    link = re.search(r"https?://[^<\s]+(/app/password/reset/[\w-]+)", invited.text)
    assert link is not None
    erika = session.exec(select(StaffUser).where(StaffUser.email == "erika@testdorf.example")).one()
    assert erika.team_id == team.id and erika.password_hash is None
    assert admin.get(link.group(1)).status_code == 200
    assert admin.post("/app/admin/staff", {"name": "Nochmal", "email": "erika@testdorf.example"}).status_code == 422

    colleague = clerk(session, town, "staff")
    assert colleague.get("/app/account").status_code == 200
    admin.post(f"/app/admin/staff/{colleague.user.id}", {"role": "mayor", "team_id": ""})
    session.refresh(colleague.user)
    assert colleague.user.role == "mayor"

    colleague.user.locked_until = utcnow() + timedelta(minutes=10)
    session.add(colleague.user)
    session.commit()
    assert "Sperre aufheben" in admin.get(f"/app/admin/staff/{colleague.user.id}").text
    admin.post(f"/app/admin/staff/{colleague.user.id}/unlock")
    session.refresh(colleague.user)
    assert colleague.user.locked_until is None

    off = admin.post(f"/app/admin/staff/{colleague.user.id}/active", {"active": "0"})
    assert "die Person wurde überall abgemeldet" in off.text
    answer = colleague.get("/app/account", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/login")

    # An administrator cannot lock themselves out.
    assert admin.post(f"/app/admin/staff/{admin.user.id}/active", {"active": "0"}).status_code == 422
    assert admin.post(f"/app/admin/staff/{admin.user.id}", {"role": "viewer"}).status_code == 422


def test_team_targets_and_office_hours_and_the_towns_settings_are_saved(session: Session, settings: Settings) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    created = admin.post(
        "/app/admin/teams/new",
        {
            "name": "Bauamt",
            "first_response": "1",
            "first_response_unit": "hours",
            "resolution": "6",
            "resolution_unit": "working_days",
            "mon_from": "08:00",
            "mon_to": "16:00",
            "fri_from": "08:00",
            "fri_to": "12:00",
            "fri_from2": "13:00",
            "fri_to2": "15:00",
        },
    )
    assert "Das Team wurde gespeichert." in created.text
    team = session.exec(select(Team).where(Team.name == "Bauamt")).one()
    # Set in hours and working days (eight office hours each), stored in office minutes as before.
    assert (team.first_response_minutes, team.resolution_minutes) == (60, 2880)
    shown = admin.get(f"/app/admin/teams/{team.id}").text
    assert 'name="resolution" value="6"' in shown and '<option value="working_days" selected>' in shown
    assert "6 Arbeitstage" in admin.get("/app/admin/teams").text
    assert team.office_hours == {"mon": [["08:00", "16:00"]], "fri": [["08:00", "12:00"], ["13:00", "15:00"]]}
    assert 'name="fri_from2" value="13:00"' in admin.get(f"/app/admin/teams/{team.id}").text
    wrong = admin.post(f"/app/admin/teams/{team.id}", {"name": "Bauamt", "tue_from": "17:00", "tue_to": "09:00"})
    assert wrong.status_code == 422 and "Öffnungszeiten Dienstag" in wrong.text

    form = admin.get("/app/admin/settings")
    # The shipped wording is shown filled in next to each field (no template syntax), and the hub's
    # default office hours filled in.
    shipped = f"Vielen Dank für Ihre Nachricht an die {town.municipality.name}. Ihre Vorgangsnummer lautet A-2026-"
    assert shipped in form.text
    assert "{%" not in form.text.split("<form")[1]
    assert 'name="mon_from" value="08:00"' in form.text
    saved = admin.post(
        "/app/admin/settings",
        {
            "text_de_acknowledgement.txt.j2": "Danke! Ihre Nummer: {{ reference }}",
            "text_de_acknowledgement_sms.txt.j2": "Danke! Ihre Nummer: {{ reference }}",
            "first_response": "4",
            "first_response_unit": "hours",
            "resolution": "",
            "retention_days": "365",
            "mon_from": "07:30",
            "mon_to": "18:00",
        },
    )
    assert "Die Einstellungen wurden gespeichert." in saved.text
    assert "Danke! Ihre Nummer:" in saved.text
    municipality = session.get(Municipality, town.id)
    assert municipality is not None
    session.refresh(municipality)
    assert municipality.preferences["retention_days"] == 365
    assert municipality.preferences["office_hours"] == {"mon": [["07:30", "18:00"]]}
    assert municipality.preferences["response_targets"]["first_response_minutes"] == 240
    texts = preference(municipality, "texts")
    assert render_message("acknowledgement.txt.j2", "de", overrides=texts, reference="A-1") == "Danke! Ihre Nummer: A-1"
    # English keeps the built-in text.
    assert "acknowledgement.txt.j2" not in texts.get("en", {})

    # A citizen who writes in now gets the town's own wording.
    receive(
        session,
        settings,
        town.accounts["twilio"],
        InboundMessage(provider_id="SM-ack", sender="+4915112345678", text="Die Laterne ist kaputt"),
    )
    ack = session.exec(select(Message).where(Message.direction == "outbound")).one()
    assert ack.body.startswith("Danke! Ihre Nummer: A-")
    assert admin.post("/app/admin/settings", {"retention_days": "7"}).status_code == 422


def test_a_refused_team_or_test_message_is_explained_in_english_on_the_english_page(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    wrong = admin.post("/app/admin/teams/new?lang=en", {"name": "Bauamt", "first_response": "bald"})
    assert wrong.status_code == 422
    assert "First response: please give a number greater than 0, e.g. 4 or 1.5." in wrong.text
    nowhere = admin.post(f"/app/admin/channels/{town.accounts['twilio'].id}/test?lang=en", {"to": " ", "text": "x"})
    assert nowhere.status_code == 422 and "Please say where the test message should go." in nowhere.text


def test_the_sms_code_countries_and_ceilings_are_set_and_checked_on_the_settings_page(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    form = admin.get("/app/admin/settings").text
    assert 'name="allowed_phone_countries" value="DE"' in form
    assert 'name="verification_codes_per_hour" value="60"' in form

    saved = admin.post(
        "/app/admin/settings",
        {"allowed_phone_countries": "de, at", "verification_codes_per_hour": "20", "verification_codes_per_day": "80"},
    )
    assert "Die Einstellungen wurden gespeichert." in saved.text
    session.refresh(town.municipality)
    assert preference(town.municipality, "allowed_phone_countries") == ["DE", "AT"]
    assert preference(town.municipality, "verification_codes_per_hour") == 20
    assert preference(town.municipality, "verification_codes_per_day") == 80

    unknown = admin.post("/app/admin/settings", {"allowed_phone_countries": "DE, Österreich"})
    assert unknown.status_code == 422 and "ÖSTERREICH ist kein Ländercode" in unknown.text
    upside_down = admin.post(
        "/app/admin/settings", {"verification_codes_per_hour": "50", "verification_codes_per_day": "10"}
    )
    assert upside_down.status_code == 422 and "mindestens so viele wie pro Stunde" in upside_down.text


@pytest.mark.parametrize("role", ["mayor", "staff", "viewer"])
def test_only_administrators_may_open_the_administration(session: Session, role: str) -> None:
    town = make_town(session)
    person = clerk(session, town, role)
    account_id = town.accounts["twilio"].id
    for path in (
        "/app/admin",
        "/app/admin/channels",
        f"/app/admin/channels/{account_id}",
        "/app/admin/staff",
        "/app/admin/teams",
        "/app/admin/settings",
        "/app/admin/channels/new",
    ):
        assert person.get(path).status_code == 403, path
    assert person.post(f"/app/admin/channels/{account_id}/active", {"active": "0"}).status_code == 403


def test_another_towns_channel_is_not_found(session: Session) -> None:
    town = make_town(session)
    other = make_town(session, slug="nachbarort")
    admin = clerk(session, town, "admin")
    assert admin.get(f"/app/admin/channels/{other.accounts['twilio'].id}").status_code == 404


def test_an_email_channel_takes_its_port_as_a_number_and_starttls_as_a_checkbox(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    form = {
        "kind": "email",
        "name": "Postfach",
        "address": "buergerbuero@testdorf.example",
        "smtp_host": "mail.example",
        "smtp_port": "587",
        "smtp_starttls": "1",
        "smtp_username": "bb",
        "smtp_password": "pw-geheim",
    }
    page = admin.post("/app/admin/channels/new", form)
    assert page.status_code == 200 and "pw-geheim" not in page.text
    assert 'name="smtp_starttls" value="1" checked' in page.text
    account = session.exec(select(ChannelAccount).where(ChannelAccount.name == "Postfach")).one()
    assert (account.config["smtp_port"], account.config["smtp_starttls"]) == (587, True)
    # Email arrives by SMTP: no webhook address, the listener instead.
    assert "/webhooks/email/" not in page.text
    del form["smtp_starttls"]
    admin.post(f"/app/admin/channels/{account.id}", {**form, "smtp_password": ""})
    session.refresh(account)
    assert account.config["smtp_starttls"] is False and account.secrets["smtp_password"] == "pw-geheim"
    assert admin.post("/app/admin/channels/new", {**form, "smtp_port": "viele"}).status_code == 422


def test_every_administration_page_renders_in_english_for_every_channel_kind(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    paths = [
        "/app/admin",
        "/app/admin/channels",
        "/app/admin/channels/new",
        "/app/admin/staff",
        f"/app/admin/staff/{admin.user.id}",
        "/app/admin/teams",
        "/app/admin/teams/new",
        "/app/admin/settings",
    ]
    paths += [f"/app/admin/channels/{account.id}" for account in town.accounts.values()]
    paths += [f"/app/admin/channels/new?kind={kind}" for kind in town.accounts]
    for path in paths:
        answer = admin.get(path, params={"lang": "en"})
        assert answer.status_code == 200, path
    facebook = admin.get(f"/app/admin/channels/{town.accounts['facebook'].id}", params={"lang": "en"}).text
    assert "Verify token" in facebook and "Webhook address" in facebook


def test_a_refused_channel_setting_is_named_in_the_language_of_the_browser(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    bot = {"kind": "telegram", "name": "Bot", "bot_username": "", "bot_token": "123:geheim"}
    assert "Please fill in: Bot name." in admin.post("/app/admin/channels/new", bot, headers=english).text
    mailbox = {"kind": "email", "name": "Postfach", "address": "bb@testdorf.example", "smtp_host": "mail.example"}
    german = admin.post("/app/admin/channels/new", {**mailbox, "smtp_port": "viele"})
    assert german.status_code == 422 and "SMTP-Port: bitte eine ganze Zahl angeben." in german.text
    answer = admin.post("/app/admin/channels/new", {**mailbox, "smtp_port": "viele"}, headers=english)
    assert answer.status_code == 422 and "SMTP port: please give a whole number." in answer.text
    # A setting only the command line sets, gone wrong, is named when the form is saved.
    account = town.accounts["email"]
    account.config = {**account.config, "imap_port": "viele"}
    session.commit()
    form = {"name": "Postfach", "address": account.config["address"], "smtp_host": "127.0.0.1", "smtp_port": "1"}
    german = admin.post(f"/app/admin/channels/{account.id}", form)
    assert german.status_code == 422 and "IMAP-Port hat nicht die erwartete Form." in german.text
    answer = admin.post(f"/app/admin/channels/{account.id}", form, headers=english)
    assert answer.status_code == 422 and "IMAP port does not have the expected form." in answer.text
