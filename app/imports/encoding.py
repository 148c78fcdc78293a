"""Text encodings of uploaded files: UTF-8, with or without a byte-order mark."""

import codecs
import io
from typing import BinaryIO

from app.imports.records import ImportFileError

_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def skip_utf8_bom(stream: BinaryIO) -> BinaryIO:
    """Positions the stream after a UTF-8 byte-order mark; refuses UTF-16 and UTF-32.

    The stream must be seekable (uploads are spooled to a file first).
    """
    stream.seek(0)
    head = stream.read(4)
    if head.startswith(codecs.BOM_UTF8):
        stream.seek(len(codecs.BOM_UTF8))
        return stream
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise ImportFileError(
                f"the file is encoded as {name}; save it as UTF-8 and upload again"
            )
    if len(head) >= 2 and (head[0] == 0) != (head[1] == 0):
        # ASCII text in UTF-16 without a BOM has a NUL in every other byte.
        raise ImportFileError("the file looks like UTF-16; save it as UTF-8 and upload again")
    stream.seek(0)
    return stream


def text_lines(stream: BinaryIO) -> io.TextIOWrapper:
    """The stream as UTF-8 text (BOM skipped), raising ImportFileError on other bytes.

    Use `decode_error` to turn the UnicodeDecodeError a read may raise into the
    message the user sees.
    """
    return io.TextIOWrapper(skip_utf8_bom(stream), encoding="utf-8", newline="")


def decode_error(error: UnicodeDecodeError, *, line: int | None = None) -> ImportFileError:
    where = f" on line {line}" if line is not None else ""
    return ImportFileError(
        f"the file is not valid UTF-8{where} (byte 0x{error.object[error.start]:02x}); "
        "save it as UTF-8 and upload again (Latin-1 and Windows-1252 are not accepted)",
        line=line,
    )
