"""Bulk INSERTs through the database driver, with values converted here.

SQLAlchemy converts every bound value through its column type; for the
hundreds of thousands of rows of a roster that conversion cost more than the
inserts themselves (measured with bench/import.py). Here each column gets one
plain converter and the driver's `executemany` does the rest. The converters
reproduce what the column types store (SQLite keeps dates and timestamps as
text, JSON as text, enums as their values), so the rows read back through
the ORM as they were given: tests/imports/test_roster.py reads imported
records through the API and re-imports a file to find every value unchanged.
"""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from enum import Enum as PyEnum
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Date,
    Enum,
    Table,
)

from app.db import UTCDateTime

Converter = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, PyEnum) else value


def _json(value: Any) -> Any:
    if value is None:
        return None
    if value == []:  # most cells (every new location's accessibility)
        return "[]"
    return json.dumps(value)


@lru_cache(maxsize=256)  # a batch stamps all its rows with one time
def _sqlite_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@lru_cache(maxsize=4096)  # a roster repeats a few network start and end dates
def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _converter(column_type: Any, dialect: str) -> Converter:
    if isinstance(column_type, UTCDateTime):
        return _sqlite_timestamp if dialect == "sqlite" else _same
    if isinstance(column_type, Date):
        return _sqlite_date if dialect == "sqlite" else _same
    if isinstance(column_type, JSON):
        # Binary COPY takes the value itself: psycopg's json dumper encodes it.
        return _json if dialect == "sqlite" else _same
    if isinstance(column_type, Enum):
        # A StrEnum member is the text of its value to both drivers.
        is_text = isinstance(column_type.enum_class, type) and issubclass(
            column_type.enum_class, StrEnum
        )
        return _same if is_text else _enum_value
    return _same


def insert_many(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERTs the rows (every row names the same columns): COPY on PostgreSQL, else executemany.

    On PostgreSQL an executemany is still one statement per row on the server;
    COPY streams them all in one, an order of magnitude faster for a roster. In
    binary: psycopg then packs numbers and dates instead of formatting them as
    text, several times faster per row, and the import's own thread is what
    bounds it on PostgreSQL.
    """
    if not rows:
        return
    names = list(rows[0])
    dialect = connection.dialect.name
    # Most columns go to the driver as they are: take them all at once, in C, and
    # convert only the few that need it.
    take = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    converting = [
        (position, convert)
        for position, name in enumerate(names)
        if (convert := _converter(table.c[name].type, dialect)) is not _same
    ]
    values: list[tuple[Any, ...]]
    if not converting:
        values = [take(row) for row in rows]
    else:
        values = []
        for row in rows:
            cells = list(take(row))
            for position, convert in converting:
                cells[position] = convert(cells[position])
            values.append(tuple(cells))
    columns = ", ".join(names)
    if dialect == "postgresql":
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor:
            types = _column_types(connection, cursor, table.name)
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([types[name] for name in names])
                for value in values:
                    copy.write_row(value)
        return
    statement = (
        f"INSERT INTO {table.name} ({columns}) "  # noqa: S608 (names from the table's own metadata)
        f"VALUES ({', '.join(['?'] * len(names))})"
    )
    connection.exec_driver_sql(statement, values)


def _column_types(connection: Connection, cursor: Any, table: str) -> dict[str, int]:
    """The PostgreSQL type (OID) of each column: binary COPY must name them.

    Read once per table and database connection (an import asked about 200 times,
    one round trip each): a column's type changes only by a migration, and
    migrations run before anything imports.
    """
    known: dict[str, dict[str, int]] = connection.info.setdefault("copy_column_types", {})
    if table not in known:
        cursor.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        known[table] = dict(cursor.fetchall())
    return known[table]
