"""Private PostgreSQL servers on loopback, for tests that stop, restart or replicate one.

Such tests cannot use the shared server of the PostgreSQL tier (stopping it would
break every other test), so they make their own with initdb, and a streaming
replica with pg_basebackup. The server refuses to run as root: as root, the
commands run as the `postgres` account.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.db import create_db_engine
from app.migrate import prepare_database
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES


@dataclass(frozen=True)
class Tools:
    bin_dir: Path
    run_as: list[str]  # the command prefix that runs as the server's account


@dataclass
class Cluster:
    tools: Tools
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str) -> None:
        ctl = [str(self.tools.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60"]
        run([*self.tools.run_as, *ctl, *args])

    def start(self) -> None:
        self.ctl("-l", str(self.data_dir / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "stop")

    def sql(self, statement: str, database: str = "postgres") -> object:
        engine = create_engine(self.url(database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_tools() -> Tools:
    """initdb and friends, or skip (fail when the PostgreSQL tier is required)."""
    if not POSTGRES_URL:
        pytest.skip("PTDIR_TEST_POSTGRES_URL is not set (the PostgreSQL tier)")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    bin_dir = next((d for d in candidates if (d / "initdb").exists()), None)
    if bin_dir is None or (run_as and shutil.which("runuser") is None):
        message = "PostgreSQL server programs (initdb, pg_ctl, pg_basebackup) are needed"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return Tools(bin_dir, run_as)


@contextmanager
def workspace(tools: Tools) -> Iterator[Path]:
    """A directory the server's account owns; every server started in it is stopped
    and the directory removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="ptdir-pg-"))
    if tools.run_as:
        shutil.chown(base, "postgres", "postgres")
    try:
        yield base
    finally:
        for data_dir in base.iterdir():
            if (data_dir / "postmaster.pid").exists():
                ctl = [str(tools.bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate"]
                subprocess.run([*tools.run_as, *ctl, "stop"], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def new_primary(tools: Tools, base: Path, name: str = "primary") -> Cluster:
    """A running server that accepts replication from loopback; durability is off (tests)."""
    cluster = Cluster(tools, base / name, free_port())
    run([*tools.run_as, str(tools.bin_dir / "initdb"), "-D", str(cluster.data_dir),
         "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{base}'\nwal_level = replica\n"
            "max_wal_senders = 4\nfsync = off\nshared_buffers = 32MB\n"
        )
    with (cluster.data_dir / "pg_hba.conf").open("a") as hba:
        hba.write("host replication all 127.0.0.1/32 trust\n")
    cluster.start()
    return cluster


def new_replica(primary: Cluster, base: Path, name: str = "replica") -> Cluster:
    """A streaming hot standby of `primary`, running."""
    tools = primary.tools
    replica = Cluster(tools, base / name, free_port())
    run([*tools.run_as, str(tools.bin_dir / "pg_basebackup"), "-h", "127.0.0.1",
         "-p", str(primary.port), "-U", "postgres", "-D", str(replica.data_dir), "-R",
         "-X", "stream", "--no-sync", "--checkpoint=fast"])  # fmt: skip
    with (replica.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {replica.port}\nhot_standby = on\n")
    replica.start()
    return replica


def migrated_database(cluster: Cluster, name: str = "ptdir") -> str:
    """A new database on `cluster` with the service's schema; returns its URL."""
    cluster.sql(f'CREATE DATABASE "{name}"')
    engine = create_db_engine(cluster.url(name))
    prepare_database(engine)
    engine.dispose()
    return cluster.url(name)


@contextmanager
def table_locked(url: str, table: str) -> Iterator[Callable[[], None]]:
    """Another session holds `table` in ACCESS EXCLUSIVE mode, so statements reading it
    wait, until the block ends or the yielded `release()` is called."""
    engine = create_engine(url)
    locked, released = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as connection:
            connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            released.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), f"could not lock {table}"
        yield released.set
    finally:
        released.set()
        holder.join(30)
        engine.dispose()
