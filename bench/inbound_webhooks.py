"""Inbound webhooks: signed Twilio, Telegram and Facebook webhooks at rising rates until the ack p99 passes 100 ms.

An asyncio httpx client on this machine posts each provider's signed webhook (as the sandbox
signs them) at a fixed rate per step, raising the rate until the step's p99 exceeds the
limit. The baseline is the same load against a bare FastAPI endpoint that returns 200 under
the same uvicorn. Afterwards every accepted message must be in the inbox: the count lost is
printed (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from bench.harness import (
    REPO,
    Hub,
    backends_of,
    common_arguments,
    header,
    hub_cpu_seconds,
    machine,
    percentile,
    ratio,
    running_hub,
    table,
)
from channels.sandbox.graph_api import encode_webhook, signature_headers
from channels.sandbox.state import Account
from channels.sandbox.twilio_api import inbound_params, sign
from tests.running_hub import free_port, wait_for

LIMIT_MS = 100.0
# Citizens writing: few enough that most messages thread into existing conversations.
SENDERS = 50

bare_app = FastAPI()


@bare_app.post("/webhooks/{kind}/{channel_id}")
async def bare(kind: str, channel_id: int) -> dict[str, bool]:
    return {"ok": True}


Request = tuple[str, dict[str, str], bytes]


def request_factory(accounts: dict[str, dict[str, Any]], url: str) -> Callable[[int], Request]:
    """Builds the n-th signed webhook, cycling Twilio, Telegram, Facebook; `url` is where it goes.

    `accounts`: per kind, the channel account's id, config and secrets (`Hub.accounts`).
    """

    def twilio(n: int) -> Request:
        info = accounts["twilio"]
        target = f"{url}/webhooks/twilio/{info['id']}"
        account = Account(info["id"], "twilio", target, info["config"], info["secrets"])
        params = inbound_params(account, "SM" + uuid.uuid4().hex, f"+49151{20_000_000 + n % SENDERS}", f"Frage {n}", [])
        headers = {"X-Twilio-Signature": sign(info["secrets"]["auth_token"], target, params)}
        return target, headers, httpx.QueryParams(params).__str__().encode()

    def telegram(n: int) -> Request:
        info = accounts["telegram"]
        chat = 700_000_000 + n % SENDERS
        body = {
            "update_id": 10_000_000 + n,
            "message": {
                "message_id": n, "from": {"id": chat, "is_bot": False, "first_name": "Erika"},
                "chat": {"id": chat, "type": "private", "first_name": "Erika"}, "date": int(time.time()),
                "text": f"Frage {n}",
            },
        }  # fmt: skip
        headers = {"X-Telegram-Bot-Api-Secret-Token": info["secrets"]["webhook_secret"]}
        return f"{url}/webhooks/telegram/{info['id']}", headers, json.dumps(body).encode()

    def facebook(n: int) -> Request:
        info = accounts["facebook"]
        page = info["config"]["page_id"]
        now = int(time.time() * 1000)
        event = {
            "sender": {"id": str(8_000_000_000 + n % SENDERS)}, "recipient": {"id": page}, "timestamp": now,
            "message": {"mid": "m_" + uuid.uuid4().hex, "text": f"Frage {n}"},
        }  # fmt: skip
        body = encode_webhook({"object": "page", "entry": [{"id": page, "time": now, "messaging": [event]}]})
        return f"{url}/webhooks/facebook/{info['id']}", signature_headers(info["secrets"]["app_secret"], body), body

    builders = (twilio, telegram, facebook)
    return lambda n: builders[n % 3](n)


def _fake_accounts() -> dict[str, dict[str, Any]]:
    secrets = {"auth_token": "x" * 32, "webhook_secret": "s", "app_secret": "a"}
    config = {"phone_number": "+4930901820", "account_sid": "AC" + "0" * 32, "page_id": "1"}
    return {kind: {"id": 1, "config": config, "secrets": secrets} for kind in ("twilio", "telegram", "facebook")}


async def step(
    client: httpx.AsyncClient, build: Callable[[int], Request], rate: int, seconds: float, counter: itertools.count[int]
) -> dict[str, Any]:
    """Posts at `rate` per second (open loop: a slow answer does not slow the sender) for `seconds`."""
    latencies: list[float] = []
    accepted: list[int] = []
    failed = 0

    async def one(n: int) -> None:
        nonlocal failed
        url, headers, body = build(n)
        started = time.perf_counter()
        try:
            response = await client.post(url, headers=headers, content=body)
        except httpx.HTTPError:
            failed += 1
            return
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code == 200:
            accepted.append(n)
        else:
            failed += 1

    tasks = []
    started = time.perf_counter()
    total = int(rate * seconds)
    for index in range(total):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(next(counter))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    return {
        "rate": rate, "achieved": len(accepted) / elapsed, "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99), "accepted": len(accepted), "failed": failed,
    }  # fmt: skip


def ramp(build: Callable[[int], Request], rates: list[int], seconds: float) -> tuple[dict[str, Any], int]:
    """The last step whose p99 stayed within the limit (the sustained rate), and how many were accepted.

    If not even the first step did, that step is returned with `sustained` False.
    """
    return asyncio.run(_ramp(build, rates, seconds))


async def _ramp(build: Callable[[int], Request], rates: list[int], seconds: float) -> tuple[dict[str, Any], int]:
    counter = itertools.count()
    sustained: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    client = httpx.AsyncClient(timeout=60, limits=limits)
    # Warm-up, not counted in the figures: the first requests open connections and pools.
    accepted = (await step(client, build, 10, 2, counter))["accepted"]
    for rate in rates:
        result = await step(client, build, rate, seconds, counter)
        result["sustained"] = result["p99"] <= LIMIT_MS and not result["failed"]
        sustained = sustained or result
        accepted += result["accepted"]
        print(
            f"    {rate:>5}/s: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, failed {result['failed']}",
            flush=True,
        )
        if not result["sustained"]:
            break
        sustained = result
    await client.aclose()
    return sustained, accepted


def inbox_count(hub: Hub) -> int:
    """Inbound messages the pipeline has put into conversations (the demo's own included)."""
    with hub.engine().connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM message WHERE direction = 'inbound'")).scalar_one())


def pending_events(hub: Hub) -> int:
    with hub.engine().connect() as connection:
        query = "SELECT count(*) FROM inboundevent WHERE state = 'pending'"
        return int(connection.execute(sa.text(query)).scalar_one())


def bare_baseline(rates: list[int], seconds: float) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.inbound_webhooks:bare_app", "--port", str(port), "--log-level",
               "warning"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}/docs"), timeout=60, what="the bare endpoint")
        sustained, _ = ramp(request_factory(_fake_accounts(), f"http://127.0.0.1:{port}"), rates, seconds)
    finally:
        process.terminate()
        process.wait(timeout=20)
    return sustained


def _rate(result: dict[str, Any]) -> str:
    """The sustained rate, or that even the lowest step missed the limit (its figures follow)."""
    return f"{result['achieved']:.0f}" if result["sustained"] else f"< {result['rate']} (p99 over the limit)"


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25,50,100,200,400,800,1600", help="Steps in requests per second.")
    parser.add_argument("--seconds", type=float, default=10, help="Length of each step (quick: 4).")
    common_arguments(parser)
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    header(
        f"Inbound webhooks: rising rates of signed webhooks (Twilio, Telegram, Facebook in turn), {args.seconds:g} s "
        "per step",
        f"Machine: {machine()}. Load generator: asyncio httpx on the same machine (open loop). Sustained: the "
        f"highest step whose acknowledgement p99 stayed under {LIMIT_MS:.0f} ms without errors. Baseline: a "
        "bare FastAPI endpoint returning 200 under the same uvicorn.",
    )
    print("  baseline: bare FastAPI endpoint", flush=True)
    bare = bare_baseline(rates, args.seconds)
    rows = [("bare FastAPI (baseline)", _rate(bare), f"{bare['p50']:.1f}", f"{bare['p99']:.1f}", "", "")]
    for backend in backends_of(args.backend):
        with running_hub(backend) as hub:
            before = inbox_count(hub)
            cpu_before = hub_cpu_seconds(hub)
            print(f"  {backend}: the hub's webhooks", flush=True)
            sustained, accepted = ramp(request_factory(hub.accounts, hub.url), rates, args.seconds)
            wait_for(lambda hub=hub: pending_events(hub) == 0, timeout=900, what="the pipeline to drain")
            cpu = {name: used - cpu_before[name] for name, used in hub_cpu_seconds(hub).items()}
            # Where the cores went: whichever process uses most per webhook is the first to scale out.
            shares = ", ".join(f"{name} {1000 * used / accepted:.1f}" for name, used in cpu.items() if used >= 0.5)
            print(f"  {backend}: CPU ms per accepted webhook, ramp and drain: {shares}", flush=True)
            lost = accepted - (inbox_count(hub) - before)
            rows.append(
                (f"hub, {backend}", _rate(sustained), f"{sustained['p50']:.1f}",
                 f"{sustained['p99']:.1f}", ratio(sustained["achieved"], bare["achieved"]), str(lost))
            )  # fmt: skip
    table(rows, ("endpoint", "sustained /s", "p50 ms", "p99 ms", "rate / bare", "lost"))


if __name__ == "__main__":
    main()
