"""API tokens end with the account that owns them, show their last use, and an admin can revoke any of them."""

from __future__ import annotations

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.app import create_app
from hub.audit.models import AuditEvent
from hub.cli import main
from hub.tenancy import service as tenancy
from hub.tenancy.models import ApiToken
from tests.unit.db import make_town
from tests.unit.web import clerk, staff_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_deactivated_persons_tokens_stop_at_once_for_reads_exports_and_erasure(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    leaving = staff_user(session, town, "admin", email="geht@testdorf.example")
    token = tenancy.create_api_token(session, user=leaving, name="Fachverfahren")
    session.commit()
    api = TestClient(create_app())
    contact_id = 1
    assert api.get("/api/v1/conversations", headers=bearer(token)).status_code == 200

    admin.post(f"/app/admin/staff/{leaving.id}/active", {"active": "0"})

    for method, path in [
        ("GET", "/api/v1/conversations"),
        ("GET", f"/api/v1/contacts/{contact_id}/export"),
        ("POST", f"/api/v1/contacts/{contact_id}/erase"),
    ]:
        answer = api.request(method, path, headers=bearer(token))
        assert answer.status_code == 401, f"{method} {path}: {answer.status_code}"
        assert answer.json()["detail"] == "Token ungültig oder widerrufen."
    stored = session.exec(select(ApiToken).where(ApiToken.user_id == leaving.id)).one()
    session.refresh(stored)
    assert stored.revoked_at is not None
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "staff.deactivated")).one()
    assert event.details["tokens_revoked"] == 1


def test_a_token_of_an_inactive_account_is_refused_even_if_it_was_never_revoked(session: Session) -> None:
    town = make_town(session)
    person = staff_user(session, town, "staff")
    token = tenancy.create_api_token(session, user=person, name="alt")
    person.active = False
    session.add(person)
    session.commit()
    assert TestClient(create_app()).get("/api/v1/conversations", headers=bearer(token)).status_code == 401


def test_admins_list_tokens_with_their_last_use_and_revoke_them_by_api(session: Session) -> None:
    town = make_town(session)
    other_town = make_town(session, "nachbarort")
    admin = staff_user(session, town, "admin")
    colleague = staff_user(session, town, "staff")
    admin_token = tenancy.create_api_token(session, user=admin, name="Verwaltung")
    script_token = tenancy.create_api_token(session, user=colleague, name="Skript Bürgerbüro")
    foreign_token = tenancy.create_api_token(session, user=staff_user(session, other_town, "admin"), name="fremd")
    session.commit()
    api = TestClient(create_app())

    listed = api.get("/api/v1/tokens", headers=bearer(admin_token)).json()
    script = next(item for item in listed if item["name"] == "Skript Bürgerbüro")
    assert script["last_used_at"] is None and script["revoked_at"] is None
    assert script["user_email"] == colleague.email
    assert "token" not in script and "token_sha256" not in script
    assert {item["name"] for item in listed} == {"Verwaltung", "Skript Bürgerbüro"}, "another town's token is listed"

    assert api.get("/api/v1/conversations", headers=bearer(script_token)).status_code == 200
    listed = api.get("/api/v1/tokens", headers=bearer(admin_token)).json()
    assert next(item for item in listed if item["name"] == "Skript Bürgerbüro")["last_used_at"] is not None

    assert api.get("/api/v1/tokens", headers=bearer(script_token)).status_code == 403
    foreign_id = session.exec(select(ApiToken.id).where(ApiToken.name == "fremd")).one()
    assert api.delete(f"/api/v1/tokens/{foreign_id}", headers=bearer(admin_token)).status_code == 404
    assert api.get("/api/v1/conversations", headers=bearer(foreign_token)).status_code == 200

    revoked = api.delete(f"/api/v1/tokens/{script['id']}", headers=bearer(admin_token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert api.get("/api/v1/conversations", headers=bearer(script_token)).status_code == 401


def test_the_administration_page_shows_each_token_and_revokes_it(session: Session) -> None:
    town = make_town(session)
    admin = clerk(session, town, "admin")
    colleague = staff_user(session, town, "staff")
    token = tenancy.create_api_token(session, user=colleague, name="Terminbuchung")
    session.commit()

    page = admin.get(f"/app/admin/tokens?user_id={colleague.id}")
    assert page.status_code == 200
    assert "Terminbuchung" in page.text and "nie" in page.text
    token_id = session.exec(select(ApiToken.id).where(ApiToken.name == "Terminbuchung")).one()

    done = admin.post(f"/app/admin/tokens/{token_id}/revoke")
    assert "funktioniert ab sofort nicht mehr" in done.text
    assert "widerrufen am" in done.text
    assert TestClient(create_app()).get("/api/v1/conversations", headers=bearer(token)).status_code == 401


def test_the_command_line_lists_and_revokes_tokens(session: Session) -> None:
    town = make_town(session)
    person = staff_user(session, town, "staff")
    token = tenancy.create_api_token(session, user=person, name="cron")
    session.commit()
    runner = CliRunner()

    listed = runner.invoke(main, ["token", "list"])
    assert listed.exit_code == 0, listed.output
    assert "cron" in listed.output and "nie benutzt" in listed.output and "aktiv" in listed.output
    token_id = session.exec(select(ApiToken.id).where(ApiToken.name == "cron")).one()

    revoked = runner.invoke(main, ["token", "revoke", str(token_id)])
    assert revoked.exit_code == 0, revoked.output
    assert "widerrufen" in runner.invoke(main, ["token", "list"]).output
    assert TestClient(create_app()).get("/api/v1/conversations", headers=bearer(token)).status_code == 401
    missing = runner.invoke(main, ["token", "revoke", "999"])
    assert missing.exit_code != 0 and "gibt es in dieser Gemeinde nicht" in missing.output
