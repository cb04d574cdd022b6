"""Forwarded headers are believed from the configured reverse proxies only, and from nobody by default."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub import settings as settings_module
from hub.app import create_app
from hub.settings import Settings
from hub.web.auth import SESSION_COOKIE
from hub.web.security import CSRF_COOKIE
from tests.unit.db import make_town
from tests.unit.web import PASSWORD, sign_in, staff_user

PROXY = "10.0.0.7"
HTTPS = "https://testserver"


def through(app_client: TestClient, citizen: str) -> TestClient:
    """The client's requests as the proxy forwards them for `citizen`, over TLS."""
    app_client.headers.update({"X-Forwarded-For": citizen, "X-Forwarded-Proto": "https"})
    return app_client


@pytest.fixture
def behind_proxy(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RATHAUS_TRUSTED_PROXIES", f"{PROXY}, 192.168.0.0/16")
    settings_module.get_settings.cache_clear()
    return settings_module.get_settings()


def cookie_header(answer: httpx.Response, name: str) -> str:
    return next(value for value in answer.headers.get_list("set-cookie") if value.startswith(f"{name}="))


def test_the_proxys_https_makes_cookies_secure_and_nobody_elses_does(behind_proxy: Settings) -> None:
    proxied = through(TestClient(create_app(), client=(PROXY, 40000)), "203.0.113.5")
    assert "secure" in cookie_header(proxied.get("/app/login"), CSRF_COOKIE).lower()
    forged = through(TestClient(create_app(), client=("127.0.0.1", 40000)), "203.0.113.5")
    assert "secure" not in cookie_header(forged.get("/app/login"), CSRF_COOKIE).lower()


def test_behind_the_trusted_proxy_each_client_counts_alone(session: Session, behind_proxy: Settings) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    # The test client speaks https itself here: its cookie jar sends Secure cookies back only then.
    guesser = through(TestClient(create_app(), base_url=HTTPS, client=(PROXY, 40000)), "203.0.113.5")
    for _ in range(behind_proxy.sign_in_max_failures):
        assert sign_in(guesser, user.email, "falsch-falsch").status_code == 401
    assert sign_in(guesser, user.email, PASSWORD).status_code == 429

    # Another citizen behind the same proxy (a network in the list) is not held to the first one's failures.
    colleague = through(TestClient(create_app(), base_url=HTTPS, client=("192.168.3.9", 40001)), "203.0.113.6")
    assert sign_in(colleague, user.email, PASSWORD).status_code == 303


def test_without_a_trusted_proxy_forwarded_headers_are_ignored_even_from_loopback(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    user = staff_user(session, town, "staff")
    for number in range(settings.sign_in_max_failures):
        forger = through(TestClient(create_app(), client=("127.0.0.1", 40000)), f"198.51.100.{number}")
        assert sign_in(forger, user.email, "falsch-falsch").status_code == 401
    fresh_address = through(TestClient(create_app(), client=("127.0.0.1", 40000)), "198.51.100.200")
    assert sign_in(fresh_address, user.email, PASSWORD).status_code == 429, "a forged address escaped the limit"

    plain = TestClient(create_app(), client=("192.0.2.10", 40000))
    plain.headers["X-Forwarded-Proto"] = "https"
    signed_in = sign_in(plain, user.email, PASSWORD)
    assert signed_in.status_code == 303
    assert "secure" not in cookie_header(signed_in, SESSION_COOKIE).lower()
