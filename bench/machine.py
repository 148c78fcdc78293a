"""How fast this machine runs Python now, printed with every benchmark's figures.

Benchmarks run on shared machines of differing speed, and a shared machine's
speed changes within the hour: a rate is only comparable with another taken at a
similar speed. The figure is the best of three runs of 10⁷ additions in a
pure-Python loop over local variables (CPU-bound and single-threaded, like the
import's writer; the same loop at a module's top level, over globals, takes
three to four times as long, so figures taken that way do not compare).
"""

import time


def loop_seconds(runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        total = 0
        for number in range(10_000_000):
            total += number
        best = min(best, time.perf_counter() - started)
    return best


def describe() -> str:
    return f"machine: 10⁷ Python additions in {loop_seconds():.2f} s (best of 3)"
