"""Editing a SQLite table's stored definition in place, for migrations.

SQLite cannot alter a constraint. Rebuilding a table copies every row; for a
change that every stored row already satisfies (a CHECK written another way, or
one that allows more values, or a NOT NULL removed) SQLite documents a cheaper way: rewrite the
`CREATE TABLE` text in `sqlite_master` under `writable_schema`, then bump
`schema_version` so that every connection reads the schema again.
"""

from collections.abc import Callable, Collection

from sqlalchemy import Connection, text


def rewrite_table_definitions(
    connection: Connection, rewrite: Callable[[str], str], names: Collection[str] = ()
) -> None:
    """Applies `rewrite` to the `CREATE TABLE` text of the named tables (none named:
    of every table with a CHECK)."""
    every = "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
    if names:
        chosen = ", ".join(f"'{name}'" for name in names)
        tables = connection.execute(text(f"{every} AND name IN ({chosen})")).all()
        if len(tables) != len(set(names)):
            raise RuntimeError(f"no such table among {sorted(names)}")
    else:
        tables = connection.execute(text(f"{every} AND sql LIKE '%CHECK (%'")).all()
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
