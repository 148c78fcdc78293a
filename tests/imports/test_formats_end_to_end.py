"""Each format, imported and then searched: the same roster whatever the file's shape."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports import reading
from app.imports.formats import Format
from app.imports.roster import Mode
from app.imports.service import OnError
from app.locations.models import GeocodePrecision, Location
from app.networks.models import Payer, Plan
from tests.conftest import Backend
from tests.factories import make_npi
from tests.imports import test_fhir as fhir_helpers
from tests.imports.helpers import checksum, import_bytes, roster_csv, row
from tests.imports.test_nppes import nppes_bytes, pt

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROSTER = ("therapists", "locations", "practices", "participations", "plans", "search_practices")


@pytest.fixture(autouse=True, params=["read here", "read in a child process"])
def reading_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs twice: the file read in the import's process, and in a child."""
    if request.param == "read in a child process":
        monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", 0)


def add_payer(db: Session) -> int:
    payer = Payer(name="Acme Health")
    db.add(payer)
    db.commit()
    return payer.id


def near_chicago(client: TestClient, **params: object) -> list[str]:
    response = client.get(
        "/v1/search/therapists", params={"lat": 41.88, "lon": -87.63, "radius": 30} | params
    )
    assert response.status_code == 200, response.text
    return sorted(item["npi"] for item in response.json()["items"])


def test_plan_net_ndjson_and_bundle_give_the_same_directory(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db)
    ndjson = (FIXTURES / "plannet" / "physical_therapists.ndjson").read_bytes()
    first = import_bytes(
        backend.engine,
        tmp_path,
        ndjson,
        payer_id=payer_id,
        format=Format.FHIR,
        on_error=OnError.SKIP,
    )
    assert first.succeeded, first.issues
    assert (first.counts.records_imported, first.counts.records_invalid) == (2, 1)
    assert first.skipped == {"no physical-therapy specialty": 1, "no PractitionerRole": 1}
    refused = {(issue.line, issue.field) for issue in first.issues if issue.level == "error"}
    assert (18, "PractitionerRole/pt-lost-role.location[0]") in refused
    after_ndjson = checksum(backend.engine, *ROSTER)

    bundle = (FIXTURES / "plannet" / "physical_therapists_bundle.json").read_bytes()
    second = import_bytes(
        backend.engine,
        tmp_path,
        bundle,
        payer_id=payer_id,
        format=Format.FHIR,
        on_error=OnError.SKIP,
    )
    assert second.counts.therapists_unchanged == 2
    assert checksum(backend.engine, *ROSTER) == after_ndjson

    gold = db.scalars(select(Plan).where(Plan.name == "Acme Gold PPO")).one()
    assert gold.hios_plan_id == "12345IL0010001"
    # The neurology PT's role runs to the end of 2099 (its `period`); a role that has
    # ended adds no practice (tests/imports/test_fhir_end_to_end.py).
    assert near_chicago(client, plan_id=gold.id) == ["1234567893"]
    medicaid = db.scalars(select(Plan).where(Plan.name == "Acme Medicaid Network")).one()
    assert near_chicago(client, plan_id=medicaid.id) == ["1245319599"]
    assert near_chicago(client, specialty="neurology") == ["1234567893"]
    assert near_chicago(client) == ["1234567893", "1245319599"]
    # Location.position became the coordinates of the sites that have one.
    placed = {
        (location.latitude, location.longitude): location.geocode_precision
        for location in db.scalars(select(Location))
    }
    assert placed[(41.8837, -87.6245)] is GeocodePrecision.PROVIDED


def test_qhp_physical_therapists_are_searchable_by_plan(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db)
    providers = (FIXTURES / "qhp" / "physical_therapists.json").read_bytes()
    outcome = import_bytes(
        backend.engine,
        tmp_path,
        providers,
        payer_id=payer_id,
        format=Format.QHP,
        on_error=OnError.SKIP,
    )
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.records_imported == 2
    assert outcome.counts.records_skipped == 2
    plan = db.scalars(select(Plan).where(Plan.hios_plan_id == "12345IL0010001")).one()
    assert plan.plan_type == "marketplace"
    found = near_chicago(client, plan_id=plan.id, specialty="neurology")
    assert found == ["1234567893"]


def test_an_unpaired_surrogate_in_a_json_roster_is_a_problem_on_its_field(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    """JSON can spell a lone surrogate ("\\ud800"), which no UTF-8 database can store:
    the record is refused with a problem naming the field, never an internal error."""
    payer_id = add_payer(db)
    providers = (
        b'[{"npi": "1234567893", "type": "INDIVIDUAL", "name": {"first": "Ana", '
        b'"last": "Garc\\ud800a"}, "addresses": [{"address": "5 Elm St", "city": "Evanston", '
        b'"state": "IL", "zip": "60201"}], "specialty": ["Physical Therapy"], '
        b'"accepting": "accepting", "plans": []}]'
    )
    outcome = import_bytes(
        backend.engine, tmp_path, providers, payer_id=payer_id, format=Format.QHP,
        on_error=OnError.SKIP, mode=Mode.MERGE,  # a replace importing nobody fails
    )  # fmt: skip
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.records_imported == 0
    refused = [issue for issue in outcome.issues if issue.level == "error"]
    assert [issue.field for issue in refused] == ["name.last"]  # as providers.json spells it
    assert "surrogates" in refused[0].message


def _json_lines(*resources: dict[str, object]) -> bytes:
    return b"\n".join(json.dumps(resource).encode() for resource in resources) + b"\n"


_TIERS = [("GOLD", "A"), ("GOLD", "B"), ("TIN", "A")]
_FHIR_NAMES = [{"family": "Rivera", "given": ["Ana"]}, {"given": ["Bo"]}]
_ELM_ST = {"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}
_QHP_PROVIDER = {"type": "INDIVIDUAL", "specialty": ["Physical Therapy"], "plans": []}
# Each file: three records, each refused for one field found after parsing.
_NAMED_AS_THE_FILE = {
    Format.QHP: (
        json.dumps([
            _QHP_PROVIDER | {"npi": make_npi(1), "name": {"first": "Ana", "last": "Rivera"},
                             "addresses": [_ELM_ST, _ELM_ST | {"zip": "ABCDE"}]},
            _QHP_PROVIDER | {"npi": make_npi(2), "name": {"first": "Bo"},
                             "addresses": [_ELM_ST]},
            _QHP_PROVIDER | {"npi": make_npi(3), "name": {"first": "Cy", "last": "Ng"},
                             "addresses": [_ELM_ST],
                             "plans": [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "GOLD",
                                        "network_tier": "PREFERRED", "years": [2026]}]},
            # After an entry that is no address; after a plan listed twice (two tiers).
            _QHP_PROVIDER | {"npi": make_npi(4), "name": {"first": "Di", "last": "Ng"},
                             "addresses": ["5 Elm St, Evanston IL", _ELM_ST | {"zip": "6020"}]},
            _QHP_PROVIDER | {"npi": make_npi(5), "name": {"first": "Ed", "last": "Ng"},
                             "addresses": [_ELM_ST],
                             "plans": [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": plan_id,
                                        "network_tier": tier} for plan_id, tier in _TIERS]},
        ]).encode(),
        ["addresses[1].zip", "name.last", "plans[0].plan_id", "addresses[0]", "addresses[1].zip",
         "plans[0].plan_id", "plans[2].plan_id"],
    ),
    Format.FHIR: (
        _json_lines(
            {"resourceType": "Location", "id": "elm", "address": {
                "line": ["5 Elm St"], "city": "Evanston", "state": "IL", "postalCode": "ABCDE"}},
            *[
                resource
                for seed, name in enumerate(_FHIR_NAMES, start=1)
                for resource in (
                    {"resourceType": "Practitioner", "id": f"p{seed}", "name": [name],
                     "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi",
                                     "value": make_npi(seed)}]},
                    {"resourceType": "PractitionerRole", "id": f"r{seed}",
                     "practitioner": {"reference": f"Practitioner/p{seed}"},
                     "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy",
                                                "code": "225100000X"}]}],
                     "location": [{"reference": "Location/elm"}]},
                )
            ],
        ),
        ["Location/elm.address.postalCode", "Practitioner/p2.name.family",
         "Location/elm.address.postalCode"],
    ),
    Format.NPPES: (
        nppes_bytes(
            pt(NPI=make_npi(1)[:9] + str((int(make_npi(1)[9]) + 1) % 10)),
            pt(NPI=make_npi(2), **{"Provider Business Practice Location Address State Name": "XX"}),
            pt(NPI=make_npi(3), **{"Provider Last Name (Legal Name)": ""}),
        ),
        ["NPI", "Provider Business Practice Location Address State Name",
         "Provider Last Name (Legal Name)"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("format", list(_NAMED_AS_THE_FILE))
def test_problems_found_after_parsing_name_the_field_as_the_file_does(
    db: Session, backend: Backend, tmp_path: Path, format: Format
) -> None:
    content, fields = _NAMED_AS_THE_FILE[format]
    payer_id = None if format is Format.NPPES else add_payer(db)
    outcome = import_bytes(
        backend.engine, tmp_path, content, payer_id=payer_id, format=format, dry_run=True,
        on_error=OnError.SKIP,
    )  # fmt: skip
    errors = [issue.field for issue in outcome.issues if issue.level == "error"]
    assert errors == fields, outcome.issues


def test_a_qhp_plan_is_named_once_and_its_line_break_is_a_space(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db)
    plans = json.dumps(
        [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001",
          "marketing_name": "Blue Gold\nPPO"}]
    ).encode()  # fmt: skip
    long_tier = {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001",
                 "network_tier": "T" * 70}  # fmt: skip
    three_sites = _QHP_PROVIDER | {
        "npi": make_npi(1), "name": {"first": "Ana", "last": "Ng"}, "plans": [long_tier],
        "addresses": [_ELM_ST | {"address": f"{number} Elm St"} for number in (5, 7, 9)],
    }  # fmt: skip
    outcome = import_bytes(
        backend.engine, tmp_path, json.dumps([three_sites]).encode(), payer_id=payer_id,
        format=Format.QHP, plans=plans, on_error=OnError.SKIP, mode=Mode.MERGE,
    )  # fmt: skip
    # The tier is checked at each of the three addresses; the file lists it once.
    assert [(issue.field, issue.message) for issue in outcome.issues] == [
        ("plans[0].network_tier", "is longer than 60 characters")
    ]
    assert outcome.error_count == 1
    assert db.scalars(select(Plan.name)).all() == ["Blue Gold PPO"]


def test_a_plan_id_in_lower_case_or_of_a_cost_sharing_variant_is_its_plan_in_every_file(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    """plans.json, the template and providers.json read the ids alike."""
    payer_id = add_payer(db)
    plans = json.dumps(
        [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001-02",
          "marketing_name": "Gold 80"},
         {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001-03",
          "marketing_name": "Gold 80 Silver CSR 73"}]
    ).encode()  # fmt: skip
    declared = import_bytes(
        backend.engine, tmp_path, plans, payer_id=payer_id, format=Format.QHP_PLANS
    )
    assert declared.succeeded, declared.issues
    assert [(issue.field, issue.message) for issue in declared.issues] == [
        (
            "plan_id",
            f"12345IL0010001-0{n} is a cost-sharing variant of plan 12345IL0010001; "
            "read as 12345IL0010001",
        )
        for n in (2, 3)
    ]
    template = roster_csv(
        [
            row(1, "loop", "12345il0010001"),  # the plan declared above, in lower case
            row(2, "loop", "12345IL0010001-03"),  # another of its variants
            row(3, "loop", "54321il0010001", plan_type="marketplace"),  # declared here
            row(4, "loop", "67890il0010001"),  # no payer has it yet: a new Marketplace plan
        ]
    )
    imported = import_bytes(backend.engine, tmp_path, template, payer_id=payer_id, mode=Mode.MERGE)
    assert imported.succeeded, imported.issues
    assert db.execute(select(Plan.name, Plan.hios_plan_id).order_by(Plan.id)).all() == [
        ("Gold 80", "12345IL0010001"),  # its variants' names do not rename it
        ("54321IL0010001", "54321IL0010001"),
        ("67890IL0010001", "67890IL0010001"),
    ]
    assert imported.counts.participations_created == 4
    assert [(issue.field, issue.message) for issue in imported.issues] == [
        (
            "plan",
            "line 3: 12345IL0010001-03 is a cost-sharing variant of plan 12345IL0010001; "
            "read as 12345IL0010001",
        )
    ]


def test_what_the_plans_file_beside_providers_json_says_is_said_to_be_its(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    """Its lines are its own: a line number alone would point into providers.json."""
    plans = json.dumps(
        [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001-02",
          "marketing_name": "Gold 80"}]
    ).encode()  # fmt: skip
    provider = _QHP_PROVIDER | {
        "npi": make_npi(1), "name": {"first": "Ana", "last": "Ng"}, "addresses": [_ELM_ST],
        "plans": [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001"}],
        "gender": "Unknown",
    }  # fmt: skip
    outcome = import_bytes(
        backend.engine, tmp_path, json.dumps([provider]).encode(), payer_id=add_payer(db),
        format=Format.QHP, plans=plans,
    )  # fmt: skip
    assert outcome.succeeded, outcome.issues
    assert [(issue.field, issue.message[:40]) for issue in outcome.issues] == [
        ("plan_id", "in the plans file: 12345IL0010001-02 is "),
        ("gender", "'Unknown' is not Male, Female or Other; "),
    ]


def test_a_provider_naming_a_plan_the_plans_file_could_not_declare_is_told_why(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    """Neither plan is created as a Marketplace plan by the providers that name it."""
    theirs = add_payer(db)
    db.add(Plan(payer_id=theirs, name="Theirs", plan_type="marketplace",
                hios_plan_id="12345IL0010001"))  # fmt: skip
    ours = Payer(name="Lakeshore Health")
    db.add(ours)
    db.commit()
    plans = json.dumps(
        [
            {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001",
             "marketing_name": "Gold 80"},  # another payer's: refused when declared
            {"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010002",
             "marketing_name": {"en": "Silver"}},  # refused by the parser
        ],
        indent=1,
    ).encode()  # fmt: skip
    providers = [
        _QHP_PROVIDER | {
            "npi": make_npi(n), "name": {"first": "Ana", "last": "Ng"}, "addresses": [_ELM_ST],
            "plans": [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": plan_id}],
        }
        for n, plan_id in ((1, "12345IL0010001"), (2, "12345IL0010002"))
    ]  # fmt: skip
    outcome = import_bytes(
        backend.engine, tmp_path, json.dumps(providers).encode(), payer_id=ours.id,
        format=Format.QHP, plans=plans, on_error=OnError.SKIP, mode=Mode.MERGE,
    )  # fmt: skip
    assert outcome.counts.records_imported == 0
    assert [i.message for i in outcome.issues if "is not imported" in i.message] == [
        "plan '12345IL0010001' is not imported: its declaration in the plans file (line 2) "
        "was refused (plan_id: plan 12345IL0010001 belongs to another payer)",
        "plan '12345IL0010002' is not imported: its declaration in the plans file (line 7) "
        "was refused (marketing_name: expected text, found an object)",
    ]
    assert db.scalars(select(Plan.hios_plan_id).where(Plan.payer_id == ours.id)).all() == []


def test_a_list_the_parser_filters_is_named_without_an_index(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    # qualification[0], a board certification, is no credential: the import's
    # credentials[0] is the file's qualification[1]. The name says neither.
    qualifications = [
        {"code": {"coding": [{"system": fhir_helpers.NUCC, "code": "2251X0800X"}]}},
        {"code": {"text": "Physical Therapist License 0123456"}},
    ]
    resources = (
        fhir_helpers.practitioner(qualification=qualifications),
        fhir_helpers.role(extension=(fhir_helpers.network_reference("net"),)),
        fhir_helpers.location(),
        fhir_helpers.network("net"),
    )
    outcome = import_bytes(
        backend.engine, tmp_path, fhir_helpers.as_ndjson(*resources), payer_id=add_payer(db),
        format=Format.FHIR,
    )  # fmt: skip
    assert outcome.succeeded, outcome.issues
    assert [(issue.field, issue.message[:36]) for issue in outcome.issues] == [
        ("Practitioner/pt.qualification", "'Physical Therapist License 0123456'")
    ]


def test_skipped_records_are_all_counted_and_the_first_five_of_each_reason_shown(
    backend: Backend, tmp_path: Path
) -> None:
    occupational = {"Healthcare Provider Taxonomy Code_1": "225X00000X"}
    rows = [pt(NPI=make_npi(seed), **occupational) for seed in range(1, 8)]
    outcome = import_bytes(
        backend.engine, tmp_path, nppes_bytes(*rows, pt(NPI=make_npi(9))), payer_id=None,
        format=Format.NPPES,
    )  # fmt: skip
    assert outcome.succeeded, outcome.message
    assert outcome.skipped == {"no physical-therapy taxonomy": 7}
    examples = outcome.skipped_examples["no physical-therapy taxonomy"]
    assert [(example.line, example.record_index) for example in examples] == [
        (2, 0), (3, 1), (4, 2), (5, 3), (6, 4)
    ]  # fmt: skip


def test_the_national_files_capitals_do_not_undo_a_payers_spelling(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    engine = backend.engine
    last, first = "Provider Last Name (Legal Name)", "Provider First Name"

    def seed(surname: str) -> bytes:
        return nppes_bytes(pt(NPI=make_npi(1), **{last: surname, first: "MARIA"}))

    def name() -> tuple[str, str]:
        found = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
        return found["first_name"], found["last_name"]

    assert import_bytes(
        engine, tmp_path, seed("PEREZ"), payer_id=None, format=Format.NPPES
    ).succeeded
    payer_id = add_payer(db)
    spelled = roster_csv([row(1, "loop", first_name="María", last_name="Pérez")])
    assert import_bytes(engine, tmp_path, spelled, payer_id=payer_id).succeeded
    assert name() == ("María", "Pérez")
    # Next month's national file, the same name in capitals: nothing to change.
    again = import_bytes(engine, tmp_path, seed("PEREZ"), payer_id=None, format=Format.NPPES)
    assert (again.counts.therapists_updated, again.counts.therapists_unchanged) == (0, 1)
    assert name() == ("María", "Pérez")
    # Another name is a change, whoever spells it.
    renamed = import_bytes(engine, tmp_path, seed("SMITH"), payer_id=None, format=Format.NPPES)
    assert renamed.counts.therapists_updated == 1
    assert name() == ("María", "SMITH")
