"""The limit as the service applies it, on each database backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import Backend, IssueKey


@pytest.fixture
def limited(backend: Backend, import_dir: Path, client: TestClient) -> Iterator[TestClient]:
    """The service with a burst of 3 reads per client (on the clean database of `client`)."""
    settings = Settings(
        database_url=backend.url,
        import_dir=import_dir,
        import_workers=0,
        rate_limit_per_minute=60,
        rate_limit_burst=3,
    )
    with TestClient(create_app(settings), client=("203.0.113.7", 50000)) as test_client:
        yield test_client


def test_public_reads_are_limited_per_client(limited: TestClient) -> None:
    answers = [limited.get("/v1/specialties") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-remaining"] == "2"
    assert answers[3].json()["type"] == "urn:ptdir:problem:rate-limited"
    assert answers[3].headers["retry-after"] == "1"


def test_health_and_schema_pages_are_not_limited(limited: TestClient) -> None:
    for _ in range(5):
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"):
            answer = limited.get(path)
            assert answer.status_code == 200, path
            assert "ratelimit-limit" not in answer.headers, path
    assert limited.get("/v1/payers").status_code == 200


def test_writes_are_not_limited(limited: TestClient, issue_key: IssueKey) -> None:
    admin = issue_key("admin")
    for n in range(5):
        created = limited.post("/v1/payers", json={"name": f"Payer {n}"}, headers=admin)
        assert created.status_code == 201, created.text
    assert [limited.get("/v1/payers").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_limit_of_zero_turns_limiting_off(backend: Backend, import_dir: Path) -> None:
    settings = Settings(
        database_url=backend.url, import_dir=import_dir, import_workers=0, rate_limit_per_minute=0
    )
    with TestClient(create_app(settings)) as test_client:
        answers = [test_client.get("/v1/specialties") for _ in range(200)]
    assert {a.status_code for a in answers} == {200}
    assert "ratelimit-limit" not in answers[0].headers


def test_the_schema_documents_the_429_on_limited_reads_only() -> None:
    schema = create_app(Settings(rate_limit_per_minute=60)).openapi()
    paths = schema["paths"]
    for path in ("/v1/search/therapists", "/v1/specialties", "/v1/therapists/{therapist_id}"):
        assert "429" in paths[path]["get"]["responses"], path
    documented = paths["/v1/specialties"]["get"]["responses"]["429"]
    assert "Retry-After" in documented["headers"]
    problem_ref = documented["content"]["application/problem+json"]["schema"]["$ref"]
    assert problem_ref.rsplit("/", 1)[1] in schema["components"]["schemas"]
    assert "429" not in paths["/healthz"]["get"]["responses"]
    assert "429" not in paths["/v1/payers"]["post"]["responses"]
    unlimited = create_app(Settings(rate_limit_per_minute=0)).openapi()
    assert "429" not in unlimited["paths"]["/v1/specialties"]["get"]["responses"]
