"""Nearest-duplicate lookup among 100,000 problem reports on PostgreSQL: p50/p95 beside a bare query of the same shape.

The reports are inserted set-based (INSERT … SELECT over generate_series: contacts,
conversations, reports) into a fresh, migrated PostgreSQL database: one town, its four demo
categories, places spread over the demo town's area (about 2.8 by 3.3 km), a quarter of them
resolved and some merged. Measured: `hub.problems.service.nearby_reports`, what a new report
and the staff's duplicate list call, for `--lookups` random points of the area and a random
category each, in one ORM session. The baseline is the bare query of the same shape, run in the
same run on the same points: the same bounding-box SELECT with its join, as SQL text on a plain
connection, without the ORM's objects and without the exact distance in Python. The plan
PostgreSQL chose for it is printed too.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import Session

from bench.harness import header, machine, percentile, ratio, table
from hub import db
from hub.migrate import upgrade_to_head
from hub.problems.demo import seed_problem_demo
from hub.problems.service import METRES_PER_DEGREE_LATITUDE, list_categories, nearby_reports
from hub.settings import get_settings
from hub.tenancy import service as tenancy
from tests.running_hub import start_postgres_database

# The demo town's area (hub/problems/demo.py), where the sandbox geocoder's addresses lie.
WEST, EAST, SOUTH, NORTH = 10.00, 10.04, 51.00, 51.03
WARM_UP = 50

BARE = sa.text(
    """
    SELECT problemreport.id, problemreport.lat, problemreport.lon, conversation.reference
    FROM problemreport JOIN conversation ON conversation.id = problemreport.conversation_id
    WHERE problemreport.municipality_id = :town AND problemreport.category_id = :category
      AND problemreport.merged_into_id IS NULL
      AND problemreport.lat BETWEEN :south AND :north AND problemreport.lon BETWEEN :west AND :east
      AND conversation.status != 'resolved'
    """
)


def prepare(reports: int) -> tuple[sa.Engine, int, list[int], float]:
    """A migrated database with one town, its categories and `reports` reports; returns the seconds the insert took."""
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    upgrade_to_head()
    engine = db.get_engine()
    with Session(engine) as session:
        town = tenancy.create_municipality(session, slug="bench", name="Benchstadt")
        assert town.id is not None
        account = tenancy.create_channel_account(
            session, municipality_id=town.id, kind="twilio", name="SMS",
            config={"account_sid": "AC" + "1" * 32, "phone_number": "+4930123456"}, secrets_={"auth_token": "t"},
        )  # fmt: skip
        seed_problem_demo(session, town.id)
        categories = [category.id for category in list_categories(session, municipality_id=town.id)]
        session.commit()
        town_id, account_id = town.id, account.id
    started = time.monotonic()
    with engine.begin() as connection:
        values = {"town": town_id, "account": account_id, "n": reports, "categories": categories,
                  "west": WEST, "east": EAST, "south": SOUTH, "north": NORTH}  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO contact (id, municipality_id, language, created_at) "
                "SELECT 1000000 + n, :town, 'de', now() FROM generate_series(1, :n) AS n"
            ),
            values,
        )
        connection.execute(
            sa.text(
                "INSERT INTO conversation (id, municipality_id, contact_id, channel_account_id, reference,"
                " public_token, status, created_at, last_activity_at, last_inbound_at) "
                "SELECT 1000000 + n, :town, 1000000 + n, :account, 'M-2026-' || lpad(n::text, 6, '0'),"
                " md5(n::text), CASE WHEN n % 4 = 0 THEN 'resolved' ELSE 'open' END,"
                " now() - n * interval '1 minute', now(), now() FROM generate_series(1, :n) AS n"
            ),
            values,
        )
        # A report of every 20 is a duplicate merged into the report before it.
        connection.execute(
            sa.text(
                "INSERT INTO problemreport (id, municipality_id, conversation_id, category_id, lat, lon, public,"
                " photos_released, merged_into_id, created_at) "
                "SELECT 1000000 + n, :town, 1000000 + n, (:categories)[1 + n % cardinality(:categories)],"
                " :south + random() * (:north - :south), :west + random() * (:east - :west), true, false,"
                " CASE WHEN n % 20 = 0 THEN 1000000 + n - 1 END, now() FROM generate_series(1, :n) AS n"
            ),
            values,
        )
        connection.execute(sa.text("ANALYZE contact, conversation, problemreport"))
    return engine, town_id, [category for category in categories if category is not None], time.monotonic() - started


def timed(calls: list[Callable[[], object]]) -> list[float]:
    for call in calls[:WARM_UP]:
        call()
    times = []
    for call in calls[WARM_UP:]:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--metres", type=float, default=50.0, help="The duplicate distance (default as the setting).")
    args = parser.parse_args()
    url, drop = start_postgres_database()
    os.environ["RATHAUS_DATABASE_URL"] = url
    try:
        run(args.reports, args.lookups, args.metres)
    finally:
        db.get_engine().dispose()
        drop()


def run(reports: int, lookups: int, metres: float) -> None:
    header("Nearest-duplicate lookup (PostgreSQL)", machine())
    engine, town, categories, inserted = prepare(reports)
    print(f"  {reports:,} reports inserted set-based in {inserted:.1f} s", flush=True)
    settings = get_settings()
    rng = random.Random(18)
    points = [
        (rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST), rng.choice(categories)) for _ in range(lookups + WARM_UP)
    ]
    found: list[int] = []
    with Session(engine) as session:

        def lookup(lat: float, lon: float, category: int) -> Callable[[], object]:
            def call() -> None:
                nearby = nearby_reports(session, settings=settings, municipality_id=town, category_id=category,
                                        lat=lat, lon=lon, metres=metres)  # fmt: skip
                found.append(len(nearby))
                session.expunge_all()

            return call

        hub_times = timed([lookup(*point) for point in points])
    with engine.connect() as connection:

        def bare(lat: float, lon: float, category: int) -> Callable[[], object]:
            dlat = metres / METRES_PER_DEGREE_LATITUDE
            dlon = metres / (METRES_PER_DEGREE_LATITUDE * math.cos(math.radians(lat)))
            box = {"town": town, "category": category, "south": lat - dlat, "north": lat + dlat, "west": lon - dlon,
                   "east": lon + dlon}  # fmt: skip
            return lambda: connection.execute(BARE, box).all()

        bare_times = timed([bare(*point) for point in points])
        lat, lon, category = points[0]
        plan = connection.execute(sa.text("EXPLAIN " + str(BARE)), {
            "town": town, "category": category, "south": lat - 0.0005, "north": lat + 0.0005, "west": lon - 0.0007,
            "east": lon + 0.0007}).scalars().all()  # fmt: skip
    print("\n  plan of the bare query:\n    " + "\n    ".join(plan), flush=True)
    measured = found[WARM_UP:]
    print(f"\n  duplicates found per lookup: mean {sum(measured) / len(measured):.2f}, max {max(measured)}", flush=True)
    hub_p95, bare_p95 = percentile(hub_times, 0.95), percentile(bare_times, 0.95)
    size = [f"{reports:,}", f"{lookups:,}"]
    table(
        [
            ["bare query of the same shape (baseline)", *size, f"{percentile(bare_times, 0.5):.2f}", f"{bare_p95:.2f}",
             ""],
            ["nearby_reports (ORM, exact distance)", *size, f"{percentile(hub_times, 0.5):.2f}", f"{hub_p95:.2f}",
             ratio(hub_p95, bare_p95)],
        ],
        ["lookup", "reports", "lookups", "p50 ms", "p95 ms", "p95 / bare"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
