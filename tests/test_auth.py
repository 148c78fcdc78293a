"""API keys guard every write: missing, malformed, wrong or revoked keys are 401, the wrong
role is 403, reads are public, and the database never holds a usable key."""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.db import Base
from tests.conftest import VOCABULARY_TABLES, Backend, IssueKey
from tests.factories import (
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
class World:
    """One of everything a write route can touch, created with an admin key."""

    payer_id: int
    plan_id: int
    therapist_id: int
    practice_ids: tuple[int, int]
    participation_id: int


@pytest.fixture
def world(client: TestClient, admin: dict[str, str]) -> World:
    payer = create_payer(client, admin, "Lakeshore Health Plans")
    plan = create_plan(client, admin, payer["id"], "Lakeshore PPO", "commercial")
    body = therapist_body(
        1,
        practices=[
            {"location": location_body(), "accepting_new_patients": True},
            practice_at(WRIGLEYVILLE, accepting=False),
        ],
    )
    therapist = create_therapist(client, admin, body)
    practice_ids = tuple(p["id"] for p in therapist["practices"])
    assert len(practice_ids) == 2
    response = client.post(
        f"/v1/plans/{plan['id']}/participations",
        json={"practice_id": practice_ids[0], "network_tier": "preferred"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return World(
        payer_id=payer["id"],
        plan_id=plan["id"],
        therapist_id=therapist["id"],
        practice_ids=(practice_ids[0], practice_ids[1]),
        participation_id=response.json()["id"],
    )


@dataclass(frozen=True)
class WriteRoute:
    id: str
    method: str
    path: str  # formatted with the World's fields
    body: Callable[[World], dict[str, Any] | bytes | None]
    admin_only: bool

    def url(self, world: World) -> str:
        return self.path.format(**world.__dict__)

    def send(self, client: TestClient, world: World, headers: dict[str, str]) -> httpx.Response:
        body = self.body(world)
        if body is None:
            return client.request(self.method, self.url(world), headers=headers)
        if isinstance(body, bytes):  # an upload: the file is the body
            headers = headers | {"Content-Type": "text/csv"}
            return client.request(self.method, self.url(world), content=body, headers=headers)
        return client.request(self.method, self.url(world), json=body, headers=headers)


WRITE_ROUTES = [
    WriteRoute(
        "POST-therapists", "POST", "/v1/therapists", lambda w: therapist_body(2), admin_only=True
    ),
    WriteRoute(
        "PATCH-therapist",
        "PATCH",
        "/v1/therapists/{therapist_id}",
        lambda w: {"first_name": "Beatriz"},
        admin_only=True,
    ),
    WriteRoute("DELETE-therapist", "DELETE", "/v1/therapists/{therapist_id}", lambda w: None, True),
    WriteRoute("POST-payers", "POST", "/v1/payers", lambda w: {"name": "Prairie Care"}, True),
    WriteRoute(
        "PATCH-payer",
        "PATCH",
        "/v1/payers/{payer_id}",
        lambda w: {"phone": "(312) 555-0100"},
        admin_only=False,
    ),
    WriteRoute(
        "POST-payer-plans",
        "POST",
        "/v1/payers/{payer_id}/plans",
        lambda w: {"name": "Lakeshore HMO", "plan_type": "commercial"},
        admin_only=False,
    ),
    WriteRoute(
        "PATCH-plan",
        "PATCH",
        "/v1/plans/{plan_id}",
        lambda w: {"name": "Lakeshore PPO Plus"},
        False,
    ),
    WriteRoute("DELETE-plan", "DELETE", "/v1/plans/{plan_id}", lambda w: None, admin_only=False),
    WriteRoute(
        "POST-plan-participations",
        "POST",
        "/v1/plans/{plan_id}/participations",
        lambda w: {"practice_id": w.practice_ids[1], "network_tier": "standard"},
        admin_only=False,
    ),
    WriteRoute(
        "PATCH-participation",
        "PATCH",
        "/v1/participations/{participation_id}",
        lambda w: {"network_tier": "tier-2"},
        admin_only=False,
    ),
    WriteRoute(
        "DELETE-participation",
        "DELETE",
        "/v1/participations/{participation_id}",
        lambda w: None,
        admin_only=False,
    ),
    WriteRoute(
        "POST-payer-imports",
        "POST",
        "/v1/payers/{payer_id}/imports?format=csv&mode=merge",
        lambda w: roster_csv([row(7, "loop")]),
        admin_only=False,
    ),
    WriteRoute(
        "POST-imports",
        "POST",
        "/v1/imports?format=csv",
        lambda w: roster_csv([row(8, "loop")]),
        admin_only=True,
    ),
]
ADMIN_ONLY_ROUTES = [r for r in WRITE_ROUTES if r.admin_only]

route_params = pytest.mark.parametrize("route", WRITE_ROUTES, ids=[r.id for r in WRITE_ROUTES])
admin_only_params = pytest.mark.parametrize(
    "route", ADMIN_ONLY_ROUTES, ids=[r.id for r in ADMIN_ONLY_ROUTES]
)


def snapshot(engine: Engine) -> str:
    """Every record table (vocabularies and API keys aside) as canonical JSON."""
    dump: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in VOCABULARY_TABLES or table.name == "api_keys":
                continue
            rows = connection.execute(select(table).order_by(*table.primary_key.columns))
            dump[table.name] = [dict(row) for row in rows.mappings()]
    return json.dumps(dump, sort_keys=True, default=str)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert ":" in problem["type"], "type is not a URI"
    assert problem["title"]
    return problem


def assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def plaintext_of(header: dict[str, str]) -> str:
    return header["Authorization"].removeprefix("Bearer ")


def one_character_changed(key: str) -> str:
    """The same key with its last character replaced: still key-shaped, no longer valid."""
    last = "A" if key[-1] != "A" else "B"
    return key[:-1] + last


# --- the positive control: every route works with an admin key ------------------------------


@route_params
def test_admin_key_is_accepted_on_every_write_route(
    client: TestClient, admin: dict[str, str], world: World, route: WriteRoute
) -> None:
    response = route.send(client, world, admin)
    assert response.status_code in (200, 201, 202, 204), response.text
    if response.status_code == 202:  # an import job: let it finish before the cleanup
        _wait_for_job(client, response.headers["Location"], admin)


def _wait_for_job(client: TestClient, location: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while client.get(location, headers=headers).json()["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"{location} did not finish"
        time.sleep(0.05)


def test_every_write_route_is_in_these_tests(client: TestClient) -> None:
    """A new write route must join WRITE_ROUTES, and so every test of this file."""
    schema = client.app.openapi()  # type: ignore[attr-defined]
    writes = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    assert writes == {(r.method, r.path.split("?")[0]) for r in WRITE_ROUTES}


# --- 401 ------------------------------------------------------------------------------------


@route_params
def test_write_without_authorization_header_is_401_problem_with_bearer_challenge(
    client: TestClient, backend: Backend, world: World, route: WriteRoute
) -> None:
    before = snapshot(backend.engine)
    response = route.send(client, world, {})
    assert_unauthorized(response)
    assert snapshot(backend.engine) == before, "a refused write changed the database"


MALFORMED = {
    "bearer-without-key": lambda key: "Bearer",
    "bearer-with-only-spaces": lambda key: "Bearer    ",
    "basic-scheme": lambda key: "Basic abc",
    "basic-scheme-with-real-key": lambda key: f"Basic {key}",
    "bearer-not-a-key": lambda key: "Bearer not-a-key",
    "key-without-scheme": lambda key: key,
    "key-with-one-character-changed": lambda key: f"Bearer {one_character_changed(key)}",
}


@route_params
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_write_with_malformed_or_wrong_authorization_is_401(
    client: TestClient,
    backend: Backend,
    admin: dict[str, str],
    world: World,
    route: WriteRoute,
    kind: str,
) -> None:
    key = plaintext_of(admin)
    header = MALFORMED[kind](key)
    before = snapshot(backend.engine)
    response = route.send(client, world, {"Authorization": header})
    assert_unauthorized(response)
    assert snapshot(backend.engine) == before, "a refused write changed the database"


@route_params
def test_write_with_revoked_key_is_401(
    client: TestClient,
    backend: Backend,
    db: Session,
    issue_key: IssueKey,
    world: World,
    route: WriteRoute,
) -> None:
    header = issue_key("admin")
    key = plaintext_of(header)
    assert auth_service.authenticate(db, key) is not None  # a live key until revoked
    auth_service.revoke_key(db, prefix=key.split("_")[1])
    db.commit()
    before = snapshot(backend.engine)
    response = route.send(client, world, header)
    assert_unauthorized(response)
    assert snapshot(backend.engine) == before, "a revoked key still wrote"


def test_revoking_one_key_leaves_other_keys_working(
    client: TestClient, db: Session, issue_key: IssueKey
) -> None:
    revoked, kept = issue_key("admin"), issue_key("admin")
    auth_service.revoke_key(db, prefix=plaintext_of(revoked).split("_")[1])
    db.commit()
    assert client.post("/v1/payers", json={"name": "A"}, headers=revoked).status_code == 401
    assert client.post("/v1/payers", json={"name": "B"}, headers=kept).status_code == 201


# --- 403 ------------------------------------------------------------------------------------


@admin_only_params
def test_payer_key_on_admin_only_route_is_403(
    client: TestClient, backend: Backend, issue_key: IssueKey, world: World, route: WriteRoute
) -> None:
    payer_key = issue_key("payer", world.payer_id)
    before = snapshot(backend.engine)
    response = route.send(client, world, payer_key)
    assert_problem(response, 403)
    assert "www-authenticate" not in response.headers
    assert snapshot(backend.engine) == before, "a payer key wrote through an admin-only route"


# --- reads are public -----------------------------------------------------------------------

READ_PATHS = [
    "/v1/therapists",
    "/v1/therapists/{therapist_id}",
    "/v1/payers",
    "/v1/payers/{payer_id}",
    "/v1/plans",
    "/v1/plans/{plan_id}",
    "/v1/plans/{plan_id}/participations",
    "/v1/specialties",
    "/v1/conditions",
    "/v1/services",
    "/v1/certifications",
    "/v1/languages",
]


@pytest.mark.parametrize("path", READ_PATHS)
def test_read_route_needs_no_api_key(client: TestClient, world: World, path: str) -> None:
    response = client.get(path.format(**world.__dict__))
    assert response.status_code == 200, response.text
    assert response.json()


@pytest.mark.parametrize("path", ["/v1/payers/{payer_id}", "/v1/therapists/{therapist_id}"])
def test_read_route_ignores_a_bad_api_key(client: TestClient, world: World, path: str) -> None:
    response = client.get(path.format(**world.__dict__), headers={"Authorization": "Bearer x"})
    assert response.status_code == 200, response.text


# --- secrets --------------------------------------------------------------------------------


def test_database_stores_only_the_sha256_hash_of_a_key(
    client: TestClient, backend: Backend, db: Session
) -> None:
    with Session(backend.engine) as session, session.begin():
        created, plaintext = auth_service.create_key(session, role=Role.ADMIN, name="ops")
        key_id = created.id
    secret = plaintext.split("_", 2)[2]
    rows = db.execute(text("SELECT * FROM api_keys")).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    for column, value in row.items():
        assert plaintext not in str(value), f"api_keys.{column} holds the plaintext key"
        assert secret not in str(value), f"api_keys.{column} holds the key's secret part"
    # The stored hash is not itself a key: presenting it does not authenticate.
    assert auth_service.authenticate(db, row["key_hash"]) is None
    assert auth_service.authenticate(db, plaintext) is not None
    assert key_id == row["id"]


def test_error_responses_never_echo_the_presented_key(
    client: TestClient, backend: Backend, issue_key: IssueKey, world: World
) -> None:
    admin_header = issue_key("admin")
    key = plaintext_of(admin_header)
    wrong = one_character_changed(key)
    payer_header = issue_key("payer", world.payer_id)
    with Session(backend.engine) as session:
        auth_service.revoke_key(session, prefix=key.split("_")[1])
        session.commit()
    attempts = [
        (admin_header, key),  # revoked
        ({"Authorization": f"Bearer {wrong}"}, wrong),  # one character off
        ({"Authorization": f"Basic {wrong}"}, wrong),  # wrong scheme
        (payer_header, plaintext_of(payer_header)),  # 403 on an admin route
    ]
    for header, presented in attempts:
        response = client.post("/v1/payers", json={"name": "Echo"}, headers=header)
        assert response.status_code in (401, 403), response.text
        secret = presented.split("_", 2)[2]
        assert secret not in response.text
        for name, value in response.headers.items():
            assert secret not in value, f"response header {name} echoes the key"
