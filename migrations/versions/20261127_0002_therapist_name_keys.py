"""Therapist name keys: lower-case ASCII first and last names for prefix search and sorting.

Existing rows are backfilled with the same function the application uses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:45:28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.therapists.names import name_key

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_KEY = sa.String(length=100).with_variant(sa.String(length=100, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("therapists") as batch_op:
        batch_op.add_column(sa.Column("first_name_key", NAME_KEY, nullable=True))
        batch_op.add_column(sa.Column("last_name_key", NAME_KEY, nullable=True))

    therapists = sa.table(
        "therapists",
        sa.column("id", sa.Integer),
        sa.column("first_name", sa.String),
        sa.column("last_name", sa.String),
        sa.column("first_name_key", sa.String),
        sa.column("last_name_key", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(therapists.c.id, therapists.c.first_name, therapists.c.last_name))
    updates = [
        {"row_id": row.id, "first": name_key(row.first_name), "last": name_key(row.last_name)}
        for row in rows
    ]
    if updates:
        bind.execute(
            therapists.update()
            .where(therapists.c.id == sa.bindparam("row_id"))
            .values(first_name_key=sa.bindparam("first"), last_name_key=sa.bindparam("last")),
            updates,
        )

    with op.batch_alter_table("therapists") as batch_op:
        batch_op.alter_column("first_name_key", existing_type=NAME_KEY, nullable=False)
        batch_op.alter_column("last_name_key", existing_type=NAME_KEY, nullable=False)
        batch_op.create_index("ix_therapists_first_name_key", ["first_name_key"])
        batch_op.create_index("ix_therapists_last_name_key", ["last_name_key"])


def downgrade() -> None:
    with op.batch_alter_table("therapists") as batch_op:
        batch_op.drop_index("ix_therapists_last_name_key")
        batch_op.drop_index("ix_therapists_first_name_key")
        batch_op.drop_column("last_name_key")
        batch_op.drop_column("first_name_key")
