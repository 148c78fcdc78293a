"""Migrations run up, down and up again on each backend and match the models exactly."""

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db import Base, create_db_engine
from app.migrate import downgrade, upgrade
from tests.conftest import BACKENDS


# Reflection does not know PostGIS types; the geography column is managed by hand.
@pytest.mark.filterwarnings("ignore:Did not recognize type 'geography'")
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_upgrade_downgrade_upgrade(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            diff = [
                change
                for change in compare_metadata(context, Base.metadata)
                if "geog" not in repr(change) and "spatial_ref_sys" not in repr(change)
                and "locations_rtree" not in repr(change)
            ]  # fmt: skip
        assert diff == [], f"models and migrations differ: {diff}"

        downgrade(engine, "base")
        left = set(inspect(engine).get_table_names()) - {"alembic_version", "spatial_ref_sys"}
        assert left == set()

        upgrade(engine)
        assert {t.name for t in Base.metadata.sorted_tables} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


_INSERT = text(
    "INSERT INTO locations (address_key, address_line1, city, state, zip, latitude, longitude,"
    " geocode_precision, accessibility, created_at, updated_at) VALUES"
    " ('k', '1 Main St', 'Chicago', 'IL', '60614', 41.9, -87.6, 'provided', '[]',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_spatial_index_follows_every_write(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    """The R*Tree (SQLite) and the geography column (PostGIS) track latitude/longitude."""
    engine = create_db_engine(fresh_database_url(backend_name))
    if backend_name == "sqlite":
        position = text("SELECT min_lat, max_lat, min_lon, max_lon FROM locations_rtree")
    else:
        position = text("SELECT ST_Y(geog::geometry), ST_Y(geog::geometry), ST_X(geog::geometry),"
                        " ST_X(geog::geometry) FROM locations")  # fmt: skip
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(_INSERT)
            rows = connection.execute(position).all()
            assert [tuple(round(v, 4) for v in row) for row in rows] == [(41.9, 41.9, -87.6, -87.6)]
            connection.execute(text("UPDATE locations SET latitude = 40.7, longitude = -74.0"))
            rows = connection.execute(position).all()
            assert [tuple(round(v, 4) for v in row) for row in rows] == [(40.7, 40.7, -74.0, -74.0)]
            connection.execute(text("DELETE FROM locations"))
            assert connection.execute(position).all() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_name_keys_are_backfilled_for_existing_therapists(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO therapists (npi, first_name, last_name, credentials, source,"
                    " created_at, updated_at) VALUES ('1234567893', 'Zoë', 'García  López', '[]',"
                    " 'api', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        upgrade(engine)
        with engine.connect() as connection:
            keys = connection.execute(
                text("SELECT first_name_key, last_name_key FROM therapists")
            ).one()
        assert tuple(keys) == ("zoe", "garcia lopez")
    finally:
        engine.dispose()
