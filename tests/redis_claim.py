"""Keeps test runs in parallel on one machine apart in Redis: a numbered database of the shared server, or a server
of their own where a test restarts it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

REDIS_SERVER_URL = os.environ.get("RATHAUS_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def claim_redis_database() -> tuple[str, Callable[[], None]]:
    """Claims one of Redis's numbered databases (1-15) and empties it; the callable gives it back."""
    claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0")
    for number in range(1, 16):
        claim = f"rathaus-test-claim:{number}"
        if claims.set(claim, os.getpid(), nx=True, ex=4 * 3600):
            url = f"{REDIS_SERVER_URL}/{number}"
            redis.Redis.from_url(url).flushdb()
            return url, lambda url=url, claim=claim: _release(url, claim)
    raise RuntimeError("all Redis databases 1-15 are claimed by other test runs")


def _release(url: str, claim: str) -> None:
    redis.Redis.from_url(url).flushdb()
    redis.Redis.from_url(f"{REDIS_SERVER_URL}/0").delete(claim)


class PrivateRedis:
    """A redis-server of this test run alone, on a free port, without persistence.

    Restarting it (a crash: SIGKILL, then a fresh start on the same port) touches nothing of
    other runs on this machine, unlike a restart of the shared server.
    """

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        with (self._data_dir / "redis.log").open("ab") as log:
            self._process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self._data_dir)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def restart(self, down_seconds: float = 1.0) -> None:
        """Kills the server (everything queued in it is gone) and starts it again after `down_seconds`."""
        self.stop()
        time.sleep(down_seconds)
        self.start()
