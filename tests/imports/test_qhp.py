import codecs
import io
import json
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from app.imports.formats import json_stream
from app.imports.formats.qhp import parse_plans, parse_providers
from app.imports.records import (
    ImportFileError,
    PlanRecord,
    PlanRef,
    Problem,
    ProviderRecord,
    Record,
    SiteRecord,
    Skipped,
)
from tests.factories import make_npi
from tests.imports import parser_helpers
from tests.imports.parser_helpers import count_and_peak_memory, read, refusal

NOVEMBER_2 = datetime(2024, 11, 2, tzinfo=UTC)
fixture = partial(parser_helpers.fixture, "qhp")


def providers(data: bytes) -> list[Record]:
    return read(parse_providers, data)


def plans(data: bytes) -> list[PlanRecord]:
    return list(parse_plans(io.BytesIO(data)))


def provider(**fields: Any) -> dict[str, Any]:
    """A physical therapist as providers.json writes one, with `fields` replaced."""
    item: dict[str, Any] = {
        "npi": "1234567893",
        "type": "INDIVIDUAL",
        "name": {"first": "Ana", "last": "García"},
        "addresses": [{"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}],
        "specialty": ["Physical Therapy"],
        "accepting": "accepting",
        "plans": [],
    }
    item.update(fields)
    return item


def one(**fields: Any) -> Record:
    [record] = providers(json.dumps([provider(**fields)]).encode())
    return record


def one_provider(**fields: Any) -> ProviderRecord:
    record = one(**fields)
    assert isinstance(record, ProviderRecord), record
    return record


# The CMS sample: physicians and a hospital, none of them in a PT directory.


def test_cms_sample_providers_are_all_skipped_with_their_reason() -> None:
    assert providers(fixture("providers.json")) == [
        # Each with the line its object starts on (`grep -n '^    {'`).
        Skipped(index=0, line=2, reason="no physical-therapy specialty (Dermatology, Oncology)"),
        Skipped(index=1, line=50, reason="no physical-therapy specialty (Ophthalmology)"),
        Skipped(index=2, line=103, reason="a facility, not an individual provider"),
    ]


def test_cms_sample_plans_become_marketplace_plans_keyed_by_hios_id() -> None:
    metals = {"12345XX9876543": "Gold", "12345XX9876542": "Silver", "12345XX9876541": "Bronze"}
    assert plans(fixture("plans.json")) == [
        PlanRecord(
            index=index,
            line=line,
            key=hios_id,
            name=f"Vandelay Insurance {metal} Health Plan",
            plan_type="marketplace",
            hios_plan_id=hios_id,
        )
        for index, ((hios_id, metal), line) in enumerate(
            zip(metals.items(), (2, 62, 101), strict=True)
        )
    ]


# Physical therapists in the same format.


def test_neurology_pt_with_two_addresses_maps_every_field() -> None:
    record = providers(fixture("physical_therapists.json"))[0]
    first_tier = PlanRef(
        key="12345IL0010001",
        network_tier="PREFERRED",
        effective_from=date(2024, 1, 1),
        effective_to=date(2026, 12, 31),
        verified_at=NOVEMBER_2,
        path="plans[0]",
    )
    second_plan = PlanRef(
        key="12345IL0010002",
        network_tier="PREFERRED",
        effective_from=date(2025, 1, 1),
        effective_to=date(2025, 12, 31),
        verified_at=NOVEMBER_2,
        path="plans[2]",  # plans[1] lists the first plan again
    )
    assert record == ProviderRecord(
        index=0,
        line=2,
        npi="1234567893",
        first_name="Ana",
        middle_name="María",
        last_name="García",
        name_suffix="Jr.",
        gender="female",
        specialties=["2251N0400X", "225100000X"],
        languages=["en", "es"],
        sites=[
            SiteRecord(
                address_line1="100 N Michigan Ave",
                address_line2="Suite 400",
                city="Chicago",
                state="IL",
                zip="60601",
                phone="3125550100",
                accepting_new_patients=True,
                plans=[first_tier, second_plan],
                path="addresses[0]",
            ),
            SiteRecord(
                address_line1="2200 W Harrison St",
                address_line2=None,
                city="Chicago",
                state="IL",
                zip="60612-3833",
                phone="3125550199",
                accepting_new_patients=None,
                plans=[first_tier, second_plan],
                path="addresses[1]",
            ),
        ],
        warnings=[
            Problem(
                "specialty[2]",
                "specialty 'Dermatology' is not a physical-therapy specialty; kept out",
            ),
            Problem(
                "plans[1].network_tier",
                "plan 12345IL0010001 is listed again with tier NON-PREFERRED; "
                "kept the first tier listed, PREFERRED",
            ),
            Problem("languages[2]", "language 'Klingon' is not recognised; left out"),
        ],
    )


def test_sites_do_not_share_plan_objects() -> None:
    record = providers(fixture("physical_therapists.json"))[0]
    assert isinstance(record, ProviderRecord)
    north, south = record.sites
    north.plans[0].network_tier = "CHANGED"
    assert south.plans[0].network_tier == "PREFERRED"


def test_assistant_not_accepting_with_unknown_gender() -> None:
    record = providers(fixture("physical_therapists.json"))[1]
    assert isinstance(record, ProviderRecord)
    assert (record.npi, record.first_name, record.last_name) == ("1245319599", "Ben", "Okafor")
    assert record.specialties == ["225200000X"]
    assert record.gender is None
    assert record.warnings == [
        Problem("gender", "'Unknown' is not Male, Female or Other; left out")
    ]
    assert [site.accepting_new_patients for site in record.sites] == [False]
    assert record.sites[0].plans == [
        PlanRef(
            "12345IL0010002",
            "PREFERRED",
            date(2025, 1, 1),
            date(2025, 12, 31),
            datetime(2025, 1, 15, tzinfo=UTC),
            path="plans[0]",
        )
    ]
    assert record.problems == []


def test_neurologist_and_facility_are_skipped() -> None:
    records = providers(fixture("physical_therapists.json"))
    assert records[2] == Skipped(
        index=2, line=86, reason="no physical-therapy specialty (Neurology)"
    )
    assert records[3] == Skipped(index=3, line=99, reason="a facility, not an individual provider")


def test_what_the_mapping_cannot_read_becomes_problems() -> None:
    record = providers(fixture("physical_therapists.json"))[4]
    assert isinstance(record, ProviderRecord)
    assert record.index == 4
    assert record.specialties == ["2251S0007X"]
    assert record.sites == []
    assert record.problems == [
        Problem(
            "plans[0].plan_id_type",
            "plan id type 'MEDICARE-CONTRACT-ID' is not one this import reads (HIOS-PLAN-ID)",
        ),
        Problem(
            "accepting",
            "'sometimes' is not one of 'accepting', 'not accepting', 'accepting in some locations'",
        ),
        Problem("addresses", "expected a list of address objects, found an object"),
    ]


@pytest.mark.parametrize(
    ("accepting", "expected"),
    [
        ("accepting", True),
        ("Accepting", True),
        ("not accepting", False),
        ("NOT_ACCEPTING", False),
        ("Not-Accepting", False),
        ("accepting in some locations", None),
        (True, True),  # the schema's first version
        (False, False),
        (None, None),
    ],
)
def test_accepting_values(accepting: object, expected: bool | None) -> None:
    record = one_provider(accepting=accepting)
    assert [site.accepting_new_patients for site in record.sites] == [expected]
    assert record.problems == []


def test_a_site_accepting_value_wins_over_the_provider_one() -> None:
    address = {"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}
    record = one_provider(
        accepting="accepting",
        addresses=[address, {**address, "accepting": "not accepting"}],
    )
    assert [site.accepting_new_patients for site in record.sites] == [True, False]


def test_an_unknown_site_accepting_value_is_a_problem_on_that_address() -> None:
    address = {"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}
    record = one_provider(addresses=[address, {**address, "accepting": "yes please"}])
    assert [problem.field for problem in record.problems] == ["addresses[1].accepting"]
    assert "'yes please' is not one of" in record.problems[0].message


def test_values_are_passed_through_as_stripped_strings() -> None:
    record = one_provider(
        npi=1234567893,
        name={"first": "  Ana ", "middle": "", "last": "García", "suffix": None},
        addresses=[
            {
                "address": " 5 Elm St ",
                "address_2": " ",
                "city": "Evanston",
                "state": "il",
                "zip": 60201,
                "phone": "(847) 555-0123",
            }
        ],
    )
    assert (record.npi, record.first_name, record.middle_name, record.name_suffix) == (
        "1234567893",
        "Ana",
        None,
        None,
    )
    assert record.sites == [
        SiteRecord(
            address_line1="5 Elm St",
            address_line2=None,
            city="Evanston",
            state="il",  # the import checks states, ZIPs and phones, not the parser
            zip="60201",
            path="addresses[0]",
            phone="(847) 555-0123",
            accepting_new_patients=True,
        )
    ]


def test_first_schema_version_single_address_with_provider_phone() -> None:
    record = one_provider(
        addresses=None,
        address={"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"},
        phone="8475550123",
        specialty="Physical Therapy",
    )
    assert [(site.address_line1, site.phone) for site in record.sites] == [
        ("5 Elm St", "8475550123")
    ]
    assert record.specialties == ["225100000X"]


def test_an_address_that_is_not_an_object_is_a_problem() -> None:
    record = one_provider(addresses=["5 Elm St, Evanston IL"])
    assert record.problems == [
        Problem("addresses[0]", "expected an address object, found a string")
    ]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "FACILITY"}, "a facility, not an individual provider"),
        ({"type": "facility"}, "a facility, not an individual provider"),
        ({"type": "GROUP"}, "provider type 'GROUP' is not INDIVIDUAL"),
        ({"type": None}, "no provider type (INDIVIDUAL expected)"),
        ({"specialty": []}, "no physical-therapy specialty (none listed)"),
        (
            {"specialty": ["Neurology", "Sports Medicine"]},
            "no physical-therapy specialty (Neurology, Sports Medicine)",
        ),
    ],
)
def test_skip_reasons(fields: dict[str, Any], reason: str) -> None:
    assert one(**fields) == Skipped(index=0, line=1, reason=reason)


def test_lower_case_individual_is_an_individual() -> None:
    assert one_provider(type="individual").specialties == ["225100000X"]


def test_primary_specialty_is_the_first_mapped_and_codes_are_not_repeated() -> None:
    record = one_provider(
        specialty=["Oncology", "Sports PT", "Physical Therapy", "sports physical therapy"]
    )
    assert record.specialties == ["2251S0007X", "225100000X"]
    assert [warning.field for warning in record.warnings] == ["specialty[0]"]


@pytest.mark.parametrize(
    ("gender", "expected"), [("Male", "male"), ("FEMALE", "female"), ("other", "other")]
)
def test_gender(gender: str, expected: str) -> None:
    record = one_provider(gender=gender)
    assert record.gender == expected
    assert record.warnings == []


def test_language_names_map_to_iso_codes_once_each() -> None:
    record = one_provider(languages=["English", "Norwegian Bokmal", "ENGLISH", "Tagalog"])
    assert record.languages == ["en", "nb", "tl"]
    assert record.warnings == []


@pytest.mark.parametrize(
    ("written", "codes"),
    [
        (["Spanish; Español"], ["es"]),  # one language in two of its names
        (["Spanish/English"], ["es", "en"]),
        (["Mandarin Chinese", "Cantonese"], ["zh"]),
        (["Filipino", "Farsi", "Kreyòl"], ["tl", "fa", "ht"]),
        (["Chinese (Mandarin)", "Spanish (Español)"], ["zh", "es"]),  # variety, own name
        (["Creole (Haitian)", "French (Canada)"], ["ht", "fr"]),
    ],
)
def test_languages_written_as_directories_write_them(written: list[str], codes: list[str]) -> None:
    record = one_provider(languages=written)
    assert (record.languages, record.warnings) == (codes, [])


def test_an_entry_naming_an_unknown_language_is_left_out_whole() -> None:
    record = one_provider(languages=["English; Klingon", "Sign Language (ASL)"])
    assert record.languages == []
    assert record.warnings == [
        Problem("languages[0]", "language 'English; Klingon' is not recognised; left out"),
        Problem("languages[1]", "language 'Sign Language (ASL)' is not recognised; left out"),
    ]


def test_plans_on_every_site_with_years_and_verification_date() -> None:
    address = {"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}
    record = one_provider(
        addresses=[address, {**address, "address": "7 Elm St"}],
        last_updated_on="2025-03-04",
        plans=[
            {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345il0010001", "years": [2027, 2025]},
            {"plan_id_type": "hios-plan-id", "plan_id": "12345IL0010009", "network_tier": "TIER1"},
        ],
    )
    expected = [
        PlanRef(
            "12345IL0010001",
            None,
            date(2025, 1, 1),
            date(2027, 12, 31),
            datetime(2025, 3, 4, tzinfo=UTC),
            path="plans[0]",
        ),
        PlanRef(
            "12345IL0010009", "TIER1", None, None, datetime(2025, 3, 4, tzinfo=UTC), "plans[1]"
        ),
    ]
    assert [site.plans for site in record.sites] == [expected, expected]
    assert record.problems == []


@pytest.mark.parametrize(
    ("text", "verified"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00-05:00", datetime(2025, 3, 1, 15, tzinfo=UTC)),
        ("2025-03-01 10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),  # no zone: UTC
    ],
)
def test_last_updated_on_may_be_an_iso_8601_date_and_time(text: str, verified: datetime) -> None:
    plan = {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001"}
    record = one_provider(last_updated_on=text, plans=[plan])
    assert record.problems == []
    assert [ref.verified_at for ref in record.sites[0].plans] == [verified]


def test_a_cost_sharing_variant_id_is_read_as_its_plan_with_a_warning() -> None:
    plans = [
        {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001-01"},
        {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345il001000203"},  # no dash
        {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010003-1"},  # no variant
    ]
    record = one_provider(plans=plans)
    assert [ref.key for ref in record.sites[0].plans] == [
        "12345IL0010001",
        "12345IL0010002",
        "12345IL0010003-1",  # left for the plan check to refuse
    ]
    assert record.warnings == [
        Problem(
            "plans[0].plan_id",
            "12345IL0010001-01 is a cost-sharing variant of plan 12345IL0010001; "
            "read as 12345IL0010001",
        ),
        Problem(
            "plans[1].plan_id",
            "12345IL001000203 is a cost-sharing variant of plan 12345IL0010002; "
            "read as 12345IL0010002",
        ),
    ]


def test_unreadable_plan_fields_are_problems() -> None:
    record = one_provider(
        last_updated_on="March 4",
        plans=[
            {"plan_id_type": "HIOS-PLAN-ID", "years": [2025]},
            {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001", "years": "2025"},
            "12345IL0010002",
        ],
    )
    assert record.problems == [
        Problem("last_updated_on", "'March 4' is not a date (YYYY-MM-DD) or a date and time"),
        Problem("plans[0].plan_id", "the plan has no plan_id"),
        Problem("plans[1].years", "expected a list of years such as [2025, 2026], found '2025'"),
        Problem("plans[2]", "expected a plan object, found a string"),
    ]


def test_an_element_that_is_not_an_object_is_a_problem_record() -> None:
    records = providers(json.dumps([provider(), 42]).encode())
    assert records[1] == ProviderRecord(
        index=1,
        line=1,
        npi=None,
        first_name=None,
        last_name=None,
        problems=[Problem("", "expected a provider object, found a number")],
    )


def test_plans_json_problems() -> None:
    data = json.dumps(
        [
            {
                "plan_id_type": "HIOS-PLAN-ID",
                "plan_id": "12345il0010001",
                "marketing_name": " Gold ",
            },
            {"plan_id_type": "PLAN-NAME", "plan_id": "Gold", "marketing_name": "Gold"},
            {"marketing_name": "Silver"},
        ]
    ).encode()
    assert plans(data) == [
        PlanRecord(0, 1, "12345IL0010001", "Gold", "marketplace", "12345IL0010001"),
        PlanRecord(
            1,
            1,  # all on one line
            "",
            "Gold",
            "marketplace",
            None,
            [
                Problem(
                    "plan_id_type",
                    "plan id type 'PLAN-NAME' is not one this import reads (HIOS-PLAN-ID)",
                )
            ],
        ),
        PlanRecord(
            2,
            1,
            "",
            "Silver",
            "marketplace",
            None,
            [Problem("plan_id", "the plan has no plan_id")],
        ),
    ]


# The file as a whole.


def test_utf8_byte_order_mark_is_accepted() -> None:
    data = fixture("physical_therapists.json")
    assert providers(codecs.BOM_UTF8 + data) == providers(data)
    assert plans(codecs.BOM_UTF8 + fixture("plans.json")) == plans(fixture("plans.json"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_is_refused(encoding: str) -> None:
    data = fixture("physical_therapists.json").decode("utf-8").encode(encoding)
    with pytest.raises(ImportFileError, match="UTF-16; save it as UTF-8"):
        providers(data)


def test_latin1_bytes_are_refused_with_the_line_and_byte() -> None:
    data = fixture("physical_therapists.json").decode("utf-8").encode("latin-1")
    refused = refusal(parse_providers, data)
    # Line 7 holds "María", whose í is 0xed in Latin-1.
    assert refused.message == (
        "the file is not valid UTF-8 on line 7 (byte 0xed); save it as UTF-8 and upload again "
        "(Latin-1 and Windows-1252 are not accepted)"
    )


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n", codecs.BOM_UTF8 + b"\n"])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(ImportFileError, match=r"^the file is empty$"):
        providers(data)
    with pytest.raises(ImportFileError, match=r"^the file is empty$"):
        plans(data)


@pytest.mark.parametrize("cut", [1, 100, 2000, -2])
def test_truncated_file(cut: int) -> None:
    data = fixture("physical_therapists.json")[:cut]
    refused = refusal(parse_providers, data)
    assert refused.message == ("the file ends before the JSON is complete (truncated upload?)")


def test_truncated_inside_a_multibyte_character() -> None:
    data = fixture("physical_therapists.json")
    cut = data.index("í".encode()) + 1
    with pytest.raises(ImportFileError, match="ends before the JSON is complete"):
        providers(data[:cut])


def test_malformed_json_names_the_record_reached() -> None:
    item = json.dumps(provider()).encode()
    refused = refusal(parse_providers, b"[" + item + b"," + item + b" " + item + b"]")
    assert refused.message.startswith("the file is not valid JSON at record 2: ")
    assert "expect ',' or ']'" in refused.message


def test_trailing_garbage_after_the_array() -> None:
    data = json.dumps([provider()]).encode() + b"\n[]"
    with pytest.raises(ImportFileError, match="not valid JSON at record 1: trailing garbage"):
        providers(data)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": []}',
            "a JSON object (a FHIR Bundle)",
        ),
        (b'{"provider_urls": []}', "a JSON object (the CMS index, cms-data-index.json)"),
        (b'{"npi": "1234567893"}', "a JSON object"),
        (b'"providers"', "a JSON string"),
        (b"42", "a JSON number"),
        (b"npi,first_name\n", "something that is not JSON (it starts with 'npi,first_name\\n')"),
    ],
)
def test_wrong_top_level_says_what_was_expected_and_found(data: bytes, found: str) -> None:
    refused = refusal(parse_providers, data)
    assert refused.message == (
        f"expected a JSON array of provider objects (CMS QHP providers.json), found {found}"
    )


def test_plans_json_sent_as_providers_json() -> None:
    refused = refusal(parse_providers, fixture("plans.json"))
    assert refused.message == (
        "expected a JSON array of provider objects (CMS QHP providers.json), "
        "found plan objects (this looks like plans.json)"
    )


def test_providers_json_sent_as_plans_json() -> None:
    refused = refusal(parse_plans, fixture("providers.json"))
    assert refused.message == (
        "expected a JSON array of plan objects (CMS QHP plans.json), "
        "found provider objects (this looks like providers.json)"
    )


def test_plans_json_top_level_object_is_refused() -> None:
    with pytest.raises(ImportFileError, match=r"plans\.json\), found a JSON object$"):
        plans(b'{"plan_id": "12345IL0010001"}')


def test_memory_stays_flat_over_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    count, bound = 10_000, 3_000_000
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for number in range(count):
            item = provider(
                npi=f"{1000000000 + number}",
                name={"first": f"First{number}", "last": f"Last{number}"},
                plans=[{"plan_id": "12345IL0010001", "years": [2025]}],
                notes="x" * 2000,  # read and ignored: the file outweighs the bound
            )
            handle.write(("," if number else "") + json.dumps(item) + "\n")
        handle.write("]\n")
    assert path.stat().st_size > 6 * bound
    seen, peak = count_and_peak_memory(parse_providers, path)
    assert seen == count  # every element a provider record
    # Holding the records would take about 16 MB (1.6 kB each, measured).
    assert peak < bound, f"peak traced memory {peak:,} bytes"


@pytest.mark.parametrize("short_first", [True, False])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_each_record_carries_the_line_it_starts_on(
    newline: str, short_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_stream, "_ARRAY_CHUNK", 100)  # elements cut by chunks
    elements = [
        json.dumps(provider(npi=make_npi(number)), indent=None if number % 3 else 2)
        for number in range(12)
    ]
    if short_first:  # decoded whole from the first chunk; a number there may be cut
        elements = ["7", "{}", *elements]
    # Every offset of the chunk boundaries against the "[" and the first elements.
    for lead in range(250):
        pieces, starts = [" " * (lead % 2) + newline * (lead // 2) + "["], []
        for number, text in enumerate(elements):
            pieces.append(("," if number else "") + newline * (number % 2))
            starts.append("".join(pieces).count("\n") + 1)  # counted here, independently
            pieces.append(text.replace("\n", newline))
        data = ("\ufeff" + "".join(pieces) + newline + "]" + newline).encode()
        lines = [(record.index, record.line) for record in providers(data)]
        assert lines == list(enumerate(starts)), lead
