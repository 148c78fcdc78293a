"""How many reads a client has left: GCRA, kept in this process or in Redis.

GCRA (the generic cell rate algorithm) stores one number per client, the
theoretical arrival time (TAT) of its next request if it kept exactly to the
rate. A request is allowed while TAT - now stays within the burst, so a quiet
client may make `burst` requests at once and then one per interval, with no
window edges to double up at. Times are integers (nanoseconds in memory,
microseconds in Redis), so counts are exact.
"""

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    # Requests the client may still make at once after this one.
    remaining: int
    # Seconds until the client's whole burst is available again.
    reset_after: float
    # Seconds until the next request would be allowed (0 when this one was).
    retry_after: float


class Limiter(Protocol):
    async def hit(self, key: str) -> Decision | None:
        """Counts one request from `key`; None when the store cannot say (serve it)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Rate:
    per_minute: int
    burst: int

    def interval(self, ticks_per_second: int) -> int:
        """The emission interval: time between requests at the sustained rate."""
        return round(60 * ticks_per_second / self.per_minute)


class MemoryLimiter:
    """GCRA state of this process's clients, in a dict of bounded size."""

    def __init__(
        self,
        rate: Rate,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.rate = rate
        self.max_clients = max_clients
        self._clock = clock
        self._interval = rate.interval(1_000_000_000)
        self._capacity = self._interval * rate.burst
        # Client key → TAT in clock nanoseconds, in order of last request.
        self._tats: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, key: str) -> Decision:
        now = self._clock()
        tats = self._tats
        # Popped and put back, so the dict stays ordered by last request.
        tat = max(tats.pop(key, now), now)
        new_tat = tat + self._interval
        allow_at = new_tat - self._capacity
        if len(tats) >= self.max_clients:
            self._make_room(now)
        if now < allow_at:
            tats[key] = tat
            return Decision(False, 0, (tat - now) / 1e9, (allow_at - now) / 1e9)
        tats[key] = new_tat
        return Decision(True, (now - allow_at) // self._interval, (new_tat - now) / 1e9, 0.0)

    def _make_room(self, now: int) -> None:
        # A client whose TAT has passed has its whole burst back: forgetting it changes
        # nothing. If a flood of live clients leaves too little room, the longest-quiet
        # ones are forgotten too (they start again with a full burst). Freeing a tenth of
        # the room each time keeps this sweep's cost at O(1) per request on average.
        tats = self._tats
        for key in [key for key, tat in tats.items() if tat <= now]:
            del tats[key]
        excess = len(tats) - self.max_clients * 9 // 10
        for key in list(itertools.islice(tats, max(excess, 0))):
            del tats[key]

    async def aclose(self) -> None:
        """Nothing to release: the state is plain memory."""


# KEYS[1] the client's key; ARGV[1] the emission interval and ARGV[2] the burst, in µs.
# Returns {allowed, remaining, reset_after µs, retry_after µs}. Redis's own clock is the
# one clock every process shares (scripts replicate their effects, so TIME is allowed).
GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - capacity
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
"""


class RedisLimiter:
    """GCRA state in Redis, shared by every process that uses the same URL and prefix.

    If Redis cannot be reached the request is served unlimited (fail open): the
    limit protects the directory from one greedy client, and refusing everyone
    because the limiter's store is down would be a worse outage than the one it
    guards against. A warning is logged at most once a minute meanwhile, and
    Redis is not tried again for a second, so requests do not each wait for it.
    """

    timeout = 0.25
    pause_after_error = 1.0
    warning_interval = 60.0

    def __init__(self, rate: Rate, url: str, *, prefix: str) -> None:
        self.rate = rate
        self.url = url
        self.prefix = prefix
        self._args = (rate.interval(1_000_000), rate.burst)
        self._redis: Redis | None = None
        self._paused_until = 0.0
        self._next_warning = 0.0

    def _client(self) -> Redis:
        # Made on first use, inside the server's event loop, which its connections belong to.
        if self._redis is None:
            self._redis = Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._script = self._redis.register_script(GCRA_SCRIPT)
        return self._redis

    async def hit(self, key: str) -> Decision | None:
        now = time.monotonic()
        if now < self._paused_until:
            return None
        self._client()
        try:
            # EVALSHA; on NOSCRIPT (a restarted or different server) it loads the script.
            allowed, remaining, reset_us, retry_us = await self._script(
                keys=[self.prefix + key], args=self._args
            )
        except (RedisError, OSError) as error:
            self._paused_until = now + self.pause_after_error
            if now >= self._next_warning:
                self._next_warning = now + self.warning_interval
                logger.warning("rate limit store unreachable, serving reads unlimited: %s", error)
            return None
        return Decision(bool(allowed), int(remaining), reset_us / 1e6, retry_us / 1e6)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def limiter_from_settings(settings: Settings) -> Limiter | None:
    """The configured limiter, or None when reads are not limited."""
    if settings.rate_limit_per_minute == 0:
        return None
    rate = Rate(settings.rate_limit_per_minute, settings.rate_limit_burst)
    if settings.rate_limit_redis_url:
        return RedisLimiter(
            rate, settings.rate_limit_redis_url, prefix=settings.rate_limit_redis_prefix
        )
    return MemoryLimiter(rate)
