"""Fixed-rate load on the search API: uvicorn with several workers, on loopback.

    python bench/load.py --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \
        --practices 1000000 --workers 2 --rates 20,40,60,80,100,120 --seconds 20
    ... --during-import 1000000    # the same, while ptdir imports that many NPPES rows

Open loop: requests are sent on a fixed schedule whatever the answers do, and each
latency counts from the moment its request was due (so a stalled server shows up
as latency rather than as fewer requests). The query mix is bench/search.py's
cases without paging (dense, suburb and rural origins; with and without filters
and facets), in turn. A step holds when every answer is a 200 and p99 ≤ 100 ms.
The import (with --during-import) writes into a scratch database on the same
PostgreSQL server: it competes for the same CPU, disk and server, and leaves
the benchmark directory as it was.
"""

import argparse
import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.dataset import DATA_DIR, database_url, ensure_dataset
from bench.machine import describe as describe_machine
from bench.search import build_cases, start_server

ROOT = Path(__file__).resolve().parent.parent
P99_LIMIT_MS = 100.0


def queries(plan_id: int) -> list[dict[str, Any]]:
    return [case.params(plan_id) for case in build_cases() if case.page == 1]


async def run_step(
    base: str, rate: float, seconds: float, mix: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sends `rate` requests a second for `seconds`; returns the step's figures."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:
        # Warm every connection slot a little, then start the clock.
        await asyncio.gather(*(client.get("/healthz") for _ in range(8)))

        async def one(due: float, params: dict[str, Any]) -> None:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get("/v1/search/therapists", params=params)
                outcome = str(response.status_code)
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            latencies.append(time.monotonic() - due)
            if outcome != "200":
                errors[outcome] = errors.get(outcome, 0) + 1

        start = time.monotonic() + 0.2
        count = int(rate * seconds)
        tasks = [
            asyncio.create_task(one(start + i / rate, mix[i % len(mix)])) for i in range(count)
        ]
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    ordered = sorted(latencies)

    def pct(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000

    return {
        "rate": rate, "sent": count, "errors": errors, "achieved": count / elapsed,
        "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
        "mean": statistics.fmean(ordered) * 1000,
    }  # fmt: skip


def start_import(admin_url: str, records: int) -> subprocess.Popen[bytes]:
    """`ptdir import` of a generated NPPES file into a scratch database, in the background."""
    generator = importlib.import_module("bench.import")
    path = DATA_DIR / f"import-nppes-{records}.csv"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        generator.generate_nppes(path, records)
    url = generator.fresh_database("postgres", "ptdir_bench_load_import", admin_url)
    env = os.environ | {"PTDIR_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", str(path), "--format", "nppes"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def print_table(title: str, steps: list[dict[str, Any]]) -> None:
    print(f"\n{title}\n\n{describe_machine()}\n")
    print("| rate (req/s) | sent | achieved req/s | errors | p50 ms | p95 ms | p99 ms | holds |")
    print("|---:|---:|---:|---|---:|---:|---:|---|")
    for step in steps:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(step["errors"].items())) or "0"
        holds = "yes" if not step["errors"] and step["p99"] <= P99_LIMIT_MS else "no"
        print(f"| {step['rate']:g} | {step['sent']} | {step['achieved']:.1f} | {errors} | "
              f"{step['p50']:.1f} | {step['p95']:.1f} | {step['p99']:.1f} | {holds} |")  # fmt: skip
    held = [s["rate"] for s in steps if not s["errors"] and s["p99"] <= P99_LIMIT_MS]
    print(f"\nhighest rate held (0 errors, p99 ≤ {P99_LIMIT_MS:g} ms): "
          f"{max(held) if held else 'none'} req/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="Fixed-rate load on the search API.")
    parser.add_argument("--admin-url", required=True, help="PostgreSQL URL of a maintenance db")
    parser.add_argument("--practices", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rates", default="20,40,60,80,100,120")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--during-import",
        type=int,
        metavar="RECORDS",
        help="also run every step while an NPPES import of RECORDS rows runs",
    )
    args = parser.parse_args()

    url = database_url("postgres", args.practices, args.admin_url)
    count = ensure_dataset(url, args.practices)
    rates = [float(r) for r in args.rates.split(",")]
    server, base = start_server(url, workers=args.workers, env={"PTDIR_IMPORT_WORKERS": "0"})
    try:
        plan_ids = httpx.get(f"{base}/v1/plans").json()
        plan_id = next((p["id"] for p in plan_ids if p["name"] == "Medicare Part B"), 1)
        mix = queries(plan_id)
        idle = [asyncio.run(run_step(base, rate, args.seconds, mix)) for rate in rates]
        busy: list[dict[str, Any]] = []
        if args.during_import:
            importer = start_import(args.admin_url, args.during_import)
            try:
                time.sleep(5)  # past the import's start-up (ZIP index, first batch)
                for rate in rates:
                    if importer.poll() is not None:
                        print(f"the import ended before the {rate:g} req/s step", file=sys.stderr)
                        break
                    busy.append(asyncio.run(run_step(base, rate, args.seconds, mix)))
            finally:
                importer.terminate()
                importer.wait(30)
    finally:
        server.terminate()
        server.wait(30)

    setting = (f"PostgreSQL, {count:,} practices, uvicorn --workers {args.workers}, "
               f"{len(mix)} queries in turn, {args.seconds:g} s per step")  # fmt: skip
    print_table(f"{setting}: idle", idle)
    if busy:
        print_table(f"{setting}: during an NPPES import of {args.during_import:,} rows", busy)


if __name__ == "__main__":
    main()
