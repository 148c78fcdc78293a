"""The offline ZIP index: every ZIP the zipcodes package places is found where it says."""

import math

import pytest
import zipcodes

from app.geocoding import all_zip_places, city_centroid, place_address, zip_centroid


def _miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    cos = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return 3958.8 * math.acos(min(1.0, cos))


def test_the_index_holds_every_zip_the_package_places() -> None:
    placed = {
        entry["zip_code"]: (float(entry["lat"]), float(entry["long"]))
        for entry in zipcodes.list_all()
        if entry["lat"] and entry["long"] and (float(entry["lat"]), float(entry["long"])) != (0, 0)
        and entry["state"] not in ("AA", "AE", "AP")
    }  # fmt: skip
    indexed = {place.zip: (place.latitude, place.longitude) for place in all_zip_places()}
    assert {zip_code: indexed[zip_code] for zip_code in placed} == placed
    assert len(indexed) > 40_000


@pytest.mark.parametrize(
    ("zip_code", "city", "state"),
    [
        ("96349", "FPO", "AP"),  # the package: in Alaska
        ("96515", "DPO", "AP"),  # the package: in the North Sea
        ("09001", "APO", "AE"),
        ("34002", "APO", "AA"),
    ],
)
def test_a_military_post_office_is_no_place(zip_code: str, city: str, state: str) -> None:
    # The package puts the Pacific ones in Alaska or the North Sea.
    assert zip_centroid(zip_code) is None
    assert city_centroid(city, state) is None
    assert place_address(zip_code, city, state) is None
    assert not [p.zip for p in all_zip_places() if p.state in ("AA", "AE", "AP")]


def test_no_zip_is_placed_at_zero_zero() -> None:
    # The package gives 0°, 0° for ZIPs it has no position for.
    assert not [p.zip for p in all_zip_places() if (p.latitude, p.longitude) == (0, 0)]


def test_a_zip_without_a_position_takes_its_citys_and_one_without_a_city_is_unknown() -> None:
    livingston = zip_centroid("77352")  # a delivery ZIP the package puts at 0°, 0°
    assert livingston is not None
    assert (livingston.city, livingston.state) == ("Livingston", "TX")
    assert _miles((livingston.latitude, livingston.longitude), (30.71, -94.93)) < 10
    assert zip_centroid("09001") is None  # APO AE: no city to place it by


@pytest.mark.parametrize(
    ("city", "state", "where"),
    [
        ("Kennesaw", "GA", (34.02, -84.62)),
        ("Indianapolis", "IN", (39.77, -86.16)),
        ("Birmingham", "AL", (33.52, -86.80)),
        ("Chicago", "IL", (41.88, -87.63)),
    ],
)
def test_a_city_centroid_lies_in_the_city(
    city: str, state: str, where: tuple[float, float]
) -> None:
    found = city_centroid(city, state)
    assert found is not None
    assert _miles((found.latitude, found.longitude), where) < 15


def test_a_zip_plus_4_is_found_by_its_first_five_digits() -> None:
    place = zip_centroid("60614-1234")
    assert place is not None
    assert (place.city, place.state) == ("Chicago", "IL")
