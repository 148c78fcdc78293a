"""Runs one import: parse, check and write a roster in a single transaction.

All or nothing: by default one refused record rejects the whole file and
nothing is written; `on_error=skip` writes the valid records and reports the
rest. A dry run does everything, counts included, and then rolls back. The
transaction is the safety net for the rest: a process killed half-way leaves
the previous roster exactly as it was, because nothing was committed.
"""

import contextlib
import gc
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.imports import locking, reading
from app.imports.formats import Format, field_names
from app.imports.models import IssueLevel
from app.imports.records import ImportFileError, PlanRecord, Problem, Skipped
from app.imports.roster import Counts, Mode, RosterImport
from app.reference.vocabulary import vocabulary
from app.therapists.models import Source

logger = logging.getLogger(__name__)

# Problems kept for the report; beyond this only the counts grow.
MAX_STORED_ISSUES = 10_000
# Records; a child process reading the upload says how far it got at these counts.
_PROGRESS_EVERY = reading.RECORDS_PER_CHUNK
# Allocations between two runs of the garbage collector's youngest generation
# while an import runs (Python's default is 700), here and in a child process
# reading the upload. An import allocates millions of short-lived objects, which
# reference counting frees, while a whole batch of records stays alive; with the
# default the collector ran tens of thousands of times and walked those records
# each time: about a sixth of an import's time (bench/import.py). Reference
# cycles are rare here, and still collected.
_IMPORT_GC_THRESHOLD = 10_000
# SQLite's page cache on the import's connection while it reads and writes (the
# default is 2 MB). A roster's rows land all over the tables and their indexes
# (NPIs, address keys and spatial keys come in no useful order), and with the
# default most of those pages had to be read again: 16 MB made a 100,000-record
# import about a tenth faster, and the cache stays that size however large the file.
_SQLITE_CACHE_KIB = 16_384


class OnError(StrEnum):
    REJECT = "reject"  # one refused record rejects the import; nothing is written
    SKIP = "skip"  # refused records are reported; the rest is written


@dataclass(slots=True)
class Issue:
    level: IssueLevel
    line: int | None
    record_index: int | None
    field: str | None
    message: str


# Examples kept per skip reason: enough to find the pattern, few enough for a
# national file, where most rows are skipped.
SKIPPED_EXAMPLES = 5


@dataclass(slots=True)
class SkippedExample:
    line: int | None
    record_index: int | None
    reason: str  # in full, with its detail


@dataclass(slots=True)
class Outcome:
    succeeded: bool
    message: str
    counts: Counts
    skipped: dict[str, int]
    skipped_examples: dict[str, list[SkippedExample]]
    issues: list[Issue]
    error_count: int
    warning_count: int
    records_done: int
    committed: bool

    @classmethod
    def before_reading(cls, message: str) -> "Outcome":
        """An import that failed before it read a record."""
        return cls(False, message, Counts(), {}, {}, [], 0, 0, 0, False)


@dataclass(slots=True)
class ImportRequest:
    format: Format
    mode: Mode
    payer_id: int | None
    upload: Path
    plans_upload: Path | None = None
    dry_run: bool = False
    on_error: OnError = OnError.REJECT


Progress = Callable[[int, int], None]  # records done, bytes of the main file read


@dataclass(slots=True)
class _Report:
    issues: list[Issue] = field(default_factory=list)
    errors: int = 0
    warnings: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # The first few records skipped for each reason, with the detail the reason
    # carries ("no physical-therapy specialty (Women's Health)"): where to look.
    skipped_examples: dict[str, list[SkippedExample]] = field(default_factory=dict)
    # Set while reading a second file (QHP's plans.json beside providers.json): its
    # lines and indexes are that file's, which each message then says.
    other_file: str | None = None

    def skip(self, item: Skipped) -> None:
        reason = item.reason.split(" (")[0]
        self.skipped[reason] += 1
        examples = self.skipped_examples.setdefault(reason, [])
        if len(examples) < SKIPPED_EXAMPLES:
            examples.append(SkippedExample(item.line, item.index, item.reason))

    def note(
        self,
        level: IssueLevel,
        problems: Iterable[Problem],
        where: tuple[int | None, int | None],
    ) -> None:
        line, index = where
        for problem in problems:
            if level is IssueLevel.ERROR:
                self.errors += 1
            else:
                self.warnings += 1
            if len(self.issues) < MAX_STORED_ISSUES:
                message = problem.message
                if self.other_file is not None:
                    message = f"{self.other_file}: {message}"
                self.issues.append(Issue(level, line, index, problem.field or None, message))


# Called with the import's session just before its roster commits, so that what
# is recorded of it (the job's outcome) commits with it or not at all.
BeforeCommit = Callable[[Session, Outcome], None]


def run_import(
    engine: Engine,
    request: ImportRequest,
    *,
    import_dir: Path,
    progress: Progress | None = None,
    before_commit: BeforeCommit | None = None,
) -> Outcome:
    """Reads the upload(s) and writes the roster; commits only a clean (or skip-mode) import."""
    with _fewer_collections():
        return _run(engine, request, import_dir, progress, before_commit)


_collections_lock = threading.Lock()
_importing = 0  # imports running in this process (worker threads may run several)
_saved_thresholds = gc.get_threshold()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raises the collector's first threshold while any import of this process runs."""
    global _importing, _saved_thresholds
    with _collections_lock:
        if _importing == 0:
            _saved_thresholds = gc.get_threshold()
            gc.set_threshold(_IMPORT_GC_THRESHOLD, *_saved_thresholds[1:])
        _importing += 1
    try:
        yield
    finally:
        with _collections_lock:
            _importing -= 1
            if _importing == 0:
                gc.set_threshold(*_saved_thresholds)


def _run(
    engine: Engine,
    request: ImportRequest,
    import_dir: Path,
    progress: Progress | None,
    before_commit: BeforeCommit | None,
) -> Outcome:
    source = Source.NPPES if request.format is Format.NPPES else Source.IMPORT
    with Session(engine) as session, locking.import_turn(session, import_dir):
        roster = RosterImport(
            session,
            payer_id=request.payer_id,
            mode=request.mode,
            source=source,
            names=field_names(request.format),
        )
        report = _Report()
        try:
            with _page_cache(session):
                done = _read(session, roster, report, request, progress)
        except (ImportFileError, reading.ReadingFailed) as error:
            roster.abandon()
            session.rollback()
            return _outcome(False, _failure(error), roster.counts, report, committed=False)
        except (IntegrityError, OperationalError) as error:
            # Imports take turns, but an API write may add the therapist or site a
            # batch has just looked for, remove one it refers to, or wait for rows
            # the import holds while holding one the import waits for.
            roster.abandon()
            session.rollback()
            message = _conflict(error)
            if message is None:
                raise
            logger.warning("an import met another writer's change: %s", error.orig)
            return _outcome(False, message, roster.counts, report, committed=False)
        except BaseException:
            roster.abandon()
            session.rollback()
            raise
        counts = roster.counts
        if report.errors and request.on_error is OnError.REJECT:
            session.rollback()
            message = (
                f"{counts.records_invalid} record(s) refused; nothing was written "
                "(fix them, or send on_error=skip to import the valid records)"
            )
            return _outcome(False, message, counts, report, committed=False, done=done)
        if _empty_replace(request, counts):
            session.rollback()
            return _outcome(False, _EMPTY_REPLACE, counts, report, committed=False, done=done)
        if request.dry_run:
            session.rollback()
            message = "dry run: every record was checked and counted; nothing was written"
            return _outcome(True, message, counts, report, committed=False, done=done)
        refused = f"; {counts.records_invalid} refused" if counts.records_invalid else ""
        message = f"{counts.records_imported} record(s) imported{refused}"
        outcome = _outcome(True, message, counts, report, committed=True, done=done)
        if before_commit is not None:
            before_commit(session, outcome)
        session.commit()
    return outcome


_EMPTY_REPLACE = (
    "no therapist was imported from the file, so a replace would end every participation "
    "in the payer's plans; nothing was written (a replace file lists the payer's whole "
    "roster of individual therapists)"
)


def _empty_replace(request: ImportRequest, counts: Counts) -> bool:
    """A replace of a payer's roster by a file that gave no therapist at all.

    A plans.json alone (`qhp_plans`) lists no roster: it declares plans and ends nothing.
    """
    return (
        request.format is not Format.QHP_PLANS
        and request.mode is Mode.REPLACE
        and request.payer_id is not None
        and counts.records_imported == 0
    )


@contextmanager
def _page_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache while the import runs; the connection's own after.

    Restored before the transaction ends, while the connection is still this
    session's: it then goes back to the pool as it came.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    driver = session.connection().connection.dbapi_connection
    assert driver is not None  # a checked-out connection
    (size,) = driver.execute("PRAGMA cache_size").fetchone()
    driver.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        # Closed: SQLAlchemy drops a connection whose statement was interrupted
        # (Ctrl-C), and with it the cache; what interrupted it must go on.
        with contextlib.suppress(sqlite3.ProgrammingError):
            driver.execute(f"PRAGMA cache_size = {int(size)}")


def _conflict(error: IntegrityError | OperationalError) -> str | None:
    """What the import's failure says when another writer caused it; None otherwise.

    Only PostgreSQL lets another writer in while an import runs (SQLite's write lock
    keeps every other out), and only as a key taken, a referenced row removed or a
    deadlock: any other violation is the import's own fault, an internal error.
    """
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _TAKEN_OR_REMOVED:
        diagnosis = getattr(error.orig, "diag", None)
        constraint = getattr(diagnosis, "constraint_name", None) or sqlstate
        what = f"a record it was writing was added or removed meanwhile: {constraint}"
    elif sqlstate == _DEADLOCK:
        what = "it and another write each waited for records the other held"
    else:
        return None
    return (
        f"the import stopped: another writer changed the directory while it ran ({what}); "
        "nothing was written and the previous roster is unchanged; send the file again"
    )


_TAKEN_OR_REMOVED = frozenset({"23505", "23503"})  # unique and foreign-key violations
_DEADLOCK = "40P01"  # PostgreSQL cancels one of the two transactions


def _failure(error: ImportFileError | reading.ReadingFailed) -> str:
    if isinstance(error, reading.ReadingFailed):
        return f"the import stopped: {error}; nothing was written"
    where = f" (line {error.line})" if error.line is not None else ""
    return f"the file cannot be read{where}: {error.message}"


def _read(
    session: Session,
    roster: RosterImport,
    report: _Report,
    request: ImportRequest,
    progress: Progress | None,
) -> int:
    vocab = vocabulary(session)
    with reading.open_upload(request.format, request.upload, request.plans_upload, vocab) as upload:
        if request.plans_upload is not None:
            report.other_file = "in the plans file"
        done = _feed(roster, report, upload.plans(), request, 0, None)
        report.other_file = None

        def read_so_far(records: int) -> None:
            if progress is not None:
                progress(records, upload.position())

        done = _feed(roster, report, upload.records(), request, done, read_so_far)
    roster.finish()
    _note_withdrawal_warnings(roster, report)
    roster.counts.warnings = report.warnings
    return done


def _feed(
    roster: RosterImport,
    report: _Report,
    items: Iterable[reading.Item],
    request: ImportRequest,
    done: int,
    progress: Callable[[int], None] | None,
) -> int:
    counts = roster.counts
    for item in items:
        done += 1
        where = (item.line, item.index)
        if isinstance(item, Skipped):
            counts.records_skipped += 1
            report.skip(item)
            if item.withdrawn is not None:
                roster.withdraw(item.withdrawn, item.reason, where)
                _note_withdrawal_warnings(roster, report)
        elif isinstance(item, PlanRecord):
            # The parser names its problems as the file does; declaring names its own.
            problems = item.problems or _as_declared(roster, roster.plans.declare(item))
            _note_plan_warnings(roster, report, where)
            if problems:
                roster.plans.refuse(item, problems[0], report.other_file)
                # A template declares a plan in a therapist's row, which is refused
                # for it in turn: counted once, as the therapist's.
                if request.format is not Format.CSV:
                    counts.records_invalid += 1
                report.note(IssueLevel.ERROR, problems, where)
                _refused(roster, request)
        else:
            checked = item.checked
            report.note(IssueLevel.WARNING, checked.warnings, where)
            problems = checked.problems
            if checked.provider is not None:
                problems = roster.add(checked.provider)  # may declare the plans it names
                _note_plan_warnings(roster, report, where)
            if problems:
                counts.records_invalid += 1
                report.note(IssueLevel.ERROR, problems, where)
                _refused(roster, request)
                if checked.npi is not None:
                    roster.refused_npis.add(checked.npi)
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done)
    if progress is not None:
        progress(done)
    return done


def _note_withdrawal_warnings(roster: RosterImport, report: _Report) -> None:
    for where, problem in roster.withdrawal_warnings:
        report.note(IssueLevel.WARNING, [problem], where)
    roster.withdrawal_warnings.clear()


def _note_plan_warnings(
    roster: RosterImport, report: _Report, where: tuple[int | None, int | None]
) -> None:
    if roster.plans.warnings:
        report.note(IssueLevel.WARNING, _as_declared(roster, roster.plans.warnings), where)
        roster.plans.warnings.clear()


def _as_declared(roster: RosterImport, problems: list[Problem]) -> list[Problem]:
    """Problems of a plan declaration ("name", "plan_id"), named as the file names them."""
    return [Problem(roster.names.of_declared(p.field), p.message) for p in problems]


def _refused(roster: RosterImport, request: ImportRequest) -> None:
    if request.on_error is OnError.REJECT and roster.writing:
        roster.stop_writing()


def _outcome(
    succeeded: bool,
    message: str,
    counts: Counts,
    report: _Report,
    *,
    committed: bool,
    done: int | None = None,
) -> Outcome:
    return Outcome(
        succeeded=succeeded,
        message=message,
        counts=counts,
        skipped=dict(report.skipped),
        skipped_examples=report.skipped_examples,
        issues=report.issues,
        error_count=report.errors,
        warning_count=report.warnings,
        records_done=done
        if done is not None
        else counts.records_imported + counts.records_skipped + counts.records_invalid,
        committed=committed,
    )
