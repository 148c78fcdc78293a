"""The search's geometry, as properties, near the poles and across the antimeridian.

Distances come from the chord between unit vectors (what SQL computes) turned
into kilometres; the oracle's haversine is the independent reference.
"""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.search import geo
from app.search.params import _parse_bbox
from app.search.schemas import MAX_BBOX_KM2
from tests.search.oracle import EARTH_RADIUS_KM, haversine_km

# Whole range, plus the edges where formulas break: the poles, and both sides of
# the antimeridian.
latitudes = (
    st.floats(-90, 90)
    | st.floats(89.9, 90)
    | st.floats(-90, -89.9)
    | st.sampled_from([-90.0, 90.0, 0.0])
)
longitudes = (
    st.floats(-180, 180)
    | st.floats(179.9, 180)
    | st.floats(-180, -179.9)
    | st.sampled_from([-180.0, 180.0, 0.0])
)
radii_km = st.floats(0.01, 400)  # the search's largest radius is 400 km (250 mi)


def chord_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    a, b = geo.unit_vector(lat1, lon1), geo.unit_vector(lat2, lon2)
    return geo.km_from_chord_squared(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)))


@given(latitudes, longitudes, latitudes, longitudes)
def test_distance_agrees_with_haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    expected = haversine_km(lat1, lon1, lat2, lon2)
    # Both formulas lose digits near antipodal points (asin near 1): a metre there,
    # a millimetre within the search's 400 km.
    tolerance = 1e-6 if expected <= 1_000 else 1e-3
    assert abs(chord_km(lat1, lon1, lat2, lon2) - expected) <= tolerance


@given(latitudes, st.floats(0, 1e-3))
def test_points_either_side_of_the_antimeridian_are_close(lat: float, step: float) -> None:
    # -180 and 180 are one meridian; 179.999 and -179.999 are 0.002 degrees apart.
    assert chord_km(lat, -180.0, lat, 180.0) <= 1e-6
    degrees_apart = 2 * step
    along_the_parallel = math.radians(degrees_apart) * EARTH_RADIUS_KM * math.cos(math.radians(lat))
    assert chord_km(lat, 180.0 - step, lat, -180.0 + step) <= along_the_parallel + 1e-6


def destination(lat: float, lon: float, bearing: float, km: float) -> tuple[float, float]:
    """The point `km` from (lat, lon) along `bearing` (radians), on the sphere."""
    phi, lam, delta = math.radians(lat), math.radians(lon), km / EARTH_RADIUS_KM
    phi2 = math.asin(
        math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(bearing)
    )
    lam2 = lam + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(phi),
        math.cos(delta) - math.sin(phi) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lam2) + 540) % 360 - 180


def in_box(box: geo.Box, lat: float, lon: float, slack: float = 1e-9) -> bool:
    inside_lat = box.south - slack <= lat <= box.north + slack
    inside_lon = any(
        low - slack <= lon <= high + slack for low, high in box.longitude_ranges()
    ) or (abs(lon) >= 180 - slack and any(abs(edge) == 180 for edge in (box.west, box.east)))
    return inside_lat and inside_lon


@given(latitudes, longitudes, radii_km, st.lists(st.floats(0, 2 * math.pi), min_size=1))
def test_the_box_around_a_circle_holds_every_point_of_it(
    lat: float, lon: float, radius: float, bearings: list[float]
) -> None:
    box = geo.box_around(lat, lon, radius)
    for bearing in [*bearings, 0, math.pi / 2, math.pi, 3 * math.pi / 2]:
        point = destination(lat, lon, bearing, radius * (1 - 1e-9))
        assert in_box(box, *point), (box, point)


@st.composite
def bboxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """Viewports anywhere, poles and antimeridian included, up to 12° by 12°: always
    within the area limit (at most about 1.8 million km², at the equator)."""
    west = draw(longitudes)
    east = west + draw(st.floats(1e-6, 12))
    if east > 180:
        east -= 360
    assume(west != east)
    south = draw(latitudes)
    north = min(90.0, south + draw(st.floats(0, 12)))
    return west, south, east, north


@given(longitudes, longitudes, latitudes, latitudes)
def test_a_bbox_is_refused_exactly_when_it_covers_more_than_the_limit(
    west: float, east: float, lat1: float, lat2: float
) -> None:
    assume(west != east)
    south, north = sorted((lat1, lat2))
    width = east - west if west < east else east + 360 - west
    area = (
        geo.EARTH_RADIUS_KM**2
        * math.radians(width)
        * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    )
    assume(abs(area - MAX_BBOX_KM2) > 1)  # clear of the float noise at the edge
    text = ",".join(map(repr, (west, south, east, north)))
    if area > MAX_BBOX_KM2:
        with pytest.raises(InvalidInput, match="zoom in"):
            _parse_bbox(text)
    else:
        assert _parse_bbox(text).bbox == (west, south, east, north)


@given(bboxes(), st.floats(0, 1), st.floats(0, 1))
def test_bbox_origin_and_box_hold_the_points_between_its_edges(
    bbox: tuple[float, float, float, float], across: float, up: float
) -> None:
    west, south, east, north = bbox
    origin = _parse_bbox(",".join(map(repr, bbox)))
    box = geo.Box(*origin.bbox)  # type: ignore[misc]
    assert in_box(box, origin.latitude, origin.longitude), "the centre is outside the box"
    width = east - west if west < east else east + 360 - west  # across the antimeridian
    lon = west + across * width
    lon = lon - 360 if lon > 180 else lon
    lat = south + up * (north - south)
    assert in_box(box, lat, lon)
    reach = geo.covering_reach_km(box, (origin.latitude, origin.longitude))
    assert haversine_km(origin.latitude, origin.longitude, lat, lon) <= reach


@given(bboxes(), st.floats(0.01, 0.99))
def test_bbox_box_holds_nothing_outside_its_longitudes(
    bbox: tuple[float, float, float, float], gap: float
) -> None:
    west, _, east, _ = bbox
    box = geo.Box(*_parse_bbox(",".join(map(repr, bbox))).bbox)  # type: ignore[misc]
    outside = 360 - (east - west if west < east else east + 360 - west)
    assume(outside > 1e-6)
    lon = east + gap * outside
    lon = lon - 360 if lon > 180 else lon
    assume(min(abs(lon - west), abs(lon - east)) > 1e-9)
    assert not any(low <= lon <= high for low, high in box.longitude_ranges())
