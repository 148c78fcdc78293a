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
from collections.abc import Callable, Iterator, Sequence
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
    func,
    select,
)
from sqlalchemy.exc import DBAPIError

from app.db import UTCDateTime

Converter = Callable[[Any], Any]
# Keys per look-up statement (each binds its keys as one array; see app.db.one_of).
KEYS_PER_LOOK_UP = 5000


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in slices of KEYS_PER_LOOK_UP, one look-up statement each."""
    for start in range(0, len(values), KEYS_PER_LOOK_UP):
        yield values[start : start + KEYS_PER_LOOK_UP]


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
    if rows:
        names = list(rows[0])
        columns = _columns(connection, table, names, rows)
        _insert(connection, table, names, list(zip(*columns, strict=True)))


def insert_new(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """INSERTs rows (as `insert_many`) with ids drawn here; returns the ids in row order.

    The rows go in with their ids instead of being read back by key afterwards
    (an index look-up per row, and its keys sent as an array and its rows
    returned: a tenth of a SQLite import's writing time). PostgreSQL: from the
    table's sequence, which hands each value out once, so writers running
    meanwhile cannot collide with them. SQLite: the ones after the largest in the
    table, as SQLite itself would pick them. The caller's transaction must hold
    SQLite's write lock before this reads the largest (RosterImport begins it
    IMMEDIATE), so that no other writer takes them meanwhile; one that did would
    make the INSERT fail on the primary key, never mix rows up.
    """
    if not rows:
        return []
    names = list(rows[0])
    columns = _columns(connection, table, names, rows)
    if connection.dialect.name == "postgresql":
        ids = _next_ids(connection, table, len(rows))
    else:
        largest = connection.execute(select(func.max(table.c.id))).scalar()
        first = (largest or 0) + 1
        ids = list(range(first, first + len(rows)))
    _insert(connection, table, ["id", *names], list(zip(ids, *columns, strict=True)))
    return ids


def _columns(
    connection: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[Iterator[Any]]:
    """The values of each of `names`, converted for the driver (zip them into rows)."""
    dialect = connection.dialect.name
    # Column by column, so that the loops over the rows run in C (map, zip): most
    # columns go to the driver as they are, a few are converted. A loop in Python
    # over each row's cells cost a quarter more.
    columns: list[Iterator[Any]] = [map(itemgetter(name), rows) for name in names]
    for position, name in enumerate(names):
        convert = _converter(table.c[name].type, dialect)
        if convert is not _same:
            columns[position] = map(convert, columns[position])
    return columns


def _insert(
    connection: Connection, table: Table, names: list[str], values: Sequence[tuple[Any, ...]]
) -> None:
    columns = ", ".join(names)
    if connection.dialect.name == "postgresql":
        driver: Any = connection.connection.driver_connection
        statement = f"COPY {table.name} ({columns}) FROM STDIN (FORMAT BINARY)"
        try:
            with driver.cursor() as cursor:
                types = _column_types(connection, cursor, table.name)
                with cursor.copy(statement) as copy:
                    copy.set_types([types[name] for name in names])
                    for value in values:
                        copy.write_row(value)
        except connection.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy raises it for the statements it runs itself
            # (IntegrityError, OperationalError…).
            raise DBAPIError.instance(
                statement, None, error, connection.dialect.loaded_dbapi.Error
            ) from error
        return
    statement = (
        f"INSERT INTO {table.name} ({columns}) "  # noqa: S608 (names from the table's own metadata)
        f"VALUES ({', '.join(['?'] * len(names))})"
    )
    connection.exec_driver_sql(statement, values)


def _next_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` new ids from the sequence behind the table's `id` (PostgreSQL)."""
    driver: Any = connection.connection.driver_connection
    # Named once per connection: looked up on every row, the name cost ten times
    # what drawing the values did.
    sequences: dict[str, str] = connection.info.setdefault("id_sequences", {})
    with driver.cursor() as cursor:
        if table.name not in sequences:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,))
            sequences[table.name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            (sequences[table.name], count),
        )
        return [id_ for (id_,) in cursor.fetchall()]


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
