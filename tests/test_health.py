from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_healthz_answers_without_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_a_reachable_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_is_503_problem_when_the_database_is_unreachable(tmp_path) -> None:
    unreachable = [
        f"sqlite:///{tmp_path}/missing-dir/db.sqlite3",
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
    ]
    for url in unreachable:
        settings = Settings(database_url=url, database_pool_timeout=1)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            response = client.get("/readyz")
            assert response.status_code == 503, url
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 503
            assert client.get("/healthz").status_code == 200
