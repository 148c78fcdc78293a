"""Engines, sessions and the declarative base.

One transaction per request: the session dependency commits when the endpoint
returns and rolls back when it raises. Services only ever `flush()`.
"""

import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Dialect,
    Engine,
    Enum,
    Integer,
    MetaData,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import Settings
from app.errors import Conflict

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()
    # Distances are computed in SQL; SQLite builds without
    # SQLITE_ENABLE_MATH_FUNCTIONS lack these, so register Python versions.
    try:
        dbapi_connection.execute("SELECT sin(0), cos(0), asin(0), sqrt(0), radians(0), floor(0)")
    except sqlite3.OperationalError:
        for name in ("sin", "cos", "asin", "sqrt", "radians", "floor"):
            dbapi_connection.create_function(name, 1, getattr(math, name), deterministic=True)


def create_db_engine(
    url: str, *, pool_size: int = 5, pool_timeout: float = 5.0, statement_timeout_ms: int = 0
) -> Engine:
    """An engine with the per-backend connection settings this service relies on.

    `statement_timeout_ms` (PostgreSQL) cancels a statement that runs longer, so a
    request cannot hold a connection and a core indefinitely; 0 for no limit."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 5},
            pool_size=pool_size,
            pool_timeout=pool_timeout,
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        # JIT compilation pays off for long analytic queries, not for millisecond
        # lookups: on a search it can cost more than the query itself.
        connect_args={
            "connect_timeout": 5,
            "options": f"-c jit=off -c statement_timeout={statement_timeout_ms}",
        },
    )


def engine_from_settings(
    settings: Settings, *, requests: bool = False, replica: bool = False
) -> Engine:
    """The engine for API requests (`requests`: with the statement time limit), or for
    long work (imports, migrations, the command line: none); on the read replica
    with `replica`."""
    url = settings.read_database_url if replica else settings.database_url
    assert url is not None, "no read replica configured"
    return create_db_engine(
        url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout,
        statement_timeout_ms=settings.database_statement_timeout_ms if requests else 0,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit so responses can be built from them.
    return sessionmaker(engine, expire_on_commit=False)


def flush_or_conflict(session: Session, message: str) -> None:
    """Flush, turning a unique-constraint violation into 409 without losing the session."""

    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(message) from error


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# scope="function": the commit happens before the response is sent, so a
# failed commit becomes an error response rather than a lie.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class ReadRouting:
    """Where public reads (search, vocabularies, filter menus) go: a streaming replica
    when one is configured and answering, else the primary.

    A replica that fails a connection check is skipped for `retry_seconds`, so while
    it is down each read costs one failed attempt per interval, not one per request.
    Reads there may lag the primary by the replication delay; writes, record reads
    (a payer reading back what it wrote) and imports always use the primary.
    """

    def __init__(
        self,
        primary: sessionmaker[Session],
        replica: Engine | None,
        *,
        retry_seconds: float = 5.0,
    ) -> None:
        self.primary = primary
        self.replica = make_sessionmaker(replica) if replica is not None else None
        self.retry_seconds = retry_seconds
        self._skip_until = 0.0

    def session(self) -> Session:
        if self.replica is not None and time.monotonic() >= self._skip_until:
            session = self.replica()
            try:
                session.connection()  # checked out with a ping: a dead replica fails here
                return session
            except DBAPIError as error:
                session.close()
                self._skip_until = time.monotonic() + self.retry_seconds
                logger.warning(
                    "read replica unreachable (%s); reads use the primary for %.0f s",
                    type(error.orig).__name__,
                    self.retry_seconds,
                )
        return self.primary()


def get_read_session(request: Request) -> Iterator[Session]:
    routing: ReadRouting = request.app.state.reads
    with routing.session() as session:
        yield session  # nothing to commit: reads only


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: Any, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """`column IN (values)` with the values bound as one array: `= ANY(array)` on
    PostgreSQL, `IN (SELECT value FROM json_each(json))` on SQLite.

    A batch looks up thousands of keys at once. Rendered as thousands of bound
    parameters, the statement took longer to build, send and parse than to run.
    Both forms still search the column's index once per value.
    """
    if dialect == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))  # type: ignore[no-any-return]
    listed = func.json_each(literal(json.dumps(list(values)))).table_valued("value")
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


def in_bound_ids(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the integer ids bound later as `name` (a list).

    On PostgreSQL `= ANY(:name)` binds one array, so the statement text is the same
    for any number of ids and psycopg prepares it once (planning a short look-up
    cost more than running it); elsewhere an expanding `IN (…)`.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(Integer)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]


def utcnow() -> datetime:
    return datetime.now(UTC)


def string_enum(enum: type[StrEnum], name: str) -> Enum:
    """A portable enum: a VARCHAR with a CHECK constraint on both backends."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=40,
        values_callable=lambda members: [member.value for member in members],
    )
