"""The synthetic demo directory: realistic shape, valid identifiers, fully reproducible."""

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, func, select
from sqlalchemy.orm import Session

import app.models  # noqa: F401  (every mapper configured)
from app.db import create_db_engine
from app.demo.generator import REFERENCE_TIME, DemoSummary, load_demo
from app.fields import is_valid_npi, us_state_codes
from app.geocoding import zip_centroid
from app.locations.address import address_key
from app.locations.models import GeocodePrecision, Location
from app.migrate import upgrade
from app.networks.models import Participation, Payer, Plan, PlanType
from app.reference.seed import sync_reference_data
from app.therapists.models import Practice, Source, Therapist, TherapistSpecialty

THERAPISTS = 600
SEED = 20261127
NEUROLOGY = "2251N0400X"
ASSISTANT = "225200000X"
STATES_DC_PR = {
    code
    for code in us_state_codes()
    if code not in {"AA", "AE", "AP", "AS", "FM", "GU", "MH", "MP", "PW", "VI"}
}
HIOS = re.compile(r"^\d{5}[A-Z]{2}\d{7}$")


def build_demo(path: Path, seed: int) -> tuple[Engine, DemoSummary]:
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine) as session:
        sync_reference_data(session)
        summary = load_demo(session, therapists=THERAPISTS, seed=seed)
        session.commit()
    return engine, summary


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary]]:
    engine, summary = build_demo(tmp_path_factory.mktemp("demo") / "demo.sqlite3", SEED)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def db(demo: tuple[Engine, DemoSummary]) -> Iterator[Session]:
    with Session(demo[0]) as session:
        yield session


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def fingerprint(engine: Engine) -> list[tuple[Any, ...]]:
    """Per practice, in id order: who, where, and in which plans' networks."""
    with Session(engine) as session:
        plans: dict[int, list[int]] = defaultdict(list)
        for practice_id, plan_id in session.execute(
            select(Participation.practice_id, Participation.plan_id).order_by(
                Participation.practice_id, Participation.plan_id
            )
        ):
            plans[practice_id].append(plan_id)
        rows = session.execute(
            select(
                Practice.id,
                Therapist.npi,
                Therapist.first_name,
                Therapist.last_name,
                Location.latitude,
                Location.longitude,
            )
            .join(Therapist, Therapist.id == Practice.therapist_id)
            .join(Location, Location.id == Practice.location_id)
            .order_by(Practice.id)
        ).all()
    return [(*row, tuple(plans[row[0]])) for row in rows]


def test_counts_are_near_the_targets(demo: tuple[Engine, DemoSummary], db: Session) -> None:
    _engine, summary = demo
    assert summary.therapists == count(db, Therapist) == THERAPISTS
    assert summary.practices == count(db, Practice)
    assert 1.2 * THERAPISTS <= summary.practices <= 1.6 * THERAPISTS
    assert summary.locations == count(db, Location)
    assert 0.4 * THERAPISTS <= summary.locations <= 0.8 * THERAPISTS
    assert summary.payers == count(db, Payer)
    assert summary.plans == count(db, Plan)
    assert summary.participations == count(db, Participation) > summary.practices
    assert "600 therapists" in str(summary)


def test_locations_cover_the_country_at_real_zip_centroids(db: Session) -> None:
    locations = db.scalars(select(Location)).all()
    states = {location.state for location in locations}
    assert len(states) >= 40
    assert states <= STATES_DC_PR
    for location in locations:
        place = zip_centroid(location.zip)
        assert place is not None, location.zip
        assert (location.latitude, location.longitude) == (place.latitude, place.longitude)
        assert (location.city, location.state) == (place.city, place.state)
        assert location.geocode_precision is GeocodePrecision.ZIP_CENTROID
        assert location.address_key == address_key(
            line1=location.address_line1,
            line2=location.address_line2,
            city=location.city,
            state=location.state,
            zip_code=location.zip,
        )
        assert re.fullmatch(r"\d+ .+ \w+", location.address_line1)
        for number in (location.phone, location.fax):
            if number is not None:  # fictional: NXX-555-01XX
                assert re.fullmatch(r"[2-9]\d\d55501\d\d", number), number
    # Every site has at least one therapist.
    empty = db.scalar(
        select(func.count())
        .select_from(Location)
        .where(~select(Practice.id).where(Practice.location_id == Location.id).exists())
    )
    assert empty == 0


def test_neurology_share_and_one_primary_specialty_each(db: Session) -> None:
    primaries = db.execute(
        select(TherapistSpecialty.therapist_id, TherapistSpecialty.specialty_code).where(
            TherapistSpecialty.is_primary
        )
    ).all()
    by_therapist: dict[int, list[str]] = defaultdict(list)
    for therapist_id, code in primaries:
        by_therapist[therapist_id].append(code)
    assert len(by_therapist) == THERAPISTS
    assert all(len(codes) == 1 for codes in by_therapist.values())
    neurology = sum(codes == [NEUROLOGY] for codes in by_therapist.values())
    assert 0.18 <= neurology / THERAPISTS <= 0.32

    assistants = {tid for tid, codes in by_therapist.items() if codes == [ASSISTANT]}
    for therapist_id, credentials in db.execute(select(Therapist.id, Therapist.credentials)):
        assert (credentials == ["PTA"]) == (therapist_id in assistants)


def test_therapists_have_valid_unique_npis_and_demo_source(db: Session) -> None:
    therapists = db.execute(
        select(Therapist.npi, Therapist.source, Therapist.first_name, Therapist.last_name)
    ).all()
    npis = [npi for npi, *_ in therapists]
    assert len(set(npis)) == len(npis) == THERAPISTS
    assert all(is_valid_npi(npi) and npi[0] in "12" for npi in npis)
    assert {source for _, source, *_ in therapists} == {Source.DEMO}
    assert all(first and last for _, _, first, last in therapists)
    # A realistic mix of names rather than a handful repeated.
    assert len({last for *_, last in therapists}) > 100


def test_payers_and_plans_are_marked_synthetic(db: Session) -> None:
    payers = db.scalars(select(Payer.name)).all()
    assert "Medicare (synthetic demo network)" in payers
    assert all("(synthetic" in name for name in payers)
    plans = db.execute(select(Plan.name, Plan.plan_type, Plan.hios_plan_id)).all()
    assert {plan_type for _, plan_type, _ in plans} == set(PlanType)
    for name, plan_type, _hios in plans:
        assert name.endswith(" (synthetic)") or plan_type is PlanType.MEDICARE_PART_B


def test_marketplace_plans_have_valid_hios_ids(db: Session) -> None:
    marketplace = db.execute(
        select(Plan.id, Plan.hios_plan_id).where(Plan.plan_type == PlanType.MARKETPLACE)
    ).all()
    assert marketplace
    for plan_id, hios in marketplace:
        assert hios is not None
        assert len(hios) == 14
        assert HIOS.match(hios), hios
        assert hios[5:7] in STATES_DC_PR
        # Networks only in the plan's own state.
        states = db.scalars(
            select(Location.state)
            .distinct()
            .join(Practice, Practice.location_id == Location.id)
            .join(Participation, Participation.practice_id == Practice.id)
            .where(Participation.plan_id == plan_id)
        ).all()
        assert set(states) <= {hios[5:7]}


def test_network_shares_and_verification_dates(db: Session) -> None:
    practices = count(db, Practice)
    share = {
        plan_type: db.scalar(
            select(func.count(Participation.id))
            .join(Plan, Plan.id == Participation.plan_id)
            .where(Plan.plan_type == plan_type)
        )
        / practices
        for plan_type in (PlanType.MEDICARE_PART_B, PlanType.COMMERCIAL)
    }
    assert 0.7 <= share[PlanType.MEDICARE_PART_B] <= 0.95
    assert 0.4 <= share[PlanType.COMMERCIAL] <= 0.7

    accepting = db.scalar(select(func.avg(Practice.accepting_new_patients.cast(Integer()))))
    assert 0.65 <= accepting <= 0.85

    participations = db.scalars(select(Participation)).all()
    verified = [p.verified_at for p in participations]
    assert all(v is not None and v.tzinfo is UTC for v in verified)
    assert all(REFERENCE_TIME - timedelta(days=150) <= v <= REFERENCE_TIME for v in verified)
    stale = sum(v < REFERENCE_TIME - timedelta(days=90) for v in verified)
    assert 0.2 * len(verified) <= stale <= 0.6 * len(verified)
    open_ended = sum(p.effective_to is None for p in participations)
    assert open_ended >= 0.9 * len(participations)


def test_same_seed_same_directory_other_seed_another(
    demo: tuple[Engine, DemoSummary], tmp_path: Path
) -> None:
    again, _ = build_demo(tmp_path / "again.sqlite3", SEED)
    other, _ = build_demo(tmp_path / "other.sqlite3", SEED + 1)
    try:
        expected = fingerprint(demo[0])
        assert fingerprint(again) == expected
        different = fingerprint(other)
        assert different != expected
        assert {row[1] for row in different} != {row[1] for row in expected}
    finally:
        again.dispose()
        other.dispose()


def test_refuses_without_reference_vocabularies(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/bare.sqlite3")
    try:
        upgrade(engine)
        with Session(engine) as session, pytest.raises(RuntimeError, match="sync_reference_data"):
            load_demo(session, therapists=10)
    finally:
        engine.dispose()
