"""What the tests of the format parsers share: records from bytes, refusals, memory."""

import io
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import pytest

from app.imports.records import ImportFileError, ProviderRecord, Record

FIXTURES = Path(__file__).parent.parent / "fixtures"

Parser = Callable[[BinaryIO], Iterable[Record]]


def fixture(folder: str, name: str) -> bytes:
    """The bytes of tests/fixtures/<folder>/<name>."""
    return (FIXTURES / folder / name).read_bytes()


def read(parse: Parser, data: bytes) -> list[Record]:
    """Every record `parse` yields from `data`."""
    return list(parse(io.BytesIO(data)))


def refusal(parse: Parser, data: bytes) -> ImportFileError:
    """The ImportFileError `parse` raises before it reaches the end of `data`."""
    with pytest.raises(ImportFileError) as raised:
        read(parse, data)
    return raised.value


def is_provider(record: Record) -> bool:
    return isinstance(record, ProviderRecord)


def count_and_peak_memory(
    parse: Parser, path: Path, *, counted: Callable[[Record], bool] = is_provider
) -> tuple[int, int]:
    """(how many records `counted` accepts, peak traced bytes) reading the file at `path`.

    The records are dropped as they come, as an import does, so the peak is the
    parser's own.
    """
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            count = sum(1 for record in parse(stream) if counted(record))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak
