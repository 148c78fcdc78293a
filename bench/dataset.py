"""Builds (once) the benchmark directories: the demo generator at scale.

    python bench/dataset.py --backend sqlite --practices 200000
    python bench/dataset.py --backend postgres --practices 1000000 \
        --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Same density model as the demo data (ZIP centroids, state populations), with
about 1.4 practices per therapist. SQLite files go to bench/data/ and PostgreSQL
databases are named ptdir_bench_<practices>; both are reused while they exist.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

import app.models  # noqa: F401
from app.db import create_db_engine
from app.demo.generator import load_demo
from app.migrate import prepare_database
from app.therapists.models import Practice

DATA_DIR = Path(__file__).resolve().parent / "data"
PRACTICES_PER_THERAPIST = 1.4
SEED = 424242


def database_url(backend: str, practices: int, admin_url: str | None) -> str:
    if backend == "sqlite":
        DATA_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{DATA_DIR / f'search-{practices}.sqlite3'}"
    if not admin_url:
        raise SystemExit("--admin-url is needed for PostgreSQL")
    name = f"ptdir_bench_{practices}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def ensure_dataset(url: str, practices: int) -> int:
    """Loads the directory unless it is already there; returns its practice count."""
    engine = create_db_engine(url)
    prepare_database(engine)
    with Session(engine) as session:
        have = session.scalar(select(func.count()).select_from(Practice)) or 0
    if have == 0:
        started = time.perf_counter()
        therapists = round(practices / PRACTICES_PER_THERAPIST)
        with Session(engine) as session, session.begin():
            summary = load_demo(session, therapists=therapists, seed=SEED)
        print(f"loaded {summary} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                # The loader wrote the search projection in batches of therapists; put
                # its rows in spatial-key order (SQLite keeps a table in key order by
                # itself), and the practices of one location on the same pages, as an
                # operator would after a bulk load (docs/search.md).
                connection.execute(text("CLUSTER search_practices USING pk_search_practices"))
                connection.execute(text("CLUSTER practices USING ix_practices_location_id"))
            connection.execute(text("ANALYZE"))
            connection.commit()
        with Session(engine) as session:
            have = session.scalar(select(func.count()).select_from(Practice)) or 0
    engine.dispose()
    return have


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a benchmark directory.")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--practices", type=int, default=200_000)
    parser.add_argument("--admin-url")
    args = parser.parse_args()
    url = database_url(args.backend, args.practices, args.admin_url)
    print(f"{ensure_dataset(url, args.practices)} practices in {url.split('@')[-1]}")


if __name__ == "__main__":
    main()
