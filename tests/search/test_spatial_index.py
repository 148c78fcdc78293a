"""The spatial index follows the projection through imports, API writes and rebuilds
(migrations: tests/test_migrations.py)."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.imports.roster import Mode
from app.migrate import prepare_database
from app.networks.models import Payer
from app.search import projection
from app.search.models import SearchPractice
from tests.conftest import Backend
from tests.factories import LOOP, WRIGLEYVILLE, create_therapist, practice_at, therapist_body
from tests.imports.helpers import import_bytes, roster_csv, row
from tests.search.spatial_index import assert_index_matches


def test_imports_keep_the_index(db: Session, backend: Backend, tmp_path: Path) -> None:
    payer = Payer(name="Lakeshore Health")
    db.add(payer)
    db.commit()
    created = roster_csv(
        [row(n, site, "Silver PPO", plan_type="commercial")
         for n, site in enumerate(("lakeview", "loop", "evanston", "loop"), start=1)]
    )  # fmt: skip
    outcome = import_bytes(backend.engine, tmp_path, created, payer_id=payer.id)
    assert outcome.succeeded, outcome.issues
    assert len(assert_index_matches(backend.engine)) == 4

    # Existing therapists, one of them at a clinic that moved, and one new: a replace,
    # so the therapists the file leaves out are rebuilt as their plans end.
    updated = roster_csv(
        [
            row(1, "lakeview", "Silver PPO", plan_type="commercial", languages="de"),
            row(2, "loop", "Silver PPO", plan_type="commercial",
                latitude="41.8900", longitude="-87.6300"),
            row(2, "evanston", "Silver PPO", plan_type="commercial"),
            row(9, "lakeview", "Silver PPO", plan_type="commercial"),
        ]
    )  # fmt: skip
    again = import_bytes(backend.engine, tmp_path, updated, payer_id=payer.id)
    assert again.succeeded, again.issues
    assert again.counts.therapists_created == 1
    assert again.counts.therapists_updated == 1  # a new language; the other, a new site
    assert again.counts.locations_updated == 1
    assert again.counts.participations_ended == 2
    points = assert_index_matches(backend.engine)
    assert len(points) == 6
    assert (41.89, -87.63) in points.values()

    merged = import_bytes(backend.engine, tmp_path, created, payer_id=payer.id, mode=Mode.MERGE)
    assert merged.succeeded, merged.issues
    assert len(assert_index_matches(backend.engine)) == 6


def test_api_writes_keep_the_index(
    client: TestClient, admin: dict[str, str], backend: Backend
) -> None:
    first = create_therapist(client, admin, therapist_body(1))
    second = create_therapist(
        client, admin, therapist_body(2, practices=[practice_at(LOOP, accepting=True)])
    )
    assert len(assert_index_matches(backend.engine)) == 2

    moved = client.patch(
        f"/v1/therapists/{second['id']}",
        json={"practices": [practice_at(WRIGLEYVILLE, accepting=False),
                            practice_at(LOOP, accepting=True)]},
        headers=admin,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert len(assert_index_matches(backend.engine)) == 3

    assert client.delete(f"/v1/therapists/{first['id']}", headers=admin).status_code == 204
    assert len(assert_index_matches(backend.engine)) == 2


def test_rebuilds_keep_the_index(
    client: TestClient, admin: dict[str, str], backend: Backend
) -> None:
    for seed in (1, 2, 3):
        create_therapist(client, admin, therapist_body(seed))
    with Session(backend.engine) as session, session.begin():
        session.execute(delete(SearchPractice).where(SearchPractice.therapist_id % 2 == 1))
    assert len(assert_index_matches(backend.engine)) == 1
    prepare_database(backend.engine)  # incomplete, so it rebuilds every row
    assert len(assert_index_matches(backend.engine)) == 3
    with Session(backend.engine) as session, session.begin():
        projection.refresh(session)
    assert len(assert_index_matches(backend.engine)) == 3
