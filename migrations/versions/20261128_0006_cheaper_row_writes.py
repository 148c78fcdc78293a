"""Cheaper row writes: four unused indexes go, and SQLite checks enums without a table.

- `ix_locations_state`, `ix_locations_zip`, `ix_therapists_first_name_key` and
  `ix_therapists_last_name_key` serve no query: search reads `search_practices`
  (which has the name keys itself), locations are looked up by id and address
  key, therapists by id and NPI. Every new location and therapist paid for them.
- SQLite compiles `CHECK (col IN ('a', 'b', …))` into a temporary B-tree of
  the values, built again for every row written: a roster import spent a
  tenth of its time building them (seven per record). `col = 'a' OR col = 'b'
  OR …` means the same (NULL passes both) and costs a few comparisons. The
  constraint text is rewritten in place, as SQLite documents for a change that
  leaves the stored rows as they are (writable_schema, then a new schema
  version); rebuilding the tables instead would copy every row of
  `therapists`, `locations` and `search_practices`. PostgreSQL tests an IN list
  as one array comparison: its constraints stay as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 08:00:00
"""

import re
from collections.abc import Sequence

from alembic import op

from app.sqlite_schema import rewrite_table_definitions

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `CHECK (col IN ('a', 'b'))` as SQLAlchemy writes an enum's constraint, and the same
# constraint as comparisons. Values are enum values: letters, digits and underscores.
_IN_LIST = re.compile(r"CHECK \((\w+) IN \(('\w*'(?:, '\w*')*)\)\)")
_COMPARISONS = re.compile(r"CHECK \(((\w+) = '\w*'(?: OR \2 = '\w*')*)\)")


def _as_comparisons(match: re.Match[str]) -> str:
    column, values = match.group(1), match.group(2).split(", ")
    return f"CHECK ({' OR '.join(f'{column} = {value}' for value in values)})"


def _as_in_list(match: re.Match[str]) -> str:
    column = match.group(2)
    values = [term.split(" = ", 1)[1] for term in match.group(1).split(" OR ")]
    return f"CHECK ({column} IN ({', '.join(values)}))"


_UNUSED_INDEXES = {
    "ix_locations_state": ("locations", "state"),
    "ix_locations_zip": ("locations", "zip"),
    "ix_therapists_first_name_key": ("therapists", "first_name_key"),
    "ix_therapists_last_name_key": ("therapists", "last_name_key"),
}


def upgrade() -> None:
    for name, (table, _column) in _UNUSED_INDEXES.items():
        op.drop_index(name, table_name=table)
    if op.get_bind().dialect.name == "sqlite":
        rewrite_table_definitions(op.get_bind(), lambda sql: _IN_LIST.sub(_as_comparisons, sql))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        rewrite_table_definitions(op.get_bind(), lambda sql: _COMPARISONS.sub(_as_in_list, sql))
    for name, (table, column) in _UNUSED_INDEXES.items():
        op.create_index(name, table, [column], unique=False)
