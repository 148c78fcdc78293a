"""Migrations run up, down and up again on each backend and match the models exactly."""

import re
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Base, create_db_engine
from app.locations.models import FacilityType, GeocodePrecision
from app.migrate import downgrade, prepare_database, upgrade
from app.search import projection
from app.search.models import SearchPractice
from tests.conftest import BACKENDS
from tests.search.spatial_index import assert_index_matches


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
                and "_rtree" not in repr(change)
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


_RECORDS = [
    "INSERT INTO locations (id, address_key, address_line1, city, state, zip, latitude, longitude,"
    " geocode_precision, accessibility, created_at, updated_at) VALUES"
    " (7, 'k', '1 Main St', 'Chicago', 'IL', '60614', 41.9, -87.6, 'provided', '[]',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO therapists (id, npi, first_name, last_name, first_name_key, last_name_key,"
    " credentials, source, created_at, updated_at) VALUES (3, '1234567893', 'Ada', 'Lee', 'ada',"
    " 'lee', '[]', 'api', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO practices (id, therapist_id, location_id, accepting_new_patients, telehealth,"
    " home_visits, created_at, updated_at) VALUES (5, 3, 7, true, false, false,"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
]


def _insert_records(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in _RECORDS:
            connection.execute(text(statement))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_spatial_index_follows_the_search_projection(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    """The R*Tree (SQLite) and the geography column (PostGIS) track every projection row."""
    engine = create_db_engine(fresh_database_url(backend_name))
    if backend_name == "sqlite":
        position = text("SELECT min_lat, max_lat, min_lon, max_lon FROM search_practices_rtree")
    else:
        position = text("SELECT ST_Y(geog::geometry), ST_Y(geog::geometry), ST_X(geog::geometry),"
                        " ST_X(geog::geometry) FROM search_practices")  # fmt: skip

    def positions() -> list[tuple[float, ...]]:
        with engine.connect() as connection:
            return [tuple(round(v, 4) for v in row) for row in connection.execute(position)]

    try:
        upgrade(engine)
        _insert_records(engine)
        with Session(engine) as session, session.begin():
            projection.refresh(session, [3])
        assert positions() == [(41.9, 41.9, -87.6, -87.6)]
        with Session(engine) as session, session.begin():
            session.execute(text("UPDATE locations SET latitude = 40.7, longitude = -74.0"))
            projection.refresh(session, [3])
        assert positions() == [(40.7, 40.7, -74.0, -74.0)]
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM practices"))  # the row goes with it
        assert positions() == []
    finally:
        engine.dispose()


# A second practice of the therapist, and its row as the code of revision 0004 wrote
# it: a plain INSERT, with the R*Tree left to the trigger that revision had.
_SECOND_PRACTICE = [
    "INSERT INTO locations (id, address_key, address_line1, city, state, zip, latitude, longitude,"
    " geocode_precision, accessibility, created_at, updated_at) VALUES"
    " (8, 'n', '2 Broadway', 'New York', 'NY', '10004', 40.7, -74.0, 'provided', '[]',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO practices (id, therapist_id, location_id, accepting_new_patients, telehealth,"
    " home_visits, created_at, updated_at) VALUES (6, 3, 8, true, true, false,"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO search_practices (id, practice_id, therapist_id, latitude, longitude, x, y, z,"
    " accepting_new_patients, telehealth, last_name_key, first_name_key, specialties,"
    " conditions, certifications, languages, services, plan_ids, plans_as_of) VALUES"
    " (99, 6, 3, 40.7, -74.0, 0, 0, 1, true, true, 'lee', 'ada', ' ', ' ', ' ', ' ', ' ', ' ',"
    " CURRENT_DATE)",
]


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_the_spatial_index_holds_every_row_across_migrations(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    try:
        upgrade(engine)
        _insert_records(engine)
        prepare_database(engine)
        assert len(assert_index_matches(engine)) == 1

        downgrade(engine, "0004")  # its writers leave the R*Tree to a trigger again
        assert len(assert_index_matches(engine)) == 1
        with engine.begin() as connection:
            for statement in _SECOND_PRACTICE:
                connection.execute(text(statement))
        assert len(assert_index_matches(engine)) == 2

        upgrade(engine)
        assert len(assert_index_matches(engine)) == 2
        with Session(engine) as session, session.begin():
            projection.refresh(session, [3])
        assert sorted(assert_index_matches(engine).values()) == [(40.7, -74.0), (41.9, -87.6)]

        downgrade(engine, "0002")  # the projection and its index go; a rebuild brings both
        prepare_database(engine)
        assert len(assert_index_matches(engine)) == 2
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_prepare_database_builds_the_projection_for_existing_records(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    try:
        upgrade(engine, "0002")
        _insert_records(engine)
        prepare_database(engine)
        with engine.connect() as connection:
            row = connection.execute(
                select(SearchPractice.practice_id, SearchPractice.therapist_id,
                       SearchPractice.latitude, SearchPractice.last_name_key)
            ).one()  # fmt: skip
        assert tuple(row) == (5, 3, 41.9, "lee")
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


def _constraints_and_indexes(engine: Engine) -> dict[str, str]:
    """Every CHECK constraint's text (per table on SQLite) and every index, by name."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index')")
            )
        else:
            rows = connection.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
                    " UNION ALL SELECT indexname, indexdef FROM pg_indexes"
                    " WHERE schemaname = 'public'"
                )
            )
        return {name: sql or "" for name, sql in rows}


# Three rows of the tables a roster import writes most, with enum columns.
_ENUM_WRITES = {
    "therapists": "INSERT INTO therapists (npi, first_name, last_name, first_name_key,"
    " last_name_key, gender, credentials, source, created_at, updated_at) VALUES ('1245319599',"
    " 'Bo', 'Ng', 'bo', 'ng', 'male', '[]', 'import', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "locations": "INSERT INTO locations (address_key, address_line1, city, state, zip, latitude,"
    " longitude, geocode_precision, facility_type, accessibility, created_at, updated_at) VALUES"
    " ('m', '3 Main St', 'Chicago', 'IL', '60614', 41.9, -87.6, 'zip_centroid', 'home_health',"
    " '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "search_practices": _SECOND_PRACTICE[2],
}


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_enum_checks_still_refuse_unknown_values_and_downgrade_restores_the_schema(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    try:
        upgrade(engine, "0005")
        before = _constraints_and_indexes(engine)
        upgrade(engine)
        after = _constraints_and_indexes(engine)
        unused = {"ix_locations_state", "ix_locations_zip", "ix_therapists_first_name_key",
                  "ix_therapists_last_name_key"}  # fmt: skip
        assert unused <= set(before)
        assert unused & set(after) == set()
        if backend_name == "sqlite":
            # No IN list left in a CHECK: SQLite would build a B-tree of it per row.
            assert [name for name, sql in after.items() if re.search(r"CHECK \(\w+ IN", sql)] == []
            with engine.connect() as connection:
                for table, statement in _ENUM_WRITES.items():
                    program = connection.exec_driver_sql(f"EXPLAIN {statement}").all()
                    assert "OpenEphemeral" not in {row[1] for row in program}, table

        _insert_records(engine)
        refused = [
            "UPDATE therapists SET gender = 'unknown'",
            "UPDATE therapists SET source = 'scraped'",
            "UPDATE locations SET facility_type = 'spa'",
            "UPDATE locations SET geocode_precision = 'rooftop'",
        ]
        for statement in refused:
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(text(statement))
        with engine.begin() as connection:  # every value the enums have still passes
            for gender in ("female", "male", "other", None):
                connection.execute(text("UPDATE therapists SET gender = :g"), {"g": gender})
            for facility_type in (*FacilityType, None):
                connection.execute(
                    text("UPDATE locations SET facility_type = :f"), {"f": facility_type}
                )

        downgrade(engine, "0005")
        assert _constraints_and_indexes(engine) == before
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_city_centroid_is_a_precision_from_0007_and_downgrade_restores_the_schema(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    set_precision = text("UPDATE locations SET geocode_precision = :p")
    try:
        upgrade(engine, "0006")
        before = _constraints_and_indexes(engine)
        _insert_records(engine)
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(set_precision, {"p": "city_centroid"})

        upgrade(engine)
        with engine.begin() as connection:
            for precision in GeocodePrecision:
                connection.execute(set_precision, {"p": precision.value})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(set_precision, {"p": "rooftop"})
        if backend_name == "sqlite":
            after = _constraints_and_indexes(engine)
            assert [name for name, sql in after.items() if re.search(r"CHECK \(\w+ IN", sql)] == []

        downgrade(engine, "0006")  # the city-placed row takes the nearest older value
        assert _constraints_and_indexes(engine) == before
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT geocode_precision FROM locations")).scalar()
        assert stored == "zip_centroid"
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_a_practices_flags_may_be_unknown_and_go_back_to_false_on_downgrade(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    engine = create_db_engine(fresh_database_url(backend_name))
    flags = text(
        "SELECT p.accepting_new_patients, p.telehealth, s.accepting_new_patients, s.telehealth"
        " FROM practices p JOIN search_practices s ON s.practice_id = p.id"
    )
    try:
        upgrade(engine, "0007")
        _insert_records(engine)
        with Session(engine) as session, session.begin():
            projection.refresh(session, [3])
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("UPDATE practices SET accepting_new_patients = NULL"))
        upgrade(engine)
        with Session(engine) as session, session.begin():
            session.execute(
                text("UPDATE practices SET accepting_new_patients = NULL, telehealth = NULL")
            )
            projection.refresh(session, [3])
        with engine.connect() as connection:
            assert tuple(connection.execute(flags).one()) == (None, None, None, None)

        downgrade(engine, "0007")
        with engine.connect() as connection:
            assert tuple(connection.execute(flags).one()) == (False, False, False, False)
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("UPDATE practices SET telehealth = NULL"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_flags_no_file_stated_become_unknown(
    backend_name: str, fresh_database_url: Callable[[str], str]
) -> None:
    """What the national file seeded and no network lists never had its flags stated."""
    engine = create_db_engine(fresh_database_url(backend_name))
    flags = text(
        "SELECT p.id, p.accepting_new_patients, p.telehealth, s.accepting_new_patients,"
        " s.telehealth FROM practices p JOIN search_practices s ON s.practice_id = p.id"
        " ORDER BY p.id"
    )
    try:
        upgrade(engine, "0007")
        _insert_records(engine)  # practice 5: an API therapist's, accepting, no telehealth
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO therapists (id, npi, first_name, last_name, first_name_key,"
                    " last_name_key, credentials, source, created_at, updated_at) VALUES (4,"
                    " '1255334207', 'Bo', 'Ng', 'bo', 'ng', '[]', 'nppes', CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO practices (id, therapist_id, location_id, accepting_new_patients,"
                    " telehealth, home_visits, created_at, updated_at) VALUES (6, 4, 7, false,"
                    " false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        with Session(engine) as session, session.begin():
            projection.refresh(session, [3, 4])
        upgrade(engine)
        with engine.connect() as connection:
            assert [tuple(row) for row in connection.execute(flags)] == [
                (5, True, False, True, False),
                (6, None, None, None, None),
            ]
    finally:
        engine.dispose()
