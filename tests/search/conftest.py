"""One demo directory per backend for the search tests, built once per session.

See tests/search/dataset.py for what it holds. The database is never written to
after it is built, so every test may read it; do not use `client` from
tests/conftest.py here (it empties its database around each test).
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest

from app.search import projection, service
from tests.conftest import BACKENDS
from tests.search.dataset import SearchDirectory, build_directory
from tests.search.oracle import SESSION_DAY


@pytest.fixture(autouse=True)
def _same_day_all_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Search answers as of the day the directory was built, even past midnight UTC."""

    def session_day_now() -> datetime:
        return datetime.combine(SESSION_DAY, datetime.now(UTC).time(), UTC)

    if datetime.now(UTC).date() != SESSION_DAY:
        monkeypatch.setattr(service, "utcnow", session_day_now)
        monkeypatch.setattr(projection, "utcnow", session_day_now)


@pytest.fixture(scope="session")
def search_directories(
    fresh_database_url: Callable[[str], str],
) -> Iterator[Callable[[str], SearchDirectory]]:
    """backend name -> its loaded directory (built on first use, kept for the session)."""
    built: dict[str, SearchDirectory] = {}
    with ExitStack() as stack:

        def get(backend: str) -> SearchDirectory:
            if backend not in built:
                built[backend] = build_directory(backend, fresh_database_url(backend), stack)
            return built[backend]

        yield get


@pytest.fixture(scope="session", params=BACKENDS)
def search_dir(
    request: pytest.FixtureRequest, search_directories: Callable[[str], SearchDirectory]
) -> SearchDirectory:
    return search_directories(request.param)
