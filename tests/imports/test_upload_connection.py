"""Uploads through a real HTTP server: how much of a refused body it reads, and what an
upload its client abandons leaves in the logs and metrics.

The test client cannot show either: it hands the application the whole body at once
and never drops a connection.
"""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.edge.logs import ACCESS_LOGGER
from app.main import create_app
from tests.conftest import Backend

LIMIT = 1_000_000
ROUTE = "/v1/payers/{payer_id}/imports"
# Far more than the socket buffers of both ends hold: a server that reads the whole
# body takes it all, one that closes the connection stops the client well short of it.
OVERSIZED = 64 * 1024 * 1024
PIECE = b" " * 256 * 1024

Address = tuple[str, int]


@pytest.fixture(scope="module")
def application(backend: Backend, import_dir: Path) -> Iterator[FastAPI]:
    """An application with a 1 MB import limit and no worker, its lifespan started."""
    settings = Settings(
        database_url=backend.url, import_dir=import_dir, max_import_bytes=LIMIT, import_workers=0
    )
    started = create_app(settings)
    with TestClient(started, raise_server_exceptions=False):
        yield started


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest, application: FastAPI) -> Iterator[Address]:
    """`application` behind uvicorn, with each HTTP parser it can use, on a loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    address = listener.getsockname()
    config = uvicorn.Config(
        application, http=request.param, lifespan="off", log_config=None, access_log=False
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield address
    running.should_exit = True
    thread.join(10)


def head(payer_id: int, key: dict[str, str], framing: str) -> bytes:
    return (
        f"POST /v1/payers/{payer_id}/imports?format=csv HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: {key['Authorization']}\r\nContent-Type: text/csv\r\n{framing}\r\n\r\n"
    ).encode()


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"


def oversized() -> Iterator[bytes]:
    for _ in range(OVERSIZED // len(PIECE)):
        yield PIECE


def push(address: Address, request_head: bytes, body: Iterator[bytes]) -> tuple[bytes, int]:
    """Sends the head, then the body until the server ends the connection.

    Returns what the server answered and how many body bytes went out before it
    closed (all of them, if it never did).
    """
    sent = 0
    with socket.create_connection(address, timeout=5) as connection:
        connection.sendall(request_head)
        try:
            for piece in body:
                connection.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server
        answer = b""
        connection.settimeout(0.5)
        try:
            while data := connection.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass  # reset after the answer (which is still read), or kept open
    return answer, sent


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_an_oversized_upload_is_cut_off_after_its_413(
    server: Address,
    payer_id: int,
    admin: dict[str, str],
    import_dir: Path,
    framing: str,
) -> None:
    spooled_before = set(import_dir.glob("*.upload"))
    if framing == "declared":
        answer, sent = push(
            server, head(payer_id, admin, f"Content-Length: {OVERSIZED}"), oversized()
        )
    else:
        answer, sent = push(
            server, head(payer_id, admin, "Transfer-Encoding: chunked"), chunked(oversized())
        )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"\r\nconnection: close\r\n" in rest.lower()
    assert sent < OVERSIZED // 2, f"the server read {sent} bytes past its 413"
    assert set(import_dir.glob("*.upload")) - spooled_before == set()


def test_an_abandoned_upload_is_logged_as_the_clients_doing_not_a_server_error(
    server: Address,
    application: FastAPI,
    client: TestClient,
    payer_id: int,
    admin: dict[str, str],
    import_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = application.state.metrics.registry

    def served(status: int) -> float:
        labels = {"method": "POST", "route": ROUTE, "status": str(status)}
        return registry.get_sample_value("ptdir_http_requests_total", labels) or 0.0

    before = {status: served(status) for status in (499, 500)}
    spooled_before = set(import_dir.glob("*.upload"))
    caplog.set_level(logging.INFO)
    with socket.create_connection(server, timeout=5) as connection:
        connection.sendall(head(payer_id, admin, "Content-Length: 500000"))
        connection.sendall(b"npi,first_name\n" + b" " * 200_000)
        time.sleep(0.05)  # the server is spooling it
    deadline = time.monotonic() + 5
    while all(served(status) == before[status] for status in before):
        assert time.monotonic() < deadline, "the server did not finish with the request"
        time.sleep(0.02)
    assert served(500) == before[500], "counted as a server error"
    assert served(499) == before[499] + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    accessed = [r for r in caplog.records if r.name == ACCESS_LOGGER and r.route == ROUTE]
    assert [r.status for r in accessed] == [499]
    told = [r.getMessage() for r in caplog.records if r.name == "app.imports.uploads"]
    assert len(told) == 1, told
    assert told[0].startswith("the client closed the connection after ")
    assert set(import_dir.glob("*.upload")) - spooled_before == set()
    assert client.get("/v1/imports", headers=admin).json()["items"] == []
