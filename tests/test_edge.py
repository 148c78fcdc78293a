"""The HTTP edge: request ids, security headers, cross-origin reads, logs and metrics."""

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import get_read_session
from app.edge.logs import ACCESS_LOGGER, JSONFormatter
from app.imports.models import ImportJob, JobStatus
from app.main import create_app
from tests.conftest import Backend, IssueKey
from tests.factories import therapist_body
from tests.pg_cluster import table_locked

SEARCH = "/v1/search/therapists"


Logged = Callable[[], list[str]]


@pytest.fixture
def logged() -> Iterator[Logged]:
    """The service's log lines so far in the test, formatted as it writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    # The test client's own request log is not the service's.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)


AppWith = Callable[..., TestClient]


@pytest.fixture
def app_with(backend: Backend, import_dir: Path) -> Iterator[AppWith]:
    """A client factory for an application with some settings changed."""
    clients: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        settings = Settings(database_url=backend.url, import_dir=import_dir, **changes)
        test_client = TestClient(create_app(settings), raise_server_exceptions=False)
        clients.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


# --- request ids and headers -----------------------------------------------------------


def test_every_response_carries_a_request_id_and_nosniff(client: TestClient) -> None:
    responses = [
        client.get("/healthz"),
        client.get("/v1/specialties"),
        client.get(SEARCH, params={"zip": "00000"}),  # 422
        client.get("/v1/therapists/999999"),  # 404
        client.post("/v1/payers", json={"name": "X"}),  # 401
        client.get("/no/such/route"),
        client.get("/metrics"),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(rid and len(rid) == 32 for rid in ids), ids
    assert len(set(ids)) == len(ids), "each request gets its own id"
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/v1/specialties",
        SEARCH + "?zip=60614&specialty=neurology",
        SEARCH + "?zip=00000",  # 422
        "/v1/therapists/999999",  # 404
        "/openapi.json",
    ],
)
def test_head_is_answered_as_get_without_the_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert got.content, "GET has a body to leave out"
    for name in ("content-type", "content-length", "x-content-type-options"):
        assert head.headers[name] == got.headers[name], name
    assert head.headers["x-request-id"] != got.headers["x-request-id"]


def test_head_is_counted_as_head_and_refused_where_get_is(client: TestClient) -> None:
    assert client.head("/v1/payers/1/imports").status_code == 405  # POST only
    label = '{method="HEAD",route="/v1/specialties",status="200"}'

    def heads() -> float:
        return _samples(client.get("/metrics").text, "ptdir_http_requests_total").get(label, 0)

    before = heads()
    client.head("/v1/specialties")
    assert heads() == before + 1


def test_a_well_formed_incoming_request_id_is_kept_and_others_replaced(
    client: TestClient,
) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42:x_1"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42:x_1"
    for hostile in ("a" * 65, "two words", "line\tbreak", ""):
        response = client.get("/healthz", headers={"X-Request-ID": hostile})
        assert response.headers["x-request-id"] != hostile
        assert len(response.headers["x-request-id"]) == 32


def test_an_unexpected_error_is_a_500_problem_with_its_request_id_logged(
    backend: Backend, import_dir: Path, logged: Logged
) -> None:
    application = create_app(Settings(database_url=backend.url, import_dir=import_dir))

    def broken_session() -> Iterator[None]:
        raise RuntimeError("secret internal detail")
        yield None  # pragma: no cover

    application.dependency_overrides[get_read_session] = broken_session
    with TestClient(application, raise_server_exceptions=False) as test_client:
        response = test_client.get(SEARCH, params={"zip": "60614"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:ptdir:problem:internal"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    rid = response.headers["x-request-id"]
    errors = [json.loads(line) for line in logged() if '"unhandled error"' in line]
    assert errors, "the error is logged"
    assert errors[0]["request_id"] == rid
    assert "secret internal detail" in errors[0]["exception"]


# --- cross-origin reads ---------------------------------------------------------------


def test_public_reads_are_readable_from_any_origin_by_default(client: TestClient) -> None:
    origin = {"Origin": "https://find-a-pt.example"}
    for path in ("/v1/specialties", f"{SEARCH}?zip=60614", "/v1/therapists/1"):
        response = client.get(path, headers=origin)
        assert response.headers["access-control-allow-origin"] == "*", path
        assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    preflight = client.options(SEARCH, headers=origin | {"Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"
    assert "access-control-allow-credentials" not in preflight.headers


def test_writes_and_private_reads_are_never_cross_origin(
    client: TestClient, admin: dict[str, str]
) -> None:
    origin = {"Origin": "https://find-a-pt.example"}
    write = client.post("/v1/therapists", json=therapist_body(), headers=origin | admin)
    assert write.status_code == 201
    jobs = client.get("/v1/imports", headers=origin | admin)
    assert jobs.status_code == 200
    for response in (write, jobs):
        assert "access-control-allow-origin" not in response.headers
    for method in ("POST", "PATCH", "DELETE"):
        preflight = client.options(
            "/v1/therapists/1", headers=origin | {"Access-Control-Request-Method": method}
        )
        assert "access-control-allow-origin" not in preflight.headers, method
        assert "access-control-allow-methods" not in preflight.headers, method
    private = client.options(
        "/v1/imports", headers=origin | {"Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in private.headers


def test_configured_origins_are_echoed_and_others_refused(app_with: AppWith) -> None:
    listed = app_with(cors_origins="https://a.example, http://localhost:5173")
    allowed = listed.get("/v1/specialties", headers={"Origin": "http://localhost:5173"})
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert allowed.headers["vary"] == "Origin"
    other = listed.get("/v1/specialties", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    closed = app_with(cors_origins="")
    none = closed.get("/v1/specialties", headers={"Origin": "https://a.example"})
    assert "access-control-allow-origin" not in none.headers


def test_cors_origins_must_be_origins() -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(cors_origins="https://a.example/path")


# --- logs --------------------------------------------------------------------------------


def test_access_log_lines_are_json_with_route_status_and_request_id(
    client: TestClient, logged: Logged
) -> None:
    response = client.get("/v1/therapists/424242")
    records = [json.loads(line) for line in logged() if ACCESS_LOGGER in line]
    assert len(records) == 1
    record = records[0]
    assert record["route"] == "/v1/therapists/{therapist_id}"
    assert record["status"] == 404
    assert record["method"] == "GET"
    assert record["request_id"] == response.headers["x-request-id"]
    assert record["duration_ms"] >= 0


def test_search_origins_are_coarsened_and_filter_values_left_out_of_logs(
    client: TestClient, logged: Logged
) -> None:
    client.get(SEARCH, params={"lat": "41.76402", "lon": "-88.15311", "language": "es"})
    client.get(SEARCH, params={"zip": "60614", "specialty": "neurology"})
    client.get(SEARCH, params={"bbox": "-88.1234,41.5678,-87.9876,41.9999"})
    text_logged = "\n".join(logged())
    for secret in ("41.76402", "-88.15311", "60614", "neurology", "41.5678", "-88.1234"):
        assert secret not in text_logged, secret
    searches = [json.loads(line)["search"] for line in logged() if '"search"' in line]
    assert searches == [
        {"origin": "41.8,-88.2", "parameters": ["language"]},
        {"origin": "zip 606xx", "parameters": ["specialty"]},
        {"origin": "bbox -88.1,41.6,-88.0,42.0", "parameters": []},
    ]


def test_api_keys_never_reach_logs_or_error_bodies(
    client: TestClient, issue_key: IssueKey, logged: Logged
) -> None:
    good = issue_key("admin")
    token = good["Authorization"].removeprefix("Bearer ")
    forged = "ptd_" + "x" * 40
    responses = [
        client.post("/v1/therapists", json=therapist_body(), headers=good),
        client.post("/v1/therapists", json={"npi": "bad"}, headers=good),  # 422
        client.post(
            "/v1/payers", json={"name": "Y"}, headers={"Authorization": "Bearer " + forged}
        ),
        client.post("/v1/payers", json={"name": "Y"}, headers={"Authorization": forged}),
    ]
    assert [r.status_code for r in responses] == [201, 422, 401, 401]
    for secret in (token, forged):
        assert all(secret not in r.text for r in responses)
        assert all(secret not in line for line in logged())
    assert sum(ACCESS_LOGGER in line for line in logged()) == len(responses)


# --- metrics -----------------------------------------------------------------------------


def _samples(exposition: str, name: str) -> dict[str, float]:
    found = {}
    for line in exposition.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels[len(name) :]] = float(value)
    return found


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    for therapist_id in (1, 2, 3):
        client.get(f"/v1/therapists/{therapist_id}")
    client.get(SEARCH, params={"zip": "00000"})
    exposition = client.get("/metrics")
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain")
    counts = _samples(exposition.text, "ptdir_http_requests_total")
    assert counts['{method="GET",route="/v1/therapists/{therapist_id}",status="404"}'] >= 3
    assert counts['{method="GET",route="/v1/search/therapists",status="422"}'] >= 1
    assert not any("/v1/therapists/1" in labels for labels in counts), "ids are not labels"
    latency = _samples(exposition.text, "ptdir_http_request_duration_seconds_count")
    assert latency['{method="GET",route="/v1/therapists/{therapist_id}"}'] >= 3


def test_metrics_report_import_jobs_by_status(client: TestClient, db: Session) -> None:
    # Finished jobs only: the application's worker would pick up a queued one.
    for status in (JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, JobStatus.FAILED):
        db.add(ImportJob(status=status, format="csv", mode="merge"))
    db.commit()
    jobs = _samples(client.get("/metrics").text, "ptdir_import_jobs")
    assert jobs == {'{status="queued"}': 0, '{status="running"}': 0,
                    '{status="succeeded"}': 2, '{status="failed"}': 1}  # fmt: skip


# --- the per-statement time limit (PostgreSQL) ----------------------------------------------


def test_a_statement_over_the_time_limit_is_a_quick_503(
    app_with: AppWith, backend: Backend
) -> None:
    if backend.name != "postgres":
        pytest.skip("statement_timeout is PostgreSQL's; SQLite has no per-statement limit")
    limited = app_with(database_statement_timeout_ms=300)
    assert limited.get(SEARCH, params={"zip": "60614"}).status_code == 200
    with table_locked(backend.url, "search_practices"):
        started = time.monotonic()
        response = limited.get(SEARCH, params={"zip": "60614"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["type"] == "urn:ptdir:problem:query-timeout"
    assert response.headers["retry-after"] == "1"
    assert elapsed < 3, elapsed
    assert limited.get(SEARCH, params={"zip": "60614"}).status_code == 200


def test_a_rate_limited_answer_still_carries_the_edge_headers(app_with: AppWith) -> None:
    limited = app_with(rate_limit_per_minute=1, rate_limit_burst=1)
    origin = {"Origin": "https://find-a-pt.example"}
    assert limited.get("/v1/specialties", headers=origin).status_code == 200
    refused = limited.get("/v1/specialties", headers=origin)
    assert refused.status_code == 429
    assert len(refused.headers["x-request-id"]) == 32
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["access-control-allow-origin"] == "*", "a page can read the 429"
    assert "Retry-After" in refused.headers["access-control-expose-headers"]
    counted = _samples(limited.get("/metrics").text, "ptdir_http_requests_total")
    assert counted['{method="GET",route="unmatched",status="429"}'] == 1
