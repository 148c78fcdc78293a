"""SQLite and PostgreSQL give byte-identical answers to the same searches.

Runs only when both backends are configured (PTDIR_TEST_POSTGRES_URL; CI sets it).
"""

import random
from collections.abc import Callable

import pytest

from tests.conftest import BACKENDS
from tests.search.dataset import SearchDirectory
from tests.search.oracle import SEARCH, Params, describe
from tests.search.querygen import random_query

pytestmark = pytest.mark.skipif(
    "postgres" not in BACKENDS, reason="PTDIR_TEST_POSTGRES_URL is not set"
)

SEED = 31337
QUERIES = 50
FIXED: list[Params] = [
    [("bbox", "170,45,-170,60"), ("facets", "specialty,plan_id,telehealth")],
    [("lat", "90"), ("lon", "0"), ("radius", "30"), ("unit", "km")],
    [("zip", "60614"), ("radius", "3"), ("plan_id", "1"), ("facets", "plan_id")],
    [("bbox", "-95,35,-80,47"), ("sort", "name"), ("limit", "100")],
    [("city", "Saint Louis"), ("state", "MO"), ("radius", "100"), ("limit", "7"),
     ("facets", "specialty,condition,plan_id,language,gender,facility_type,"
                "accepting_new_patients,telehealth")],
    [("zip", "00000")],
    [("zip", "60614"), ("specialty", "nonsense")],
    [("bbox", "10,20,30")],
]  # fmt: skip


@pytest.fixture(scope="module")
def both(
    search_directories: Callable[[str], SearchDirectory],
) -> tuple[SearchDirectory, SearchDirectory]:
    return search_directories("sqlite"), search_directories("postgres")


def _pages(directory: SearchDirectory, params: Params, all_pages: bool) -> list[bytes]:
    pages = []
    cursor = None
    for _ in range(30):
        response = directory.client.get(
            SEARCH, params=[*params, *([("cursor", cursor)] if cursor else [])]
        )
        pages.append(response.content)
        if response.status_code != 200 or not all_pages:
            break
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    return pages


def _first_difference(a: bytes, b: bytes) -> str:
    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if index is None:
        index = min(len(a), len(b))
    return (
        f"first difference at byte {index}:\n  sqlite:   …{a[max(0, index - 80) : index + 80]!r}\n"
        f"  postgres: …{b[max(0, index - 80) : index + 80]!r}"
    )


def _same(both: tuple[SearchDirectory, SearchDirectory], params: Params, all_pages: bool) -> None:
    sqlite, postgres = both
    left, right = _pages(sqlite, params, all_pages), _pages(postgres, params, all_pages)
    for number, (a, b) in enumerate(zip(left, right, strict=False), 1):
        assert a == b, f"GET {SEARCH}?{describe(params)} page {number}: {_first_difference(a, b)}"
    assert len(left) == len(right), f"GET {SEARCH}?{describe(params)}: page counts differ"


def test_same_directory_on_both(both: tuple[SearchDirectory, SearchDirectory]) -> None:
    sqlite, postgres = both
    assert sqlite.edge == postgres.edge
    assert sqlite.directory.therapists == postgres.directory.therapists
    assert sqlite.directory.practices == postgres.directory.practices


@pytest.mark.parametrize("index", range(QUERIES))
def test_random_query_is_byte_identical(
    both: tuple[SearchDirectory, SearchDirectory], index: int
) -> None:
    sqlite = both[0]
    query = random_query(
        random.Random(f"{SEED}-{index}"), sqlite.directory, sorted(sqlite.edge.values())
    )
    params = [(k, v) for k, v in query.params if k != "limit"]
    params.append(("limit", dict(query.params).get("limit", "20") if not query.all_pages else "25"))
    _same(both, params, all_pages=query.all_pages)


@pytest.mark.parametrize("params", FIXED, ids=[f"fixed{i}" for i in range(len(FIXED))])
def test_fixed_query_is_byte_identical(
    both: tuple[SearchDirectory, SearchDirectory], params: Params
) -> None:
    _same(both, params, all_pages=True)
