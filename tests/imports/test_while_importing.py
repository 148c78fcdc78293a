"""What an import changes for its own sake (collector, page cache) lasts only while it runs."""

import gc
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.config import Settings
from app.imports import service
from app.imports.roster import Mode, RosterImport
from app.main import create_app
from app.therapists.models import Source
from tests.conftest import Backend
from tests.factories import therapist_body
from tests.imports.helpers import import_bytes, roster_csv, row


def test_the_collector_thresholds_come_back_after_an_import(
    backend: Backend, tmp_path: Path
) -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    with service._fewer_collections():
        seen.append(gc.get_threshold())
        with service._fewer_collections():  # a second import in another thread
            seen.append(gc.get_threshold())
        seen.append(gc.get_threshold())
    assert [threshold[0] for threshold in seen] == [service._IMPORT_GC_THRESHOLD] * 3
    assert gc.get_threshold() == before
    refused = roster_csv([row(1, "loop", first_name="")])  # a refused record
    assert not import_bytes(backend.engine, tmp_path, refused, payer_id=None).succeeded
    assert gc.get_threshold() == before


@pytest.mark.parametrize("content", [roster_csv([row(1, "loop")]), b"npi,first_name\n1,2,3\n"])
def test_the_sqlite_page_cache_is_the_connections_own_again_after_an_import(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    if backend.name != "sqlite":
        pytest.skip("a SQLite setting")
    drivers: list[Any] = []
    read = service._read

    def reading(session: Session, *args: Any) -> int:
        drivers.append(session.connection().connection.dbapi_connection)
        return read(session, *args)

    monkeypatch.setattr(service, "_read", reading)
    import_bytes(backend.engine, tmp_path, content, payer_id=None)  # a good file, a broken one
    # The import's connection, back in the pool, has SQLite's default cache (2 MB) again.
    ((size,),) = drivers[0].execute("PRAGMA cache_size").fetchall()
    assert size == -2000


def test_an_import_interrupted_in_a_statement_stays_interrupted(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in a statement makes SQLAlchemy close the connection; the page cache is
    then not restored, and the KeyboardInterrupt (the CLI's exit 130) goes on."""
    if backend.name != "sqlite":
        pytest.skip("a SQLite setting")

    def interrupted(session: Session, *args: Any) -> int:
        session.connection().invalidate()  # what SQLAlchemy does to an interrupted statement
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "_read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_bytes(backend.engine, tmp_path, roster_csv([row(1, "loop")]), payer_id=None)


def test_a_sqlite_import_holds_the_write_lock_from_its_start(backend: Backend) -> None:
    """New rows take the ids after the largest in their table (bulk.insert_new): no
    other writer may come in between, so the lock is taken before anything is read."""
    if backend.name != "sqlite":
        pytest.skip("SQLite's one write lock")
    other = sqlite3.connect(backend.engine.url.database or "", timeout=0)
    try:
        for read_first in (False, True):  # also in a transaction that has only read
            with Session(backend.engine) as session:
                if read_first:
                    session.execute(text("BEGIN"))
                    session.execute(text("SELECT count(*) FROM therapists"))
                RosterImport(session, payer_id=None, mode=Mode.MERGE, source=Source.NPPES)
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                session.rollback()
            other.execute("BEGIN IMMEDIATE")  # free again once the import's transaction ends
            other.rollback()
    finally:
        other.close()


# --- API writes while an import holds what they would change ---------------------------------


def test_an_api_write_waiting_for_an_import_is_told_the_database_is_busy(
    backend: Backend, client: TestClient, admin: dict[str, str], import_dir: Path
) -> None:
    """Not "unavailable" (an outage), nor "narrow the request" (advice for a search)."""
    created = client.post("/v1/therapists", json=therapist_body(), headers=admin).json()
    change = {"first_name": "Anna"}
    if backend.name == "sqlite":
        # A running import holds SQLite's only write lock until it commits.
        other = sqlite3.connect(backend.engine.url.database or "", timeout=0)
        other.execute("BEGIN IMMEDIATE")
        try:
            response = client.patch(f"/v1/therapists/{created['id']}", json=change, headers=admin)
        finally:
            other.rollback()
            other.close()
    else:
        # An import holds the rows it has written or changed until it commits.
        settings = Settings(
            database_url=backend.url, import_dir=import_dir, database_statement_timeout_ms=300
        )
        with TestClient(create_app(settings)) as limited, backend.engine.connect() as other:
            held = text("SELECT 1 FROM therapists WHERE id = :id FOR UPDATE")
            other.execute(held, {"id": created["id"]})
            response = limited.patch(f"/v1/therapists/{created['id']}", json=change, headers=admin)
            other.rollback()
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:ptdir:problem:busy"
    assert "a roster import holds what it writes until it commits" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"
    assert client.get(f"/v1/therapists/{created['id']}").json()["first_name"] == "Ana"
