import codecs
import io
import json
import tempfile
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from app.imports.formats import fhir
from app.imports.formats.fhir import parse_bundle, parse_ndjson
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
from tests.imports import parser_helpers
from tests.imports.parser_helpers import (
    FIXTURES,
    Parser,
    count_and_peak_memory,
    read,
    refusal,
)

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/"
NUCC = "http://nucc.org/provider-taxonomy"
fixture = partial(parser_helpers.fixture, "plannet")
# The import's date in these tests, so that they do not age: the fixtures' roles
# run from 2024 to 2025, and what ended before it is out of use.
TODAY = date(2024, 1, 15)
ndjson = partial(read, partial(parse_ndjson, today=TODAY))
bundle = partial(read, partial(parse_bundle, today=TODAY))


def as_ndjson(*resources: dict[str, Any]) -> bytes:
    return "".join(json.dumps(resource) + "\n" for resource in resources).encode()


def as_bundle(*resources: dict[str, Any]) -> bytes:
    entries = [{"resource": resource} for resource in resources]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def practitioner(id: str = "pt", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": id,
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "name": [{"family": "García", "given": ["Ana"]}],
        **fields,
    }


def specialty(code: str) -> dict[str, Any]:
    return {"coding": [{"system": NUCC, "code": code}]}


def role(
    id: str = "role",
    practitioner: str = "pt",
    locations: tuple[str, ...] = ("loc",),
    extension: tuple[dict[str, Any], ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": id,
        "practitioner": {"reference": f"Practitioner/{practitioner}"},
        "specialty": [specialty("2251N0400X")],
        "location": [{"reference": f"Location/{location}"} for location in locations],
        "extension": list(extension),
        **fields,
    }


def location(id: str = "loc", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": id,
        "address": {"line": ["5 Elm St"], "city": "Evanston", "state": "IL", "postalCode": "60201"},
        **fields,
    }


def network(id: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": id, "name": f"Network {id}"}


def insurance_plan(id: str, *networks: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "InsurancePlan",
        "id": id,
        "name": f"Plan {id}",
        "network": [{"reference": f"Organization/{network}"} for network in networks],
        **fields,
    }


def network_reference(id: str) -> dict[str, Any]:
    return {
        "url": f"{PLAN_NET}StructureDefinition/network-reference",
        "valueReference": {"reference": f"Organization/{id}"},
    }


def new_patients(code: str, network: str | None = None) -> dict[str, Any]:
    """The newpatients extension; with `network`, what it says of that network only."""
    concept = {"coding": [{"system": f"{PLAN_NET}CodeSystem/AcceptingPatientsCS", "code": code}]}
    parts: list[dict[str, Any]] = [{"url": "acceptingPatients", "valueCodeableConcept": concept}]
    if network is not None:
        parts.append(
            {"url": "fromnetwork", "valueReference": {"reference": f"Organization/{network}"}}
        )
    return {"url": f"{PLAN_NET}StructureDefinition/newpatients", "extension": parts}


def plan_entry(hios: str | None, level: dict[str, Any] | None, *networks: str) -> dict[str, Any]:
    """One of a product's `plan[]`: a specific plan when it has an identifier (`hios`)."""
    entry: dict[str, Any] = {"network": [{"reference": f"Organization/{n}"} for n in networks]}
    if hios is not None:
        entry["identifier"] = [{"system": "http://example.org/hios", "value": hios}]
    if level is not None:
        entry["type"] = level
    return entry


def metal(code: str) -> dict[str, Any]:
    """An InsurancePlanTypeCS plan type, coded only (no text, no display)."""
    return {"coding": [{"system": f"{PLAN_NET}CodeSystem/InsurancePlanTypeCS", "code": code}]}


QHP = [{"coding": [{"system": f"{PLAN_NET}CodeSystem/InsuranceProductTypeCS", "code": "qhp"}]}]


def declared(records: list[Record]) -> list[tuple[str, str | None, str | None, str | None]]:
    """(key, name, plan type, HIOS id) of each plan the file declares."""
    return [
        (record.key, record.name, record.plan_type, record.hios_plan_id)
        for record in records
        if isinstance(record, PlanRecord)
    ]


def provider_of(records: list[Record]) -> ProviderRecord:
    [found] = [record for record in records if isinstance(record, ProviderRecord)]
    return found


NO_NETWORK = (
    "the role names no network (network-reference), so its practice is in none of the payer's plans"
)


def no_network(role_id: str) -> Problem:
    """The warning on a role at a Location that names no network."""
    return Problem(f"PractitionerRole/{role_id}.extension:network-reference", NO_NETWORK)


def warned(record: ProviderRecord) -> list[Problem]:
    """The record's warnings, but that a role names no network: most roles here name none."""
    return [warning for warning in record.warnings if warning.message != NO_NETWORK]


def unordered(records: list[Record]) -> list[str]:
    """The records with what follows file order (positions, plan order) taken out."""
    for record in records:
        record.index, record.line = 0, None
        if isinstance(record, ProviderRecord):
            for site in record.sites:
                site.plans.sort(key=lambda plan: plan.key)
    return sorted(map(repr, records))


# The IG's own examples: physicians and a counselor, and two QHPs.


@pytest.mark.parametrize(
    ("parse", "name", "lines"),
    [
        (parse_ndjson, "examples.ndjson", True),
        (parse_bundle, "examples_bundle.json", False),
    ],
)
def test_ig_examples(parse: Parser, name: str, lines: bool) -> None:
    with (FIXTURES / "plannet" / name).open("rb") as stream:
        records = list(parse(stream))

    def line(index: int) -> int | None:
        return index + 1 if lines else None

    acme_plans = [
        PlanRecord(
            index=index,
            line=line(index),
            key=f"InsurancePlan/AcmeQHP{metal}",
            name=f"Acme of CT QHP {metal}",
            plan_type="marketplace",
            hios_plan_id=None,
        )
        for index, metal in ((11, "Bronze"), (12, "Gold"))
    ]
    assert records == [
        *acme_plans,
        Skipped(index=40, line=line(40), reason="no physical-therapy specialty (101YP2500X)"),
        Skipped(index=41, line=line(41), reason="no physical-therapy specialty (207R00000X)"),
        Skipped(index=42, line=line(42), reason="no physical-therapy specialty (207R00000X)"),
    ]


# Physical therapists in the same format.


def pt_fixture_records() -> list[Record]:
    return ndjson(fixture("physical_therapists.ndjson"))


def test_plans_come_first_then_unlisted_networks() -> None:
    plans = [record for record in pt_fixture_records() if isinstance(record, PlanRecord)]
    assert plans == [
        PlanRecord(
            index=5,
            line=7,  # a blank line precedes it
            key="InsurancePlan/plan-gold",
            name="Acme Gold PPO",
            plan_type="marketplace",
            hios_plan_id="12345IL0010001",
        ),
        PlanRecord(
            index=6,
            line=8,
            key="InsurancePlan/plan-medicare",
            name="Acme Medicare Advantage",
            plan_type="medicare_advantage",
            hios_plan_id=None,
        ),
        PlanRecord(
            index=7,
            line=9,
            key="InsurancePlan/plan-dental",
            name="Acme Dental",
            plan_type=None,
            hios_plan_id=None,
        ),
        # Listed by no InsurancePlan, named by a role: the network stands for its plans.
        PlanRecord(
            index=10,
            line=12,
            key="Organization/net-medicaid",
            name="Acme Medicaid Network",
            plan_type=None,
            hios_plan_id=None,
        ),
    ]
    assert isinstance(pt_fixture_records()[4], ProviderRecord)


def test_neurology_pt_with_two_locations_maps_every_field() -> None:
    # The role precedes both its Locations and the network and plans it names.
    records = pt_fixture_records()
    verified_at = datetime(2024, 6, 1, 16, 30, 0, 123456, tzinfo=UTC)
    plans = [
        PlanRef("InsurancePlan/plan-gold", None, date(2024, 1, 1), date(2099, 12, 31), verified_at),
        PlanRef(
            "InsurancePlan/plan-medicare", None, date(2024, 1, 1), date(2099, 12, 31), verified_at
        ),
    ]
    assert records[4] == ProviderRecord(
        index=0,
        line=1,
        npi="1234567893",
        first_name="Ana",
        middle_name="María Luisa",
        last_name="García",
        name_suffix="Jr.",
        credentials=["DPT", "OCS"],
        gender="female",
        specialties=["2251N0400X"],
        languages=["en", "es"],
        sites=[
            SiteRecord(
                name="Lakeshore Neuro Rehab",
                address_line1="100 N Michigan Ave",
                address_line2="Suite 400, Floor 4",
                city="Chicago",
                state="IL",
                zip="60601",
                latitude=41.8837,
                longitude=-87.6245,
                phone="312-555-0198",  # the Location's, best ranked
                fax="312-555-0101",  # the role's: the Location lists none
                accepting_new_patients=True,  # the role's newpt, over the Location's
                plans=plans,
                path="Location/clinic-north",
            ),
            SiteRecord(
                name="Harrison Street Clinic",
                address_line1="2200 W Harrison St",
                address_line2=None,
                city="Chicago",
                state="IL",
                zip="60612-3833",
                phone="312-555-0100",  # the role's: the Location lists none
                fax="312-555-0101",
                accepting_new_patients=True,
                plans=plans,
                path="Location/clinic-south",
            ),
        ],
        warnings=[
            Problem(
                "PractitionerRole/pt-neuro-role.specialty[1]",
                "207R00000X is not a physical-therapy specialty; kept out",
            ),
            Problem(
                "Practitioner/pt-neuro.communication[2]",
                "'tlh' is not an ISO 639-1 language the directory knows; left out",
            ),
        ],
        path="Practitioner/pt-neuro",
    )


def test_location_before_role_and_network_without_plan() -> None:
    records = pt_fixture_records()
    assert records[5] == ProviderRecord(
        index=12,
        line=14,
        npi="1245319599",
        first_name="Ben",
        last_name="Okafor",
        gender="male",
        specialties=["2251X0800X"],
        sites=[
            SiteRecord(
                name="Evanston Ortho PT",
                address_line1="5 Elm St",
                city="Evanston",
                state="IL",
                zip="60201",
                latitude=42.05,
                longitude=-87.68,
                phone="847-555-0123",
                accepting_new_patients=False,
                plans=[
                    PlanRef(
                        "Organization/net-medicaid",
                        verified_at=datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC),
                    )
                ],
                path="Location/ortho-clinic",
            )
        ],
        path="Practitioner/pt-ortho",
    )


def test_skip_reasons_and_missing_location() -> None:
    records = pt_fixture_records()
    assert records[6:] == [
        Skipped(index=13, line=15, reason="no physical-therapy specialty (207R00000X)"),
        Skipped(index=15, line=17, reason="no PractitionerRole"),
        ProviderRecord(
            index=16,
            line=18,
            npi="1234567895",
            first_name="Lee",
            last_name="Lost",
            specialties=["225100000X"],
            problems=[
                Problem(
                    "PractitionerRole/pt-lost-role.location[0]",
                    "Location/nowhere is not a Location in the file",
                )
            ],
            warnings=[no_network("pt-lost-role")],
            path="Practitioner/pt-lost",
        ),
    ]
    assert len(records) == 9


def test_bundle_gives_the_ndjson_records_without_lines() -> None:
    from_bundle = bundle(fixture("physical_therapists_bundle.json"))
    from_ndjson = pt_fixture_records()
    assert [record.line for record in from_bundle] == [None] * len(from_ndjson)
    for record in from_ndjson:
        record.line = None
    assert from_bundle == from_ndjson


def test_any_order_of_resources_gives_the_same_records() -> None:
    resources = [line for line in fixture("physical_therapists.ndjson").splitlines() if line]
    forward = ndjson(b"\n".join(resources))
    backward = ndjson(b"\n".join(resources[::-1]))
    assert len(forward) == 9
    assert unordered(backward) == unordered(forward)


@pytest.mark.parametrize(
    ("code", "accepting"),
    [("newpt", True), ("nopt", False), ("existptonly", False), ("existptfam", False)],
)
def test_accepting_patients_codes(code: str, accepting: bool) -> None:
    record = provider_of(
        ndjson(as_ndjson(practitioner(), role(extension=(new_patients(code),)), location()))
    )
    assert [site.accepting_new_patients for site in record.sites] == [accepting]
    assert record.problems == []


def test_an_unknown_accepting_patients_code_is_a_problem() -> None:
    record = provider_of(
        ndjson(as_ndjson(practitioner(), role(extension=(new_patients("maybe"),)), location()))
    )
    assert record.problems == [
        Problem(
            "PractitionerRole/role.extension[0]",
            "acceptingPatients code 'maybe' is not one of newpt, nopt, existptonly, existptfam",
        )
    ]


@pytest.mark.parametrize(
    ("value", "accepting", "problem"),
    [
        ({"valueCode": "newpt"}, True, None),
        ({"valueString": " NoPt "}, False, None),
        ({"valueCode": "maybe"}, None, "code 'maybe' is not one of newpt, nopt, existptonly"),
        ({"valueInteger": 1}, None, "has no code (valueCodeableConcept with one of newpt"),
    ],
)
def test_an_accepting_patients_code_written_bare_is_read(
    value: dict[str, Any], accepting: bool | None, problem: str | None
) -> None:
    extension = {
        "url": f"{PLAN_NET}StructureDefinition/newpatients",
        "extension": [{"url": "acceptingPatients", **value}],
    }
    record = provider_of(
        ndjson(as_ndjson(practitioner(), role(extension=(extension,)), location()))
    )
    assert [site.accepting_new_patients for site in record.sites] == [accepting]
    messages = [p.message for p in record.problems]
    if problem is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith(f"acceptingPatients {problem}")


def test_the_location_says_when_the_role_does_not() -> None:
    resources = (
        practitioner(),
        role(locations=("open", "closed", "silent")),
        location("open", extension=[new_patients("newpt")]),
        location("closed", extension=[new_patients("existptonly")]),
        location("silent"),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert [site.accepting_new_patients for site in record.sites] == [True, False, None]


def test_roles_at_one_location_share_a_site() -> None:
    resources = (
        practitioner(),
        role("a", extension=(new_patients("newpt"), network_reference("net-a"))),
        role("b", extension=(new_patients("nopt"), network_reference("net-b"))),
        role("c", extension=(network_reference("net-a"),)),
        network("net-a"),
        network("net-b"),
        location(),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    [site] = record.sites
    # Accepting through one network and not another: nothing to promise.
    assert site.accepting_new_patients is None
    assert [plan.key for plan in site.plans] == ["Organization/net-a", "Organization/net-b"]
    assert record.warnings == [
        Problem(
            "PractitionerRole/b.extension:newpatients",
            "accepting new patients for Organization/net-a (Network net-a), not for "
            "Organization/net-b (Network net-b); the directory holds one value per practice, "
            "so the practice at Location/loc is stored as unknown (one already "
            "in the directory keeps its value)",
        )
    ]


def test_networks_that_disagree_on_new_patients_are_a_warning() -> None:
    # One role, one newpatients extension per network, as the IG means them.
    per_network = (
        new_patients("newpt", "net-a"),
        new_patients("nopt", "net-b"),
        network_reference("net-a"),
        network_reference("net-b"),
    )
    resources = (practitioner(), role(extension=per_network), location(),
                 network("net-a"), network("net-b"))  # fmt: skip
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert [site.accepting_new_patients for site in record.sites] == [None]
    assert record.warnings == [
        Problem(
            "PractitionerRole/role.extension:newpatients",
            "accepting new patients for Organization/net-a (Network net-a), not for "
            "Organization/net-b (Network net-b); the directory holds one value per practice, "
            "so the practice at Location/loc is stored as unknown (one already "
            "in the directory keeps its value)",
        )
    ]
    assert record.problems == []


@pytest.mark.parametrize(("here", "elsewhere"), [("nopt", "newpt"), ("newpt", "nopt")])
def test_what_a_role_says_of_the_files_networks_stands_over_another_network(
    here: str, elsewhere: str
) -> None:
    # "other-payer" is in no InsurancePlan and no Organization of the file.
    said = (new_patients(elsewhere, "other-payer"), new_patients(here, "net"))
    resources = (
        practitioner(),
        role(extension=(*said, network_reference("net"))),
        location(),
        network("net"),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert [site.accepting_new_patients for site in record.sites] == [here == "newpt"]
    assert record.warnings == []


@pytest.mark.parametrize(
    ("text", "accepting"),
    [
        ("Accepting New Patients", True),
        ("accepting", True),
        ("NOT ACCEPTING", False),
        ("Not accepting  new patients", False),
        ("Existing patients only", False),
    ],
)
def test_accepting_patients_given_as_text_alone_is_read(text: str, accepting: bool) -> None:
    def said(text: str) -> ProviderRecord:
        value = {"url": "acceptingPatients", "valueCodeableConcept": {"text": text}}
        extension = {"url": f"{PLAN_NET}StructureDefinition/newpatients", "extension": [value]}
        return provider_of(ndjson(as_ndjson(practitioner(), location(),
                                            role(extension=(extension,)))))  # fmt: skip

    record = said(text)
    assert ([site.accepting_new_patients for site in record.sites], record.problems) == (
        [accepting],
        [],
    )
    # A text that does not read plainly is still refused, as a concept without a code.
    assert [(p.field, p.message) for p in said("Call the office").problems] == [
        (
            "PractitionerRole/role.extension[0]",
            "acceptingPatients has no code "
            "(valueCodeableConcept with one of newpt, nopt, existptonly, existptfam)",
        )
    ]


def test_a_network_listed_by_plans_becomes_those_plans() -> None:
    resources = (
        insurance_plan("gold", "net"),
        practitioner(),
        role(extension=(network_reference("net"),)),
        location(),
        insurance_plan("silver", "other", "net"),
    )
    records = ndjson(as_ndjson(*resources))
    assert [record.key for record in records if isinstance(record, PlanRecord)] == [
        "InsurancePlan/gold",
        "InsurancePlan/silver",
    ]
    record = provider_of(records)
    assert [plan.key for plan in record.sites[0].plans] == [
        "InsurancePlan/gold",
        "InsurancePlan/silver",
    ]
    assert record.problems == []


def test_a_network_named_only_by_a_plans_cost_sharing_variant_becomes_that_plan() -> None:
    gold = insurance_plan("gold", plan=[{"type": {"text": "Gold 80"}, "network": [
        {"reference": "Organization/net"}]}])  # fmt: skip
    records = ndjson(
        as_ndjson(gold, network("net"), practitioner(), location(),
                  role(extension=(network_reference("net"),)))
    )  # fmt: skip
    assert [record.key for record in records if isinstance(record, PlanRecord)] == [
        "InsurancePlan/gold"
    ]
    assert [plan.key for plan in provider_of(records).sites[0].plans] == ["InsurancePlan/gold"]


def test_a_products_plans_with_identifiers_of_their_own_are_plans_of_their_own() -> None:
    # A product (InsurancePlan) with two plans, each with its HIOS id and its own
    # network; the product's network that neither names is in both.
    individual = insurance_plan(
        "individual", "net-gold", "net-everyone", name="Acme Individual", type=QHP,
        plan=[plan_entry("12345CT0010001", metal("gold"), "net-gold"),
              plan_entry("12345ct0020002", {"text": "Silver 70"}, "net-silver")],
    )  # fmt: skip
    # A product of one plan is named as the product: nothing to tell apart.
    only = insurance_plan(
        "only", name="Acme Gold Only", type=QHP,
        plan=[plan_entry("12345CT0030003", metal("gold"), "net-only")],
    )  # fmt: skip
    elm, oak, pine = (
        location(name, address={"line": [f"{number} {name} St"], "city": "Evanston",
                                "state": "IL", "postalCode": "60201"})
        for number, name in ((5, "elm"), (7, "oak"), (9, "pine"))
    )  # fmt: skip
    roles = (
        role("silver-only", locations=("elm",), extension=(network_reference("net-silver"),)),
        role("everyone", locations=("oak",), extension=(network_reference("net-everyone"),)),
        role("only", locations=("pine",), extension=(network_reference("net-only"),)),
    )
    records = ndjson(as_ndjson(individual, only, practitioner(), *roles, elm, oak, pine))
    assert declared(records) == [
        ("InsurancePlan/individual.plan[0]", "Acme Individual Gold", "marketplace",
         "12345CT0010001"),
        ("InsurancePlan/individual.plan[1]", "Acme Individual Silver 70", "marketplace",
         "12345CT0020002"),
        ("InsurancePlan/only.plan[0]", "Acme Gold Only", "marketplace", "12345CT0030003"),
    ]  # fmt: skip
    found = provider_of(records)
    assert found.problems == []
    assert {site.address_line1: [plan.key for plan in site.plans] for site in found.sites} == {
        "5 elm St": ["InsurancePlan/individual.plan[1]"],
        "7 oak St": ["InsurancePlan/individual.plan[0]", "InsurancePlan/individual.plan[1]"],
        "9 pine St": ["InsurancePlan/only.plan[0]"],
    }


def test_a_products_cost_sharing_variants_stay_the_products_plan() -> None:
    # Entries without an identifier are the product's own variants: one plan with it,
    # beside the plan that has an identifier of its own.
    product = insurance_plan("p", name="Acme", type=QHP, plan=[
        plan_entry(None, {"text": "Gold 80"}, "net-variant"),
        plan_entry("12345CT0010001", metal("silver"), "net-silver"),
    ])  # fmt: skip
    resources = (product, practitioner(), location(),
                 role(extension=(network_reference("net-variant"),)))  # fmt: skip
    records = ndjson(as_ndjson(*resources))
    assert declared(records) == [
        ("InsurancePlan/p", "Acme", "marketplace", None),
        ("InsurancePlan/p.plan[1]", "Acme Silver", "marketplace", "12345CT0010001"),
    ]
    assert [plan.key for plan in provider_of(records).sites[0].plans] == ["InsurancePlan/p"]


def test_plans_of_a_product_that_would_share_a_name_add_their_identifier() -> None:
    # The same metal level in two states; plans without a type at all.
    product = insurance_plan("p", name="Acme", plan=[
        plan_entry("12345CT0010001", metal("gold")),
        plan_entry("12345IL0010001", {"coding": [{"display": "gold"}]}),
        plan_entry("PLAN-7", None),
        plan_entry("PLAN-8", None),
    ])  # fmt: skip
    assert [name for _, name, _, _ in declared(ndjson(as_ndjson(product)))] == [
        "Acme Gold (12345CT0010001)",
        "Acme gold (12345IL0010001)",
        "Acme (PLAN-7)",
        "Acme (PLAN-8)",
    ]


def test_a_plan_named_after_its_product_keeps_within_the_name_limit() -> None:
    product = insurance_plan("p", name="A" * 198, plan=[
        plan_entry("12345CT0010001", metal("gold")),
        plan_entry("12345CT0020002", metal("silver")),
    ])  # fmt: skip
    names = [name or "" for _, name, _, _ in declared(ndjson(as_ndjson(product)))]
    # The product's name is cut, not the plan's own label: that is what tells them apart.
    assert names == ["A" * 195 + " Gold", "A" * 193 + " Silver"]
    assert [len(name) for name in names] == [200, 200]


def test_a_location_contained_in_the_role_is_its_site() -> None:
    contained = location(
        "clinic",
        name="Contained Clinic",
        address={"line": ["200 Main St"], "city": "New Britain", "state": "CT",
                 "postalCode": "06051"},
        position={"latitude": 41.66, "longitude": -72.78},
        telecom=[{"system": "phone", "value": "860-555-0199"}],
        extension=[new_patients("newpt")],
    )  # fmt: skip
    local = role(extension=(network_reference("net"),), contained=[contained])
    local["location"] = [{"reference": "#clinic"}]
    # A Location of the same id in the file is another resource: a contained id is local.
    records = ndjson(as_ndjson(practitioner(), local, network("net"), location("clinic")))
    found = provider_of(records)
    assert (found.problems, found.warnings) == ([], [])
    assert found.sites == [
        SiteRecord(
            name="Contained Clinic",
            address_line1="200 Main St",
            city="New Britain",
            state="CT",
            zip="06051",
            latitude=41.66,
            longitude=-72.78,
            phone="860-555-0199",
            accepting_new_patients=True,
            plans=[PlanRef("Organization/net")],
            path="PractitionerRole/role.contained[0]",
        )
    ]


def test_a_reference_to_a_location_the_role_does_not_contain_says_so() -> None:
    local = role(contained=[{"resourceType": "Organization", "id": "clinic"}])
    local["location"] = [{"reference": "#clinic"}]
    found = provider_of(ndjson(as_ndjson(practitioner(), local, location("clinic"))))
    assert found.problems == [
        Problem(
            "PractitionerRole/role.location[0]", "#clinic is not a Location contained in the role"
        )
    ]


@pytest.mark.parametrize(
    "system",
    [
        "http://nucc.org/provider-taxonomy/",
        "https://nucc.org/provider-taxonomy",
        "urn:oid:2.16.840.1.113883.6.101",
    ],
)
def test_nucc_codes_are_read_under_the_other_names_of_the_code_system(system: str) -> None:
    neuro = {"coding": [{"system": system, "code": "2251N0400X"}]}  # no display to fall back on
    records = ndjson(as_ndjson(practitioner(), location(), role(specialty=[neuro])))
    assert provider_of(records).specialties == ["2251N0400X"]


@pytest.mark.parametrize(
    "system", ["http://hl7.org/fhir/sid/us-npi/", "urn:oid:2.16.840.1.113883.4.6"]
)
def test_an_npi_is_read_under_the_other_names_of_its_system(system: str) -> None:
    identified = practitioner(identifier=[{"system": system, "value": "1234567893"}])
    records = ndjson(as_ndjson(identified, location(), role()))
    assert provider_of(records).npi == "1234567893"


NPI_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NPI"}]}
LICENCE = {"system": "http://example.org/pt-licence", "value": "PT-0042"}


def test_an_identifier_typed_npi_is_the_npi_whatever_its_system() -> None:
    typed = {"type": NPI_TYPE, "system": "http://terminology.hl7.org/NamingSystem/npi",
             "value": "1234567893"}  # fmt: skip
    records = ndjson(as_ndjson(practitioner(identifier=[LICENCE, typed]), role(), location()))
    found = provider_of(records)
    assert (found.npi, found.problems) == ("1234567893", [])


def test_a_practitioner_without_an_npi_is_told_which_system_was_looked_for() -> None:
    records = ndjson(as_ndjson(practitioner(identifier=[LICENCE]), role(), location()))
    assert provider_of(records).problems == [
        Problem(
            "Practitioner/pt.identifier",
            "no identifier with system http://hl7.org/fhir/sid/us-npi (or typed NPI) was found; "
            "the systems of its identifiers: http://example.org/pt-licence",
        )
    ]
    records = ndjson(as_ndjson(practitioner(identifier=[]), role(), location()))
    assert [problem.message for problem in provider_of(records).problems] == [
        "no identifier with system http://hl7.org/fhir/sid/us-npi was found: "
        "the Practitioner has none"
    ]


def by_identifier(system: str | None, value: str) -> dict[str, Any]:
    """A logical reference: the identifier of the resource meant, and no `reference`."""
    identifier = {"value": value} | ({"system": system} if system else {})
    return {"identifier": identifier, "display": "as the file names it"}


def network_by_identifier(value: str) -> dict[str, Any]:
    return {
        "url": f"{PLAN_NET}StructureDefinition/network-reference",
        "valueReference": by_identifier("https://payer.example/networks", value),
    }


def identified_network(id: str, value: str) -> dict[str, Any]:
    identifier = [{"system": "https://payer.example/networks", "value": value}]
    return network(id) | {"identifier": identifier}


@pytest.mark.parametrize(
    ("named_as", "written_as"),
    [
        ({"system": fhir.NPI_SYSTEM}, {"system": fhir.NPI_SYSTEM}),
        ({"system": fhir.NPI_SYSTEM}, {"system": "urn:oid:2.16.840.1.113883.4.6"}),
        ({"type": NPI_TYPE}, {"system": "http://hl7.org/fhir/sid/us-npi/"}),
        ({"system": fhir.NPI_SYSTEM}, {"system": "https://payer.example/npi", "type": NPI_TYPE}),
    ],
)
def test_a_role_naming_its_practitioner_by_npi_is_that_practitioners(
    named_as: dict[str, Any], written_as: dict[str, Any]
) -> None:
    linked = role(extension=(network_reference("net"),))
    linked["practitioner"] = {"identifier": named_as | {"value": "1234567893"}}
    identified = practitioner(identifier=[LICENCE, written_as | {"value": "1234567893"}])
    records = ndjson(as_ndjson(linked, location(), network("net"), identified))
    found = provider_of(records)
    assert (found.npi, found.problems, found.warnings) == ("1234567893", [], [])
    assert [plan.key for plan in found.sites[0].plans] == ["Organization/net"]
    assert not [record for record in records if isinstance(record, Skipped)]


def test_a_practitioner_without_id_is_named_by_its_identifier() -> None:
    nameless = practitioner()
    del nameless["id"]
    linked = role()
    linked["practitioner"] = by_identifier(fhir.NPI_SYSTEM, "1234567893")
    found = provider_of(ndjson(as_ndjson(nameless, linked, location())))
    assert (found.npi, [site.address_line1 for site in found.sites]) == ("1234567893", ["5 Elm St"])


def test_a_role_whose_practitioner_is_not_in_the_file_is_counted_and_named() -> None:
    by_npi = role("by-npi")
    by_npi["practitioner"] = by_identifier(fhir.NPI_SYSTEM, "1245319599")
    unnamed = role("unnamed")
    del unnamed["practitioner"]  # an organisation's role: no practitioner to look for
    resources = (practitioner(), role(), location(), by_npi, role("other", "gone"), unnamed)
    records = ndjson(as_ndjson(*resources))
    assert [site.path for site in provider_of(records).sites] == ["Location/loc"]
    reason = fhir.ROLE_WITHOUT_PRACTITIONER
    assert [record for record in records if isinstance(record, Skipped)] == [
        Skipped(
            index=3,
            line=4,
            reason=f"{reason} (PractitionerRole/by-npi.practitioner: no Practitioner in the "
            "file has the identifier http://hl7.org/fhir/sid/us-npi|1245319599)",
        ),
        Skipped(
            index=4,
            line=5,
            reason=f"{reason} (PractitionerRole/other.practitioner: Practitioner/gone is not "
            "in the file)",
        ),
    ]


def test_a_network_named_by_identifier_is_the_network_with_it() -> None:
    gold = insurance_plan("gold")
    gold["network"] = [by_identifier("https://payer.example/networks/", "NET-3")]
    resources = (
        role("a", extension=(network_by_identifier("NET-3"),)),
        role("b", extension=(network_by_identifier("NET-4"),)),
        practitioner(),
        location(),
        gold,
        identified_network("net-3", "NET-3"),
        identified_network("net-4", "NET-4"),  # listed by no plan: a plan of its own
    )
    records = ndjson(as_ndjson(*resources))
    assert [key for key, *_ in declared(records)] == ["InsurancePlan/gold", "Organization/net-4"]
    found = provider_of(records)
    assert (found.problems, found.warnings) == ([], [])
    assert [plan.key for plan in found.sites[0].plans] == [
        "InsurancePlan/gold",
        "Organization/net-4",
    ]


def test_a_network_identifier_that_no_network_in_the_file_has_is_a_problem() -> None:
    resources = (
        practitioner(),
        role(extension=(network_by_identifier("NET-9"),)),
        location(),
        identified_network("net-3", "NET-3"),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert record.problems == [
        Problem(
            "PractitionerRole/role.extension[0]",
            "no network in the file has the identifier https://payer.example/networks|NET-9 "
            "(no Organization has it, and no InsurancePlan lists it)",
        )
    ]


def test_a_location_named_by_identifier_is_the_location_with_it() -> None:
    linked = role(locations=())
    linked["location"] = [
        by_identifier("https://payer.example/loc", "LOC-6"),
        by_identifier("https://payer.example/loc", "LOC-7"),
    ]
    identified = location(identifier=[{"system": "https://payer.example/loc", "value": "LOC-6"}])
    found = provider_of(ndjson(as_ndjson(practitioner(), linked, identified)))
    assert [site.path for site in found.sites] == ["Location/loc"]
    assert found.problems == [
        Problem(
            "PractitionerRole/role.location[1]",
            "no Location in the file has the identifier https://payer.example/loc|LOC-7",
        )
    ]


def test_a_transaction_bundle_of_resources_known_only_by_urn_full_urls() -> None:
    def urn(name: str) -> str:
        return f"urn:uuid:{name:0>8}-0000-4000-8000-000000000000"

    def entry(name: str, resource: dict[str, Any]) -> dict[str, Any]:
        resource = {key: value for key, value in resource.items() if key != "id"}
        return {"fullUrl": urn(name), "resource": resource, "request": {"method": "POST"}}

    linked = role(extension=(network_reference("net"),))
    linked["practitioner"] = {"reference": urn("pt")}
    linked["location"] = [{"reference": urn("loc")}]
    linked["extension"][0]["valueReference"] = {"reference": urn("net")}
    gold = insurance_plan("gold")
    gold["network"] = [{"reference": urn("net")}]
    entries = [
        entry("gold", gold),
        entry("net", network("net")),
        entry("pt", practitioner()),
        entry("loc", location()),
        entry("role", linked),
    ]
    data = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    records = bundle(json.dumps(data).encode())
    [plan] = [record for record in records if isinstance(record, PlanRecord)]
    assert (plan.key, plan.problems) == (f"InsurancePlan/{urn('gold')}", [])
    found = provider_of(records)
    assert (found.npi, found.problems) == ("1234567893", [])
    assert [site.address_line1 for site in found.sites] == ["5 Elm St"]
    assert [ref.key for ref in found.sites[0].plans] == [plan.key]


def test_a_role_in_another_profession_adds_no_practice() -> None:
    chiropractor = role("chiro", locations=("clinic",), specialty=[specialty("111N00000X")])
    unstated = role("home", locations=("home",), specialty=[])
    records = ndjson(
        as_ndjson(
            practitioner(), role(), chiropractor, unstated, location(),
            location("clinic", address={"line": ["9 Oak Ave"], "city": "Evanston",
                                        "state": "IL", "postalCode": "60202"}),
            location("home", address={"line": ["1 Lake Dr"], "city": "Evanston",
                                      "state": "IL", "postalCode": "60201"}),
        )
    )  # fmt: skip
    found = provider_of(records)
    # A role that names no specialty at all is taken as the practitioner's PT work.
    assert [site.address_line1 for site in found.sites] == ["5 Elm St", "1 Lake Dr"]
    assert found.specialties == ["2251N0400X"]
    assert ("PractitionerRole/chiro", True) in {
        (warning.field, "locations and networks are left out" in warning.message)
        for warning in found.warnings
    }


@pytest.mark.parametrize("status", ["inactive", "suspended"])
def test_a_location_no_longer_in_use_adds_no_practice(status: str) -> None:
    closed = location(
        "closed",
        status=status,
        address={"line": ["9 Oak Ave"], "city": "Evanston", "state": "IL", "postalCode": "60202"},
    )
    records = ndjson(
        as_ndjson(practitioner(), role(locations=("loc", "closed")), location(), closed)
    )  # fmt: skip
    found = provider_of(records)
    assert [site.address_line1 for site in found.sites] == ["5 Elm St"]
    assert [(w.field, w.message) for w in warned(found)] == [
        ("PractitionerRole/role.location[1]", f"Location/closed is {status}; no practice there")
    ]


def test_a_practitioner_whose_every_location_is_closed_is_skipped() -> None:
    records = ndjson(as_ndjson(practitioner(), role(), location(status="inactive")))
    assert records == [
        Skipped(index=0, line=1, reason="every Location of its roles is inactive or suspended")
    ]


def abroad(id: str, country: str) -> dict[str, Any]:
    return location(id, address={"line": ["100 King St W"], "city": "Toronto", "state": "ON",
                                 "postalCode": "M5X 1A9", "country": country})  # fmt: skip


def test_a_location_outside_the_us_adds_no_practice() -> None:
    resources = (role(locations=("loc", "toronto")), location(), abroad("toronto", "CA"))
    found = provider_of(ndjson(as_ndjson(practitioner(), *resources)))
    # Not a site, so its Ontario state and Canadian postal code refuse nothing.
    assert ([site.address_line1 for site in found.sites], found.problems) == (["5 Elm St"], [])
    message = "Location/toronto is outside the US (CA); no practice there"
    assert [(w.field, w.message) for w in warned(found)] == [
        ("PractitionerRole/role.location[1]", message)
    ]


def test_the_us_and_its_territories_by_their_usual_names_are_practices() -> None:
    countries = ["US", "usa", "United States", "united states of america", "U.S.A.", "PR",
                 "Puerto Rico", "GU", "VI", "U.S. Virgin Islands", "AS", "MP",
                 "Mexico"]  # fmt: skip
    ids = tuple(f"loc{position}" for position in range(len(countries)))
    locations = [
        location(id, address={"line": [f"{n} Elm St"], "city": "Evanston", "state": "IL",
                              "postalCode": "60201", "country": country})
        for n, (id, country) in enumerate(zip(ids, countries, strict=True))
    ]  # fmt: skip
    found = provider_of(ndjson(as_ndjson(practitioner(), role(locations=ids), *locations)))
    assert [site.path for site in found.sites] == [f"Location/{id}" for id in ids[:-1]]
    assert [w.message for w in warned(found)] == [
        "Location/loc12 is outside the US (Mexico); no practice there"
    ]


def test_a_practitioner_whose_every_location_is_abroad_or_closed_is_skipped() -> None:
    records = ndjson(as_ndjson(practitioner(), role(), abroad("loc", "CA")))
    assert records == [
        Skipped(index=0, line=1, reason="every Location of its roles is outside the US (CA)")
    ]
    both = (role(locations=("loc", "closed")), location("closed", status="inactive"))
    records = ndjson(as_ndjson(practitioner(), abroad("loc", "Canada"), *both))
    reason = "every Location of its roles is inactive, suspended or outside the US (Canada)"
    assert records == [Skipped(index=0, line=1, reason=reason)]


def phone(value: str, **fields: Any) -> dict[str, Any]:
    return {"system": "phone", "value": value, **fields}


def fax(value: str, **fields: Any) -> dict[str, Any]:
    return {"system": "fax", "value": value, **fields}


def test_a_contact_point_out_of_use_is_not_taken() -> None:
    telecom = [
        phone("847-555-0199", rank=1, period={"end": "2024-01-14"}),  # ended yesterday
        phone("847-555-0198", rank=1, period={"start": "2024-01-16"}),  # starts tomorrow
        phone("847-555-0111", rank=2, period={"start": "2022-01-01", "end": "2024-01-15"}),
        phone("847-555-0110", rank=3),
        fax("847-555-0112", use="old"),
        fax("847-555-0113", use="work"),
    ]
    [site] = provider_of(ndjson(as_ndjson(practitioner(), role(), location(telecom=telecom)))).sites
    # Among the numbers in use (today is an ended period's last day), rank decides.
    assert (site.phone, site.fax) == ("847-555-0111", "847-555-0113")


def test_numbers_all_out_of_use_give_none() -> None:
    out_of_use = [phone("847-555-0199", period={"end": "2023"}), fax("847-555-0112", use="old")]
    records = ndjson(as_ndjson(practitioner(), role(), location(telecom=out_of_use)))
    [site] = provider_of(records).sites
    assert (site.phone, site.fax) == (None, None)
    # The role's number in use stands in, as for a Location that lists none.
    listed = role(telecom=[phone("847-555-0197", use="old"), phone("847-555-0100")])
    records = ndjson(as_ndjson(practitioner(), listed, location(telecom=out_of_use)))
    assert provider_of(records).sites[0].phone == "847-555-0100"


def test_a_network_not_in_the_file_is_a_problem() -> None:
    resources = (practitioner(), role(extension=(network_reference("elsewhere"),)), location())
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert record.problems == [
        Problem(
            "PractitionerRole/role.extension[0]",
            "network Organization/elsewhere is not in the file, "
            "and no InsurancePlan in it lists it",
        )
    ]
    assert record.sites[0].plans == []


@pytest.mark.parametrize(
    ("period", "effective"),
    [
        ({"start": "2024-03-15", "end": "2025-06-30"}, (date(2024, 3, 15), date(2025, 6, 30))),
        ({"start": "2024-02", "end": "2024-02"}, (date(2024, 2, 1), date(2024, 2, 29))),
        ({"start": "2024", "end": "2026"}, (date(2024, 1, 1), date(2026, 12, 31))),
        ({"start": "2024-03-15T08:00:00-05:00"}, (date(2024, 3, 15), None)),
        ({}, (None, None)),
    ],
)
def test_role_period_gives_plan_dates(
    period: dict[str, str], effective: tuple[date | None, date | None]
) -> None:
    resources = (
        practitioner(),
        role(extension=(network_reference("net"),), period=period),
        location(),
        network("net"),
    )
    [plan] = provider_of(ndjson(as_ndjson(*resources))).sites[0].plans
    assert (plan.effective_from, plan.effective_to) == effective


def test_unreadable_period_and_last_updated_are_problems() -> None:
    resources = (
        practitioner(),
        role(
            extension=(network_reference("net"),),
            period={"start": "2024-02-30", "end": "soon"},
            meta={"lastUpdated": "yesterday"},
        ),
        location(),
        network("net"),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert [(problem.field, problem.message) for problem in record.problems] == [
        ("PractitionerRole/role.period.start", "'2024-02-30' is not a FHIR date (YYYY-MM-DD)"),
        ("PractitionerRole/role.period.end", "'soon' is not a FHIR date (YYYY-MM-DD)"),
        (
            "PractitionerRole/role.meta.lastUpdated",
            "'yesterday' is not a FHIR instant (such as 2025-01-31T09:00:00Z)",
        ),
    ]


def test_specialties_of_all_roles_pt_codes_only_primary_first() -> None:
    resources = (
        practitioner(),
        role("a", specialty=[specialty("207R00000X"), specialty("2251x0800x")]),
        role(
            "b",
            specialty=[
                specialty("2251N0400X"),
                specialty("2251X0800X"),
                {"text": "Sports Physical Therapy"},
                {"text": "Massage"},
            ],
        ),
        location(),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert record.specialties == ["2251X0800X", "2251N0400X", "2251S0007X"]
    assert warned(record) == [
        Problem(
            "PractitionerRole/a.specialty[0]",
            "207R00000X is not a physical-therapy specialty; kept out",
        ),
        Problem(
            "PractitionerRole/b.specialty[3]",
            "'Massage' is not a physical-therapy specialty; kept out",
        ),
    ]
    # Two roles at one Location: one site.
    assert len(record.sites) == 1


def test_inactive_roles_are_left_out() -> None:
    resources = (
        practitioner(),
        role("old", locations=("old-loc",), active=False),
        role("now"),
        location(),
        location("old-loc"),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert len(record.sites) == 1
    assert warned(record) == [
        Problem("PractitionerRole/old.active", "the role is inactive; left out")
    ]
    only_inactive = ndjson(as_ndjson(practitioner(), role(active=False), location()))
    assert only_inactive == [Skipped(index=0, line=1, reason="no active PractitionerRole")]
    retired = ndjson(as_ndjson(practitioner(active=False), role(), location()))
    assert retired == [Skipped(index=0, line=1, reason="the Practitioner is inactive")]


def test_roles_that_have_ended_are_left_out() -> None:
    elsewhere = {"line": ["9 Oak Ave"], "city": "Evanston", "state": "IL", "postalCode": "60202"}
    resources = (
        practitioner(),
        role("old", locations=("old-loc",), period={"start": "2020-01-01", "end": "2024-01-14"}),
        role("last-day", period={"start": "2020-01-01", "end": "2024-01-15"}),
        location(),
        location("old-loc", address=elsewhere),
    )
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert [site.address_line1 for site in record.sites] == ["5 Elm St"]
    assert warned(record) == [
        Problem("PractitionerRole/old.period.end", "the role ended on 2024-01-14; left out")
    ]
    only_ended = ndjson(as_ndjson(practitioner(), role(period={"end": "2023-06"}), location()))
    assert only_ended == [Skipped(index=0, line=1, reason="no active PractitionerRole")]
    # A role yet to start is listed: its networks' participations start with it.
    starting = role(extension=(network_reference("net"),), period={"start": "2024-02-01"})
    record = provider_of(ndjson(as_ndjson(practitioner(), starting, location(), network("net"))))
    assert [(plan.key, plan.effective_from) for plan in record.sites[0].plans] == [
        ("Organization/net", date(2024, 2, 1))
    ]


def test_a_role_without_location_adds_no_site() -> None:
    record = provider_of(ndjson(as_ndjson(practitioner(), role(locations=()))))
    assert record.sites == []
    assert record.warnings == [
        Problem(
            "PractitionerRole/role.location",
            "the role names no Location, so it adds no site (nor its networks)",
        )
    ]


def test_a_role_at_a_location_that_names_no_network_is_warned() -> None:
    record = provider_of(ndjson(as_ndjson(practitioner(), role(), location())))
    assert [site.plans for site in record.sites] == [[]]
    assert record.warnings == [
        Problem(
            "PractitionerRole/role.extension:network-reference",
            "the role names no network (network-reference), so its practice is in none of the "
            "payer's plans",
        )
    ]
    in_one = role(extension=(network_reference("net"),))
    record = provider_of(ndjson(as_ndjson(practitioner(), in_one, location(), network("net"))))
    assert record.warnings == []


def test_an_expired_qualification_is_no_credential() -> None:
    def degree(code: str, **fields: Any) -> dict[str, Any]:
        return {"code": {"coding": [{"system": fhir.DEGREE_SYSTEM, "code": code}]}, **fields}

    qualifications = [
        degree("MPT", period={"start": "2005-06-01", "end": "2019-12-31"}),
        degree("PT", period={"end": "2023"}),
        degree("DPT", period={"start": "2020-01-01", "end": "2024-01-15"}),  # its last day
        degree("OCS"),
    ]
    resources = (practitioner(qualification=qualifications), role(), location())
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert (record.credentials, warned(record)) == (["DPT", "OCS"], [])


def test_languages_written_as_names_are_read() -> None:
    communication = [
        {"text": "Spanish"},
        {"coding": [{"system": "urn:ietf:bcp:47", "display": "Vietnamese"}]},
        {"coding": [{"system": "urn:ietf:bcp:47", "code": "zh-Hant-TW"}]},
        {"coding": [{"code": "tgl-PH", "display": "Tagalog"}]},  # ISO 639-2: its name, then
        {"text": "Spanish; Español"},
        {"text": "Klingon"},
        {},
    ]
    resources = (practitioner(communication=communication), role(), location())
    record = provider_of(ndjson(as_ndjson(*resources)))
    assert record.languages == ["es", "vi", "zh", "tl"]
    assert warned(record) == [
        Problem(
            "Practitioner/pt.communication[5]",
            "'Klingon' is not a language the directory knows; left out",
        ),
        Problem("Practitioner/pt.communication[6]", "a language with no code or name; left out"),
    ]


def test_unknown_gender_and_other_gender() -> None:
    def gender_of(value: str) -> tuple[str | None, list[Problem]]:
        record = provider_of(ndjson(as_ndjson(practitioner(gender=value), role(), location())))
        return record.gender, warned(record)

    assert gender_of("other") == ("other", [])
    assert gender_of("unknown") == (None, [])
    assert gender_of("robot") == (
        None,
        [Problem("Practitioner/pt.gender", "'robot' is not male, female or other; left out")],
    )


def test_the_name_in_use_is_taken_not_the_first_listed() -> None:
    def name_of(*names: dict[str, Any]) -> tuple[str | None, ...]:
        record = provider_of(ndjson(as_ndjson(practitioner(name=list(names)), role(), location())))
        return record.first_name, record.middle_name, record.last_name, record.name_suffix

    def named(family: str, use: str | None = None, **parts: Any) -> dict[str, Any]:
        return {"family": family, "given": ["Jane"], **({"use": use} if use else {}), **parts}

    married = named("Married", "official", given=["Jane", "Q."], suffix=["DPT"])
    assert name_of(named("Maiden", "old"), married) == ("Jane", "Q.", "Married", "DPT")
    assert name_of(named("Usual", "usual"), named("Official", "official"))[2] == "Official"
    assert name_of(named("Old", "old"), named("Usual", "usual"))[2] == "Usual"
    assert name_of(named("Temp", "temp"), named("Plain"))[2] == "Plain"
    assert name_of(named("Maiden", "maiden"), named("Nick", "nickname"))[2] == "Nick"
    # Only names no longer in use: the first listed, as before.
    assert name_of(named("Maiden", "maiden"), named("Old", "old"))[2] == "Maiden"


def test_a_practitioner_without_id_is_skipped() -> None:
    nameless = practitioner()
    del nameless["id"]
    assert ndjson(as_ndjson(nameless)) == [
        Skipped(
            index=0,
            line=1,
            reason="the Practitioner has no id or urn fullUrl, and no PractitionerRole names it",
        )
    ]


@pytest.mark.parametrize(
    ("code", "plan_type"),
    [
        ("qhp", "marketplace"),
        ("medi", "medicaid"),
        ("mediadvhmo", "medicare_advantage"),
        ("medib", "medicare_part_b"),
        ("commppo", "commercial"),
        ("medid", None),
        ("vis", None),
    ],
)
def test_plan_types(code: str, plan_type: str | None) -> None:
    coding = {"system": f"{PLAN_NET}CodeSystem/InsuranceProductTypeCS", "code": code}
    [record] = ndjson(as_ndjson(insurance_plan("p", type=[{"coding": [coding]}])))
    assert isinstance(record, PlanRecord)
    assert record.plan_type == plan_type


def test_duplicate_resources_keep_the_first_copy() -> None:
    resources = (
        practitioner(),
        role(),
        location(name="First"),
        location(name="Second"),
    )
    assert provider_of(ndjson(as_ndjson(*resources))).sites[0].name == "First"


def test_bundle_references_by_urn_and_resource_type_after_entries() -> None:
    entries = [
        {"fullUrl": "urn:uuid:0001", "resource": practitioner("p-1")},
        {
            "fullUrl": "urn:uuid:0002",
            "resource": role(extension=(network_reference("x"),)),
        },
        {"fullUrl": "urn:uuid:0003", "resource": location("l-1")},
        {"fullUrl": "urn:uuid:0004", "resource": network("n-1")},
        {"request": {"method": "DELETE", "url": "Location/gone"}},
    ]
    entries[1]["resource"]["practitioner"] = {"reference": "urn:uuid:0001"}
    entries[1]["resource"]["location"] = [{"reference": "urn:uuid:0003"}]
    entries[1]["resource"]["extension"][0]["valueReference"] = {"reference": "urn:uuid:0004"}
    data = json.dumps({"type": "transaction", "entry": entries, "resourceType": "Bundle"})
    records = bundle(data.encode())
    assert [record.key for record in records if isinstance(record, PlanRecord)] == [
        "Organization/n-1"
    ]
    record = provider_of(records)
    assert record.index == 0
    assert [plan.key for plan in record.sites[0].plans] == ["Organization/n-1"]
    assert record.sites[0].address_line1 == "5 Elm St"
    assert record.problems == []


# The file as a whole.


def test_temporary_database_is_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = fixture("physical_therapists.ndjson")
    assert len(ndjson(data)) == 9
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImportFileError):
        ndjson(data + b'{"resourceType": "Location", "id"')
    assert list(tmp_path.iterdir()) == []
    records = parse_ndjson(io.BytesIO(data))
    assert isinstance(next(records), PlanRecord)
    assert len(list(tmp_path.iterdir())) == 1
    records.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (parse_ndjson, "physical_therapists.ndjson"),
        (parse_bundle, "physical_therapists_bundle.json"),
    ],
)
def test_utf8_byte_order_mark_is_accepted(parse: Parser, name: str) -> None:
    data = fixture(name)
    assert read(parse, codecs.BOM_UTF8 + data) == read(parse, data)


@pytest.mark.parametrize("parse", [parse_ndjson, parse_bundle])
def test_utf16_is_refused(parse: Parser) -> None:
    data = fixture("physical_therapists.ndjson").decode("utf-8").encode("utf-16")
    with pytest.raises(ImportFileError, match=r"^the file is encoded as UTF-16; save it as UTF-8"):
        read(parse, data)


@pytest.mark.parametrize(
    ("parse", "name", "line"),
    [
        (parse_ndjson, "physical_therapists.ndjson", 1),
        # "García" first stands in the narrative, on line 12 of the indented Bundle.
        (parse_bundle, "physical_therapists_bundle.json", 12),
    ],
)
def test_latin1_bytes_are_refused_with_the_line(parse: Parser, name: str, line: int) -> None:
    data = fixture(name).decode("utf-8").encode("latin-1")
    refused = refusal(parse, data)
    assert refused.message == (
        f"the file is not valid UTF-8 on line {line} (byte 0xed); save it as UTF-8 and upload "
        "again (Latin-1 and Windows-1252 are not accepted)"
    )
    assert refused.line == line


@pytest.mark.parametrize("parse", [parse_ndjson, parse_bundle])
@pytest.mark.parametrize("data", [b"", b"\n  \n\r\n", codecs.BOM_UTF8])
def test_empty_file(parse: Parser, data: bytes) -> None:
    with pytest.raises(ImportFileError, match=r"^the file is empty$"):
        read(parse, data)


def test_ndjson_truncated_last_line() -> None:
    data = fixture("physical_therapists.ndjson")
    cut = data[: data.rindex(b"Lost") + 2]
    refused = refusal(parse_ndjson, cut + b"\n\n")
    assert refused.message == (
        "line 18, the last line, is not valid JSON: the file looks truncated (upload cut short?)"
    )
    assert refused.line == 18


def test_ndjson_invalid_line_in_the_middle() -> None:
    data = as_ndjson(practitioner()) + b'{"resourceType": "Location",}\n' + as_ndjson(location())
    refused = refusal(parse_ndjson, data)
    assert refused.message == (
        "line 2 is not valid JSON: Expecting property name enclosed in double quotes at column 29"
    )
    assert refused.line == 2


def test_ndjson_pretty_printed_file_is_refused_with_a_hint() -> None:
    refused = refusal(parse_ndjson, json.dumps(practitioner(), indent=2).encode())
    assert refused.message.startswith("line 1 is not valid JSON: ")
    assert refused.message.endswith("(NDJSON has one whole resource per line: is this a Bundle?)")


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (b"[1, 2]", "a list"),
        (b'"Practitioner"', "a string"),
        (b'{"id": "pt"}', "an object without a resourceType"),
    ],
)
def test_ndjson_line_that_is_not_a_resource_is_refused(line: bytes, found: str) -> None:
    refused = refusal(
        parse_ndjson, as_ndjson(practitioner()) + line + b"\n" + as_ndjson(location())
    )
    assert refused.message == (
        f"line 2 is not a FHIR resource (a JSON object with a resourceType); found {found}"
    )
    assert refused.line == 2


def test_ndjson_line_holding_a_bundle_is_refused() -> None:
    with pytest.raises(ImportFileError, match=r"^line 1 is a whole Bundle; NDJSON has one"):
        ndjson(as_bundle(practitioner()).replace(b"\n", b" ") + b"\n")


def test_bundle_of_another_resource_type_is_refused() -> None:
    refused = refusal(parse_bundle, json.dumps(practitioner()).encode())
    assert refused.message == "expected a Bundle, found Practitioner"
    refused = refusal(parse_bundle, b'{"entry": []}')
    assert refused.message == ("expected a Bundle, found a JSON object without a resourceType")


def test_bundle_that_is_an_array_is_refused() -> None:
    refused = refusal(parse_bundle, b'[{"resourceType": "Practitioner"}]')
    assert refused.message == (
        'expected a FHIR Bundle (a JSON object with "resourceType": "Bundle"), found a JSON array'
    )


def test_bundle_truncated() -> None:
    data = fixture("physical_therapists_bundle.json")
    refused = refusal(parse_bundle, data[: len(data) // 2])
    assert refused.message == ("the file ends before the JSON is complete (truncated upload?)")


def test_bundle_malformed_names_the_entry_reached() -> None:
    data = as_bundle(practitioner(), role(), location()).replace(b'}}, {"resource"', b'}} {"r', 1)
    refused = refusal(parse_bundle, data)
    assert refused.message.startswith("the file is not valid JSON at entry 1: ")


def test_bundle_entry_without_a_resource_object_is_refused() -> None:
    data = json.dumps({"resourceType": "Bundle", "entry": [{"resource": "Practitioner/pt"}]})
    refused = refusal(parse_bundle, data.encode())
    assert refused.message == (
        "entry 0 of the Bundle holds no FHIR resource (a JSON object with a resourceType)"
    )


def is_clean_provider(record: Record) -> bool:
    return isinstance(record, ProviderRecord) and not record.problems


def write_large_directory(path: Path, count: int, *, as_bundle: bool) -> None:
    """`count` resources: thirds of Practitioners, their roles and their Locations."""
    # Read and dropped: a narrative as long as many directories write.
    narrative = {"status": "generated", "div": "<div>" + "x" * 2000 + "</div>"}
    with path.open("w", encoding="utf-8") as handle:
        if as_bundle:
            handle.write('{"resourceType": "Bundle", "type": "collection", "entry": [\n')
        first = network("net")
        handle.write(json.dumps({"resource": first} if as_bundle else first))
        for number in range(count // 3):
            for resource in (
                role(f"r{number}", f"p{number}", (f"l{number}",), (network_reference("net"),)),
                practitioner(f"p{number}", name=[{"family": f"Last{number}", "given": ["Ana"]}]),
                location(f"l{number}", position={"latitude": 41.9, "longitude": -87.6}),
            ):
                resource["text"] = narrative
                text = json.dumps({"resource": resource} if as_bundle else resource)
                handle.write((",\n" if as_bundle else "\n") + text)
        handle.write("]}\n" if as_bundle else "\n")


@pytest.mark.parametrize(("parse", "is_bundle"), [(parse_ndjson, False), (parse_bundle, True)])
def test_memory_stays_flat_over_a_large_file(
    parse: Parser, is_bundle: bool, tmp_path: Path
) -> None:
    path = tmp_path / "directory.json"
    count, bound = 12_000, 3_000_000
    write_large_directory(path, count, as_bundle=is_bundle)
    assert path.stat().st_size > 6 * bound
    providers, peak = count_and_peak_memory(parse, path, counted=is_clean_provider)
    assert providers == count // 3
    # The resources read would take tens of MB; the records alone about 6 MB.
    assert peak < bound, f"peak traced memory {peak:,} bytes"


@pytest.mark.parametrize("batch", [1, 1000])
def test_a_second_resource_with_the_same_id_is_skipped_and_counted(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fhir, "_BATCH", batch)  # the copies in one batch, or in two
    later_name = {"name": [{"family": "Later", "given": ["Copy"]}]}
    records = ndjson(
        as_ndjson(
            practitioner(),
            location(),
            role(),
            practitioner(**later_name),
            location(address={"line": ["9 Oak St"], "city": "Evanston", "state": "IL"}),
        )
    )
    skipped = [(r.index, r.line, r.reason) for r in records if isinstance(r, Skipped)]
    assert skipped == [
        (3, 4, "a second Practitioner with the same id (the first in the file is kept)"),
        (4, 5, "a second Location with the same id (the first in the file is kept)"),
    ]
    found = provider_of(records)
    assert (found.last_name, [site.address_line1 for site in found.sites]) == (
        "García",
        ["5 Elm St"],
    )


@pytest.mark.parametrize(
    ("product_type", "plan_type"),
    [
        ({"coding": [{"code": "Medicaid"}]}, "medicaid"),  # not the code system's `medi`
        ({"coding": [{"code": "x1", "display": "Medicare Advantage"}]}, "medicare_advantage"),
        ({"text": "Qualified Health Plan"}, "marketplace"),
        ({"coding": [{"code": "denti", "display": "Dental"}]}, None),  # left to the default
    ],
)
def test_a_product_type_written_in_words_is_read(
    product_type: dict[str, Any], plan_type: str | None
) -> None:
    records = ndjson(as_ndjson(insurance_plan("p", "net", type=[product_type]), network("net")))
    assert [found[2] for found in declared(records)] == [plan_type]
