"""The job queue: claimed once each, a payer's jobs in order, served by `ptdir worker`."""

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.imports import jobs
from app.imports.formats import Format
from app.imports.models import ImportJob, JobStatus
from app.imports.roster import Mode
from app.imports.service import ImportRequest, Outcome
from app.networks.models import Payer
from tests.conftest import Backend
from tests.imports.helpers import roster_csv, roster_state, row


def queue(backend: Backend, tmp_path: Path, payer_id: int, content: bytes, name: str) -> int:
    upload = tmp_path / f"{name}.upload"
    upload.write_bytes(content)
    request = ImportRequest(format=Format.CSV, mode=Mode.REPLACE, payer_id=payer_id, upload=upload)
    with Session(backend.engine) as session, session.begin():
        job = jobs.create_job(session, request=request, api_key_id=None, bytes_total=len(content))
        return job.id


def add_payers(backend: Backend, *names: str) -> list[int]:
    with Session(backend.engine) as session, session.begin():
        payers = [Payer(name=name) for name in names]
        session.add_all(payers)
        session.flush()
        return [payer.id for payer in payers]


def status(backend: Backend, job_id: int) -> JobStatus:
    with Session(backend.engine) as session:
        return session.get_one(ImportJob, job_id).status


def test_each_job_is_claimed_once_and_a_payers_jobs_in_order(
    own_database: Backend, tmp_path: Path
) -> None:
    backend = own_database
    first_payer, second_payer = add_payers(backend, "Lakeshore Health", "Prairie Mutual")
    a1 = queue(
        backend,
        tmp_path,
        first_payer,
        roster_csv([row(1, "loop", "Silver PPO", plan_type="commercial")]),
        "a1",
    )
    a2 = queue(backend, tmp_path, first_payer, roster_csv([row(2, "loop", "Silver PPO")]), "a2")
    b1 = queue(
        backend,
        tmp_path,
        second_payer,
        roster_csv([row(3, "loop", "Gold HMO", plan_type="commercial")]),
        "b1",
    )

    claimed: list[int | None] = []
    barrier = threading.Barrier(3)

    def claim() -> None:
        barrier.wait()
        claimed.append(jobs.claim_next(backend.engine, tmp_path))

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Three workers at once: the two payers' first jobs, each once; a1's payer waits.
    assert sorted(job for job in claimed if job is not None) == [a1, b1]
    assert claimed.count(None) == 1
    assert status(backend, a2) is JobStatus.QUEUED
    assert jobs.claim_next(backend.engine, tmp_path) is None  # a2 waits for a1 to finish

    jobs.run_job(backend.engine, a1, tmp_path)
    assert jobs.claim_next(backend.engine, tmp_path) == a2
    for job_id in (b1, a2):  # claimed, never run: their locks (connections) go back
        jobs._held.pop(job_id).release()


def test_a_worker_runs_what_is_queued(own_database: Backend, tmp_path: Path) -> None:
    backend = own_database
    (payer_id,) = add_payers(backend, "Lakeshore Health")
    first = queue(
        backend,
        tmp_path,
        payer_id,
        roster_csv([row(1, "loop", "Silver PPO", plan_type="commercial")]),
        "one",
    )
    second = queue(
        backend, tmp_path, payer_id, roster_csv([row(2, "lakeview", "Silver PPO")]), "two"
    )
    worker = jobs.Worker(backend.engine, tmp_path)
    assert worker.run_pending() == 2
    assert (status(backend, first), status(backend, second)) == (JobStatus.SUCCEEDED,) * 2
    # In order: the second (replace) roster is the one that stands.
    current = [entry for entry in roster_state(backend.engine, payer_id) if entry[-1] is None]
    assert [entry[1] for entry in current] == ["2300 N Lincoln Ave"]
    assert not list(tmp_path.glob("*.upload"))  # uploads are removed once read
    # And each job's lock and progress files (SQLite) once run.
    assert not list(tmp_path.glob("job-*"))


def test_a_worker_process_shows_its_progress_to_other_processes(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "postgres":
        pytest.skip("PostgreSQL: the worker writes progress on the job row")
    report = jobs._ProgressWriter(backend.engine, 7, tmp_path, None)
    report(4_000, 250_000)
    jobs._live.pop(7)  # as another process, the API's, sees it: not in its memory
    assert jobs.live_progress(7, tmp_path) == jobs.LiveProgress(4_000, 250_000)
    report(8_000, 500_000)  # within the second: the file is not written again yet
    jobs._live.pop(7)
    assert jobs.live_progress(7, tmp_path) == jobs.LiveProgress(4_000, 250_000)
    assert jobs.live_progress(8, tmp_path) is None  # a job with no file (yet)


def test_a_job_whose_worker_is_gone_fails_and_its_spooled_upload_goes(
    own_database: Backend, tmp_path: Path
) -> None:
    backend = own_database
    (payer_id,) = add_payers(backend, "Lakeshore Health")
    job_id = queue(backend, tmp_path, payer_id, roster_csv([row(1, "loop")]), "lost")
    # Claimed by a worker that died: its lock went with it.
    assert jobs.claim_next(backend.engine, tmp_path) == job_id
    assert jobs.recover_abandoned(backend.engine, tmp_path) == []  # alive: it holds the lock
    (tmp_path / f"job-{job_id}.progress").write_text("4000 250000")  # as a SQLite worker's
    jobs._held.pop(job_id).release()
    assert jobs.recover_abandoned(backend.engine, tmp_path) == [job_id]
    assert status(backend, job_id) is JobStatus.FAILED
    assert not list(tmp_path.glob("*.upload"))
    assert not list(tmp_path.glob("job-*"))  # its lock and progress files too


def test_a_job_whose_upload_this_worker_cannot_see_fails_saying_where_it_looked(
    own_database: Backend, tmp_path: Path
) -> None:
    """A worker on another machine than the API, without the shared import directory."""
    backend = own_database
    (payer_id,) = add_payers(backend, "Lakeshore Health")
    job_id = queue(backend, tmp_path, payer_id, roster_csv([row(1, "loop")]), "elsewhere")
    (tmp_path / "elsewhere.upload").unlink()
    assert jobs.claim_next(backend.engine, tmp_path) == job_id
    outcome = jobs.run_job(backend.engine, job_id, tmp_path)
    assert not outcome.succeeded
    with Session(backend.engine) as session:
        job = session.get_one(ImportJob, job_id)
    assert job.status is JobStatus.FAILED
    assert job.message == outcome.message
    assert job.message.startswith(
        f"the upload is not where the API stored it ({tmp_path / 'elsewhere.upload'}): "
        "every worker must see the API's PTDIR_IMPORT_DIR"
    )


def test_a_worker_that_dies_once_the_roster_committed_leaves_the_job_saying_so(
    own_database: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's outcome commits with the roster: not "nothing was written" after it."""
    backend = own_database
    (payer_id,) = add_payers(backend, "Lakeshore Health")
    content = roster_csv([row(n, "loop", "Silver PPO", plan_type="commercial") for n in (1, 2)])
    job_id = queue(backend, tmp_path, payer_id, content, "committed")
    run_import = jobs.run_import

    def dies_after_the_commit(*args: Any, **kwargs: Any) -> Outcome:
        run_import(*args, **kwargs)
        raise RuntimeError("the process ends here")

    monkeypatch.setattr(jobs, "run_import", dies_after_the_commit)
    assert jobs.claim_next(backend.engine, tmp_path) == job_id
    with pytest.raises(RuntimeError, match="the process ends here"):
        jobs.run_job(backend.engine, job_id, tmp_path)
    assert jobs.recover_abandoned(backend.engine, tmp_path) == []
    with Session(backend.engine) as session:
        job = session.get_one(ImportJob, job_id)
        assert (job.status, job.message) == (JobStatus.SUCCEEDED, "2 record(s) imported")
        assert job.counts["therapists_created"] == 2
    assert len(roster_state(backend.engine, payer_id)) == 2


def test_an_upload_whose_pair_is_missing_is_not_left_behind(
    own_database: Backend, tmp_path: Path
) -> None:
    backend = own_database
    (payer_id,) = add_payers(backend, "Lakeshore Health")
    providers, plans = tmp_path / "providers.upload", tmp_path / "plans.upload"
    providers.write_bytes(b"[]")
    request = ImportRequest(
        format=Format.QHP, mode=Mode.REPLACE, payer_id=payer_id, upload=providers,
        plans_upload=plans,
    )  # fmt: skip
    with Session(backend.engine) as session, session.begin():
        job_id = jobs.create_job(session, request=request, api_key_id=None, bytes_total=2).id
    assert jobs.claim_next(backend.engine, tmp_path) == job_id
    assert not jobs.run_job(backend.engine, job_id, tmp_path).succeeded
    assert not providers.exists()
