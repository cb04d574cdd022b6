"""Shared helpers of the benchmarks: start a real hub on a fresh database, load data in bulk, time, and print."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from channels.sandbox.client import SandboxClient
from tests.redis_claim import claim_redis_database
from tests.running_hub import (
    channel_accounts,
    create_token,
    free_port,
    start_postgres_database,
    wait_for,
    without_quiet_hours,
)

REPO = Path(__file__).resolve().parents[1]
ME = [sys.executable, "-m", "hub.cli"]
# Production as deployed: one worker process per queue (compose.yaml), each with the CLI's default threads.
PRODUCTION_WORKERS = ("warnings", "replies", "inbound", "bulk")
PRODUCTION_WORKER_THREADS = 4
# `rathaus serve` runs broadcasts in its "warnings,bulk" worker with two threads.
EMBEDDED_WORKER_THREADS = 2
NO_RATE_CAP = 1_000_000
TEXT = "Die Biotonne wird am Samstag geleert. Ihre Stadtverwaltung Musterstadt."


@dataclass
class Hub:
    """A running hub: its API, its sandbox, its database, and the processes to watch."""

    backend: str
    url: str
    env: dict[str, str]
    database_url: str
    sandbox: SandboxClient
    sandbox_url: str
    token: str = ""
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_urls: list[str] = field(default_factory=list)
    _api: httpx.Client | None = None

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            self._api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120)
        return self._api

    @property
    def bulk_threads(self) -> int:
        return PRODUCTION_WORKER_THREADS if self.backend == "production" else EMBEDDED_WORKER_THREADS

    def cli(self, *args: str) -> str:
        done = subprocess.run([*ME, *args], env=self.env, cwd=REPO, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"rathaus {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.database_url)

    def worker_pids(self) -> list[int]:
        """Every `rathaus worker` process of this hub (the children of `serve` when embedded)."""
        pids = []
        for process in self.processes.values():
            found = subprocess.run(
                ["pgrep", "-P", str(process.pid), "-f", "hub.cli worker"], capture_output=True, text=True, check=False
            )
            pids += [int(pid) for pid in found.stdout.split()]
        pids += [p.pid for name, p in self.processes.items() if name.startswith("worker")]
        return pids

    def bulk_worker_pid(self) -> int | None:
        """The process that sends announcements: the bulk worker, or serve's "warnings,bulk" worker."""
        if "worker-bulk" in self.processes:
            return self.processes["worker-bulk"].pid
        for pid in self.worker_pids():
            with suppress(OSError):
                if "warnings,bulk" in Path(f"/proc/{pid}/cmdline").read_text():
                    return pid
        return None


def _start(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    with (log_dir / f"{name}.log").open("wb") as log_file:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_hub(backend: str, *, extra_env: dict[str, str] | None = None, replicas: int = 1) -> Iterator[Hub]:
    """A hub on a fresh database, stopped and its database dropped afterwards.

    embedded: `rathaus serve --demo` (SQLite, Celery over kombu's SQLAlchemy transport, the
    sandbox in the same process). production: this machine's PostgreSQL and Redis, the sandbox
    as its own process (`rathaus sandbox serve`), `rathaus api`, one `rathaus worker -Q <queue>`
    per queue and `rathaus beat`, as deploy/compose.yaml runs them; with `replicas`, that many
    `rathaus api` processes (each on its own port, listed in `Hub.api_urls`) and workers per queue.
    """
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the database is dropped.
    signal.signal(signal.SIGTERM, _exit_once)
    data_dir = Path(tempfile.mkdtemp(prefix=f"rathaus-bench-{backend}-"))
    port, smtp_port, sandbox_port, sandbox_smtp_port = (free_port() for _ in range(4))
    api_ports = [port, *(free_port() for _ in range(replicas - 1))]
    env = {
        **os.environ,
        "RATHAUS_DATA_DIR": str(data_dir),
        "RATHAUS_PORT": str(port),
        "RATHAUS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RATHAUS_SMTP_PORT": str(smtp_port),
        "RATHAUS_SANDBOX_PORT": str(sandbox_port),
        "RATHAUS_SANDBOX_SMTP_PORT": str(sandbox_smtp_port),
        "RATHAUS_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(data_dir, ignore_errors=True)]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    try:
        if backend == "production":
            env.update(claim_production_services(cleanups))
            database_url = env["RATHAUS_DATABASE_URL"]
            processes["sandbox"] = _start(
                "sandbox",
                [*ME, "sandbox", "serve", "--port", str(sandbox_port), "--smtp-port", str(sandbox_smtp_port)],
                env,
                data_dir,
            )
            wait_for(lambda: _answers(f"{sandbox_url}/sandbox/healthz"), timeout=60, what="the sandbox")
            subprocess.run([*ME, "migrate"], env=env, cwd=REPO, check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "bench.harness", "seed"], env=env, cwd=REPO, check=True)
            processes["api"] = _start("api", [*ME, "api"], env, data_dir)
            for replica in range(1, replicas):
                replica_env = {**env, "RATHAUS_PORT": str(api_ports[replica])}
                processes[f"api-{replica}"] = _start(f"api-{replica}", [*ME, "api"], replica_env, data_dir)
            for queue in PRODUCTION_WORKERS:
                command = [*ME, "worker", "-Q", queue, "-c", str(PRODUCTION_WORKER_THREADS)]
                for replica in range(replicas):
                    name = f"worker-{queue}" + (f"-{replica}" if replica else "")
                    processes[name] = _start(name, command, env, data_dir)
            processes["beat"] = _start("beat", [*ME, "beat"], env, data_dir)
        else:
            database_url = f"sqlite:///{data_dir / 'rathaus.sqlite'}"
            processes["serve"] = _start("serve", [*ME, "serve", "--demo"], env, data_dir)
        cleanups.append(lambda: _stop(processes))
        hub = Hub(
            backend=backend,
            url=f"http://127.0.0.1:{port}",
            env=env,
            database_url=database_url,
            sandbox=SandboxClient(sandbox_url),
            sandbox_url=sandbox_url,
            processes=processes,
            api_urls=[f"http://127.0.0.1:{api_port}" for api_port in api_ports],
        )
        for api_url in hub.api_urls:
            wait_for(lambda api_url=api_url: _answers(f"{api_url}/readyz"), timeout=90, what="the hub to be ready")
        without_quiet_hours(database_url)
        hub.token = create_token(env)  # `rathaus token create`, `rathaus channel list --json --show-secrets`
        hub.accounts = channel_accounts(env)
        yield hub
    except BaseException:
        for log_file in sorted(data_dir.glob("*.log")):
            sys.stderr.write(f"--- {log_file.name}\n{log_file.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for cleanup in reversed(cleanups):
            with suppress(Exception):
                cleanup()


def claim_production_services(cleanups: list[Callable[[], None]]) -> dict[str, str]:
    """A fresh PostgreSQL database and a claimed Redis database, as the hub's settings; releases go to `cleanups`."""
    database_url, drop = start_postgres_database()
    cleanups.append(drop)
    broker_url, release = claim_redis_database()
    cleanups.append(release)
    return {"RATHAUS_DATABASE_URL": database_url, "RATHAUS_BROKER_URL": broker_url}


def _exit_once(*_: object) -> None:
    """A second SIGTERM (from `timeout` and the shell both, say) must not cut the cleanup short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def seed() -> None:
    """The demo town and its sandbox accounts, as `rathaus serve --demo` seeds them (production runs)."""
    from hub.db import session_scope
    from hub.demo import register_with_sandbox, seed_demo
    from hub.settings import get_settings

    settings = get_settings()
    with session_scope() as session:
        seeded = seed_demo(session, settings)
    register_with_sandbox(settings, SandboxClient(settings.sandbox_url), seeded.accounts)


# Bulk data (SQL through SQLAlchemy Core; 100,000 citizens through the API would measure the API)


def municipality_id(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT id FROM municipality ORDER BY id LIMIT 1")).scalar_one())


def set_rate(hub: Hub, kind: str, per_second: int) -> None:
    """Sets the channel account's send cap (`rate_per_second` in its config), as an administrator would."""
    set_config(hub, kind, rate_per_second=per_second)


def set_config(hub: Hub, kind: str, **values: Any) -> None:
    """Changes settings in the channel account's config, as an administrator would."""
    from hub.tenancy.models import ChannelAccount

    table = ChannelAccount.__table__  # type: ignore[attr-defined]
    with hub.engine().begin() as connection:
        account_id, config = connection.execute(
            sa.select(table.c.id, table.c.config).where(table.c.kind == kind).order_by(table.c.id)
        ).first()
        connection.execute(table.update().where(table.c.id == account_id).values(config={**config, **values}))


def address(kind: str, number: int) -> str:
    """A distinct, valid address per citizen: a German mobile number (SMS, WhatsApp) or a Telegram chat id."""
    from channels.registry import adapter_class

    return f"+49151{10_000_000 + number}" if adapter_class(kind).identity.kind == "phone" else str(500_000_000 + number)


def add_subscribers(hub: Hub, count: int, kind: str, *, start: int = 0, chunk: int = 5000) -> float:
    """`count` active subscribers reachable only on `kind`, by multi-row INSERT; returns seconds taken.

    On a channel that needs an opt-in before the hub may write unprompted (WhatsApp), each has one.
    """
    from channels.registry import adapter_class
    from hub.contacts.models import Contact, ContactIdentity
    from hub.subscribers.models import ConsentEvent, Subscription
    from hub.subscribers.opt_in import OPTED_IN

    contact, identity, subscription, consent = (
        model.__table__  # type: ignore[attr-defined]
        for model in (Contact, ContactIdentity, Subscription, ConsentEvent)
    )
    opt_in = adapter_class(kind).opt_in_required
    engine = hub.engine()
    town = municipality_id(engine)
    now = datetime.now(UTC)
    started = time.monotonic()
    with engine.begin() as connection:
        for first in range(start, start + count, chunk):
            numbers = range(first, min(first + chunk, start + count))
            ids = list(
                connection.execute(
                    contact.insert().returning(contact.c.id, sort_by_parameter_order=True),
                    [
                        {"municipality_id": town, "display_name": f"Bürger {n}", "language": "de", "created_at": now}
                        for n in numbers
                    ],
                ).scalars()
            )
            connection.execute(
                identity.insert(),
                [
                    {"municipality_id": town, "contact_id": cid, "kind": adapter_class(kind).identity.kind,
                     "address": address(kind, n), "created_at": now}
                    for cid, n in zip(ids, numbers, strict=True)
                ],
            )  # fmt: skip
            connection.execute(
                subscription.insert(),
                [
                    {"municipality_id": town, "contact_id": cid, "state": "active", "language": "de",
                     "created_at": now, "updated_at": now}
                    for cid in ids
                ],
            )  # fmt: skip
            if opt_in:
                connection.execute(
                    consent.insert(),
                    [
                        {"municipality_id": town, "contact_id": cid, "action": OPTED_IN, "channel_kind": kind,
                         "source": "form", "evidence": {"how": "bench"}, "created_at": now}
                        for cid in ids
                    ],
                )  # fmt: skip
    return time.monotonic() - started


def draft(hub: Hub, *, kind: str = "announcement", channel: str = "twilio", title: str = "Bench", **extra: Any) -> int:
    body: dict[str, Any] = {"kind": kind, "title": title, "texts": {"de": {"body": TEXT}}, "channels": [channel]}
    if kind == "warning":
        body["severity"] = "Severe"
    body.update(extra)
    response = hub.api.post("/api/v1/broadcasts", json=body)
    response.raise_for_status()
    broadcast_id = int(response.json()["id"])
    if kind != "warning":
        hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/submit").raise_for_status()
    return broadcast_id


def approve(hub: Hub, broadcast_id: int) -> float:
    """Approves through the API; returns the wall-clock time of the approval (comparable to the sandbox's)."""
    at = time.time()
    response = hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/approve")
    response.raise_for_status()
    return at


def sandbox_count(hub: Hub, kind: str) -> tuple[int, float | None, float | None]:
    """(count, first arrival, last arrival) of `kind` at the sandbox, as Unix times."""
    summary = hub.sandbox.outbox_summary().get(kind)
    if not summary:
        return 0, None, None
    return (
        int(summary["count"]),
        datetime.fromisoformat(summary["first_at"]).timestamp(),
        datetime.fromisoformat(summary["last_at"]).timestamp(),
    )


def wait_for_arrivals(hub: Hub, kind: str, total: int, *, timeout: float, progress: bool = True) -> float:
    """Blocks until the sandbox holds `total` messages of `kind`; returns the last arrival's time.

    Gives up early when nothing has arrived for a minute (a broadcast that matched nobody, say).
    """
    deadline = time.monotonic() + timeout
    shown = changed = time.monotonic()
    seen = -1
    while True:
        count, _, last = sandbox_count(hub, kind)
        if count >= total and last is not None:
            return last
        if count != seen:
            seen, changed = count, time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - changed > 60:
            raise TimeoutError(f"only {count} of {total} {kind} messages arrived")
        if progress and time.monotonic() - shown > 15:
            shown = time.monotonic()
            print(f"    … {count:,}/{total:,} {kind} at the sandbox", flush=True)
        time.sleep(0.2)


# Statistics and output


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "n/a"


def header(title: str, note: str = "") -> None:
    print(f"\n## {title}", flush=True)
    if note:
        print(note, flush=True)


def table(rows: list[Sequence[Any]], columns: Sequence[str]) -> None:
    """A Markdown table, so the output can be pasted into docs/entwicklung/benchmarks.md as it is."""
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, " | ".join("-" * w for w in widths))
    print("\n".join(f"| {line} |" for line in lines), flush=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds used so far by a process and its direct children; 0 once it is gone."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    total = 0.0
    for one in [pid, *(int(child) for child in found.stdout.split())]:
        with suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def hub_cpu_seconds(hub: Hub) -> dict[str, float]:
    """CPU seconds so far per process of the hub, and of this machine's PostgreSQL and Redis together."""
    services = subprocess.run(["pgrep", "-d", " ", "postgres|redis-server"], capture_output=True, text=True,
                              check=False).stdout.split()  # fmt: skip
    used = {name: cpu_seconds(process.pid) for name, process in hub.processes.items()}
    used["PostgreSQL and Redis"] = sum(cpu_seconds(int(pid)) for pid in services)
    return used


def peak_rss_mib(pid: int | None) -> float | None:
    """A process's peak resident set (VmHWM) so far, in MiB; None if it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in _run(["lscpu"]).splitlines() if line.startswith("Model name")), "?"
    )
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({model}), {memory_kib / 1024 / 1024:.0f} GiB RAM, Python {sys.version.split()[0]}"


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout


def common_arguments(parser: argparse.ArgumentParser, *, backends: Sequence[str] = ("production", "embedded")) -> None:
    parser.add_argument(
        "--backend",
        choices=[*backends, "both"] if len(backends) > 1 else list(backends),
        default="both" if len(backends) > 1 else backends[0],
    )


def backends_of(choice: str) -> list[str]:
    return ["production", "embedded"] if choice == "both" else [choice]


if __name__ == "__main__":
    if sys.argv[1:] == ["seed"]:
        seed()
    else:
        sys.exit("usage: python -m bench.harness seed")
