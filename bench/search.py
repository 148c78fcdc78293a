"""Search latency: hand-written SQL vs the service in process vs HTTP through uvicorn.

    python bench/search.py --backend sqlite --practices 200000
    python bench/search.py --backend postgres --practices 1000000 \
        --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Builds the dataset on first use (bench/dataset.py), then runs each query case
`--repeat` times per layer, cases interleaved, after a warm-up, and prints one
Markdown table: p50/p95/p99 in ms and queries per second (sequential, one
client). The raw-SQL layer answers the same question (page of therapist ids
with distances, and the total) in one hand-tuned statement; it has no facets.
"""

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db import create_db_engine
from app.networks.models import Plan
from app.search.params import get_search_query
from app.search.service import search_therapists
from bench.dataset import database_url, ensure_dataset
from bench.machine import describe as describe_machine

ORIGINS = {
    "dense (Manhattan 10001)": (40.7506, -73.9971),
    "suburb (Naperville 60540)": (41.7640, -88.1530),
    "rural (Miles City 59301)": (46.4083, -105.8406),
}
FACETS = "specialty,plan_id,accepting_new_patients,language"
EARTH_RADIUS_KM = 6371.0088
RADIUS_MI = 25.0


@dataclass
class Case:
    name: str
    lat: float
    lon: float
    neurology: bool = False
    plan_and_accepting: bool = False
    facets: bool = False
    page: int = 1
    samples: dict[str, list[float]] = field(default_factory=dict)

    def params(self, plan_id: int) -> dict[str, Any]:
        params: dict[str, Any] = {"lat": self.lat, "lon": self.lon, "radius": RADIUS_MI}
        if self.neurology:
            params["specialty"] = ["neurology"]
        if self.plan_and_accepting:
            params["plan_id"] = [str(plan_id)]
            params["accepting_new_patients"] = True
        if self.facets:
            params["facets"] = [FACETS]
        return params


def build_cases() -> list[Case]:
    cases = []
    for origin, (lat, lon) in ORIGINS.items():
        cases += [
            Case(f"{origin}: no filter", lat, lon),
            Case(f"{origin}: neurology", lat, lon, neurology=True),
            Case(f"{origin}: neuro + plan + accepting", lat, lon, True, True),
            Case(f"{origin}: no filter + facets", lat, lon, facets=True),
            Case(f"{origin}: neuro + plan + accepting + facets", lat, lon, True, True, True),
            Case(f"{origin}: no filter, page 5", lat, lon, page=5),
        ]
    return cases


def raw_sql(
    dialect: str, case: Case, plan_id: int, after: tuple[float, int] | None, *, full: bool = False
) -> Any:
    """The best single statement we found for the page and the total.

    It reads the same projection the service does (spatial key order, unit
    vectors, code lists) and ranks by the squared chord, as the service does;
    the distance is the same function of it. With `full`, the same statement also
    returns the rest of the answer the API gives (facets aside): who each therapist
    is, and its qualifying practices with their sites and the plans in force."""
    radius_km = RADIUS_MI * 1.609344
    filters = []
    if case.neurology:
        filters.append("s.specialties LIKE '% 2251N0400X %'")
    if case.plan_and_accepting:
        # The stored plan list answers while no start or end date has come since it
        # was written; otherwise the participations do (see app/search/projection.py).
        filters.append(
            "s.accepting_new_patients AND CASE WHEN s.plans_as_of <= CURRENT_DATE"
            " AND (s.plans_stale_on IS NULL OR s.plans_stale_on > CURRENT_DATE)"
            f" THEN s.plan_ids LIKE '% {plan_id} %'"
            " ELSE EXISTS (SELECT 1 FROM participations pp"
            f" WHERE pp.practice_id = s.practice_id AND pp.plan_id = {plan_id}"
            " AND (pp.effective_from IS NULL OR pp.effective_from <= CURRENT_DATE)"
            " AND (pp.effective_to IS NULL OR pp.effective_to >= CURRENT_DATE)) END"
        )
    where = "".join(f" AND {f}" for f in filters)
    keyset = " WHERE (g.c2, g.tid) > (:after_c2, :after_tid)" if after else ""
    chord = "((s.x - :x) * (s.x - :x) + (s.y - :y) * (s.y - :y) + (s.z - :z) * (s.z - :z))"
    if dialect == "postgresql":
        # The GiST box test alone: the chord below is the exact test.
        source = (
            "search_practices s WHERE s.geog && _ST_Expand("
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :radius_m)"
        )
    else:
        lat_pad = math.degrees(radius_km / EARTH_RADIUS_KM)
        lon_pad = lat_pad / math.cos(math.radians(case.lat))
        source = (
            "search_practices_rtree r JOIN search_practices s ON s.id = r.id"
            f" WHERE r.max_lat >= {case.lat - lat_pad} AND r.min_lat <= {case.lat + lat_pad}"
            f" AND r.max_lon >= {case.lon - lon_pad} AND r.min_lon <= {case.lon + lon_pad}"
        )
    best = (
        f"g AS MATERIALIZED (SELECT s.therapist_id AS tid, min({chord}) AS c2 FROM {source}"
        f" AND {chord} <= :max_c2{where} GROUP BY s.therapist_id)"
    )
    page = (
        f"SELECT g.tid, g.c2, (SELECT count(*) FROM g) AS total FROM g{keyset}"
        " ORDER BY g.c2, g.tid LIMIT 20"
    )
    if not full:
        statement = text(f"WITH {best} {page}")
    else:
        in_force = " AND ".join(
            f"(pa.effective_{end} IS NULL OR pa.effective_{end} {op} CURRENT_DATE)"
            for end, op in (("from", "<="), ("to", ">="))
        )
        statement = text(
            f"WITH {best}, page AS MATERIALIZED ({page})"
            " SELECT page.tid, page.c2, page.total, t.npi, t.first_name, t.middle_name,"
            " t.last_name, t.name_suffix, t.credentials, t.gender, s.specialties,"
            " s.primary_specialty, s.certifications, s.conditions, s.services, s.languages,"
            f" s.practice_id, {chord} AS practice_c2, p.accepting_new_patients, p.telehealth,"
            " p.home_visits, l.id, l.name, l.address_line1, l.address_line2, l.city, l.state,"
            " l.zip, l.latitude, l.longitude, l.geocode_precision, l.phone, l.fax,"
            " l.facility_type, l.accessibility, l.updated_at, pl.id, pl.name, pl.plan_type,"
            " py.id, py.name, pa.network_tier, pa.effective_from, pa.effective_to,"
            " pa.verified_at"
            " FROM page JOIN therapists t ON t.id = page.tid"
            f" JOIN search_practices s ON s.therapist_id = page.tid AND {chord} <= :max_c2{where}"
            " JOIN practices p ON p.id = s.practice_id JOIN locations l ON l.id = p.location_id"
            f" LEFT JOIN participations pa ON pa.practice_id = p.id AND {in_force}"
            " LEFT JOIN plans pl ON pl.id = pa.plan_id LEFT JOIN payers py ON py.id = pl.payer_id"
            " ORDER BY page.c2, page.tid, practice_c2, s.practice_id, py.name, pl.name"
        )
    lat, lon = math.radians(case.lat), math.radians(case.lon)
    params: dict[str, Any] = {
        "lat": case.lat, "lon": case.lon, "radius_m": radius_km * 1000 * (1 + 1e-6) + 1.0,
        "x": math.cos(lat) * math.cos(lon), "y": math.cos(lat) * math.sin(lon), "z": math.sin(lat),
        "max_c2": (2 * math.sin(radius_km / EARTH_RADIUS_KM / 2)) ** 2,
    }  # fmt: skip
    if after:
        params |= {"after_c2": after[0], "after_tid": after[1]}
    return statement, params


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn on a free loopback port with `workers` processes; returns it and its URL."""
    port = free_port()
    # The load comes from one address: the per-client read limit would throttle it.
    # A line logged per request would be timed too, and flood the report.
    environment = os.environ | {
        "PTDIR_DATABASE_URL": url,
        "PTDIR_RATE_LIMIT_PER_MINUTE": "0",
        "PTDIR_ACCESS_LOG": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port",
         str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=environment | (env or {}), cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the API server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the therapist search.")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--practices", type=int, default=200_000)
    parser.add_argument("--admin-url")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    url = database_url(args.backend, args.practices, args.admin_url)
    count = ensure_dataset(url, args.practices)
    engine = create_db_engine(url)
    dialect = engine.dialect.name
    with Session(engine) as session:
        plan_id = session.scalar(select(Plan.id).where(Plan.name == "Medicare Part B")) or 1
    cases = build_cases()
    server, base = start_server(url)
    client = httpx.Client(base_url=base, timeout=30)

    def page_cursor(case: Case) -> tuple[str | None, tuple[float, int] | None]:
        """The API cursor and the raw-SQL keyset that open page `case.page`."""
        cursor, last = None, None
        for _ in range(case.page - 1):
            params = case.params(plan_id) | ({"cursor": cursor} if cursor else {})
            cursor = client.get("/v1/search/therapists", params=params).json()["next_cursor"]
            statement, raw_params = raw_sql(dialect, case, plan_id, last)
            with engine.connect() as connection:
                rows = connection.execute(statement, raw_params).all()
            last = (rows[-1].c2, rows[-1].tid) if rows else last
        return cursor, last

    cursors: dict[str, tuple[str | None, tuple[float, int] | None]] = {}

    def run_raw(case: Case, *, full: bool = False) -> None:
        statement, params = raw_sql(dialect, case, plan_id, cursors[case.name][1], full=full)
        with engine.connect() as connection:
            connection.execute(statement, params).all()

    def run_service(case: Case) -> None:
        with Session(engine) as session:
            query = get_search_query(session, **_kwargs(case.params(plan_id),
                                                        cursors[case.name][0]))  # fmt: skip
            search_therapists(session, query)

    def run_http(case: Case) -> None:
        cursor = cursors[case.name][0]
        params = case.params(plan_id) | ({"cursor": cursor} if cursor else {})
        client.get("/v1/search/therapists", params=params).raise_for_status()

    layers: dict[str, Callable[[Case], None]] = {
        "raw SQL": run_raw, "raw SQL, full answer": partial(run_raw, full=True),
        "service": run_service, "HTTP": run_http,
    }  # fmt: skip
    try:
        cursors.update({case.name: page_cursor(case) for case in cases})
        for layer, run in layers.items():
            for case in cases:
                if layer.startswith("raw SQL") and case.facets:
                    continue
                for _ in range(3):
                    run(case)  # warm-up: caches, prepared plans, connections
                case.samples[layer] = []
        for _ in range(args.repeat):
            for layer, run in layers.items():
                for case in cases:
                    if layer not in case.samples:
                        continue
                    started = time.perf_counter()
                    run(case)
                    case.samples[layer].append(time.perf_counter() - started)
    finally:
        client.close()
        server.terminate()
        server.wait(10)

    print(f"\n{dialect}, {count:,} practices, radius {RADIUS_MI:g} mi, "
          f"{args.repeat} runs per cell, sequential; {describe_machine()}\n")  # fmt: skip
    print("| case | layer | p50 ms | p95 ms | p99 ms | q/s |")
    print("|---|---|---:|---:|---:|---:|")
    for case in cases:
        for layer, samples in case.samples.items():
            mean = statistics.fmean(samples)
            print(f"| {case.name} | {layer} | {percentile(samples, 0.5):.1f} | "
                  f"{percentile(samples, 0.95):.1f} | {percentile(samples, 0.99):.1f} | "
                  f"{1 / mean:.0f} |")  # fmt: skip
    print()
    for layer in layers:
        merged = [s for case in cases for s in case.samples.get(layer, [])]
        plain = [s for case in cases if not case.facets for s in case.samples.get(layer, [])]
        print(f"all cases, {layer}: p50 {percentile(merged, 0.5):.1f} ms, "
              f"p99 {percentile(merged, 0.99):.1f} ms; without facets p50 "
              f"{percentile(plain, 0.5):.1f} ms")  # fmt: skip
    http, raw, full = (
        percentile([s for c in cases if not c.facets for s in c.samples[layer]], 0.5)
        for layer in ("HTTP", "raw SQL", "raw SQL, full answer")
    )
    print(f"plain searches, HTTP/raw SQL p50 {http / raw:.2f}, "
          f"HTTP/raw SQL full answer p50 {http / full:.2f}")  # fmt: skip
    print_ratios(cases)


def print_ratios(cases: list[Case]) -> None:
    """The ratios the targets are stated in, per origin: HTTP over raw SQL (plain
    searches), and each search with facets over the same search without them."""
    print()
    by_name = {case.name: case for case in cases}
    for origin in ORIGINS:
        plain = [c for c in cases if c.name.startswith(origin) and "raw SQL" in c.samples]
        http = statistics.median(percentile(c.samples["HTTP"], 0.5) for c in plain)
        raw = statistics.median(percentile(c.samples["raw SQL"], 0.5) for c in plain)
        full = statistics.median(percentile(c.samples["raw SQL, full answer"], 0.5) for c in plain)
        line = f"{origin}: HTTP/raw SQL p50 {http / raw:.1f}, HTTP/full answer {http / full:.1f}"
        for with_facets in (c for c in cases if c.name.startswith(origin) and c.facets):
            without = by_name[with_facets.name.removesuffix(" + facets")]
            ratio = percentile(with_facets.samples["service"], 0.5) / percentile(
                without.samples["service"], 0.5
            )
            line += f"; {with_facets.name.removeprefix(origin + ': ')} / plain {ratio:.1f}"
        print(line)


def _kwargs(params: dict[str, Any], cursor: str | None) -> dict[str, Any]:
    """HTTP query parameters → keyword arguments of the search-query dependency."""
    kwargs = dict(params)
    if cursor:
        kwargs["cursor"] = cursor
    return kwargs


if __name__ == "__main__":
    main()
