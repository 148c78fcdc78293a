"""Distance and spatial pre-filters: the only place that knows which database it is on.

Distance is the great-circle (haversine) distance on a sphere of radius
6371.0088 km, computed with the same SQL expression on SQLite and PostgreSQL
so both backends return identical numbers. The spatial index (PostGIS GiST on
`locations.geog`, SQLite R*Tree `locations_rtree`) only narrows the candidates;
the exact test is always on the haversine distance or on latitude/longitude.
"""

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    and_,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.locations.models import Location

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344
# A radius test allows this much float noise, so a practice exactly on the radius
# (as computed in Python, or on the other backend) is inside on both backends.
DISTANCE_SLACK_KM = 1e-9

_rtree = sql_table(
    "locations_rtree",
    column("id"),
    column("min_lat"),
    column("max_lat"),
    column("min_lon"),
    column("max_lon"),
)
# R*Tree stores 32-bit floats rounded outwards; widen the query box a little more.
_RTREE_MARGIN_DEGREES = 1e-4


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude rectangle; west > east means it crosses the antimeridian."""

    west: float
    south: float
    east: float
    north: float

    def longitude_ranges(self) -> list[tuple[float, float]]:
        if self.west <= self.east:
            return [(self.west, self.east)]
        return [(self.west, 180.0), (-180.0, self.east)]


class _GreatCircleKm(FunctionElement[float]):
    """`great_circle_km(lat, lon, origin_lat_rad, origin_lon_rad, cos_origin_lat)` in SQL.

    One small node instead of a forty-node expression tree: cheap to cache-key on
    every request, and rendered so the haversine term is evaluated once per row.
    """

    name = "great_circle_km"
    type = Float()
    inherit_cache = True


@compiles(_GreatCircleKm)
def _render_great_circle(element: _GreatCircleKm, compiler: SQLCompiler, **kw: Any) -> str:
    lat, lon, lat0, lon0, cos_lat0 = (compiler.process(c, **kw) for c in element.clauses)
    term = (
        f"power(sin((radians({lat}) - {lat0}) / 2.0), 2) + {cos_lat0} * cos(radians({lat}))"
        f" * power(sin((radians({lon}) - {lon0}) / 2.0), 2)"
    )
    # Rounding can push the term a hair above 1, where asin is undefined.
    least = "LEAST" if compiler.dialect.name == "postgresql" else "min"
    return f"(2 * {EARTH_RADIUS_KM!r} * asin(sqrt({least}(1.0, {term}))))"


def haversine_km(latitude: float, longitude: float) -> ColumnElement[float]:
    """SQL: the distance in km from a fixed point to each location."""
    lat1 = math.radians(latitude)
    return _GreatCircleKm(
        Location.latitude,
        Location.longitude,
        literal(lat1, Float),
        literal(math.radians(longitude), Float),
        literal(math.cos(lat1), Float),
    )


def haversine_km_py(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The same distance in Python (for origins and covering circles)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def box_around(latitude: float, longitude: float, radius_km: float) -> Box:
    """The smallest lat/lon rectangle holding every point within radius_km."""
    angular = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angular)
    south, north = max(-90.0, latitude - dlat), min(90.0, latitude + dlat)
    if north >= 90.0 or south <= -90.0 or angular >= math.pi / 2:
        return Box(-180.0, south, 180.0, north)  # a pole is inside: every longitude
    dlon = math.degrees(math.asin(min(1.0, math.sin(angular) / math.cos(math.radians(latitude)))))
    if dlon >= 180.0:
        return Box(-180.0, south, 180.0, north)
    west, east = longitude - dlon, longitude + dlon
    if west < -180.0:
        west += 360.0
    if east > 180.0:
        east -= 360.0
    return Box(west, south, east, north)


def in_box(box: Box) -> ColumnElement[bool]:
    """Exact: the location's coordinates lie in the rectangle (edges included)."""
    longitude = or_(
        *(Location.longitude.between(low, high) for low, high in box.longitude_ranges())
    )
    return and_(Location.latitude.between(box.south, box.north), longitude)


def spatial_prefilter(
    session: Session, *, box: Box, center: tuple[float, float], reach_km: float
) -> ColumnElement[bool]:
    """An index-backed condition true for every location in `box` (and maybe a few more).

    `center` and `reach_km` describe a circle that covers the box: PostGIS uses it
    (ST_DWithin on the GiST index, on the sphere), SQLite uses the box (R*Tree).
    """
    if session.get_bind().dialect.name == "postgresql":
        point = func.ST_SetSRID(func.ST_MakePoint(center[1], center[0]), 4326)
        # A hair wider than asked: the sphere PostGIS uses differs from ours by < 1e-8.
        meters = reach_km * 1000 * (1 + 1e-6) + 1.0
        return func.ST_DWithin(
            literal_column("locations.geog"), func.geography(point), meters, False, type_=Boolean
        )
    margin = _RTREE_MARGIN_DEGREES
    ranges = [
        and_(_rtree.c.max_lon >= low - margin, _rtree.c.min_lon <= high + margin)
        for low, high in box.longitude_ranges()
    ]
    candidates = select(_rtree.c.id).where(
        _rtree.c.max_lat >= box.south - margin,
        _rtree.c.min_lat <= box.north + margin,
        or_(*ranges),
    )
    return Location.id.in_(candidates)


def covering_reach_km(box: Box, center: tuple[float, float]) -> float:
    """A radius around `center` that holds the whole box (corners and edge midpoints)."""
    lat_mid = (box.south + box.north) / 2
    points = [
        (lat, lon)
        for lat in (box.south, lat_mid, box.north)
        for lon in (box.west, box.east, center[1])
    ]
    return max(haversine_km_py(center[0], center[1], lat, lon) for lat, lon in points) * 1.05 + 1.0
