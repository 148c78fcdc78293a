"""Import throughput and memory, and search latency while an import runs.

    python bench/import.py --backend sqlite --records 100000 --records 1000000
    python bench/import.py --backend postgres --records 100000 --records 1000000 \
        --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Generates (once, deterministically, into bench/data/) a CMS QHP providers.json
and an NPPES-style CSV (the real 329-column header) of each size, then for
each file and size imports it into a new, empty directory in a child process
and reports records/s and the child's peak resident memory (and that of the
process the import starts to read a large upload). Finally it loads
the first QHP file, starts the API under uvicorn and measures search p50
idle and while the NPPES file of the same size is being imported.
"""

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from app.fields import npi_check_digit
from app.geocoding import all_zip_places
from bench.machine import describe as describe_machine
from bench.search import start_server

DATA_DIR = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parent.parent
NPPES_SAMPLE = REPO / "tests" / "fixtures" / "nppes" / "nppes_sample_practitioners.csv"
SEED = 20261128
PLANS = [f"12345IL{n:07d}" for n in range(1, 6)]
SPECIALTIES = [
    "Physical Therapy", "Neurology Physical Therapist", "Orthopedic Physical Therapy",
    "Geriatric Physical Therapist", "Physical Therapist", "Sports Physical Therapy",
]  # fmt: skip
STREETS = ["Main St", "Oak Ave", "Lincoln Ave", "2nd St", "Park Blvd", "Elm St", "Lake Dr"]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eva", "Femi", "Grace", "Hugo", "Iris", "Jun", "Kara"]
LAST = ["Garcia", "Nguyen", "Smith", "Okafor", "Kowalski", "Patel", "Rossi", "Kim", "Brown"]


def npi(number: int, offset: int) -> str:
    first_nine = str(offset + number)
    return first_nine + str(npi_check_digit(first_nine))


def _places(rng: random.Random) -> list[tuple[str, str, str]]:
    places = [(p.zip, p.city.title(), p.state) for p in all_zip_places() if p.standard]
    places.sort()
    rng.shuffle(places)
    return places[:20_000]


def generate_qhp(path: Path, records: int) -> None:
    rng = random.Random(SEED)
    places = _places(rng)
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        for n in range(records):
            sites = []
            for _ in range(rng.choice((1, 1, 1, 2))):
                zip_code, city, state = rng.choice(places)
                sites.append(
                    {
                        "address": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
                        "city": city,
                        "state": state,
                        "zip": zip_code,
                        "phone": f"312555{rng.randint(0, 9999):04d}",
                    }
                )
            provider = {
                "npi": npi(n, 100_000_000),
                "type": "INDIVIDUAL",
                "name": {"first": rng.choice(FIRST), "last": rng.choice(LAST)},
                "addresses": sites,
                "specialty": [rng.choice(SPECIALTIES)],
                "accepting": rng.choice(("accepting", "not accepting")),
                "gender": rng.choice(("Female", "Male")),
                "languages": ["English"],
                "last_updated_on": "2026-10-01",
                "plans": [
                    {
                        "plan_id_type": "HIOS-PLAN-ID",
                        "plan_id": plan,
                        "network_tier": "PREFERRED",
                        "years": [2026, 2027],
                    }
                    for plan in rng.sample(PLANS, rng.randint(1, 3))
                ],
            }
            out.write(("  " if n == 0 else ",\n  ") + json.dumps(provider))
        out.write("\n]\n")


def generate_nppes(path: Path, records: int) -> None:
    rng = random.Random(SEED + 1)
    places = _places(rng)
    with NPPES_SAMPLE.open(encoding="utf-8", newline="") as sample:
        header = next(csv.reader(sample))
    column = {name: index for index, name in enumerate(header)}
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        for n in range(records):
            values = [""] * len(header)
            zip_code, city, state = rng.choice(places)
            pt = rng.random() < 0.9  # the real file is mostly other professions
            for name, value in (
                ("NPI", npi(n, 200_000_000)),
                ("Entity Type Code", "1"),
                ("Provider Last Name (Legal Name)", rng.choice(LAST).upper()),
                ("Provider First Name", rng.choice(FIRST).upper()),
                ("Provider Credential Text", "PT, DPT"),
                ("Provider First Line Business Practice Location Address",
                 f"{rng.randint(1, 9999)} {rng.choice(STREETS).upper()}"),
                ("Provider Business Practice Location Address City Name", city.upper()),
                ("Provider Business Practice Location Address State Name", state),
                ("Provider Business Practice Location Address Postal Code", zip_code + "1234"),
                ("Provider Business Practice Location Address Telephone Number",
                 f"860555{rng.randint(0, 9999):04d}"),
                ("Provider Gender Code", rng.choice("MF")),
                ("Healthcare Provider Taxonomy Code_1", "225100000X" if pt else "207R00000X"),
                ("Healthcare Provider Primary Taxonomy Switch_1", "Y"),
            ):  # fmt: skip
                values[column[name]] = value
            writer.writerow(values)


def fresh_database(backend: str, name: str, admin_url: str | None) -> str:
    if backend == "sqlite":
        path = DATA_DIR / f"{name}.sqlite3"
        for leftover in DATA_DIR.glob(f"{name}.sqlite3*"):
            leftover.unlink()
        return f"sqlite:///{path}"
    if not admin_url:
        raise SystemExit("--admin-url is needed for PostgreSQL")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def child(url: str, format: str, path: Path) -> None:
    """Runs one import in this process and prints its figures as JSON."""
    from app.db import create_db_engine
    from app.imports.formats import Format
    from app.imports.roster import Mode
    from app.imports.service import ImportRequest, run_import
    from app.migrate import prepare_database
    from app.networks.models import Payer

    engine = create_db_engine(url)
    prepare_database(engine)
    payer_id = None
    if format != "nppes":
        with Session(engine) as session, session.begin():
            payer = Payer(name="Bench Health")
            session.add(payer)
            session.flush()
            payer_id = payer.id
    ready_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    request = ImportRequest(
        format=Format(format), mode=Mode.REPLACE, payer_id=payer_id, upload=path
    )
    started = time.perf_counter()
    outcome = run_import(engine, request, import_dir=DATA_DIR / "imports")
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "succeeded": outcome.succeeded,
                "message": outcome.message,
                "records": outcome.records_done,
                "seconds": seconds,
                "ready_mb": ready_kb / 1024,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                # The process that read and checked a large upload (0 when read here).
                "reader_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def run_child(url: str, format: str, path: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, format, str(path)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def search_p50(base: str, seconds: float, stop: threading.Event | None = None) -> tuple[float, int]:
    """Median latency of a mixed search loop, for `seconds` or until `stop`."""
    queries = [
        {"zip": "60614", "radius": 25},
        {"zip": "10001", "radius": 10, "specialty": "neurology"},
        {"city": "Denver", "state": "CO", "radius": 50, "accepting_new_patients": "true"},
        {"zip": "59301", "radius": 100, "facets": "specialty,plan_id"},
    ]
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            params = queries[len(samples) % len(queries)]
            started = time.perf_counter()
            response = client.get("/v1/search/therapists", params=params)
            samples.append(time.perf_counter() - started)
            response.raise_for_status()
    return statistics.median(samples) * 1000, len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark roster imports.")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--records", type=int, action="append")
    parser.add_argument("--formats", default="qhp,nppes")
    parser.add_argument("--admin-url")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    if args.generate:
        format, size, path = args.generate
        (generate_qhp if format == "qhp" else generate_nppes)(Path(path), int(size))
        return
    sizes = args.records or [100_000]
    DATA_DIR.mkdir(exist_ok=True)
    files: dict[tuple[str, int], Path] = {}
    for size in sizes:
        for format, suffix in (("qhp", "json"), ("nppes", "csv")):
            path = DATA_DIR / f"import-{format}-{size}.{suffix}"
            if not path.exists():
                started = time.perf_counter()
                # In a process of its own: Linux carries a process's peak RSS over
                # into the programs it starts, and generating loads the ZIP table,
                # which would show as the import children's "ready" and peak.
                command = [sys.executable, __file__, "--generate", format, str(size), str(path)]
                subprocess.run(command, check=True)
                took = time.perf_counter() - started
                print(f"generated {path.name} in {took:.0f} s", file=sys.stderr)
            files[(format, size)] = path

    print(f"\n### Imports, {args.backend}\n\n{describe_machine()}\n")
    print("| file | records | MB | seconds | records/s | peak RSS MB (ready) | reader peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        for format in args.formats.split(","):
            path = files[(format, size)]
            url = fresh_database(args.backend, f"ptdir_bench_import_{format}", args.admin_url)
            figures = run_child(url, format, path)
            if not figures["succeeded"]:
                raise SystemExit(f"import failed: {figures['message']}")
            records, seconds = int(figures["records"]), float(figures["seconds"])  # type: ignore[arg-type]
            print(
                f"| {format} | {records:,} | {path.stat().st_size / 1e6:,.0f} | {seconds:,.1f} "
                f"| {records / seconds:,.0f} | {figures['peak_mb']:,.0f} "
                f"({figures['ready_mb']:,.0f}) | {figures['reader_peak_mb']:,.0f} |",
                flush=True,
            )

    size = sizes[0]
    url = fresh_database(args.backend, "ptdir_bench_import_search", args.admin_url)
    run_child(url, "qhp", files[("qhp", size)])
    server, base = start_server(url)
    try:
        search_p50(base, 3)  # warm-up
        idle, idle_count = search_p50(base, 15)
        env = os.environ | {"PTDIR_DATABASE_URL": url}
        done = threading.Event()
        busy: list[tuple[float, int]] = []
        worker = threading.Thread(target=lambda: busy.append(search_p50(base, 3600, done)))
        importer = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "import", str(files[("nppes", size)]),
             "--format", "nppes"],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2)  # past start-up, into the writes
        worker.start()
        importer.wait()
        done.set()
        worker.join()
    finally:
        server.terminate()
        server.wait()
    during, during_count = busy[0]
    print(f"\n### Search while importing {size:,} NPPES rows, {args.backend}\n")
    print("| search | p50 ms | queries |")
    print("|---|---:|---:|")
    print(f"| idle | {idle:.1f} | {idle_count} |")
    print(f"| during the import | {during:.1f} | {during_count} |")
    print(f"\nratio during / idle: {during / idle:.2f}")


if __name__ == "__main__":
    main()
