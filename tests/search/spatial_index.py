"""Checks that the spatial index holds exactly the projection's rows, at their points.

On SQLite the writers fill the R*Tree themselves (app.search.geo.index_new_rows) and
triggers follow updates and deletes; a writer that forgot would leave practices a
radius search cannot find. On PostGIS `geog` is generated from the row: checked the
same way, so one test speaks for both backends.
"""

from sqlalchemy import Connection, Engine, text

# The R*Tree keeps 32-bit floats rounded outwards, two steps at most: a box this small
# (the margin app.search.geo adds to its queries).
_RTREE_SLACK = 1e-4


def _rows(connection: Connection) -> dict[int, tuple[float, float]]:
    found = connection.execute(text("SELECT id, latitude, longitude FROM search_practices"))
    return {id_: (lat, lon) for id_, lat, lon in found}


def _indexed(connection: Connection) -> dict[int, tuple[float, ...]]:
    if connection.dialect.name == "postgresql":
        found = connection.execute(
            text("SELECT id, ST_Y(geog::geometry), ST_X(geog::geometry) FROM search_practices")
        )
        return {id_: (lat, lat, lon, lon) for id_, lat, lon in found}
    found = connection.execute(
        text("SELECT id, min_lat, max_lat, min_lon, max_lon FROM search_practices_rtree")
    )
    return {id_: tuple(bounds) for id_, *bounds in found}


def assert_index_matches(engine: Engine) -> dict[int, tuple[float, float]]:
    """The index has the table's ids, each at its row's point; returns id → (lat, lon)."""
    with engine.connect() as connection:
        rows, indexed = _rows(connection), _indexed(connection)
    assert sorted(indexed) == sorted(rows), "the spatial index and search_practices differ"
    for id_, (latitude, longitude) in rows.items():
        south, north, west, east = indexed[id_]
        assert south <= latitude <= north, (id_, latitude, south, north)
        assert west <= longitude <= east, (id_, longitude, west, east)
        assert north - south < _RTREE_SLACK, (id_, south, north)
        assert east - west < _RTREE_SLACK, (id_, west, east)
    return rows
