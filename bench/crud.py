"""Record write and read latency through the HTTP stack, in process.

    python bench/crud.py [--records 300] [--database-url URL]

Creates N therapists (each with a practice, a location and a participation)
on a fresh database, then reads each back by id and by NPI, and prints
p50/p95/p99 per operation. Default database: a temporary SQLite file.
This is a measurement, not a test: the machine is shared, so compare medians
from one run.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from app.migrate import prepare_database
from bench.machine import describe as describe_machine
from tests.factories import location_body, therapist_body


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return (
        f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p95 {at(0.95):7.2f} ms   "
        f"p99 {at(0.99):7.2f} ms   n={len(ordered)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"

    engine = create_db_engine(url)
    prepare_database(engine)
    with Session(engine) as session, session.begin():
        _key, plaintext = auth_service.create_key(session, role=Role.ADMIN, name="bench")
    headers = {"Authorization": f"Bearer {plaintext}"}

    timings: dict[str, list[float]] = {"create": [], "get by id": [], "get by npi": []}
    # One client address making thousands of reads: the per-client limit would throttle it.
    with TestClient(create_app(Settings(database_url=url, rate_limit_per_minute=0))) as client:
        payer = client.post("/v1/payers", json={"name": f"Bench {time.time()}"}, headers=headers)
        plan = client.post(
            f"/v1/payers/{payer.json()['id']}/plans",
            json={"name": "Bench PPO", "plan_type": "commercial"},
            headers=headers,
        ).json()
        created = []
        for n in range(args.records):
            body = therapist_body(
                npi_seed=900_000 + n,
                practices=[
                    {
                        "location": location_body(address_line1=f"{n} Bench St"),
                        "accepting_new_patients": True,
                        "participations": [{"plan_id": plan["id"]}],
                    }
                ],
            )
            start = time.perf_counter()
            response = client.post("/v1/therapists", json=body, headers=headers)
            timings["create"].append(time.perf_counter() - start)
            response.raise_for_status()
            created.append(response.json())
        for record in created:
            start = time.perf_counter()
            client.get(f"/v1/therapists/{record['id']}").raise_for_status()
            timings["get by id"].append(time.perf_counter() - start)
            start = time.perf_counter()
            client.get("/v1/therapists", params={"npi": record["npi"]}).raise_for_status()
            timings["get by npi"].append(time.perf_counter() - start)

    backend = url.split(":", 1)[0]
    print(f"backend: {backend}, records: {args.records}; {describe_machine()}")
    for name, samples in timings.items():
        print(f"{name:12} {percentiles(samples)}")
    engine.dispose()


if __name__ == "__main__":
    main()
