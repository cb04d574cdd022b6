"""Moving-window rate limits: sends per channel account (as the provider counts them), public forms, sign-in failures.

A moving window of the last uses per key, in Redis (shared by every process) or in this
process's memory (embedded, where one process does all sending).

A send is counted at its end, not when its slot is granted: the slot is held while the request
is in flight and then stamped with the time the provider's answer came back, which is after the
provider counted it. Counted at the grant, sends a second apart could reach the provider closer
together whenever one of them was delayed on its way (a busy machine delays them by more than
any fixed guard: measured at the sandbox, a 0.25 s guard still let 22 into one second under a cap
of 20 at a load average of 30 on 2 cores). With the end stamp, any two sends that arrive within
one second were both in the window when the later one was granted, so no second holds more than N.

Sends come in two lanes: replies, codes and warnings are `priority`, announcements are not. A
priority sender that has to wait leaves a mark under the key, and while a mark is there no
bulk sender takes a slot, so the next free slot goes to the one a citizen is waiting for.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

import redis

from hub.settings import Settings

# A send's slot counts for this long after its answer came back (a second, and a margin for the
# clocks of the machines involved).
SEND_WINDOW_SECONDS = 1.05
# A slot whose sender never reported the end (killed mid-request) is freed after this long.
SEND_HOLD_SECONDS = 60.0
# How often a sender waiting on slots that are all in flight looks again.
IN_FLIGHT_POLL_SECONDS = 0.02
# A waiting priority sender's mark lasts this long unless it looks again. It outlasts the longest
# sleep between two looks (a send window), and one that died waiting holds bulk back no longer.
PRIORITY_MARK_SECONDS = 2.0

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


# KEYS[1] the account's window, KEYS[2] its waiting priority senders; ARGV: window seconds,
# limit, a unique member, hold seconds, in-flight poll seconds, priority (1 or 0), mark seconds.
# Like _TAKE_SLOT, but the slot is scored in the future (held) until _SENT stamps its end, and a
# bulk sender (priority 0) waits while a priority sender does.
_TAKE_SEND_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local hold = tonumber(ARGV[4])
local priority = ARGV[6] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not priority and redis.call('ZCARD', KEYS[2]) > 0 then
  return tostring(ARGV[5])
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + hold) * 1000))
  if priority then
    redis.call('ZREM', KEYS[2], ARGV[3])
  end
  return 0
end
if priority then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[7]) * 1000))
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if oldest > now then
  return tostring(ARGV[5])
end
return tostring(oldest + window - now)
"""

# KEYS[1] the account's window; ARGV[1] the member. Stamps a held slot with the send's end.
_SENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 0
"""


# KEYS[1] the window; ARGV[1] window seconds. Returns {count, seconds until the oldest leaves}.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest == 0 then
  return {0, '0'}
end
return {redis.call('ZCARD', KEYS[1]), tostring(tonumber(oldest[2]) + window - now)}
"""

# KEYS[1] the window; ARGV: window seconds, a unique member. Counts one use, whatever the limit.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000))
return 0
"""


class RateLimiter(Protocol):
    def wait(self, key: str, limit: int, window_seconds: float) -> float:
        """Takes a slot under `key` and returns 0, or returns how long until one is free."""

    def take_send(self, key: str, limit: int, slot: str, *, priority: bool) -> float:
        """Holds a send slot named `slot` under `key` and returns 0, or returns how long until one may be free.

        A bulk sender (not `priority`) gets no slot while a priority sender is waiting for one.
        """

    def sent(self, key: str, slot: str) -> None:
        """The send of `slot` has ended (answered or failed): it counts from now for the window."""

    def count(self, key: str, window_seconds: float) -> tuple[int, float]:
        """How many uses `key` had in the window, and the seconds until the oldest of them leaves it."""

    def record(self, key: str, window_seconds: float) -> None:
        """Counts one use of `key` (a failure, say) without asking whether it was within a limit."""


def hold_send_slot(
    limiter: RateLimiter,
    key: str,
    per_second: int,
    *,
    priority: bool,
    before_waiting: Callable[[], None],
    give_up_after: float | None = None,
) -> str | None:
    """Blocks until one more send under `key` keeps every second at or below `per_second`; returns the slot.

    The caller must report the end of the send with `limiter.sent(key, slot)`. `before_waiting`
    runs once if a slot is not free at once. With `give_up_after`, returns None instead of
    waiting longer than that many seconds.
    """
    slot = uuid.uuid4().hex
    waited = False
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while (wait := limiter.take_send(key, per_second, slot, priority=priority)) > 0:
        if not waited:
            waited = True
            before_waiting()
        if deadline is not None and time.monotonic() + wait > deadline:
            return None
        time.sleep(max(wait, 0.001))
    return slot


def try_acquire(limiter: RateLimiter, key: str, limit: int, window_seconds: float) -> bool:
    """Takes a slot if `key` has had fewer than `limit` in the window; never waits."""
    return limiter.wait(key, limit, window_seconds) <= 0


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._taken: dict[str, deque[float]] = defaultdict(deque)
        # Send slots per key: slot -> the time it counts until (held: far ahead; sent: its end + window).
        self._sends: dict[str, dict[str, float]] = defaultdict(dict)
        # Priority senders waiting per key: slot -> the time their mark lapses.
        self._waiting: dict[str, dict[str, float]] = defaultdict(dict)
        self._lock = threading.Lock()

    def take_send(self, key: str, limit: int, slot: str, *, priority: bool) -> float:
        with self._lock:
            now = time.monotonic()
            slots, waiting = self._sends[key], self._waiting[key]
            for expired in [name for name, until in slots.items() if until <= now]:
                del slots[expired]
            for gone in [name for name, until in waiting.items() if until <= now]:
                del waiting[gone]
            if not priority and waiting:
                return IN_FLIGHT_POLL_SECONDS
            if len(slots) < limit:
                slots[slot] = now + SEND_HOLD_SECONDS
                waiting.pop(slot, None)
                return 0.0
            if priority:
                waiting[slot] = now + PRIORITY_MARK_SECONDS
            earliest = min(slots.values()) - now
            # Every slot still in flight: look again soon, rather than when the hold runs out.
            return IN_FLIGHT_POLL_SECONDS if earliest > SEND_WINDOW_SECONDS else max(earliest, 0.001)

    def sent(self, key: str, slot: str) -> None:
        with self._lock:
            slots = self._sends[key]
            if slot in slots:
                slots[slot] = time.monotonic() + SEND_WINDOW_SECONDS

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

    def count(self, key: str, window_seconds: float) -> tuple[int, float]:
        with self._lock:
            now = time.monotonic()
            taken = self._taken[key]
            while taken and taken[0] <= now - window_seconds:
                taken.popleft()
            return len(taken), (taken[0] + window_seconds - now) if taken else 0.0

    def record(self, key: str, window_seconds: float) -> None:
        with self._lock:
            self._taken[key].append(time.monotonic())


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)
        self._take = self._redis.register_script(_TAKE_SLOT)
        self._take_send = self._redis.register_script(_TAKE_SEND_SLOT)
        self._sent = self._redis.register_script(_SENT)
        self._count = self._redis.register_script(_COUNT)
        self._record = self._redis.register_script(_RECORD)

    def take_send(self, key: str, limit: int, slot: str, *, priority: bool) -> float:
        return float(
            self._take_send(
                keys=[f"rathaus:send:{key}", f"rathaus:send-waiting:{key}"],
                args=[
                    SEND_WINDOW_SECONDS, limit, slot, SEND_HOLD_SECONDS, IN_FLIGHT_POLL_SECONDS,
                    1 if priority else 0, PRIORITY_MARK_SECONDS,
                ],
            )
        )  # fmt: skip

    def sent(self, key: str, slot: str) -> None:
        self._sent(keys=[f"rathaus:send:{key}"], args=[slot])

    def wait(self, key: str, limit: int, window_seconds: float) -> float:
        return float(self._take(keys=[f"rathaus:rate:{key}"], args=[window_seconds, limit, uuid.uuid4().hex]))

    def count(self, key: str, window_seconds: float) -> tuple[int, float]:
        used, wait = self._count(keys=[f"rathaus:rate:{key}"], args=[window_seconds])
        return int(used), float(wait)

    def record(self, key: str, window_seconds: float) -> None:
        self._record(keys=[f"rathaus:rate:{key}"], args=[window_seconds, uuid.uuid4().hex])


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
