"""The `ptdir` command: schema migrations, API keys, and `serve` answering on a real port.

These run once, not per backend: each uses its own SQLite file through PTDIR_DATABASE_URL.
"""

import io
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import ApiKey, Role
from app.cli import main
from app.config import get_settings
from app.db import create_db_engine
from app.imports import console, jobs
from app.imports.console import ProgressBar
from app.imports.formats import Format
from app.imports.roster import Mode
from app.imports.service import ImportRequest
from app.migrate import prepare_database
from app.networks.models import Payer
from app.search.models import SearchPractice

ROOT = Path(__file__).resolve().parents[1]
CORE_TABLES = {
    "therapists",
    "practices",
    "locations",
    "payers",
    "plans",
    "participations",
    "api_keys",
    "specialties",
}


@pytest.fixture
def database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    for name in list(os.environ):
        if name.startswith("PTDIR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PTDIR_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create_key(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, "keys", "create", *argv)
    assert code == 0, err
    return out.rstrip("\n").splitlines()[-1]


def authenticate(engine: Engine, key: str) -> auth_service.Principal | None:
    with Session(engine) as session:
        return auth_service.authenticate(session, key)


def count_keys(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(ApiKey)) or 0


def test_db_upgrade_creates_the_schema(
    capsys: pytest.CaptureFixture[str], database_url: str, engine: Engine, tmp_path: Path
) -> None:
    assert not (tmp_path / "cli.sqlite3").exists()
    code, _out, err = run(capsys, "db", "upgrade")
    assert code == 0, err
    assert set(inspect(engine).get_table_names()) >= CORE_TABLES
    # Running it again is harmless.
    assert run(capsys, "db", "upgrade")[0] == 0


def test_keys_create_admin_prints_a_working_key_alone_on_the_last_line(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    code, out, err = run(capsys, "keys", "create", "--role", "admin", "--name", "ops")
    assert code == 0, err
    lines = out.rstrip("\n").splitlines()
    key = lines[-1]
    assert key == key.strip()
    assert " " not in key
    assert key.startswith("ptd_")
    principal = authenticate(engine, key)
    assert principal is not None
    assert principal.role is Role.ADMIN
    assert principal.payer_id is None
    # The key appears once, on its own line, and nowhere else in the output.
    assert (out + err).count(key) == 1


def test_keys_create_payer_key_is_scoped_to_that_payer(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    with Session(engine) as session, session.begin():
        payer = Payer(name="Lakeshore Health Plans")
        session.add(payer)
        session.flush()
        payer_id = payer.id
    key = create_key(capsys, "--role", "payer", "--payer", str(payer_id))
    principal = authenticate(engine, key)
    assert principal is not None
    assert principal.role is Role.PAYER
    assert principal.payer_id == payer_id


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["--role", "payer"], "payer"),
        (["--role", "payer", "--payer", "4242"], "4242"),
    ],
    ids=["without-payer", "unknown-payer"],
)
def test_keys_create_payer_key_without_a_valid_payer_exits_2_with_message(
    capsys: pytest.CaptureFixture[str], engine: Engine, argv: list[str], mentions: str
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, err = run(capsys, "keys", "create", *argv)
    assert code == 2
    assert "error" in err.lower()
    assert mentions in err
    assert "ptd_" not in out + err, "a key was printed anyway"
    assert count_keys(engine) == 0


def test_keys_create_admin_key_with_a_payer_exits_2(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, err = run(capsys, "keys", "create", "--role", "admin", "--payer", "1")
    assert code == 2
    assert err.strip()
    assert "ptd_" not in out
    assert count_keys(engine) == 0


def test_keys_create_with_an_unknown_role_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "create", "--role", "root"])
    assert exit_info.value.code == 2
    assert "root" in capsys.readouterr().err


def test_keys_list_shows_prefixes_never_keys(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    admin_key = create_key(capsys, "--role", "admin", "--name", "ops-laptop")
    second_key = create_key(capsys, "--role", "admin")
    code, out, err = run(capsys, "keys", "list")
    assert code == 0, err
    for key in (admin_key, second_key):
        prefix, secret = key.split("_")[1], key.split("_", 2)[2]
        assert prefix in out
        assert key not in out + err
        assert secret not in out + err
    assert "ops-laptop" in out


def test_keys_revoke_makes_the_key_stop_authenticating(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    revoked = create_key(capsys, "--role", "admin")
    kept = create_key(capsys, "--role", "admin")
    prefix = revoked.split("_")[1]
    assert authenticate(engine, revoked) is not None
    code, out, err = run(capsys, "keys", "revoke", prefix)
    assert code == 0, err
    assert prefix in out + err
    assert authenticate(engine, revoked) is None
    assert authenticate(engine, kept) is not None
    listing = run(capsys, "keys", "list")[1]
    row = next(line for line in listing.splitlines() if line.startswith(prefix))
    assert "yes" in row.split()


def test_keys_revoke_unknown_prefix_exits_2_with_message(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, _out, err = run(capsys, "keys", "revoke", "deadbeef")
    assert code == 2
    assert "deadbeef" in err


def test_db_downgrade_base_then_upgrade_rebuilds_a_working_schema(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    old_key = create_key(capsys, "--role", "admin")
    code, _out, err = run(capsys, "db", "downgrade", "base")
    assert code == 0, err
    assert not CORE_TABLES & set(inspect(engine).get_table_names())
    code, _out, err = run(capsys, "db", "upgrade")
    assert code == 0, err
    assert set(inspect(engine).get_table_names()) >= CORE_TABLES
    assert authenticate(engine, old_key) is None  # the old keys went with the tables
    new_key = create_key(capsys, "--role", "admin")
    assert authenticate(engine, new_key) is not None


def test_db_rebuild_search_restores_a_projection_that_went_missing(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    assert run(capsys, "demo", "load", "--therapists", "30")[0] == 0
    with Session(engine) as session:
        before = session.execute(select(SearchPractice.__table__).order_by("id")).all()
    with engine.begin() as connection:
        connection.execute(SearchPractice.__table__.delete())
    code, _out, err = run(capsys, "db", "rebuild-search")
    assert code == 0, err
    assert f"{len(before)} practices" in err
    with Session(engine) as session:
        after = session.execute(select(SearchPractice.__table__).order_by("id")).all()
    assert len(before) >= 30
    assert after == before


# --- serve --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_and_answers_on_its_port(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "serve" / "ptdir.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTDIR_")}
    env["PTDIR_DATABASE_URL"] = f"sqlite:///{database}"
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with httpx.Client(base_url=base, timeout=2, trust_env=False) as http:
                deadline = time.monotonic() + 30
                ready = None
                while time.monotonic() < deadline:
                    assert process.poll() is None, f"serve exited with {process.returncode}:\n" + (
                        tmp_path / "serve.log"
                    ).read_text(errors="replace")
                    try:
                        ready = http.get("/readyz")
                    except httpx.TransportError:
                        ready = None
                    if ready is not None and ready.status_code == 200:
                        break
                    time.sleep(0.2)
                assert ready is not None, "serve did not answer /readyz within 30 s"
                assert ready.status_code == 200, ready.text
                assert ready.json() == {"status": "ready"}

                docs = http.get("/docs")
                assert docs.status_code == 200
                assert "text/html" in docs.headers["content-type"]

                specialties = http.get("/v1/specialties")
                assert specialties.status_code == 200
                assert "2251N0400X" in {row["code"] for row in specialties.json()}

            assert database.exists(), "serve did not use PTDIR_DATABASE_URL"
            assert not (tmp_path / "xdg" / "ptdir").exists(), "serve used the default database"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def payer_to_import_for(
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A migrated database with payer 1, and an import directory of the test's own."""
    monkeypatch.setenv("PTDIR_IMPORT_DIR", str(tmp_path / "imports"))
    get_settings.cache_clear()
    assert run(capsys, "db", "upgrade")[0] == 0
    with Session(engine) as session, session.begin():
        session.add(Payer(name="Prairie Health"))


@pytest.mark.usefixtures("payer_to_import_for")
def test_an_import_waits_while_another_holds_the_sqlite_database(
    capsys: pytest.CaptureFixture[str], engine: Engine, tmp_path: Path
) -> None:
    """The other import holds SQLite's only write lock until it commits: this one
    says so and starts after it, instead of failing on "database is locked"."""
    other = sqlite3.connect(str(tmp_path / "cli.sqlite3"), check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as a running import holds it
    # Past one busy timeout (5 s) after the command reaches its first attempt.
    releaser = threading.Timer(8, other.rollback)
    releaser.start()
    try:
        example = ROOT / "data" / "roster_example.csv"
        code, out, err = run(capsys, "import", str(example), "--format", "csv", "--payer", "1")
    finally:
        releaser.join()
        other.close()
    assert code == 0, err
    assert "waiting: another import is writing to this SQLite database" in err
    assert "Import job 1: succeeded" in out


@pytest.mark.usefixtures("payer_to_import_for")
def test_import_runs_a_roster_and_prints_a_summary(
    capsys: pytest.CaptureFixture[str], engine: Engine, tmp_path: Path
) -> None:
    example = ROOT / "data" / "roster_example.csv"

    code, out, err = run(capsys, "import", str(example), "--format", "csv", "--payer", "1")
    assert code == 0, err
    assert "Import job 1: succeeded" in out
    therapists_line = next(line for line in out.splitlines() if "therapists" in line)
    assert therapists_line.split()[1:3] == ["4", "0"]  # created, updated
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SearchPractice)) == 5

    code, out, _ = run(capsys, "import", str(example), "--format", "csv", "--payer", "1")
    assert code == 0
    therapists_line = next(line for line in out.splitlines() if "therapists" in line)
    assert therapists_line.split()[1:4] == ["0", "0", "4"]  # the second time: unchanged

    # The CMS sample's physicians: skipped, and the texts that did not map are shown.
    cms = ROOT / "tests" / "fixtures" / "qhp" / "providers.json"
    code, out, _ = run(capsys, "import", str(cms), "--format", "qhp", "--payer", "1", "--mode",
                       "merge")  # fmt: skip
    assert code == 0
    assert "    skipped 2: no physical-therapy specialty" in out.splitlines()
    assert "      line 50: no physical-therapy specialty (Ophthalmology)" in out.splitlines()
    assert "      line 103:" not in out  # a reason without detail lists no examples

    # Warnings are listed, as errors are.
    rows = (ROOT / "data" / "roster_example.csv").read_text().splitlines()
    header, first = rows[0], rows[1]
    phone = header.split(",").index("phone")
    cells = first.split(",")
    cells[phone] = "312-555-0147 x12"
    extension = tmp_path / "extension.csv"
    extension.write_text(f"{header}\n{','.join(cells)}\n")
    code, out, _ = run(capsys, "import", str(extension), "--format", "csv", "--payer", "1",
                       "--mode", "merge")  # fmt: skip
    assert code == 0
    assert "  warning at line 2, phone: line 2: extension '12' left out" in out

    code, _, err = run(capsys, "import", str(example), "--format", "qhp", "--payer", "1")
    assert code == 2
    assert "does not start with '['" in err
    code, _, err = run(capsys, "import", str(example), "--format", "csv", "--payer", "9")
    assert (code, err.strip()) == (2, "error: payer 9 does not exist")
    code, _, err = run(capsys, "import", str(example), "--format", "nppes", "--payer", "1")
    assert code == 2
    assert "leave out --payer" in err


def test_progress_in_a_log_is_plain_lines_and_on_a_terminal_one_redrawn_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log, terminal = io.StringIO(), Terminal()
    for out in (log, terminal):
        bar = ProgressBar(1000, out)
        bar(10, 100)
        bar(20, 200)  # too soon after the first: not shown
        bar.close()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines()[0].startswith("10.0%")
    assert len(log.getvalue().splitlines()) == 1
    assert terminal.getvalue().startswith("\r[###")
    assert terminal.getvalue().endswith("\n")


def test_a_job_row_that_did_not_commit_lets_go_of_its_lock(
    database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next attempt takes the same id (SQLite reuses it) and its lock."""
    prepare_database(engine)
    create_job = jobs.create_job
    attempts: list[int] = []

    def locked_the_first_time(session: Session, **arguments: Any) -> Any:
        job = create_job(session, **arguments)
        attempts.append(job.id)
        if len(attempts) == 1:  # the row's commit fails, as on a busy database

            def refuse(_session: Session) -> None:
                locked = sqlite3.OperationalError("database is locked")
                raise OperationalError("COMMIT", None, locked)

            event.listen(session, "before_commit", refuse, once=True)
        return job

    monkeypatch.setattr(jobs, "create_job", locked_the_first_time)
    request = ImportRequest(
        format=Format.CSV,
        mode=Mode.MERGE,
        payer_id=None,
        upload=ROOT / "data" / "roster_example.csv",
    )
    job_id = console._created_in_turn(engine, request, 1, tmp_path)
    assert attempts == [job_id, job_id]
    jobs.release_claim(job_id)
