"""Per-channel-account send rate limits: never more than N messages in any one second, as the provider sees it.

A moving window of the last sends per account, in Redis (shared by every worker) or in this
process's memory (the embedded default has one worker process). The window is a second plus
a guard: what the limiter lets through at once reaches the provider a few milliseconds
apart, and without the guard that jitter can put N+1 arrivals into one second. The `limits`
library's moving window cannot carry the guard, since Redis expiries are whole seconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Protocol

import redis

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
    def wait_for_slot(self, key: str, per_second: int) -> None:
        """Blocks until one more send under `key` keeps every second at or below `per_second`."""


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait_for_slot(self, key: str, per_second: int) -> None:
        window = 1.0 + GUARD_SECONDS
        while True:
            with self._lock:
                now = time.monotonic()
                sent = self._sent[key]
                while sent and sent[0] <= now - window:
                    sent.popleft()
                if len(sent) < per_second:
                    sent.append(now)
                    return
                wait = sent[0] + window - now
            time.sleep(max(wait, 0.001))


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)
        self._take = self._redis.register_script(_TAKE_SLOT)

    def wait_for_slot(self, key: str, per_second: int) -> None:
        while True:
            wait = float(
                self._take(keys=[f"rathaus:rate:{key}"], args=[1.0 + GUARD_SECONDS, per_second, uuid.uuid4().hex])
            )
            if wait <= 0:
                return
            time.sleep(max(wait, 0.001))


def limiter_for(url: str) -> RateLimiter:
    return RedisRateLimiter(url) if url.startswith(("redis://", "rediss://")) else MemoryRateLimiter()
