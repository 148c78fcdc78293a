"""Reads on a real PostgreSQL streaming replica, writes and imports on the primary.

The test builds its own pair on loopback: a primary made with initdb and a
replica made from it with pg_basebackup, streaming. Pausing the replica's
replay makes the two differ, which shows where each request was answered.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from tests.factories import therapist_body
from tests.imports.helpers import roster_csv, row
from tests.pg_cluster import (
    Cluster,
    migrated_database,
    new_primary,
    new_replica,
    server_tools,
    workspace,
)

SEARCH = "/v1/search/therapists"
CHICAGO = {"zip": "60614", "radius": "10"}


@dataclass
class Pair:
    primary: Cluster
    replica: Cluster
    database: str = "ptdir"

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def replica_url(self) -> str:
        return self.replica.url(self.database)

    def wait_until_replayed(self) -> None:
        """The replica has replayed everything the primary has written so far."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            behind = self.replica.sql(
                f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0"
            )
            if behind is False:
                return
            time.sleep(0.05)
        raise AssertionError("the replica did not catch up within 30 s")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    tools = server_tools()
    with workspace(tools) as base:
        primary = new_primary(tools, base)
        migrated_database(primary)
        replica = new_replica(primary, base)
        assert replica.sql("SELECT pg_is_in_recovery()") is True
        yield Pair(primary, replica)


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
    pair.replica.sql("SELECT pg_wal_replay_pause()")
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
        pair.replica.sql("SELECT pg_wal_replay_resume()")
    pair.wait_until_replayed()
    assert _found(client, npi)
    assert _found(client, imported)
    assert client.get("/v1/specialties").status_code == 200


def test_reads_fall_back_to_the_primary_while_the_replica_is_down(
    pair: Pair, client: TestClient, admin: dict[str, str]
) -> None:
    client.app.state.reads.retry_seconds = 0.2  # type: ignore[attr-defined]
    pair.replica.stop()
    try:
        npi = _new_therapist(client, admin, seed=103)
        assert _found(client, npi), "with the replica down, the primary answers"
        assert client.get("/v1/plans").status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        pair.replica.start()
    pair.wait_until_replayed()
    pair.replica.sql("SELECT pg_wal_replay_pause()")
    try:
        later = _new_therapist(client, admin, seed=104)
        time.sleep(0.3)  # past the interval the replica was skipped for
        assert not _found(client, later), "back on the (paused) replica"
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")
    pair.wait_until_replayed()
    assert _found(client, later)
