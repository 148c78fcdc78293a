"""The roster formats an import accepts, and the parser for each."""

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import BinaryIO

from app.imports.encoding import skip_utf8_bom
from app.imports.records import INTERNAL_NAMES, FieldNames, ImportFileError, Record


class Format(StrEnum):
    QHP = "qhp"  # CMS QHP providers.json
    QHP_PLANS = "qhp_plans"  # CMS QHP plans.json alone: the payer's plan names and ids
    FHIR = "fhir"  # Plan-Net R4, NDJSON or a Bundle (told apart by the first line)
    NPPES = "nppes"  # the NPPES dissemination CSV: the national seed, no networks
    CSV = "csv"  # the project's own roster template (docs/imports.md)


FORMAT_DESCRIPTIONS = {
    Format.QHP: "CMS QHP machine-readable providers.json (a JSON array of providers)",
    Format.QHP_PLANS: "CMS QHP machine-readable plans.json (a JSON array of plans)",
    Format.FHIR: "HL7 Da Vinci PDex Plan-Net R4 resources, as NDJSON or a Bundle",
    Format.NPPES: "the NPPES dissemination CSV (the national NPI file); admin keys only",
    Format.CSV: "the roster CSV template: one row per therapist x location x plan",
}

# Formats that carry networks: they belong to a payer. NPPES is the national seed.
PAYER_FORMATS = frozenset({Format.QHP, Format.QHP_PLANS, Format.FHIR, Format.CSV})


def parse(format: Format, stream: BinaryIO) -> Iterator[Record]:
    """The records of a file in this format, in file order."""
    try:
        yield from _parser(format, stream)
    except RecursionError as error:
        # The JSON decoders build nested values recursively; no roster nests this deep.
        raise ImportFileError(
            "the file nests JSON arrays or objects too deeply to be read"
        ) from error


def field_names(format: Format) -> FieldNames:
    """How problems found after parsing name a field of this format's records."""
    if format in (Format.QHP, Format.QHP_PLANS):
        from app.imports.formats import qhp

        return qhp.FIELD_NAMES
    if format is Format.FHIR:
        from app.imports.formats import fhir

        return fhir.FIELD_NAMES
    if format is Format.NPPES:
        from app.imports.formats import nppes

        return nppes.FIELD_NAMES
    if format is Format.CSV:
        from app.imports.formats import roster_csv

        return roster_csv.FIELD_NAMES
    return INTERNAL_NAMES


def _parser(format: Format, stream: BinaryIO) -> Iterator[Record]:
    if format is Format.QHP:
        from app.imports.formats import qhp

        return qhp.parse_providers(stream)
    if format is Format.QHP_PLANS:
        from app.imports.formats import qhp

        return qhp.parse_plans(stream)
    if format is Format.FHIR:
        from app.imports.formats import fhir

        return fhir.parse_ndjson(stream) if _is_ndjson(stream) else fhir.parse_bundle(stream)
    if format is Format.NPPES:
        from app.imports.formats import nppes

        return nppes.parse(stream)
    from app.imports.formats import roster_csv

    return roster_csv.parse(stream)


def _is_ndjson(stream: BinaryIO) -> bool:
    """A first line that is a whole resource other than a Bundle means NDJSON."""
    skip_utf8_bom(stream)
    first = b""
    while not first.strip():
        first = stream.readline(64 * 1024 * 1024)
        if not first:
            break
    stream.seek(0)
    try:
        resource = json.loads(first)
    except ValueError:
        return False  # a pretty-printed Bundle starts with a lone "{"
    return isinstance(resource, dict) and resource.get("resourceType") != "Bundle"


_HEAD = 64 * 1024


def check_file(format: Format, stream: BinaryIO) -> None:
    """Everything checked before a file is accepted: head and tail, and a CSV's header."""
    check_head_and_tail(format, stream)
    if format in (Format.CSV, Format.NPPES):
        next(iter(parse(format, stream)), None)  # the parser reads and checks the header


def check_head_and_tail(format: Format, stream: BinaryIO) -> None:
    """Cheap checks made while the client waits: empty, encoding, shape, cut short.

    The parser reads the whole file later and finds anything these miss; these
    turn the common mistakes (the wrong file, a UTF-16 export, an upload cut
    off) into an immediate 4xx instead of a failed job.
    """
    skip_utf8_bom(stream)
    start = stream.tell()
    head = stream.read(_HEAD)
    if not head.strip():
        raise ImportFileError("the file is empty")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        cut_by_the_read = len(head) == _HEAD and error.start >= _HEAD - 3
        if not cut_by_the_read:
            line = head.count(b"\n", 0, error.start) + 1
            raise ImportFileError(
                f"the file is not valid UTF-8 (byte 0x{head[error.start]:02x} on line {line}, "
                f"offset {start + error.start}); save it as UTF-8 and upload again",
                line=line,
            ) from error
    first = head.lstrip()[:1]
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(max(start, size - 1024))
    last = stream.read().rstrip()[-1:]
    stream.seek(0)
    if format in (Format.QHP, Format.QHP_PLANS):
        if first != b"[":
            raise ImportFileError(
                f"expected {FORMAT_DESCRIPTIONS[format]}; the file does not start with '['"
            )
        if last != b"]":
            raise ImportFileError(
                "the file does not end with the ']' that closes its JSON array: it is cut "
                "short (truncated), or something follows the array"
            )
    elif format is Format.FHIR:
        if first != b"{":
            raise ImportFileError(
                f"expected {FORMAT_DESCRIPTIONS[format]}; the file does not start with '{{'"
            )
        if last != b"}":
            raise ImportFileError(
                "the file does not end with the '}' that closes a JSON object: it is cut "
                "short (truncated), or something follows the last one"
            )
    elif first in (b"[", b"{"):
        raise ImportFileError(f"expected {FORMAT_DESCRIPTIONS[format]}; the file is JSON")
