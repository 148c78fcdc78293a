"""CSV uploads read a row at a time, each with the line it starts on.

Most lines of a roster or NPPES file are simple: no quotes at all, or every
cell quoted and none holding a quote or a line break. Those are split with
`str.split`, several times faster than the csv module when only the first
cells of a wide row are wanted (NPPES rows have 329 cells; the import reads
the first 107). Any other line goes to the csv module, which reads the rest
of its row, so both give the same cells.
"""

import csv
from collections.abc import Iterator
from itertools import chain
from typing import BinaryIO

from app.imports.encoding import decode_error, text_lines
from app.imports.records import ImportFileError

_SEPARATOR = ","
_QUOTED_SEPARATOR = '","'


class CsvRows:
    """The rows of a UTF-8 CSV upload (the csv module's default dialect), blank lines left out.

    Closing it leaves the caller's stream open.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._text = text_lines(stream)
        self._lines = iter(self._text)
        self._line = 0  # lines read so far

    def close(self) -> None:
        # Detached, the wrapper leaves the caller's stream open when it is collected.
        if not self._stream.closed:
            self._text.detach()

    def rows(self, *, keep: int | None = None) -> Iterator[tuple[int, list[str], int]]:
        """(line where the row starts, its cells, how many cells it has).

        With `keep`, only the first `keep` cells are sure to be split out: the
        list may end with the rest of the row in one string.
        """
        limit = csv.field_size_limit()
        cut = -1 if keep is None else keep
        while True:
            try:
                line = next(self._lines)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise self._decode_error(error) from error
            self._line += 1
            body = line.rstrip("\r\n")
            if len(body) > limit or "\0" in body:
                # What the csv module refuses: its messages stay the ones users see.
                yield self._read_with_csv(line)
                continue
            if '"' not in body:
                if body:
                    yield self._line, body.split(_SEPARATOR, cut), body.count(_SEPARATOR) + 1
                continue
            inner = body[1:-1]
            separators = inner.count(_QUOTED_SEPARATOR)
            if body[0] == body[-1] == '"' and len(body) > 1 and inner.count('"') == 2 * separators:
                # Every quote opens or closes a cell, so no cell holds a quote
                # or a line break: the row is this line.
                yield self._line, inner.split(_QUOTED_SEPARATOR, cut), separators + 1
            else:
                yield self._read_with_csv(line)

    def _read_with_csv(self, line: str) -> tuple[int, list[str], int]:
        """The row that starts with `line`, through as many lines as it spans."""
        start = self._line
        reader = csv.reader(chain((line,), self._lines))
        try:
            row = next(reader)
        except UnicodeDecodeError as error:
            raise self._decode_error(error) from error
        except csv.Error as error:
            number = start - 1 + reader.line_num
            raise ImportFileError(
                f"line {number} is not valid CSV: {error}", line=number
            ) from error
        self._line = start - 1 + reader.line_num
        return start, row, len(row)

    def _decode_error(self, error: UnicodeDecodeError) -> ImportFileError:
        # The text layer decodes ahead in blocks, so the reader's position does not say
        # which line holds the bad byte; finding it means reading the raw bytes again.
        # UTF-8 never uses the byte 0x0A inside a character, so lines split cleanly.
        self._stream.seek(0)
        for number, raw in enumerate(self._stream, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as found:
                return decode_error(found, line=number)
        return decode_error(error)
