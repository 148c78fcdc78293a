"""The therapist record round trip: create, read, find by NPI, change, delete."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.locations.models import Location
from app.networks.models import Participation
from app.therapists.models import Practice, Therapist
from tests.factories import (
    create_payer,
    create_plan,
    create_therapist,
    location_body,
    make_npi,
    therapist_body,
)


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_create_returns_the_full_record_and_get_returns_the_same(
    client: TestClient, admin: dict[str, str]
) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    body = therapist_body()
    body["practices"][0]["participations"] = [
        {"plan_id": plan["id"], "network_tier": "preferred", "verified_at": "2026-11-01T09:30:00Z"}
    ]
    response = client.post("/v1/therapists", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/therapists/{created['id']}"

    assert created["npi"] == body["npi"]
    assert created["last_name"] == "García"
    assert [s["code"] for s in created["specialties"]] == ["2251N0400X", "2251G0304X"]
    assert [s["primary"] for s in created["specialties"]] == [True, False]
    assert created["specialties"][0]["slug"] == "neurology"
    assert [c["code"] for c in created["certifications"]] == ["NCS"]
    assert [c["slug"] for c in created["conditions"]] == [
        "diabetic-neuropathy",
        "peripheral-neuropathy",
    ]
    assert [lang["code"] for lang in created["languages"]] == ["en", "es"]
    practice = created["practices"][0]
    assert practice["accepting_new_patients"] is True
    assert practice["telehealth"] is True
    location = practice["location"]
    assert location["phone"] == "3125550147"  # normalised to ten digits
    assert location["fax"] == "3125550148"
    assert location["geocode_precision"] == "provided"
    assert (location["latitude"], location["longitude"]) == (41.9245, -87.6468)
    [participation] = practice["participations"]
    assert participation["plan"]["name"] == "Medicare Part B"
    assert participation["plan"]["payer_name"] == "Medicare"
    assert participation["network_tier"] == "preferred"
    assert participation["verified_at"] == "2026-11-01T09:30:00Z"
    assert created["source"] == "api"

    fetched = client.get(f"/v1/therapists/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_lookup_by_npi_finds_exactly_that_therapist(
    client: TestClient, admin: dict[str, str]
) -> None:
    first = create_therapist(client, admin, therapist_body(npi_seed=1))
    create_therapist(client, admin, therapist_body(npi_seed=2, practices=[]))

    found = client.get("/v1/therapists", params={"npi": first["npi"]})
    assert found.status_code == 200
    assert [t["id"] for t in found.json()["items"]] == [first["id"]]

    missing = client.get("/v1/therapists", params={"npi": make_npi(3)})
    assert missing.json()["items"] == []

    invalid = client.get("/v1/therapists", params={"npi": "1234567890"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "npi"


def test_listing_pages_through_every_therapist_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    ids = [create_therapist(client, admin, therapist_body(npi_seed=n, practices=[]))["id"]
           for n in range(1, 8)]  # fmt: skip
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/therapists", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = client.get("/v1/therapists", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


def test_duplicate_npi_is_409_and_writes_nothing(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    create_therapist(client, admin, therapist_body(npi_seed=1))
    again = therapist_body(npi_seed=1, first_name="Other")
    again["practices"][0]["location"] = location_body(address_line1="9 Elsewhere Rd")
    response = client.post("/v1/therapists", json=again, headers=admin)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert make_npi(1) in response.json()["detail"]
    assert _count(db, Therapist) == 1
    assert _count(db, Location) == 1


def test_a_practices_flags_may_be_given_as_unknown(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = therapist_body()
    body["practices"][0] |= {"accepting_new_patients": None, "telehealth": None}
    created = create_therapist(client, admin, body)
    practice = client.get(f"/v1/therapists/{created['id']}").json()["practices"][0]
    assert (practice["accepting_new_patients"], practice["telehealth"]) == (None, None)
    search = {"lat": 41.9245, "lon": -87.6468, "radius": 1}
    assert client.get("/v1/search/therapists", params=search).json()["total"] == 1
    for flag in ("true", "false"):
        filtered = search | {"accepting_new_patients": flag}
        assert client.get("/v1/search/therapists", params=filtered).json()["total"] == 0


def test_two_practices_at_one_address_share_a_location(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    first = create_therapist(client, admin, therapist_body(npi_seed=1))
    respelled = location_body(
        address_line1="2300 n. lincoln avenue", address_line2="Ste #200", phone="312-555-0199"
    )
    second = create_therapist(
        client,
        admin,
        therapist_body(
            npi_seed=2, practices=[{"location": respelled, "accepting_new_patients": False}]
        ),
    )
    first_location = first["practices"][0]["location"]["id"]
    assert second["practices"][0]["location"]["id"] == first_location
    assert _count(db, Location) == 1
    # The latest details given for the shared site win, for every practice there.
    refreshed = client.get(f"/v1/therapists/{first['id']}").json()
    assert refreshed["practices"][0]["location"]["phone"] == "3125550199"


def test_missing_coordinates_are_filled_from_the_zip_centroid(
    client: TestClient, admin: dict[str, str]
) -> None:
    location = location_body(zip="60614-2301", latitude=None, longitude=None)
    body = therapist_body(practices=[{"location": location, "accepting_new_patients": True}])
    created = create_therapist(client, admin, body)
    placed = created["practices"][0]["location"]
    assert placed["geocode_precision"] == "zip_centroid"
    assert placed["zip"] == "60614-2301"
    assert (placed["latitude"], placed["longitude"]) == (41.9229, -87.6483)


def test_unknown_zip_and_city_without_coordinates_is_422_naming_the_zip(
    client: TestClient, admin: dict[str, str]
) -> None:
    location = location_body(zip="00000", city="Nowhere", latitude=None, longitude=None)
    body = therapist_body(practices=[{"location": location, "accepting_new_patients": True}])
    response = client.post("/v1/therapists", json=body, headers=admin)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "practices[0].location.zip"
    assert "cannot be placed" in error["message"]


def test_unknown_zip_in_a_known_city_is_placed_at_the_city(
    client: TestClient, admin: dict[str, str]
) -> None:
    # 60299 is not in the offline ZIP table; Evanston's six ZIPs are.
    location = location_body(zip="60299", city="evanston", latitude=None, longitude=None)
    body = therapist_body(practices=[{"location": location, "accepting_new_patients": True}])
    created = create_therapist(client, admin, body)
    placed = created["practices"][0]["location"]
    assert placed["geocode_precision"] == "city_centroid"
    assert (round(placed["latitude"], 4), round(placed["longitude"], 4)) == (42.0471, -87.6921)


def test_patch_changes_only_given_fields_and_replaces_given_lists(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = create_therapist(client, admin, therapist_body())
    response = client.patch(
        f"/v1/therapists/{created['id']}",
        json={"last_name": "García-López", "languages": ["en"], "conditions": []},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["last_name"] == "García-López"
    assert updated["first_name"] == "Ana"
    assert [lang["code"] for lang in updated["languages"]] == ["en"]
    assert updated["conditions"] == []
    assert [c["code"] for c in updated["certifications"]] == ["NCS"]
    assert updated["practices"] == created["practices"]
    assert client.get(f"/v1/therapists/{created['id']}").json() == updated


def test_patch_can_move_the_primary_specialty(client: TestClient, admin: dict[str, str]) -> None:
    created = create_therapist(client, admin, therapist_body())
    response = client.patch(
        f"/v1/therapists/{created['id']}",
        json={"specialties": [{"code": "2251N0400X"}, {"code": "2251G0304X", "primary": True}]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    primary = [s["code"] for s in response.json()["specialties"] if s["primary"]]
    assert primary == ["2251G0304X"]


def test_patch_refuses_null_for_required_fields(client: TestClient, admin: dict[str, str]) -> None:
    created = create_therapist(client, admin, therapist_body())
    response = client.patch(
        f"/v1/therapists/{created['id']}", json={"last_name": None}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "last_name"


def test_patch_practices_keeps_known_sites_and_drops_the_rest(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    body = therapist_body()
    body["practices"][0]["participations"] = [{"plan_id": plan["id"]}]
    body["practices"].append(
        {
            "location": location_body(address_line1="1 Main St", zip="10001", latitude=None,
                                      longitude=None),
            "accepting_new_patients": True,
        }
    )  # fmt: skip
    created = create_therapist(client, admin, body)
    kept_id = created["practices"][0]["id"]
    assert _count(db, Location) == 2

    kept = dict(body["practices"][0], accepting_new_patients=False)
    response = client.patch(
        f"/v1/therapists/{created['id']}", json={"practices": [kept]}, headers=admin
    )
    assert response.status_code == 200, response.text
    [practice] = response.json()["practices"]
    assert practice["id"] == kept_id
    assert practice["accepting_new_patients"] is False
    assert [p["plan"]["id"] for p in practice["participations"]] == [plan["id"]]
    assert _count(db, Practice) == 1
    assert _count(db, Location) == 1  # the site no practice uses any more is gone


def test_delete_removes_the_therapist_practices_and_participations(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    body = therapist_body(npi_seed=1)
    body["practices"][0]["participations"] = [{"plan_id": plan["id"]}]
    doomed = create_therapist(client, admin, body)
    neighbour = create_therapist(client, admin, therapist_body(npi_seed=2))

    response = client.delete(f"/v1/therapists/{doomed['id']}", headers=admin)
    assert response.status_code == 204
    assert client.get(f"/v1/therapists/{doomed['id']}").status_code == 404
    assert client.delete(f"/v1/therapists/{doomed['id']}", headers=admin).status_code == 404
    assert _count(db, Participation) == 0
    assert _count(db, Practice) == 1
    # The shared location stays: the neighbour still practises there.
    assert client.get(f"/v1/therapists/{neighbour['id']}").json()["practices"][0]["location"]
    assert _count(db, Location) == 1


def test_unknown_therapist_is_404_problem(client: TestClient, admin: dict[str, str]) -> None:
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"headers": admin}
        if method == "patch":
            kwargs["json"] = {"first_name": "X"}
        response = getattr(client, method)("/v1/therapists/999999", **kwargs)
        assert response.status_code == 404, method
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "therapist 999999 does not exist"
