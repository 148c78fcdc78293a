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
- *Is anyone still running this job?* The running worker holds a lock named
  after the job: a session-level advisory lock on PostgreSQL (held on a
  connection of its own), an `flock` on a file in the import directory on
  SQLite. A `running` job whose lock can be taken has lost its worker.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
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


@contextmanager
def running(engine: Engine, job_id: int, import_dir: Path) -> Iterator[None]:
    """Marks this process as the one running the job for as long as the block lasts."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(
                text("SELECT pg_advisory_lock(:space, :key)"),
                {"space": _JOB_RUNNING, "key": job_id},
            )
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:space, :key)"),
                    {"space": _JOB_RUNNING, "key": job_id},
                )
                connection.commit()
        return
    path = import_dir / f"job-{job_id}.lock"
    with _flock(path, wait=False) as held:
        if not held:
            raise RuntimeError(f"import job {job_id} is already running in another process")
        try:
            yield
        finally:
            # The job's outcome is on its row by now: whoever takes the lock after
            # this finds the job finished, not abandoned. (Else a file per job stays.)
            path.unlink(missing_ok=True)


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
