"""The national file withdraws NPIs: the seed's therapists go, payers' stay with a warning."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports.formats import Format
from app.locations.models import Location
from app.networks.models import Payer
from tests.conftest import Backend
from tests.factories import make_npi
from tests.imports.helpers import checksum, import_bytes, roster_csv, row
from tests.imports.test_nppes import nppes_bytes, pt

TABLES = ("therapists", "locations", "practices", "participations", "search_practices")
_LINE1 = "Provider First Line Business Practice Location Address"
_OCCUPATIONAL = {"Healthcare Provider Taxonomy Code_1": "225X00000X"}
_HARTFORD = {"address_line1": "300 MAIN ST", "address_line2": "", "city": "Hartford",
             "state": "CT", "zip": "06106", "latitude": "", "longitude": ""}  # fmt: skip


def seeded(seed: int) -> dict[str, str]:
    """A physical therapist as the national file lists one, at an address of their own."""
    return pt(NPI=make_npi(seed), **{_LINE1: f"{seed}00 MAIN ST"})


def deactivated(seed: int) -> dict[str, str]:
    # NPPES blanks every other column of a deactivated NPI.
    return {"NPI": make_npi(seed), "NPI Deactivation Date": "10/01/2026"}


def npis_found(client: TestClient, *seeds: int) -> list[str]:
    found = []
    for seed in seeds:
        items = client.get("/v1/therapists", params={"npi": make_npi(seed)}).json()["items"]
        found += [item["npi"] for item in items]
    return found


def near_hartford(client: TestClient) -> list[str]:
    response = client.get("/v1/search/therapists", params={"zip": "06106", "radius": 10})
    assert response.status_code == 200, response.text
    return sorted(item["npi"] for item in response.json()["items"])


def test_a_withdrawn_npi_removes_the_seeds_therapist_not_one_a_payer_lists(
    client: TestClient, db: Session, backend: Backend, tmp_path: Path
) -> None:
    engine = backend.engine
    month1 = nppes_bytes(seeded(1), seeded(2), seeded(3), seeded(4))
    assert import_bytes(engine, tmp_path, month1, payer_id=None, format=Format.NPPES).succeeded
    payer = Payer(name="Lakeshore Health")
    db.add(payer)
    db.commit()
    # Therapist 3 is in the payer's network; therapist 5 was added by a national
    # template import (an admin's), in no network.
    listed = roster_csv([row(3, "lakeview", "Silver PPO", plan_type="commercial", **_HARTFORD)])
    assert import_bytes(engine, tmp_path, listed, payer_id=payer.id).succeeded
    added = roster_csv([row(5, "loop")])
    assert import_bytes(engine, tmp_path, added, payer_id=None).succeeded
    assert near_hartford(client) == sorted(make_npi(seed) for seed in (1, 2, 3, 4))

    # The next month: 1, 3 and 5 deactivated, 2 an occupational therapist now.
    month2 = nppes_bytes(
        deactivated(1), pt(NPI=make_npi(2), **_OCCUPATIONAL), deactivated(3), seeded(4),
        deactivated(5),
    )  # fmt: skip
    before = checksum(engine, *TABLES)
    trial = import_bytes(engine, tmp_path, month2, payer_id=None, format=Format.NPPES, dry_run=True)
    assert trial.counts.therapists_removed == 2
    assert checksum(engine, *TABLES) == before

    outcome = import_bytes(engine, tmp_path, month2, payer_id=None, format=Format.NPPES)
    assert outcome.succeeded, outcome.message
    assert (outcome.counts.therapists_removed, outcome.counts.records_skipped) == (2, 4)
    assert [(i.level, i.line, i.field, i.message) for i in outcome.issues] == [
        ("warning", 4, "NPI", f"NPI deactivated: the directory keeps NPI {make_npi(3)}, "
                              "whom a payer's network lists"),
        ("warning", 6, "NPI", f"NPI deactivated: the directory keeps NPI {make_npi(5)}, "
                              "whom a payer or the API added"),
    ]  # fmt: skip
    assert npis_found(client, 1, 2, 3, 4, 5) == [make_npi(seed) for seed in (3, 4, 5)]
    assert near_hartford(client) == sorted(make_npi(seed) for seed in (3, 4))
    # Their addresses went with them; the others' stay.
    streets = set(db.scalars(select(Location.address_line1)))
    assert {"100 MAIN ST", "200 MAIN ST"}.isdisjoint(streets)
    assert {"300 MAIN ST", "400 MAIN ST"} <= streets


def test_a_withdrawn_npi_unknown_to_the_directory_changes_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    engine = backend.engine
    assert import_bytes(
        engine, tmp_path, nppes_bytes(seeded(1)), payer_id=None, format=Format.NPPES
    ).succeeded
    before = checksum(engine, *TABLES)
    month2 = nppes_bytes(seeded(1), deactivated(7), pt(NPI=make_npi(8), **_OCCUPATIONAL))
    outcome = import_bytes(engine, tmp_path, month2, payer_id=None, format=Format.NPPES)
    assert outcome.succeeded, outcome.message
    assert (outcome.counts.therapists_removed, outcome.issues) == (0, [])
    assert checksum(engine, *TABLES) == before


def test_an_npi_the_file_also_lists_as_a_physical_therapist_stays(
    client: TestClient, backend: Backend, tmp_path: Path
) -> None:
    engine = backend.engine
    both = nppes_bytes(seeded(1), deactivated(1))
    outcome = import_bytes(engine, tmp_path, both, payer_id=None, format=Format.NPPES)
    assert outcome.succeeded, outcome.message
    assert outcome.counts.therapists_removed == 0
    assert npis_found(client, 1) == [make_npi(1)]
