"""`ptdir import` and `ptdir worker`: imports from a terminal, with progress and a summary."""

import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.errors import is_sqlite_busy
from app.imports import jobs
from app.imports.formats import PAYER_FORMATS, Format, check_file
from app.imports.records import ImportFileError
from app.imports.roster import Mode
from app.imports.service import ImportRequest, OnError, Outcome
from app.networks.models import Payer


class ProgressBar:
    """One line on a terminal: bytes read, records/s and the time left."""

    def __init__(self, total_bytes: int, out: TextIO | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.out = out or sys.stderr  # the stream of the moment, not of import time
        self.started = time.monotonic()
        self.shown = 0.0
        # Redrawn with carriage returns, a bar is noise in a log file: there, a
        # plain line every few seconds.
        self.drawn = self.out.isatty()
        self.every = 0.5 if self.drawn else 5.0

    def __call__(self, records: int, bytes_done: int) -> None:
        now = time.monotonic()
        if self.shown and now - self.shown < self.every:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        share = min(bytes_done / self.total, 1.0)
        eta = elapsed * (1 - share) / share if share > 0 else None
        left = f"{eta:5.0f}s left" if eta is not None else "   ..."
        figures = f"{share:6.1%}  {records:>10,} records  {records / elapsed:>8,.0f}/s  {left}"
        if self.drawn:
            self.out.write(f"\r[{'#' * int(share * 30):<30}] {figures}")
        else:
            self.out.write(f"{figures.strip()}\n")
        self.out.flush()

    def close(self) -> None:
        """Ends the bar's line, once (an interrupted import closes it before its message)."""
        if self.shown and self.drawn:
            self.out.write("\n")
        self.shown = 0.0


def import_file(
    engine: Engine,
    *,
    path: Path,
    format: Format,
    payer_id: int | None,
    plans: Path | None,
    mode: Mode,
    dry_run: bool,
    on_error: OnError,
    import_dir: Path,
    out: TextIO | None = None,
) -> int:
    """Imports a file in this process, as a job others can see; returns the exit status."""
    problem = _check_arguments(engine, path, format, payer_id, plans)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    request = ImportRequest(
        format=format,
        mode=mode,
        payer_id=payer_id,
        upload=path,
        plans_upload=plans,
        dry_run=dry_run,
        on_error=on_error,
    )
    try:
        job_id = _created_in_turn(engine, request, path.stat().st_size, import_dir)
    except KeyboardInterrupt:
        print("interrupted before the import started; nothing was written", file=sys.stderr)
        return 130
    bar = ProgressBar(path.stat().st_size)
    started = time.monotonic()
    try:
        outcome = jobs.run_job(engine, job_id, import_dir, on_progress=bar, keep_uploads=True)
    except KeyboardInterrupt:  # the job is marked failed; nothing was written
        bar.close()
        print(f"interrupted: {jobs.INTERRUPTED} (import job {job_id})", file=sys.stderr)
        return 130
    finally:
        bar.close()
    print_summary(outcome, job_id, time.monotonic() - started, out or sys.stdout)
    return 0 if outcome.succeeded else 1


def _created_in_turn(engine: Engine, request: ImportRequest, size: int, import_dir: Path) -> int:
    """The new job's id, once the database takes its row.

    On SQLite a running import holds the only write lock until it commits, so the
    row waits for it (each attempt for SQLite's busy timeout) and the imports take
    turns, as the API's queue has them do.
    """
    waiting = False
    while True:
        job_id = None
        try:
            with Session(engine) as session, session.begin():
                job = jobs.create_job(
                    session,
                    request=request,
                    api_key_id=None,
                    bytes_total=size,
                    claimed_in=import_dir,
                )
                job_id = job.id
            return job_id
        except BaseException as error:
            if job_id is not None:  # its row did not commit: the id is free again
                jobs.release_claim(job_id)
            if not is_sqlite_busy(error):
                raise
            if not waiting:
                waiting = True
                print(
                    "waiting: another import is writing to this SQLite database; "
                    "this one starts once it has finished",
                    file=sys.stderr,
                    flush=True,
                )


def _check_arguments(
    engine: Engine, path: Path, format: Format, payer_id: int | None, plans: Path | None
) -> str | None:
    if payer_id is None and format not in (Format.NPPES, Format.CSV):
        return f"--payer is required for {format.value} (it lists networks)"
    if payer_id is not None and format not in PAYER_FORMATS:
        return f"{format.value} carries no networks; leave out --payer"
    if plans is not None and format is not Format.QHP:
        return "--plans goes with --format qhp (the plans.json beside providers.json)"
    for file, kind in ((path, format), (plans, Format.QHP_PLANS)):
        if file is None:
            continue
        if not file.is_file():
            return f"{file}: no such file"
        try:
            with file.open("rb") as stream:
                check_file(kind, stream)
        except ImportFileError as error:
            return f"{file}: {error.message}"
    if payer_id is not None:
        with Session(engine) as session:
            if session.get(Payer, payer_id) is None:
                return f"payer {payer_id} does not exist"
    return None


def print_summary(outcome: Outcome, job_id: int, seconds: float, out: TextIO) -> None:
    counts = outcome.counts
    rate = outcome.records_done / seconds if seconds > 0 else 0.0
    print(f"Import job {job_id}: {'succeeded' if outcome.succeeded else 'FAILED'}", file=out)
    print(f"  {outcome.message}", file=out)
    print(
        f"  {outcome.records_done:,} records in {seconds:.1f} s ({rate:,.0f} records/s)", file=out
    )
    print(f"  {'':16}{'created':>10}{'updated':>10}{'unchanged':>11}{'ended':>8}", file=out)
    rows = (
        (
            "therapists",
            counts.therapists_created,
            counts.therapists_updated,
            counts.therapists_unchanged,
            counts.therapists_removed or "",  # the national file's withdrawn NPIs
        ),
        (
            "locations",
            counts.locations_created,
            counts.locations_updated,
            counts.locations_unchanged,
            "",
        ),
        ("practices", counts.practices_created, counts.practices_updated, "", ""),
        (
            "participations",
            counts.participations_created,
            counts.participations_updated,
            counts.participations_unchanged,
            counts.participations_ended,
        ),
        ("plans", counts.plans_created, counts.plans_updated, "", ""),
    )
    for name, *values in rows:
        created, updated, unchanged, ended = values
        print(f"  {name:16}{created:>10}{updated:>10}{unchanged:>11}{ended:>8}", file=out)
    imported = "imported" if outcome.committed else "valid (not written)"
    print(
        f"  records: {counts.records_imported:,} {imported}, {counts.records_skipped:,} "
        f"skipped, {counts.records_invalid:,} refused; {outcome.warning_count:,} warnings",
        file=out,
    )
    for reason, number in sorted(outcome.skipped.items(), key=lambda item: -item[1]):
        print(f"    skipped {number:,}: {reason}", file=out)
        # Examples only where they say more than the reason: the texts that did not map.
        for example in outcome.skipped_examples.get(reason, []):
            if example.reason != reason:
                line, index = example.line, example.record_index
                where = f"line {line}" if line is not None else f"record {index}"
                print(f"      {where}: {example.reason}", file=out)
    for level, total, most in (
        ("error", outcome.error_count, 20),
        ("warning", outcome.warning_count, 10),
    ):
        shown = [issue for issue in outcome.issues if issue.level == level][:most]
        for issue in shown:
            line, index = issue.line, issue.record_index
            where = f"line {line}" if line is not None else f"record {index}"
            print(f"  {level} at {where}, {issue.field or '-'}: {issue.message}", file=out)
        if total > len(shown):
            print(
                f"  … {total - len(shown):,} more {level}s: the API's "
                f"GET /v1/imports/{job_id}/errors?level={level}",
                file=out,
            )


def run_worker(engine: Engine, import_dir: Path, *, once: bool) -> int:
    """Serves the import queue until SIGTERM or SIGINT (after the job in hand)."""
    worker = jobs.Worker(engine, import_dir)

    def _stop(_signal: int, _frame: object) -> None:
        print("stopping after the current job…", file=sys.stderr)
        worker.stopping.set()
        worker.wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    jobs.recover_abandoned(engine, import_dir)
    if once:
        ran = worker.run_pending()
        print(f"ran {ran} import job(s)", file=sys.stderr)
        return 0
    print(f"import worker {jobs.worker_name()} waiting for jobs", file=sys.stderr)
    worker.start()
    while worker.thread.is_alive():
        worker.thread.join(0.5)
    return 0
