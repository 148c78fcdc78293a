"""Imports under stress: killed half-way, and two for one payer at once."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Table, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.imports import jobs, locking, roster, service
from app.imports.models import ImportJob, JobStatus
from app.imports.service import Progress
from app.networks.models import Payer
from tests.conftest import Backend
from tests.factories import therapist_body
from tests.imports.helpers import checksum, import_bytes, roster_csv, roster_state, row

ROSTER = ("therapists", "locations", "practices", "participations", "plans", "search_practices")
REPO = Path(__file__).parents[2]


def big_roster(therapists: int) -> bytes:
    sites = ("lakeview", "loop", "evanston")
    return roster_csv(
        [row(n, sites[n % 3], "Silver PPO", plan_type="commercial") for n in range(1, therapists)]
    )


def killed_while_writing(
    arguments: list[str],
    environment: dict[str, str],
    just_before: Callable[[int], None] = lambda pid: None,
) -> int:
    """Runs Python with `arguments`, SIGKILLs it once it shows progress; its exit status."""
    return signalled_while_writing(arguments, environment, signal.SIGKILL, just_before)[0]


def signalled_while_writing(
    arguments: list[str],
    environment: dict[str, str],
    sent: signal.Signals,
    just_before: Callable[[int], None] = lambda pid: None,
) -> tuple[int, str]:
    """Runs Python with `arguments`, signals it once it shows progress; its exit status
    and what it wrote on stderr."""
    process = subprocess.Popen(
        [sys.executable, *arguments],
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    shown = b""
    try:
        # Progress shows once the first batches were written (uncommitted).
        while b"records" not in shown:
            chunk = process.stderr.read1(1024) if process.stderr else b""
            assert chunk, f"the import ended before it could be signalled: {shown!r}"
            shown += chunk
        just_before(process.pid)
        process.send_signal(sent)
        shown += process.stderr.read() if process.stderr else b""
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr:
            process.stderr.close()
    return process.returncode, shown.decode(errors="replace")


def replacement_import(backend: Backend, tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """A payer with a roster, and the `ptdir import` of a 40,000-row replacement for it:
    (arguments, environment, the file)."""
    with Session(backend.engine) as session, session.begin():
        session.add(Payer(name="Lakeshore Health"))
    previous = roster_csv([row(1, "loop", "Gold HMO", plan_type="commercial")])
    assert import_bytes(backend.engine, tmp_path, previous, payer_id=1).succeeded
    upload = tmp_path / "replacement.csv"
    upload.write_bytes(big_roster(40_000))
    environment = os.environ | {
        "PTDIR_DATABASE_URL": backend.url,
        "PTDIR_IMPORT_DIR": str(tmp_path / "imports"),
    }
    command = ["-m", "app.cli", "import", str(upload), "--format", "csv", "--payer", "1"]
    return command, environment, upload


def test_sigkill_in_the_middle_leaves_the_previous_roster_and_fails_the_job(
    own_database: Backend, tmp_path: Path
) -> None:
    engine = own_database.engine
    command, environment, upload = replacement_import(own_database, tmp_path)
    before = checksum(engine, *ROSTER)
    assert killed_while_writing(command, environment) == -signal.SIGKILL

    assert checksum(engine, *ROSTER) == before
    with Session(engine) as session:
        job = session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()
        assert job is not None
        assert job.status is JobStatus.RUNNING
        job_id = job.id
    # What a restarted service (or `ptdir worker`) does first.
    worker = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--once"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert worker.returncode == 0
    with Session(engine) as session:
        failed = session.get_one(ImportJob, job_id)
        assert failed.status is JobStatus.FAILED
        assert failed.message == jobs.ABANDONED
    assert checksum(engine, *ROSTER) == before
    assert upload.exists()  # the command line's file, read in place: never deleted


def test_ctrl_c_in_the_middle_leaves_the_previous_roster_and_says_so(
    own_database: Backend, tmp_path: Path
) -> None:
    engine = own_database.engine
    command, environment, _ = replacement_import(own_database, tmp_path)
    before = checksum(engine, *ROSTER)
    code, said = signalled_while_writing(command, environment, signal.SIGINT)
    assert code == 130, said
    assert "Traceback" not in said
    assert f"interrupted: {jobs.INTERRUPTED}" in said
    assert checksum(engine, *ROSTER) == before
    with Session(engine) as session:
        job = session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()
        assert job is not None
        assert (job.status, job.message) == (JobStatus.FAILED, jobs.INTERRUPTED)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def has_ended(pid: int) -> bool:
    """Gone, or a zombie that nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="finds the child process through /proc")
def test_the_reading_process_ends_when_the_import_process_is_killed(
    own_database: Backend, tmp_path: Path
) -> None:
    url, engine = own_database.url, own_database.engine
    with Session(engine) as session, session.begin():
        session.add(Payer(name="Lakeshore Health"))
    before = checksum(engine, *ROSTER)
    upload = tmp_path / "roster.csv"
    upload.write_bytes(big_roster(40_000))
    # `ptdir import`, with every upload read in a child process.
    command = (
        "import sys; from app.imports import reading; reading.CHILD_THRESHOLD_BYTES = 0; "
        "from app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    arguments = ["-c", command, "import", str(upload), "--format", "csv", "--payer", "1"]
    environment = os.environ | {"PTDIR_DATABASE_URL": url, "PTDIR_IMPORT_DIR": str(tmp_path)}
    children: list[int] = []
    status = killed_while_writing(
        arguments, environment, lambda pid: children.extend(children_of(pid))
    )
    assert status == -signal.SIGKILL
    # The reading process, and multiprocessing's resource tracker.
    assert len(children) == 2
    deadline = time.monotonic() + 10
    while not all(map(has_ended, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(has_ended, children)), "a child process outlived the import's process"
    assert checksum(engine, *ROSTER) == before


def test_imports_take_turns_whatever_their_payer(backend: Backend, tmp_path: Path) -> None:
    """The second and third wait for the first's turn to end, the other payer's too."""
    entered: list[str] = []
    release = threading.Event()

    def hold(name: str) -> None:
        with Session(backend.engine) as session, locking.import_turn(session, tmp_path):
            entered.append(name)
            release.wait(10)
            session.rollback()

    first = threading.Thread(target=hold, args=("first",))
    first.start()
    while "first" not in entered:
        time.sleep(0.01)
    others = [threading.Thread(target=hold, args=(name,)) for name in ("same", "other payer")]
    for thread in others:
        thread.start()
    time.sleep(0.5)
    assert entered == ["first"]
    release.set()
    for thread in (first, *others):
        thread.join(10)
    assert sorted(entered) == ["first", "other payer", "same"]


def test_two_payers_importing_the_same_new_therapists_at_once_both_succeed(
    backend: Backend, db: Session, tmp_path: Path
) -> None:
    """Payers share therapists and sites: the second import must neither fail on the
    rows the first has written but not committed nor wait for them inside its own
    transaction (two such imports failed on the unique NPI, or deadlocked)."""
    db.add_all([Payer(name="Lakeshore Health"), Payer(name="Prairie Mutual")])
    db.commit()
    count = roster.BATCH_SIZE + 200  # the first batch is written while the file is read
    files = {
        1: roster_csv(
            [row(n, "loop", "Silver PPO", plan_type="commercial") for n in range(1, count)]
        ),
        2: roster_csv(
            [row(n, "loop", "Gold HMO", plan_type="commercial") for n in range(1, count)]
        ),
    }
    paused, resume = threading.Event(), threading.Event()

    def pause_after_the_first_batch(records: int, _bytes: int) -> None:
        if records > roster.BATCH_SIZE and not paused.is_set():
            paused.set()
            resume.wait(30)

    results = {}

    def run(payer_id: int, progress: Progress | None = None) -> None:
        results[payer_id] = import_bytes(  # one import directory: SQLite's turn is a file in it
            backend.engine, tmp_path, files[payer_id], payer_id=payer_id, progress=progress
        )

    first = threading.Thread(target=run, args=(1, pause_after_the_first_batch))
    first.start()
    assert paused.wait(30), "the first import never got past its first batch"
    second = threading.Thread(target=run, args=(2,))
    second.start()
    wait_until_waiting_for_a_lock(backend)
    resume.set()
    for thread in (first, second):
        thread.join(60)
    assert all(outcome.succeeded for outcome in results.values()), results
    for payer_id, plan in ((1, "Silver PPO"), (2, "Gold HMO")):
        listed = roster_state(backend.engine, payer_id)
        assert len(listed) == count - 1
        assert {entry[2] for entry in listed} == {plan}


def test_a_therapist_added_through_the_api_meanwhile_fails_the_import_saying_so(
    backend: Backend,
    client: TestClient,
    admin: dict[str, str],
    db: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between a batch's look-up and its insert another writer adds one of its NPIs."""
    if backend.name != "postgres":
        pytest.skip("SQLite's one write lock keeps every other writer out of an import")
    db.add(Payer(name="Lakeshore Health"))
    db.commit()
    insert_new = roster.insert_new

    def another_writer_first(connection: Connection, table: Table, rows: list[dict]) -> list[int]:
        if table.name == "therapists":
            body = therapist_body() | {"npi": rows[0]["npi"]}
            assert client.post("/v1/therapists", json=body, headers=admin).status_code == 201
        return insert_new(connection, table, rows)

    monkeypatch.setattr(roster, "insert_new", another_writer_first)
    content = roster_csv([row(n, "loop", "Silver PPO", plan_type="commercial") for n in (1, 2)])
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=1)
    assert not outcome.succeeded
    assert outcome.message == (
        "the import stopped: another writer changed the directory while it ran (a record it "
        "was writing was added or removed meanwhile: uq_therapists_npi); nothing was written "
        "and the previous roster is unchanged; send the file again"
    )
    assert roster_state(backend.engine, 1) == []


def test_a_deadlock_with_another_writer_fails_the_import_saying_so() -> None:
    """PostgreSQL cancels one of two transactions waiting for each other's rows; any
    other operational failure (a lost connection) stays an internal error."""

    class Cancelled(Exception):
        sqlstate = "40P01"

    deadlocked = service._conflict(OperationalError("UPDATE participations", None, Cancelled()))
    assert deadlocked == (
        "the import stopped: another writer changed the directory while it ran (it and "
        "another write each waited for records the other held); nothing was written and "
        "the previous roster is unchanged; send the file again"
    )
    assert service._conflict(OperationalError("SELECT 1", None, ConnectionError())) is None

    class NotNull(Exception):
        sqlstate = "23502"  # a bug of the import's own, not another writer's doing

    assert service._conflict(IntegrityError("INSERT INTO therapists", None, NotNull())) is None


def wait_until_waiting_for_a_lock(backend: Backend) -> None:
    """Returns once a PostgreSQL session waits for a lock (SQLite: after a moment)."""
    if backend.name != "postgres":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 30
    with backend.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            connection.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the second import never waited for the first")


def test_two_replacements_at_once_leave_one_of_them_whole(
    backend: Backend, db: Session, tmp_path: Path
) -> None:
    db.add(Payer(name="Lakeshore Health"))
    db.commit()
    files = {
        "a": roster_csv(
            [row(n, "loop", "Silver PPO", plan_type="commercial") for n in range(1, 300)]
        ),
        "b": roster_csv(
            [row(n, "lakeview", "Gold HMO", plan_type="commercial") for n in range(200, 500)]
        ),
    }
    alone = {}
    for name, content in files.items():
        (tmp_path / name).mkdir()
        import_bytes(backend.engine, tmp_path / name, content, payer_id=1)
        alone[name] = {entry for entry in roster_state(backend.engine, 1) if entry[-1] is None}

    results = {}

    def run(name: str) -> None:
        results[name] = import_bytes(backend.engine, tmp_path / name, files[name], payer_id=1)

    threads = [threading.Thread(target=run, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(outcome.succeeded for outcome in results.values()), results
    current = {entry for entry in roster_state(backend.engine, 1) if entry[-1] is None}
    assert current in (alone["a"], alone["b"])
