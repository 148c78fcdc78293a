"""What a user of `GET /v1/search/therapists` sees at the edges and on mistakes."""

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.search.dataset import SearchDirectory
from tests.search.oracle import (
    KM_PER_MILE,
    SEARCH,
    Params,
    check_search,
    fetch_pages,
    haversine_km,
    ids_of,
)

PROBLEM_JSON = "application/problem+json"


def search(client: TestClient, params: Params | dict[str, Any]) -> dict[str, Any]:
    response = client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def all_ids(search_dir: SearchDirectory, params: Params) -> list[int]:
    return ids_of(fetch_pages(search_dir.client, params, all_pages=True))


def problem(response: Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body.get("errors") or []]


def assert_names(response: Response, field: str) -> None:
    body = problem(response)
    assert any(
        name == field or name.startswith((f"{field}[", f"{field}.")) for name in fields_of(body)
    ), f"422 does not name {field!r}: {body}"


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    return decoded


# --- awkward places -----------------------------------------------------------------------


def test_antimeridian_viewport_finds_both_sides(search_dir: SearchDirectory) -> None:
    edge = search_dir.edge
    ids = all_ids(search_dir, [("bbox", "179.8,51,-179.7,53")])
    assert {edge["aleut_east"], edge["aleut_west"], edge["aleut_both"]} <= set(ids)
    body = search(search_dir.client, {"bbox": "179.8,51,-179.7,53", "unit": "km"})
    assert body["origin"]["longitude"] == pytest.approx(-179.95)
    assert body["origin"]["resolved_from"] == "bbox_center"
    # Only the east side (no crossing): the west therapist is not there.
    east = set(all_ids(search_dir, [("bbox", "179.8,51,180,53")]))
    assert edge["aleut_east"] in east
    assert edge["aleut_both"] in east
    assert edge["aleut_west"] not in east
    west = set(all_ids(search_dir, [("bbox", "-180,51,-179.7,53")]))
    assert edge["aleut_west"] in west
    assert edge["aleut_both"] in west
    assert edge["aleut_east"] not in west
    check_search(search_dir.client, search_dir.directory, [("bbox", "179.8,51,-179.7,53")])


def test_viewport_edges_are_inside(search_dir: SearchDirectory) -> None:
    """A practice exactly on the west, east, south and north edges is in the viewport."""
    edge = search_dir.edge
    ids = set(all_ids(search_dir, [("bbox", "179.95,52,-179.95,52")]))
    assert {edge["aleut_east"], edge["aleut_west"]} <= ids
    assert edge["aleut_both"] not in ids  # at 51.9 and 51.93


@pytest.mark.parametrize("lon", ["180", "-180", "179.99", "-179.99"])
def test_radius_around_the_antimeridian_reaches_both_sides(
    search_dir: SearchDirectory, lon: str
) -> None:
    params = [("lat", "52"), ("lon", lon), ("radius", "15"), ("unit", "km")]
    body = check_search(search_dir.client, search_dir.directory, params)
    ids = {item["id"] for item in body["items"]}
    assert {search_dir.edge["aleut_east"], search_dir.edge["aleut_west"]} <= ids


def test_both_sides_practices_are_listed_nearest_first(search_dir: SearchDirectory) -> None:
    both = search_dir.edge["aleut_both"]
    body = search(
        search_dir.client, {"lat": "51.92", "lon": "-179.85", "radius": "50", "unit": "km"}
    )
    item = next(item for item in body["items"] if item["id"] == both)
    longitudes = [practice["location"]["longitude"] for practice in item["practices"]]
    assert longitudes == [-179.82, 179.9]
    expected = round(haversine_km(51.92, -179.85, 51.93, -179.82), 2)
    assert item["distance"] == item["practices"][0]["distance"] == expected


@pytest.mark.parametrize(
    ("lat", "lon", "radius"), [("89.95", "-120", "50"), ("90", "0", "20"), ("89.5", "179", "70")]
)
def test_near_the_pole_finds_the_polar_therapist(
    search_dir: SearchDirectory, lat: str, lon: str, radius: str
) -> None:
    params = [("lat", lat), ("lon", lon), ("radius", radius), ("unit", "km")]
    body = check_search(search_dir.client, search_dir.directory, params)
    polar = next(item for item in body["items"] if item["id"] == search_dir.edge["polar"])
    assert polar["distance"] == round(haversine_km(float(lat), float(lon), 89.9, 0.0), 2)


@pytest.mark.parametrize(
    ("params", "name", "state"),
    [
        ({"zip": "99501", "radius": "10"}, "anchorage", "AK"),
        ({"city": "Honolulu", "state": "HI", "radius": "10"}, "honolulu", "HI"),
        ({"zip": "00901", "radius": "10"}, "san_juan", "PR"),
        ({"city": "San Juan", "state": "pr", "radius": "10"}, "san_juan", "PR"),
        ({"city": "anchorage", "state": "AK", "radius": "10"}, "anchorage", "AK"),
    ],
)
def test_outside_the_lower_48_finds_local_therapists(
    search_dir: SearchDirectory, params: dict[str, str], name: str, state: str
) -> None:
    body = search(search_dir.client, {**params, "limit": "100"})
    assert search_dir.edge[name] in {item["id"] for item in body["items"]}
    assert {p["location"]["state"] for item in body["items"] for p in item["practices"]} == {state}
    check_search(search_dir.client, search_dir.directory, list(params.items()))


@pytest.mark.parametrize("unit", ["mi", "km"])
def test_radius_equal_to_the_distance_includes_the_practice(
    search_dir: SearchDirectory, unit: str
) -> None:
    therapist = search_dir.edge["juneau"]
    (practice,) = search_dir.directory.by_therapist[therapist]
    lat, lon = practice.latitude + 0.0731, practice.longitude - 0.0457
    distance = haversine_km(lat, lon, practice.latitude, practice.longitude)
    if unit == "mi":
        distance /= KM_PER_MILE
    params = {"lat": repr(lat), "lon": repr(lon), "unit": unit, "limit": "100"}
    body = search(search_dir.client, {**params, "radius": repr(distance)})
    item = next(item for item in body["items"] if item["id"] == therapist)
    assert [p["id"] for p in item["practices"]] == [practice.id]
    assert item["distance"] == round(distance, 2)
    # A hair less (well beyond float noise) and it is out.
    body = search(search_dir.client, {**params, "radius": repr(distance * (1 - 1e-9))})
    assert therapist not in {item["id"] for item in body["items"]}


# --- the "current" rule for plans -----------------------------------------------------------


def test_plan_filter_counts_only_current_participations(search_dir: SearchDirectory) -> None:
    edge, plans = search_dir.edge, search_dir.plan_ids
    medicare, ppo = plans["Medicare Part B"], plans["Northwind National Choice PPO (synthetic)"]
    for plan in (medicare, ppo):
        ids = set(all_ids(search_dir, [("zip", "60614"), ("radius", "5"), ("plan_id", str(plan))]))
        assert edge["boundary"] in ids  # ends today / starts today: current
        assert edge["ended"] not in ids  # ended yesterday / starts tomorrow
    # Every condition holds on the same practice: the accepting one's Medicare has ended.
    base = [("zip", "60614"), ("radius", "5"), ("plan_id", str(medicare))]
    assert edge["split"] in set(all_ids(search_dir, base))
    assert edge["split"] not in set(
        all_ids(search_dir, [*base, ("accepting_new_patients", "true")])
    )
    body = search(search_dir.client, [*base, ("limit", "100")])
    split = next(item for item in body["items"] if item["id"] == edge["split"])
    assert len(split["practices"]) == 1
    assert split["practices"][0]["accepting_new_patients"] is False
    assert [plan["plan_id"] for plan in split["practices"][0]["plans"]] == [medicare]


# --- name search ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["%", "_", "o%", "O_", "%hara", "zo%"])
def test_q_wildcards_match_literally(search_dir: SearchDirectory, q: str) -> None:
    body = search(search_dir.client, {"zip": "99801", "radius": "10", "q": q})
    assert body["items"] == []
    assert body["total"] == 0


@pytest.mark.parametrize("q", ["o'h", "O'HARA", "zoe", "Zoë", "zo o'"])
def test_q_finds_by_name_prefix_ignoring_case_and_accents(
    search_dir: SearchDirectory, q: str
) -> None:
    body = search(search_dir.client, {"zip": "99801", "radius": "10", "q": q})
    assert [item["id"] for item in body["items"]] == [search_dir.edge["juneau"]]


# --- origins and specialties that must mean the same ---------------------------------------


def test_saint_spellings_resolve_to_one_origin(search_dir: SearchDirectory) -> None:
    bodies = [
        search(search_dir.client, {"city": city, "state": state, "radius": "30"})
        for city, state in (("St. Louis", "MO"), ("Saint Louis", "MO"), ("st louis", "mo"),
                            ("ST LOUIS", "MO"), ("  Saint   Louis ", "MO"), ("St Louis", "MO"))
    ]  # fmt: skip
    assert bodies[0]["origin"]["resolved_from"] == "city_centroid"
    assert bodies[0]["origin"]["label"] == "Saint Louis, MO"
    assert bodies[0]["total"] > 0
    for body in bodies[1:]:
        assert body == bodies[0]


def test_specialty_slug_equals_code(search_dir: SearchDirectory) -> None:
    client = search_dir.client
    common = {"zip": "60614", "radius": "60", "facets": "specialty", "limit": "50"}
    by_slug = client.get(SEARCH, params={**common, "specialty": "neurology"})
    by_code = client.get(SEARCH, params={**common, "specialty": "2251N0400X"})
    lower = client.get(SEARCH, params={**common, "specialty": "2251n0400x"})
    assert by_slug.status_code == 200
    assert by_slug.json()["total"] > 0
    assert by_slug.content == by_code.content == lower.content


def test_general_pt_code_matches_every_pt_and_no_assistant(search_dir: SearchDirectory) -> None:
    west, south, east, north = MIDWEST
    inside = {
        p.therapist_id
        for p in search_dir.directory.practices
        if west <= p.longitude <= east and south <= p.latitude <= north
    }
    therapists = [search_dir.directory.therapists[i] for i in inside]
    pts = {t.id for t in therapists if any(code.startswith("2251") for code in t.specialties)}
    assistants = {t.id for t in therapists if t.specialties == {"225200000X"}}
    assert assistants
    assert pts
    assert not assistants & pts
    box = ",".join(str(v) for v in MIDWEST)
    params = [("bbox", box), ("specialty", "225100000X"), ("limit", "100")]
    pages = fetch_pages(search_dir.client, params, all_pages=True)
    ids = ids_of(pages)
    assert pages[0]["total"] == len(ids) == len(set(ids))
    assert set(ids) == pts


MIDWEST = (-95, 35, -80, 47)  # about 1.7 million km², under the bbox limit


# --- mistakes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zip": "00000"}, "zip"),
        ({"zip": "1234"}, "zip"),
        ({"city": "Nowhereville", "state": "IL"}, "city"),
        ({"city": "Springfield", "state": "ZZ"}, "city"),
        ({"zip": "60614", "radius": "0"}, "radius"),
        ({"zip": "60614", "radius": "-5"}, "radius"),
        ({"zip": "60614", "radius": "250.01"}, "radius"),
        ({"zip": "60614", "radius": "400.5", "unit": "km"}, "radius"),
        ({"zip": "60614", "radius": "nan"}, "radius"),
        ({"zip": "60614", "limit": "0"}, "limit"),
        ({"zip": "60614", "limit": "101"}, "limit"),
        ({"zip": "60614", "specialty": "astrology"}, "specialty"),
        ({"zip": "60614", "specialty": "225100000Y"}, "specialty"),
        ({"zip": "60614", "condition": "lycanthropy"}, "condition"),
        ({"zip": "60614", "certification": "XYZ"}, "certification"),
        ({"zip": "60614", "language": "xx"}, "language"),
        ({"zip": "60614", "plan_id": "999999"}, "plan_id"),
        ({"zip": "60614", "plan_id": "abc"}, "plan_id"),
        ({"zip": "60614", "plan_id": "0"}, "plan_id"),
        ({"zip": "60614", "payer_id": "999999"}, "payer_id"),
        ({"zip": "60614", "facets": "colour"}, "facets"),
        ({"zip": "60614", "facets": "specialty,certification"}, "facets"),
        ({"zip": "60614", "gender": "unknown"}, "gender"),
        ({"zip": "60614", "facility_type": "spa"}, "facility_type"),
        ({"zip": "60614", "sort": "rating"}, "sort"),
        ({"zip": "60614", "unit": "furlong"}, "unit"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "1,2,3,4,5"}, "bbox"),
        ({"bbox": "-10,-95,10,10"}, "bbox"),
        ({"bbox": "-10,10,10,91"}, "bbox"),
        ({"bbox": "-190,10,10,20"}, "bbox"),
        ({"bbox": "-10,20,10,10"}, "bbox"),
        ({"bbox": "-180,-90,180,90"}, "bbox"),  # the world: over the area limit
        ({"bbox": "-125,24,-66,50"}, "bbox"),  # the contiguous US: likewise
        ({"bbox": "160,40,-140,70"}, "bbox"),  # across the antimeridian, too large
        ({"bbox": "-10,nan,10,10"}, "bbox"),
        ({"lat": "91", "lon": "0"}, "lat"),
        ({"lat": "41", "lon": "-181"}, "lon"),
        ({"lat": "41"}, "lon"),
        ({"lon": "-87"}, "lat"),
    ],
)
def test_invalid_parameters_are_named(
    search_dir: SearchDirectory, params: dict[str, str], field: str
) -> None:
    assert_names(search_dir.client.get(SEARCH, params=params), field)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"radius": "10"},
        {"zip": "60614", "lat": "41.9", "lon": "-87.6"},
        {"zip": "60614", "city": "Chicago", "state": "IL"},
        {"bbox": "-88,41,-87,42", "lat": "41.9", "lon": "-87.6"},
        {"bbox": "-88,41,-87,42", "zip": "60614"},
    ],
)
def test_exactly_one_origin(search_dir: SearchDirectory, params: dict[str, str]) -> None:
    body = problem(search_dir.client.get(SEARCH, params=params))
    assert body["errors"]


def test_largest_radius_is_allowed(search_dir: SearchDirectory) -> None:
    search(search_dir.client, {"zip": "60614", "radius": "250"})
    search(search_dir.client, {"zip": "60614", "radius": "400", "unit": "km"})
    # A viewport has no radius, so a large one is not an error there.
    search(search_dir.client, {"bbox": "-88,41,-87,42", "radius": "1000", "unit": "km"})


def test_cursor_from_another_search_is_refused(search_dir: SearchDirectory) -> None:
    client = search_dir.client
    first = search(client, {"zip": "60614", "radius": "25", "limit": "2"})
    cursor = first["next_cursor"]
    assert cursor
    assert search(client, {"zip": "60614", "radius": "25", "limit": "5", "cursor": cursor})
    for other in (
        {"zip": "60614", "radius": "26"},
        {"zip": "60601", "radius": "25"},
        {"zip": "60614", "radius": "25", "sort": "name"},
        {"zip": "60614", "radius": "25", "specialty": "neurology"},
        {"zip": "60614", "radius": "25", "unit": "km"},
        {"zip": "60614", "radius": "25", "accepting_new_patients": "true"},
    ):
        assert_names(client.get(SEARCH, params={**other, "limit": "2", "cursor": cursor}), "cursor")


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!!", "", _encode({}), _encode({"v": 1}), _encode({"v": 2, "k": [1.0, 1]}),
     "eyJ2IjogMX0", base64.urlsafe_b64encode(b"\xff\xfe").decode(), "a" * 500],
)  # fmt: skip
def test_garbage_cursor_is_refused(search_dir: SearchDirectory, cursor: str) -> None:
    response = search_dir.client.get(SEARCH, params={"zip": "60614", "cursor": cursor})
    if cursor == "":
        # An empty cursor is either "no cursor" or refused, never a server error.
        assert response.status_code in (200, 422), response.text
        return
    assert_names(response, "cursor")


def _tampered(search_dir: SearchDirectory, sort: str, key: list[Any]) -> Response:
    params = {"zip": "60614", "radius": "25", "limit": "2", "sort": sort}
    payload = _decode(search(search_dir.client, params)["next_cursor"])
    return search_dir.client.get(
        SEARCH, params={**params, "cursor": _encode({**payload, "k": key})}
    )


@pytest.mark.parametrize(
    ("sort", "key"),
    [("distance", [0.5, "7"]), ("distance", [0.5, True]), ("distance", ["x", 1]),
     ("distance", [0.5]), ("name", ["a", "b"]), ("name", ["a", 1, 1]), ("name", [1, "b", 1])],
)  # fmt: skip
def test_cursor_with_the_wrong_shape_is_refused(
    search_dir: SearchDirectory, sort: str, key: list[Any]
) -> None:
    assert_names(_tampered(search_dir, sort, key), "cursor")


@pytest.mark.parametrize("sort", ["distance", "name"])
def test_cursor_with_an_out_of_range_id_is_refused(search_dir: SearchDirectory, sort: str) -> None:
    key: list[Any] = [0.5, 2**70] if sort == "distance" else ["a", "b", 2**70]
    assert_names(_tampered(search_dir, sort, key), "cursor")


def test_cursor_with_an_unencodable_name_is_refused(search_dir: SearchDirectory) -> None:
    response = _tampered(search_dir, "name", ["\udcff", "b", 1])
    assert response.status_code in (200, 422), response.text


def test_cursor_with_nul_in_a_name(search_dir: SearchDirectory) -> None:
    response = _tampered(search_dir, "name", ["a\x00", "b", 1])
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("name", ["condition", "certification", "language"])
def test_nul_in_a_vocabulary_filter_is_an_unknown_value(
    search_dir: SearchDirectory, name: str
) -> None:
    value = {"condition": "stroke\x00", "certification": "NCS\x00", "language": "e\x00"}[name]
    assert_names(search_dir.client.get(SEARCH, params={"zip": "60614", name: value}), name)


def test_nul_in_q_is_refused_naming_q(search_dir: SearchDirectory) -> None:
    assert_names(search_dir.client.get(SEARCH, params={"zip": "60614", "q": "a\x00"}), "q")


def test_errors_are_problem_details(search_dir: SearchDirectory) -> None:
    for params in ({}, {"zip": "00000"}, {"zip": "60614", "limit": "0"}, {"bbox": "x"},
                   {"zip": "60614", "cursor": "garbage"}):  # fmt: skip
        body = problem(search_dir.client.get(SEARCH, params=params))
        assert body["type"].startswith("urn:ptdir:problem:")
        assert body["title"]
        assert body["detail"]
    # Not found and wrong method are problem details too.
    problem(search_dir.client.get("/v1/search/nothing"), 404)
    problem(search_dir.client.post(SEARCH, params={"zip": "60614"}), 405)
