"""The import queue: jobs are rows, claimed by whichever worker asks first.

A job is claimed with `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite
has one writer and ignores the clause), so any number of workers on any
number of machines share the queue. A payer's jobs run in the order they
arrived: a job is not claimed while an older one of the same payer is queued
or running. A worker takes the job's lock (see `locking`) before its claim
commits and holds it until the job's outcome is on the row, which an import
writes in the transaction that commits its roster; a `running` job whose lock
is free lost its worker and is marked failed — its transaction never
committed, so the previous roster stands.
"""

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from app.auth.service import Principal
from app.db import utcnow
from app.errors import NotFound
from app.imports import locking
from app.imports.formats import Format
from app.imports.models import ImportJob, ImportRecordError, IssueLevel, JobStatus
from app.imports.roster import Mode
from app.imports.service import ImportRequest, OnError, Outcome, Progress, run_import

logger = logging.getLogger(__name__)

INTERRUPTED = "the import was interrupted; nothing was written and the previous roster is unchanged"
ABANDONED = (
    "the worker running this import stopped before it finished (killed or crashed); "
    "nothing was written and the previous roster is unchanged; upload the file again"
)


@dataclass(slots=True)
class LiveProgress:
    records_done: int
    bytes_done: int


# Progress of the jobs this process is running. On SQLite the import's transaction
# holds the only write lock, so progress cannot be written to the job row until it
# ends; readers in this process see it here instead, and other processes in a file
# beside the job's lock (`_progress_file`).
_live: dict[int, LiveProgress] = {}


def live_progress(job_id: int, import_dir: Path) -> LiveProgress | None:
    """What a running job has read so far, when the job row does not say."""
    found = _live.get(job_id)
    if found is not None:
        return found
    try:
        records, bytes_done = _progress_file(import_dir, job_id).read_text().split()
        return LiveProgress(int(records), int(bytes_done))
    except (OSError, ValueError):  # none (yet), or caught between write and rename
        return None


def _progress_file(import_dir: Path, job_id: int) -> Path:
    return import_dir / f"job-{job_id}.progress"


# The locks of the jobs this process has claimed and not yet started: taken before
# the claim commits (see locking.JobLock), handed to run_job.
_held: dict[int, locking.JobLock] = {}


def release_claim(job_id: int) -> None:
    """Lets go of a claimed job's lock, when the claim itself did not commit."""
    lock = _held.pop(job_id, None)
    if lock is not None:
        lock.release()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_next(engine: Engine, import_dir: Path) -> int | None:
    """Marks the oldest claimable job running and returns its id, or None.

    The job's lock is taken before the claim commits and held for `run_job`: a
    recovery pass in another process never sees the job running with a free lock.
    """
    earlier = aliased(ImportJob)
    claimable = (
        select(ImportJob.id)
        .where(ImportJob.status == JobStatus.QUEUED)
        .where(
            ~exists()
            .where(earlier.payer_id.is_not_distinct_from(ImportJob.payer_id))
            .where(earlier.id < ImportJob.id)
            .where(earlier.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        )
        .order_by(ImportJob.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    taken_by_others: list[int] = []
    while True:
        lock: locking.JobLock | None = None
        try:
            with Session(engine) as session, session.begin():
                job_id = session.scalar(claimable.where(ImportJob.id.not_in(taken_by_others)))
                if job_id is None:
                    return None
                lock = locking.JobLock(engine, job_id, import_dir)
                if not lock.take():
                    # SQLite: another worker is claiming it (and may wait for the write
                    # lock while an import holds it): look past it, not at it again.
                    taken_by_others.append(job_id)
                    lock = None
                    continue
                # SQLite has no row locks: two workers may pick the same job, and only
                # the first UPDATE finds it still queued. The other looks again.
                now = utcnow()
                claimed = session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id, ImportJob.status == JobStatus.QUEUED)
                    .values(
                        status=JobStatus.RUNNING,
                        started_at=now,
                        heartbeat_at=now,
                        worker=worker_name(),
                    )
                )
                if not claimed.rowcount:  # type: ignore[attr-defined]
                    lock.release()
                    continue
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        _held[job_id] = lock
        return int(job_id)


def recover_abandoned(engine: Engine, import_dir: Path) -> list[int]:
    """Marks failed every running job whose worker is gone; returns their ids."""
    with Session(engine) as session:
        running = session.execute(
            select(ImportJob.id, ImportJob.upload_path, ImportJob.plans_upload_path).where(
                ImportJob.status == JobStatus.RUNNING
            )
        ).all()
    failed = []
    for job_id, *uploads in running:
        if job_id in _live or not locking.is_abandoned(engine, job_id, import_dir):
            continue
        with Session(engine) as session, session.begin():
            done = session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.status == JobStatus.RUNNING)
                .values(status=JobStatus.FAILED, message=ABANDONED, finished_at=utcnow())
            )
            if done.rowcount:  # type: ignore[attr-defined]
                failed.append(job_id)
                logger.warning("import job %s lost its worker; marked failed", job_id)
        if done.rowcount:  # type: ignore[attr-defined]
            _remove_spooled(uploads, import_dir)
            _progress_file(import_dir, job_id).unlink(missing_ok=True)
    return failed


def _remove_spooled(uploads: list[str | None], import_dir: Path) -> None:
    """Deletes a job's uploads the API spooled; never a file the command line read in place."""
    spool = import_dir.resolve()
    for upload in uploads:
        if upload is not None and Path(upload).resolve().parent == spool:
            Path(upload).unlink(missing_ok=True)


def run_job(
    engine: Engine,
    job_id: int,
    import_dir: Path,
    *,
    on_progress: Progress | None = None,
    keep_uploads: bool = False,
) -> Outcome:
    """Runs a claimed job to the end and records the outcome on the job row.

    The uploads are deleted afterwards unless `keep_uploads` (the CLI reads the
    user's own files in place).
    """
    _yield_cpu_to_searches()
    lock = _held.pop(job_id, None) or locking.JobLock(engine, job_id, import_dir)
    if not lock.held and not lock.take():
        raise RuntimeError(f"import job {job_id} is already running in another process")
    try:
        with Session(engine) as session:
            job = session.get_one(ImportJob, job_id)
            request = ImportRequest(
                format=Format(job.format),
                mode=Mode(job.mode),
                payer_id=job.payer_id,
                upload=Path(job.upload_path or ""),
                plans_upload=Path(job.plans_upload_path) if job.plans_upload_path else None,
                dry_run=job.dry_run,
                on_error=OnError(job.on_error),
            )
        missing = [p for p in (request.upload, request.plans_upload) if p and not p.is_file()]
        if missing:
            # A worker on another machine than the API that spooled it, without shared storage.
            message = _missing_upload(missing[0])
            finish(engine, job_id, None, message=message)
            if not keep_uploads:  # the other of a pair, which this worker does see
                spooled = (request.upload, request.plans_upload)
                _remove_spooled([str(path) for path in spooled if path is not None], import_dir)
            return Outcome.before_reading(message)
        _live[job_id] = LiveProgress(0, 0)
        reporter = _ProgressWriter(engine, job_id, import_dir, on_progress)
        try:
            outcome = run_import(
                engine,
                request,
                import_dir=import_dir,
                progress=reporter,
                # Recorded with the roster: a worker that dies right after the commit
                # leaves the job saying what was written, not "nothing was".
                before_commit=lambda session, done: _record(session, job_id, done),
            )
        except KeyboardInterrupt:  # Ctrl-C at the command line: the transaction is rolled back
            finish(engine, job_id, None, message=INTERRUPTED)
            raise
        except Exception as error:
            logger.exception("import job %s failed", job_id)
            finish(
                engine,
                job_id,
                None,
                message=f"the import stopped on an internal error ({type(error).__name__})",
            )
            raise
        finally:
            _live.pop(job_id, None)
            _progress_file(import_dir, job_id).unlink(missing_ok=True)
            for path in (request.upload, request.plans_upload):
                if path is not None and not keep_uploads:
                    path.unlink(missing_ok=True)
        if not outcome.committed:
            finish(engine, job_id, outcome)
        return outcome
    finally:
        lock.release()


def _missing_upload(path: Path) -> str:
    return (
        f"the upload is not where the API stored it ({path}): every worker must see the "
        "API's PTDIR_IMPORT_DIR (shared storage across machines); nothing was written; "
        "upload the file again"
    )


def _yield_cpu_to_searches() -> None:
    """Runs this thread at nice 10: an import takes longer, searches meanwhile do not.

    On Linux a thread id names one thread, so an API process's request threads keep
    their priority; elsewhere this is a no-op.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class _ProgressWriter:
    """Keeps the job's progress current: in this process always, on the row when it can."""

    def __init__(
        self, engine: Engine, job_id: int, import_dir: Path, also: Progress | None
    ) -> None:
        self.engine = engine
        self.job_id = job_id
        self.file = _progress_file(import_dir, job_id)
        self.also = also
        self.written = 0.0
        # SQLite: the import holds the write lock; the row is updated when it ends.
        self.to_row = engine.dialect.name == "postgresql"

    def __call__(self, records: int, bytes_done: int) -> None:
        _live[self.job_id] = LiveProgress(records, bytes_done)
        if self.also is not None:
            self.also(records, bytes_done)
        now = time.monotonic()
        if now - self.written < 1.0:
            return
        self.written = now
        if not self.to_row:  # for an API process other than this worker (SQLite)
            partial = self.file.with_name(self.file.name + ".part")
            partial.write_text(f"{records} {bytes_done}")
            partial.replace(self.file)  # readers see the old figures or the new
            return
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(ImportJob)
                .where(ImportJob.id == self.job_id)
                .values(records_done=records, bytes_done=bytes_done, heartbeat_at=utcnow())
            )


def finish(
    engine: Engine, job_id: int, outcome: Outcome | None, *, message: str | None = None
) -> None:
    """Writes the outcome (status, counts, problems, timings) on a job still running.

    A job that has finished keeps what it says: an import that committed recorded
    its outcome in the same transaction, which a failure after it must not undo.
    """
    with Session(engine) as session, session.begin():
        job = session.get_one(ImportJob, job_id, with_for_update=True)
        if job.status != JobStatus.RUNNING:
            return
        _record(session, job_id, outcome, message=message)


def _record(
    session: Session, job_id: int, outcome: Outcome | None, *, message: str | None = None
) -> None:
    """Writes the outcome on the job in `session`; `message` alone for a job that failed
    before it had one."""
    job = session.get_one(ImportJob, job_id)
    job.finished_at = utcnow()
    if outcome is None:
        job.status = JobStatus.FAILED
        job.message = message
        return
    job.status = JobStatus.SUCCEEDED if outcome.succeeded else JobStatus.FAILED
    job.message = outcome.message
    job.records_done = outcome.records_done
    job.bytes_done = job.bytes_total or 0
    job.counts = outcome.counts.as_dict() | {
        "skipped_by_reason": outcome.skipped,
        "skipped_examples": {
            reason: [asdict(example) for example in examples]
            for reason, examples in outcome.skipped_examples.items()
        },
    }
    job.error_count = outcome.error_count
    job.warning_count = outcome.warning_count
    if outcome.issues:
        session.execute(
            insert(ImportRecordError),
            [
                {
                    "job_id": job_id,
                    "level": issue.level,
                    "line": issue.line,
                    "record_index": issue.record_index,
                    "field": issue.field[:200] if issue.field else None,
                    "message": issue.message,
                }
                for issue in outcome.issues
            ],
        )


class Worker:
    """Runs queued jobs in a background thread of this process."""

    def __init__(self, engine: Engine, import_dir: Path, *, poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.import_dir = import_dir
        self.poll_seconds = poll_seconds
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="import-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout)

    def run_pending(self) -> int:
        """Runs queued jobs until none is left; returns how many ran."""
        ran = 0
        while not self.stopping.is_set():
            job_id = claim_next(self.engine, self.import_dir)
            if job_id is None:
                return ran
            try:
                run_job(self.engine, job_id, self.import_dir)
            except Exception:  # recorded on the job by run_job; keep serving the queue
                logger.warning("import job %s ended with an internal error", job_id)
            ran += 1
        return ran

    def _loop(self) -> None:
        last_recovery = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_recovery > 30:
                    recover_abandoned(self.engine, self.import_dir)
                    last_recovery = time.monotonic()
                self.run_pending()
            except Exception:
                logger.exception("import worker: the queue could not be read; retrying")
            self.wake.wait(self.poll_seconds)
            self.wake.clear()


def elapsed_seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    stop = end or utcnow()
    return round((stop - start).total_seconds(), 3)


def create_job(
    session: Session,
    *,
    request: ImportRequest,
    api_key_id: int | None,
    bytes_total: int,
    claimed_in: Path | None = None,
) -> ImportJob:
    """Queues an import of an upload already on disk, or starts it in this process with
    `claimed_in` (its import directory: the job's lock is taken before the row commits)."""
    claimed = claimed_in is not None
    job = ImportJob(
        payer_id=request.payer_id,
        api_key_id=api_key_id,
        format=request.format,
        mode=request.mode,
        dry_run=request.dry_run,
        on_error=request.on_error,
        status=JobStatus.RUNNING if claimed else JobStatus.QUEUED,
        started_at=utcnow() if claimed else None,
        worker=worker_name() if claimed else None,
        upload_path=str(request.upload),
        plans_upload_path=str(request.plans_upload) if request.plans_upload else None,
        bytes_total=bytes_total,
        bytes_done=0,
        records_done=0,
        counts={},
        error_count=0,
        warning_count=0,
    )
    session.add(job)
    session.flush()
    if claimed_in is not None:
        lock = locking.JobLock(session.get_bind(), job.id, claimed_in)  # type: ignore[arg-type]
        if not lock.take():
            raise RuntimeError(f"import job {job.id} is already running in another process")
        _held[job.id] = lock
    return job


def visible_job(session: Session, principal: Principal, job_id: int) -> ImportJob:
    """The job, if this key may see it; another payer's job does not exist for it."""
    job = session.get(ImportJob, job_id)
    if job is None or not (
        principal.is_admin or (job.payer_id is not None and job.payer_id == principal.payer_id)
    ):
        raise NotFound(f"import job {job_id} does not exist")
    return job


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    payer_id: int | None,
    status: JobStatus | None,
    before: int | None,
    limit: int,
) -> list[ImportJob]:
    """The jobs this key may see, newest first."""
    statement = select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)
    if not principal.is_admin:
        statement = statement.where(ImportJob.payer_id == principal.payer_id)
    if payer_id is not None:
        statement = statement.where(ImportJob.payer_id == payer_id)
    if status is not None:
        statement = statement.where(ImportJob.status == status)
    if before is not None:
        statement = statement.where(ImportJob.id < before)
    return list(session.scalars(statement))


def list_issues(
    session: Session, job_id: int, *, level: IssueLevel | None, after: int | None, limit: int
) -> list[ImportRecordError]:
    """A job's problems in file order."""
    statement = (
        select(ImportRecordError)
        .where(ImportRecordError.job_id == job_id)
        .order_by(ImportRecordError.id)
        .limit(limit)
    )
    if level is not None:
        statement = statement.where(ImportRecordError.level == level)
    if after is not None:
        statement = statement.where(ImportRecordError.id > after)
    return list(session.scalars(statement))
