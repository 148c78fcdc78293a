"""What a file says twice: a therapist listed in two records, a plan name two plans share."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports import roster
from app.imports.formats import Format
from app.locations.models import Location
from app.networks.models import Plan
from app.therapists.models import Practice, Therapist, therapist_languages
from tests.conftest import Backend
from tests.imports.helpers import import_bytes, roster_state

GOLD_IL, GOLD_WI = "12345IL0010001", "12345WI0010002"


@pytest.fixture(params=[1, 4000], ids=["in two batches", "in one batch"])
def batch_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Each test runs with its two records in batches of their own, then in one."""
    monkeypatch.setattr(roster, "BATCH_SIZE", request.param)
    return int(request.param)


def plan(hios: str, name: str) -> dict[str, Any]:
    return {"plan_id_type": "HIOS-PLAN-ID", "plan_id": hios, "marketing_name": name}


def provider(npi: str, *hios_ids: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "npi": npi,
        "type": "INDIVIDUAL",
        "name": {"first": "Ana", "last": "Reyes"},
        "addresses": [{"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}],
        "specialty": ["Physical Therapy"],
        "plans": [
            {"plan_id_type": "HIOS-PLAN-ID", "plan_id": hios, "years": [2026]} for hios in hios_ids
        ],
    }
    return item | fields


def as_json(items: list[dict[str, Any]]) -> bytes:
    return json.dumps(items).encode()


def plans_of(db: Session, payer_id: int) -> list[tuple[str, str | None]]:
    db.expire_all()
    return sorted(
        (row.name, row.hios_plan_id)
        for row in db.execute(select(Plan.name, Plan.hios_plan_id).where(Plan.payer_id == payer_id))
    )


def test_plans_sharing_a_marketing_name_stay_apart_with_a_warning(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    plans = as_json([plan(GOLD_IL, "Gold PPO"), plan(GOLD_WI, "Gold PPO")])
    providers = as_json([provider("1234567893", GOLD_IL), provider("1245319599", GOLD_WI)])

    first = import_bytes(
        backend.engine, tmp_path, providers, payer_id=payer_id, format=Format.QHP, plans=plans
    )
    assert first.succeeded, first.issues
    assert first.counts.plans_created == 2
    assert plans_of(db, payer_id) == [
        ("Gold PPO", GOLD_IL),
        (f"Gold PPO ({GOLD_WI})", GOLD_WI),
    ]
    [warning] = [issue for issue in first.issues if issue.level == "warning"]
    assert (warning.record_index, warning.field) == (1, "marketing_name")  # as plans.json
    assert GOLD_IL in warning.message
    assert GOLD_WI in warning.message
    # Each therapist is in the plan the file put them in.
    assert [(npi, name) for npi, _, name, _, _ in roster_state(backend.engine, payer_id)] == [
        ("1234567893", "Gold PPO"),
        ("1245319599", f"Gold PPO ({GOLD_WI})"),
    ]

    again = import_bytes(
        backend.engine, tmp_path, providers, payer_id=payer_id, format=Format.QHP, plans=plans
    )
    assert again.succeeded, again.issues
    assert (again.counts.plans_created, again.counts.plans_updated) == (0, 0)
    assert again.counts.participations_unchanged == 2
    assert plans_of(db, payer_id) == [("Gold PPO", GOLD_IL), (f"Gold PPO ({GOLD_WI})", GOLD_WI)]


def test_a_plan_known_by_name_takes_the_hios_id_a_file_gives_it(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    db.add(Plan(payer_id=payer_id, name="Gold PPO", plan_type="commercial"))
    db.commit()
    outcome = import_bytes(
        backend.engine,
        tmp_path,
        as_json([provider("1234567893", GOLD_IL)]),
        payer_id=payer_id,
        format=Format.QHP,
        plans=as_json([plan(GOLD_IL, "Gold PPO")]),
    )
    assert outcome.succeeded, outcome.issues
    assert (outcome.counts.plans_created, outcome.counts.plans_updated) == (0, 1)
    assert plans_of(db, payer_id) == [("Gold PPO", GOLD_IL)]


@pytest.mark.usefixtures("batch_size")
def test_a_therapist_in_two_records_merges_the_same_whatever_the_batches(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    full = provider(
        "1234567893",
        GOLD_IL,
        name={"first": "Martin", "middle": "Van", "last": "Nostrand", "suffix": "Jr"},
        gender="Male",
        accepting="accepting",
        addresses=[
            {
                "address": "5 Elm St",
                "city": "Evanston",
                "state": "IL",
                "zip": "60201",
                "phone": "3125550147",
            }
        ],
        languages=["Spanish"],
    )
    # The same therapist and address again, in another plan, the optional fields left out.
    sparse = provider(
        "1234567893", GOLD_WI, name={"first": "Martin", "last": "Nostrand"}, languages=["French"]
    )
    outcome = import_bytes(
        backend.engine, tmp_path, as_json([full, sparse]), payer_id=payer_id, format=Format.QHP
    )
    assert outcome.succeeded, outcome.issues

    db.expire_all()
    therapist = db.scalars(select(Therapist)).one()
    assert (therapist.middle_name, therapist.name_suffix, therapist.gender) == ("Van", "Jr", "male")
    assert sorted(db.scalars(select(therapist_languages.c.language_code))) == ["es", "fr"]
    practice = db.scalars(select(Practice)).one()
    assert practice.accepting_new_patients is True
    assert db.scalars(select(Location.phone)).one() == "3125550147"
    assert [name for _, _, name, _, _ in roster_state(backend.engine, payer_id)] == [
        GOLD_IL,
        GOLD_WI,
    ]


@pytest.mark.usefixtures("batch_size")
def test_an_address_two_therapists_share_keeps_what_either_record_gives(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    elm = {"address": "5 Elm St", "city": "Evanston", "state": "IL", "zip": "60201"}
    records = [
        provider("1234567893", GOLD_IL, addresses=[elm | {"phone": "3125550147"}]),
        provider("1245319599", GOLD_IL, addresses=[elm]),
    ]
    outcome = import_bytes(
        backend.engine, tmp_path, as_json(records), payer_id=payer_id, format=Format.QHP
    )
    assert outcome.succeeded, outcome.issues
    db.expire_all()
    assert db.scalars(select(Location.phone)).all() == ["3125550147"]
