"""Reading large JSON files: their start, a top-level array one element at a time, errors.

`array_items` decodes each element with the standard library's C decoder,
about twice as fast as ijson's `items()` on many small objects; memory holds
one element and one chunk of the file. ijson's messages stay the ones users
see: when the decoder refuses something, the same text goes through ijson to
say what is wrong.
"""

import codecs
import io
import json
import math
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson  # type: ignore[import-untyped]

from app.imports.encoding import decode_error, skip_utf8_bom
from app.imports.records import ImportFileError

_JSON_WHITESPACE = b" \t\r\n"
_WHITESPACE = " \t\r\n"
_CHUNK = 64 * 1024
_HEAD = 4096
_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')
# Large enough that the decoder's call overhead is spread over thousands of
# elements, small enough that a chunk, its text and the buffer stay well under
# the few MB a parse may hold (tests/imports/test_qhp.py).
_ARRAY_CHUNK = 256 * 1024
_WHITESPACE_RUN = re.compile(r"[ \t\r\n]+")
# Where the decoder stops this close to the end of what has been read, the
# element may only be cut by the chunk: the longest such cut is a literal or
# number ("-Infinit", "1.5e") or a \uXXXX escape.
_NEAR_THE_END = 16
# How much more ijson may read past the decoder's refusal before the decoder's
# own message stands instead (no text is known that only the decoder refuses).
_IJSON_LOOKAHEAD = 4 * _ARRAY_CHUNK


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, for messages: "a list", "a number"…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def read_json_start(stream: BinaryIO) -> tuple[bytes, bytes]:
    """(first byte that is not whitespace, the bytes from it on), rewound; refuses an empty file."""
    start = skip_utf8_bom(stream).tell()
    while chunk := stream.read(_CHUNK):
        content = chunk.lstrip(_JSON_WHITESPACE)
        if content:
            head = content + stream.read(max(0, _HEAD - len(content)))
            stream.seek(start)
            return content[:1], head[:_HEAD]
    raise ImportFileError("the file is empty")


def describe_json_start(first: bytes, head: bytes) -> str:
    """What a file that starts with `head` holds, for "expected …, found …" messages."""
    if first == b"{":
        resource_type = _RESOURCE_TYPE.search(head)
        if resource_type:
            return f"a JSON object (a FHIR {resource_type.group(1).decode()})"
        if b'"provider_urls"' in head:
            return "a JSON object (the CMS index, cms-data-index.json)"
        return "a JSON object"
    if first == b"[":
        return "a JSON array"
    if first == b'"':
        return "a JSON string"
    if first in b"-0123456789":
        return "a JSON number"
    shown = head[:20].decode("utf-8", "replace")
    return f"something that is not JSON (it starts with {shown!r})"


def json_file_error(error: Exception, stream: BinaryIO, *, where: str) -> ImportFileError:
    """The message for an ijson error: truncated, not UTF-8, or not JSON (`where`: "at …")."""
    detail = error.args[0] if error.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    first_line = str(detail).splitlines()[0] if str(detail).strip() else str(error)
    if "premature EOF" in first_line:
        return _truncated()
    # yajl reports bad bytes without their position; finding them takes a second read.
    bad = _first_invalid_utf8(stream)
    if bad is not None:
        found, line = bad
        if found.reason == "unexpected end of data":
            return _truncated()
        return decode_error(found, line=line)
    reason = first_line.split(": ", 1)[-1].strip()
    return ImportFileError(f"the file is not valid JSON {where}: {reason}")


def array_items(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """(line, element) for each element of the JSON array the stream holds, in order;
    it must start with '['. `line` is the 1-based line the element starts on,
    counting from the stream's position.

    Refuses the file as ijson would: the same messages, "at record N" naming
    the element reached.
    """
    chunks = _TextChunks(stream)
    buffer, position = "", 0
    # Line breaks are counted once each: `line` is the line of `counted` in the buffer.
    line, counted = 1, 0
    while position == len(buffer):
        line += buffer.count("\n")
        buffer = chunks.read()
        if not buffer:
            raise ImportFileError("the file is empty")
        position = len(buffer) - len(buffer.lstrip(_WHITESPACE))
    position += 1  # past the "["
    # The buffer keeps the last element read (or the "["), from `kept` on, for
    # ijson to read again when the decoder refuses what follows.
    kept, kept_length = position, 0
    decode = json.JSONDecoder(
        parse_int=_int64, parse_float=_finite_float, parse_constant=_refuse_constant
    ).raw_decode
    index = 0
    after_item = False  # so what follows must be "," or "]"
    while True:
        if (space := _WHITESPACE_RUN.match(buffer, position)) is not None:
            position = space.end()
        if len(buffer) - position < _NEAR_THE_END and not chunks.done:
            line, counted = line + buffer.count("\n", counted, kept), 0
            buffer, position, kept = buffer[kept:] + chunks.read(), position - kept, 0
            continue
        if position == len(buffer):
            raise _refusal(stream, chunks, buffer[kept:], index, "premature EOF")
        mark = buffer[position]
        if mark == "," and after_item:
            after_item = False
            position += 1
            continue
        if mark == "]" and (after_item or index == 0):
            break
        if after_item:
            number_goes_on = _number_goes_on(buffer, kept, kept + kept_length)
            reached = index - 1 if number_goes_on else index
            raise _refusal(stream, chunks, buffer[kept:], reached, "expected ',' or ']'")
        try:
            item, end = decode(buffer, position)
        except ValueError as error:
            if chunks.done or not _maybe_cut(error, len(buffer)):
                reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
                raise _refusal(stream, chunks, buffer[kept:], index, reason) from error
            line, counted = line + buffer.count("\n", counted, kept), 0
            buffer, position, kept = buffer[kept:] + chunks.read(), position - kept, 0
            continue
        if end > len(buffer) - _NEAR_THE_END and not chunks.done:
            # The chunk may cut a number short ("1.5|e3" decodes as 1.5): read on.
            line, counted = line + buffer.count("\n", counted, kept), 0
            buffer, position, kept = buffer[kept:] + chunks.read(), position - kept, 0
            continue
        line, counted = line + buffer.count("\n", counted, position), position
        yield line, item
        kept, kept_length, position, after_item = position, end - position, end, True
        index += 1
    rest = buffer[position + 1 :]
    while rest or not chunks.done:
        if rest.strip(_WHITESPACE):
            garbage = ValueError("parse error: trailing garbage")
            raise json_file_error(garbage, stream, where=f"at record {index}")
        rest = chunks.read()
    if chunks.failed:
        raise _utf8_error(stream)


class _TextChunks:
    """The stream's bytes from its position as text, a chunk at a time.

    Bytes that are not UTF-8 end the text early, with `failed` set: like
    ijson, the reader refuses them only once it reaches them, so that an
    earlier refusal (plans.json sent as providers.json) is the one reported.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.done = False
        self.failed = False

    def read(self) -> str:
        """The next chunk of text; "" once the stream is exhausted."""
        while not self.done:
            data = self._stream.read(_ARRAY_CHUNK)
            self.done = not data
            try:
                text = self._decoder.decode(data, final=self.done)
            except UnicodeDecodeError as error:
                self.done = self.failed = True
                return error.object[: error.start].decode("utf-8")
            if text:
                return text
        return ""


def _maybe_cut(error: ValueError, length: int) -> bool:
    """Whether the decoder may have refused an element only because the chunk cuts it."""
    if not isinstance(error, json.JSONDecodeError):
        return False  # NaN or Infinity, whole
    return error.pos >= length - _NEAR_THE_END or error.msg.startswith("Unterminated string")


def _number_goes_on(buffer: str, start: int, end: int) -> bool:
    """Whether ijson reads the element at start:end and the next character as one number.

    The decoder ends "1." or "1e" at the "1"; ijson's lexer takes the "." or
    "e" too and refuses the number, so it names that element, not the next.
    """
    if end == len(buffer) or buffer[start] not in "-0123456789":
        return False
    number, following = buffer[start:end].lower(), buffer[end]
    return (following in "eE" and "e" not in number) or (following == "." and "." not in number)


# ijson (yajl) refuses numbers outside a C long long or double; so does this reader.
_INT64_LIMIT = 2**63


def _int64(text: str) -> int:
    number = int(text)
    if len(text) < 19 or -_INT64_LIMIT < number < _INT64_LIMIT:
        return number
    raise ValueError("integer overflow")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError("numeric (floating point) overflow")
    return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _refusal(
    stream: BinaryIO, chunks: _TextChunks, text: str, index: int, reason: str
) -> ImportFileError:
    """What ijson says of `text`, the rest of the file from the last element read on.

    ijson may need to read past what the decoder has (a number ends only at the
    next character), so more is read while it asks for more. Where ijson finds
    nothing wrong, the decoder's `reason` stands.
    """
    where = f"at record {index}"
    limit = len(text) + _IJSON_LOOKAHEAD
    while not chunks.failed:
        try:
            for _ in ijson.basic_parse(io.BytesIO(b"[" + text.encode()), use_float=True):
                pass
        except ijson.JSONError as error:
            if chunks.done or "premature EOF" not in str(error.args[0] if error.args else ""):
                return json_file_error(error, stream, where=where)
            if len(text) > limit:
                break
            text += chunks.read()
            continue
        break
    else:
        # ijson stops at bytes that are not UTF-8, if not before; either way
        # json_file_error reports them first.
        return _utf8_error(stream)
    return json_file_error(ValueError(reason), stream, where=where)


def _utf8_error(stream: BinaryIO) -> ImportFileError:
    bad = _first_invalid_utf8(stream)
    if bad is None or bad[0].reason == "unexpected end of data":
        return _truncated()
    return decode_error(bad[0], line=bad[1])


def _truncated() -> ImportFileError:
    return ImportFileError("the file ends before the JSON is complete (truncated upload?)")


def _first_invalid_utf8(stream: BinaryIO) -> tuple[UnicodeDecodeError, int] | None:
    skip_utf8_bom(stream)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while True:
        chunk = stream.read(1024 * 1024)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            return error, line + error.object.count(b"\n", 0, error.start)
        if not chunk:
            return None
        line += chunk.count(b"\n")
