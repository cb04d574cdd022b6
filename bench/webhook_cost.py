"""Webhook cost: SQL statements and Python function calls per webhook, figures a noisy machine cannot blur.

Wall-clock figures on a shared 2-core machine vary by a third between identical runs; the work a
webhook does does not. Each kind of webhook (a citizen's message from each provider, and Twilio's
two delivery reports of a broadcast message) goes through the hub's own receive path in this
process: account, signature, parse, store, reports applied at once, the task queued on the real
broker. The baseline is the same requests through the provider's adapter alone (built, verify,
parse): the least work any hub must do. CPU milliseconds are printed too, as the noisy figure.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from bench.harness import REPO, backends_of, claim_production_services, common_arguments, header, machine, ratio, table
from bench.inbound_webhooks import request_factory
from channels.sandbox.twilio_api import sign

# Unmeasured requests first: the compiled-statement cache, the pool and the broker connection.
WARM_UP = 30


def measure(requests: int) -> list[dict[str, Any]]:
    """In the child process, against the database and broker its environment names: one row per kind."""
    from sqlalchemy import event
    from sqlmodel import select

    from channels.base import WebhookRequest
    from channels.registry import build_adapter
    from hub import webhooks
    from hub.db import get_engine, session_scope
    from hub.demo import seed_demo
    from hub.migrate import upgrade_to_head
    from hub.settings import get_settings
    from hub.tenancy.models import ChannelAccount

    settings = get_settings()
    upgrade_to_head()
    with session_scope() as session:
        seed_demo(session, settings)
        accounts: dict[str, dict[str, Any]] = {
            account.kind: {
                "id": account.id,
                "municipality_id": account.municipality_id,
                "config": account.config,
                "secrets": account.secrets,
            }
            for account in session.exec(select(ChannelAccount))
        }
    public = settings.public_url.rstrip("/")
    build = request_factory(accounts, public)
    total = WARM_UP + requests
    by_kind: dict[str, list[WebhookRequest]] = {"twilio": [], "telegram": [], "facebook": []}
    for n in range(3 * total):
        url, headers, body = build(n)
        lowered = {name.lower(): value for name, value in headers.items()}
        if url.split("/")[-2] == "twilio":
            lowered["content-type"] = "application/x-www-form-urlencoded"
        by_kind[url.split("/")[-2]].append(WebhookRequest(url=url, headers=lowered, body=body, method="POST"))
    reports = _delivery_reports(accounts["twilio"], public, total)

    statements: Counter[str] = Counter()

    @event.listens_for(get_engine(), "before_cursor_execute")
    def _count(*args: Any) -> None:
        statements["all"] += 1

    def hub_receive(kind: str) -> Callable[[WebhookRequest], object]:
        return lambda webhook: webhooks.receive(kind, accounts[kind]["id"], webhook)

    def adapter_alone(kind: str) -> Callable[[WebhookRequest], object]:
        info = accounts[kind]

        def run(webhook: WebhookRequest) -> object:
            adapter = build_adapter(kind, info["config"], info["secrets"])
            adapter.verify(webhook)
            return adapter.parse(webhook)

        return run

    cases = [(f"{kind} message", kind, by_kind[kind][:total]) for kind in by_kind]
    cases.append(("twilio delivery report", "twilio", reports))
    rows = []
    for label, kind, batch in cases:
        for webhook in batch[:WARM_UP]:
            hub_receive(kind)(webhook)
        measured = batch[WARM_UP:]
        statements.clear()
        hub_calls, cpu = _calls(hub_receive(kind), measured)
        per_statement = statements["all"] / len(measured)
        baseline_calls, _ = _calls(adapter_alone(kind), measured)
        rows.append(
            {"webhook": label, "statements": per_statement, "calls": hub_calls, "baseline": baseline_calls, "cpu": cpu}
        )
    rows.append(_stored(3 * total + len(reports), deliveries=total))
    return rows


def _calls(run: Callable[[Any], object], batch: list[Any]) -> tuple[float, float]:
    """Python function calls per request (exact and repeatable) and CPU ms per request (noisy)."""
    profile = cProfile.Profile()
    started = time.process_time()
    profile.enable()
    for item in batch:
        run(item)
    profile.disable()
    cpu_ms = (time.process_time() - started) * 1000 / len(batch)
    return pstats.Stats(profile).total_calls / len(batch), cpu_ms  # type: ignore[attr-defined]


def _delivery_reports(info: dict[str, Any], public: str, count: int) -> list[Any]:
    """A broadcast's `count` SMS deliveries, each with the "sent" and the "delivered" report Twilio posts."""
    from channels.base import WebhookRequest
    from hub.broadcasts.models import Broadcast, Delivery
    from hub.contacts.models import Contact
    from hub.db import session_scope

    sids = [f"SM{number:032x}" for number in range(count)]
    with session_scope() as session:
        town = info["municipality_id"]
        broadcast = Broadcast(municipality_id=town, kind="announcement", title="Kosten", status="sending")
        contacts = [Contact(municipality_id=town, display_name=f"Bürgerin {number}") for number in range(count)]
        session.add_all([broadcast, *contacts])
        session.flush()
        assert broadcast.id is not None
        for number, (sid, contact) in enumerate(zip(sids, contacts, strict=True)):
            assert contact.id is not None
            session.add(
                Delivery(
                    municipality_id=town, broadcast_id=broadcast.id, contact_id=contact.id,
                    channel_account_id=info["id"], address=f"+49151{30_000_000 + number}", state="sending",
                    provider_id=sid,
                )
            )  # fmt: skip
    url = f"{public}/webhooks/twilio/{info['id']}/status"
    reports = []
    for number, sid in enumerate(sids):
        for status in ("sent", "delivered"):
            params = {
                "MessageSid": sid, "SmsSid": sid, "AccountSid": info["config"]["account_sid"],
                "From": info["config"]["phone_number"], "To": f"+49151{30_000_000 + number}",
                "MessageStatus": status, "SmsStatus": status,
            }  # fmt: skip
            headers = {
                "x-twilio-signature": sign(info["secrets"]["auth_token"], url, params),
                "content-type": "application/x-www-form-urlencoded",
            }
            reports.append(WebhookRequest(url=url, headers=headers, body=urlencode(params).encode(), method="POST"))
    return reports


def _stored(expected_events: int, *, deliveries: int) -> dict[str, Any]:
    """What a user would check: every webhook stored once, every delivery moved on to delivered."""
    from sqlalchemy import func
    from sqlmodel import select

    from hub.broadcasts.models import Delivery
    from hub.db import session_scope
    from hub.inbox.models import InboundEvent

    with session_scope() as session:
        events = session.exec(select(func.count()).select_from(InboundEvent)).one()
        delivered = session.exec(select(func.count()).where(Delivery.state == "delivered")).one()
    return {"events": events, "expected_events": expected_events, "delivered": delivered,
            "expected_delivered": deliveries}  # fmt: skip


def run_backend(backend: str, requests: int) -> list[dict[str, Any]]:
    """Runs `measure` in a child process whose settings and broker point at a fresh database."""
    data_dir = tempfile.mkdtemp(prefix="rathaus-bench-cost-")
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(data_dir, ignore_errors=True)]
    env = {**os.environ, "RATHAUS_DATA_DIR": data_dir, "RATHAUS_LOG_LEVEL": "WARNING"}
    try:
        if backend == "production":
            env.update(claim_production_services(cleanups))
        done = subprocess.run(
            [sys.executable, "-m", "bench.webhook_cost", "--measure", str(requests)],
            env=env, cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{backend}: the measurement failed:\n{done.stderr[-3000:]}")
        rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
        return rows
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="Measured webhooks per kind (after 30 unmeasured).")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    common_arguments(parser)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    header(
        f"Webhook cost: statements and Python calls per webhook, {args.requests} of each kind",
        f"Machine: {machine()}. In one process through hub.webhooks.receive (account, signature, parse, store, "
        "delivery reports applied, task queued on the broker). Baseline: the provider adapter alone (build, "
        "verify, parse) on the same requests. Calls and statements repeat exactly from run to run; CPU ms do not.",
    )
    rows: list[Sequence[Any]] = []
    for backend in backends_of(args.backend):
        *kinds, stored = run_backend(backend, args.requests)
        for row in kinds:
            rows.append(
                (backend, row["webhook"], f"{row['statements']:.1f}", f"{row['calls']:,.0f}", f"{row['baseline']:,.0f}",
                 ratio(row["calls"], row["baseline"]), f"{row['cpu']:.2f}")
            )  # fmt: skip
        print(
            f"  {backend}: {stored['events']:,} of {stored['expected_events']:,} webhooks stored, "
            f"{stored['delivered']:,} of {stored['expected_delivered']:,} deliveries moved on to delivered",
            flush=True,
        )
        if (stored["events"], stored["delivered"]) != (stored["expected_events"], stored["expected_delivered"]):
            sys.exit(f"{backend}: webhooks were lost or reports not applied")
    table(rows, ("backend", "webhook", "SQL statements", "Python calls", "adapter alone", "hub / adapter", "CPU ms"))


if __name__ == "__main__":
    main()
