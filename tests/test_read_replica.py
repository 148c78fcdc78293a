"""Reads on a real PostgreSQL streaming replica, writes and imports on the primary.

The test builds its own pair on loopback: a primary made with initdb and a
replica made from it with pg_basebackup, streaming. Pausing the replica's
replay makes the two differ, which shows where each request was answered.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from app.migrate import prepare_database
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES
from tests.factories import therapist_body
from tests.imports.helpers import roster_csv, row

SEARCH = "/v1/search/therapists"
CHICAGO = {"zip": "60614", "radius": "10"}


@dataclass
class Pair:
    primary_url: str
    replica_url: str
    replica_dir: Path
    replica_port: int
    run_as: list[str]
    bin_dir: Path

    def replica_ctl(self, *args: str) -> None:
        ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.replica_dir), "-w", "-t", "60"]
        _run([*self.run_as, *ctl, *args])

    def start_replica(self) -> None:
        self.replica_ctl("-l", str(self.replica_dir / "log"), "start")

    def replica_sql(self, statement: str) -> object:
        engine = create_engine(self.replica_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                return connection.execute(text(statement)).scalar()
        finally:
            engine.dispose()

    def wait_until_replayed(self) -> None:
        """The replica has replayed everything the primary has written so far."""
        primary = create_engine(self.primary_url)
        with primary.connect() as connection:
            target = connection.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
        primary.dispose()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            behind = self.replica_sql(
                f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0"
            )
            if behind is False:
                return
            time.sleep(0.05)
        raise AssertionError("the replica did not catch up within 30 s")


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_bin_dir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    candidates = [Path(out.stdout.strip())] if out.returncode == 0 else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((d for d in candidates if (d / "initdb").exists()), None)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not POSTGRES_URL:
        pytest.skip("PTDIR_TEST_POSTGRES_URL is not set (the PostgreSQL tier)")
    bin_dir = _server_bin_dir()
    # The server refuses to run as root: run it as the postgres account then.
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if bin_dir is None or (run_as and shutil.which("runuser") is None):
        message = "PostgreSQL server binaries (initdb, pg_basebackup) are needed"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="ptdir-replica-"))
    if run_as:
        shutil.chown(base, "postgres", "postgres")
    primary_dir, replica_dir = base / "primary", base / "replica"
    primary_port, replica_port = _free_port(), _free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    started: list[Path] = []
    try:
        _run([*run_as, str(bin_dir / "initdb"), "-D", str(primary_dir), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        with (primary_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\nwal_level = replica\n"
                "max_wal_senders = 4\nfsync = off\nshared_buffers = 32MB\n"
            )
        with (primary_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        _run([*run_as, pg_ctl, "-D", str(primary_dir), "-l", str(base / "primary.log"),
              "-w", "start"])  # fmt: skip
        started.append(primary_dir)

        server = f"postgresql+psycopg://postgres@127.0.0.1:{primary_port}"
        admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE ptdir"))
        admin.dispose()
        primary_url = f"{server}/ptdir"
        engine = create_db_engine(primary_url)
        prepare_database(engine)
        engine.dispose()

        _run([*run_as, str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p",
              str(primary_port), "-U", "postgres", "-D", str(replica_dir), "-R",
              "-X", "stream", "--no-sync", "--checkpoint=fast"])  # fmt: skip
        with (replica_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {replica_port}\nhot_standby = on\n")
        pair = Pair(
            primary_url=primary_url,
            replica_url=make_url(primary_url).set(port=replica_port).render_as_string(False),
            replica_dir=replica_dir,
            replica_port=replica_port,
            run_as=run_as,
            bin_dir=bin_dir,
        )
        pair.start_replica()
        started.append(replica_dir)
        assert pair.replica_sql("SELECT pg_is_in_recovery()") is True
        yield pair
    finally:
        for data_dir in reversed(started):
            subprocess.run([*run_as, pg_ctl, "-D", str(data_dir), "-m", "immediate", "stop"],
                           capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def client(pair: Pair, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=pair.primary_url,
        read_database_url=pair.replica_url,
        import_dir=tmp_path,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin(pair: Pair) -> dict[str, str]:
    engine = create_db_engine(pair.primary_url)
    with Session(engine) as session, session.begin():
        _key, plaintext = auth_service.create_key(session, role=Role.ADMIN)
    engine.dispose()
    return {"Authorization": f"Bearer {plaintext}"}


def _found(client: TestClient, npi: str) -> bool:
    response = client.get(SEARCH, params=CHICAGO | {"limit": "100"})
    assert response.status_code == 200, response.text
    return npi in {item["npi"] for item in response.json()["items"]}


def _new_therapist(client: TestClient, admin: dict[str, str], seed: int) -> str:
    body = therapist_body(seed)  # practises in Lakeview, Chicago
    response = client.post("/v1/therapists", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(body["npi"])


def test_searches_read_the_replica_and_writes_and_imports_use_the_primary(
    pair: Pair, client: TestClient, admin: dict[str, str]
) -> None:
    pair.wait_until_replayed()
    pair.replica_sql("SELECT pg_wal_replay_pause()")
    try:
        npi = _new_therapist(client, admin, seed=101)  # a write: the replica would refuse it
        created = client.get("/v1/therapists", params={"npi": npi}).json()
        assert [t["npi"] for t in created["items"]] == [npi], "record reads use the primary"
        assert not _found(client, npi), "the search answered from the paused replica"

        roster = roster_csv([row(102, "lakeview")])
        job = client.post("/v1/imports", params={"format": "csv"}, content=roster,
                          headers=admin | {"Content-Type": "text/csv"}).json()  # fmt: skip
        deadline = time.monotonic() + 30
        while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(f"/v1/imports/{job['id']}", headers=admin).json()
        assert job["status"] == "succeeded", job
        assert job["counts"]["therapists_created"] == 1
        imported = row(102, "lakeview")["npi"]
        assert not _found(client, imported)
    finally:
        pair.replica_sql("SELECT pg_wal_replay_resume()")
    pair.wait_until_replayed()
    assert _found(client, npi)
    assert _found(client, imported)
    assert client.get("/v1/specialties").status_code == 200


def test_reads_fall_back_to_the_primary_while_the_replica_is_down(
    pair: Pair, client: TestClient, admin: dict[str, str]
) -> None:
    client.app.state.reads.retry_seconds = 0.2  # type: ignore[attr-defined]
    pair.replica_ctl("-m", "fast", "stop")
    try:
        npi = _new_therapist(client, admin, seed=103)
        assert _found(client, npi), "with the replica down, the primary answers"
        assert client.get("/v1/plans").status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        pair.start_replica()
    pair.wait_until_replayed()
    pair.replica_sql("SELECT pg_wal_replay_pause()")
    try:
        later = _new_therapist(client, admin, seed=104)
        time.sleep(0.3)  # past the interval the replica was skipped for
        assert not _found(client, later), "back on the (paused) replica"
    finally:
        pair.replica_sql("SELECT pg_wal_replay_resume()")
    pair.wait_until_replayed()
    assert _found(client, later)
