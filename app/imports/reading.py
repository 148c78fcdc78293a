"""Reads and checks an upload, in a child process when the file is large.

Parsing and checking a record needs no database, and takes a third to a half
as long as writing it; so for a large upload a child process parses and checks
while the import's own process writes, and the import uses two cores. The child sends
what it found in chunks through a pipe, a few chunks in flight at most, so
memory stays the same whatever the file's size. The import's process keeps
everything that needs the database (declaring plans, writing, counting and
reporting), in file order, so an import reports the same whichever way its
upload was read.

A small upload is read in the import's own process: the child takes about a
second to start.

The child is started with `spawn`, never `fork`: imports run in worker threads
of the API process, and a forked copy of a threaded process can inherit a lock
some other thread held. (`spawn` imports the parent's main module again in the
child, as `__mp_main__`: an entry point keeps its work under
`if __name__ == "__main__"`, as `ptdir`, uvicorn and bench/import.py do.) The
child runs at a lower CPU priority, so that searches served meanwhile keep
their latency, and exits as soon as the import's process is gone (killed
included): nothing it does would be used.
"""

import contextlib
import ctypes
import gc
import logging
import marshal
import multiprocessing
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import lru_cache
from multiprocessing.connection import Connection
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from app.imports.formats import Format, field_names, parse
from app.imports.records import (
    ImportFileError,
    PlanRecord,
    PlanRef,
    Problem,
    ProviderRecord,
    Skipped,
)
from app.imports.validate import Checked, Provider, Site, check_provider
from app.locations.models import GeocodePrecision
from app.reference.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

# Uploads at least this large are read in a child process. It starts in about
# a second (an interpreter, the parsers and checks imported, the ZIP index
# built), then saves the writing process about 40 µs per QHP record and 15 per
# NPPES row (bench/import.py, SQLite): it pays off from about 16 MB of QHP JSON
# and 70 MB of NPPES CSV (whose 329 mostly empty columns make big rows).
CHILD_THRESHOLD_BYTES = 32 * 1024 * 1024
# Records per message. The import reports progress at these boundaries: the
# child sends how far it had read the file with each chunk.
RECORDS_PER_CHUNK = 1000
# Chunks sent but not yet taken by the import's process. A batch write takes
# as long as checking about 4,000 records; the child keeps checking meanwhile.
_IN_FLIGHT = 8
# The child's niceness, as the thread of a queued import (app.imports.jobs).
_NICE = 10
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# Messages, each one marshalled tuple: (_CHUNK | _END, bytes read, records) for
# one file after another, or one of the errors that end the reading.
_CHUNK, _END, _FILE_ERROR, _FAILED = range(4)
# Records inside a chunk, as tuples whose first element says which.
_SKIPPED, _PLAN, _PROVIDER = range(3)


class ReadingFailed(Exception):
    """The child process reading the upload died or failed; nothing it read is usable."""


@dataclass(slots=True)
class CheckedRecord:
    """A provider record after `check_provider`: a Provider, or why it is refused."""

    index: int
    line: int | None
    checked: Checked


Item = Skipped | PlanRecord | CheckedRecord


class Upload(Protocol):
    """An upload's records in file order: the plans file's first, then the main file's."""

    def plans(self) -> Iterator[Item]: ...

    def records(self) -> Iterator[Item]: ...

    def position(self) -> int:
        """Bytes of the main file read when the last record (at a chunk's end) was read."""
        ...


@contextlib.contextmanager
def open_upload(
    format: Format, upload: Path, plans_upload: Path | None, vocabulary: Vocabulary
) -> Iterator[Upload]:
    """The upload's checked records, read here or, for a large file, in a child process."""
    if plans_upload is not None:
        plans_upload.stat()  # a missing file fails here, as it does when read here
    if upload.stat().st_size < CHILD_THRESHOLD_BYTES:
        with _InProcess(format, upload, plans_upload, vocabulary) as here:
            yield here
    else:
        with _InChild(format, upload, plans_upload, vocabulary) as child:
            yield child


def position(stream: BinaryIO) -> int:
    """How far the parser has read the file (buffered reads included)."""
    try:
        return os.lseek(stream.fileno(), 0, os.SEEK_CUR)
    except OSError:
        return 0


def checked(format: Format, stream: BinaryIO, vocabulary: Vocabulary) -> Iterator[Item]:
    """The file's records, each provider checked; problems name fields as the format does."""
    names = field_names(format)
    for record in parse(format, stream):
        if isinstance(record, ProviderRecord):
            checked = check_provider(record, vocabulary, names)
            yield CheckedRecord(record.index, record.line, checked)
        else:
            yield record


class _InProcess:
    def __init__(
        self, format: Format, upload: Path, plans_upload: Path | None, vocabulary: Vocabulary
    ) -> None:
        self.format = format
        self.plans_upload = plans_upload
        self.vocabulary = vocabulary
        self.stream = upload.open("rb")

    def __enter__(self) -> "_InProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.close()

    def plans(self) -> Iterator[Item]:
        if self.plans_upload is None:
            return
        with self.plans_upload.open("rb") as stream:
            yield from checked(Format.QHP_PLANS, stream, self.vocabulary)

    def records(self) -> Iterator[Item]:
        return checked(self.format, self.stream, self.vocabulary)

    def position(self) -> int:
        return position(self.stream)


class _InChild:
    def __init__(
        self, format: Format, upload: Path, plans_upload: Path | None, vocabulary: Vocabulary
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.receiving, sending = context.Pipe(duplex=False)
        files = [(Format.QHP_PLANS, str(plans_upload))] if plans_upload is not None else []
        files.append((format, str(upload)))
        self.has_plans = plans_upload is not None
        self.process = context.Process(
            target=_read_in_child,
            # The collector runs in the child as it does here (see app.imports.service).
            args=(sending, os.getpid(), files, vocabulary, gc.get_threshold()),
            name="import-reader",
            daemon=True,
        )
        self.process.start()
        # The child holds the only writing end now: when it dies, reading ends.
        sending.close()
        self.offset = 0

    def __enter__(self) -> "_InChild":
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A child still reading (the import stopped early) finds the pipe closed.
        self.receiving.close()
        self.process.join(5)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        self.process.close()

    def plans(self) -> Iterator[Item]:
        return self._file() if self.has_plans else iter(())

    def records(self) -> Iterator[Item]:
        return self._file()

    def position(self) -> int:
        return self.offset

    def _file(self) -> Iterator[Item]:
        """The records of the file the child is reading, up to its end."""
        while True:
            message = self._receive()
            kind = message[0]
            if kind == _FILE_ERROR:
                raise ImportFileError(message[2], line=message[1])
            if kind == _FAILED:
                logger.error("the import's reading process failed:\n%s", message[2])
                raise ReadingFailed(f"the process reading the file failed ({message[1]})")
            self.offset = message[1]
            yield from map(_decode, message[2])
            if kind == _END:
                return

    def _receive(self) -> Any:
        try:
            # Only this import's own child writes to the pipe.
            return marshal.loads(self.receiving.recv_bytes())  # noqa: S302
        except (EOFError, OSError):  # gone between messages, or in the middle of one
            self.process.join(5)
            raise ReadingFailed(
                f"the process reading the file ended unexpectedly ({_exit(self.process.exitcode)})"
            ) from None


def _exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# The child ---------------------------------------------------------------------------


def _read_in_child(
    sending: Connection,
    parent: int,
    files: list[tuple[Format, str]],
    vocabulary: Vocabulary,
    collections: tuple[int, int, int],
) -> None:
    _exit_with(parent)
    # Ctrl-C reaches the whole process group: the import's process decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(max(0, _NICE - os.nice(0)))
    gc.set_threshold(*collections)
    outbox = _Outbox(sending)
    chunk: list[tuple[Any, ...]] = []
    try:
        done = 0
        for format, path in files:
            with open(path, "rb") as stream:
                for item in checked(format, stream, vocabulary):
                    chunk.append(_encode(item))
                    done += 1
                    if done % RECORDS_PER_CHUNK == 0:
                        outbox.put((_CHUNK, position(stream), chunk))
                        chunk = []
                outbox.put((_END, position(stream), chunk))
                chunk = []
    except ImportFileError as error:
        outbox.put((_CHUNK, 0, chunk))  # the records before the error count
        outbox.put((_FILE_ERROR, error.line, error.message))
    except Exception as error:
        outbox.put((_FAILED, type(error).__name__, traceback.format_exc()))
    outbox.close()


def _exit_with(parent: int) -> None:
    """Has the kernel kill this process when the import's process (thread) ends."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Gone already, before the line above: this process belongs to whoever adopted it.
    if os.getppid() != parent:
        os._exit(1)


class _Outbox:
    """Sends messages from a thread of its own, so the child reads on while the pipe is full.

    Elsewhere than on Linux the child learns here that the import's process is
    gone: the pipe is broken.
    """

    def __init__(self, sending: Connection) -> None:
        self.sending = sending
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_IN_FLIGHT)
        self.thread = threading.Thread(target=self._send, name="import-outbox", daemon=True)
        self.thread.start()

    def put(self, message: tuple[Any, ...]) -> None:
        self.queue.put(marshal.dumps(message))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _send(self) -> None:
        while (data := self.queue.get()) is not None:
            try:
                self.sending.send_bytes(data)
            except OSError:  # the import's process closed the pipe or is gone
                os._exit(1)
        self.sending.close()


# The encoding ------------------------------------------------------------------------
#
# Records cross the pipe as tuples and lists of strings, numbers and None, in
# the order of the dataclasses' fields, marshalled. Pickling the dataclasses
# themselves was the obvious way, but a slotted dataclass is unpickled field by
# field through __setstate__: for a QHP provider that cost as much as parsing it.


def _encode(item: Item) -> tuple[Any, ...]:
    if isinstance(item, CheckedRecord):
        result = item.checked
        provider = _encode_provider(result.provider) if result.provider is not None else None
        problems, warnings = _encode_problems(result.problems), _encode_problems(result.warnings)
        return (_PROVIDER, item.index, item.line, provider, problems, warnings, result.npi)
    if isinstance(item, PlanRecord):
        plan = (item.key, item.name, item.plan_type, item.hios_plan_id)
        return (_PLAN, item.index, item.line, *plan, _encode_problems(item.problems))
    return (_SKIPPED, item.index, item.line, item.reason, item.withdrawn)


def _decode(values: tuple[Any, ...]) -> Item:
    kind = values[0]
    if kind == _PROVIDER:
        _, index, line, provider, problems, warnings, npi = values
        provider = _decode_provider(provider) if provider is not None else None
        checked = Checked(provider, _decode_problems(problems), _decode_problems(warnings), npi)
        return CheckedRecord(index, line, checked)
    if kind == _PLAN:
        _, index, line, key, name, plan_type, hios_plan_id, problems = values
        return PlanRecord(
            index, line, key, name, plan_type, hios_plan_id, _decode_problems(problems)
        )
    return Skipped(*values[1:])


def _names(cls: type[Any]) -> list[str]:
    return [field.name for field in fields(cls)]


_provider_fields = attrgetter(*_names(Provider))
_site_fields = attrgetter(*_names(Site))
_SITES = _names(Provider).index("sites")
_PRECISION = _names(Site).index("geocode_precision")
_PLANS = _names(Site).index("plans")
_PRECISIONS = {member.value: member for member in GeocodePrecision}


def _encode_problems(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(problem.field, problem.message) for problem in problems]


def _decode_problems(values: list[tuple[str, str]]) -> list[Problem]:
    return [Problem(field, message) for field, message in values]


def _encode_provider(provider: Provider) -> list[Any]:
    values = list(_provider_fields(provider))
    values[_SITES] = [_encode_site(site) for site in provider.sites]
    return values


def _decode_provider(values: list[Any]) -> Provider:
    values[_SITES] = [_decode_site(site) for site in values[_SITES]]
    return Provider(*values)


def _encode_site(site: Site) -> list[Any]:
    values = list(_site_fields(site))
    values[_PRECISION] = site.geocode_precision.value
    values[_PLANS] = [_encode_plan(plan) for plan in site.plans]
    return values


def _decode_site(values: list[Any]) -> Site:
    values[_PRECISION] = _PRECISIONS[values[_PRECISION]]
    values[_PLANS] = [_decode_plan(plan) for plan in values[_PLANS]]
    return Site(*values)


def _encode_plan(plan: PlanRef) -> tuple[Any, ...]:
    start, end, verified = plan.effective_from, plan.effective_to, plan.verified_at
    return (
        plan.key,
        plan.network_tier,
        start.isoformat() if start is not None else None,
        end.isoformat() if end is not None else None,
        verified.isoformat() if verified is not None else None,
        plan.path,
        plan.line,
    )


def _decode_plan(values: tuple[Any, ...]) -> PlanRef:
    key, network_tier, start, end, verified, path, line = values
    return PlanRef(
        key,
        network_tier,
        _date(start) if start is not None else None,
        _date(end) if end is not None else None,
        _moment(verified) if verified is not None else None,
        path,
        line,
    )


# A file has few distinct dates; like the parsers, records share the (immutable) objects.
@lru_cache(maxsize=1024)
def _date(text: str) -> date:
    return date.fromisoformat(text)


@lru_cache(maxsize=1024)
def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
