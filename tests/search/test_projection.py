"""The search projection follows every write, and its shortcuts never change an answer."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session

from app.networks.models import Participation
from app.search import projection, service
from app.search.models import SearchPractice
from app.therapists.models import Practice
from tests.conftest import Backend
from tests.factories import (
    LOOP,
    WRIGLEYVILLE,
    create_payer,
    create_plan,
    create_therapist,
    location_body,
    practice_at,
    therapist_body,
)

CHICAGO = {"lat": 41.9, "lon": -87.65, "radius": 20}


def found(client: TestClient, **params: Any) -> list[int]:
    response = client.get("/v1/search/therapists", params=CHICAGO | params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def snapshot(db: Session) -> list[tuple[Any, ...]]:
    db.expire_all()
    return [tuple(row) for row in db.execute(select(SearchPractice.__table__).order_by("id"))]


def assert_matches_a_rebuild(db: Session) -> None:
    """What the hooks left equals what a rebuild from the records gives."""
    kept = snapshot(db)
    db.rollback()
    projection.refresh(db)
    db.commit()
    assert snapshot(db) == kept


def test_every_kind_of_write_reaches_search(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    first = create_therapist(client, admin, therapist_body(1))
    second = create_therapist(
        client, admin, therapist_body(2, practices=[practice_at(LOOP, accepting=True)])
    )
    assert sorted(found(client)) == sorted([first["id"], second["id"]])
    assert found(client, plan_id=plan["id"]) == []

    # A participation added, then removed.
    practice_id = first["practices"][0]["id"]
    added = client.post(
        f"/v1/plans/{plan['id']}/participations", json={"practice_id": practice_id}, headers=admin
    )
    assert added.status_code == 201, added.text
    assert found(client, plan_id=plan["id"]) == [first["id"]]
    assert_matches_a_rebuild(db)
    removed = client.delete(f"/v1/participations/{added.json()['id']}", headers=admin)
    assert removed.status_code == 204
    assert found(client, plan_id=plan["id"]) == []

    # Therapist-level fields, replaced lists and a moved practice.
    patched = client.patch(
        f"/v1/therapists/{second['id']}",
        json={"languages": ["pl"], "specialties": [{"code": "2251N0400X", "primary": True}],
              "practices": [practice_at(WRIGLEYVILLE, accepting=False)]},
        headers=admin,
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert found(client, language="pl") == [second["id"]]
    assert found(client, accepting_new_patients=False) == [second["id"]]
    assert_matches_a_rebuild(db)

    # A shared location changed through another therapist's record: both follow.
    third = create_therapist(
        client, admin,
        therapist_body(3, practices=[{"location": location_body(facility_type="home_health"),
                                      "accepting_new_patients": True}]),
    )  # fmt: skip
    assert sorted(found(client, facility_type="home_health")) == sorted([first["id"], third["id"]])
    assert_matches_a_rebuild(db)

    # A plan deleted takes its participations, and the plan filter, with it.
    again = client.post(
        f"/v1/plans/{plan['id']}/participations", json={"practice_id": practice_id}, headers=admin
    )
    assert again.status_code == 201
    assert found(client, plan_id=plan["id"]) == [first["id"]]
    assert client.delete(f"/v1/plans/{plan['id']}", headers=admin).status_code == 204
    assert found(client, payer_id=payer["id"]) == []
    assert_matches_a_rebuild(db)

    # A deleted therapist is gone.
    assert client.delete(f"/v1/therapists/{first['id']}", headers=admin).status_code == 204
    assert first["id"] not in found(client)
    assert_matches_a_rebuild(db)


def test_concurrent_writes_to_one_therapist_take_turns_on_its_rows(
    client: TestClient, admin: dict[str, str], backend: Backend, db: Session
) -> None:
    """Two transactions adding plans at two practices of one therapist commit at the
    same moment: each rebuilds the therapist's rows, and the second must replace
    what the first wrote rather than collide with it."""
    if backend.name != "postgres":
        pytest.skip("SQLite lets one writer at a time in; there is nothing to interleave")
    payer = create_payer(client, admin)
    plans = [create_plan(client, admin, payer["id"], name=f"Plan {n}") for n in (1, 2)]
    therapist = create_therapist(
        client, admin,
        therapist_body(1, practices=[practice_at(LOOP, accepting=True),
                                     practice_at(WRIGLEYVILLE, accepting=True)]),
    )  # fmt: skip
    practice_ids = [practice["id"] for practice in therapist["practices"]]
    both_flushed = threading.Barrier(2, timeout=10)
    failures: list[BaseException] = []

    def add(practice_id: int, plan_id: int) -> None:
        try:
            with Session(backend.engine) as session:
                session.add(Participation(practice_id=practice_id, plan_id=plan_id))
                session.flush()
                both_flushed.wait()
                session.commit()
        except BaseException as error:  # reported below, in the test's own thread
            failures.append(error)

    workers = [
        threading.Thread(target=add, args=(practice_id, plan["id"]))
        for practice_id, plan in zip(practice_ids, plans, strict=True)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert failures == []
    for plan in plans:
        assert found(client, plan_id=plan["id"]) == [therapist["id"]]
    assert_matches_a_rebuild(db)


def test_a_practice_deleted_while_a_page_is_read_is_left_out(
    client: TestClient, admin: dict[str, str], backend: Backend
) -> None:
    """A search reads the page, then the page's sites, and each statement may see a
    newer snapshot: a practice deleted in between is left out of the answer (a
    therapist left with none is left out), not a failed request."""
    both = create_therapist(
        client, admin,
        therapist_body(1, practices=[practice_at(LOOP, accepting=True),
                                     practice_at(WRIGLEYVILLE, accepting=True)]),
    )  # fmt: skip
    only = create_therapist(client, admin, therapist_body(2))
    gone = [both["practices"][0]["id"], only["practices"][0]["id"]]
    deleted: list[int] = []

    def delete_before_sites(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT practices.id AS practice_id") and not deleted:
            deleted.extend(gone)
            with backend.engine.begin() as other:
                other.execute(delete(Practice).where(Practice.id.in_(gone)))

    event.listen(Engine, "before_cursor_execute", delete_before_sites)
    try:
        response = client.get("/v1/search/therapists", params=CHICAGO)
    finally:
        event.remove(Engine, "before_cursor_execute", delete_before_sites)
    assert deleted == gone, "the search never read its sites"
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [both["id"]]
    kept = both["practices"][1]["id"]
    assert [practice["id"] for practice in items[0]["practices"]] == [kept]
    assert items[0]["distance"] == items[0]["practices"][0]["distance"]


def test_a_refused_write_leaves_the_projection_as_it_was(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    create_therapist(client, admin, therapist_body(1))
    before = snapshot(db)
    duplicate = client.post("/v1/therapists", json=therapist_body(1), headers=admin)
    assert duplicate.status_code == 409
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("terms", "in_network_on"),
    [
        # (participation dates relative to today, days from today → in network?)
        ({"effective_from": 10}, {0: False, 9: False, 10: True, 400: True}),
        ({"effective_to": 5}, {0: True, 5: True, 6: False}),
        ({"effective_from": -30, "effective_to": 0}, {-1: True, 0: True, 1: False}),
    ],
)
def test_plan_filter_follows_the_calendar_after_the_rows_were_written(
    client: TestClient,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    terms: dict[str, int],
    in_network_on: dict[int, bool],
) -> None:
    """Rows store the plans in force when written; days later, start and end dates
    that have come since must still decide, exactly as the participations say."""
    today = datetime.now(UTC)
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    therapist = create_therapist(client, admin, therapist_body(1))
    body = {"practice_id": therapist["practices"][0]["id"]} | {
        name: (today.date() + timedelta(days=days)).isoformat() for name, days in terms.items()
    }
    response = client.post(f"/v1/plans/{plan['id']}/participations", json=body, headers=admin)
    assert response.status_code == 201, response.text

    on_day: Callable[[int], Any] = lambda days: today + timedelta(days=days)  # noqa: E731
    for days, expected in in_network_on.items():
        monkeypatch.setattr(service, "utcnow", lambda days=days: on_day(days))
        assert found(client, plan_id=plan["id"]) == ([therapist["id"]] if expected else []), days
        assert found(client, payer_id=payer["id"]) == ([therapist["id"]] if expected else []), days
        # The plan facet and the plans listed on the practice follow the same calendar.
        response = client.get("/v1/search/therapists", params=CHICAGO | {"facets": "plan_id"})
        body = response.json()
        counts = {entry["value"]: entry["count"] for entry in body["facets"]["plan_id"]}
        assert counts == ({plan["id"]: 1} if expected else {}), days
        listed = [entry["plan_id"] for entry in body["items"][0]["practices"][0]["plans"]]
        assert listed == ([plan["id"]] if expected else []), days


def test_name_changes_reach_name_search_and_order(
    client: TestClient, admin: dict[str, str]
) -> None:
    first = create_therapist(client, admin, therapist_body(1, last_name="Adams"))
    second = create_therapist(client, admin, therapist_body(2, last_name="Baker"))
    assert found(client, sort="name") == [first["id"], second["id"]]
    renamed = client.patch(
        f"/v1/therapists/{first['id']}", json={"last_name": "Zielińska"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert found(client, sort="name") == [second["id"], first["id"]]
    assert found(client, q="zielinska") == [first["id"]]
    assert found(client, q="adams") == []


def test_spatial_keys_order_rows_by_place(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    """Practices in the same 0.1° cell get neighbouring keys; a far one sorts apart."""
    near = create_therapist(client, admin, therapist_body(1))
    far = create_therapist(
        client, admin,
        therapist_body(2, practices=[{"location": location_body(
            address_line1="1 Ocean Dr", city="Miami", state="FL", zip="33139",
            latitude=25.77, longitude=-80.13), "accepting_new_patients": True}]),
    )  # fmt: skip
    keys = dict(db.execute(select(SearchPractice.therapist_id, SearchPractice.id)).all())
    band = lambda key: key // 2**31 // 4096  # noqa: E731
    assert band(keys[near["id"]]) == int((41.9245 + 90) * 10)
    assert band(keys[far["id"]]) == int((25.77 + 90) * 10)
    assert keys[near["id"]] % 2**31 == near["practices"][0]["id"]
