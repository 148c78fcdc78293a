"""The search tests' directory: the demo data plus therapists at awkward places.

`load_demo(therapists=1500)` gives a deterministic country-wide directory at real
ZIP centroids; a few therapists are added through the API at the awkward places
(the pole, both sides of the antimeridian, Alaska, Hawaii, Puerto Rico) and with
plan participations that ended yesterday or start tomorrow. The database is never
written to after that, so every test may read it; do not use `client` from
tests/conftest.py here (it empties its database around each test).
"""

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import create_key
from app.config import Settings
from app.db import create_db_engine
from app.demo.generator import REFERENCE_TIME, DemoSummary, load_demo
from app.locations.models import Location
from app.main import create_app
from app.migrate import prepare_database
from app.networks.models import Participation, Plan
from app.therapists.models import Practice, Therapist
from tests.factories import make_npi
from tests.search.oracle import Directory, read_directory, today_utc

DEMO_SEED = 4242
DEMO_THERAPISTS = 1500
MEDICARE_PART_B = "Medicare Part B"
NORTHWIND_PPO = "Northwind National Choice PPO (synthetic)"


@dataclass
class SearchDirectory:
    """A loaded backend: its API client, engine and the directory as plain data."""

    backend: str
    url: str
    engine: Engine
    client: TestClient
    directory: Directory
    summary: DemoSummary
    edge: dict[str, int]  # name of an added therapist -> its id
    plan_ids: dict[str, int]  # plan name -> id
    admin: dict[str, str]


def _location(
    *, line1: str, city: str, state: str, zip_code: str, lat: float | None = None,
    lon: float | None = None, facility: str = "private_practice",
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "address_line1": line1,
        "city": city,
        "state": state,
        "zip": zip_code,
        "facility_type": facility,
    }
    if lat is not None:
        body |= {"latitude": lat, "longitude": lon}
    return body


def _practice(
    location: dict[str, Any],
    *,
    accepting: bool = True,
    telehealth: bool = False,
    participations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "location": location,
        "accepting_new_patients": accepting,
        "telehealth": telehealth,
        "participations": participations or [],
    }


def _therapist(
    seed: int,
    first: str,
    last: str,
    practices: list[dict[str, Any]],
    *,
    specialties: list[dict[str, Any]] | None = None,
    gender: str | None = "female",
    languages: tuple[str, ...] = ("en",),
    conditions: tuple[str, ...] = ("peripheral-neuropathy",),
    certifications: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "npi": make_npi(99_000_000 + seed),
        "first_name": first,
        "last_name": last,
        "credentials": ["PT", "DPT"],
        "gender": gender,
        "specialties": specialties or [{"code": "2251N0400X", "primary": True}],
        "certifications": list(certifications),
        "conditions": list(conditions),
        "services": ["balance-training"],
        "languages": list(languages),
        "practices": practices,
    }


def edge_therapists(plan_ids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Request bodies of the therapists added at awkward places, by a short name."""
    today = today_utc()
    medicare, ppo = plan_ids[MEDICARE_PART_B], plan_ids[NORTHWIND_PPO]

    def member(plan_id: int, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        return {
            "plan_id": plan_id,
            "effective_from": None if start is None else str(today + timedelta(days=start)),
            "effective_to": None if end is None else str(today + timedelta(days=end)),
        }

    adak = {"city": "Adak", "state": "AK", "zip_code": "99546"}
    return {
        "polar": _therapist(1, "Nanook", "Polaris", [_practice(
            _location(line1="1 Ice Shelf Rd", city="Barrow", state="AK", zip_code="99723",
                      lat=89.9, lon=0.0), telehealth=True)]),
        "aleut_east": _therapist(2, "Attu", "Eastward", [_practice(
            _location(line1="10 Dateline Way", **adak, lat=52.0, lon=179.95),
            participations=[member(medicare, start=-400)])], gender="male"),
        "aleut_west": _therapist(3, "Amlia", "Westward", [_practice(
            _location(line1="20 Dateline Way", **adak, lat=52.0, lon=-179.95),
            participations=[member(medicare)])], languages=("en", "ru")),
        "aleut_both": _therapist(4, "Kiska", "Bothsides", [
            _practice(_location(line1="30 Dateline Way", **adak, lat=51.9, lon=179.9),
                      accepting=False),
            _practice(_location(line1="40 Dateline Way", **adak, lat=51.93, lon=-179.82),
                      telehealth=True),
        ], specialties=[{"code": "2251G0304X", "primary": True}]),
        "anchorage": _therapist(5, "Denali", "Anchorwoman", [_practice(
            _location(line1="500 W 5th Ave", city="Anchorage", state="AK", zip_code="99501"),
            participations=[member(medicare, start=-30)])]),
        "honolulu": _therapist(6, "Leilani", "Kahananui", [_practice(
            _location(line1="900 Kapiolani Blvd", city="Honolulu", state="HI", zip_code="96813",
                      facility="outpatient_clinic"),
            participations=[member(ppo, start=-10, end=300)])], languages=("en", "tl")),
        "san_juan": _therapist(7, "Marisol", "Rivera-Ortíz", [_practice(
            _location(line1="100 Calle Fortaleza", city="San Juan", state="PR",
                      zip_code="00901"))], languages=("en", "es")),
        # Plan participations at the edges of "current" (today is UTC today).
        "ended": _therapist(8, "Ezra", "Lapsed", [_practice(
            _location(line1="2400 N Clark St", city="Chicago", state="IL", zip_code="60614"),
            participations=[member(medicare, start=-500, end=-1),
                            member(ppo, start=1)])]),
        "boundary": _therapist(9, "Bea", "Borderline", [_practice(
            _location(line1="2410 N Clark St", city="Chicago", state="IL", zip_code="60614"),
            participations=[member(medicare, start=-500, end=0),
                            member(ppo, start=0)])]),
        "split": _therapist(10, "Sol", "Splitsite", [
            _practice(_location(line1="2420 N Clark St", city="Chicago", state="IL",
                                zip_code="60614", lat=41.9265, lon=-87.6432),
                      accepting=False, participations=[member(medicare, start=-100)]),
            _practice(_location(line1="150 N Michigan Ave", city="Chicago", state="IL",
                                zip_code="60601", lat=41.8847, lon=-87.6247),
                      accepting=True, participations=[member(medicare, start=-100, end=-2)]),
        ], gender="male"),
        # For q: the last name holds neither % nor _.
        "juneau": _therapist(11, "Zoë", "O'Hara", [_practice(
            _location(line1="200 Seward St", city="Juneau", state="AK", zip_code="99801"))]),
    }  # fmt: skip


def build_directory(backend: str, url: str, stack: ExitStack) -> SearchDirectory:
    engine = create_db_engine(url)
    stack.callback(engine.dispose)
    prepare_database(engine)
    with Session(engine) as session:
        summary = load_demo(session, therapists=DEMO_THERAPISTS, seed=DEMO_SEED)
        _key, plaintext = create_key(session, role=Role.ADMIN, name="search tests")
        session.commit()
        plan_ids = {name: plan_id for plan_id, name in session.execute(select(Plan.id, Plan.name))}
    admin = {"Authorization": f"Bearer {plaintext}"}

    application = create_app(Settings(database_url=url))
    client = stack.enter_context(TestClient(application, raise_server_exceptions=False))
    edge = {}
    for name, body in edge_therapists(plan_ids).items():
        response = client.post("/v1/therapists", json=body, headers=admin)
        assert response.status_code == 201, f"{name}: {response.text}"
        edge[name] = response.json()["id"]
    # API-created rows carry the clock's time; pin them so both backends answer alike.
    with engine.begin() as connection:
        for model in (Therapist, Practice, Location, Participation):
            connection.execute(
                update(model).values(created_at=REFERENCE_TIME, updated_at=REFERENCE_TIME)
            )
    return SearchDirectory(
        backend=backend,
        url=url,
        engine=engine,
        client=client,
        directory=read_directory(engine),
        summary=summary,
        edge=edge,
        plan_ids=plan_ids,
        admin=admin,
    )
