"""Attacks tried on every route there is: another town's ids, forms without the CSRF token, script in a citizen's text.

Like the role matrix, the walks read the routes from create_app(), so pages added later are
tried too.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from channels.base import InboundMessage
from channels.email import html_to_text
from hub.app import create_app
from hub.inbox.models import Conversation
from hub.settings import Settings
from hub.tenancy.service import create_api_token
from hub.web.security import CSRF_COOKIE
from tests.unit.db import make_town, receive
from tests.unit.rows import Rows, app_routes, fill, make_rows, parameters
from tests.unit.web import clerk, staff_user

# Non-GET page routes that must work without the CSRF token, and why.
CSRF_EXEMPT = {
    # RFC 8058 one-click unsubscribe: the mail provider POSTs with no page and no cookie; the signed
    # token in the URL is the authority (see hub/broadcasts/public_pages.py).
    "/u/{token}",
    # Open311: other apps POST with their api_key, never with a browser's cookie (see hub/open311/api.py).
    "/open311/v2/{slug}/requests.{fmt}",
}
# What a page may answer when another town's id is in its path: not found, or a form that is incomplete.
REFUSED_FOR_ANOTHER_TOWN = (404, 422)


@pytest.fixture
def town_a(session: Session, settings: Settings) -> Rows:
    return make_rows(session, settings, make_town(session, slug="stadt-a"), "GeheimA")


def id_routes(*prefixes: str) -> list:  # type: ignore[type-arg]
    return [route for route in app_routes(*prefixes) if any(name.endswith("_id") for name in parameters(route.path))]


def test_staff_of_another_town_get_404_for_this_towns_objects_on_every_page(
    session: Session, settings: Settings, town_a: Rows
) -> None:
    town_b = make_town(session, slug="stadt-b")
    make_rows(session, settings, town_b, "GeheimB")
    admin_b = clerk(session, town_b, "admin")  # every permission, so no 403 hides a leak
    tried = []
    for route in id_routes("/app"):
        path = fill(route.path, town_a)
        if path is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            form = {} if method == "GET" else {"data": {"csrf_token": admin_b.csrf_token}}
            answer = admin_b.client.request(method, path, follow_redirects=False, **form)  # type: ignore[arg-type]
            where = f"{method} {path} as town B's admin"
            expected = (404,) if method == "GET" else REFUSED_FOR_ANOTHER_TOWN
            assert answer.status_code in expected, f"{where}: {answer.status_code}"
            assert town_a.secret not in answer.text, f"{where} shows town A's data"
            tried.append(where)
    # The JSON API takes the same ids: the same answer there.
    api_b = TestClient(create_app())
    token = create_api_token(session, user=staff_user(session, town_b, "admin", email="api@stadt-b.example"), name="t")
    session.commit()
    api_b.headers["Authorization"] = f"Bearer {token}"
    for route in id_routes("/api/v1/"):
        path = fill(route.path, town_a)
        if path is None or route.path.startswith("/api/v1/public/"):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            answer = api_b.request(method, path, **({} if method == "GET" else {"json": {}}))
            where = f"{method} {path} with town B's token"
            assert answer.status_code in ((404,) if method == "GET" else REFUSED_FOR_ANOTHER_TOWN), (
                f"{where}: {answer.status_code} {answer.text[:200]}"
            )
            assert town_a.secret not in answer.text, f"{where} shows town A's data"
            tried.append(where)
    assert any("conversations" in where for where in tried) and any("contacts" in where for where in tried)
    assert any("broadcasts" in where for where in tried)


def test_every_form_is_refused_without_the_csrf_token(session: Session, settings: Settings, town_a: Rows) -> None:
    """Staff pages (signed in, so only the token is missing) and the citizens' pages alike."""
    admin = clerk(session, town_a.town, "admin")
    refused = []
    for route in app_routes("/"):
        if route.path.startswith(("/api/", "/webhooks/", "/static")) or route.path in CSRF_EXEMPT:
            continue
        for method in sorted(route.methods - {"GET", "HEAD"}):
            path = fill(route.path, town_a, unfillable="x")
            assert path is not None
            for sent in ({}, {"csrf_token": "erraten"}):
                answer = admin.client.request(method, path, data=sent, follow_redirects=False)
                assert answer.status_code == 403, f"{method} {path} with {sent or 'no token'}: {answer.status_code}"
                assert "Formular ist abgelaufen" in answer.text
            refused.append(path)
    assert "/app/logout" in refused and "/abo/stadt-a" in refused and "/abo/stadt-a/code" in refused


@pytest.mark.parametrize(
    "payload",
    [
        '<script>alert("x")</script>',
        '<img src=x onerror="alert(1)">',
        '"><svg onload=alert(1)>',
        '</p><a href="javascript:alert(1)">klick</a>',
    ],
)
def test_a_citizens_script_shows_as_text_on_the_status_page(session: Session, settings: Settings, payload: str) -> None:
    town = make_town(session)
    sms = InboundMessage(provider_id="SM1", sender="+4915112345678", text=f"Hallo {payload}")
    receive(session, settings, town.accounts["twilio"], sms)
    conversation = session.exec(select(Conversation)).one()
    page = TestClient(create_app()).get(f"/anfrage/{conversation.reference}/{conversation.public_token}")
    assert page.status_code == 200
    assert payload not in page.text
    assert payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_script_hidden_in_an_emails_html_stays_text(session: Session, settings: Settings) -> None:
    """An HTML-only mail: its tags are dropped when it becomes text, and escaped markup stays escaped on the page."""
    town = make_town(session)
    html = "<p>Guten Tag &lt;script&gt;alert(1)&lt;/script&gt;</p><script>alert(2)</script><img src=x onerror=alert(3)>"
    text = html_to_text(html)
    assert "alert(2)" not in text and "onerror" not in text
    mail = InboundMessage(provider_id="<m1@example.org>", sender="b@example.org", text=text, subject="<b>Hallo</b>")
    receive(session, settings, town.accounts["email"], mail)
    conversation = session.exec(select(Conversation)).one()
    page = TestClient(create_app()).get(f"/anfrage/{conversation.reference}/{conversation.public_token}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "&lt;b&gt;Hallo&lt;/b&gt;" in page.text


def test_citizen_forms_refuse_a_token_from_another_visitor(session: Session) -> None:
    """The token must match the visitor's own cookie: one copied from someone else's page does not do."""
    make_town(session)
    visitor, attacker = TestClient(create_app()), TestClient(create_app())
    visitor.get("/abo/testdorf")
    attacker.get("/abo/testdorf")
    stolen = attacker.cookies[CSRF_COOKIE]
    answer = visitor.post("/abo/testdorf", data={"csrf_token": stolen, "phone": "0151 12345678"})
    assert answer.status_code == 403


def test_a_form_posted_from_another_site_is_refused_even_with_the_right_token(session: Session) -> None:
    town = make_town(session)
    person = clerk(session, town, "staff")
    for headers in (
        {"Origin": "https://angreifer.example"},
        {"Origin": "null"},
        {"Referer": "https://angreifer.example/formular.html"},
    ):
        answer = person.post("/app/logout", headers=headers, follow_redirects=False)
        assert answer.status_code == 403, headers
        assert "kam von einer anderen Seite" in answer.text
    assert person.get("/app/account", follow_redirects=False).status_code == 200, "the person was signed out"
    # The page's own address, the public URL (RATHAUS_PUBLIC_URL), and neither header (left to the token).
    for role, same_site in (
        ("mayor", {"Origin": "http://testserver"}),
        ("viewer", {"Referer": "http://127.0.0.1:8000/app/inbox"}),
        ("admin", {}),
    ):
        signed_out = clerk(session, town, role).post("/app/logout", headers=same_site, follow_redirects=False)
        assert signed_out.status_code == 303, same_site


def test_a_signed_in_form_needs_the_sessions_own_token_not_a_planted_cookie(session: Session) -> None:
    """A CSRF cookie written by someone else (a neighbouring subdomain, plain http) names a token they know."""
    town = make_town(session)
    person, colleague = clerk(session, town, "staff"), clerk(session, town, "admin")
    assert person.csrf_token != colleague.csrf_token
    person.client.cookies.set(CSRF_COOKIE, "vom-angreifer-gesetzt")
    planted = person.client.post("/app/logout", data={"csrf_token": "vom-angreifer-gesetzt"}, follow_redirects=False)
    assert planted.status_code == 403
    borrowed = person.client.post("/app/logout", data={"csrf_token": colleague.csrf_token}, follow_redirects=False)
    assert borrowed.status_code == 403
