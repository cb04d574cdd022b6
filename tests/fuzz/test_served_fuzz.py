"""Schemathesis against a served hub (`rathaus serve --demo`), over HTTP, as four callers: no token, a
read-only (viewer) token, another town's admin token and this town's admin token. 0 × 5xx.

Every operation of the served /openapi.json is called, the webhooks and the citizens' pages
included (the pages a citizen opens are described from the app's own routes, since /docs leaves
them out); path parameters are also filled with real ids of the demo town, so that the calls reach
past "not found". Another town's token must never get an answer for those ids. Then a stateful
phase follows schemathesis's links (inferred from the schema) from what lists and creations return
(broadcasts made before the run in several states, notes, replies, topics) to the operations that
take those ids, once for each town's admin. The webhooks also get what providers send, signed:
citizens' messages with any text, and test_webhook_fuzz's payloads and raw mail. The hub's log must
show no error either: a worker that fails on what a request left behind answers nothing.

The hub is this module's own, not the shared `hub` fixture: the fuzzing erases, merges and stops
contacts and revokes tokens, which the other tests' demo data must not suffer.
RATHAUS_FUZZ_EXAMPLES (default 40) sets the size; `make fuzz` runs it large.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import sqlalchemy as sa
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, Phase, assume, given, reject
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis import GenerationMode

from hub.app import create_app
from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, link
from hub.demo import DEMO_SLUG
from hub.settings import get_settings
from hub.web.security import CSRF_COOKIE, CSRF_HEADER
from tests.fuzz.conftest import FuzzHub
from tests.fuzz.test_webhook_fuzz import (
    assert_taken_or_told,
    facebook_payload,
    form_body,
    post_facebook,
    post_telegram,
    post_twilio,
    raw_mail,
    telegram_update,
    twilio_form,
    twilio_signature,
)
from tests.running_hub import DEADLINE, Hub, running_hub, wait_for

pytestmark = pytest.mark.fuzz

FOREIGN_SLUG = "nachbarort"
VIEWER = "lesezugriff@musterstadt.example"
FOREIGN_ADMIN = f"admin@{FOREIGN_SLUG}.example"
FOREIGN_MAILBOX = f"rathaus@{FOREIGN_SLUG}.example"
# Operations whose callers are told apart by their token; the others (webhooks, citizens' pages,
# sign-up, health) are called once, without one.
STAFF_API = "/api/v1/"
PUBLIC_API = "/api/v1/public/"
# A line the hub's logging writes (hub.cli): the lines between two of them are a traceback.
LOG_LINE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ ")
# No shrinking: against a live server it takes long, and the failing request is printed as it was.
# Nothing stored is replayed: the server's data has moved on since.
RUN = hypothesis_settings(
    deadline=None, phases=[Phase.explicit, Phase.generate], database=None, suppress_health_check=list(HealthCheck)
)


@dataclass
class Served:
    """The served hub, the callers' headers, and real values for path parameters."""

    hub: Hub
    callers: dict[str, dict[str, str]]
    protected_tokens: set[int]
    schema: dict[str, Any]
    # path template -> sets of path parameters that name real rows of the demo town
    seeds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # A visitor's CSRF cookie, sent back in the header, so the citizens' forms are processed.
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def schema_for(self, caller: str) -> Any:
        """The schema as a caller sees it: with a token of its own, schemathesis does not make up (or drop) one."""
        raw = copy.deepcopy(self.schema)
        if self.callers[caller]:
            raw["components"].pop("securitySchemes", None)
            for operations in raw["paths"].values():
                for operation in operations.values():
                    operation.pop("security", None)
        return schemathesis.openapi.from_dict(raw)

    def kwargs(self, caller: str) -> dict[str, Any]:
        return {
            "base_url": self.hub.url,
            "headers": {**self.callers[caller], CSRF_HEADER: self.csrf},
            "cookies": {CSRF_COOKIE: self.csrf},
            "timeout": 30,
        }


def cli(hub: Hub, *args: str) -> str:
    done = hub.cli(*args)
    assert done.returncode == 0, f"rathaus {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_ids(hub: Hub, token: str, names: set[str]) -> set[int]:
    listed = httpx.get(f"{hub.url}/api/v1/tokens", headers=bearer(token), timeout=30)
    listed.raise_for_status()
    return {item["id"] for item in listed.json() if item["name"] in names}


# Broadcasts in each state a step can move on (submit, approve, cancel), made before the run.
DRAFTS: list[dict[str, Any]] = [
    {"kind": "survey", "title": "Umfrage Spielplatz", "texts": {"de": {"body": "Passt der Termin?"}},
     "options": ["Ja", "Nein"]},
    {"kind": "announcement", "title": "Sperrung Hauptstraße", "texts": {"de": {"body": "Ab Montag gesperrt."},
     "en": {"body": "Closed from Monday."}}, "submit": True},
    {"kind": "warning", "severity": "Severe", "title": "Unwetter", "texts": {"de": {"body": "Sturm ab 18 Uhr."}}},
]  # fmt: skip


def seed_broadcasts(api: httpx.Client) -> list[int]:
    made = []
    for draft in DRAFTS:
        created = api.post("/api/v1/broadcasts", json={key: value for key, value in draft.items() if key != "submit"})
        assert created.status_code == 201, created.text
        made.append(created.json()["id"])
        if draft.get("submit"):
            assert api.post(f"/api/v1/broadcasts/{made[-1]}/submit").status_code == 200
    return made


def second_town(hub: Hub) -> str:
    """Another town with its admin and a mailbox that got one citizen's mail (with an attachment); its token."""
    cli(hub, "municipality", "create", "--slug", FOREIGN_SLUG, "--name", "Gemeinde Nachbarort")
    cli(hub, "user", "create", "--email", FOREIGN_ADMIN, "--name", "Nora Nachbar", "--role", "admin",
        "--municipality", FOREIGN_SLUG, "--password", "nachbar-geheim-1")  # fmt: skip
    cli(hub, "channel", "add", "--kind", "email", "--name", "E-Mail Nachbarort", "--municipality", FOREIGN_SLUG,
        "--config", f"address={FOREIGN_MAILBOX}", "--config", "smtp_host=127.0.0.1",
        "--config", f"smtp_port={hub.env['RATHAUS_SANDBOX_SMTP_PORT']}")  # fmt: skip
    token = cli(hub, "token", "create", "--email", FOREIGN_ADMIN, "--name", "fuzz", "--municipality", FOREIGN_SLUG)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "nachbarin@buerger.example", FOREIGN_MAILBOX, "Laterne defekt"
    mail.set_content("Die Laterne vor Haus 3 ist seit Tagen aus.")
    mail.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename="Foto.pdf")
    with smtplib.SMTP("127.0.0.1", int(hub.env["RATHAUS_SMTP_PORT"]), timeout=30) as client:
        client.send_message(mail)
    api = httpx.Client(base_url=hub.url, headers=bearer(token), timeout=30)
    wait_for(lambda: api.get("/api/v1/conversations").json()["items"], what="the other town's mail")
    seed_broadcasts(api)
    return token


def prepare(hub: Hub) -> Served:
    """The callers' tokens, broadcasts in both towns, and the demo town's rows as seeds for path parameters."""
    foreign = second_town(hub)
    viewer = cli(hub, "token", "create", "--email", VIEWER, "--name", "fuzz-viewer", "--municipality", DEMO_SLUG)
    admin = hub.token
    api = httpx.Client(base_url=hub.url, headers=bearer(admin), timeout=30)
    survey, *_ = broadcasts = seed_broadcasts(api)
    conversations = wait_for(hub.conversations, what="the demo citizens' conversations")
    served = Served(
        hub=hub,
        callers={"no token": {}, "viewer": bearer(viewer), "foreign admin": bearer(foreign), "admin": bearer(admin)},
        protected_tokens=token_ids(hub, admin, {"tests", "fuzz-viewer"}) | token_ids(hub, foreign, {"fuzz"}),
        schema=served_schema(hub),
    )
    messages = [message for conversation in conversations for message in hub.messages(conversation["id"])]
    tokens = [item["id"] for item in api.get("/api/v1/tokens").json() if item["id"] not in served.protected_tokens]
    by_name: dict[str, list[Any]] = {
        "conversation_id": [conversation["id"] for conversation in conversations],
        "contact_id": sorted({conversation["contact"]["id"] for conversation in conversations}),
        "attachment_id": [attachment["id"] for message in messages for attachment in message["attachments"]],
        "broadcast_id": broadcasts,
        "token_id": tokens,
        "channel_id": [account["id"] for account in hub.accounts.values()],
        "slug": [DEMO_SLUG, FOREIGN_SLUG],
    }
    engine = sa.create_engine(hub.database_url)
    try:
        with engine.connect() as connection:
            town_id = connection.execute(
                sa.text("SELECT id FROM municipality WHERE slug = :slug"), {"slug": DEMO_SLUG}
            ).scalar_one()
            status_links = connection.execute(sa.text("SELECT reference, public_token FROM conversation")).all()
    finally:
        engine.dispose()
    served.seeds["/anfrage/{reference}/{token}"] = [{"reference": ref, "token": token} for ref, token in status_links]
    # The links a broadcast mail carries, signed with the key the hub uses (both read RATHAUS_SECRET_KEY).
    targets = [LinkTarget(town_id, contact, survey) for contact in by_name["contact_id"]]
    for path, purpose in (("/u/{token}", UNSUBSCRIBE), ("/a/{token}", ANSWER)):
        served.seeds[path] = [{"token": link(get_settings(), purpose, target).rsplit("/", 1)[1]} for target in targets]
    for path in served.schema["paths"]:
        names = [name.strip("{}") for name in path.split("/") if name.startswith("{")]
        if path in served.seeds or not names or not all(by_name.get(name) for name in names):
            continue
        longest = max(len(by_name[name]) for name in names)
        served.seeds[path] = [
            {name: by_name[name][index % len(by_name[name])] for name in names} for index in range(min(longest, 8))
        ]
    return served


def citizen_pages() -> dict[str, Any]:
    """The OpenAPI description of the pages a citizen opens, which /docs leaves out, from the app's routes."""
    shown = []
    for context in iter_route_contexts(create_app().routes):
        route = context.original_route
        if isinstance(route, APIRoute) and not route.include_in_schema and not route.path.startswith("/app"):
            visible = copy.copy(route)
            visible.include_in_schema = True
            shown.append(visible)
    return get_openapi(title="Seiten für Bürgerinnen und Bürger", version="1", routes=shown)


def served_schema(hub: Hub) -> dict[str, Any]:
    raw: dict[str, Any] = httpx.get(f"{hub.url}/openapi.json", timeout=30).json()
    pages = citizen_pages()
    assert pages["paths"], "no citizens' pages found among the app's routes"
    raw["paths"].update(pages["paths"])
    raw.setdefault("components", {}).setdefault("schemas", {}).update(pages.get("components", {}).get("schemas", {}))
    return raw


@pytest.fixture(scope="module", params=["embedded", pytest.param("production", marks=pytest.mark.production)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_hub(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as hub:
        yield prepare(hub)


def revokes_a_callers_token(served: Served, case: Any) -> bool:
    """Revoking the tokens the run calls with would leave the rest of it at 401s."""
    return case.method == "DELETE" and case.path_parameters.get("token_id") in served.protected_tokens


def logged_errors(hub: Hub) -> list[str]:
    """What the hub logged as an error, with the exception that ended its traceback: the web app's 500s,
    and what failed in a worker, which answers no request."""
    errors: list[str] = []
    cause: dict[int, str] = {}
    in_error = False
    for line in hub.log_path.read_text(errors="replace").splitlines():
        if LOG_LINE.match(line):
            in_error = " ERROR " in line or " CRITICAL " in line
            if in_error:
                errors.append(line)
        elif in_error and line.strip() and not line.startswith(" "):
            cause[len(errors) - 1] = line  # the traceback's last unindented line names the exception
    return [f"{error} ⇒ {cause[index]}" if index in cause else error for index, error in enumerate(errors)]


def failure(case: Any, response: Any, what: str) -> str:
    return f"{case.method} {case.formatted_path}: {what} {response.status_code} {response.text[:300]}"


def fuzz(served: Served, operation: Any, caller: str, examples: int) -> str | None:
    """Generated requests to one operation as one caller, some on real ids; the first failure, if any."""
    seeds = served.seeds.get(operation.path, [])
    generated = st.one_of(operation.as_strategy(), operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @given(case=generated, chosen=st.sampled_from(seeds) | st.just({}) if seeds else st.just({}))
    @hypothesis_settings(RUN, max_examples=examples)
    def call(case: Any, chosen: dict[str, Any]) -> None:
        case.path_parameters.update(chosen)
        assume(not revokes_a_callers_token(served, case))
        try:
            response = case.call(**served.kwargs(caller))
        except requests.RequestException as error:
            raise AssertionError(f"{case.method} {case.formatted_path}: as {caller}: no answer ({error})") from error
        assert response.status_code < 500, failure(case, response, f"as {caller}:")
        if caller == "foreign admin" and chosen:
            assert response.status_code >= 400, failure(case, response, "another town's token got the demo town's row:")

    try:
        call()
    except AssertionError as error:
        return str(error).splitlines()[0]
    except Flaky as error:  # failed, then passed when replayed: the failure still counts
        first = error.exceptions[0] if isinstance(error, BaseExceptionGroup) else error
        return f"once: {str(first).splitlines()[0]}"
    return None


def test_no_caller_gets_a_server_error_from_any_operation_of_the_served_hub(served: Served) -> None:
    examples = max(3, hypothesis_settings.default.max_examples // 8)
    failures, called = [], set()
    for caller in served.callers:
        for result in served.schema_for(caller).get_all_operations():
            operation = result.ok()
            staff = operation.path.startswith(STAFF_API) and not operation.path.startswith(PUBLIC_API)
            if staff or caller == "no token":
                called.add(operation.path)
                found = fuzz(served, operation, caller, examples)
                if found:
                    failures.append(found)
    assert len(called) > 40 and {"/webhooks/twilio/{channel_id}", "/abo/{slug}", "/u/{token}"} <= called
    assert not failures, "\n".join(failures)
    assert not logged_errors(served.hub), "\n".join(logged_errors(served.hub))


def test_signed_webhooks_and_mail_are_taken_by_the_served_hub_and_its_workers_without_an_error(
    served: Served,
) -> None:
    """Citizens' SMS and Telegram messages with any text, and test_webhook_fuzz's provider payloads, signed
    right, at the served hub's webhooks and SMTP listener: each is taken or refused with a reason, and
    the workers take every stored event without an error, on PostgreSQL too, which stores less than
    SQLite does (no NUL in a text)."""
    hub = served.hub
    provider = FuzzHub(client=httpx.Client(base_url=hub.url, timeout=30), accounts=hub.accounts, token=hub.token)
    keys = {kind: account["secrets"] for kind, account in hub.accounts.items()}
    mailbox = hub.accounts["email"]["address"]

    twilio = hub.accounts["twilio"]
    # Messages as the providers deliver them, with anything a citizen can type or paste as the text and name.
    sms = st.fixed_dictionaries({
        "MessageSid": st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True),
        "AccountSid": st.just(twilio["config"]["account_sid"]), "To": st.just(twilio["address"]),
        "From": st.from_regex(r"\+4915[0-9]{9}", fullmatch=True), "Body": st.text(min_size=1, max_size=300),
    })  # fmt: skip
    chat = st.integers(10**6, 10**9)
    telegram = st.builds(
        lambda chat_id, message_id, name, text: {"update_id": message_id, "message": {
            "message_id": message_id, "date": 1_700_000_000, "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": name}, "text": text,
        }},
        chat, st.integers(1, 2**31), st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=300),
    )  # fmt: skip

    examples = max(3, hypothesis_settings.default.max_examples // 4)

    @given(data=st.data())
    @hypothesis_settings(RUN, max_examples=examples)
    def deliver(data: st.DataObject) -> None:
        form = data.draw(sms)
        assert_taken_or_told(post_twilio(provider, form_body(form), twilio_signature(provider, form_body(form))))
        message = json.dumps(data.draw(telegram)).encode()
        assert_taken_or_told(post_telegram(provider, message, keys["telegram"]["webhook_secret"]))
        body, status = form_body(data.draw(twilio_form)), data.draw(st.booleans())
        signature = twilio_signature(provider, body, status=status)
        assert_taken_or_told(post_twilio(provider, body, signature, status=status))
        update = json.dumps(data.draw(telegram_update)).encode()
        assert_taken_or_told(post_telegram(provider, update, keys["telegram"]["webhook_secret"]))
        payload = json.dumps(data.draw(facebook_payload)).encode()
        assert_taken_or_told(post_facebook(provider, payload, keys["facebook"]["app_secret"]))
        with smtplib.SMTP("127.0.0.1", int(hub.env["RATHAUS_SMTP_PORT"]), timeout=30) as client:
            client.sendmail("erika@example.org", [mailbox], data.draw(raw_mail() | st.binary(max_size=300)))

    deliver()

    def unprocessed() -> list[str]:
        """Pending events, but for delivery reports on messages the hub never sent: those wait, by design."""
        listed = hub.api.get("/api/v1/inbound-events", params={"state": "pending", "limit": 500}).json()
        waiting = "waiting for message "
        return [f"{e['event_type']} {e['provider_id']}" for e in listed if not (e["outcome"] or "").startswith(waiting)]

    # An event a worker fails on stays pending (and fails again at each sweep): the log says why.
    wait_for(unprocessed, until=lambda left: not left or logged_errors(hub), timeout=DEADLINE + 2 * examples,
             what="the workers to take every stored event")  # fmt: skip
    assert not logged_errors(hub), "\n".join(logged_errors(hub))


@pytest.mark.parametrize("caller", ["admin", "foreign admin"])
def test_a_stateful_run_on_the_objects_it_creates_gets_no_server_error(served: Served, caller: str) -> None:
    schema = served.schema_for(caller)
    # Valid requests, so that each step makes or finds something the next one can take up.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    failures: list[str] = []
    answered: list[str] = []

    class Run(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return served.kwargs(caller)

        def before_call(self, case: Any) -> None:
            assume(not revokes_a_callers_token(served, case))

        def call(self, case: Any, **kwargs: Any) -> Any:
            try:
                return super().call(case, **kwargs)
            except requests.RequestException as error:
                failures.append(f"{case.method} {case.formatted_path}: as {caller}: no answer ({error})")
                reject()

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            if response.status_code >= 500:
                failures.append(failure(case, response, f"as {caller}:"))
            elif response.status_code < 400 and case.path_parameters:
                answered.append(f"{case.method} {case.path}")

    scenarios = max(5, hypothesis_settings.default.max_examples // 4)
    run = hypothesis_settings(RUN, max_examples=scenarios, stateful_step_count=20)
    for _attempt in range(3):
        try:
            Run.run(settings=run)
            break
        except Flaky:
            # The same choices met other answers from the live server and Hypothesis gave up on the
            # run; schemathesis's own runner starts again the same way. The failures seen so far stay.
            continue
    assert not failures, "\n".join(failures)
    assert not logged_errors(served.hub), "\n".join(logged_errors(served.hub))
    assert answered, "no step reached an object by its id: the stateful run found nothing to work on"
    still = httpx.get(f"{served.hub.url}/api/v1/users", headers=served.callers[caller], timeout=30)
    assert still.status_code == 200, f"the run ended with {caller}'s token unusable: {still.status_code}"
