"""The search API against a brute-force model, on randomised queries.

Each query runs through the API (all pages for some) and is compared with
tests/search/oracle.py: ids and order, total, distances per therapist and per
practice, the practices listed, facet counts, and that paging returns each
therapist exactly once.
"""

import math
import random

import pytest

from tests.search.dataset import DEMO_THERAPISTS, SearchDirectory
from tests.search.oracle import Oracle, check_search, parse_query, today_utc
from tests.search.querygen import Query, random_query

SEED = 20261127
QUERIES = 240
MAX_PAGES = 15


def _query(search_dir: SearchDirectory, index: int) -> Query:
    rng = random.Random(f"{SEED}-{index}")
    query = random_query(rng, search_dir.directory, sorted(search_dir.edge.values()))
    if not query.all_pages:
        return query
    # Keep paging to the end affordable: at most MAX_PAGES pages.
    oracle = Oracle(
        search_dir.directory, parse_query(search_dir.directory, query.params), today_utc()
    )
    total = len(oracle.hits())
    limit = int(dict(query.params).get("limit", 20))
    if math.ceil(total / limit) > MAX_PAGES:
        limit = min(100, math.ceil(total / MAX_PAGES))
        params = [(k, v) for k, v in query.params if k != "limit"] + [("limit", str(limit))]
        return Query(params, all_pages=True)
    return query


def test_directory_is_country_wide(search_dir: SearchDirectory) -> None:
    directory = search_dir.directory
    assert len(directory.therapists) == DEMO_THERAPISTS + len(search_dir.edge)
    assert len(directory.practices) >= 2000
    states = {practice.state for practice in directory.practices}
    assert {"AK", "HI", "PR", "CA", "TX", "NY", "IL", "FL"} <= states
    assert len(states) >= 50


@pytest.mark.parametrize("index", range(QUERIES))
def test_random_query_matches_the_model(search_dir: SearchDirectory, index: int) -> None:
    query = _query(search_dir, index)
    check_search(search_dir.client, search_dir.directory, query.params, all_pages=query.all_pages)


FIXED = [
    # Crossing the antimeridian, distances from a centre at lon 180 wrapped to [-180, 180].
    [("bbox", "170,45,-170,60"), ("limit", "3")],
    [("bbox", "179.5,50,-179.6,54"), ("sort", "name"), ("facets", ",".join(
        ["specialty", "plan_id", "accepting_new_patients", "telehealth"]))],
    # Around the pole: every longitude is near.
    [("lat", "89.95"), ("lon", "-120"), ("radius", "50"), ("unit", "km")],
    # The participation edges in Chicago: ended yesterday, starts tomorrow, ends/starts today
    # (plan 1 is the demo's Medicare Part B, payer 2 Northwind).
    [("zip", "60614"), ("radius", "3"), ("plan_id", "1"),
     ("facets", "plan_id,accepting_new_patients")],
    [("zip", "60614"), ("radius", "5"), ("plan_id", "1"), ("accepting_new_patients", "true"),
     ("facets", "plan_id"), ("facets", "accepting_new_patients"), ("limit", "4")],
    [("zip", "60614"), ("radius", "3"), ("payer_id", "2"), ("facets", "plan_id")],
    # Every therapist in a Midwest viewport (the largest allowed), by name, every page.
    [("bbox", "-95,35,-80,47"), ("sort", "name"), ("limit", "100")],
    [("bbox", "-95,35,-80,47"), ("limit", "100"), ("facets", ",".join(
        ["specialty", "condition", "plan_id", "language", "gender", "facility_type",
         "accepting_new_patients", "telehealth"]))],
]  # fmt: skip


@pytest.mark.parametrize("params", FIXED, ids=[f"fixed{i}" for i in range(len(FIXED))])
def test_fixed_query_matches_the_model(
    search_dir: SearchDirectory, params: list[tuple[str, str]]
) -> None:
    check_search(search_dir.client, search_dir.directory, params, all_pages=True)
