"""The NPPES dissemination CSV: physical therapists become provider records, other rows skips."""

import csv
import io
from pathlib import Path

import pytest

from app.imports.formats import nppes
from app.imports.records import (
    ImportFileError,
    ProviderRecord,
    Record,
    SiteRecord,
    Skipped,
)
from tests.imports.parser_helpers import count_and_peak_memory, read

SAMPLE = Path(__file__).parent.parent / "fixtures" / "nppes" / "nppes_sample_practitioners.csv"
with SAMPLE.open(encoding="utf-8", newline="") as _sample:
    HEADER = next(csv.reader(_sample))

# A physical therapist as NPPES lists one; tests change what they are about.
PT_ROW = {
    "NPI": "1234567893",
    "Entity Type Code": "1",
    "Provider Last Name (Legal Name)": "RIVERA",
    "Provider First Name": "ANA",
    "Provider Middle Name": "LUZ",
    "Provider Name Suffix Text": "",
    "Provider Credential Text": "PT, DPT",
    "Provider Gender Code": "F",
    "Provider First Line Business Practice Location Address": "100 MAIN ST",
    "Provider Second Line Business Practice Location Address": "SUITE 2",
    "Provider Business Practice Location Address City Name": "HARTFORD",
    "Provider Business Practice Location Address State Name": "CT",
    "Provider Business Practice Location Address Postal Code": "061063210",
    "Provider Business Practice Location Address Country Code (If outside U.S.)": "US",
    "Provider Business Practice Location Address Telephone Number": "8605550147",
    "Provider Business Practice Location Address Fax Number": "8605550148",
    "Healthcare Provider Taxonomy Code_1": "225100000X",
    "Healthcare Provider Primary Taxonomy Switch_1": "Y",
}


def nppes_bytes(*rows: dict[str, str], header: list[str] = HEADER) -> bytes:
    """A dissemination file with the real header and the given cells (others empty)."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return text.getvalue().encode("utf-8")


def parse_bytes(data: bytes) -> list[Record]:
    return read(nppes.parse, data)


def pt(**changes: str) -> dict[str, str]:
    return PT_ROW | changes


def only_provider(data: bytes) -> ProviderRecord:
    (record,) = parse_bytes(data)
    assert isinstance(record, ProviderRecord), record
    return record


def only_skip_reason(data: bytes) -> str:
    (record,) = parse_bytes(data)
    assert isinstance(record, Skipped), record
    return record.reason


def test_sample_yields_the_45_pt_and_pta_rows_and_skips_the_rest() -> None:
    # The data README says 46, but counting the rows whose Code_1..15 include
    # 2251…X or 225200000X (with grep and with csv) gives 45: the other
    # 22…X codes in the sample are 225400000X, 225X00000X and 225XH1200X,
    # none of them physical therapy.
    with SAMPLE.open("rb") as stream:
        records = list(nppes.parse(stream))
    providers = [record for record in records if isinstance(record, ProviderRecord)]
    skipped = [record for record in records if isinstance(record, Skipped)]
    assert len(providers) == 45
    assert len(skipped) == 1955
    assert {record.reason for record in skipped} == {"no physical-therapy taxonomy"}
    assert [record.index for record in records] == list(range(2000))
    # No field in the sample spans lines, so row n is on line n + 2.
    assert all(record.line == record.index + 2 for record in records)
    assert all(record.specialties and not record.problems for record in providers)


def test_sample_row_with_several_pt_taxonomies_maps_field_by_field() -> None:
    with SAMPLE.open("rb") as stream:
        (sweeney,) = (
            record
            for record in nppes.parse(stream)
            if isinstance(record, ProviderRecord) and record.npi == "1184627671"
        )
    assert sweeney == ProviderRecord(
        index=166,
        line=168,
        npi="1184627671",
        first_name="THOMAS",
        middle_name="MICHAEL",
        last_name="SWEENEY",
        name_suffix=None,
        credentials=["RPT"],
        gender="male",
        # Code_6 is 225400000X (rehabilitation practitioner), not physical therapy.
        specialties=["225100000X", "2251G0304X", "2251N0400X", "2251S0007X", "2251X0800X"],
        sites=[
            SiteRecord(
                address_line1="506 CROMWELL AVE",
                address_line2="SUITE 103",
                city="ROCKY HILL",
                state="CT",
                zip="06067-1851",
                phone="8607219801",
                fax="8607218475",
            )
        ],
    )


def test_sample_chiropractor_and_pt_keeps_the_pt_codes_primary_first() -> None:
    with SAMPLE.open("rb") as stream:
        (comeau,) = (
            record
            for record in nppes.parse(stream)
            if isinstance(record, ProviderRecord) and record.npi == "1760480131"
        )
    # Code_1 111N00000X (chiropractor) is dropped; 225100000X is in slots 2 and 3.
    assert comeau.specialties == ["225100000X"]
    assert comeau.credentials == ["PT", "DC"]
    assert comeau.sites[0].address_line2 is None


def test_pt_row_maps_every_column() -> None:
    record = only_provider(nppes_bytes(pt(**{"Provider Name Suffix Text": "JR."})))
    assert record == ProviderRecord(
        index=0,
        line=2,
        npi="1234567893",
        first_name="ANA",
        middle_name="LUZ",
        last_name="RIVERA",
        name_suffix="JR.",
        credentials=["PT", "DPT"],
        gender="female",
        specialties=["225100000X"],
        sites=[
            SiteRecord(
                address_line1="100 MAIN ST",
                address_line2="SUITE 2",
                city="HARTFORD",
                state="CT",
                zip="06106-3210",
                phone="8605550147",
                fax="8605550148",
                accepting_new_patients=None,
                plans=[],
            )
        ],
    )


def test_cells_are_stripped_and_empty_cells_are_none() -> None:
    record = only_provider(
        nppes_bytes(pt(**{"Provider First Name": "  ANA ", "Provider Middle Name": "   "}))
    )
    assert record.first_name == "ANA"
    assert record.middle_name is None


@pytest.mark.parametrize(
    ("postal_code", "expected"),
    [("061063210", "06106-3210"), ("06106", "06106"), ("", None), ("0610", "0610")],
)
def test_nine_digit_zip_gets_its_hyphen_others_pass_through(
    postal_code: str, expected: str | None
) -> None:
    column = "Provider Business Practice Location Address Postal Code"
    record = only_provider(nppes_bytes(pt(**{column: postal_code})))
    assert record.sites[0].zip == expected


@pytest.mark.parametrize(
    ("code", "expected"), [("M", "male"), ("F", "female"), ("U", None), ("", None)]
)
def test_gender_code(code: str, expected: str | None) -> None:
    assert only_provider(nppes_bytes(pt(**{"Provider Gender Code": code}))).gender == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT, DPT", ["PT", "DPT"]),
        ("P.T., D.P.T.", ["PT", "DPT"]),
        ("M.S.P.T.", ["MSPT"]),
        ("PT; OCS", ["PT", "OCS"]),
        ("PT, PT", ["PT"]),
        ("", []),
    ],
)
def test_credential_text_is_split_and_undotted(text: str, expected: list[str]) -> None:
    record = only_provider(nppes_bytes(pt(**{"Provider Credential Text": text})))
    assert record.credentials == expected


def test_primary_taxonomy_comes_first_and_non_pt_codes_are_dropped() -> None:
    row = pt(
        **{
            "Healthcare Provider Taxonomy Code_1": "225100000X",
            "Healthcare Provider Primary Taxonomy Switch_1": "N",
            "Healthcare Provider Taxonomy Code_2": "207Q00000X",
            "Healthcare Provider Primary Taxonomy Switch_2": "N",
            "Healthcare Provider Taxonomy Code_3": "2251X0800X",
            "Healthcare Provider Primary Taxonomy Switch_3": "N",
            "Healthcare Provider Taxonomy Code_15": "2251N0400X",
            "Healthcare Provider Primary Taxonomy Switch_15": "Y",
            "Healthcare Provider Taxonomy Code_4": "225100000X",
        }
    )
    assert only_provider(nppes_bytes(row)).specialties == ["2251N0400X", "225100000X", "2251X0800X"]


def test_physical_therapy_assistant_is_a_provider() -> None:
    row = pt(**{"Healthcare Provider Taxonomy Code_1": "225200000X"})
    assert only_provider(nppes_bytes(row)).specialties == ["225200000X"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Entity Type Code": "2"}, "organization (entity type 2)"),
        ({"Healthcare Provider Taxonomy Code_1": "225X00000X"}, "no physical-therapy taxonomy"),
        ({"Healthcare Provider Taxonomy Code_1": ""}, "no physical-therapy taxonomy"),
        ({"NPI Deactivation Date": "05/01/2019"}, "NPI deactivated"),
        (
            # Reactivated, then deactivated again.
            {"NPI Deactivation Date": "05/01/2019", "NPI Reactivation Date": "01/10/2018"},
            "NPI deactivated",
        ),
        (
            {"Provider Business Practice Location Address Country Code (If outside U.S.)": "CA"},
            "practice location outside the US (CA)",
        ),
        (
            {
                "Provider Business Practice Location Address City Name": "APO",
                "Provider Business Practice Location Address State Name": "AE",
                "Provider Business Practice Location Address Postal Code": "090010001",
            },
            "practice address cannot be placed (unknown ZIP code and city)",
        ),
        (
            {
                "Provider Business Practice Location Address City Name": "FPO",
                "Provider Business Practice Location Address State Name": "AP",
                "Provider Business Practice Location Address Postal Code": "963490001",
            },
            "practice address cannot be placed (unknown ZIP code and city)",
        ),
    ],
)
def test_rows_outside_the_directory_are_skipped_with_a_reason(
    changes: dict[str, str], reason: str
) -> None:
    assert only_skip_reason(nppes_bytes(pt(**changes))) == reason


def test_an_unknown_zip_in_a_known_city_is_a_provider() -> None:
    # 06198 is no ZIP the offline table knows; the import places the site at Hartford.
    column = "Provider Business Practice Location Address Postal Code"
    assert only_provider(nppes_bytes(pt(**{column: "06198"}))).sites[0].zip == "06198"


def test_a_state_that_is_not_a_code_is_left_to_validation_not_skipped() -> None:
    column = "Provider Business Practice Location Address State Name"
    assert only_provider(nppes_bytes(pt(**{column: "Connecticut"}))).sites[0].state == "Connecticut"


def test_deactivated_npi_with_empty_entity_type_is_skipped_as_deactivated() -> None:
    # NPPES blanks every other column of a deactivated NPI.
    row = {"NPI": "1234567893", "NPI Deactivation Date": "05/01/2019"}
    assert only_skip_reason(nppes_bytes(row)) == "NPI deactivated"


def test_rows_that_withdraw_an_npi_carry_it_and_other_skips_do_not() -> None:
    occupational = {"Healthcare Provider Taxonomy Code_1": "225X00000X"}
    abroad = {"Provider Business Practice Location Address Country Code (If outside U.S.)": "CA"}
    records = parse_bytes(
        nppes_bytes(
            {"NPI": "1234567893", "NPI Deactivation Date": "05/01/2019"},
            pt(NPI="1255334207", **occupational),
            pt(NPI="1740283779", **{"Entity Type Code": "2"}),
            pt(NPI="1982607917", **abroad),
        )
    )
    assert [(r.reason.split(" (")[0], r.withdrawn) for r in records if isinstance(r, Skipped)] == [
        ("NPI deactivated", "1234567893"),
        ("no physical-therapy taxonomy", "1255334207"),
        ("organization", None),
        ("practice location outside the US", None),
    ]


def test_reactivated_npi_is_a_provider() -> None:
    row = pt(**{"NPI Deactivation Date": "05/01/2019", "NPI Reactivation Date": "06/01/2019"})
    assert only_provider(nppes_bytes(row)).npi == "1234567893"


def test_practice_country_empty_counts_as_us() -> None:
    column = "Provider Business Practice Location Address Country Code (If outside U.S.)"
    assert only_provider(nppes_bytes(pt(**{column: ""}))).sites[0].state == "CT"


def test_skips_and_providers_share_one_row_index() -> None:
    records = parse_bytes(nppes_bytes(pt(**{"Entity Type Code": "2"}), pt(), pt()))
    assert [(type(record), record.index, record.line) for record in records] == [
        (Skipped, 0, 2),
        (ProviderRecord, 1, 3),
        (ProviderRecord, 2, 4),
    ]


def test_quoted_newline_in_a_field_keeps_line_numbers_right() -> None:
    multiline = pt(**{"Provider Second Line Business Practice Location Address": "SUITE 2\nREAR"})
    records = parse_bytes(nppes_bytes(multiline, pt()))
    assert [record.line for record in records] == [2, 4]
    first = records[0]
    assert isinstance(first, ProviderRecord)
    assert first.sites[0].address_line2 == "SUITE 2\nREAR"


def test_header_of_another_file_is_refused_naming_a_missing_column() -> None:
    with pytest.raises(ImportFileError, match="not an NPPES dissemination file") as refused:
        parse_bytes(b"npi,first_name,last_name\n1234567893,Ana,Rivera\n")
    assert "'NPI'" in refused.value.message


def test_header_missing_one_used_column_names_it() -> None:
    header = [name for name in HEADER if name != "Healthcare Provider Taxonomy Code_7"]
    with pytest.raises(ImportFileError, match="'Healthcare Provider Taxonomy Code_7'"):
        parse_bytes(nppes_bytes(pt(), header=header))


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(ImportFileError, match=r"^the file is empty$"):
        parse_bytes(data)


def test_utf8_byte_order_mark_is_accepted() -> None:
    record = only_provider(b"\xef\xbb\xbf" + nppes_bytes(pt()))
    assert record.npi == "1234567893"


def test_utf16_is_refused() -> None:
    data = nppes_bytes(pt()).decode("utf-8").encode("utf-16")
    with pytest.raises(ImportFileError, match="UTF-16"):
        parse_bytes(data)


def test_latin1_byte_is_refused_naming_its_line() -> None:
    data = nppes_bytes(pt(), pt(), pt(**{"Provider Last Name (Legal Name)": "MÜLLER"}))
    data = data.replace("MÜLLER".encode(), "MÜLLER".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not valid UTF-8 on line 4") as refused:
        parse_bytes(data)
    assert refused.value.line == 4


def test_bad_byte_deep_in_a_large_file_names_its_line() -> None:
    # Far past the text layer's first read-ahead block.
    rows = [pt() for _ in range(200)]
    rows.append(pt(**{"Provider First Name": "JOSÉ"}))
    data = nppes_bytes(*rows).replace("JOSÉ".encode(), "JOSÉ".encode("cp1252"))
    with pytest.raises(ImportFileError, match="on line 202"):
        parse_bytes(data)


def test_truncated_last_row_is_refused() -> None:
    data = nppes_bytes(pt(), pt())
    data = data[: data.rindex(b'","')] + b'"\r\n'
    with pytest.raises(ImportFileError, match="line 3 has 328 fields") as refused:
        parse_bytes(data)
    assert refused.value.line == 3


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(nppes_bytes(pt()))
    assert len(list(nppes.parse(stream))) == 1
    assert not stream.closed


def test_memory_stays_flat_over_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "npidata.csv"
    rows, bound = 20_000, 5_000_000
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(HEADER)
        template = [PT_ROW.get(name, "") for name in HEADER]
        npi_position = HEADER.index("NPI")
        for number in range(rows):
            template[npi_position] = f"{1_000_000_000 + number}"
            writer.writerow(template)
    assert path.stat().st_size > 4 * bound

    providers, peak = count_and_peak_memory(nppes.parse, path)
    assert providers == rows
    assert peak < bound, f"peak traced memory {peak:,} bytes"


def test_the_2025_layout_names_the_gender_column_provider_sex_code() -> None:
    """The monthly files of 2025 on renamed `Provider Gender Code`; both layouts load."""
    header = ["Provider Sex Code" if name == "Provider Gender Code" else name for name in HEADER]
    row = pt()
    row["Provider Sex Code"] = row.pop("Provider Gender Code")
    record = only_provider(nppes_bytes(row, header=header))
    assert (record.npi, record.gender) == ("1234567893", "female")
