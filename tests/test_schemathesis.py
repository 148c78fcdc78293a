"""Schemathesis against the published OpenAPI schema, in process, on every backend.

Every operation gets schema-valid and schema-breaking requests (positive and
negative generation, every Schemathesis phase that needs no live server) and
every built-in check: no 5xx, every status code and content type documented,
every body and header as the schema says, invalid input refused. Writes carry
an admin key so they reach validation and the database, not just the 401.

The run is bounded (examples per operation) and derandomized with a fixed
seed, so a failure here fails the same way on the next run and in CI.
bench/schemathesis_live.py runs the same checks over HTTP against a server.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import select
from sqlalchemy.orm import Session

import bench.schemathesis_hooks  # noqa: F401  (serializers for the upload media types)
from app.config import Settings
from app.imports import jobs
from app.imports.models import ImportJob
from app.main import create_app
from tests.conftest import Backend
from tests.factories import create_payer, create_plan, create_therapist, therapist_body

CONFIG = SchemathesisConfig.from_path(
    str(Path(__file__).parents[1] / "bench" / "schemathesis.toml")
)
# The schema as the app publishes it; requests go to `fuzz_app`, on the test backend.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def fuzz_app(backend: Backend, import_dir: Path) -> Iterator[FastAPI]:
    """An app of its own on the test backend, whose lifespan Schemathesis runs.

    It queues uploads in the suite's import directory and runs no worker: the
    suite app's worker, or `fuzz_directory`, runs them.
    """
    settings = Settings(
        database_url=backend.url, import_dir=import_dir, import_workers=0, access_log=False
    )
    yield create_app(settings)
    shutdown_lifespans()


@pytest.fixture
def fuzz_directory(
    backend: Backend, import_dir: Path, client: TestClient, admin: dict[str, str]
) -> Iterator[dict[str, str]]:
    """One of each record, so generated small ids reach the found paths, not only 404s.

    Yields the admin key's header. Afterwards every upload the run queued is
    imported, and none may have stopped on an internal error.
    """
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    body = therapist_body(1)
    body["practices"][0]["participations"] = [{"plan_id": plan["id"]}]
    create_therapist(client, admin, body)
    yield admin
    jobs.Worker(backend.engine, import_dir).run_pending()
    deadline = time.monotonic() + 60
    with Session(backend.engine) as session:
        while session.scalar(select(ImportJob.id).where(ImportJob.finished_at.is_(None))):
            assert time.monotonic() < deadline, "queued imports did not finish within 60 s"
            time.sleep(0.1)
            session.expire_all()
        crashed = session.scalars(
            select(ImportJob.message).where(ImportJob.message.contains("internal error"))
        ).all()
    assert not crashed, crashed


@schema.parametrize()
# The directory is seeded once per operation, not per example: writes may delete the
# seeded records part-way, which changes which status is right, never whether it is
# documented.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_holds_to_the_schema(
    case: schemathesis.Case, fuzz_app: FastAPI, fuzz_directory: dict[str, str]
) -> None:
    # The schema is loaded once, before any backend exists; each backend's app is
    # handed to the operation here, so that the checks that send requests of their
    # own (a missing key, another method) reach it in process too, never a network.
    case.operation.app = case.operation.schema.app = fuzz_app
    # A case made invalid by its headers (the required key left out) is sent as made:
    # the admin key added to it would make it a valid request, rightly accepted.
    keyless = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    case.call_and_validate(headers=None if keyless else fuzz_directory)
