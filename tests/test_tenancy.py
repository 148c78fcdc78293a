"""A payer key manages its own payer's plans and networks, and nothing of any other payer's."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from app.imports.models import ImportJob
from app.networks.models import Participation, Payer, Plan
from tests.conftest import Backend, IssueKey
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
from tests.imports.helpers import roster_csv, row


@dataclass(frozen=True)
class Tenants:
    payer_a: int
    payer_b: int
    plans_a: tuple[int, ...]
    plans_b: tuple[int, ...]
    participations_a: tuple[int, ...]
    participations_b: tuple[int, ...]
    therapist_id: int
    practices: tuple[int, ...]
    key_a: dict[str, str]

    def owner_of_plan(self, plan_id: int) -> str | None:
        return "A" if plan_id in self.plans_a else "B" if plan_id in self.plans_b else None

    def owner_of_participation(self, participation_id: int) -> str | None:
        if participation_id in self.participations_a:
            return "A"
        return "B" if participation_id in self.participations_b else None

    def owner_of_payer(self, payer_id: int) -> str | None:
        return "A" if payer_id == self.payer_a else "B" if payer_id == self.payer_b else None


def _add_participation(
    client: TestClient, headers: dict[str, str], plan_id: int, practice_id: int
) -> int:
    response = client.post(
        f"/v1/plans/{plan_id}/participations",
        json={"practice_id": practice_id, "network_tier": "preferred"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def tenants(client: TestClient, admin: dict[str, str], issue_key: IssueKey) -> Tenants:
    """Payers A and B with interleaved ids, so B's neighbours are A's records or nothing."""
    payer_a = create_payer(client, admin, "Alpha Health")["id"]
    payer_b = create_payer(client, admin, "Beta Insurance")["id"]
    plan_a1 = create_plan(client, admin, payer_a, "Alpha PPO", "commercial")["id"]
    plan_b1 = create_plan(client, admin, payer_b, "Beta PPO", "commercial")["id"]
    plan_b2 = create_plan(client, admin, payer_b, "Beta Advantage", "medicare_advantage")["id"]
    plan_a2 = create_plan(client, admin, payer_a, "Alpha HMO", "commercial")["id"]
    therapist = create_therapist(
        client,
        admin,
        therapist_body(
            1,
            practices=[
                {"location": location_body(), "accepting_new_patients": True},
                practice_at(WRIGLEYVILLE, accepting=True),
                practice_at(LOOP, accepting=False),
            ],
        ),
    )
    p1, p2, p3 = (p["id"] for p in therapist["practices"])
    part_a1 = _add_participation(client, admin, plan_a1, p1)
    part_b1 = _add_participation(client, admin, plan_b1, p1)
    part_b2 = _add_participation(client, admin, plan_b1, p2)
    part_a2 = _add_participation(client, admin, plan_a1, p2)
    part_b3 = _add_participation(client, admin, plan_b2, p1)
    return Tenants(
        payer_a=payer_a,
        payer_b=payer_b,
        plans_a=(plan_a1, plan_a2),
        plans_b=(plan_b1, plan_b2),
        participations_a=(part_a1, part_a2),
        participations_b=(part_b1, part_b2, part_b3),
        therapist_id=therapist["id"],
        practices=(p1, p2, p3),
        key_a=issue_key("payer", payer_a),
    )


def payer_checksum(engine: Engine, payer_id: int) -> str:
    """SHA-256 of a canonical dump of a payer, its plans and their participations."""
    with engine.connect() as connection:
        payer = connection.execute(select(Payer.__table__).where(Payer.id == payer_id))
        plans = connection.execute(
            select(Plan.__table__).where(Plan.payer_id == payer_id).order_by(Plan.id)
        )
        plan_rows = [dict(row) for row in plans.mappings()]
        participations = connection.execute(
            select(Participation.__table__)
            .where(Participation.plan_id.in_([row["id"] for row in plan_rows]))
            .order_by(Participation.id)
        )
        dump = {
            "payer": [dict(row) for row in payer.mappings()],
            "plans": plan_rows,
            "participations": [dict(row) for row in participations.mappings()],
        }
    assert dump["payer"], f"payer {payer_id} is gone"
    canonical = json.dumps(dump, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


# --- the checksum notices a change ------------------------------------------------------------


def test_payer_checksum_changes_when_an_admin_changes_the_payers_plan(
    client: TestClient, backend: Backend, admin: dict[str, str], tenants: Tenants
) -> None:
    before = payer_checksum(backend.engine, tenants.payer_b)
    response = client.patch(
        f"/v1/participations/{tenants.participations_b[0]}",
        json={"network_tier": "out-of-area"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert payer_checksum(backend.engine, tenants.payer_b) != before


# --- every write against B with A's key is refused -------------------------------------------


@dataclass(frozen=True)
class Attack:
    id: str
    method: str
    path: Callable[[Tenants], str]
    body: Callable[[Tenants], dict[str, Any] | bytes | None]


ATTACKS = [
    Attack("PATCH-payer-B", "PATCH", lambda t: f"/v1/payers/{t.payer_b}", lambda t: {"name": "X"}),
    Attack(
        "POST-plan-for-payer-B",
        "POST",
        lambda t: f"/v1/payers/{t.payer_b}/plans",
        lambda t: {"name": "Planted", "plan_type": "commercial"},
    ),
    Attack(
        "PATCH-plan-of-B",
        "PATCH",
        lambda t: f"/v1/plans/{t.plans_b[0]}",
        lambda t: {"name": "Renamed by A"},
    ),
    Attack("DELETE-plan-of-B", "DELETE", lambda t: f"/v1/plans/{t.plans_b[0]}", lambda t: None),
    Attack(
        "POST-participation-into-plan-of-B",
        "POST",
        lambda t: f"/v1/plans/{t.plans_b[1]}/participations",
        lambda t: {"practice_id": t.practices[2], "network_tier": "preferred"},
    ),
    Attack(
        "PATCH-participation-of-B",
        "PATCH",
        lambda t: f"/v1/participations/{t.participations_b[0]}",
        lambda t: {"network_tier": "excluded"},
    ),
    Attack(
        "DELETE-participation-of-B",
        "DELETE",
        lambda t: f"/v1/participations/{t.participations_b[0]}",
        lambda t: None,
    ),
    # Admin-only routes are closed to every payer key.
    Attack("POST-payer", "POST", lambda t: "/v1/payers", lambda t: {"name": "Gamma Health"}),
    Attack("POST-therapist", "POST", lambda t: "/v1/therapists", lambda t: therapist_body(9)),
    Attack(
        "PATCH-therapist",
        "PATCH",
        lambda t: f"/v1/therapists/{t.therapist_id}",
        lambda t: {"practices": []},
    ),
    Attack(
        "DELETE-therapist", "DELETE", lambda t: f"/v1/therapists/{t.therapist_id}", lambda t: None
    ),
    # A roster upload for B's network, and the national (admin) import.
    Attack(
        "POST-roster-import-for-payer-B",
        "POST",
        lambda t: f"/v1/payers/{t.payer_b}/imports?format=csv&mode=replace",
        lambda t: roster_csv([row(11, "loop")]),
    ),
    Attack(
        "POST-national-import",
        "POST",
        lambda t: "/v1/imports?format=csv",
        lambda t: roster_csv([row(12, "loop")]),
    ),
]


def _send(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | bytes | None,
    headers: dict[str, str],
) -> httpx.Response:
    if body is None:
        return client.request(method, path, headers=headers)
    if isinstance(body, bytes):  # an upload: the file is the body
        headers = headers | {"Content-Type": "text/csv"}
        return client.request(method, path, content=body, headers=headers)
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_payer_key_of_A_cannot_write_to_B_or_admin_routes(
    client: TestClient, backend: Backend, tenants: Tenants, attack: Attack
) -> None:
    before_b = payer_checksum(backend.engine, tenants.payer_b)
    therapist_before = client.get(f"/v1/therapists/{tenants.therapist_id}").json()
    payers_before = client.get("/v1/payers").json()
    jobs_before = _import_jobs(backend.engine)

    response = _send(
        client, attack.method, attack.path(tenants), attack.body(tenants), tenants.key_a
    )

    assert_problem(response, 403)
    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"
    assert client.get(f"/v1/therapists/{tenants.therapist_id}").json() == therapist_before
    assert client.get("/v1/payers").json() == payers_before
    assert _import_jobs(backend.engine) == jobs_before, "a refused upload was queued"


def _import_jobs(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(ImportJob)) or 0


# Fields that would move A's own records into B's tenancy are not part of any write body.
HIJACKS = [
    Attack(
        "PATCH-own-plan-with-payer_id-of-B",
        "PATCH",
        lambda t: f"/v1/plans/{t.plans_a[0]}",
        lambda t: {"payer_id": t.payer_b},
    ),
    Attack(
        "POST-own-plan-with-payer_id-of-B",
        "POST",
        lambda t: f"/v1/payers/{t.payer_a}/plans",
        lambda t: {"name": "Sneaky", "plan_type": "commercial", "payer_id": t.payer_b},
    ),
    Attack(
        "PATCH-own-participation-with-plan_id-of-B",
        "PATCH",
        lambda t: f"/v1/participations/{t.participations_a[0]}",
        lambda t: {"plan_id": t.plans_b[1]},
    ),
    Attack(
        "POST-own-participation-with-plan_id-of-B",
        "POST",
        lambda t: f"/v1/plans/{t.plans_a[1]}/participations",
        lambda t: {"practice_id": t.practices[2], "plan_id": t.plans_b[1]},
    ),
    Attack(
        "PATCH-own-payer-with-id-of-B",
        "PATCH",
        lambda t: f"/v1/payers/{t.payer_a}",
        lambda t: {"id": t.payer_b},
    ),
]


@pytest.mark.parametrize("attack", HIJACKS, ids=[a.id for a in HIJACKS])
def test_payer_key_cannot_move_its_records_into_another_payer(
    client: TestClient, backend: Backend, tenants: Tenants, attack: Attack
) -> None:
    before_a = payer_checksum(backend.engine, tenants.payer_a)
    before_b = payer_checksum(backend.engine, tenants.payer_b)
    response = _send(
        client, attack.method, attack.path(tenants), attack.body(tenants), tenants.key_a
    )
    assert_problem(response, 422)
    names = {error["field"] for error in response.json()["errors"]}
    assert names & {"payer_id", "plan_id", "id"}, response.text
    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"
    assert payer_checksum(backend.engine, tenants.payer_a) == before_a, "A's data changed"


# --- guessed ids around B's ------------------------------------------------------------------

OUT_OF_THE_WAY_IDS = (0, -1, 2**31 - 1)  # 2**31 - 1: the largest id an INTEGER column holds


@dataclass(frozen=True)
class GuessedWrite:
    id: str
    method: str
    path: str  # formatted with {id}
    kind: str  # payer | plan | participation
    body: Callable[[Tenants], dict[str, Any] | None]


GUESSED_WRITES = [
    GuessedWrite("PATCH-payer", "PATCH", "/v1/payers/{id}", "payer", lambda t: {"name": "X"}),
    GuessedWrite(
        "POST-plan-for-payer",
        "POST",
        "/v1/payers/{id}/plans",
        "payer",
        lambda t: {"name": "Guessed", "plan_type": "commercial"},
    ),
    GuessedWrite("PATCH-plan", "PATCH", "/v1/plans/{id}", "plan", lambda t: {"name": "Guessed"}),
    GuessedWrite("DELETE-plan", "DELETE", "/v1/plans/{id}", "plan", lambda t: None),
    GuessedWrite(
        "POST-participation-into-plan",
        "POST",
        "/v1/plans/{id}/participations",
        "plan",
        lambda t: {"practice_id": t.practices[2]},
    ),
    GuessedWrite(
        "PATCH-participation",
        "PATCH",
        "/v1/participations/{id}",
        "participation",
        lambda t: {"network_tier": "guessed"},
    ),
    GuessedWrite(
        "DELETE-participation", "DELETE", "/v1/participations/{id}", "participation", lambda t: None
    ),
]


def _ids_of_b(tenants: Tenants, kind: str) -> tuple[int, ...]:
    return {
        "payer": (tenants.payer_b,),
        "plan": tenants.plans_b,
        "participation": tenants.participations_b,
    }[kind]


def _owner(tenants: Tenants, kind: str, record_id: int) -> str | None:
    owner: Callable[[int], str | None] = {
        "payer": tenants.owner_of_payer,
        "plan": tenants.owner_of_plan,
        "participation": tenants.owner_of_participation,
    }[kind]
    return owner(record_id)


@pytest.mark.parametrize("write", GUESSED_WRITES, ids=[w.id for w in GUESSED_WRITES])
def test_payer_key_guessing_ids_around_B_gets_403_or_404_never_500(
    client: TestClient, backend: Backend, tenants: Tenants, write: GuessedWrite
) -> None:
    before_b = payer_checksum(backend.engine, tenants.payer_b)
    b_ids = _ids_of_b(tenants, write.kind)
    guesses = sorted({i + delta for i in b_ids for delta in (-1, 0, 1)} | set(OUT_OF_THE_WAY_IDS))
    tried = 0
    wrong: list[str] = []
    for guess in guesses:
        owner = _owner(tenants, write.kind, guess)
        if owner == "A":
            continue  # A's own records are A's to change
        # Ids below 1 can name no record: refused as invalid before any look-up.
        expected = 403 if owner == "B" else 404 if guess >= 1 else 422
        path = write.path.format(id=guess)
        response = _send(client, write.method, path, write.body(tenants), tenants.key_a)
        tried += 1
        if (
            response.status_code != expected
            or response.headers.get("content-type") != "application/problem+json"
        ):
            wrong.append(f"{write.method} {path}: {response.status_code}, expected {expected}")
    assert tried >= len(OUT_OF_THE_WAY_IDS) + len(b_ids)
    assert not wrong, "\n".join(wrong)
    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"


# Ids past what the INTEGER id columns hold: 2**31 overflows PostgreSQL's int4 (the query
# binds `%(pk_1)s::INTEGER`), 2**63 and beyond overflow SQLite's 64-bit integers.
HUGE_IDS = (2**31, 2**63 - 1, 2**63, 10**20)


@pytest.mark.parametrize("write", GUESSED_WRITES, ids=[w.id for w in GUESSED_WRITES])
def test_write_to_an_id_beyond_the_integer_column_range_is_a_client_error_not_500(
    client: TestClient, backend: Backend, tenants: Tenants, write: GuessedWrite
) -> None:
    before_b = payer_checksum(backend.engine, tenants.payer_b)
    wrong: list[str] = []
    for guess in HUGE_IDS:
        path = write.path.format(id=guess)
        response = _send(client, write.method, path, write.body(tenants), tenants.key_a)
        if response.status_code not in (404, 422):
            wrong.append(f"{write.method} {path}: {response.status_code}")
    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "path",
    ["/v1/payers/{id}", "/v1/plans/{id}", "/v1/plans/{id}/participations", "/v1/therapists/{id}"],
)
def test_read_of_an_id_beyond_the_integer_column_range_is_a_client_error_not_500(
    client: TestClient, path: str
) -> None:
    wrong = [
        f"GET {path.format(id=guess)}: {response.status_code}"
        for guess in HUGE_IDS
        if (response := client.get(path.format(id=guess))).status_code not in (404, 422)
    ]
    assert not wrong, "\n".join(wrong)


# --- A manages its own records ---------------------------------------------------------------


def test_payer_key_manages_its_own_plans_and_participations(
    client: TestClient, backend: Backend, tenants: Tenants
) -> None:
    key_a = tenants.key_a
    before_b = payer_checksum(backend.engine, tenants.payer_b)

    # The payer's own details.
    response = client.patch(
        f"/v1/payers/{tenants.payer_a}", json={"phone": "(312) 555-0199"}, headers=key_a
    )
    assert response.status_code == 200, response.text
    assert client.get(f"/v1/payers/{tenants.payer_a}").json()["phone"] == "3125550199"

    # Create a plan.
    response = client.post(
        f"/v1/payers/{tenants.payer_a}/plans",
        json={"name": "Alpha Medicaid", "plan_type": "medicaid"},
        headers=key_a,
    )
    assert response.status_code == 201, response.text
    plan_id = response.json()["id"]
    plan = client.get(f"/v1/plans/{plan_id}").json()
    assert plan["payer_id"] == tenants.payer_a
    assert plan["name"] == "Alpha Medicaid"

    # Update it.
    response = client.patch(
        f"/v1/plans/{plan_id}", json={"name": "Alpha Medicaid Managed Care"}, headers=key_a
    )
    assert response.status_code == 200, response.text
    assert client.get(f"/v1/plans/{plan_id}").json()["name"] == "Alpha Medicaid Managed Care"

    # Put a practice in its network.
    practice_id = tenants.practices[2]
    response = client.post(
        f"/v1/plans/{plan_id}/participations",
        json={"practice_id": practice_id, "network_tier": "standard"},
        headers=key_a,
    )
    assert response.status_code == 201, response.text
    participation_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/participations/{participation_id}"
    network = client.get(f"/v1/plans/{plan_id}/participations").json()
    assert [(p["id"], p["practice_id"]) for p in network["items"]] == [
        (participation_id, practice_id)
    ]
    therapist = client.get(f"/v1/therapists/{tenants.therapist_id}").json()
    practice = next(p for p in therapist["practices"] if p["id"] == practice_id)
    assert [p["plan"]["id"] for p in practice["participations"]] == [plan_id]

    # Change the network terms.
    response = client.patch(
        f"/v1/participations/{participation_id}",
        json={"network_tier": "preferred", "effective_from": "2026-01-01"},
        headers=key_a,
    )
    assert response.status_code == 200, response.text
    item = client.get(f"/v1/plans/{plan_id}/participations").json()["items"][0]
    assert item["network_tier"] == "preferred"
    assert item["effective_from"] == "2026-01-01"

    # Take the practice out of the network.
    response = client.delete(f"/v1/participations/{participation_id}", headers=key_a)
    assert response.status_code == 204, response.text
    network = client.get(f"/v1/plans/{plan_id}/participations").json()
    assert network["items"] == []
    assert network["total"] == 0

    # Delete the plan.
    response = client.delete(f"/v1/plans/{plan_id}", headers=key_a)
    assert response.status_code == 204, response.text
    assert client.get(f"/v1/plans/{plan_id}").status_code == 404

    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"


def test_payer_key_deleting_its_plan_removes_it_from_practices_but_not_Bs(
    client: TestClient, backend: Backend, tenants: Tenants
) -> None:
    before_b = payer_checksum(backend.engine, tenants.payer_b)
    plan_a1 = tenants.plans_a[0]
    response = client.delete(f"/v1/plans/{plan_a1}", headers=tenants.key_a)
    assert response.status_code == 204, response.text
    assert client.get(f"/v1/plans/{plan_a1}").status_code == 404
    therapist = client.get(f"/v1/therapists/{tenants.therapist_id}").json()
    plans_listed = {p["plan"]["id"] for pr in therapist["practices"] for p in pr["participations"]}
    assert plan_a1 not in plans_listed
    assert set(tenants.plans_b) <= plans_listed
    assert payer_checksum(backend.engine, tenants.payer_b) == before_b, "B's data changed"
