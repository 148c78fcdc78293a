"""A practice's accepting-new-patients and telehealth flags may be unknown (NULL).

The national NPPES file says nothing about either, nor does a QHP file about
telehealth, nor a template row whose cell is empty; such practices were
stored as not accepting and without telehealth, and shown so to referrers. A
search for either value still matches only practices whose value is known.

Removing a NOT NULL leaves every stored row valid, so on SQLite the column
definitions are rewritten in place instead of rebuilding `practices` and
`search_practices`. The practices the national file seeded and no network
lists, whose false flags no file stated, become unknown (a payer that listed
one in a plan may have said "not accepting": those keep their value).
Downgrading stores an unknown flag as false, as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 15:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqlite_schema import rewrite_table_definitions

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("practices", "search_practices")
_COLUMNS = ("accepting_new_patients", "telehealth")
_REQUIRED = re.compile(r"\b(accepting_new_patients|telehealth) BOOLEAN NOT NULL\b")
_OPTIONAL = re.compile(r"\b(accepting_new_patients|telehealth) BOOLEAN\b(?! NOT NULL)")


def _rewrite(pattern: re.Pattern[str], replacement: str) -> None:
    bind = op.get_bind()
    for table in _TABLES:
        written = bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": table},
        ).scalar_one()
        if len(pattern.findall(written)) != len(_COLUMNS):  # a schema this does not know
            raise RuntimeError(f"{table}: its flags are not defined as this migration expects")
    rewrite_table_definitions(bind, lambda sql: pattern.sub(replacement, sql), _TABLES)


# Practices of therapists that only the national file (no payer's network) has.
_SEEDED_ONLY = """
    therapist_id IN (SELECT id FROM therapists WHERE source = 'nppes')
    AND NOT EXISTS (SELECT 1 FROM participations WHERE practice_id = practices.id)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(_REQUIRED, r"\1 BOOLEAN")
    else:
        for table in _TABLES:
            for column in _COLUMNS:
                op.alter_column(table, column, existing_type=sa.Boolean(), nullable=True)
    for column in _COLUMNS:
        op.execute(
            f"UPDATE practices SET {column} = NULL WHERE {column} = false AND {_SEEDED_ONLY}"
        )
        op.execute(
            f"UPDATE search_practices SET {column} = NULL WHERE {column} = false AND practice_id IN"
            f" (SELECT id FROM practices WHERE {column} IS NULL)"
        )


def downgrade() -> None:
    for table in _TABLES:
        for column in _COLUMNS:
            op.execute(f"UPDATE {table} SET {column} = false WHERE {column} IS NULL")
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(_OPTIONAL, r"\1 BOOLEAN NOT NULL")
        return
    for table in _TABLES:
        for column in _COLUMNS:
            op.alter_column(table, column, existing_type=sa.Boolean(), nullable=False)
