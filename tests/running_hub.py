"""The real hub (`rathaus serve --demo`) as tests drive it: started per backend, with the sandbox providers.

The embedded backend is SQLite with Celery over kombu's SQLAlchemy transport; production is
this machine's PostgreSQL and Redis. Each gets a fresh database and its own ports.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import sqlalchemy as sa

from channels.sandbox.client import SandboxClient
from tests.redis_claim import PrivateRedis

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get("RATHAUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_ADMIN = "admin@musterstadt.example"
# How long a test waits for the hub's asynchronous work. A full `make test` on a loaded 2-core
# machine makes every step several times slower than on a quiet one, and a deadline sized for
# a quiet machine made the result depend on what else was running; a hub that has stopped
# working still fails, only later. Waits for more work than one step scale this deadline.
DEADLINE = 120.0
# Worker threads per worker process, as `rathaus serve` starts them: at most this many messages
# are in a provider call when one worker is killed.
IN_FLIGHT_PER_KILL = 2
# Outbound states in which the provider may not have the message yet.
UNSENT = ("queued", "sending")

T = TypeVar("T")


# Below Linux's ephemeral range (32768-60999), from which every outgoing connection of the run takes its
# local port: a port the kernel handed out as free could be taken by one before the hub binds it.
LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A loopback port nothing listens on, for a process this run starts."""
    while True:
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_for(
    check: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = DEADLINE,
    what: str = "condition",
    interval: float = 0.1,
) -> T:
    """Polls `check` until `until` holds for what it returned (by default, until that is truthy), and returns it.

    The hub's work is asynchronous, so a test waits for its result, never for a time. On timeout
    the failure names what was awaited and what `check` returned last.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = check()
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            shown = repr(seen)
            shown = shown if len(shown) <= 600 else shown[:600] + " …"
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {shown}")
        time.sleep(interval)


@dataclass
class Hub:
    """A running hub as a user sees it: the API, the sandbox, the channel accounts."""

    backend: str
    url: str
    env: dict[str, str]
    token: str
    sandbox: SandboxClient
    accounts: dict[str, dict[str, Any]]
    log_path: Path
    serve_pid: int
    redis: PrivateRedis | None = None
    api: httpx.Client = field(init=False)
    extra_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    @property
    def database_url(self) -> str:
        sqlite = Path(self.env["RATHAUS_DATA_DIR"]) / "rathaus.sqlite"
        return self.env.get("RATHAUS_DATABASE_URL") or f"sqlite:///{sqlite}"

    @cached_property
    def engine(self) -> sa.Engine:
        """The hub's database, for verdicts the API does not show; disposed when the hub stops."""
        return sa.create_engine(self.database_url)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            timeout=timeout,
        )

    def worker_pids(self) -> list[int]:
        """The worker processes `rathaus serve` started."""
        found = subprocess.run(
            ["pgrep", "-P", str(self.serve_pid), "-f", "hub.cli worker"], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]

    def kill_workers(self) -> int:
        """SIGKILLs every worker `rathaus serve` runs and starts new ones; returns how many were killed."""
        pids = self.worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.start_workers()  # as systemd or an operator would; the sweeper does the rest
        return len(pids)

    def start_workers(self) -> None:
        """Workers as `rathaus serve` runs them, as an operator would start after a crash; stopped with the hub."""
        for number, queues in enumerate(("inbound,replies", "warnings,bulk"), start=len(self.extra_workers)):
            with self.log_path.with_name(f"worker-{number}.log").open("wb") as log_file:
                self.extra_workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "hub.cli", "worker", "-Q", queues, "-c", str(IN_FLIGHT_PER_KILL)],
                        env=self.env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip

    def conversations(self, **params: Any) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/conversations", params={"per_page": 200, **params})
        response.raise_for_status()
        return list(response.json()["items"])

    def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/conversations/{conversation_id}/messages")
        response.raise_for_status()
        return list(response.json())

    def outbox(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.sandbox.outbox(**filters))

    def conversations_with(self, sender: str, **params: Any) -> list[dict[str, Any]]:
        """The conversations whose contact has the identity `sender`."""
        found = []
        for conversation in self.conversations(**params):
            contact = self.api.get(f"/api/v1/contacts/{conversation['contact']['id']}").json()
            if any(identity["address"] == sender for identity in contact["identities"]):
                found.append(conversation)
        return found

    def wait_for_conversation_with(self, sender: str, **params: Any) -> dict[str, Any]:
        """The conversation whose contact has the identity `sender`, once the pipeline made it."""
        return wait_for(lambda: next(iter(self.conversations_with(sender, **params)), None),
                        what=f"a conversation with {sender}")  # fmt: skip

    def wait_for_subscriber(self, address: str) -> int:
        """The contact id of the subscriber with the identity `address`, once the pipeline made them.

        A subscription by command opens no conversation, so a subscriber is found here, not in the inbox.
        """

        def subscriber() -> int | None:
            items = self.api.get("/api/v1/subscribers", params={"q": address}).json()["items"]
            found = [item for item in items if any(i["address"] == address for i in item["identities"])]
            return found[0]["contact_id"] if found else None

        return wait_for(subscriber, what=f"a subscriber with {address}")

    def wait_until_stored_messages_ran(self) -> None:
        """Until the pipeline has run every message the webhooks stored: the inbox then holds all it will."""
        wait_for(
            lambda: [event for event in self.inbound_events("pending") if event["event_type"] == "message"],
            until=lambda pending: not pending, what="the pipeline to run every stored message",
        )  # fmt: skip

    def inbound_events(self, state: str) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/inbound-events", params={"state": state, "limit": 500})
        response.raise_for_status()
        return list(response.json())

    def wait_for_replies_sent(self, conversation_id: int) -> list[dict[str, Any]]:
        """The conversation's messages once none that goes out is still queued or sending: the
        provider then has every message it will get."""
        return wait_for(
            lambda: self.messages(conversation_id),
            until=lambda messages: all(m["status"] not in UNSENT for m in messages if m["direction"] == "outbound"),
            what=f"the replies in conversation {conversation_id} to be sent",
        )  # fmt: skip


def without_quiet_hours(database_url: str) -> None:
    """Lets announcements go at any hour in the demo towns: otherwise, from 21:00 Berlin time, every
    announcement would wait for the morning, and a test or benchmark run in the evening would fail."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(sa.text("SELECT id, preferences FROM municipality")).all()
            for town_id, preferences in rows:
                values = json.loads(preferences) if isinstance(preferences, str) else dict(preferences or {})
                values["quiet_hours"] = {"start": "00:00", "end": "00:00"}
                connection.execute(
                    sa.text("UPDATE municipality SET preferences = :preferences WHERE id = :id"),
                    {"preferences": json.dumps(values), "id": town_id},
                )
    finally:
        engine.dispose()


def start_postgres_database() -> tuple[str, Callable[[], None]]:
    name = f"rathaus_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", drop


@contextmanager
def running_hub(backend: str, data_dir: Path, **settings: str) -> Iterator[Hub]:
    """`rathaus serve --demo` on a fresh database of `backend` (embedded or production), stopped on exit.

    `settings` are extra RATHAUS_ variables, e.g. a shorter sweep interval.
    """
    port, smtp_port, sandbox_port, sandbox_smtp_port = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "RATHAUS_DATA_DIR": str(data_dir),
        "RATHAUS_PORT": str(port),
        "RATHAUS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RATHAUS_SMTP_PORT": str(smtp_port),
        "RATHAUS_SANDBOX_PORT": str(sandbox_port),
        "RATHAUS_SANDBOX_SMTP_PORT": str(sandbox_smtp_port),
        "RATHAUS_RETRY_BASE_SECONDS": "0.2",
        "RATHAUS_STALE_AFTER_SECONDS": "3",
        "RATHAUS_SWEEP_INTERVAL_SECONDS": "1",
        "RATHAUS_IMAP_POLL_SECONDS": "1",
        **settings,
    }
    cleanups: list[Callable[[], None]] = []
    private_redis = None
    if backend == "production":
        database_url, drop = start_postgres_database()
        cleanups.append(drop)
        # A Redis of this run's own: the fault tests restart it, which must not hit other runs.
        private_redis = PrivateRedis(free_port(), data_dir / "redis")
        private_redis.start()
        cleanups.append(private_redis.stop)
        env.update(RATHAUS_DATABASE_URL=database_url, RATHAUS_BROKER_URL=private_redis.url)

    log_path = data_dir / "serve.log"
    extra_workers: list[subprocess.Popen[bytes]] = []
    started: Hub | None = None
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # the README's first command, minus the install
            [sys.executable, "-m", "hub.cli", "serve", "--demo"],
            env=env,
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/readyz"), what="the hub to be ready")
        started = Hub(
            backend=backend,
            url=url,
            env=env,
            token=create_token(env),
            sandbox=SandboxClient(f"http://127.0.0.1:{sandbox_port}"),
            accounts=channel_accounts(env),
            log_path=log_path,
            serve_pid=process.pid,
            redis=private_redis,
        )
        without_quiet_hours(started.database_url)
        extra_workers = started.extra_workers
        yield started
    except BaseException:
        sys.stderr.write(log_path.read_text(errors="replace")[-6000:])
        raise
    finally:
        if started is not None:
            started.engine.dispose()  # made without connecting if no test asked for it
        for worker in extra_workers:
            worker.terminate()
            worker.wait(timeout=30)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        for cleanup in cleanups:
            cleanup()


def create_token(env: dict[str, str]) -> str:
    """An API token for the demo's admin, as `rathaus token create` prints it."""
    created = subprocess.run(
        [sys.executable, "-m", "hub.cli", "token", "create", "--email", DEMO_ADMIN, "--name", "tests"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return created.stdout.strip()


def channel_accounts(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The channel accounts by kind, with their webhook URLs and secrets."""
    listed = subprocess.run(
        [sys.executable, "-m", "hub.cli", "channel", "list", "--json", "--show-secrets"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return {item["kind"]: item for item in json.loads(listed.stdout)}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
