"""The Redis tier: a server at PTDIR_TEST_REDIS_URL, keys under a prefix of this run's own."""

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL, REQUIRE_REDIS


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip("PTDIR_TEST_REDIS_URL is not set")
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as server:
            server.ping()
    except redis.RedisError as error:
        if REQUIRE_REDIS:
            pytest.fail(
                f"PTDIR_TEST_REQUIRE_REDIS=1 but Redis at {REDIS_URL} is unreachable: {error}"
            )
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_server(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as server:
        yield server


@pytest.fixture
def redis_prefix(redis_server: redis.Redis) -> Iterator[str]:
    """A key prefix no other test or concurrent run uses; its keys are deleted after."""
    prefix = f"ptdir-test:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(redis_server.scan_iter(match=f"{prefix}*"))
    if keys:
        redis_server.delete(*keys)
