"""Hands each test run its own numbered Redis database, so runs in parallel on one machine stay apart."""

from __future__ import annotations

import os
from collections.abc import Callable

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
