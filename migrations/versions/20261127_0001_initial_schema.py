"""Initial schema: directory records, networks, API keys, import jobs.

PostgreSQL gets a PostGIS geography column (generated from latitude and
longitude) with a GiST index; SQLite gets an R*Tree kept in step by triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 19:18:35.484562
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certifications",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("issuer", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_certifications")),
    )
    op.create_table(
        "conditions",
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_conditions")),
    )
    op.create_table(
        "languages",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_languages")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=400), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("zip", sa.String(length=10), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column(
            "geocode_precision",
            sa.Enum(
                "provided",
                "zip_centroid",
                name="geocode_precision",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("phone", sa.String(length=10), nullable=True),
        sa.Column("fax", sa.String(length=10), nullable=True),
        sa.Column(
            "facility_type",
            sa.Enum(
                "private_practice",
                "hospital_outpatient",
                "outpatient_clinic",
                "home_health",
                "skilled_nursing",
                "aquatic_center",
                name="facility_type",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=True,
        ),
        sa.Column("accessibility", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("address_key", name=op.f("uq_locations_address_key")),
    )
    op.create_index(
        op.f("ix_locations_facility_type"), "locations", ["facility_type"], unique=False
    )
    op.create_index(op.f("ix_locations_state"), "locations", ["state"], unique=False)
    op.create_index(op.f("ix_locations_zip"), "locations", ["zip"], unique=False)

    op.create_table(
        "payers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=300), nullable=True),
        sa.Column("phone", sa.String(length=10), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payers")),
        sa.UniqueConstraint("name", name=op.f("uq_payers_name")),
    )
    op.create_table(
        "services",
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_services")),
    )
    op.create_table(
        "specialties",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("classification", sa.String(length=200), nullable=False),
        sa.Column("specialization", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_specialties")),
        sa.UniqueConstraint("slug", name=op.f("uq_specialties_slug")),
    )
    op.create_table(
        "therapists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("npi", sa.String(length=10), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("middle_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("name_suffix", sa.String(length=20), nullable=True),
        sa.Column("credentials", sa.JSON(), nullable=False),
        sa.Column(
            "gender",
            sa.Enum(
                "female",
                "male",
                "other",
                name="gender",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=True,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "api",
                "import",
                "nppes",
                "demo",
                name="therapist_source",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapists")),
        sa.UniqueConstraint("npi", name=op.f("uq_therapists_npi")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "payer",
                name="api_key_role",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("payer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'payer' AND payer_id IS NOT NULL) OR (role = 'admin' AND payer_id IS NULL)",
            name=op.f("ck_api_keys_role_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["payers.id"],
            name=op.f("fk_api_keys_payer_id_payers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_payer_id"), "api_keys", ["payer_id"], unique=False)

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "plan_type",
            sa.Enum(
                "medicare_part_b",
                "medicare_advantage",
                "medicaid",
                "marketplace",
                "commercial",
                name="plan_type",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("hios_plan_id", sa.String(length=14), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_plans_payer_id_payers"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("hios_plan_id", name=op.f("uq_plans_hios_plan_id")),
        sa.UniqueConstraint("payer_id", "name", name=op.f("uq_plans_payer_id_name")),
    )
    op.create_table(
        "practices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("accepting_new_patients", sa.Boolean(), nullable=False),
        sa.Column("telehealth", sa.Boolean(), nullable=False),
        sa.Column("home_visits", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_practices_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_practices_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practices")),
    )
    op.create_index(op.f("ix_practices_location_id"), "practices", ["location_id"], unique=False)
    op.create_index(
        "uq_practices_therapist_location", "practices", ["therapist_id", "location_id"], unique=True
    )

    op.create_table(
        "therapist_certifications",
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("certification_code", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["certification_code"],
            ["certifications.code"],
            name=op.f("fk_therapist_certifications_certification_code_certifications"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_therapist_certifications_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "therapist_id", "certification_code", name=op.f("pk_therapist_certifications")
        ),
    )
    op.create_index(
        op.f("ix_therapist_certifications_certification_code"),
        "therapist_certifications",
        ["certification_code"],
        unique=False,
    )

    op.create_table(
        "therapist_conditions",
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("condition_slug", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["condition_slug"],
            ["conditions.slug"],
            name=op.f("fk_therapist_conditions_condition_slug_conditions"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_therapist_conditions_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "therapist_id", "condition_slug", name=op.f("pk_therapist_conditions")
        ),
    )
    op.create_index(
        op.f("ix_therapist_conditions_condition_slug"),
        "therapist_conditions",
        ["condition_slug"],
        unique=False,
    )

    op.create_table(
        "therapist_languages",
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("language_code", sa.String(length=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["language_code"],
            ["languages.code"],
            name=op.f("fk_therapist_languages_language_code_languages"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_therapist_languages_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "therapist_id", "language_code", name=op.f("pk_therapist_languages")
        ),
    )
    op.create_index(
        op.f("ix_therapist_languages_language_code"),
        "therapist_languages",
        ["language_code"],
        unique=False,
    )

    op.create_table(
        "therapist_services",
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("service_slug", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_slug"],
            ["services.slug"],
            name=op.f("fk_therapist_services_service_slug_services"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_therapist_services_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("therapist_id", "service_slug", name=op.f("pk_therapist_services")),
    )
    op.create_index(
        op.f("ix_therapist_services_service_slug"),
        "therapist_services",
        ["service_slug"],
        unique=False,
    )

    op.create_table(
        "therapist_specialties",
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("specialty_code", sa.String(length=10), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["specialty_code"],
            ["specialties.code"],
            name=op.f("fk_therapist_specialties_specialty_code_specialties"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_therapist_specialties_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "therapist_id", "specialty_code", name=op.f("pk_therapist_specialties")
        ),
    )
    op.create_index(
        op.f("ix_therapist_specialties_specialty_code"),
        "therapist_specialties",
        ["specialty_code"],
        unique=False,
    )
    op.create_index(
        "uq_therapist_specialties_primary",
        "therapist_specialties",
        ["therapist_id"],
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    )

    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("on_error", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                name="import_job_status",
                native_enum=False,
                create_constraint=True,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("upload_path", sa.String(length=500), nullable=True),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("records_done", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_import_jobs_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["payers.id"],
            name=op.f("fk_import_jobs_payer_id_payers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index(op.f("ix_import_jobs_payer_id"), "import_jobs", ["payer_id"], unique=False)
    op.create_index(
        "ix_import_jobs_status_created_at", "import_jobs", ["status", "created_at"], unique=False
    )

    op.create_table(
        "participations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("network_tier", sa.String(length=60), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_participations_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_participations_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participations")),
        sa.UniqueConstraint(
            "practice_id", "plan_id", name=op.f("uq_participations_practice_id_plan_id")
        ),
    )
    op.create_index("ix_participations_plan_id", "participations", ["plan_id"], unique=False)

    op.create_table(
        "import_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("record_index", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_errors_job_id_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_errors")),
    )
    op.create_index(op.f("ix_import_errors_job_id"), "import_errors", ["job_id"], unique=False)

    _create_spatial_index()


def downgrade() -> None:
    _drop_spatial_index()
    op.drop_table("import_errors")
    op.drop_table("participations")
    op.drop_table("import_jobs")
    op.drop_table("therapist_specialties")
    op.drop_table("therapist_services")
    op.drop_table("therapist_languages")
    op.drop_table("therapist_conditions")
    op.drop_table("therapist_certifications")
    op.drop_table("practices")
    op.drop_table("plans")
    op.drop_table("api_keys")
    op.drop_table("therapists")
    op.drop_table("specialties")
    op.drop_table("services")
    op.drop_table("payers")
    op.drop_table("locations")
    op.drop_table("languages")
    op.drop_table("conditions")
    op.drop_table("certifications")


# R*Tree coordinates are 32-bit floats rounded outwards: a box query on it is a
# pre-filter, and the exact distance is computed from latitude/longitude.
_SQLITE_SPATIAL = [
    "CREATE VIRTUAL TABLE locations_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon)",
    """CREATE TRIGGER locations_rtree_insert AFTER INSERT ON locations BEGIN
        INSERT INTO locations_rtree (id, min_lat, max_lat, min_lon, max_lon)
        VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude);
    END""",
    """CREATE TRIGGER locations_rtree_update AFTER UPDATE OF latitude, longitude ON locations
    BEGIN
        UPDATE locations_rtree
        SET min_lat = new.latitude, max_lat = new.latitude,
            min_lon = new.longitude, max_lon = new.longitude
        WHERE id = new.id;
    END""",
    """CREATE TRIGGER locations_rtree_delete AFTER DELETE ON locations BEGIN
        DELETE FROM locations_rtree WHERE id = old.id;
    END""",
]

# The geography is derived from latitude/longitude by the database itself, so
# no write path can leave the two out of step.
_POSTGIS_SPATIAL = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    """ALTER TABLE locations ADD COLUMN geog geography(Point, 4326)
        GENERATED ALWAYS AS (
            ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography
        ) STORED""",
    "CREATE INDEX ix_locations_geog ON locations USING gist (geog)",
]


def _create_spatial_index() -> None:
    statements = _POSTGIS_SPATIAL if op.get_bind().dialect.name == "postgresql" else _SQLITE_SPATIAL
    for statement in statements:
        op.execute(statement)


def _drop_spatial_index() -> None:
    # The PostGIS column and index go with the locations table; the extension
    # stays, since other schemas in the database may use it.
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS locations_rtree_{trigger}")
        op.execute("DROP TABLE IF EXISTS locations_rtree")
