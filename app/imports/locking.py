"""The locks that keep imports apart, per database: the one dialect-specific module here.

Two questions need a lock that the operating system or the database server
releases by itself when a process dies (SIGKILL included):

- *Whose turn is it?* Imports run one after the other, never interleaved,
  whatever their payer. Payers share therapists, sites and practices: two
  imports at once would both create the same new NPI or address (the second
  failing on the unique key once the first committed) or update the same rows
  in different orders (a deadlock), each holding its locks until its roster
  commits. PostgreSQL: a transaction-level advisory lock. SQLite allows one
  writer at a time anyway: one lock file for the database.
- *Is anyone still running this job?* The worker holds a lock named after the
  job, from before its claim commits until the job's outcome is on its row: a
  session-level advisory lock on PostgreSQL (held on a connection of its own),
  an `flock` on a file in the import directory on SQLite. A `running` job whose
  lock can be taken has lost its worker.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

# Advisory lock namespaces (the first of the two 32-bit keys).
_IMPORT_TURN = 0x50_54_01
_JOB_RUNNING = 0x50_54_02


@contextmanager
def import_turn(session: Session, import_dir: Path) -> Iterator[None]:
    """Waits until no other import is running, then holds the turn.

    On PostgreSQL the lock lasts until the session's transaction ends, so call it
    inside the import's transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:space, 0)"), {"space": _IMPORT_TURN})
        yield
        return
    with _flock(import_dir / "sqlite-import.lock", wait=True):
        yield


class JobLock:
    """The lock of a job's worker: taken before the job is marked running, released
    once its outcome is on the row, so that a running job's lock is never free while
    its worker lives (recovery would take it for abandoned)."""

    def __init__(self, engine: Engine, job_id: int, import_dir: Path) -> None:
        self.engine = engine
        self.job_id = job_id
        self.path = import_dir / f"job-{job_id}.lock"
        self._connection: Connection | None = None
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._descriptor is not None

    def take(self) -> bool:
        """Takes the lock if no other process holds it; whether it did."""
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            taken = connection.scalar(
                text("SELECT pg_try_advisory_lock(:space, :key)"),
                {"space": _JOB_RUNNING, "key": self.job_id},
            )
            connection.commit()
            if not taken:
                connection.close()
                return False
            self._connection = connection
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with connection:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:space, :key)"),
                    {"space": _JOB_RUNNING, "key": self.job_id},
                )
                connection.commit()
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            # The job's outcome is on its row by now: whoever takes the lock after
            # this finds the job finished, not abandoned. (Else a file per job stays.)
            self.path.unlink(missing_ok=True)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)


def is_abandoned(engine: Engine, job_id: int, import_dir: Path) -> bool:
    """True when no live process holds the job's lock (its worker was killed or crashed)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            taken = connection.scalar(
                text("SELECT pg_try_advisory_lock(:space, :key)"),
                {"space": _JOB_RUNNING, "key": job_id},
            )
            if taken:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:space, :key)"),
                    {"space": _JOB_RUNNING, "key": job_id},
                )
            connection.commit()
            return bool(taken)
    path = import_dir / f"job-{job_id}.lock"
    with _flock(path, wait=False) as held:
        if held:  # no worker holds it: the job is marked failed next, the file is no use
            path.unlink(missing_ok=True)
        return held


@contextmanager
def _flock(path: Path, *, wait: bool) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
