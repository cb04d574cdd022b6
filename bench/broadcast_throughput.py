"""Broadcast throughput: an approved announcement to N recipients through the sandbox, against a plain SDK loop.

For each backend and channel (SMS via Twilio, Telegram, WhatsApp via Twilio) it times approval
-> last message accepted by the sandbox, with no provider rate cap, and the same number of
messages sent by a plain loop of the provider's SDK against the same sandbox with as many threads
(or tasks) as the hub's broadcast worker has. It also prints the peak RSS of that worker
(benchmark 6). WhatsApp's subscribers have opted in but never wrote, so both send the town's
approved template; the sender's tier is lifted at the hub and the sandbox alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any

from bench.harness import (
    NO_RATE_CAP,
    TEXT,
    Hub,
    add_subscribers,
    address,
    approve,
    backends_of,
    common_arguments,
    draft,
    header,
    machine,
    peak_rss_mib,
    ratio,
    running_hub,
    sandbox_count,
    set_config,
    set_rate,
    table,
    wait_for_arrivals,
)
from tests.running_hub import wait_for

CHANNELS = ("twilio", "telegram", "whatsapp")


def twilio_loop(hub: Hub, total: int, threads: int) -> float:
    """The baseline: `threads` threads, each with its own twilio Client, calling messages.create in a loop."""
    config = hub.accounts["twilio"]["config"]
    return _twilio_threads(
        hub, "twilio", total, threads, lambda number: {"to": address("twilio", number),
                                                       "from_": config["phone_number"], "body": TEXT},
    )  # fmt: skip


def whatsapp_loop(hub: Hub, total: int, threads: int) -> float:
    """The baseline: as for SMS, each message the account's approved German template with the text as {{1}}."""
    from channels.whatsapp import ADDRESS_PREFIX

    config = hub.accounts["whatsapp"]["config"]
    variables = json.dumps({"1": TEXT}, ensure_ascii=False)
    return _twilio_threads(
        hub, "whatsapp", total, threads,
        lambda number: {"to": ADDRESS_PREFIX + address("whatsapp", number),
                        "from_": ADDRESS_PREFIX + config["phone_number"], "content_sid": config["template_de"],
                        "content_variables": variables},
    )  # fmt: skip


def _twilio_threads(hub: Hub, kind: str, total: int, threads: int, fields: Any) -> float:
    """`threads` threads, each with its own twilio Client, creating the messages `fields(number)` describes."""
    from twilio.rest import Client

    account = hub.accounts[kind]
    config, secrets = account["config"], account["secrets"]

    def run(numbers: range) -> None:
        client = Client(config["account_sid"], secrets["auth_token"])
        client.edge = client.region = None
        client.api.base_url = config["api_base_url"]
        for number in numbers:
            client.messages.create(**fields(number), status_callback=account["status_callback_url"])

    return _timed_threads(run, total, threads)


def lift_tier(hub: Hub) -> None:
    """No daily limit of recipients for the WhatsApp sender, at the hub and at the sandbox (its tier at Meta)."""
    from hub.demo import DEMO_WHATSAPP_TEMPLATES

    account = hub.accounts["whatsapp"]
    set_config(hub, "whatsapp", daily_recipients=0)
    templates = {sid: {"language": lang, "body": body} for sid, (lang, body) in DEMO_WHATSAPP_TEMPLATES.items()}
    hub.sandbox.register_account(
        "whatsapp", {**account["config"], "messaging_limit": 0, "templates": templates}, account["secrets"],
        webhook_url=account["webhook_url"],
    )  # fmt: skip


def telegram_loop(hub: Hub, total: int, threads: int) -> float:
    """The baseline: one python-telegram-bot Bot, `threads` tasks each awaiting send_message in a loop."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    account = hub.accounts["telegram"]

    async def main() -> float:
        request = HTTPXRequest(connection_pool_size=threads)
        bot = Bot(account["secrets"]["bot_token"], base_url=account["config"]["api_base_url"], request=request)

        async def run(numbers: range) -> None:
            for number in numbers:
                await bot.send_message(chat_id=int(address("telegram", number)), text=TEXT)

        started = time.monotonic()
        await asyncio.gather(*(run(part) for part in _split(total, threads)))
        elapsed = time.monotonic() - started
        await request.shutdown()
        return elapsed

    return asyncio.run(main())


def _split(total: int, parts: int) -> list[range]:
    size = -(-total // parts)
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def _timed_threads(run: Any, total: int, threads: int) -> float:
    """Seconds for `threads` threads to run `run` over their share of `total`; raises if any failed.

    A thread that died early would otherwise make the baseline look faster than it is.
    """
    failures: list[BaseException] = []

    def guarded(part: range) -> None:
        try:
            run(part)
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=guarded, args=(part,)) for part in _split(total, threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"the SDK loop failed in {len(failures)} of {threads} threads") from failures[0]
    return time.monotonic() - started


def measure(hub: Hub, kind: str, recipients: int, *, first_number: int) -> dict[str, float]:
    """One channel on a running hub: the SDK loop first, then the hub's broadcast, same sandbox."""
    threads = hub.bulk_threads
    hub.sandbox.clear_outbox()
    loop = {"twilio": twilio_loop, "telegram": telegram_loop, "whatsapp": whatsapp_loop}[kind]
    if kind == "whatsapp":
        lift_tier(hub)
    print(f"  {hub.backend}/{kind}: baseline, {recipients:,} messages by a plain SDK loop, {threads} threads")
    baseline_seconds = loop(hub, recipients, threads)
    print(f"  {hub.backend}/{kind}: baseline {recipients / baseline_seconds:.0f} msg/s", flush=True)
    # The baseline's status callbacks still queued at the sandbox (for messages the hub never sent,
    # up to two per message) are dropped, so the hub's broadcast does not compete with them.
    discarded = hub.sandbox.discard_callbacks()
    wait_for(lambda: hub.sandbox.pending_callbacks() == 0, timeout=120, what="the callbacks in flight")
    print(f"  {hub.backend}/{kind}: {discarded:,} of the baseline's status callbacks still queued, dropped", flush=True)
    hub.sandbox.clear_outbox()

    loaded = add_subscribers(hub, recipients, kind, start=first_number)
    print(f"  {hub.backend}/{kind}: {recipients:,} subscribers bulk-inserted by SQL in {loaded:.1f}s", flush=True)
    set_rate(hub, kind, NO_RATE_CAP)
    broadcast_id = draft(hub, channel=kind, title=f"Durchsatz {kind}")
    approved_at = approve(hub, broadcast_id)
    last = wait_for_arrivals(hub, kind, recipients, timeout=max(600, recipients / 10))
    count, first, _ = sandbox_count(hub, kind)
    hub_seconds = last - approved_at
    print(f"  {hub.backend}/{kind}: hub {recipients / hub_seconds:.0f} msg/s", flush=True)
    return {
        "hub_rate": recipients / hub_seconds,
        "baseline_rate": recipients / baseline_seconds,
        "first_after": (first or last) - approved_at,
        "hub_seconds": hub_seconds,
        "arrived": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000, help="Recipients per channel (quick: 2000).")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="Comma-separated: twilio,telegram,whatsapp.")
    common_arguments(parser)
    args = parser.parse_args()
    header(
        f"Broadcast throughput: {args.recipients:,} recipients per channel, no rate cap",
        f"Machine: {machine()}. Subscribers are bulk-inserted by SQL; the broadcast is created and approved "
        "through the REST API. Time runs from approval to the last message accepted by the sandbox. "
        "The baseline is the provider's SDK in a plain loop against the same sandbox with as many threads as "
        "the hub's broadcast worker (status callbacks requested in both; those of the baseline still queued "
        "at the sandbox when it ends are dropped before the hub's run).",
    )
    rows = []
    for backend in backends_of(args.backend):
        with running_hub(backend) as hub:
            for index, kind in enumerate(args.channels.split(",")):
                figures = measure(hub, kind, args.recipients, first_number=index * args.recipients)
                rows.append(
                    (
                        backend, kind, f"{args.recipients:,}", f"{figures['hub_rate']:.0f}",
                        f"{figures['baseline_rate']:.0f}", ratio(figures["hub_rate"], figures["baseline_rate"]),
                        f"{figures['first_after']:.1f}", f"{figures['hub_seconds']:.0f}",
                    )
                )  # fmt: skip
            rss = peak_rss_mib(hub.bulk_worker_pid())
            memory = f"{rss:.0f} MiB" if rss else "?"
            rows.append((backend, "peak RSS of the broadcast worker", "", memory, "", "", "", ""))
    table(
        rows,
        ("backend", "channel", "messages", "hub msg/s", "SDK loop msg/s", "hub / loop", "first after s", "total s"),
    )


if __name__ == "__main__":
    main()
