"""What an import writes: matching, replace and merge, other payers, all-or-nothing."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.imports import reading, roster
from app.imports.formats import Format
from app.imports.roster import Mode
from app.imports.service import OnError
from app.locations.models import GeocodePrecision, Location
from app.networks.models import Payer, Plan
from app.search import projection
from app.search.models import SearchPractice
from app.therapists.models import Practice, Source, Therapist
from tests.conftest import Backend
from tests.factories import make_npi
from tests.imports.helpers import (
    COLUMNS,
    checksum,
    import_bytes,
    roster_csv,
    roster_state,
    row,
)
from tests.imports.test_nppes import nppes_bytes, pt

ROSTER_TABLES = ("therapists", "locations", "practices", "participations", "plans")


def add_payer(db: Session, name: str) -> int:
    payer = Payer(name=name)
    db.add(payer)
    db.commit()
    return payer.id


def first_roster() -> bytes:
    return roster_csv(
        [
            row(1, "lakeview", "Silver PPO", plan_type="commercial"),
            row(1, "lakeview", "Medicare Part B", plan_type="medicare_part_b"),
            row(1, "loop", "Silver PPO", plan_type="commercial"),
            row(2, "evanston", "Silver PPO", plan_type="commercial", first_name="Bo"),
        ]
    )


def searchable(client: TestClient, **params: Any) -> list[str]:
    response = client.get(
        "/v1/search/therapists", params={"lat": 41.92, "lon": -87.65, "radius": 25} | params
    )
    assert response.status_code == 200, response.text
    return sorted(item["npi"] for item in response.json()["items"])


def assert_projection_is_a_rebuild(db: Session) -> None:
    def rows() -> list[tuple[Any, ...]]:
        db.expire_all()
        table = SearchPractice.__table__
        return [tuple(r) for r in db.execute(select(table).order_by(table.c.id))]

    kept = rows()
    projection.refresh(db)
    db.commit()
    assert rows() == kept


def test_a_roster_creates_therapists_sites_and_networks(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    outcome = import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    counts = outcome.counts
    assert (counts.therapists_created, counts.locations_created, counts.practices_created) == (
        2,
        3,
        3,
    )
    assert (counts.participations_created, counts.plans_created) == (4, 2)
    assert roster_state(backend.engine, payer_id) == [
        (make_npi(1), "2300 N Lincoln Ave", "Medicare Part B", "preferred", None),
        (make_npi(1), "2300 N Lincoln Ave", "Silver PPO", "preferred", None),
        (make_npi(1), "55 E Monroe St", "Silver PPO", "preferred", None),
        (make_npi(2), "1603 Orrington Ave", "Silver PPO", "preferred", None),
    ]
    # Evanston came without coordinates: placed at its ZIP centroid, and marked so.
    evanston = db.scalars(select(Location).where(Location.zip == "60201")).one()
    assert evanston.geocode_precision is GeocodePrecision.ZIP_CENTROID
    therapist = db.scalars(select(Therapist).where(Therapist.npi == make_npi(1))).one()
    assert therapist.source is Source.IMPORT
    medicare = db.scalars(select(Plan).where(Plan.name == "Medicare Part B")).one()
    assert searchable(client, plan_id=medicare.id) == [make_npi(1)]
    assert searchable(client, specialty="neurology") == [make_npi(1), make_npi(2)]
    assert_projection_is_a_rebuild(db)


def test_replace_ends_what_the_file_no_longer_lists(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    second = roster_csv(
        [
            row(1, "lakeview", "Silver PPO", plan_type="commercial"),
            row(1, "loop", "Silver PPO", plan_type="commercial", network_tier="standard"),
        ]
    )
    outcome = import_bytes(backend.engine, tmp_path, second, payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    counts = outcome.counts
    assert (counts.participations_unchanged, counts.participations_updated) == (1, 1)
    assert counts.participations_ended == 2
    yesterday = utcnow().date() - timedelta(days=1)
    assert roster_state(backend.engine, payer_id) == [
        (make_npi(1), "2300 N Lincoln Ave", "Medicare Part B", "preferred", yesterday),
        (make_npi(1), "2300 N Lincoln Ave", "Silver PPO", "preferred", None),
        (make_npi(1), "55 E Monroe St", "Silver PPO", "standard", None),
        (make_npi(2), "1603 Orrington Ave", "Silver PPO", "preferred", yesterday),
    ]
    medicare = db.scalars(select(Plan).where(Plan.name == "Medicare Part B")).one()
    silver = db.scalars(select(Plan).where(Plan.name == "Silver PPO")).one()
    assert searchable(client, plan_id=medicare.id) == []
    assert searchable(client, plan_id=silver.id) == [make_npi(1)]
    # Ended is not deleted: therapist 2 and the Evanston site are still in the directory.
    assert searchable(client) == [make_npi(1), make_npi(2)]
    assert_projection_is_a_rebuild(db)


def test_replace_ends_what_it_did_not_list_even_if_stamped_at_its_own_moment(
    db: Session, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replace knows the participations it created by their created_at; one it did
    not list must still end when it carries that same moment (two imports within a
    clock tick, or another host's clock)."""
    moment = utcnow()
    monkeypatch.setattr(roster, "utcnow", lambda: moment)
    payer_id = add_payer(db, "Lakeshore Health")
    assert import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id).succeeded
    second = roster_csv(
        [
            row(1, "lakeview", "Silver PPO", plan_type="commercial"),
            row(3, "loop", "Silver PPO", plan_type="commercial"),
        ]
    )
    outcome = import_bytes(backend.engine, tmp_path, second, payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.participations_created == 1
    assert outcome.counts.participations_ended == 3
    yesterday = moment.date() - timedelta(days=1)
    assert [(npi, ends) for npi, _, _, _, ends in roster_state(backend.engine, payer_id)] == [
        (make_npi(1), yesterday),
        (make_npi(1), None),
        (make_npi(1), yesterday),
        (make_npi(2), yesterday),
        (make_npi(3), None),
    ]


def test_a_listing_that_comes_back_is_reopened(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    import_bytes(
        backend.engine, tmp_path, roster_csv([row(1, "loop", "Silver PPO")]), payer_id=payer_id
    )
    outcome = import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    assert outcome.counts.participations_updated == 3
    assert all(ends is None for *_, ends in roster_state(backend.engine, payer_id))


def test_merge_adds_and_updates_but_never_ends(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    before = roster_state(backend.engine, payer_id)
    extra = roster_csv([row(3, "loop", "Silver PPO", first_name="Cy")])
    outcome = import_bytes(backend.engine, tmp_path, extra, payer_id=payer_id, mode=Mode.MERGE)
    assert outcome.counts.participations_ended == 0
    after = roster_state(backend.engine, payer_id)
    assert after == sorted(
        [*before, (make_npi(3), "55 E Monroe St", "Silver PPO", "preferred", None)]
    )


def test_one_payers_import_never_touches_another_payers_networks(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    ours, theirs = add_payer(db, "Lakeshore Health"), add_payer(db, "Prairie Mutual")
    shared = roster_csv(
        [
            row(1, "lakeview", "Prairie Gold", plan_type="commercial"),
            row(2, "evanston", "Prairie Gold", plan_type="commercial"),
        ]
    )
    import_bytes(backend.engine, tmp_path, shared, payer_id=theirs)
    their_roster = roster_state(backend.engine, theirs)
    their_sum = checksum(backend.engine, "participations")
    # Our file lists the same therapist at the same site, in our plan only; and the
    # other payer's plan name, which for us is just an unknown plan.
    outcome = import_bytes(
        backend.engine,
        tmp_path,
        roster_csv([row(1, "lakeview", "Silver PPO", plan_type="commercial")]),
        payer_id=ours,
    )
    assert outcome.succeeded, outcome.issues
    hostile = import_bytes(
        backend.engine, tmp_path, roster_csv([row(1, "lakeview", "Prairie Gold")]), payer_id=ours
    )
    assert not hostile.succeeded
    assert [(i.field, i.message[:25]) for i in hostile.issues] == [
        ("plan", "line 2: unknown plan 'Pra")  # the row naming it
    ]
    # Replacing ours with an empty roster ends only ours.
    import_bytes(backend.engine, tmp_path, roster_csv([row(5, "loop")]), payer_id=ours)
    assert roster_state(backend.engine, theirs) == their_roster
    with Session(backend.engine) as session:
        their_plan_ids = session.scalars(select(Plan.id).where(Plan.payer_id == theirs)).all()
    assert checksum(backend.engine, "participations") != their_sum  # ours changed …
    assert roster_state(backend.engine, theirs) == their_roster  # … theirs did not
    assert len(their_plan_ids) == 1


def test_a_hios_plan_id_of_another_payer_is_refused(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    ours, theirs = add_payer(db, "Lakeshore Health"), add_payer(db, "Prairie Mutual")
    db.add(
        Plan(
            payer_id=theirs,
            name="Prairie Silver",
            plan_type="marketplace",
            hios_plan_id="12345IL0010001",
        )
    )
    db.commit()
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv([row(1, "loop", "12345IL0010001")]), payer_id=ours
    )
    assert not outcome.succeeded
    assert outcome.issues[0].message == "line 2: plan 12345IL0010001 belongs to another payer"
    # A HIOS id nobody holds becomes a marketplace plan of the importing payer.
    fresh = import_bytes(
        backend.engine, tmp_path, roster_csv([row(1, "loop", "12345IL0010002")]), payer_id=ours
    )
    assert fresh.succeeded
    assert fresh.counts.plans_created == 1
    plan = db.scalars(select(Plan).where(Plan.hios_plan_id == "12345IL0010002")).one()
    assert (plan.payer_id, plan.plan_type) == (ours, "marketplace")


def test_a_plan_a_template_row_cannot_declare_refuses_its_therapist_counted_once(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    ours, theirs = add_payer(db, "Lakeshore Health"), add_payer(db, "Prairie Mutual")
    db.add(
        Plan(payer_id=theirs, name="Prairie Silver", plan_type="marketplace",
             hios_plan_id="12345IL0010001")
    )  # fmt: skip
    db.commit()
    rows = [
        row(1, "loop", "Silver PPO", plan_type="commercial"),
        row(2, "loop", "12345IL0010001", plan_type="marketplace"),  # declared on line 3
        row(3, "lakeview"),
    ]
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv(rows), payer_id=ours, on_error=OnError.SKIP
    )
    assert outcome.succeeded, outcome.message
    assert (outcome.counts.records_imported, outcome.counts.records_invalid) == (2, 1)
    assert outcome.message == "2 record(s) imported; 1 refused"
    # Both problems point at therapist 2's record (index 1) and its row.
    assert {(issue.line, issue.record_index) for issue in outcome.issues} == {(3, 1)}


def test_a_row_naming_a_plan_whose_declaration_was_refused_says_so(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    ours = add_payer(db, "Lakeshore Health")
    rows = [
        row(1, "loop", "Silver PPO", plan_type="bogus"),
        row(2, "loop", "12345IL0010009", plan_type="bogus"),
        row(3, "lakeview", "Gold PPO", plan_type="commercial"),
    ]
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv(rows), payer_id=ours, on_error=OnError.SKIP
    )
    assert outcome.succeeded, outcome.message
    assert (outcome.counts.records_imported, outcome.counts.records_invalid) == (1, 2)
    refused = "is not imported: its declaration was refused (plan_type: must be one of"
    assert sorted((i.line, i.field, i.message[:60]) for i in outcome.issues) == [
        (2, "plan", f"line 2: plan 'Silver PPO' {refused}"[:60]),
        (2, "plan_type", "must be one of medicare_part_b, medicare_advantage, medicaid"),
        (3, "plan", f"line 3: plan '12345IL0010009' {refused}"[:60]),
        (3, "plan_type", "must be one of medicare_part_b, medicare_advantage, medicaid"),
    ]
    # A HIOS id whose declaration was refused is not taken as a new marketplace plan.
    names = db.scalars(select(Plan.name).where(Plan.payer_id == ours)).all()
    assert names == ["Gold PPO"]


def test_imports_never_delete_records_others_use(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    """The national seed (no payer) and a payer share a therapist and a site."""
    seed = roster_csv([row(1, "lakeview"), row(2, "loop")])
    assert import_bytes(backend.engine, tmp_path, seed, payer_id=None).succeeded
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    import_bytes(backend.engine, tmp_path, roster_csv([row(9, "evanston")]), payer_id=payer_id)
    assert db.scalar(select(func.count()).select_from(Therapist)) == 3
    assert db.scalar(select(func.count()).select_from(Location)) == 3
    assert db.scalar(select(func.count()).select_from(Practice)) == 5


def test_the_same_file_twice_changes_nothing_the_second_time(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    before = checksum(backend.engine, *ROSTER_TABLES, "search_practices")
    again = import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id)
    assert again.succeeded
    counts = again.counts
    assert (counts.therapists_unchanged, counts.locations_unchanged) == (2, 3)
    assert counts.participations_unchanged == 4
    created = counts.therapists_created + counts.locations_created + counts.participations_created
    changed = counts.therapists_updated + counts.locations_updated + counts.participations_updated
    assert (created, changed, counts.participations_ended) == (0, 0, 0)
    assert checksum(backend.engine, *ROSTER_TABLES, "search_practices") == before


def test_one_invalid_record_rejects_the_whole_file_by_default(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    bad_npi = make_npi(2)[:9] + str((int(make_npi(2)[9]) + 1) % 10)
    rows = [
        row(1, "lakeview", "Silver PPO", plan_type="commercial"),
        row(2, "loop", "Silver PPO", npi=bad_npi),
        row(3, "loop", "Silver PPO", state="XX", zip="6060"),
    ]
    outcome = import_bytes(backend.engine, tmp_path, roster_csv(rows), payer_id=payer_id)
    assert not outcome.succeeded
    assert "nothing was written" in outcome.message
    assert [(i.line, i.field) for i in outcome.issues] == [
        (3, "npi"),
        (4, "state"),
        (4, "zip"),
    ]
    assert "check digit" in outcome.issues[0].message
    assert db.scalar(select(func.count()).select_from(Therapist)) == 0
    assert db.scalar(select(func.count()).select_from(Plan)) == 0

    skipping = import_bytes(
        backend.engine, tmp_path, roster_csv(rows), payer_id=payer_id, on_error=OnError.SKIP
    )
    assert skipping.succeeded
    assert (skipping.counts.records_imported, skipping.counts.records_invalid) == (1, 2)
    assert db.scalars(select(Therapist.npi)).all() == [make_npi(1)]


def test_a_dry_run_counts_everything_and_writes_nothing(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    before = checksum(backend.engine, *ROSTER_TABLES, "search_practices")
    outcome = import_bytes(
        backend.engine, tmp_path, first_roster(), payer_id=payer_id, dry_run=True
    )
    assert outcome.succeeded
    assert not outcome.committed
    assert (outcome.counts.therapists_created, outcome.counts.participations_created) == (2, 4)
    assert checksum(backend.engine, *ROSTER_TABLES, "search_practices") == before


def test_an_existing_therapist_keeps_what_the_file_leaves_out(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    import_bytes(
        backend.engine,
        tmp_path,
        roster_csv([row(1, "lakeview", specialties="neurology;geriatrics", languages="pl")]),
        payer_id=None,
    )
    later = roster_csv(
        [
            row(
                1,
                "lakeview",
                "Silver PPO",
                plan_type="commercial",
                first_name="Anna",
                specialties="orthopedic",
            )
        ]
    )
    outcome = import_bytes(backend.engine, tmp_path, later, payer_id=payer_id)
    assert outcome.counts.therapists_updated == 1
    response = client.get("/v1/therapists", params={"npi": make_npi(1)})
    therapist = response.json()["items"][0]
    assert therapist["first_name"] == "Anna"
    assert [(s["code"], s["primary"]) for s in therapist["specialties"]] == [
        ("2251N0400X", True),
        ("2251G0304X", False),
        ("2251X0800X", False),
    ]
    assert sorted(lang["code"] for lang in therapist["languages"]) == ["en", "es", "pl"]
    assert searchable(client, q="anna") == [make_npi(1)]


def test_template_specialties_may_be_the_names_the_api_lists(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    listed = {s["code"]: s["display_name"] for s in client.get("/v1/specialties").json()}
    names = f"{listed['2251N0400X']}; {listed['225100000X']}"
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv([row(1, "lakeview", specialties=names)]),
        payer_id=None,
    )  # fmt: skip
    assert outcome.succeeded, outcome.issues
    therapist = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
    assert [(s["code"], s["primary"]) for s in therapist["specialties"]] == [
        ("2251N0400X", True),
        ("225100000X", False),
    ]
    unknown = import_bytes(
        backend.engine, tmp_path, roster_csv([row(2, "loop", specialties="Occupational Therapy")]),
        payer_id=None,
    )  # fmt: skip
    assert [(i.field, i.message) for i in unknown.issues] == [
        ("specialties", "'Occupational Therapy': unknown specialty; see /v1/specialties")
    ]


def test_template_languages_may_be_names(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    content = roster_csv([row(1, "lakeview", languages="English; Español | pl")])
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert outcome.succeeded, outcome.issues
    therapist = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
    assert sorted(lang["code"] for lang in therapist["languages"]) == ["en", "es", "pl"]
    unknown = roster_csv([row(2, "loop", languages="Klingon")])
    refused = import_bytes(backend.engine, tmp_path, unknown, payer_id=None)
    assert [(i.field, i.message) for i in refused.issues] == [
        ("languages", "unknown language 'Klingon'; see /v1/languages")
    ]


@pytest.mark.parametrize("written", ["(312) 555-0147 ext. 12", "312-555-0147 x12"])
def test_a_phone_extension_is_left_out_and_the_number_kept(
    client: TestClient, backend: Backend, tmp_path: Path, written: str
) -> None:
    content = roster_csv([row(1, "lakeview", phone=written)])
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert outcome.succeeded, outcome.issues
    assert [(i.level, i.field, i.message) for i in outcome.issues] == [
        ("warning", "phone", "line 2: extension '12' left out (the directory keeps the 10 digits)")
    ]
    therapist = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
    assert therapist["practices"][0]["location"]["phone"] == "3125550147"


def test_the_longest_names_and_addresses_a_file_may_give_are_stored(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    """Every field at its limit: the keys derived from them fit their columns too
    (a ligature decomposes into two letters; two 200-character lines and a city)."""
    longest = {
        "first_name": "ﬀ" * 100,
        "last_name": "Ø" * 100,
        "location_name": "N" * 200,
        "address_line1": "1" + " Lincoln Avenue" * 13 + "x" * 4,
        "address_line2": "#1" * 100,
        "city": "C" * 100,
    }
    content = roster_csv([row(1, "lakeview", **longest), row(2, "lakeview", **longest)])
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert outcome.succeeded, (outcome.message, outcome.issues)
    assert outcome.counts.locations_created == 1  # both rows name the one site
    again = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert (again.counts.locations_unchanged, again.counts.therapists_unchanged) == (1, 2)
    therapist = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
    assert therapist["first_name"] == "ﬀ" * 100
    assert therapist["practices"][0]["location"]["address_line2"] == "#1" * 100


def test_coordinates_far_from_their_address_are_not_taken(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    """Swapped columns are put back; another place's coordinates give way to the ZIP's."""
    content = roster_csv(
        [
            row(1, "lakeview", latitude="-87.6468", longitude="41.9245"),  # swapped
            row(2, "loop", latitude="34.0522", longitude="-118.2437"),  # Los Angeles
            row(3, "evanston", latitude="42.0500", longitude="-87.6800"),  # in Evanston
        ]
    )
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert outcome.succeeded, outcome.issues
    assert [(i.level, i.field, i.message) for i in outcome.issues] == [
        (
            "warning",
            "latitude",
            "line 2: latitude -87.6468 and longitude 41.9245 are swapped: "
            "taken the other way round, which is at the address",
        ),
        (
            "warning",
            "latitude",
            "line 3: (34.0522, -118.2437) is 2,804 km from ZIP 60603; not taken: a new "
            "site is placed at the centre of the ZIP, one already in the directory keeps "
            "its position",
        ),
    ]

    def placed(seed: int) -> tuple[float, float, str]:
        found = client.get("/v1/therapists", params={"npi": make_npi(seed)}).json()["items"][0]
        site = found["practices"][0]["location"]
        return site["latitude"], site["longitude"], site["geocode_precision"]

    assert placed(1) == (41.9245, -87.6468, "provided")
    zip_centre = placed(2)
    assert zip_centre[2] == "zip_centroid"
    assert abs(zip_centre[0] - 41.88) < 0.05
    assert abs(zip_centre[1] + 87.63) < 0.05
    assert placed(3) == (42.05, -87.68, "provided")
    near_the_loop = client.get("/v1/search/therapists", params={"zip": "60603", "radius": 5})
    assert {item["npi"] for item in near_the_loop.json()["items"]} == {
        make_npi(1),
        make_npi(2),
    }


def test_flags_no_file_states_are_unknown_until_one_does(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    """The national file says nothing of new patients or telehealth: neither is false."""
    seeded = import_bytes(
        backend.engine, tmp_path, nppes_bytes(pt(NPI=make_npi(1))), payer_id=None,
        format=Format.NPPES,
    )  # fmt: skip
    assert seeded.succeeded, seeded.issues

    def flags() -> tuple[bool | None, bool | None]:
        found = client.get("/v1/therapists", params={"npi": make_npi(1)}).json()["items"][0]
        practice = found["practices"][0]
        return practice["accepting_new_patients"], practice["telehealth"]

    def found_when(**filters: str) -> int:
        params = {"zip": "06106", "radius": "5"} | filters
        return int(client.get("/v1/search/therapists", params=params).json()["total"])

    assert flags() == (None, None)
    assert (found_when(), found_when(accepting_new_patients="true")) == (1, 0)
    assert (found_when(accepting_new_patients="false"), found_when(telehealth="false")) == (0, 0)
    menu = client.get(
        "/v1/search/therapists",
        params={"zip": "06106", "radius": "5", "facets": "accepting_new_patients"},
    ).json()["facets"]["accepting_new_patients"]
    assert sum(entry["count"] for entry in menu) == 0

    hartford = {
        "address_line1": "100 Main St", "address_line2": "Suite 2", "city": "Hartford",
        "state": "CT", "zip": "06106", "latitude": "", "longitude": "",
    }  # fmt: skip
    stated = row(1, "loop", accepting_new_patients="yes", telehealth="", **hartford)
    assert import_bytes(backend.engine, tmp_path, roster_csv([stated]), payer_id=None).succeeded
    assert flags() == (True, None)
    assert found_when(accepting_new_patients="true") == 1
    silent = stated | {"accepting_new_patients": ""}
    assert import_bytes(backend.engine, tmp_path, roster_csv([silent]), payer_id=None).succeeded
    assert flags() == (True, None)  # saying nothing changes nothing


def test_the_national_file_does_not_undo_what_payers_say_of_their_sites(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    """A monthly reload fills gaps at a site a network lists; a site none lists (any
    more) follows it."""
    payer_id = add_payer(db, "Lakeshore Health")
    hartford = {
        "address_line1": "100 Main St", "address_line2": "Suite 2", "city": "Hartford",
        "state": "CT", "zip": "06106", "latitude": "", "longitude": "",
    }  # fmt: skip
    listed = row(1, "loop", "Silver PPO", plan_type="commercial", phone="860-555-0100",
                 **hartford)  # fmt: skip
    # A site the payer's network listed until 2020: no network lists it now.
    elm = hartford | {"address_line1": "9 Elm St", "address_line2": ""}
    ended = row(2, "loop", "Silver PPO", phone="860-555-0200", effective_from="2019-01-01",
                effective_to="2020-12-31", **elm)  # fmt: skip
    rows = roster_csv([listed, ended])
    assert import_bytes(backend.engine, tmp_path, rows, payer_id=payer_id).succeeded
    national = nppes_bytes(
        pt(NPI=make_npi(1)),  # the payer's site: phone 8605550147, fax 8605550148
        pt(NPI=make_npi(2), **{"Provider First Line Business Practice Location Address": "9 Elm St",
                               "Provider Second Line Business Practice Location Address": ""}),
    )  # fmt: skip
    assert import_bytes(
        backend.engine, tmp_path, national, payer_id=None, format=Format.NPPES
    ).succeeded
    reload = nppes_bytes(
        pt(NPI=make_npi(1), **{"Provider Business Practice Location Address Telephone Number":
                               "8605559999"}),
        pt(NPI=make_npi(2), **{"Provider First Line Business Practice Location Address": "9 Elm St",
                               "Provider Second Line Business Practice Location Address": "",
                               "Provider Business Practice Location Address Telephone Number":
                               "8605558888"}),
    )  # fmt: skip
    assert import_bytes(
        backend.engine, tmp_path, reload, payer_id=None, format=Format.NPPES
    ).succeeded

    def site(seed: int) -> dict[str, Any]:
        found = client.get("/v1/therapists", params={"npi": make_npi(seed)}).json()["items"][0]
        return dict(found["practices"][0]["location"])

    assert (site(1)["phone"], site(1)["fax"]) == ("8605550100", "8605550148")  # the gap filled
    assert site(2)["phone"] == "8605558888"


def test_a_file_that_cannot_be_read_writes_nothing(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    content = first_roster() + b"\xff\xfe broken\n"
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=payer_id)
    assert not outcome.succeeded
    assert "UTF-8" in outcome.message
    assert db.scalar(select(func.count()).select_from(Therapist)) == 0


def test_nppes_rows_seed_the_national_directory(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    sample = Path(__file__).parents[1] / "fixtures" / "nppes" / "nppes_sample_practitioners.csv"
    outcome = import_bytes(
        backend.engine, tmp_path, sample.read_bytes(), payer_id=None, format=Format.NPPES
    )
    assert outcome.succeeded, outcome.issues[:5]
    # 45 rows carry a PT taxonomy (2251*, 225200000X) by an independent count of the
    # sample; the rest are other professions.
    assert (outcome.counts.records_imported, outcome.counts.records_invalid) == (45, 0)
    assert outcome.counts.records_skipped == 1955
    sources = set(db.scalars(select(Therapist.source)).all())
    assert sources == {Source.NPPES}
    assert (
        db.scalar(select(func.count()).select_from(Therapist)) == outcome.counts.therapists_created
    )
    assert_projection_is_a_rebuild(db)


def test_credentials_too_long_or_too_many_are_left_out_with_a_warning(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    written = ["PT", "Physical Therapist License", "DPT", *"ABCDEFGHI"]  # 12, one too long
    rows = [row(1, "loop", "Silver PPO", plan_type="commercial", credentials="; ".join(written))]
    content = roster_csv(rows, columns=(*COLUMNS, "credentials"))
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.therapists_created == 1
    assert [(i.level, i.field) for i in outcome.issues] == [
        ("warning", "credentials"),  # one cell of the template
        ("warning", "credentials"),
    ]
    assert "longer than 20 characters" in outcome.issues[0].message
    assert "more than 10" in outcome.issues[1].message
    db.expire_all()
    assert db.scalars(select(Therapist.credentials)).one() == ["PT", "DPT", *"ABCDEFGH"]


# Ordinary uploads from which no therapist comes: a payer's QHP file of facilities,
# and a roster whose every row is refused (imported with on_error=skip).
_FACILITIES = json.dumps(
    [
        {
            "npi": make_npi(90),
            "type": "FACILITY",
            "facility_name": "Lakeshore Rehab Hospital",
            "facility_type": ["Hospital"],
            "addresses": [{"address": "55 E Monroe St", "city": "Chicago", "state": "IL",
                           "zip": "60603", "phone": "3125550147"}],
            "plans": [{"plan_id_type": "HIOS-PLAN-ID", "plan_id": "12345IL0010001",
                       "network_tier": "PREFERRED", "years": [2026]}],
            "last_updated_on": "2026-10-01",
        }
    ]
).encode()  # fmt: skip
_ALL_REFUSED = roster_csv([row(1, "lakeview", "Silver PPO", zip="6061")])


@pytest.mark.parametrize(
    ("content", "format", "skipped"),
    [(_FACILITIES, Format.QHP, 1), (_ALL_REFUSED, Format.CSV, 0)],
    ids=["facilities only", "every record refused"],
)
def test_a_replace_from_which_no_therapist_was_imported_ends_nothing(
    client: TestClient,
    db: Session,
    backend: Backend,
    tmp_path: Path,
    content: bytes,
    format: Format,
    skipped: int,
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    assert import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id).succeeded
    before = checksum(backend.engine, *ROSTER_TABLES)
    outcome = import_bytes(
        backend.engine, tmp_path, content, payer_id=payer_id, format=format, on_error=OnError.SKIP
    )
    assert not outcome.succeeded
    assert outcome.message.startswith("no therapist was imported from the file")
    counts = outcome.counts
    assert (counts.records_imported, counts.records_skipped) == (0, skipped)
    assert counts.participations_ended == 0  # the job reports no ending it did not do
    assert checksum(backend.engine, *ROSTER_TABLES) == before
    assert searchable(client, payer_id=payer_id) == [make_npi(1), make_npi(2)]
    # Merging such a file changes nothing either, and is no mistake.
    merged = import_bytes(
        backend.engine, tmp_path, content, payer_id=payer_id, format=format,
        on_error=OnError.SKIP, mode=Mode.MERGE,
    )  # fmt: skip
    assert merged.succeeded, merged.message
    assert checksum(backend.engine, *ROSTER_TABLES) == before


def test_a_plans_file_alone_declares_plans_and_ends_no_participation(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    assert import_bytes(backend.engine, tmp_path, first_roster(), payer_id=payer_id).succeeded
    before = roster_state(backend.engine, payer_id)
    plans = (Path(__file__).parent.parent / "fixtures" / "qhp" / "plans.json").read_bytes()
    outcome = import_bytes(
        backend.engine, tmp_path, plans, payer_id=payer_id, format=Format.QHP_PLANS
    )
    assert outcome.succeeded, outcome.message
    assert (outcome.counts.plans_created, outcome.counts.participations_ended) == (3, 0)
    assert roster_state(backend.engine, payer_id) == before


@pytest.mark.parametrize("reader", ["here", "child process"])
def test_a_replace_leaves_a_refused_therapists_participations_as_they_were(
    client: TestClient,
    db: Session,
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reader: str,
) -> None:
    if reader == "child process":
        monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", 0)
    payer_id = add_payer(db, "Lakeshore Health")
    first = [
        row(1, "loop", "Silver PPO", plan_type="commercial"),
        row(2, "lakeview", "Silver PPO"),
        row(3, "evanston", "Silver PPO"),
    ]
    assert import_bytes(backend.engine, tmp_path, roster_csv(first), payer_id=payer_id).succeeded
    # Therapist 2 again with a mistyped ZIP, therapist 3 no longer listed.
    second = [row(1, "loop", "Silver PPO"), row(2, "lakeview", "Silver PPO", zip="6061")]
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv(second), payer_id=payer_id, on_error=OnError.SKIP
    )
    assert outcome.succeeded, outcome.issues
    assert (outcome.counts.records_invalid, outcome.counts.participations_ended) == (1, 1)
    ends = {npi: ends for npi, _, _, _, ends in roster_state(backend.engine, payer_id)}
    yesterday = utcnow().date() - timedelta(days=1)
    assert ends == {make_npi(1): None, make_npi(2): None, make_npi(3): yesterday}


def test_an_unknown_zip_is_placed_at_its_city_and_an_unknown_city_too_is_refused(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    # 60299 is no ZIP the offline table knows (a new ZIP, or a typo); Evanston is.
    new_zip = row(1, "evanston", "Silver PPO", plan_type="commercial", zip="60299")
    military = row(2, "evanston", "Silver PPO", plan_type="commercial", zip="09001",
                   city="APO", state="AE", address_line1="Unit 3050 Box 100")  # fmt: skip
    content = roster_csv([new_zip, military])
    outcome = import_bytes(
        backend.engine, tmp_path, content, payer_id=payer_id, on_error=OnError.SKIP
    )
    assert outcome.succeeded, outcome.issues
    assert (outcome.counts.records_imported, outcome.counts.records_invalid) == (1, 1)
    issues = [(i.level, i.line, i.field) for i in outcome.issues]
    assert issues == [("warning", 2, "zip"), ("error", 3, "zip")]
    placed = "line 2: unknown ZIP code 60299; placed at the centre of the city"
    assert outcome.issues[0].message == placed
    assert outcome.issues[1].message.startswith("line 3: unknown ZIP code and city")
    location = db.scalars(select(Location)).one()
    evanston = (42.0471, -87.6921)  # the mean of Evanston's six ZIP centroids
    assert (round(location.latitude, 4), round(location.longitude, 4)) == evanston
    assert location.geocode_precision is GeocodePrecision.CITY_CENTROID
    assert searchable(client, lat=evanston[0], lon=evanston[1], radius=2) == [make_npi(1)]


def test_a_line_break_in_a_cell_is_a_space_and_other_control_characters_refuse(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    broken = row(
        1,
        "lakeview",
        "Silver PPO",
        plan_type="commercial",
        address_line2="Suite 200\r\n\tRear entrance",
        location_name="Lakeview\nNeuro",
    )
    refused = [
        row(2, "loop", "Silver PPO", plan_type="commercial", last_name="Ng\x07"),
        row(3, "loop", "Silver PPO", plan_type="commercial", last_name="Kim\x0cLee"),
        row(4, "loop", "Silver PPO", plan_type="commercial", address_line1="1 W Main\x1fSt"),
        row(5, "loop", "Silver PPO", plan_type="commercial", network_tier="pref\x01erred"),
        row(6, "loop", "Bad\x02Plan", plan_type="commercial"),
    ]
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv([broken, *refused]), payer_id=payer_id,
        on_error=OnError.SKIP,
    )  # fmt: skip
    assert outcome.succeeded, outcome.issues
    # The first row spans lines 2 to 4: the others start on lines 5 to 9.
    assert [(i.level, i.line, i.field) for i in outcome.issues] == [
        ("error", 5, "last_name"),
        ("error", 6, "last_name"),
        ("error", 7, "address_line1"),
        ("error", 8, "network_tier"),
        ("error", 9, "plan"),  # declaring the plan
        ("error", 9, "plan"),  # the row that names it
    ]
    assert all("control characters" in issue.message for issue in outcome.issues[:-1])
    assert outcome.counts.records_imported == 1
    location = db.scalars(select(Location)).one()
    assert (location.address_line2, location.name) == ("Suite 200 Rear entrance", "Lakeview Neuro")


def test_a_problem_in_a_therapists_later_row_names_that_rows_line(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db, "Lakeshore Health")
    rows = [
        row(1, "loop", "Silver PPO", plan_type="commercial"),  # line 2
        row(1, "loop", "Mystery Plan"),  # line 3: no such plan
        row(2, "evanston", "Silver PPO", location_name=""),  # line 4
        row(2, "evanston", "Silver PPO", location_name=""),  # line 5
        row(2, "evanston", "Silver PPO", location_name="Clinic\x07One"),  # line 6 alone
    ]
    outcome = import_bytes(
        backend.engine, tmp_path, roster_csv(rows), payer_id=payer_id, on_error=OnError.SKIP
    )
    assert [(i.line, i.field, i.message[:27]) for i in outcome.issues] == [
        (2, "plan", "line 3: unknown plan 'Myste"),  # the record starts on line 2
        (4, "location_name", "line 6: must not contain co"),
    ]
