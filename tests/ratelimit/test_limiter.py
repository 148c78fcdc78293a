"""GCRA in memory: exact counts, refill, and a bounded number of clients."""

import anyio

from app.ratelimit.limiter import Decision, MemoryLimiter, Rate
from tests.ratelimit.helpers import Clock


def hits(limiter: MemoryLimiter, key: str, n: int) -> list[Decision]:
    async def run() -> list[Decision]:
        return [await limiter.hit(key) for _ in range(n)]

    return anyio.run(run)


def allowed(limiter: MemoryLimiter, key: str, n: int) -> int:
    return sum(decision.allowed for decision in hits(limiter, key, n))


def test_a_quiet_client_gets_exactly_its_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = MemoryLimiter(Rate(per_minute=60, burst=5), clock=clock)
    assert allowed(limiter, "a", 20) == 5
    clock.advance(1)
    assert allowed(limiter, "a", 20) == 1
    clock.advance(0.999)
    assert allowed(limiter, "a", 20) == 0
    clock.advance(0.001)
    assert allowed(limiter, "a", 20) == 1


def test_the_allowance_refills_to_the_burst_and_no_further() -> None:
    clock = Clock()
    limiter = MemoryLimiter(Rate(per_minute=60, burst=5), clock=clock)
    assert allowed(limiter, "a", 5) == 5
    clock.advance(3)
    assert allowed(limiter, "a", 20) == 3
    clock.advance(3600)
    assert allowed(limiter, "a", 20) == 5


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    clock = Clock()
    limiter = MemoryLimiter(Rate(per_minute=600, burst=1), clock=clock)
    for _ in range(1000):
        assert allowed(limiter, "a", 1) == 1
        clock.advance(0.1)


def test_decisions_count_down_and_say_when_to_retry() -> None:
    clock = Clock()
    limiter = MemoryLimiter(Rate(per_minute=60, burst=3), clock=clock)
    first, second, third, refused = hits(limiter, "a", 4)
    assert (first.remaining, second.remaining, third.remaining) == (2, 1, 0)
    assert (first.reset_after, third.reset_after) == (1.0, 3.0)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == 1.0
    assert refused.reset_after == 3.0
    clock.advance(0.25)
    assert hits(limiter, "a", 1)[0].retry_after == 0.75


def test_clients_have_separate_allowances() -> None:
    limiter = MemoryLimiter(Rate(per_minute=60, burst=2), clock=Clock())
    assert allowed(limiter, "a", 5) == 2
    assert allowed(limiter, "b", 5) == 2


def test_a_flood_of_distinct_clients_keeps_memory_bounded() -> None:
    limiter = MemoryLimiter(Rate(per_minute=60, burst=5), max_clients=1000, clock=Clock())
    sizes = []

    async def flood() -> None:
        for n in range(20_000):
            await limiter.hit(f"203.0.113.{n}")
            sizes.append(len(limiter))

    anyio.run(flood)
    assert max(sizes) == 1000


def test_clients_whose_allowance_is_whole_again_are_forgotten_first() -> None:
    clock = Clock()
    limiter = MemoryLimiter(Rate(per_minute=1, burst=5), max_clients=100, clock=clock)
    assert allowed(limiter, "greedy", 10) == 5  # whole again only in five minutes
    for n in range(99):
        assert allowed(limiter, f"passing-{n}", 1) == 1  # whole again in one minute
    clock.advance(61)
    assert allowed(limiter, "newcomer", 1) == 1
    assert len(limiter) == 2
    assert allowed(limiter, "greedy", 1) == 1  # 61 s earned one request, no more
    assert allowed(limiter, "greedy", 1) == 0
