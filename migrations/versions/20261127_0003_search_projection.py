"""The search projection: one flat, spatially ordered row per practice.

Search reads `search_practices` alone, so the spatial index moves there: the
R*Tree (SQLite) and the generated geography column with its GiST index
(PostGIS) on `locations` are replaced by the same on the projection. The rows
are filled after the upgrade by `prepare_database` (a derived table: see
app/search/projection.py), not here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_KEY = sa.String(length=100).with_variant(sa.String(length=100, collation="C"), "postgresql")
CODE_LIST = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
FACILITY_TYPES = (
    "private_practice", "hospital_outpatient", "outpatient_clinic", "home_health",
    "skilled_nursing", "aquatic_center",
)  # fmt: skip


def _sqlite_spatial(table: str) -> list[str]:
    """An R*Tree over the table's points, kept in step by triggers. Its coordinates are
    32-bit floats rounded outwards: a pre-filter; exact tests use the row's values."""
    return [
        f"CREATE VIRTUAL TABLE {table}_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon)",
        f"""CREATE TRIGGER {table}_rtree_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO {table}_rtree (id, min_lat, max_lat, min_lon, max_lon)
            VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude);
        END""",
        f"""CREATE TRIGGER {table}_rtree_update AFTER UPDATE OF id, latitude, longitude
        ON {table} BEGIN
            DELETE FROM {table}_rtree WHERE id = old.id;
            INSERT INTO {table}_rtree (id, min_lat, max_lat, min_lon, max_lon)
            VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude);
        END""",
        f"""CREATE TRIGGER {table}_rtree_delete AFTER DELETE ON {table} BEGIN
            DELETE FROM {table}_rtree WHERE id = old.id;
        END""",
        f"INSERT INTO {table}_rtree SELECT id, latitude, latitude, longitude, longitude"
        f" FROM {table}",
    ]


def _sqlite_drop_spatial(table: str) -> list[str]:
    return [
        *(
            f"DROP TRIGGER IF EXISTS {table}_rtree_{event}"
            for event in ("insert", "update", "delete")
        ),
        f"DROP TABLE IF EXISTS {table}_rtree",
    ]


def _postgis_spatial(table: str) -> list[str]:
    """A geography column derived from latitude/longitude by the database, with GiST."""
    return [
        f"""ALTER TABLE {table} ADD COLUMN geog geography(Point, 4326)
            GENERATED ALWAYS AS (
                ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography
            ) STORED""",
        f"CREATE INDEX ix_{table}_geog ON {table} USING gist (geog)",
    ]


def _postgis_drop_spatial(table: str) -> list[str]:
    return [f"DROP INDEX IF EXISTS ix_{table}_geog", f"ALTER TABLE {table} DROP COLUMN geog"]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "search_practices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("z", sa.Float(), nullable=False),
        sa.Column("accepting_new_patients", sa.Boolean(), nullable=False),
        sa.Column("telehealth", sa.Boolean(), nullable=False),
        sa.Column("facility_type", sa.Enum(*FACILITY_TYPES, name="search_facility_type",
                  native_enum=False, create_constraint=True, length=40), nullable=True),
        sa.Column("gender", sa.Enum("female", "male", "other", name="search_gender",
                  native_enum=False, create_constraint=True, length=40), nullable=True),
        sa.Column("last_name_key", NAME_KEY, nullable=False),
        sa.Column("first_name_key", NAME_KEY, nullable=False),
        sa.Column("specialties", CODE_LIST, nullable=False),
        sa.Column("conditions", CODE_LIST, nullable=False),
        sa.Column("certifications", CODE_LIST, nullable=False),
        sa.Column("languages", CODE_LIST, nullable=False),
        sa.Column("services", CODE_LIST, nullable=False),
        sa.Column("primary_specialty", sa.String(length=10), nullable=True),
        sa.Column("plan_ids", CODE_LIST, nullable=False),
        sa.Column("plans_as_of", sa.Date(), nullable=False),
        sa.Column("plans_stale_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], ondelete="CASCADE",
                                name=op.f("fk_search_practices_practice_id_practices")),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapists.id"], ondelete="CASCADE",
                                name=op.f("fk_search_practices_therapist_id_therapists")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_practices")),
        sa.UniqueConstraint("practice_id", name=op.f("uq_search_practices_practice_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_search_practices_therapist_id"), "search_practices", ["therapist_id"])
    if op.get_bind().dialect.name == "postgresql":
        _run(_postgis_drop_spatial("locations") + _postgis_spatial("search_practices"))
    else:
        _run(_sqlite_drop_spatial("locations") + _sqlite_spatial("search_practices"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(_postgis_drop_spatial("search_practices") + _postgis_spatial("locations"))
    else:
        _run(_sqlite_drop_spatial("search_practices") + _sqlite_spatial("locations"))
    op.drop_index(op.f("ix_search_practices_therapist_id"), table_name="search_practices")
    op.drop_table("search_practices")
