"""SQLite: the search projection's writers fill its R*Tree, not a trigger per row.

`search_practices_rtree_insert` ran once per inserted row, in the order rows
came; a roster import spent more time in it than in inserting the rows. The
writers now add their rows in one statement each, in spatial-key order
(app.search.geo.index_new_rows). The update and delete triggers stay: every
other change reaches the R*Tree as before. PostgreSQL has no trigger to drop
(the geography column is generated), so nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS search_practices_rtree_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # As 0003 created it. The R*Tree already holds every row: the writers kept it.
        op.execute(
            """CREATE TRIGGER search_practices_rtree_insert AFTER INSERT ON search_practices
            BEGIN
                INSERT INTO search_practices_rtree (id, min_lat, max_lat, min_lon, max_lon)
                VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude);
            END"""
        )
