"""How fast this machine runs the kinds of work the benchmarks time, printed with
their figures.

Benchmarks run on shared machines of differing speed, and a shared machine's
speed changes within the hour: a rate is only comparable with another taken at a
similar speed. Arithmetic alone is a poor guide (on one machine a loop of
additions ran as fast as on another where imports ran 2.5 times slower), so
three figures are given, each the best of three runs:

- a pure-Python loop of 10⁷ additions over local variables;
- decoding 30,000 small JSON objects and indexing them in a dict, ten times
  (memory-bound object churn, as in parsing a roster);
- 200,000 inserts into an indexed SQLite table in memory (as in the writes).
"""

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _best_of_three(work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _additions() -> None:
    total = 0
    for number in range(10_000_000):
        total += number


def _objects(document: str) -> Callable[[], None]:
    def work() -> None:
        for _ in range(10):
            items = json.loads(document)
            {item["npi"]: item for item in items}

    return work


def _inserts(rows: list[tuple[int, str, float]]) -> Callable[[], None]:
    def work() -> None:
        connection = sqlite3.connect(":memory:")
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v REAL)")
        connection.execute("CREATE UNIQUE INDEX ix_t_k ON t (k)")
        with connection:
            connection.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        connection.close()

    return work


def describe() -> str:
    """Measured in a process of its own: the test data takes 100 MB, and Linux carries a
    process's peak RSS over into the programs it starts (the import benchmark's children)."""
    command = [sys.executable, str(Path(__file__).resolve())]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def _measure() -> str:
    rng = random.Random(1)
    document = json.dumps(
        [
            {"npi": str(n), "name": {"first": "Ana", "last": "Garcia"}, "plans": [{"id": n % 7}]}
            for n in range(30_000)
        ]
    )
    rows = [(n, f"{rng.getrandbits(64):016x}", rng.random()) for n in range(200_000)]
    loop = _best_of_three(_additions)
    objects = _best_of_three(_objects(document))
    inserts = _best_of_three(_inserts(rows))
    return (
        f"machine (best of 3): 10⁷ Python additions {loop:.2f} s, "
        f"JSON objects {objects:.2f} s, SQLite inserts {inserts:.2f} s"
    )


if __name__ == "__main__":
    print(_measure())
