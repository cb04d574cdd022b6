"""Consultation booking: citizens confirm their booking mail's link at once, on PostgreSQL; bookings/s, 0 overbooked.

A series of open sessions (one slot of `capacity` places per session) is defined through the
API; there are places for nine in ten citizens, so the last places of every session are fought
over. Before anything is measured, each citizen's booking mail link is prepared: the request
(slot, name, address) signed for the mail link's purpose with the hub's key, as the booking
form mails it, and read back with the hub's own reader (web_booking.read_mail_link), so that a
link the hub would refuse fails the run at once. Measured: every citizen pressing the confirm
page's button, i.e. the form POST to /sprechstunden/<town>/bestaetigen?token=… with the
citizen's CSRF cookie and token, all citizens queued at once and `--concurrency` requests in
flight. That request does all the booking's database work: the address proven (contact and
identity found or added, committed), the place claimed by the conditional UPDATE, the booking
and its reference written, the confirmation mail with its .ics queued, committed, the send
enqueued; it answers 303 to the booking's page, or 409 with the next free slots when the
session filled meanwhile. Opening the link (the GET of the confirm page) and the page the 303
leads to are not measured.

The baseline is the hub's own GET /healthz in the same served hub, the same number of requests
at the same concurrency from the same client, just before. Afterwards the database is counted:
no slot's `booked` above its capacity, the live bookings equal the sum of `booked`, equal the
303 answers, one confirmation written per booking, and every place taken. The load generator's
own CPU time is printed beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import httpx
import sqlalchemy as sa

from bench.harness import (
    Hub,
    common_arguments,
    header,
    hub_cpu_seconds,
    machine,
    municipality_id,
    percentile,
    ratio,
    running_hub,
    table,
)
from hub.demo import DEMO_SLUG

# Warm-up requests per endpoint, not counted: connections, pools, compiled statements.
WARM_UP = 20
# Places for this share of the citizens: the rest are refused, which proves the last places are fought over.
PLACES_SHARE = 0.9


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    data: dict[str, str] | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Phase:
    """What one endpoint's load gave: answers by status, latencies, wall and load-generator CPU seconds."""

    statuses: Counter[int | str]
    latencies_ms: dict[int | str, list[float]]
    seconds: float
    generator_cpu: float

    @property
    def answered(self) -> int:
        return sum(count for status, count in self.statuses.items() if isinstance(status, int))

    def all_latencies(self) -> list[float]:
        return [value for values in self.latencies_ms.values() for value in values]


async def drive(calls: list[Call], concurrency: int) -> Phase:
    """Queues every call at once and keeps `concurrency` in flight; a latency is from sending to the full answer."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: Counter[int | str] = Counter()
    latencies: dict[int | str, list[float]] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def one(call: Call) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.request(call.method, call.url, data=call.data, headers=call.headers)
                except httpx.HTTPError as error:
                    statuses[type(error).__name__] += 1
                    return
                statuses[response.status_code] += 1
                latencies.setdefault(response.status_code, []).append((time.perf_counter() - started) * 1000)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(call) for call in calls))
        return Phase(statuses, latencies, time.perf_counter() - wall, time.process_time() - cpu)


def define_series(hub: Hub, *, sessions: int, capacity: int) -> tuple[int, list[int]]:
    """An open daily session of the Bürgerbüro from tomorrow, `sessions` times, one slot each; its id and slot ids."""
    from hub.db import utcnow

    teams = hub.api.get("/api/v1/teams").json()
    team = next(team for team in teams if team["name"] == "Bürgerbüro")
    created = hub.api.post("/api/v1/consultations/series", json={
        "title": "Offene Sprechstunde Bürgerbüro", "rrule": f"FREQ=DAILY;COUNT={sessions}",
        "first_day": (utcnow().date() + timedelta(days=1)).isoformat(), "start_time": "09:00", "end_time": "11:00",
        "slot_minutes": 120, "capacity": capacity, "host_team_id": team["id"], "location": "in_person",
        "address": "Rathaus, Bürgerbüro", "opens_days_before": sessions + 2, "questions_allowed": False,
    })  # fmt: skip
    created.raise_for_status()
    series_id = int(created.json()["id"])
    listed = hub.api.get(f"/api/v1/consultations/series/{series_id}/sessions")  # writes the sessions and slots
    listed.raise_for_status()
    slot_ids = [slot["id"] for held in listed.json() for slot in held["slots"]]
    if len(slot_ids) != sessions:
        raise RuntimeError(f"expected {sessions} open slots, the series has {len(slot_ids)}")
    return series_id, slot_ids


def mail_links(hub: Hub, town_id: int, slot_ids: list[int], citizens: int) -> list[Call]:
    """Each citizen's press of the confirm button: their link's token, signed as the booking form mails it."""
    from hub.consultations import web_booking
    from hub.settings import get_settings
    from hub.subscribers.signed_links import secret_key, sign_token
    from hub.tenancy.models import Municipality

    get_settings.cache_clear()  # the run's key, set in the environment just before
    secret_key.cache_clear()
    town = Municipality(id=town_id, slug=DEMO_SLUG, name="Stadt Musterstadt")
    calls = []
    for number in range(citizens):
        address = f"buergerin-{number}@example.org"
        # Citizens of all sessions take turns, so every session's last places are fought over at the same time.
        payload = {"s": slot_ids[number % len(slot_ids)], "n": f"Bürgerin {number}", "c": None}
        token = sign_token({**payload, "m": town_id, "e": address, "l": "de", "ip": "127.0.0.1"},
                           purpose=web_booking.EMAIL_PURPOSE)  # fmt: skip
        asked, read_address, _language = web_booking.read_mail_link(municipality=town, token=token)
        assert (asked.slot_id, read_address) == (payload["s"], address), "the hub reads the link differently"
        csrf = secrets.token_urlsafe(32)
        calls.append(
            Call("POST", f"{hub.url}/sprechstunden/{DEMO_SLUG}/bestaetigen?token={token}", data={"csrf_token": csrf},
                 headers={"Cookie": f"rathaus_csrf={csrf}", "Origin": hub.url})
        )  # fmt: skip
    return calls


def counted(hub: Hub, series_id: int) -> dict[str, int]:
    """The verdict from the database: slots over capacity, live bookings against the sum of `booked`, confirmations."""
    from hub.consultations.models import Booking, ConsultationSession, ConsultationSlot
    from hub.inbox.models import Message

    booking = Booking.__table__  # type: ignore[attr-defined]
    held = ConsultationSession.__table__  # type: ignore[attr-defined]
    slot = ConsultationSlot.__table__  # type: ignore[attr-defined]
    message = Message.__table__  # type: ignore[attr-defined]
    sessions = sa.select(held.c.id).where(held.c.series_id == series_id)
    live = sa.select(booking.c.contact_id).where(booking.c.session_id.in_(sessions), booking.c.status == "booked")
    engine = hub.engine()
    try:
        with engine.connect() as connection:
            slots = connection.execute(
                sa.select(slot.c.capacity, slot.c.booked).where(slot.c.session_id.in_(sessions))
            ).all()
            bookings = connection.execute(sa.select(sa.func.count()).select_from(live.subquery())).scalar_one()
            citizens = connection.execute(
                sa.select(sa.func.count(sa.distinct(booking.c.contact_id))).where(
                    booking.c.session_id.in_(sessions), booking.c.status == "booked"
                )
            ).scalar_one()
            confirmations = connection.execute(
                sa.select(sa.func.count()).where(message.c.direction == "outbound", message.c.contact_id.in_(live))
            ).scalar_one()
    finally:
        engine.dispose()
    return {
        "places": sum(row.capacity for row in slots), "booked": sum(row.booked for row in slots),
        "overbooked": sum(1 for row in slots if row.booked > row.capacity), "bookings": bookings,
        "citizens": citizens, "confirmations": confirmations,
    }  # fmt: skip


def _row(name: str, phase: Phase, done: int, baseline: Phase | None, concurrency: int) -> tuple[str, ...]:
    every = phase.all_latencies()
    rate = done / phase.seconds
    return (
        name, f"{len(every):,}", str(concurrency), f"{rate:,.0f}", f"{percentile(every, 0.5):.0f}",
        f"{percentile(every, 0.95):.0f}", ratio(rate, baseline.answered / baseline.seconds) if baseline else "",
        f"{1000 * phase.generator_cpu / max(len(every), 1):.2f}", f"{phase.generator_cpu / phase.seconds:.2f}",
    )  # fmt: skip


def run(backend: str, citizens: int, sessions: int, concurrency: int) -> None:
    capacity = int(citizens * PLACES_SHARE) // sessions
    # The links are signed with the hub's key: the run's own, given to the hub and to this process.
    key = secrets.token_urlsafe(32)
    os.environ["RATHAUS_SECRET_KEY"] = key
    with running_hub(backend, extra_env={"RATHAUS_SECRET_KEY": key}) as hub:
        engine = hub.engine()
        town_id = municipality_id(engine)
        engine.dispose()
        series_id, slot_ids = define_series(hub, sessions=sessions, capacity=capacity)
        calls = mail_links(hub, town_id, slot_ids, citizens)
        bare = [Call("GET", f"{hub.url}/healthz") for _ in range(citizens)]
        warm = [Call("GET", f"{hub.url}/healthz"), Call("GET", f"{hub.url}/sprechstunden/{DEMO_SLUG}/{series_id}")]
        asyncio.run(drive(warm * WARM_UP, concurrency))
        print(f"  baseline: GET /healthz × {citizens:,}", flush=True)
        baseline = asyncio.run(drive(bare, concurrency))
        print(f"  booking: {citizens:,} citizens confirm their link, {capacity * sessions:,} places", flush=True)
        cpu_before = hub_cpu_seconds(hub)
        booking = asyncio.run(drive(calls, concurrency))
        cpu = {name: used - cpu_before[name] for name, used in hub_cpu_seconds(hub).items()}
        verdict = counted(hub, series_id)

    booked, refused = booking.statuses.get(303, 0), booking.statuses.get(409, 0)
    table(
        [
            _row("GET /healthz of the same hub (baseline)", baseline, baseline.answered, None, concurrency),
            _row("booking: POST …/bestaetigen (all answers)", booking, booking.answered, baseline, concurrency),
        ],
        ("endpoint", "requests", "in flight", "answers /s", "p50 ms", "p95 ms", "rate / bare", "generator CPU ms/req",
         "generator cores"),
    )  # fmt: skip
    made = booking.latencies_ms.get(303, [])
    print(
        f"\n  bookings: {booked:,} in {booking.seconds:.1f} s = {booked / booking.seconds:,.0f} bookings/s; "
        f"booked answers p50 {percentile(made, 0.5):.0f} ms, p95 {percentile(made, 0.95):.0f} ms; "
        f"refused (session full, next free offered) p95 {percentile(booking.latencies_ms.get(409, []), 0.95):.0f} ms",
        flush=True,
    )
    shares = ", ".join(f"{name} {1000 * used / max(booked, 1):.1f}" for name, used in cpu.items() if used >= 0.5)
    print(f"  CPU ms per booking, by process: {shares}", flush=True)
    table(
        [(f"{citizens:,}", f"{verdict['places']:,}", f"{booked:,}", f"{refused:,}", f"{verdict['booked']:,}",
          f"{verdict['bookings']:,}", f"{verdict['confirmations']:,}", str(verdict["overbooked"]))],
        ("citizens", "places", "303 booked", "409 refused", "sum of booked", "live bookings (DB)",
         "confirmations (DB)", "slots overbooked"),
    )  # fmt: skip
    expected = {303: min(citizens, verdict["places"]), 409: max(0, citizens - verdict["places"])}
    problems = [
        text
        for failed, text in (
            (verdict["overbooked"] != 0, "a slot holds more bookings than places"),
            (verdict["bookings"] != verdict["booked"], "the live bookings differ from the slots' booked counts"),
            (verdict["bookings"] != booked, "the 303 answers differ from the live bookings"),
            (verdict["citizens"] != verdict["bookings"], "a citizen holds two bookings"),
            (verdict["confirmations"] != verdict["bookings"], "a booking has no confirmation, or two"),
            (dict(booking.statuses) != {k: v for k, v in expected.items() if v}, f"answers {dict(booking.statuses)}"),
            (dict(baseline.statuses) != {200: citizens}, f"baseline answers {dict(baseline.statuses)}"),
        )
        if failed
    ]
    if problems:
        sys.exit("; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=2000, help="Citizens booking at once.")
    parser.add_argument("--sessions", type=int, default=10, help="Open sessions of the series, one slot each.")
    parser.add_argument("--concurrency", type=int, default=50, help="Requests in flight at a time.")
    common_arguments(parser, backends=("production",))
    args = parser.parse_args()
    header(
        f"Consultation booking: {args.citizens:,} citizens confirm their booking link at once, "
        f"{args.sessions} open sessions, places for {PLACES_SHARE:.0%}, production (PostgreSQL)",
        f"Machine: {machine()}. Load generator: asyncio httpx on the same machine, every request queued at once, "
        f"{args.concurrency} in flight. Measured: the confirm button's POST (address proven, place claimed, booking "
        "and confirmation written, send enqueued). Baseline: GET /healthz of the same served hub, same client, "
        "same count, same concurrency, just before.",
    )
    run(args.backend, args.citizens, args.sessions, args.concurrency)


if __name__ == "__main__":
    main()
