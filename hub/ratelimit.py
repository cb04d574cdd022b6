"""Moving-window rate limits: sends per channel account (as the provider counts them) and public forms.

A moving window of the last uses per key, in Redis (shared by every process) or in this
process's memory (embedded, where one process does all sending). For sends the window is a
second plus a guard: what the limiter lets through at once reaches the provider a few milliseconds
apart, and without the guard that jitter can put N+1 arrivals into one second. The `limits`
library's moving window cannot carry the guard, since Redis expiries are whole seconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from functools import lru_cache
from typing import Protocol

import redis

from hub.settings import Settings

# Sends that the limiter spaces a second apart can arrive at the provider this much closer: seen
# above 0.1 s on a loaded 2-core machine, so the margin is generous; it costs throughput (N/1.25).
GUARD_SECONDS = 0.25

# KEYS[1] the account's window; ARGV: window seconds, limit, a unique member.
# Returns 0 when a slot was taken, otherwise how long to wait (seconds, as a string).
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RateLimiter(Protocol):
    def wait(self, key: str, limit: int, window_seconds: float) -> float:
        """Takes a slot under `key` and returns 0, or returns how long until one is free."""


def wait_for_slot(limiter: RateLimiter, key: str, per_second: int) -> None:
    """Blocks until one more send under `key` keeps every second at or below `per_second`."""
    while (wait := limiter.wait(key, per_second, 1.0 + GUARD_SECONDS)) > 0:
        time.sleep(max(wait, 0.001))


def try_acquire(limiter: RateLimiter, key: str, limit: int, window_seconds: float) -> bool:
    """Takes a slot if `key` has had fewer than `limit` in the window; never waits."""
    return limiter.wait(key, limit, window_seconds) <= 0


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._taken: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, key: str, limit: int, window_seconds: float) -> float:
        with self._lock:
            now = time.monotonic()
            taken = self._taken[key]
            while taken and taken[0] <= now - window_seconds:
                taken.popleft()
            if len(taken) < limit:
                taken.append(now)
                return 0.0
            return max(taken[0] + window_seconds - now, 0.001)


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)
        self._take = self._redis.register_script(_TAKE_SLOT)

    def wait(self, key: str, limit: int, window_seconds: float) -> float:
        return float(self._take(keys=[f"rathaus:rate:{key}"], args=[window_seconds, limit, uuid.uuid4().hex]))


def limiter_url(settings: Settings) -> str:
    """Redis when the broker is Redis (shared by every process), otherwise this process's memory."""
    if settings.rate_limit_url:
        return settings.rate_limit_url
    broker = settings.effective_broker_url
    return broker if broker.startswith("redis") else "memory://"


@lru_cache
def _limiter(url: str) -> RateLimiter:
    return RedisRateLimiter(url) if url.startswith(("redis://", "rediss://")) else MemoryRateLimiter()


def shared_limiter(settings: Settings) -> RateLimiter:
    return _limiter(limiter_url(settings))
