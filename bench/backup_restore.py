"""Backup and restore of a large hub: `rathaus backup` and `rathaus restore` of 100,000 messages with attachments.

A fresh database per backend is migrated and bulk-loaded (contacts, conversations, messages and one
attachment of 50 KB in every 100 messages; not through the API). Then `rathaus backup` into an
archive and `rathaus restore` into a second, empty database, each timed as the command line runs
it. The baseline is the bare tool on the same database in the same run: `pg_dump --format=custom`
and `pg_restore`, or SQLite's backup API from Python, without the manifest's row counts, the
archive and the check. Each command's start (importing the hub) is measured too, as `rathaus --help`,
since on a small database it is most of the time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import backends_of, common_arguments, header, machine, ratio, table
from tests.running_hub import REPO, start_postgres_database

ME = [sys.executable, "-m", "hub.cli"]
PER_CONVERSATION = 10
ATTACHMENT_EVERY = 100
ATTACHMENT_BYTES = 50_000


def rathaus(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    subprocess.run([*ME, *args], env=env, cwd=REPO, check=True, capture_output=True)
    return time.monotonic() - started


def timed(command: Callable[[], Any]) -> float:
    started = time.monotonic()
    command()
    return time.monotonic() - started


def rows(messages: int) -> dict[str, list[tuple[Any, ...]]]:
    """A town's rows: one contact and conversation per PER_CONVERSATION messages, some with an attachment."""
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    conversations = messages // PER_CONVERSATION
    made: dict[str, list[tuple[Any, ...]]] = {
        "contact": [(n, 1, f"Bürgerin {n}", "de", start) for n in range(1, conversations + 1)],
        "conversation": [
            (n, 1, n, 1, f"B-2025-{n:06d}", f"bench{n:027d}", "open", start, start) for n in range(1, conversations + 1)
        ],
        "message": [],
        "attachment": [],
    }
    for n in range(1, messages + 1):
        at = start + timedelta(seconds=n * 30)
        body = f"Nachricht {n}: die Laterne in der Hauptstraße {rng.randint(1, 200)} ist dunkel."
        made["message"].append((n, 1, (n - 1) // PER_CONVERSATION + 1, 1, "inbound", "text", f"SM{n:032d}", body,
                                False, "[]", "[]", 0, at))  # fmt: skip
        if n % ATTACHMENT_EVERY == 0:
            made["attachment"].append((n, 1, n, f"foto-{n}.jpg", "image/jpeg", ATTACHMENT_BYTES,
                                       rng.randbytes(ATTACHMENT_BYTES)))  # fmt: skip
    return made


COLUMNS = {
    "contact": "id, municipality_id, display_name, language, created_at",
    "conversation": "id, municipality_id, contact_id, channel_account_id, reference, public_token, status, "
    "created_at, last_activity_at",
    "message": "id, municipality_id, conversation_id, channel_account_id, direction, kind, provider_id, body, "
    "automated, email_references, choices, attempts, created_at",
    "attachment": "id, municipality_id, message_id, filename, content_type, size, data",
}
TOWN = (
    "INSERT INTO municipality (id, slug, name, default_region, language, timezone, reference_prefix, created_at, "
    "preferences) VALUES (1, 'gross', 'Stadt Groß', 'DE', 'de', 'Europe/Berlin', 'B', '2025-01-01 00:00:00', '{}')",
    "INSERT INTO channelaccount (id, municipality_id, kind, name, address, config, secrets, active, created_at) "
    "VALUES (1, 1, 'twilio', 'SMS', '+4930123456', '{}', '{}', TRUE, '2025-01-01 00:00:00')",
)


def load(env: dict[str, str], backend: str, messages: int) -> None:
    made = rows(messages)
    if backend == "production":
        with psycopg.connect(env["RATHAUS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")) as db:
            for statement in TOWN:
                db.execute(statement)
            with db.cursor() as cursor:
                for name, values in made.items():
                    with cursor.copy(f"COPY {name} ({COLUMNS[name]}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
            db.execute("ANALYZE")
        return
    with closing(sqlite3.connect(Path(env["RATHAUS_DATA_DIR"]) / "rathaus.sqlite")) as db:
        for statement in TOWN:
            db.execute(statement)
        for name, values in made.items():
            converted = [tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in row) for row in values]
            marks = ", ".join("?" for _ in converted[0])
            db.executemany(f"INSERT INTO {name} ({COLUMNS[name]}) VALUES ({marks})", converted)  # noqa: S608
        db.commit()


def fresh(backend: str, folder: Path, cleanups: list[Callable[[], None]]) -> dict[str, str]:
    folder.mkdir()
    env = {**os.environ, "RATHAUS_DATA_DIR": str(folder), "RATHAUS_LOG_LEVEL": "WARNING"}
    env.pop("RATHAUS_DATABASE_URL", None)
    if backend == "production":
        env["RATHAUS_DATABASE_URL"], drop = start_postgres_database()
        cleanups.append(drop)
    return env


def libpq(env: dict[str, str]) -> str:
    return env["RATHAUS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def measure(backend: str, messages: int) -> list[Any]:
    work = Path(tempfile.mkdtemp(prefix="rathaus-bench-backup-"))
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(work, ignore_errors=True)]
    try:
        source = fresh(backend, work / "source", cleanups)
        rathaus(source, "migrate")
        load(source, backend, messages)
        archive = work / "sicherung.tar"
        backup_s = rathaus(source, "backup", str(archive))
        restore_s = rathaus(fresh(backend, work / "target", cleanups), "restore", str(archive))
        bare = work / "bare"
        baseline_target = fresh(backend, work / "baseline", cleanups)
        if backend == "production":
            bare_backup = timed(
                lambda: subprocess.run(
                    [
                        "pg_dump",
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--file={bare}",
                        f"--dbname={libpq(source)}",
                    ],
                    check=True,
                )
            )
            bare_restore = timed(lambda: subprocess.run(["pg_restore", "--no-owner", "--no-privileges",
                                                         "--single-transaction", f"--dbname={libpq(baseline_target)}",
                                                         str(bare)], check=True))  # fmt: skip
        else:

            def copy(from_: Path, to: Path) -> None:
                with closing(sqlite3.connect(from_)) as a, closing(sqlite3.connect(to)) as b:
                    a.backup(b)

            sqlite_file = Path(source["RATHAUS_DATA_DIR"]) / "rathaus.sqlite"
            bare_backup = timed(lambda: copy(sqlite_file, bare))
            bare_restore = timed(lambda: copy(bare, Path(baseline_target["RATHAUS_DATA_DIR"]) / "rathaus.sqlite"))
        size = archive.stat().st_size / 1024 / 1024
        start_s = rathaus(source, "--help")
        return [backend, f"{messages:,}", f"{size:.0f} MiB", f"{start_s:.1f}", f"{backup_s:.1f}", f"{bare_backup:.1f}",
                ratio(backup_s, bare_backup), f"{restore_s:.1f}", f"{bare_restore:.1f}",
                ratio(restore_s, bare_restore)]  # fmt: skip
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    common_arguments(parser)
    args = parser.parse_args()
    header("Backup and restore", f"{machine()}; {args.messages:,} messages, one 50 KB attachment in every 100")
    measured = [measure(backend, args.messages) for backend in backends_of(args.backend)]
    columns = ["backend", "messages", "archive", "CLI start s", "backup s", "bare tool s", "backup / bare",
               "restore s", "bare tool s", "restore / bare"]  # fmt: skip
    table(measured, columns)


if __name__ == "__main__":
    main()
