"""Staff sign-in: passwords, throttled failures, sessions, the second factor, reset links, CSRF and redirects."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.settings import Settings
from hub.tenancy import signin
from hub.web.auth import SESSION_COOKIE
from tests.unit.db import make_town
from tests.unit.web import PASSWORD, clerk, sign_in, staff_user


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app())


def test_pages_need_sign_in_and_come_back_after_it(session: Session, client: TestClient) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    first = client.get("/app/account", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/app/login?next=%2Fapp%2Faccount"
    form = client.get("/app/login?next=/app/account")
    token = client.cookies["rathaus_csrf"]
    assert f'value="{token}"' in form.text
    answer = client.post(
        "/app/login",
        data={"email": user.email.upper(), "password": PASSWORD, "next": "/app/account", "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/account"
    assert "Mein Konto" in client.get("/app/account").text


def test_wrong_password_and_unknown_email_read_the_same(session: Session, client: TestClient) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    wrong = sign_in(client, user.email, "falsch-falsch")
    unknown = sign_in(client, "niemand@testdorf.example", "falsch-falsch")
    assert wrong.status_code == unknown.status_code == 401
    assert "E-Mail-Adresse oder Passwort stimmen nicht." in wrong.text
    assert "E-Mail-Adresse oder Passwort stimmen nicht." in unknown.text
    assert SESSION_COOKIE not in client.cookies


def error_of(answer: httpx.Response) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)<', answer.text, re.S)
    assert found is not None, answer.text
    return found.group(1).strip()


def test_known_and_unknown_addresses_read_the_same_at_every_attempt(
    session: Session, client: TestClient, settings: Settings
) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    for attempt in range(settings.sign_in_max_failures + 2):
        known = sign_in(client, user.email, "falsch-falsch")
        unknown = sign_in(client, "niemand@testdorf.example", "falsch-falsch")
        assert (known.status_code, error_of(known)) == (unknown.status_code, error_of(unknown)), f"attempt {attempt}"
    assert known.status_code == 429
    assert "Bitte warten Sie 15 Minuten" in error_of(known)


def test_failures_make_that_client_wait_but_never_lock_the_colleague_out(
    session: Session, client: TestClient, settings: Settings
) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    for _ in range(settings.sign_in_max_failures):
        assert sign_in(client, user.email, "falsch-falsch").status_code == 401
    assert sign_in(client, user.email, PASSWORD).status_code == 429, "the guessing client must wait"

    colleague_at_her_desk = TestClient(create_app(), client=("192.0.2.44", 50000))
    assert sign_in(colleague_at_her_desk, user.email, PASSWORD).status_code == 303
    session.refresh(user)
    assert user.locked_until is None and user.failed_logins == 0


def test_one_client_trying_many_addresses_is_stopped(session: Session, client: TestClient, settings: Settings) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    for number in range(settings.sign_in_client_max_failures):
        assert sign_in(client, f"person{number}@testdorf.example", "Sommer2026!").status_code == 401
    assert sign_in(client, "noch-eine@testdorf.example", "Sommer2026!").status_code == 429
    assert sign_in(client, user.email, PASSWORD).status_code == 429
    assert sign_in(TestClient(create_app(), client=("192.0.2.45", 50000)), user.email, PASSWORD).status_code == 303


def test_a_session_cookie_brought_along_is_not_taken_over(session: Session, client: TestClient) -> None:
    """Session fixation: a token planted before sign-in does not become the signed-in session."""
    town = make_town(session)
    user = staff_user(session, town, "staff")
    client.cookies.set(SESSION_COOKIE, "planted-by-someone-else", domain="testserver.local")
    sign_in(client, user.email)
    assert client.cookies[SESSION_COOKIE] != "planted-by-someone-else"
    intruder = TestClient(create_app(), cookies={SESSION_COOKIE: "planted-by-someone-else"})
    assert intruder.get("/app/account", follow_redirects=False).status_code == 303


def test_the_csrf_token_is_renewed_at_sign_in(session: Session, client: TestClient) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    client.get("/app/login")
    before = client.cookies["rathaus_csrf"]
    sign_in(client, user.email)
    assert client.cookies["rathaus_csrf"] != before


def test_a_form_without_the_csrf_token_is_refused(session: Session) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    refused = staff.client.post("/app/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert "Formular ist abgelaufen" in refused.text
    forged = staff.client.post("/app/logout", data={"csrf_token": "erraten"}, follow_redirects=False)
    assert forged.status_code == 403
    assert staff.get("/app/account").status_code == 200  # still signed in
    assert staff.post("/app/logout", follow_redirects=False).status_code == 303
    assert staff.get("/app/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target",
    # A browser drops tabs and line breaks from a URL, so "/\t/evil.example" would read as "//evil.example".
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "http:/x", "/\t/x.example"],
)
def test_sign_in_never_redirects_to_another_site(session: Session, client: TestClient, target: str) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    client.get("/app/login")
    answer = client.post(
        "/app/login",
        data={"email": user.email, "password": PASSWORD, "next": target, "csrf_token": client.cookies["rathaus_csrf"]},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/app/"


def test_second_factor_is_asked_after_the_password(session: Session, client: TestClient) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    secret = signin.new_totp_secret()
    signin.enable_second_factor(session, user=user, secret=secret, code=pyotp.TOTP(secret).now())
    session.commit()
    answer = sign_in(client, user.email)
    assert answer.headers["location"].startswith("/app/login/code")
    # Half signed in: the pages still ask for sign-in.
    assert client.get("/app/account", follow_redirects=False).status_code == 303
    half_session = client.cookies[SESSION_COOKIE]
    csrf = client.cookies["rathaus_csrf"]
    wrong = client.post("/app/login/code", data={"code": "000000", "csrf_token": csrf})
    assert wrong.status_code == 401
    right = client.post(
        "/app/login/code", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}, follow_redirects=False
    )
    assert right.status_code == 303
    assert client.cookies[SESSION_COOKIE] != half_session
    assert client.get("/app/account").status_code == 200


def test_a_reset_link_works_once_and_ends_other_sessions(session: Session, client: TestClient) -> None:
    town = make_town(session)
    elsewhere = clerk(session, town, "staff")
    token = signin.create_password_reset(session, user=elsewhere.user)
    session.commit()
    page = client.get(f"/app/password/reset/{token}")
    assert page.status_code == 200
    csrf = client.cookies["rathaus_csrf"]
    too_short = client.post(
        f"/app/password/reset/{token}", data={"password": "kurz", "repeated": "kurz", "csrf_token": csrf}
    )
    assert too_short.status_code == 422
    assert "mindestens 10 Zeichen" in too_short.text
    done = client.post(
        f"/app/password/reset/{token}",
        data={"password": "ganz-neues-passwort", "repeated": "ganz-neues-passwort", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get(f"/app/password/reset/{token}").status_code == 410
    assert elsewhere.get("/app/account", follow_redirects=False).status_code == 303
    assert sign_in(client, elsewhere.user.email, "ganz-neues-passwort").status_code == 303


def test_forgotten_password_answers_alike_for_known_and_unknown_addresses(session: Session, client: TestClient) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    client.get("/app/password/forgot")
    csrf = client.cookies["rathaus_csrf"]
    known = client.post("/app/password/forgot", data={"email": user.email, "csrf_token": csrf})
    unknown = client.post("/app/password/forgot", data={"email": "wer@anders.example", "csrf_token": csrf})
    assert known.status_code == unknown.status_code == 200
    assert "ist eine E-Mail mit einem Link unterwegs" in known.text
    assert "ist eine E-Mail mit einem Link unterwegs" in unknown.text


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    answer = client.get("/app/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def test_english_is_chosen_by_the_browser_or_by_the_switch(client: TestClient) -> None:
    assert "<h1>Sign in</h1>" in client.get("/app/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "<h1>Anmelden</h1>" in client.get("/app/login").text
    client.get("/app/login?lang=en")
    assert "<h1>Sign in</h1>" in client.get("/app/login").text


@pytest.mark.parametrize("secret", ["", "KURZ", "kein base32 !"])
def test_a_tampered_second_factor_secret_is_refused_not_a_crash(session: Session, secret: str) -> None:
    town = make_town(session)
    staff = clerk(session, town, "staff")
    answer = staff.post("/app/account/second-factor/confirm", {"secret": secret, "code": "123456"})
    assert answer.status_code == 422
    assert "Schlüssel ist ungültig" in answer.text
