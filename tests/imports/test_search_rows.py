"""An import builds its new therapists' search rows itself: they equal a rebuild's.

The rows of therapists that existed before a batch are re-read with the
projection's aggregate query; those of therapists the batch created are built in
Python from what the batch wrote (app.imports.roster, app.search.projection). Both
must leave exactly what `projection.refresh()` writes from the records.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.imports import roster
from app.imports.formats import Format
from app.imports.roster import Mode
from app.imports.service import OnError
from app.networks.models import Payer
from app.search import projection
from app.search.models import SearchPractice
from tests.conftest import Backend
from tests.imports.helpers import COLUMNS, import_bytes, roster_csv, row

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# The padded code lists: their order is the aggregate's, which SQL leaves unspecified,
# and search never depends on it (it tests " code " substrings and splits the lists).
CODE_LISTS = ("specialties", "conditions", "certifications", "languages", "services", "plan_ids")
ALL_COLUMNS = (*COLUMNS, "certifications", "services", "middle_name", "gender")


def search_rows(db: Session) -> list[dict[str, Any]]:
    db.expire_all()
    table = SearchPractice.__table__
    found = []
    for values in db.execute(select(table).order_by(table.c.id)).mappings():
        row = dict(values)
        for name in CODE_LISTS:
            # Same bytes apart from the order of the codes: same padding, same codes.
            row[name] = (row[name][:1], sorted(row[name].split(" ")), row[name][-1:])
        found.append(row)
    return found


def assert_equals_a_rebuild(db: Session) -> None:
    kept = search_rows(db)
    assert kept, "the import left no search rows"
    projection.refresh(db)
    db.flush()
    rebuilt = search_rows(db)
    db.rollback()
    assert len(kept) == len(rebuilt)
    for mine, theirs in zip(kept, rebuilt, strict=True):
        assert mine == theirs
        # Floats bit for bit, not merely equal.
        for name in ("latitude", "longitude", "x", "y", "z"):
            assert mine[name].hex() == theirs[name].hex()


def add_payer(db: Session) -> int:
    payer = Payer(name="Lakeshore Health")
    db.add(payer)
    db.commit()
    return payer.id


def varied_roster(first_seed: int = 1) -> bytes:
    """Every kind of value a search row carries, in force today or not."""
    today = utcnow().date()
    past, soon, later = (
        (today - timedelta(days=400)).isoformat(),
        (today + timedelta(days=20)).isoformat(),
        (today + timedelta(days=300)).isoformat(),
    )
    yesterday = (today - timedelta(days=1)).isoformat()
    far = (today + timedelta(days=500)).isoformat()
    rows = []
    for n in range(first_seed, first_seed + 12):
        site = ("lakeview", "loop", "evanston")[n % 3]
        extra = {
            "specialties": ("neurology", "2251N0400X; 225100000X; 2251G0304X", "225200000X")[n % 3],
            "languages": ("en;es", "pl", "", "zh;en;fr")[n % 4],
            "conditions": ("peripheral-neuropathy; diabetic-neuropathy", "")[n % 2],
            "certifications": ("NCS; GCS", "", "OCS")[n % 3],
            "services": ("balance-training; strengthening", "")[n % 2],
            "gender": ("female", "male", "", "other")[n % 4],
            "facility_type": ("private_practice", "", "hospital_outpatient")[n % 3],
            "accepting_new_patients": ("yes", "no", "")[n % 3],
            "telehealth": ("yes", "")[n % 2],
            "middle_name": "Zoë" if n % 5 == 0 else "",
        }
        first_name = ("Ana", "Émile", "O'Neil  Jr", "Bo")[n % 4]
        rows.append(row(n, site, "Silver PPO", plan_type="commercial", first_name=first_name,
                        effective_to=("", far)[n % 2], **extra))  # fmt: skip
        terms = [
            ("Medicare Part B", "medicare_part_b", "", ""),
            ("Gold HMO", "commercial", soon, later),
            ("Old Plan", "medicaid", past, yesterday),
            ("Current Plan", "medicaid", past, later),
        ][n % 4]
        rows.append(
            row(n, site, terms[0], plan_type=terms[1], first_name=first_name,
                effective_from=terms[2], effective_to=terms[3], **extra)
        )  # fmt: skip
        if n % 2:
            # A second site, with coordinates of its own or none (its ZIP's centroid).
            rows.append(
                row(n, ("loop", "evanston", "lakeview")[n % 3], "Gold HMO", plan_type="commercial",
                    first_name=first_name, effective_from=past, **extra)
            )  # fmt: skip
    return roster_csv(rows, ALL_COLUMNS)


def test_a_new_roster_leaves_what_a_rebuild_writes(
    db: Session, backend: Backend, tmp_path: Path
) -> None:
    payer_id = add_payer(db)
    outcome = import_bytes(backend.engine, tmp_path, varied_roster(), payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.therapists_created == 12
    assert_equals_a_rebuild(db)


def test_new_and_existing_therapists_in_one_batch(
    db: Session, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Existing therapists (re-read) and new ones (built) side by side, over several
    batches, with a location whose details the second file changes and an NPI that
    comes back in a later batch of the same file."""
    payer_id = add_payer(db)
    first = import_bytes(backend.engine, tmp_path, varied_roster(1), payer_id=payer_id)
    assert first.succeeded, first.issues
    monkeypatch.setattr(roster, "BATCH_SIZE", 4)
    second_roster = varied_roster(7)
    moved = row(30, "evanston", "Gold HMO", plan_type="commercial", latitude="42.0500",
                longitude="-87.6800", facility_type="aquatic_center")  # fmt: skip
    again = row(8, "loop", "Current Plan", plan_type="medicaid", languages="de")
    content = second_roster + roster_csv([moved, again], ALL_COLUMNS).split(b"\n", 1)[1]
    second = import_bytes(backend.engine, tmp_path, content, payer_id=payer_id, mode=Mode.MERGE)
    assert second.succeeded, second.issues
    assert second.counts.therapists_created == 7
    assert_equals_a_rebuild(db)


@pytest.mark.parametrize(
    ("format", "path"),
    [
        (Format.QHP, FIXTURES / "qhp" / "physical_therapists.json"),
        (Format.NPPES, FIXTURES / "nppes" / "nppes_sample_practitioners.csv"),
        (Format.FHIR, FIXTURES / "plannet" / "physical_therapists.ndjson"),
    ],
)
def test_each_format_leaves_what_a_rebuild_writes(
    db: Session, backend: Backend, tmp_path: Path, format: Format, path: Path
) -> None:
    payer_id = None if format is Format.NPPES else add_payer(db)
    outcome = import_bytes(
        backend.engine,
        tmp_path,
        path.read_bytes(),
        payer_id=payer_id,
        format=format,
        on_error=OnError.SKIP,  # the samples hold refused records on purpose
    )
    assert outcome.succeeded, outcome.issues
    assert outcome.counts.therapists_created
    assert_equals_a_rebuild(db)
