"""The CSV roster template: rows grouped into therapists, sites and plans; problems named."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app.imports.formats import roster_csv
from app.imports.formats.roster_csv import COLUMNS, REQUIRED_COLUMNS
from app.imports.records import (
    ImportFileError,
    PlanRecord,
    PlanRef,
    Problem,
    ProviderRecord,
    Record,
    SiteRecord,
)
from app.paths import DATA_DIR
from tests.imports.parser_helpers import count_and_peak_memory, read

# validate.py's names of a site's fields that the template's rows repeat.
SITE_FIELDS = ("name", "latitude", "longitude", "phone", "fax", "facility_type",
               "accepting_new_patients", "telehealth")  # fmt: skip

# One therapist at one site in no plan; tests change what they are about.
BASE_ROW = {
    "npi": "1234567893",
    "first_name": "Ana",
    "last_name": "Rivera",
    "specialties": "2251N0400X",
    "address_line1": "2201 N Clark St",
    "city": "Chicago",
    "state": "IL",
    "zip": "60614",
    "accepting_new_patients": "yes",
}
OTHER_SITE = {"address_line1": "1603 Orrington Ave", "city": "Evanston", "zip": "60201"}


def row(**changes: str) -> dict[str, str]:
    return BASE_ROW | changes


def roster_bytes(*rows: dict[str, str], columns: tuple[str, ...] = COLUMNS) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    for cells in rows:
        writer.writerow([cells.get(name, "") for name in columns])
    return text.getvalue().encode("utf-8")


def parse_bytes(data: bytes) -> list[Record]:
    return read(roster_csv.parse, data)


def providers(data: bytes) -> list[ProviderRecord]:
    return [record for record in parse_bytes(data) if isinstance(record, ProviderRecord)]


def only_provider(data: bytes) -> ProviderRecord:
    (record,) = providers(data)
    return record


def problem_fields(record: ProviderRecord) -> list[str]:
    return [problem.field for problem in record.problems]


def test_columns_and_required_columns() -> None:
    assert len(COLUMNS) == 31
    assert len(set(COLUMNS)) == len(COLUMNS)
    assert COLUMNS[0] == "npi"
    assert COLUMNS[-1] == "verified_at"
    assert set(REQUIRED_COLUMNS) == {
        "npi",
        "first_name",
        "last_name",
        "specialties",
        "address_line1",
        "city",
        "state",
        "zip",
        "accepting_new_patients",
    }


def test_example_roster_in_data_parses_without_problems() -> None:
    with (DATA_DIR / "roster_example.csv").open("rb") as stream:
        records = list(roster_csv.parse(stream))
    found = [record for record in records if isinstance(record, ProviderRecord)]
    plans = [record for record in records if isinstance(record, PlanRecord)]
    assert len(found) == 4
    assert len(plans) == 4
    assert all(not record.problems for record in found)
    assert all(not plan.problems for plan in plans)
    neurology = [record for record in found if record.specialties[0] == "2251N0400X"]
    assert neurology, "the example has a neurology PT"
    assert len(neurology[0].sites) == 2
    assert max(len(site.plans) for site in neurology[0].sites) == 2
    assert "peripheral-neuropathy" in neurology[0].conditions
    assert all(site.state == "IL" for record in found for site in record.sites)


def test_row_maps_every_column() -> None:
    cells = {
        "npi": " 1234567893 ",
        "first_name": "Ana",
        "middle_name": "Luz",
        "last_name": "Rivera",
        "name_suffix": "Jr",
        "credentials": "PT; DPT",
        "gender": "F",
        "specialties": "2251N0400X | 225100000X",
        "certifications": "NCS",
        "conditions": "peripheral-neuropathy;;stroke ",
        "services": "balance-training",
        "languages": "en;es",
        "location_name": "Lincoln Park Neuro Rehab",
        "address_line1": "2201 N Clark St",
        "address_line2": "Suite 300",
        "city": "Chicago",
        "state": "IL",
        "zip": "60614-2301",
        "latitude": "41.9221",
        "longitude": "-87.6388",
        "phone": "(312) 555-0147",
        "fax": "312-555-0148",
        "facility_type": "outpatient_clinic",
        "accepting_new_patients": "Yes",
        "telehealth": "0",
        "plan": "Prairie Medicaid",
        "plan_type": "medicaid",
        "network_tier": "preferred",
        "effective_from": "2024-01-01",
        "effective_to": "2025-12-31",
        "verified_at": "2025-03-14",
    }
    assert set(cells) == set(COLUMNS)
    records = parse_bytes(roster_bytes(cells))
    assert records == [
        PlanRecord(
            index=0,
            line=2,
            key="Prairie Medicaid",
            name="Prairie Medicaid",
            plan_type="medicaid",
            hios_plan_id=None,
        ),
        ProviderRecord(
            index=0,
            line=2,
            npi="1234567893",
            first_name="Ana",
            middle_name="Luz",
            last_name="Rivera",
            name_suffix="Jr",
            credentials=["PT", "DPT"],
            gender="female",
            specialties=["2251N0400X", "225100000X"],
            certifications=["NCS"],
            conditions=["peripheral-neuropathy", "stroke"],
            services=["balance-training"],
            languages=["en", "es"],
            sites=[
                SiteRecord(
                    address_line1="2201 N Clark St",
                    address_line2="Suite 300",
                    city="Chicago",
                    state="IL",
                    zip="60614-2301",
                    name="Lincoln Park Neuro Rehab",
                    latitude=41.9221,
                    longitude=-87.6388,
                    phone="(312) 555-0147",
                    fax="312-555-0148",
                    facility_type="outpatient_clinic",
                    accepting_new_patients=True,
                    telehealth=False,
                    plans=[
                        PlanRef(
                            key="Prairie Medicaid",
                            network_tier="preferred",
                            effective_from=date(2024, 1, 1),
                            effective_to=date(2025, 12, 31),
                            verified_at=datetime(2025, 3, 14, tzinfo=UTC),
                            line=2,
                        )
                    ],
                    line=2,
                    # validate.py's names of the site's fields, each from line 2
                    lines=dict.fromkeys(SITE_FIELDS, 2),
                )
            ],
        ),
    ]


def test_header_is_case_insensitive_and_in_any_order() -> None:
    columns = (*reversed(REQUIRED_COLUMNS), "Telehealth")
    shouted = tuple(name.upper() for name in columns)
    cells = {name.upper(): value for name, value in row(telehealth="yes").items()}
    cells["Telehealth"] = "yes"
    record = only_provider(roster_bytes(cells, columns=shouted))
    assert record.npi == "1234567893"
    assert record.sites[0].telehealth is True
    assert record.sites[0].address_line2 is None


def test_unknown_column_is_refused_naming_it() -> None:
    with pytest.raises(ImportFileError, match="'provider_type'") as refused:
        parse_bytes(roster_bytes(row(), columns=(*REQUIRED_COLUMNS, "provider_type")))
    assert refused.value.line == 1


def test_the_nppes_file_sent_as_the_template_is_refused_naming_its_format() -> None:
    sample = Path(__file__).parent.parent / "fixtures" / "nppes" / "nppes_sample_practitioners.csv"
    with sample.open("rb") as stream:
        head = b"".join(stream.readline() for _ in range(3))
    with pytest.raises(ImportFileError, match=r"'entity type code'.*send format=nppes\)$"):
        parse_bytes(head)
    with pytest.raises(ImportFileError) as other:
        parse_bytes(roster_bytes(row(), columns=(*REQUIRED_COLUMNS, "provider_type")))
    assert "nppes" not in other.value.message


def test_unnamed_column_is_refused_naming_its_position() -> None:
    columns = (*REQUIRED_COLUMNS[:3], "", *REQUIRED_COLUMNS[3:])
    with pytest.raises(ImportFileError, match=r"unnamed column \(column 4\)"):
        parse_bytes(roster_bytes(row(), columns=columns))


def test_empty_header_cells_at_the_end_are_ignored() -> None:
    # As spreadsheets save a sheet whose cells right of the table were once touched.
    data = roster_bytes(row(), columns=(*REQUIRED_COLUMNS, "", " ", ""))
    assert only_provider(data).npi == "1234567893"


@pytest.mark.parametrize(("separator", "described"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_separated_otherwise_is_refused_saying_so(separator: str, described: str) -> None:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=separator, lineterminator="\r\n")
    writer.writerow(REQUIRED_COLUMNS)
    writer.writerow([row()[name] for name in REQUIRED_COLUMNS])
    with pytest.raises(ImportFileError, match=f"looks separated by {described}") as refused:
        parse_bytes(text.getvalue().encode())
    assert refused.value.line == 1


def test_missing_required_column_is_refused_naming_it() -> None:
    columns = tuple(name for name in REQUIRED_COLUMNS if name not in ("zip", "city"))
    with pytest.raises(ImportFileError, match=r"required columns: 'city', 'zip'$"):
        parse_bytes(roster_bytes(row(), columns=columns))


def test_column_named_twice_is_refused() -> None:
    with pytest.raises(ImportFileError, match="more than once: 'npi'"):
        parse_bytes(roster_bytes(row(), columns=(*REQUIRED_COLUMNS, "NPI")))


@pytest.mark.parametrize("written", ["PT, DPT", "PT; DPT", "PT|DPT", " PT ,, DPT "])
def test_credentials_are_split_at_commas_too(written: str) -> None:
    assert only_provider(roster_bytes(row(credentials=written))).credentials == ["PT", "DPT"]


def test_optional_columns_may_be_left_out() -> None:
    record = only_provider(roster_bytes(row(), columns=REQUIRED_COLUMNS))
    assert record.credentials == []
    assert record.sites[0].plans == []


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n"])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(ImportFileError, match=r"^the file is empty$"):
        parse_bytes(data)


def test_header_without_rows_yields_nothing() -> None:
    assert parse_bytes(roster_bytes()) == []


def test_blank_rows_are_ignored() -> None:
    data = roster_bytes(row()) + b"\r\n" + b"," * (len(COLUMNS) - 1) + b"\r\n"
    assert len(parse_bytes(data)) == 1


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert only_provider(b"\xef\xbb\xbf" + roster_bytes(row())).npi == "1234567893"


def test_utf16_is_refused() -> None:
    data = roster_bytes(row()).decode("utf-8").encode("utf-16")
    with pytest.raises(ImportFileError, match="UTF-16"):
        parse_bytes(data)


def test_latin1_byte_is_refused_naming_its_line() -> None:
    data = roster_bytes(row(), row(npi="1245319599", first_name="José"))
    data = data.replace("José".encode(), "José".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not valid UTF-8 on line 3") as refused:
        parse_bytes(data)
    assert refused.value.line == 3


def test_quoted_newline_in_a_cell_keeps_line_numbers_right() -> None:
    data = roster_bytes(
        row(location_name="Lincoln Park\nNeuro Rehab"),
        row(npi="1245319599", address_line2="Suite\n\n300"),
        row(npi="1000000004"),
    )
    assert [record.line for record in providers(data)] == [2, 4, 7]


def test_row_with_more_cells_than_the_header_is_refused() -> None:
    # An unquoted comma in the address moves every later cell one column right.
    data = roster_bytes(row(), columns=REQUIRED_COLUMNS)
    data += b"1245319599,Bo,Li,225100000X,2201 N Clark St, Suite 300,Chicago,IL,60614,yes\r\n"
    with pytest.raises(
        ImportFileError, match="line 3 has 10 cells but the header has 9"
    ) as refused:
        parse_bytes(data)
    assert refused.value.line == 3


def test_row_with_fewer_cells_or_empty_extra_cells_is_read() -> None:
    header = b"npi,first_name,last_name,specialties,address_line1,city,state,zip,"
    header += b"accepting_new_patients,telehealth\r\n"
    records = providers(header + b"1234567893,Ana,Rivera\r\n1245319599,Bo,Li,,,,,,no,,,\r\n")
    assert [(record.npi, record.sites[0].accepting_new_patients) for record in records] == [
        ("1234567893", None),
        ("1245319599", False),
    ]


def test_consecutive_rows_of_one_npi_are_one_record_with_a_site_per_address() -> None:
    data = roster_bytes(
        row(plan="Plan A"),
        row(plan="Plan B", address_line1=" 2201  n clark st ", city="CHICAGO"),
        row(**OTHER_SITE, plan="Plan A"),
        row(**OTHER_SITE),
    )
    record = only_provider(data)
    assert record.line == 2
    assert [site.address_line1 for site in record.sites] == [
        "2201 N Clark St",
        "1603 Orrington Ave",
    ]
    assert [[plan.key for plan in site.plans] for site in record.sites] == [
        ["Plan A", "Plan B"],
        ["Plan A"],
    ]
    assert record.problems == []


def test_rows_differing_in_zip_are_different_sites() -> None:
    record = only_provider(roster_bytes(row(), row(zip="60614-2301")))
    assert [site.zip for site in record.sites] == ["60614", "60614-2301"]


def test_same_npi_again_later_is_another_record() -> None:
    data = roster_bytes(row(), row(npi="1245319599", first_name="Bo"), row(**OTHER_SITE))
    records = providers(data)
    assert [(record.index, record.line, record.npi) for record in records] == [
        (0, 2, "1234567893"),
        (1, 3, "1245319599"),
        (2, 4, "1234567893"),
    ]
    assert records[2].sites[0].city == "Evanston"


def test_rows_without_npi_are_each_their_own_record() -> None:
    records = providers(roster_bytes(row(npi=""), row(npi="")))
    assert [(record.npi, record.line) for record in records] == [(None, 2), (None, 3)]


@pytest.mark.parametrize(
    ("column", "first", "second"),
    [
        ("first_name", "Ana", "Anna"),
        ("last_name", "Rivera", "Rivera-Lopez"),
        ("credentials", "PT; DPT", "PT"),
        ("gender", "female", "male"),
        ("specialties", "2251N0400X;225100000X", "225100000X;2251N0400X"),
        ("certifications", "NCS", "GCS"),
        ("conditions", "stroke", "peripheral-neuropathy"),
        ("services", "gait-training", "balance-training"),
        ("languages", "en", "es"),
    ],
)
def test_therapist_columns_that_disagree_are_a_problem(
    column: str, first: str, second: str
) -> None:
    data = roster_bytes(row(**{column: first}), row(**OTHER_SITE, **{column: second}))
    record = only_provider(data)
    assert problem_fields(record) == [column]
    assert "line 3" in record.problems[0].message
    assert "line 2" in record.problems[0].message
    assert len(record.sites) == 2


@pytest.mark.parametrize(
    ("column", "first", "second"),
    [
        ("location_name", "Lincoln Park Rehab", "Clark Street Rehab"),
        ("latitude", "41.9221", "41.9222"),
        ("longitude", "-87.6388", "-87.6389"),
        ("phone", "312-555-0147", "312-555-0199"),
        ("fax", "312-555-0148", "312-555-0198"),
        ("facility_type", "outpatient_clinic", "private_practice"),
        ("accepting_new_patients", "yes", "no"),
        ("telehealth", "true", "false"),
    ],
)
def test_site_columns_that_disagree_at_one_address_are_a_problem(
    column: str, first: str, second: str
) -> None:
    data = roster_bytes(
        row(plan="Plan A", **{column: first}), row(plan="Plan B", **{column: second})
    )
    record = only_provider(data)
    assert problem_fields(record) == [column]
    assert "line 3" in record.problems[0].message


def test_columns_that_differ_only_in_spacing_agree() -> None:
    # A tab or line break in a cell becomes a space: the rows say the same.
    data = roster_bytes(
        row(first_name="Maria\tJose", location_name="Lincoln Park\nRehab"),
        row(plan="Plan B", first_name="Maria Jose", location_name="Lincoln Park Rehab"),
    )
    record = only_provider(data)
    assert record.problems == []
    assert (record.first_name, record.sites[0].name) == ("Maria\tJose", "Lincoln Park\nRehab")


def test_site_columns_may_differ_between_addresses() -> None:
    data = roster_bytes(
        row(accepting_new_patients="yes", phone="312-555-0147"),
        row(**OTHER_SITE, accepting_new_patients="no", phone="847-555-0193"),
    )
    record = only_provider(data)
    assert record.problems == []
    assert [site.accepting_new_patients for site in record.sites] == [True, False]


def test_equal_values_written_differently_agree() -> None:
    data = roster_bytes(
        row(languages="en; es", accepting_new_patients="Y", latitude="41.9"),
        row(languages="en|es", accepting_new_patients="true", latitude="41.90", plan="Plan A"),
    )
    assert only_provider(data).problems == []


def test_cells_left_empty_on_later_rows_say_nothing() -> None:
    data = roster_bytes(
        row(languages="en;es", phone="312-555-0147", plan="Plan A"),
        row(first_name="", languages="", phone="", plan="Plan B"),
        row(**OTHER_SITE, middle_name="Luz"),
    )
    record = only_provider(data)
    assert record.problems == []
    assert (record.first_name, record.middle_name, record.languages) == ("Ana", "Luz", ["en", "es"])
    assert record.sites[0].phone == "312-555-0147"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("N", False),
        ("0", False),
        ("", None),
        ("  ", None),
    ],
)
def test_boolean_cells(cell: str, expected: bool | None) -> None:
    record = only_provider(roster_bytes(row(accepting_new_patients=cell, telehealth=cell)))
    assert record.problems == []
    assert record.sites[0].accepting_new_patients is expected
    assert record.sites[0].telehealth is expected


@pytest.mark.parametrize("column", ["accepting_new_patients", "telehealth"])
@pytest.mark.parametrize("cell", ["maybe", "2", "si"])
def test_boolean_that_is_not_yes_or_no_is_a_problem(column: str, cell: str) -> None:
    record = only_provider(roster_bytes(row(), row(**{column: cell})))
    assert problem_fields(record) == [column]
    assert record.problems[0].message.startswith("line 3: ")
    assert repr(cell) in record.problems[0].message


@pytest.mark.parametrize(
    ("cell", "expected"), [("f", "female"), ("MALE", "male"), ("other", "other")]
)
def test_gender_cells(cell: str, expected: str) -> None:
    assert only_provider(roster_bytes(row(gender=cell))).gender == expected


def test_unknown_gender_is_a_problem() -> None:
    record = only_provider(roster_bytes(row(gender="unknown")))
    assert problem_fields(record) == ["gender"]
    assert record.gender is None


@pytest.mark.parametrize("column", ["latitude", "longitude"])
@pytest.mark.parametrize("cell", ["north", "41,92", "nan", "inf"])
def test_coordinate_that_is_not_a_number_is_a_problem(column: str, cell: str) -> None:
    record = only_provider(roster_bytes(row(**{column: cell})))
    assert problem_fields(record) == [column]
    assert getattr(record.sites[0], column) is None


def test_dates_are_iso() -> None:
    data = roster_bytes(row(plan="Plan A", effective_from="2024-02-29", effective_to="2024-12-31"))
    (plan,) = only_provider(data).sites[0].plans
    assert (plan.effective_from, plan.effective_to) == (date(2024, 2, 29), date(2024, 12, 31))


@pytest.mark.parametrize("column", ["effective_from", "effective_to"])
@pytest.mark.parametrize("cell", ["02/01/2024", "2024-02-30", "20240201", "2024-W05-4"])
def test_date_that_is_not_iso_is_a_problem(column: str, cell: str) -> None:
    record = only_provider(roster_bytes(row(plan="Plan A", **{column: cell})))
    assert problem_fields(record) == [column]
    assert "YYYY-MM-DD" in record.problems[0].message


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2025-03-14", datetime(2025, 3, 14, tzinfo=UTC)),
        ("2025-03-14T09:30:00-05:00", datetime(2025, 3, 14, 14, 30, tzinfo=UTC)),
        ("2025-03-14 23:30:00+02:00", datetime(2025, 3, 14, 21, 30, tzinfo=UTC)),
        ("2025-03-14T09:30:00Z", datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
    ],
)
def test_verified_at_is_a_date_or_a_datetime_with_offset(cell: str, expected: datetime) -> None:
    (plan,) = only_provider(roster_bytes(row(plan="Plan A", verified_at=cell))).sites[0].plans
    assert plan.verified_at == expected
    assert plan.verified_at is not None
    assert plan.verified_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("cell", ["2025-03-14T09:30:00", "14/03/2025", "yesterday", "2025-13-01"])
def test_verified_at_without_offset_or_not_iso_is_a_problem(cell: str) -> None:
    record = only_provider(roster_bytes(row(plan="Plan A", verified_at=cell)))
    assert problem_fields(record) == ["verified_at"]
    assert record.sites[0].plans[0].verified_at is None


@pytest.mark.parametrize(
    "column", ["plan_type", "network_tier", "effective_from", "effective_to", "verified_at"]
)
def test_plan_details_without_a_plan_are_a_problem(column: str) -> None:
    value = {"plan_type": "medicaid", "network_tier": "preferred"}.get(column, "2025-01-01")
    record = only_provider(roster_bytes(row(**{column: value})))
    assert problem_fields(record) == [column]
    assert record.sites[0].plans == []


def test_plan_is_declared_once_and_before_the_first_record_using_it() -> None:
    data = roster_bytes(
        row(plan="Prairie Medicaid", plan_type="medicaid"),
        row(npi="1245319599", plan="Prairie Medicaid", plan_type="medicaid"),
        row(npi="1245319599", **OTHER_SITE, plan="12345IL0010001", plan_type="marketplace"),
        row(npi="1000000004", plan="Prairie Medicaid"),
    )
    records = parse_bytes(data)
    summary = [
        (type(record).__name__, record.key if isinstance(record, PlanRecord) else record.npi)
        for record in records
        if isinstance(record, PlanRecord | ProviderRecord)
    ]
    assert summary == [
        ("PlanRecord", "Prairie Medicaid"),
        ("ProviderRecord", "1234567893"),
        ("PlanRecord", "12345IL0010001"),
        ("ProviderRecord", "1245319599"),
        ("ProviderRecord", "1000000004"),
    ]
    plans = [record for record in records if isinstance(record, PlanRecord)]
    assert [(plan.index, plan.line, plan.hios_plan_id) for plan in plans] == [
        (0, 2, None),
        (1, 4, "12345IL0010001"),
    ]
    assert plans[1].plan_type == "marketplace"
    assert all(not record.problems for record in records if isinstance(record, ProviderRecord))


@pytest.mark.parametrize("key", ["1234IL00100011", "12345IL001000A", "Silver 12345IL0010001"])
def test_plan_key_without_the_hios_shape_has_no_hios_id(key: str) -> None:
    (plan, _) = parse_bytes(roster_bytes(row(plan=key, plan_type="marketplace")))
    assert isinstance(plan, PlanRecord)
    assert (plan.key, plan.name, plan.hios_plan_id) == (key, key, None)


@pytest.mark.parametrize(
    ("key", "hios"),
    [("12345il0010001", "12345IL0010001"), ("12345IL0010001-01", "12345IL0010001-01")],
)
def test_a_hios_id_in_lower_case_or_of_a_variant_is_one(key: str, hios: str) -> None:
    """Upper-cased as HIOS writes it; a variant is read as its plan when declared."""
    (plan, _) = parse_bytes(roster_bytes(row(plan=key, plan_type="marketplace")))
    assert isinstance(plan, PlanRecord)
    assert (plan.key, plan.name, plan.hios_plan_id) == (key, hios, hios)


def test_plan_without_type_is_referenced_but_not_declared() -> None:
    records = parse_bytes(roster_bytes(row(plan="Existing Plan", network_tier="tier-1")))
    (record,) = records
    assert isinstance(record, ProviderRecord)
    assert record.sites[0].plans == [PlanRef(key="Existing Plan", network_tier="tier-1", line=2)]


def test_plan_given_another_type_later_is_a_problem() -> None:
    data = roster_bytes(
        row(plan="Prairie Choice", plan_type="commercial"),
        row(npi="1245319599", plan="Prairie Choice", plan_type="medicaid"),
    )
    first, second = providers(data)
    assert first.problems == []
    assert problem_fields(second) == ["plan_type"]
    assert "line 2" in second.problems[0].message


def test_plan_listed_twice_at_one_site() -> None:
    same = roster_bytes(row(plan="Plan A"), row(plan="Plan A"))
    assert only_provider(same).problems == []
    assert len(only_provider(same).sites[0].plans) == 1
    different = roster_bytes(row(plan="Plan A"), row(plan="Plan A", network_tier="tier-2"))
    assert problem_fields(only_provider(different)) == ["plan"]


def test_problems_are_collected_not_raised() -> None:
    record = only_provider(roster_bytes(row(latitude="x", gender="?", telehealth="sometimes")))
    assert record.problems == [
        Problem(field="gender", message="line 2: '?' is not a gender (female, male or other)"),
        Problem(field="latitude", message="line 2: 'x' is not a number"),
        Problem(
            field="telehealth",
            message="line 2: 'sometimes' is not yes or no (true/false, yes/no, y/n, 1/0)",
        ),
    ]


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(roster_bytes(row()))
    assert len(list(roster_csv.parse(stream))) == 1
    assert not stream.closed


def test_memory_stays_flat_over_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    therapists, bound = 6_000, 3_000_000
    plans = ("Prairie Medicaid", "Prairie Choice PPO")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for number in range(therapists):
            for plan, plan_type in zip(plans, ("medicaid", "commercial"), strict=True):
                cells = row(
                    npi=f"{1_000_000_000 + number}",
                    location_name=f"Clinic {number} " + "x" * 1000,
                    plan=plan,
                    plan_type=plan_type,
                    verified_at="2025-03-14T09:30:00-05:00",
                )
                writer.writerow([cells.get(name, "") for name in COLUMNS])
    assert path.stat().st_size > 4 * bound

    count, peak = count_and_peak_memory(roster_csv.parse, path)
    assert count == therapists
    assert peak < bound, f"peak traced memory {peak:,} bytes"
