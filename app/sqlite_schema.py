"""Editing a SQLite table's stored definition in place, for migrations.

SQLite cannot alter a constraint. Rebuilding a table copies every row; for a
change that every stored row already satisfies (a CHECK written another way, or
one that allows more values) SQLite documents a cheaper way: rewrite the
`CREATE TABLE` text in `sqlite_master` under `writable_schema`, then bump
`schema_version` so that every connection reads the schema again.
"""

from collections.abc import Callable

from sqlalchemy import Connection, text


def rewrite_table_definitions(connection: Connection, rewrite: Callable[[str], str]) -> None:
    """Applies `rewrite` to the `CREATE TABLE` text of every table with a CHECK."""
    tables = connection.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%CHECK (%'")
    ).all()
    changed = [(name, new) for name, sql in tables if (new := rewrite(sql)) != sql]
    if not changed:
        return
    (version,) = connection.execute(text("PRAGMA schema_version")).one()
    connection.execute(text("PRAGMA writable_schema = ON"))
    try:
        for name, sql in changed:
            connection.execute(
                text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
                {"sql": sql, "name": name},
            )
        # Every connection, this one included, re-reads the schema on its next statement.
        connection.execute(text(f"PRAGMA schema_version = {int(version) + 1}"))
    finally:
        connection.execute(text("PRAGMA writable_schema = OFF"))
    problems = connection.execute(text("PRAGMA quick_check")).scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"SQLite reports a damaged schema after rewriting tables: {problems}")
