"""Test fixtures: every API test runs on SQLite and, when configured, on PostgreSQL+PostGIS.

Set PTDIR_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
to add the PostgreSQL tier; each run creates and drops its own database there.
PTDIR_TEST_REQUIRE_POSTGRES=1 (set in CI) turns a missing URL into a failure.

PTDIR_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) adds the tests of the shared
rate limit store; PTDIR_TEST_REQUIRE_REDIS=1 makes a missing URL or an unreachable
server a failure instead of a skip.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

import app.models  # noqa: F401
from app.auth import service as auth_service
from app.auth.models import Role
from app.config import Settings
from app.db import Base, create_db_engine
from app.main import create_app
from app.migrate import prepare_database

# Test clients all come from one address and many tests read in loops: a default limit
# would fail them depending on the order they run in. So every app the tests build leaves
# reads unlimited unless it asks for a limit, as tests/ratelimit does.
os.environ["PTDIR_RATE_LIMIT_PER_MINUTE"] = "0"

# Property tests: derandomized (the same examples on every run and in CI), bounded
# in count and time, and no example database on disk. HYPOTHESIS_PROFILE=explore
# runs many more examples, randomly, when hunting for bugs by hand.
settings.register_profile(
    "ptdir", derandomize=True, database=None, max_examples=50, deadline=timedelta(seconds=2)
)
settings.register_profile("explore", max_examples=2_000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ptdir"))

POSTGRES_URL = os.environ.get("PTDIR_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("PTDIR_TEST_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("PTDIR_TEST_REDIS_URL")
REQUIRE_REDIS = os.environ.get("PTDIR_TEST_REQUIRE_REDIS") == "1"
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
VOCABULARY_TABLES = {"specialties", "conditions", "services", "certifications", "languages"}
# The `issue_key` fixture: issue_key(role="admin", payer_id=None) → Authorization header.
IssueKey = Callable[..., dict[str, str]]


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "PTDIR_TEST_REQUIRE_POSTGRES=1 but PTDIR_TEST_POSTGRES_URL is not set"
        )
    if REQUIRE_REDIS and not REDIS_URL:
        raise pytest.UsageError("PTDIR_TEST_REQUIRE_REDIS=1 but PTDIR_TEST_REDIS_URL is not set")


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine


def create_postgres_database(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url`; returns its URL."""
    name = f"ptdir_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def fresh_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A factory of empty databases (no schema) for a backend; all dropped at the end."""
    created: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            path: Path = tmp_path_factory.mktemp("db") / "ptdir.sqlite3"
            return f"sqlite:///{path}"
        assert POSTGRES_URL, "PostgreSQL tier requested without PTDIR_TEST_POSTGRES_URL"
        url = create_postgres_database(POSTGRES_URL)
        created.append(url)
        return url

    yield make
    for url in created:
        drop_postgres_database(POSTGRES_URL or "", url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, fresh_database_url: Callable[[str], str]
) -> Iterator[Backend]:
    url = fresh_database_url(request.param)
    engine = create_db_engine(url)
    prepare_database(engine)
    yield Backend(name=request.param, url=url, engine=engine)
    engine.dispose()


@pytest.fixture
def own_database(backend: Backend, fresh_database_url: Callable[[str], str]) -> Iterator[Backend]:
    """A new, migrated database of the test's own on the same backend. The test app's
    in-process worker serves the shared one: it would claim jobs a test queues, or,
    every 30 s, fail one it finds running with no worker holding it."""
    url = fresh_database_url(backend.name)
    engine = create_db_engine(url)
    prepare_database(engine)
    yield Backend(name=backend.name, url=url, engine=engine)
    engine.dispose()


def _clean(engine: Engine) -> None:
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in VOCABULARY_TABLES]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture(scope="session")
def import_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the test app spools uploads (never the user's data directory)."""
    return tmp_path_factory.mktemp("imports")


@pytest.fixture(scope="session")
def _app_client(backend: Backend, import_dir: Path) -> Iterator[TestClient]:
    application = create_app(Settings(database_url=backend.url, import_dir=import_dir))
    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def client(_app_client: TestClient, backend: Backend) -> Iterator[TestClient]:
    """An API client on a clean directory (vocabularies loaded, no records, no keys)."""
    _clean(backend.engine)
    yield _app_client
    _clean(backend.engine)


@pytest.fixture
def db(backend: Backend, client: TestClient) -> Iterator[Session]:
    """A session on the same database as `client`, for arranging and checking state."""
    with Session(backend.engine) as session:
        yield session


@pytest.fixture
def issue_key(backend: Backend, client: TestClient) -> IssueKey:
    """Issues a real API key and returns the Authorization header for it."""

    def issue(role: str = "admin", payer_id: int | None = None) -> dict[str, str]:
        with Session(backend.engine) as session, session.begin():
            _key, plaintext = auth_service.create_key(session, role=Role(role), payer_id=payer_id)
        return {"Authorization": f"Bearer {plaintext}"}

    return issue


@pytest.fixture
def admin(issue_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return issue_key("admin")
