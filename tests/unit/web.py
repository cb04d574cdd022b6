"""Helpers for page tests in-process: the app on the migrated SQLite, a browser-like client per role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.tenancy import service as tenancy
from hub.tenancy.models import StaffUser
from hub.tenancy.roles import ROLES
from hub.tenancy.signin import set_password
from hub.web.security import CSRF_COOKIE
from tests.unit.db import Town

PASSWORD = "richtig-geheim-1"


@dataclass
class Clerk:
    """A signed-in staff member's browser: cookies kept, the CSRF token sent with every form."""

    user: StaffUser
    client: TestClient

    @property
    def csrf_token(self) -> str:
        return str(self.client.cookies.get(CSRF_COOKIE))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """Submits a form as the page would, CSRF field included."""
        return self.client.post(path, data={"csrf_token": self.csrf_token, **(data or {})}, **kwargs)


def staff_user(session: Session, town: Town, role: str, email: str | None = None) -> StaffUser:
    user = tenancy.create_user(
        session, municipality_id=town.id, email=email or f"{role}@{town.municipality.slug}.example",
        name=f"{role.title()} {town.municipality.name}", role=role,
    )  # fmt: skip
    set_password(session, user=user, password=PASSWORD)
    session.commit()
    return user


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Fills in the sign-in form like a person would (first GET for the CSRF cookie)."""
    form = client.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, "the sign-in form has no CSRF field"
    return client.post(
        "/app/login", data={"email": email, "password": password, "csrf_token": token.group(1)}, follow_redirects=False
    )


def clerk(session: Session, town: Town, role: str = "staff") -> Clerk:
    """A new staff member with `role` in `town`, signed in through the form."""
    assert role in ROLES
    user = staff_user(session, town, role)
    client = TestClient(create_app())
    answer = sign_in(client, user.email)
    assert answer.status_code == 303, answer.text
    return Clerk(user=user, client=client)


def api_client(session: Session, town: Town) -> TestClient:
    """The JSON API with a staff member's bearer token; a crash shows as the 500 the caller gets, not in the test."""
    user = tenancy.create_user(session, municipality_id=town.id, email="api@testdorf.example", name="API", role="staff")
    token = tenancy.create_api_token(session, user=user, name="test")
    session.commit()
    return TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)
