"""Payers, plans and participations through the API."""

from fastapi.testclient import TestClient

from tests.factories import create_payer, create_plan, create_therapist, therapist_body


def test_payer_and_plan_round_trip(client: TestClient, admin: dict[str, str]) -> None:
    payer = create_payer(client, admin, name="Lakeshore Health")
    assert client.get(f"/v1/payers/{payer['id']}").json() == payer
    assert client.get("/v1/payers").json() == [payer]

    silver = create_plan(client, admin, payer["id"], name="Silver PPO", plan_type="marketplace",
                         hios_plan_id="12345il0010001")  # fmt: skip
    assert silver["hios_plan_id"] == "12345IL0010001"
    assert silver["payer_id"] == payer["id"]
    other = create_payer(client, admin, name="Medicare")
    part_b = create_plan(client, admin, other["id"])

    assert [p["id"] for p in client.get("/v1/plans").json()] == [silver["id"], part_b["id"]]
    only = client.get("/v1/plans", params={"payer_id": other["id"]}).json()
    assert [p["id"] for p in only] == [part_b["id"]]
    typed = client.get("/v1/plans", params={"plan_type": "marketplace"}).json()
    assert [p["id"] for p in typed] == [silver["id"]]

    renamed = client.patch(f"/v1/plans/{silver['id']}", json={"name": "Silver PPO 2027"},
                           headers=admin)  # fmt: skip
    assert renamed.status_code == 200
    assert client.get(f"/v1/plans/{silver['id']}").json()["name"] == "Silver PPO 2027"


def test_duplicate_payer_and_plan_names_are_409(client: TestClient, admin: dict[str, str]) -> None:
    payer = create_payer(client, admin, name="Medicare")
    assert client.post("/v1/payers", json={"name": "Medicare"}, headers=admin).status_code == 409
    create_plan(client, admin, payer["id"])
    again = client.post(f"/v1/payers/{payer['id']}/plans",
                        json={"name": "Medicare Part B", "plan_type": "medicare_part_b"},
                        headers=admin)  # fmt: skip
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert len(client.get("/v1/plans").json()) == 1


def test_participation_lifecycle(client: TestClient, admin: dict[str, str]) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    therapist = create_therapist(client, admin, therapist_body())
    practice_id = therapist["practices"][0]["id"]

    added = client.post(
        f"/v1/plans/{plan['id']}/participations",
        json={"practice_id": practice_id, "network_tier": "preferred",
              "effective_from": "2026-01-01", "verified_at": "2026-11-20T10:00:00Z"},
        headers=admin,
    )  # fmt: skip
    assert added.status_code == 201, added.text
    participation = added.json()
    assert participation["practice_id"] == practice_id
    assert added.headers["location"] == f"/v1/participations/{participation['id']}"

    duplicate = client.post(f"/v1/plans/{plan['id']}/participations",
                            json={"practice_id": practice_id}, headers=admin)  # fmt: skip
    assert duplicate.status_code == 409

    record = client.get(f"/v1/therapists/{therapist['id']}").json()
    [entry] = record["practices"][0]["participations"]
    assert entry["plan"]["id"] == plan["id"]
    assert entry["effective_from"] == "2026-01-01"

    changed = client.patch(f"/v1/participations/{participation['id']}",
                           json={"effective_to": "2026-12-31", "network_tier": "standard"},
                           headers=admin)  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["effective_to"] == "2026-12-31"
    backwards = client.patch(f"/v1/participations/{participation['id']}",
                             json={"effective_to": "2025-01-01"}, headers=admin)  # fmt: skip
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "effective_to"

    page = client.get(f"/v1/plans/{plan['id']}/participations").json()
    assert page["total"] == 1
    assert page["items"][0]["network_tier"] == "standard"

    gone = client.delete(f"/v1/participations/{participation['id']}", headers=admin)
    assert gone.status_code == 204
    assert client.get(f"/v1/plans/{plan['id']}/participations").json()["total"] == 0


def test_participation_needs_a_real_practice_and_sane_dates(
    client: TestClient, admin: dict[str, str]
) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    missing = client.post(f"/v1/plans/{plan['id']}/participations",
                          json={"practice_id": 987654}, headers=admin)  # fmt: skip
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "practice_id"
    therapist = create_therapist(client, admin, therapist_body())
    practice_id = therapist["practices"][0]["id"]
    future = client.post(f"/v1/plans/{plan['id']}/participations",
                         json={"practice_id": practice_id, "verified_at": "2099-01-01T00:00:00Z"},
                         headers=admin)  # fmt: skip
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "verified_at"


def test_deleting_a_plan_removes_its_network(client: TestClient, admin: dict[str, str]) -> None:
    payer = create_payer(client, admin)
    plan = create_plan(client, admin, payer["id"])
    body = therapist_body()
    body["practices"][0]["participations"] = [{"plan_id": plan["id"]}]
    therapist = create_therapist(client, admin, body)
    assert client.delete(f"/v1/plans/{plan['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/plans/{plan['id']}").status_code == 404
    record = client.get(f"/v1/therapists/{therapist['id']}").json()
    assert record["practices"][0]["participations"] == []
