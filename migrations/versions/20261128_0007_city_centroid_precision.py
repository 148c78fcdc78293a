"""A location may be placed at its city's centre: `geocode_precision = 'city_centroid'`.

An address whose ZIP the offline table does not know (a new ZIP, a PO-box or
company ZIP, a typo) and that comes without coordinates used to be refused,
and with it, by default, the whole import. It is now placed at the mean of its
city's ZIP centroids and marked so.

Allowing one more value leaves every stored row valid, so on SQLite the
constraint text is rewritten in place instead of rebuilding `locations`. On
PostgreSQL the constraint is replaced in one statement; adding it checks every
row under the table's lock, which migrations hold until they commit anyway.

Downgrading marks such locations `zip_centroid`, the nearest value the older
schema knows (both say "placed at a centroid, not at the address").

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:30:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from app.sqlite_schema import rewrite_table_definitions

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONSTRAINT = "ck_locations_geocode_precision"
_BEFORE = ("provided", "zip_centroid")
_AFTER = ("provided", "zip_centroid", "city_centroid")


def _sqlite_check(values: Sequence[str]) -> str:
    """The constraint as migration 0006 leaves SQLite's: comparisons joined by OR."""
    terms = " OR ".join(f"geocode_precision = '{value}'" for value in values)
    return f"CONSTRAINT {_CONSTRAINT} CHECK ({terms})"


def _allow(old: Sequence[str], new: Sequence[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        before, after = _sqlite_check(old), _sqlite_check(new)
        rewrite_table_definitions(bind, lambda sql: sql.replace(before, after))
        written = bind.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'locations'")
        ).scalar_one()
        if after not in written:  # a schema this migration does not know: change nothing
            raise RuntimeError(f"locations has no constraint {before!r} to rewrite")
        return
    listed = ", ".join(f"'{value}'" for value in new)
    op.execute(
        f"ALTER TABLE locations DROP CONSTRAINT {_CONSTRAINT}, "
        f"ADD CONSTRAINT {_CONSTRAINT} CHECK (geocode_precision IN ({listed}))"
    )


def upgrade() -> None:
    _allow(_BEFORE, _AFTER)


def downgrade() -> None:
    op.get_bind().execute(
        text(
            "UPDATE locations SET geocode_precision = 'zip_centroid' "
            "WHERE geocode_precision = 'city_centroid'"
        )
    )
    _allow(_AFTER, _BEFORE)
