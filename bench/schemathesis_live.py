"""Schemathesis over HTTP against a live server: the same checks as the test suite's run.

    python bench/schemathesis_live.py [--database-url URL] [--port P]
                                      [--max-examples N] [--seed S]

Migrates a fresh database (default: a temporary SQLite file), issues an admin
key, starts `ptdir serve` on 127.0.0.1, adds one record of each kind, and runs
the Schemathesis CLI with bench/schemathesis.toml and the admin key on every
request. Exits with the CLI's status (0: no failures), and stops the server.
Traffic goes to the loopback address only; the run is bounded by examples per
operation, and requests time out after 10 s.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.factories import create_payer, create_plan, create_therapist, therapist_body

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = ROOT / "bench" / "schemathesis.toml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ptdir(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "ptdir"), *args], env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def wait_until_up(base_url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20261101)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="ptdir-schemathesis-"))
    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PTDIR_DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'live.sqlite3'}",
        "PTDIR_IMPORT_DIR": str(scratch / "imports"),
        "PTDIR_ACCESS_LOG": "false",
        "PTDIR_LOG_LEVEL": "warning",
        # Thousands of requests from one address would mostly meet the read limit's
        # 429 instead of the operation; the limit has its own tests (tests/ratelimit).
        "PTDIR_RATE_LIMIT_PER_MINUTE": "0",
    }
    ptdir(env, "db", "upgrade")
    key = ptdir(env, "keys", "create", "--role", "admin", "--name", "schemathesis").split()[-1]
    admin = {"Authorization": f"Bearer {key}"}

    server = subprocess.Popen(
        [str(BIN / "ptdir"), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env
    )
    try:
        wait_until_up(base_url, server)
        with httpx.Client(base_url=base_url, timeout=10) as client:
            payer = create_payer(client, admin, name="Schemathesis payer")
            plan = create_plan(client, admin, payer["id"])
            body = therapist_body(1)
            body["practices"][0]["participations"] = [{"plan_id": plan["id"]}]
            create_therapist(client, admin, body)
        command = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            str(args.max_examples),
            "--seed",
            str(args.seed),
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ]
        hooks = {"SCHEMATHESIS_HOOKS": "bench.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        return subprocess.run(command, env={**os.environ, **hooks}, check=False).returncode
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
