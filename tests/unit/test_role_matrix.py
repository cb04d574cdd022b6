"""Every staff page checked for every role against the one permission table, hub/tenancy/roles.py.

The routes are read from create_app() at test time, so a page added later is in the matrix
without anyone editing this file; one whose path names something new fails until
tests/unit/rows.py knows a row for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from hub.settings import Settings
from hub.tenancy.roles import PERMISSIONS, ROLES, allows
from tests.unit.db import make_town
from tests.unit.rows import Rows, fill, make_rows, permission_of, staff_routes, streams
from tests.unit.web import Clerk, clerk


def test_every_staff_route_declares_exactly_one_known_permission() -> None:
    for route in staff_routes():
        assert permission_of(route) in PERMISSIONS


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
