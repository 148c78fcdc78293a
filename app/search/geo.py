"""Distance and spatial pre-filters: the only place that knows which database it is on.

Distance is the great-circle distance on a sphere of radius 6371.0088 km. SQL
computes only the squared chord between unit vectors (additions and
multiplications, identical on SQLite and PostgreSQL), filters and ranks by it,
and Python turns it into kilometres, so both backends return identical numbers.
The spatial index (PostGIS GiST on `search_practices.geog`, SQLite R*Tree
`search_practices_rtree`) only narrows the candidates; the exact tests are on
the chord or on latitude/longitude.

On SQLite the writers of the projection fill the R*Tree themselves, through
`index_new_rows()` or `index_rows()`, after each INSERT into it: a trigger per
row cost about three times as much (see migration 0005). Updates and deletes
still follow by trigger.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.db import one_of
from app.search.models import SearchPractice

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344
# A radius test allows this much float noise, so a practice exactly on the radius
# (as computed in Python, or on the other backend) is inside on both backends.
DISTANCE_SLACK_KM = 1e-9

_rtree = sql_table(
    "search_practices_rtree",
    column("id"),
    column("min_lat"),
    column("max_lat"),
    column("min_lon"),
    column("max_lon"),
)
# R*Tree stores 32-bit floats rounded outwards; widen the query box a little more.
_RTREE_MARGIN_DEGREES = 1e-4


def index_new_rows(session: Session, therapist_ids: Sequence[int] | None = None) -> None:
    """Adds the projection rows of these therapists (all rows when None) to the R*Tree.

    Every INSERT into search_practices calls it once its rows are in, for the
    therapists it wrote: on SQLite no trigger does it. One statement in key order
    (spatial order) instead of a trigger per row in file order: a 100,000-record
    import spent 3 s in the trigger and spends about 1.2 s here. The R*Tree's
    primary key refuses a row added twice, so a missed DELETE cannot go unnoticed.
    PostGIS derives and indexes `geog` itself.
    """
    if session.get_bind().dialect.name == "postgresql":
        return
    rows = select(
        SearchPractice.id,
        SearchPractice.latitude.label("min_lat"),
        SearchPractice.latitude.label("max_lat"),
        SearchPractice.longitude.label("min_lon"),
        SearchPractice.longitude.label("max_lon"),
    ).order_by(SearchPractice.id)
    if therapist_ids is not None:
        if not therapist_ids:
            return
        rows = rows.where(one_of(SearchPractice.therapist_id, therapist_ids, "sqlite"))
    session.execute(
        insert(_rtree).from_select(["id", "min_lat", "max_lat", "min_lon", "max_lon"], rows)
    )


def index_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Adds projection rows just inserted to the R*Tree, from the values written.

    As `index_new_rows`, in key order, without reading the rows back: a bulk
    writer holding them (a roster import) spares a look-up per row.
    """
    if session.get_bind().dialect.name == "postgresql" or not rows:
        return
    boxes = sorted(
        (row["id"], row["latitude"], row["latitude"], row["longitude"], row["longitude"])
        for row in rows
    )
    session.connection().exec_driver_sql(
        f"INSERT INTO {_rtree.name} (id, min_lat, max_lat, min_lon, max_lon) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?)",
        boxes,
    )


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


class _ChordSquared(FunctionElement[float]):
    """`chord²(x, y, z, x0, y0, z0)`: the squared straight-line distance between two
    unit vectors. Plain arithmetic, monotonic in the great-circle distance, so SQL
    can filter and rank by it; `km_from_chord_squared` turns it into kilometres.
    One small node: cheap to cache-key on every request."""

    name = "chord_squared"
    type = Float()
    inherit_cache = True


@compiles(_ChordSquared)
def _render_chord_squared(element: _ChordSquared, compiler: SQLCompiler, **kw: Any) -> str:
    x, y, z, x0, y0, z0 = (compiler.process(c, **kw) for c in element.clauses)
    terms = (f"({a} - {b}) * ({a} - {b})" for a, b in ((x, x0), (y, y0), (z, z0)))
    return f"({' + '.join(terms)})"


def unit_vector(latitude: float, longitude: float) -> tuple[float, float, float]:
    """The point on the unit sphere, computed as the projection computes it in SQL."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    return math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)


def chord_squared() -> ColumnElement[float]:
    """SQL: chord² from the origin (bound by `origin_values`) to each projection row."""
    return _ChordSquared(
        SearchPractice.x, SearchPractice.y, SearchPractice.z,
        *(bindparam(name, type_=Float) for name in _ORIGIN),
    )  # fmt: skip


def origin_values(latitude: float, longitude: float) -> dict[str, float]:
    return dict(zip(_ORIGIN, unit_vector(latitude, longitude), strict=True))


_ORIGIN = ("origin_x", "origin_y", "origin_z")


def km_from_chord_squared(chord2: float) -> float:
    """The great-circle distance for a chord²: the same number on every backend,
    since the database only adds and multiplies and Python does the rest."""
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(chord2) / 2))


def chord_squared_within(radius_km: float) -> float:
    """The largest chord² whose distance is within radius_km (plus float slack)."""
    angle = min((radius_km + DISTANCE_SLACK_KM) / EARTH_RADIUS_KM, math.pi)
    return (2 * math.sin(angle / 2)) ** 2


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


def in_box(longitude_ranges: int) -> ColumnElement[bool]:
    """Exact: the practice's coordinates lie in the rectangle bound by `box_values`
    (edges included); `longitude_ranges` is 2 for a box across the antimeridian."""
    longitude = or_(
        *(
            SearchPractice.longitude.between(
                bindparam(f"box_west_{i}", type_=Float), bindparam(f"box_east_{i}", type_=Float)
            )
            for i in range(longitude_ranges)
        )
    )
    latitude = SearchPractice.latitude.between(
        bindparam("box_south", type_=Float), bindparam("box_north", type_=Float)
    )
    return and_(latitude, longitude)


def box_values(box: Box) -> dict[str, float]:
    values = {"box_south": box.south, "box_north": box.north}
    for i, (low, high) in enumerate(box.longitude_ranges()):
        values |= {f"box_west_{i}": low, f"box_east_{i}": high}
    return values


def near(
    statement: Select[*tuple[Any, ...]], *, dialect: str, longitude_ranges: int
) -> Select[*tuple[Any, ...]]:
    """`statement` (over search_practices) narrowed by the spatial index to the rows in
    the box bound by `near_values`, and maybe a few more: callers still apply the
    exact test. `longitude_ranges` is 2 for a box across the antimeridian.

    PostGIS uses a circle covering the box (the GiST index, as ST_DWithin would),
    SQLite the box itself (R*Tree join).
    """
    if dialect == "postgresql":
        point = func.geography(
            func.ST_SetSRID(
                func.ST_MakePoint(
                    bindparam("near_lon", type_=Float), bindparam("near_lat", type_=Float)
                ),
                4326,
            )
        )
        # The GiST box test alone (what ST_DWithin does before its exact recheck): the
        # exact test is the caller's chord, so the costly spheroid recheck is skipped.
        return statement.where(
            literal_column("search_practices.geog").op("&&")(
                func._ST_Expand(point, bindparam("near_meters", type_=Float))
            )
        )
    ranges = [
        and_(
            _rtree.c.max_lon >= bindparam(f"near_west_{i}", type_=Float),
            _rtree.c.min_lon <= bindparam(f"near_east_{i}", type_=Float),
        )
        for i in range(longitude_ranges)
    ]
    return statement.join(_rtree, _rtree.c.id == SearchPractice.id).where(
        _rtree.c.max_lat >= bindparam("near_south", type_=Float),
        _rtree.c.min_lat <= bindparam("near_north", type_=Float),
        or_(*ranges),
    )


def near_values(
    dialect: str, box: Box, center: tuple[float, float], reach_km: float
) -> dict[str, float]:
    """The values `near` binds: a circle of `reach_km` around `center` that covers `box`
    (PostGIS), or the box (SQLite)."""
    if dialect == "postgresql":
        # A hair wider than asked: the sphere PostGIS uses differs from ours by < 1e-8.
        meters = reach_km * 1000 * (1 + 1e-6) + 1.0
        return {"near_lat": center[0], "near_lon": center[1], "near_meters": meters}
    margin = _RTREE_MARGIN_DEGREES
    values = {"near_south": box.south - margin, "near_north": box.north + margin}
    for i, (low, high) in enumerate(box.longitude_ranges()):
        values |= {f"near_west_{i}": low - margin, f"near_east_{i}": high + margin}
    return values


def covering_reach_km(box: Box, center: tuple[float, float]) -> float:
    """A radius around `center` that holds the whole box (corners and edge midpoints)."""
    lat_mid = (box.south + box.north) / 2
    points = [
        (lat, lon)
        for lat in (box.south, lat_mid, box.north)
        for lon in (box.west, box.east, center[1])
    ]
    return max(haversine_km_py(center[0], center[1], lat, lon) for lat, lon in points) * 1.05 + 1.0
