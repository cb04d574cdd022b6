"""Inbox at scale: REST API latency of the inbox with 1,000,000 messages in 100,000 conversations in PostgreSQL.

Contacts, conversations and messages are bulk-loaded with COPY (not through the API). Then
p50/p95 over repeated requests of: listing open conversations (first page), opening a
conversation (the conversation and its messages), and a full-text search (`?q=`, skipped if
the API lacks it) for a word in one conversation of 500. The baseline is the same requests on
a small inbox (five citizens' conversations), before the load.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa

from bench.harness import Hub, header, machine, municipality_id, percentile, ratio, running_hub, table
from tests.running_hub import wait_for

WORDS = (
    "Straße", "Ampel", "Müll", "Biotonne", "Sperrmüll", "Parkplatz", "Baustelle", "Kindergarten", "Antrag", "Bescheid",
    "Hund", "Lärm", "Laterne", "Spielplatz", "Friedhof", "Gewerbe", "Anmeldung", "Wohnung", "Bürgersteig",
    "Winterdienst", "Bücherei", "Schwimmbad",
)  # fmt: skip
# A word as selective as a street name: in the first message of one conversation in RARE.
SEARCH_WORD = "Schlagloch"
RARE = 500


def search_supported(hub: Hub) -> bool:
    """Whether GET /conversations takes `q` (the full-text search of migration 0004)."""
    spec = hub.api.get("/openapi.json").json()
    parameters = spec["paths"]["/api/v1/conversations"]["get"].get("parameters", [])
    return any(parameter["name"] == "q" for parameter in parameters)


def bulk_load(hub: Hub, conversations: int, per_conversation: int) -> float:
    """COPY contacts, conversations and messages; returns the seconds taken (ANALYZE included)."""
    town = municipality_id(hub.engine())
    with hub.engine().connect() as connection:
        account = int(connection.execute(sa.text("SELECT id FROM channelaccount WHERE kind = 'twilio'")).scalar_one())
        first_contact = int(connection.execute(sa.text("SELECT coalesce(max(id), 0) FROM contact")).scalar_one()) + 1
        first_conversation = (
            int(connection.execute(sa.text("SELECT coalesce(max(id), 0) FROM conversation")).scalar_one()) + 1
        )
    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(days=365)
    started = time.monotonic()
    with psycopg.connect(hub.database_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY contact (id, municipality_id, display_name, language, created_at) FROM STDIN"
            ) as copy:
                for n in range(conversations):
                    copy.write_row((first_contact + n, town, f"Bürgerin {n}", "de", start))
            columns = (
                "id, municipality_id, contact_id, channel_account_id, reference, public_token, status, subject, "
                "created_at, last_activity_at, last_inbound_at"
            )
            with cursor.copy(f"COPY conversation ({columns}) FROM STDIN") as copy:
                for n in range(conversations):
                    at = start + timedelta(seconds=n * 300)
                    status = ("open", "pending", "resolved", "resolved")[n % 4]
                    copy.write_row(
                        (first_conversation + n, town, first_contact + n, account, f"B-2025-{n:06d}",
                         f"bench{n:027d}", status, None, at, at, at)
                    )  # fmt: skip
            columns = (
                "municipality_id, conversation_id, channel_account_id, direction, kind, provider_id, body, automated, "
                "email_references, choices, attempts, created_at"
            )
            with cursor.copy(f"COPY message ({columns}) FROM STDIN") as copy:
                for n in range(conversations):
                    base = start + timedelta(seconds=n * 300)
                    for m in range(per_conversation):
                        body = " ".join(rng.choices(WORDS, k=12))
                        if m == 0 and n % RARE == 0:
                            body += f" {SEARCH_WORD}"
                        direction = "inbound" if m % 2 == 0 else "outbound"
                        copy.write_row(
                            (town, first_conversation + n, account, direction, "message", f"bench-{n}-{m}", body,
                             False, "[]", "[]", 0, base + timedelta(seconds=m))
                        )  # fmt: skip
            for name in ("contact", "conversation", "message"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"  # noqa: S608
                )
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE contact, conversation, message")
    return time.monotonic() - started


def small_inbox(hub: Hub, citizens: int = 5) -> None:
    """A few conversations made the real way (citizens texting through the sandbox), for the baseline."""
    for n in range(citizens):
        hub.sandbox.send_sms(from_=f"+4915199900{n:03d}", body=f"Die Laterne Nummer {n} ist aus.")

    def made() -> bool:
        with hub.engine().connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM conversation")).scalar_one()) >= citizens

    wait_for(made, timeout=120, what="the citizens' conversations")


def timings(hub: Hub, requests: int, *, search: bool) -> dict[str, list[float]]:
    """Milliseconds per request for each operation; opening picks conversations at random."""
    with hub.engine().connect() as connection:
        ids = [int(row[0]) for row in connection.execute(sa.text("SELECT id FROM conversation"))]
    rng = random.Random(7)
    results: dict[str, list[float]] = {"list open conversations": [], "open a conversation": []}
    if search:
        results[f"search “{SEARCH_WORD}”"] = []
    for _ in range(requests):
        results["list open conversations"].append(_timed(hub, "/api/v1/conversations", status="open"))
        conversation = rng.choice(ids)
        results["open a conversation"].append(
            _timed(hub, f"/api/v1/conversations/{conversation}")
            + _timed(hub, f"/api/v1/conversations/{conversation}/messages")
        )
        if search:
            results[f"search “{SEARCH_WORD}”"].append(_timed(hub, "/api/v1/conversations", q=SEARCH_WORD))
    return results


def _timed(hub: Hub, path: str, **params: str) -> float:
    started = time.perf_counter()
    hub.api.get(path, params=params).raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000, help="Quick: 10000.")
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50, help="Requests per operation.")
    args = parser.parse_args()
    total = args.conversations * args.messages_per_conversation
    header(
        f"Inbox at scale: {total:,} messages in {args.conversations:,} conversations (PostgreSQL)",
        f"Machine: {machine()}. Through the REST API, {args.requests} requests per operation, one at a time. "
        "Baseline: the same requests on the demo's inbox of a few conversations.",
    )
    with running_hub("production") as hub:
        search = search_supported(hub)
        if not search:
            print("  no `q` parameter on GET /api/v1/conversations: full-text search is not measured")
        small_inbox(hub)
        small = timings(hub, args.requests, search=search)
        loaded = bulk_load(hub, args.conversations, args.messages_per_conversation)
        print(f"  bulk-loaded by COPY in {loaded:.0f} s", flush=True)
        large = timings(hub, args.requests, search=search)
    rows = []
    for operation, values in large.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        base = percentile(small[operation], 0.5)
        rows.append((operation, f"{p50:.1f}", f"{p95:.1f}", f"{base:.1f}", ratio(p50, base)))
    if not search:
        rows.append(("search (`?q=`)", "not yet in the API", "", "", ""))
    table(rows, ("operation", "p50 ms", "p95 ms", "small inbox p50 ms (baseline)", "p50 / baseline"))


if __name__ == "__main__":
    main()
