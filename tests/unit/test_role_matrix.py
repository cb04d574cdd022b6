"""Every staff page and every /api/v1 route checked for every role against the one permission table.

The table is hub/tenancy/roles.py. The routes are read from create_app() at test time, so a page
or API route added later is in the matrix without anyone editing this file; one that declares no
permission fails, and one whose path or body names something new fails until tests/unit/rows.py
knows a row for it. API tokens are also tried on another town's ids: 404, and nothing of that
town in the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.app import create_app
from hub.settings import Settings
from hub.tenancy.auth import current_user
from hub.tenancy.roles import PERMISSIONS, ROLES, allows
from hub.tenancy.service import create_api_token
from tests.unit.db import make_town
from tests.unit.rows import (
    PUBLIC_API_ROUTES,
    Rows,
    api_routes,
    app_routes,
    body,
    fill,
    make_rows,
    parameters,
    permission_of,
    permissions,
    staff_routes,
    streams,
)
from tests.unit.web import Clerk, clerk, staff_user


def test_every_staff_and_api_route_declares_exactly_one_known_permission() -> None:
    for route in [*staff_routes(), *api_routes()]:
        assert permission_of(route) in PERMISSIONS


def test_an_api_route_without_a_permission_fails_the_matrix_with_where_to_add_one() -> None:
    router = APIRouter(prefix="/api/v1")
    router.add_api_route("/neu", lambda: None, methods=["GET"], dependencies=[Depends(current_user)])
    [route] = iter_route_contexts(router.routes)
    with pytest.raises(AssertionError, match=r"declares 0 permissions.*require_permission.*PUBLIC_API_ROUTES"):
        permission_of(route)


def test_the_public_api_routes_are_the_listed_ones_and_ask_for_no_token() -> None:
    served = {(method, route.path) for route in app_routes("/api/v1/") for method in route.methods - {"HEAD"}}
    assert served >= PUBLIC_API_ROUTES, f"listed as public but not served: {sorted(PUBLIC_API_ROUTES - served)}"
    for route in app_routes("/api/v1/public/"):
        assert not list(permissions(route.dependant)), f"{route.path} is public and declares a permission"


@dataclass(frozen=True)
class Matrix:
    rows: Rows
    clerks: dict[str, Clerk]


@pytest.fixture
def matrix(session: Session, settings: Settings) -> Matrix:
    town = make_town(session)
    rows = make_rows(session, settings, town, "Matrix")
    return Matrix(rows=rows, clerks={role: clerk(session, town, role) for role in ROLES})


def test_each_role_reaches_exactly_the_pages_its_permissions_allow(matrix: Matrix) -> None:
    skipped: list[str] = []
    checked = 0
    for route in staff_routes():
        permission = permission_of(route)
        path = fill(route.path, matrix.rows)
        if path is None:
            skipped.append(route.path)
            continue
        for method in sorted(route.methods - {"HEAD"}):
            for role, person in matrix.clerks.items():
                allowed = allows(role, permission)
                if allowed and (method != "GET" or streams(route)):
                    continue  # an allowed change (or live stream) is its own page's test, not the matrix's
                answer = person.client.request(
                    method, path, follow_redirects=False,
                    **({} if method == "GET" else {"data": {"csrf_token": person.csrf_token}}),
                )  # fmt: skip
                where = f"{method} {path} as {role} (needs {permission})"
                if allowed:
                    # Anything but a refusal or a crash (a page may want a query parameter: 422).
                    assert answer.status_code != 403 and answer.status_code < 500, f"{where}: {answer.status_code}"
                else:
                    assert answer.status_code == 403, f"{where}: {answer.status_code}, expected 403"
                    assert "Keine Berechtigung" in answer.text
                checked += 1
    assert checked, f"no staff route could be called; skipped: {skipped}"


@dataclass(frozen=True)
class ApiMatrix:
    """Two towns' rows, and an API token for each role in each town."""

    own: Rows
    foreign: Rows
    tokens: dict[tuple[int, str], str]

    def token(self, rows: Rows, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[rows.town.id, role]}"}


@pytest.fixture
def api_matrix(session: Session, settings: Settings) -> ApiMatrix:
    own = make_rows(session, settings, make_town(session, slug="stadt-a"), "GeheimA")
    foreign = make_rows(session, settings, make_town(session, slug="stadt-b"), "GeheimB")
    tokens = {
        (rows.town.id, role): create_api_token(session, user=staff_user(session, rows.town, role), name=role)
        for rows in (own, foreign)
        for role in ROLES
    }
    session.commit()
    return ApiMatrix(own=own, foreign=foreign, tokens=tokens)


def reads_first(routes: list[RouteContext]) -> list[RouteContext]:
    """Reads before writes, so that what a write changed (an erasure, a revoked token) cannot hide a read's answer."""
    return sorted(routes, key=lambda route: "GET" not in route.methods)


def test_every_api_route_refuses_a_request_without_a_valid_token(api_matrix: ApiMatrix) -> None:
    api = TestClient(create_app())
    for route in api_routes():
        path = fill(route.path, api_matrix.own, unfillable="x")
        assert path is not None
        for method in sorted(route.methods - {"HEAD"}):
            for headers in ({}, {"Authorization": "Bearer erfunden"}):
                answer = api.request(method, path, headers=headers, json=body(route, api_matrix.own))
                assert answer.status_code == 401, f"{method} {path} with {headers or 'no token'}: {answer.status_code}"


def test_each_api_token_reaches_what_its_role_allows_and_nothing_of_another_town(api_matrix: ApiMatrix) -> None:
    own, foreign = api_matrix.own, api_matrix.foreign
    api = TestClient(create_app(), raise_server_exceptions=False)
    checked = 0

    def call(method: str, path: str, rows: Rows, role: str, sent: dict[str, object] | None) -> httpx.Response:
        return api.request(method, path, headers=api_matrix.token(rows, role), json=sent)

    for route in reads_first(api_routes()):
        permission = permission_of(route)
        path, foreign_path = fill(route.path, own), fill(route.path, foreign)
        assert path is not None and foreign_path is not None, f"{route.path}: the API matrix cannot fill it"
        names_ids = bool(parameters(route.path))
        for method in sorted(route.methods - {"HEAD"}):
            for role in ROLES:
                allowed = allows(role, permission)
                where = f"{method} {route.path} as {role} (needs {permission})"
                # Another town's token, with this town's ids in the path (and in the body).
                answer = call(method, path, foreign, role, body(route, own))
                assert own.secret.lower() not in answer.text.lower(), f"{where}, town B's token: shows town A's data"
                if not allowed:
                    assert answer.status_code == 403, f"{where}, town B's token: {answer.status_code}, expected 403"
                elif names_ids:
                    assert answer.status_code == 404, f"{where}, town B's token on town A's ids: {answer.status_code}"
                else:
                    assert answer.status_code not in (401, 403) and answer.status_code < 500, f"{where}: {answer}"
                # Another town's ids only in the body: the token's own object, pointed at town A's rows.
                own_body, foreign_body = body(route, foreign), body(route, own)
                if allowed and own_body != foreign_body:
                    answer = call(method, foreign_path, foreign, role, foreign_body)
                    assert answer.status_code in (404, 422), (
                        f"{where}, town B's token with town A's ids in the body: {answer.status_code} {answer.text}"
                    )
                    assert own.secret.lower() not in answer.text.lower()
                # The town's own token on its own rows.
                answer = call(method, path, own, role, body(route, own))
                if allowed:
                    assert answer.status_code not in (401, 403) and answer.status_code < 500, (
                        f"{where}: {answer.status_code} {answer.text[:200]}"
                    )
                else:
                    assert answer.status_code == 403, f"{where}: {answer.status_code}, expected 403"
                    assert "darf das nicht" in answer.json()["detail"]
                checked += 1
    assert checked >= 4 * 30, f"only {checked} calls made"
