"""Plan-Net files imported: the plans, practices and names a payer then finds stored."""

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports.formats import Format, fhir
from app.imports.roster import Mode
from app.imports.service import Outcome
from app.locations.models import Location
from app.networks.models import Plan, PlanType
from app.therapists.models import Practice, Therapist
from tests.conftest import Backend
from tests.factories import make_npi
from tests.imports import test_fhir as plannet
from tests.imports.helpers import import_bytes, roster_state

DEE, ANA = make_npi(1), make_npi(2)


def import_plannet(
    backend: Backend,
    tmp_path: Path,
    payer_id: int,
    *resources: dict[str, Any],
    dry_run: bool = False,
    mode: Mode = Mode.REPLACE,
) -> Outcome:
    return import_bytes(
        backend.engine, tmp_path, plannet.as_ndjson(*resources), payer_id=payer_id,
        format=Format.FHIR, dry_run=dry_run, mode=mode,
    )  # fmt: skip


def therapist(id: str, npi: str, **fields: Any) -> dict[str, Any]:
    npi_system = "http://hl7.org/fhir/sid/us-npi"
    return plannet.practitioner(id, identifier=[{"system": npi_system, "value": npi}], **fields)


def street(id: str, line: str) -> dict[str, Any]:
    address = {"line": [line], "city": "Hartford", "state": "CT", "postalCode": "06103"}
    return plannet.location(id, address=address)


def two_plan_product() -> list[dict[str, Any]]:
    """A product with a gold and a silver plan, each with its HIOS id and network, and a
    network of the product's that both include; Dee is only in silver's network."""
    product = plannet.insurance_plan(
        "individual", "net-everyone", name="Acme Individual", type=plannet.QHP,
        plan=[plannet.plan_entry("12345CT0010001", plannet.metal("gold"), "net-gold"),
              plannet.plan_entry("12345CT0020002", plannet.metal("silver"), "net-silver")],
    )  # fmt: skip
    return [
        product,
        *(plannet.network(name) for name in ("net-gold", "net-silver", "net-everyone")),
        therapist("dee", DEE),
        plannet.role("dee-role", "dee", ("elm",), (plannet.network_reference("net-silver"),)),
        street("elm", "5 Elm St"),
        therapist("ana", ANA),
        plannet.role("ana-role", "ana", ("oak",), (plannet.network_reference("net-everyone"),)),
        street("oak", "7 Oak St"),
    ]


def plans_of(db: Session, payer_id: int) -> list[tuple[str, str | None, PlanType]]:
    rows = db.execute(
        select(Plan.name, Plan.hios_plan_id, Plan.plan_type).where(Plan.payer_id == payer_id)
    )
    return sorted(tuple(row) for row in rows)


def test_each_plan_of_a_product_lists_the_therapists_of_its_networks(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    outcome = import_plannet(backend, tmp_path, payer_id, *two_plan_product())
    assert outcome.succeeded, outcome.issues
    assert plans_of(db, payer_id) == [
        ("Acme Individual Gold", "12345CT0010001", PlanType.MARKETPLACE),
        ("Acme Individual Silver", "12345CT0020002", PlanType.MARKETPLACE),
    ]
    assert roster_state(backend.engine, payer_id) == [
        (DEE, "5 Elm St", "Acme Individual Silver", None, None),
        (ANA, "7 Oak St", "Acme Individual Gold", None, None),
        (ANA, "7 Oak St", "Acme Individual Silver", None, None),
    ]


def test_a_product_imported_as_one_plan_before_becomes_its_plans(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    # What earlier imports made of the product: one plan, with its first HIOS id.
    db.add(Plan(payer_id=payer_id, name="Acme Individual", plan_type=PlanType.MARKETPLACE,
                hios_plan_id="12345CT0010001"))  # fmt: skip
    db.commit()
    outcome = import_plannet(backend, tmp_path, payer_id, *two_plan_product())
    assert outcome.succeeded, outcome.issues
    assert (outcome.counts.plans_created, outcome.counts.plans_updated) == (1, 1)
    assert [name for name, _, _ in plans_of(db, payer_id)] == [
        "Acme Individual Gold",
        "Acme Individual Silver",
    ]
    assert (DEE, "5 Elm St", "Acme Individual Silver", None, None) in roster_state(
        backend.engine, payer_id
    )


def test_a_location_contained_in_the_role_is_the_practice_site(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    def contained_at(postal_code: str) -> list[dict[str, Any]]:
        clinic = plannet.location("cloc", name="Contained Clinic", address={
            "line": ["200 Main St"], "city": "New Britain", "state": "CT",
            "postalCode": postal_code})  # fmt: skip
        local = plannet.role(extension=(plannet.network_reference("net"),), contained=[clinic])
        local["location"] = [{"reference": "#cloc"}]
        return [therapist("pt", DEE), local, plannet.network("net")]

    outcome = import_plannet(backend, tmp_path, payer_id, *contained_at("06051"))
    assert outcome.succeeded, outcome.issues
    assert roster_state(backend.engine, payer_id) == [
        (DEE, "200 Main St", "Network net", None, None)
    ]
    assert db.scalars(select(Location.name)).all() == ["Contained Clinic"]
    # Its fields are named where the file has them.
    refused = import_plannet(backend, tmp_path, payer_id, *contained_at("6051"), dry_run=True)
    assert [issue.field for issue in refused.issues if issue.level == "error"] == [
        "PractitionerRole/role.contained[0].address.postalCode"
    ]


def test_the_name_in_use_is_stored_not_an_old_one_listed_first(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    names = [
        {"use": "old", "family": "Maiden", "given": ["Jane"]},
        {"use": "official", "family": "Married", "given": ["Jane", "Q."], "suffix": ["DPT"]},
    ]
    resources = (therapist("pt", DEE, name=names), plannet.role(), street("loc", "5 Elm St"))
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    stored = db.execute(
        select(Therapist.first_name, Therapist.middle_name, Therapist.last_name,
               Therapist.name_suffix).where(Therapist.npi == DEE)
    ).one()  # fmt: skip
    assert tuple(stored) == ("Jane", "Q.", "Married", "DPT")


def test_networks_disagreeing_on_new_patients_are_reported_and_not_promised(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    said = (
        plannet.new_patients("newpt", "net-gold"),
        plannet.new_patients("nopt", "net-silver"),
        plannet.network_reference("net-gold"),
        plannet.network_reference("net-silver"),
    )
    resources = (
        plannet.insurance_plan("gold", "net-gold", name="Acme Gold"),
        plannet.insurance_plan("silver", "net-silver", name="Acme Silver"),
        plannet.network("net-gold"),
        plannet.network("net-silver"),
        therapist("pt", DEE),
        plannet.role(extension=said),
        street("loc", "5 Elm St"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert [(issue.level, issue.field, issue.message) for issue in outcome.issues] == [
        (
            "warning",
            "PractitionerRole/role.extension:newpatients",
            "accepting new patients for Organization/net-gold (Network net-gold), not for "
            "Organization/net-silver (Network net-silver); the directory holds one value per "
            "practice, so the practice at Location/loc is stored as unknown "
            "(one already in the directory keeps its value)",
        )
    ]
    assert db.scalars(select(Practice.accepting_new_patients)).all() == [None]


def test_accepting_patients_given_as_text_alone_is_stored(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    value = {"url": "acceptingPatients", "valueCodeableConcept": {"text": "Accepting New Patients"}}
    extension = {"url": f"{plannet.PLAN_NET}StructureDefinition/newpatients", "extension": [value]}
    resources = (
        therapist("pt", DEE),
        plannet.role(extension=(extension,)),
        street("loc", "5 Elm St"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert db.scalars(select(Practice.accepting_new_patients)).all() == [True]


def practice_streets(db: Session) -> list[tuple[str, str]]:
    """(NPI, address line 1) of each practice stored."""
    rows = db.execute(
        select(Therapist.npi, Location.address_line1)
        .join(Practice, Practice.therapist_id == Therapist.id)
        .join(Location, Location.id == Practice.location_id)
    )
    return sorted(tuple(row) for row in rows)


def test_a_number_out_of_use_is_not_the_sites_number(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    clinic = street("loc", "5 Elm St")
    clinic["telecom"] = [
        {"system": "phone", "value": "860-555-0199", "period": {"end": "2021-12-31"}},
        {"system": "phone", "value": "860-555-0111", "period": {"start": "2022-01-01"}},
        {"system": "fax", "value": "860-555-0112", "use": "old"},
        {"system": "fax", "value": "860-555-0113", "use": "work"},
    ]
    outcome = import_plannet(
        backend, tmp_path, payer_id, therapist("pt", DEE), plannet.role(), clinic
    )
    assert outcome.succeeded, outcome.issues
    stored = db.execute(select(Location.phone, Location.fax)).one()
    assert tuple(stored) == ("8605550111", "8605550113")


def test_a_role_that_has_ended_adds_no_practice(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    ended = {"start": "2020-01-01", "end": "2025-06-30"}
    accepting = (plannet.new_patients("newpt"),)
    resources = (
        therapist("dee", DEE),
        plannet.role("gone", "dee", ("elm",), accepting, period=ended),
        plannet.role("here", "dee", ("oak",), accepting),
        therapist("ana", ANA),
        plannet.role("ana-gone", "ana", ("oak",), accepting, period=ended),
        street("elm", "5 Elm St"),
        street("oak", "7 Oak St"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert practice_streets(db) == [(DEE, "7 Oak St")]
    assert [(issue.level, issue.field, issue.message) for issue in outcome.issues] == [
        ("warning", "PractitionerRole/gone.period.end", "the role ended on 2025-06-30; left out"),
        ("warning", "PractitionerRole/here.extension:network-reference", plannet.NO_NETWORK),
    ]
    assert outcome.skipped == {"no active PractitionerRole": 1}


def test_a_location_outside_the_us_is_no_practice_and_refuses_nothing(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    toronto = plannet.location("toronto", address={
        "line": ["100 King St W"], "city": "Toronto", "state": "ON", "postalCode": "M5X 1A9",
        "country": "CA"})  # fmt: skip
    san_juan = plannet.location("san-juan", address={
        "line": ["100 Calle Fortaleza"], "city": "San Juan", "state": "PR", "postalCode": "00901",
        "country": "PR"})  # fmt: skip
    resources = (
        therapist("dee", DEE),
        plannet.role("dee-role", "dee", ("elm", "toronto", "san-juan")),
        therapist("ana", ANA),
        plannet.role("ana-role", "ana", ("toronto",)),
        street("elm", "5 Elm St"),
        toronto,
        san_juan,
    )
    # The default on_error=reject: a Canadian address once refused the whole roster.
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert practice_streets(db) == [(DEE, "100 Calle Fortaleza"), (DEE, "5 Elm St")]
    assert [(issue.level, issue.field, issue.message) for issue in outcome.issues] == [
        ("warning", "PractitionerRole/dee-role.extension:network-reference", plannet.NO_NETWORK),
        (
            "warning",
            "PractitionerRole/dee-role.location[1]",
            "Location/toronto is outside the US (CA); no practice there",
        ),
    ]
    # Counted as NPPES counts them: the country, in brackets, is left out of the count.
    assert outcome.skipped == {"every Location of its roles is outside the US": 1}


def test_an_expired_qualification_is_not_a_stored_credential(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    def degree(code: str, **fields: Any) -> dict[str, Any]:
        return {"code": {"coding": [{"system": fhir.DEGREE_SYSTEM, "code": code}]}, **fields}

    qualifications = [degree("PT", period={"end": "2019-12-31"}), degree("DPT")]
    resources = (
        therapist("pt", DEE, qualification=qualifications),
        plannet.role(),
        street("loc", "5 Elm St"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert db.scalars(select(Therapist.credentials)).all() == [["DPT"]]


def in_network(role: dict[str, Any]) -> list[dict[str, Any]]:
    """A roster of one therapist, Dee, whose `role` is at 5 Elm St, and Ana, both in the
    payer's Acme Gold, whose network is "net"."""
    return [
        plannet.insurance_plan("gold", "net", name="Acme Gold"),
        plannet.network("net"),
        therapist("dee", DEE),
        role,
        street("elm", "5 Elm St"),
        therapist("ana", ANA),
        plannet.role("ana-role", "ana", ("oak",), (plannet.network_reference("net"),)),
        street("oak", "7 Oak St"),
    ]


ROSTER = [
    (DEE, "5 Elm St", "Acme Gold", None, None),
    (ANA, "7 Oak St", "Acme Gold", None, None),
]


def import_dee_in_the_network(backend: Backend, tmp_path: Path, payer_id: int) -> None:
    """The roster of `in_network`, Dee's role naming the network, imported."""
    linked = (plannet.network_reference("net"),)
    first = import_plannet(
        backend, tmp_path, payer_id, *in_network(plannet.role("dee-role", "dee", ("elm",), linked))
    )
    assert first.succeeded, first.issues


def test_a_role_naming_its_therapist_by_npi_keeps_the_therapist_in_the_network(
    backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    linked = (plannet.network_reference("net"),)
    import_dee_in_the_network(backend, tmp_path, payer_id)
    assert roster_state(backend.engine, payer_id) == ROSTER
    # The same roster again, a payer's export naming Dee by NPI: a logical reference.
    by_npi = plannet.role("dee-role", "dee", ("elm",), linked)
    by_npi["practitioner"] = plannet.by_identifier(fhir.NPI_SYSTEM, DEE)
    again = import_plannet(backend, tmp_path, payer_id, *in_network(by_npi))
    assert again.succeeded, again.issues
    assert (again.counts.participations_ended, again.skipped, again.issues) == (0, {}, [])
    assert roster_state(backend.engine, payer_id) == ROSTER


def test_a_network_named_by_identifier_lists_the_practice_in_its_plan(
    backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    gold = plannet.insurance_plan("gold", name="Acme Gold")
    gold["network"] = [plannet.by_identifier("https://payer.example/networks", "NET-3")]
    resources = (
        gold,
        plannet.identified_network("net", "NET-3"),
        therapist("dee", DEE),
        plannet.role("dee-role", "dee", ("elm",), (plannet.network_by_identifier("NET-3"),)),
        street("elm", "5 Elm St"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert outcome.succeeded, outcome.issues
    assert roster_state(backend.engine, payer_id) == [(DEE, "5 Elm St", "Acme Gold", None, None)]


def test_a_replace_whose_role_names_no_network_says_so(
    backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    import_dee_in_the_network(backend, tmp_path, payer_id)
    # Dee's role now names no network: the roster lists the practice in none of the
    # payer's plans, and the replace ends the participation. Not silently.
    unlinked = import_plannet(
        backend, tmp_path, payer_id, *in_network(plannet.role("dee-role", "dee", ("elm",)))
    )
    assert unlinked.succeeded, unlinked.issues
    assert unlinked.counts.participations_ended == 1
    assert [(issue.level, issue.field, issue.message) for issue in unlinked.issues] == [
        ("warning", "PractitionerRole/dee-role.extension:network-reference", plannet.NO_NETWORK)
    ]


def test_a_bulk_exports_file_of_roles_alone_is_counted_and_told_to_go_in_one_upload(
    backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    linked = (plannet.network_reference("net"),)
    roles = [plannet.role("dee-role", "dee", ("elm",), linked),
             plannet.role("ana-role", "ana", ("oak",), linked)]  # fmt: skip
    # PractitionerRole.ndjson of a $export: each resource type has its own file.
    outcome = import_plannet(backend, tmp_path, payer_id, *roles, mode=Mode.MERGE)
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.records_imported == 0
    assert outcome.skipped == {fhir.ROLE_WITHOUT_PRACTITIONER: 2}
    [first, _] = outcome.skipped_examples[fhir.ROLE_WITHOUT_PRACTITIONER]
    assert (first.line, first.record_index) == (1, 0)
    assert first.reason.endswith(
        "(PractitionerRole/dee-role.practitioner: Practitioner/dee is not in the file)"
    )


def test_a_practitioner_without_an_npi_is_refused_once_saying_why(
    payer_id: int, backend: Backend, tmp_path: Path
) -> None:
    """The parser's reason stands alone: the check that follows does not add "is required"."""
    resources = (
        plannet.practitioner(identifier=[plannet.LICENCE]),
        plannet.role(extension=(plannet.network_reference("net"),)),
        plannet.location(),
        plannet.network("net"),
    )
    outcome = import_plannet(backend, tmp_path, payer_id, *resources)
    assert not outcome.succeeded
    assert [(issue.level, issue.field, issue.message) for issue in outcome.issues] == [
        (
            "error",
            "Practitioner/pt.identifier",
            "no identifier with system http://hl7.org/fhir/sid/us-npi (or typed NPI) was "
            "found; the systems of its identifiers: http://example.org/pt-licence",
        )
    ]
