"""The shared store: one limit across processes, exact in Redis, open when Redis is down."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.ratelimit.limiter import Rate, RedisLimiter
from tests.ratelimit.helpers import client_at, limited_app

CLIENT = "203.0.113.7"
ROOT = Path(__file__).resolve().parents[2]


def app_on(url: str, prefix: str, burst: int) -> object:
    # One request a minute, so nothing refills while a test runs on the real clock.
    return limited_app(RedisLimiter(Rate(1, burst), url, prefix=prefix), burst=burst)


def test_two_instances_share_one_allowance(redis_url: str, redis_prefix: str) -> None:
    first, second = app_on(redis_url, redis_prefix, 4), app_on(redis_url, redis_prefix, 4)
    with client_at(first, CLIENT) as a, client_at(second, CLIENT) as b:  # type: ignore[arg-type]
        answers = [client.get("/v1/specialties") for _ in range(4) for client in (a, b)]
        other = b.get("/v1/specialties", headers={"X-Forwarded-For": "198.51.100.1"})
    assert [answer.status_code for answer in answers] == [200] * 4 + [429] * 4
    assert [answer.headers["ratelimit-remaining"] for answer in answers[:4]] == ["3", "2", "1", "0"]
    refused = answers[4]
    assert refused.json()["type"] == "urn:ptdir:problem:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other.status_code == 429  # X-Forwarded-For means nothing without trusted proxies


def test_the_allowance_refills_and_the_key_expires(
    redis_url: str, redis_prefix: str, redis_server: redis.Redis
) -> None:
    app = app_on(redis_url, redis_prefix, 2)
    key = redis_prefix + CLIENT
    with client_at(app, CLIENT) as client:  # type: ignore[arg-type]
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
        assert 0 < redis_server.pttl(key) <= 120_000  # gone once the burst is whole again
        # Moving the stored arrival time back one interval is a minute passing.
        redis_server.decrby(key, 60_000_000)
        assert [client.get("/").status_code for _ in range(2)] == [200, 429]


def test_a_flushed_script_cache_is_loaded_again(
    redis_url: str, redis_prefix: str, redis_server: redis.Redis
) -> None:
    app = app_on(redis_url, redis_prefix, 2)
    with client_at(app, CLIENT) as client:  # type: ignore[arg-type]
        assert client.get("/").status_code == 200
        redis_server.script_flush()
        assert [client.get("/").status_code for _ in range(2)] == [200, 429]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_store_fails_open_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    app = app_on(f"redis://127.0.0.1:{_closed_port()}/0", "ptdir-test:", 1)
    with caplog.at_level(logging.WARNING), client_at(app, CLIENT) as client:  # type: ignore[arg-type]
        answers = [client.get("/") for _ in range(5)]
    assert {answer.status_code for answer in answers} == {200}
    assert "ratelimit-limit" not in answers[0].headers
    warnings = [r for r in caplog.records if "rate limit store unreachable" in r.message]
    assert len(warnings) == 1


@pytest.fixture
def two_workers(redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`uvicorn --workers 2` with the limit in Redis, both workers started: (base URL, log)."""
    port = _closed_port()
    log = tmp_path / "uvicorn.log"  # the service's JSON lines: each names its process
    env = os.environ | {
        "PTDIR_DATABASE_URL": f"sqlite:///{tmp_path / 'ptdir.sqlite3'}",
        "PTDIR_IMPORT_WORKERS": "0",
        "PTDIR_RATE_LIMIT_PER_MINUTE": "1",
        "PTDIR_RATE_LIMIT_BURST": "6",
        "PTDIR_RATE_LIMIT_REDIS_URL": redis_url,
        "PTDIR_RATE_LIMIT_REDIS_PREFIX": redis_prefix,
        "PTDIR_TRUSTED_PROXIES": "",
        "PTDIR_LOG_FORMAT": "json",
        "PTDIR_ACCESS_LOG": "true",
    }
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
             "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
             "--no-proxy-headers"],
            env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while log.read_text().count("Application startup complete") < 2:
            assert server.poll() is None, f"uvicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"two workers not up in 15 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.terminate()
        server.wait(timeout=10)


def _json_lines(log: Path) -> Iterator[dict[str, Any]]:
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            yield json.loads(line)


def test_the_limit_holds_across_worker_processes(two_workers: tuple[str, Path]) -> None:
    base, log = two_workers
    statuses: list[int] = []
    answered_by: set[str] = set()
    # A connection per request, so either worker may accept it; on until both have answered.
    while len(statuses) < 18 or (len(answered_by) < 2 and len(statuses) < 200):
        with httpx.Client(base_url=base, timeout=5) as client:
            statuses.append(client.get("/v1/no-such-page").status_code)
        answered_by = {
            line["pid"]
            for line in _json_lines(log)
            if line["logger"] == "ptdir.access" and line["status"] in (404, 429)
        }
    assert len(answered_by) == 2, "one worker answered every request"
    # Kept per process, the allowance would have let 6 through in each worker that answered.
    assert statuses.count(404) == 6
    assert statuses.count(429) == len(statuses) - 6
