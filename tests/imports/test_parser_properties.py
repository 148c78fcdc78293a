"""Every roster parser, given hostile input, refuses it only with ImportFileError.

An upload goes through `check_file` while the client waits (an ImportFileError
there is the 422 `invalid-file`), then through `parse` in the worker (an
ImportFileError there fails the job with its message; a record's problems
refuse the record). Any other exception is an "internal error": a 500, or a job
that fails without saying why. So for arbitrary bytes, and for well-formed
files of arbitrary shape, the pipeline must end in records or ImportFileError.
"""

import csv
import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.imports.formats import Format, check_file, parse
from app.imports.formats.nppes import _USED_COLUMNS as NPPES_COLUMNS
from app.imports.formats.roster_csv import COLUMNS as ROSTER_COLUMNS
from app.imports.records import ImportFileError, PlanRecord, ProviderRecord, Skipped

RECORD_TYPES = (PlanRecord, ProviderRecord, Skipped)


def run_upload(format: Format, data: bytes) -> None:
    """What the service does with an upload: check it, then read every record."""
    stream = io.BytesIO(data)
    message = None
    try:
        check_file(format, stream)
        stream.seek(0)
        records = list(parse(format, stream))
    except ImportFileError as error:
        message = error.message
    else:
        assert all(isinstance(record, RECORD_TYPES) for record in records), records
    assert message != "", "an ImportFileError must say what is wrong with the file"


# --- values ------------------------------------------------------------------------------------

# Text of every kind, lone surrogates included (JSON escapes can spell them).
any_text = st.text(st.characters(codec=None), max_size=20)
# Dates and times at the edges of the calendar, with and without offsets.
moments = st.from_regex(
    r"\A(000[01]|9999|19\d\d|20\d\d)-(0\d|1[0-3])-(0\d|[123]\d)"
    r"(T([01]\d|2[0-4]):[0-5]\d(:[0-5]\d)?(Z|[+-](0\d|1[0-4]):[0-5]\d)?)?\Z"
)
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | any_text | moments


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON of any shape, whose objects mostly use the format's own keys."""
    key = st.sampled_from(keys) | any_text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=6),
        max_leaves=25,
    )


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


QHP_KEYS = [
    "npi", "type", "name", "first", "middle", "last", "suffix", "addresses", "address",
    "address_2", "city", "state", "zip", "phone", "specialty", "accepting", "gender",
    "languages", "plans", "plan_id", "plan_id_type", "network_tier", "years",
    "last_updated_on", "marketing_name", "INDIVIDUAL", "HIOS-PLAN-ID",
]  # fmt: skip
FHIR_KEYS = [
    "resourceType", "id", "active", "identifier", "system", "value", "name", "given",
    "family", "suffix", "gender", "qualification", "code", "coding", "display", "text",
    "communication", "practitioner", "location", "specialty", "extension", "url",
    "valueReference", "reference", "valueCodeableConcept", "valueBoolean", "period",
    "start", "end", "meta", "lastUpdated", "telecom", "rank", "address", "line", "city",
    "state", "postalCode", "position", "latitude", "longitude", "network", "plan", "type",
    "fullUrl", "resource", "entry", "Practitioner", "PractitionerRole", "Location",
    "Organization", "InsurancePlan", "http://hl7.org/fhir/sid/us-npi",
    "http://nucc.org/provider-taxonomy", "2251N0400X", "Practitioner/1", "Location/1",
    "Organization/1", "acceptingPatients", "newpt",
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference",
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients",
]  # fmt: skip
FHIR_TYPES = ["Practitioner", "PractitionerRole", "Location", "Organization", "InsurancePlan"]


@st.composite
def fhir_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A resource of a type the parser stores, with fields of any shape."""
    resource = draw(st.dictionaries(st.sampled_from(FHIR_KEYS), json_values(FHIR_KEYS)))
    resource["resourceType"] = draw(st.sampled_from(FHIR_TYPES))
    resource["id"] = draw(st.sampled_from(["1", "2", ""]) | any_text | numbers)
    return resource


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


cells = st.sampled_from(["", "1", "Y", "yes", "2251N0400X", "IL", "60614", "1234567893"]) | (
    any_text | moments | numbers.map(str)
)


# --- arbitrary bytes ----------------------------------------------------------------------------

DEEP = 100_000
HUGE_NUMBER = b"1" * 5_000  # over the 4300 digits Python turns into an int
# Inputs that broke a parser once: nesting deeper than the decoders recurse
# (RecursionError), a number too long for an int (ValueError, and a segfault in
# ijson's C backend), a lone surrogate escape (UnicodeEncodeError in SQLite).
HOSTILE = [
    b"\xef\xbb\xbf",
    b"\xff\xfe[\x00",
    b"[" * DEEP + b"]" * DEEP,
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Practitioner","x":'
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}}]}",
    b'{"resourceType":"Practitioner","x":' + b"[" * DEEP + b"]" * DEEP + b"}",
    b'{"resourceType":"Practitioner","id":' + HUGE_NUMBER + b"}",
    b'{"resourceType":"Bundle","entry":[],"total":' + HUGE_NUMBER + b"}",
    b'[{"npi":' + HUGE_NUMBER + b"}]",
    b'{"resourceType":"Practitioner","id":"p"}\n{"resourceType":"Location","id":'
    + HUGE_NUMBER
    + b"}",
    b'{"resourceType":"Practitioner","id":"\\ud800"}',
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Location","id":"\\udfff"}}]}',
]
raw = st.binary(max_size=600) | st.sampled_from(HOSTILE)


@given(st.sampled_from(HOSTILE), st.sampled_from(list(Format)))
def test_inputs_that_broke_a_parser_end_in_an_import_file_error(
    data: bytes, format: Format
) -> None:
    run_upload(format, data)


@given(raw, st.sampled_from(list(Format)))
def test_any_bytes_end_in_records_or_an_import_file_error(data: bytes, format: Format) -> None:
    run_upload(format, data)


@given(raw, st.sampled_from([b"[", b"{", b"npi,first_name\n", b'{"resourceType":"Bundle"']))
def test_bytes_after_a_plausible_start_end_in_records_or_an_import_file_error(
    data: bytes, start: bytes
) -> None:
    for format in Format:
        run_upload(format, start + data)


# --- well-formed files of any shape -------------------------------------------------------------


@given(st.lists(json_values(QHP_KEYS), max_size=4) | json_values(QHP_KEYS))
def test_qhp_json_of_any_shape_ends_in_records_or_an_import_file_error(value: Any) -> None:
    run_upload(Format.QHP, dumps(value))
    run_upload(Format.QHP_PLANS, dumps(value))


@given(st.lists(fhir_resources(), min_size=1, max_size=5))
def test_fhir_ndjson_of_any_shape_ends_in_records_or_an_import_file_error(
    resources: list[dict[str, Any]],
) -> None:
    run_upload(Format.FHIR, b"\n".join(dumps(resource) for resource in resources))


@st.composite
def fhir_directories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A practitioner with a role at a location in a network, every field of any shape.

    Random resources seldom refer to each other; these do, so the second pass (roles,
    sites, networks, dates) reads what the fields hold.
    """
    field = json_values(FHIR_KEYS) | moments
    nucc = {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "2251N0400X"}]}
    network = {
        "url": "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference",
        "valueReference": {"reference": "Organization/n"},
    }
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": "r",
        "practitioner": {"reference": "Practitioner/p"},
        "specialty": draw(st.just([nucc]) | field),
        "location": draw(st.just([{"reference": "Location/l"}]) | field),
        "extension": draw(st.just([network]) | st.lists(field, max_size=2)),
        "period": {"start": draw(field), "end": draw(field)},
        "meta": {"lastUpdated": draw(field)},
        "telecom": draw(field),
        "active": draw(field),
    }
    location = {
        "resourceType": "Location",
        "id": "l",
        "address": draw(field),
        "position": {"latitude": draw(field), "longitude": draw(field)},
        "telecom": draw(field),
        "extension": draw(field),
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "p",
        **{key: draw(field) for key in ("identifier", "name", "gender", "qualification")},
        "communication": draw(field),
    }
    plan = {"resourceType": "InsurancePlan", "id": draw(field), "network": draw(field)}
    organization = {"resourceType": "Organization", "id": "n", "name": draw(field)}
    resources = [role, location, practitioner, plan, organization]
    return draw(st.permutations(resources))


@given(fhir_directories())
def test_fhir_directory_with_fields_of_any_shape_ends_in_records_or_an_import_file_error(
    resources: list[dict[str, Any]],
) -> None:
    run_upload(Format.FHIR, b"\n".join(dumps(resource) for resource in resources))
    run_upload(
        Format.FHIR,
        dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}),
    )


@given(
    st.lists(
        st.fixed_dictionaries(
            {"resource": fhir_resources()},
            optional={"fullUrl": st.sampled_from(["urn:uuid:1", "urn:uuid:2"]) | any_text},
        )
        | json_values(FHIR_KEYS),
        max_size=5,
    ),
    st.booleans(),
)
def test_fhir_bundle_of_any_shape_ends_in_records_or_an_import_file_error(
    entries: list[Any], type_first: bool
) -> None:
    bundle: dict[str, Any] = {"entry": entries}
    bundle = (
        {"resourceType": "Bundle", **bundle} if type_first else {**bundle, "resourceType": "Bundle"}
    )
    run_upload(Format.FHIR, dumps(bundle))


@given(
    st.lists(
        st.lists(cells, min_size=len(ROSTER_COLUMNS), max_size=len(ROSTER_COLUMNS)), max_size=4
    )
)
def test_roster_csv_with_every_column_and_cells_of_any_kind_ends_in_records_or_an_error(
    rows: list[list[str]],
) -> None:
    run_upload(Format.CSV, csv_bytes([list(ROSTER_COLUMNS), *rows]))


@given(
    st.lists(st.sampled_from(ROSTER_COLUMNS), min_size=1, unique=True),
    st.lists(st.lists(cells, max_size=len(ROSTER_COLUMNS) + 2), max_size=5),
)
def test_roster_csv_of_any_shape_ends_in_records_or_an_import_file_error(
    header: list[str], rows: list[list[str]]
) -> None:
    run_upload(Format.CSV, csv_bytes([header, *rows]))


@given(
    st.lists(st.lists(cells, min_size=len(NPPES_COLUMNS), max_size=len(NPPES_COLUMNS)), max_size=4)
)
def test_nppes_csv_of_any_shape_ends_in_records_or_an_import_file_error(
    rows: list[list[str]],
) -> None:
    run_upload(Format.NPPES, csv_bytes([list(NPPES_COLUMNS), *rows]))
