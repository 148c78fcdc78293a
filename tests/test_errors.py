"""Every error is an RFC 9457 problem: unknown routes, wrong methods, bad JSON, unknown fields,
non-finite numbers and oversized bodies, and none of them writes anything."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.main import create_app
from app.networks.models import Payer
from app.therapists.models import Therapist
from tests.factories import create_payer, create_plan, location_body, therapist_body

Backend = Any  # tests.conftest.Backend: .name, .url, .engine
JSON = {"content-type": "application/json"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert isinstance(problem["type"], str)
    assert ":" in problem["type"], "type is not a URI"
    assert isinstance(problem["title"], str)
    assert problem["title"]
    return problem


def error_fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


def count(db: Session, model: type) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nope"), ("GET", "/"), ("POST", "/v2/therapists"), ("DELETE", "/v1/x/1")],
)
def test_unknown_route_is_404_problem(client: TestClient, method: str, path: str) -> None:
    problem = assert_problem(client.request(method, path), 404)
    assert problem["title"] == "Not Found"


def test_unknown_record_is_404_problem_naming_it(client: TestClient) -> None:
    problem = assert_problem(client.get("/v1/therapists/424242"), 404)
    assert "424242" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/v1/payers"), ("PUT", "/v1/specialties"), ("POST", "/healthz")],
)
def test_wrong_method_is_405_problem(
    client: TestClient, admin: dict[str, str], method: str, path: str
) -> None:
    problem = assert_problem(client.request(method, path, headers=admin), 405)
    assert problem["title"] == "Method Not Allowed"
    assert client.request(method, path, headers=admin).headers["allow"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/payers", "GET, HEAD, POST"),
        ("/v1/payers/1", "GET, HEAD, PATCH"),
        ("/v1/plans/1", "DELETE, GET, HEAD, PATCH"),
        ("/v1/therapists", "GET, HEAD, POST"),
        ("/v1/payers/1/imports", "POST"),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    client: TestClient, path: str, allowed: str
) -> None:
    # Each method of a path is a route of its own: the router alone named only the
    # first route's methods (`OPTIONS /v1/payers` said `Allow: GET`).
    response = client.request("OPTIONS", path)
    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


# --- query parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/search/therapists?zip=60614&radius=5&radius=50", "radius"),
        ("/v1/search/therapists?lat=41.9&lon=-87.6&lat=42.0", "lat"),
        ("/v1/search/therapists?zip=60614&specialty=neurology&sort=name&sort=distance", "sort"),
        ("/v1/plans?payer_id=1&payer_id=2", "payer_id"),
        ("/v1/payers/1/imports?format=csv&format=qhp", "format"),
    ],
)
def test_a_single_valued_parameter_given_twice_is_422_naming_it(
    client: TestClient, admin: dict[str, str], path: str, name: str
) -> None:
    method = "POST" if "/imports" in path else "GET"
    problem = assert_problem(client.request(method, path, headers=admin, content=b""), 422)
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["query", name], "repeated")]
    assert "more than once" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("path", "name", "hint"),
    [
        ("/v1/search/therapists?zip=60614&accepting_new_patient=true", "accepting_new_patient",
         "did you mean 'accepting_new_patients'?"),
        ("/v1/search/therapists?zip=60614&specialities=neurology", "specialities",
         "did you mean 'specialty'?"),
        ("/v1/specialties?page=2", "page", "it takes none"),
        ("/v1/imports?format=nppes&mode=replace", "mode", "it takes dry_run, format, on_error"),
    ],
)  # fmt: skip
def test_an_unknown_parameter_is_422_naming_it_with_a_hint(
    client: TestClient, admin: dict[str, str], path: str, name: str, hint: str
) -> None:
    method = "POST" if "/imports" in path else "GET"
    problem = assert_problem(client.request(method, path, headers=admin, content=b""), 422)
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["query", name], "extra_forbidden")
    ]
    assert problem["errors"][0]["message"].endswith(hint)


def test_every_unknown_or_repeated_parameter_is_named_at_once(client: TestClient) -> None:
    query = "zip=60614&zip=60601&radius=5&radius=9&radius=2&x=1"
    response = client.get(f"/v1/search/therapists?{query}")
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["x", "zip", "radius"]


def test_unknown_parameters_are_named_ten_at_most_and_a_nameless_one_is_told(
    client: TestClient,
) -> None:
    query = "zip=60614&" + "&".join(f"x{n}=1" for n in range(500))
    problem = assert_problem(client.get(f"/v1/search/therapists?{query}"), 422)
    assert [e["field"] for e in problem["errors"]] == [f"x{n}" for n in range(10)] + ["query"]
    assert problem["errors"][-1]["message"] == (
        "and 490 more parameters this operation does not take"
    )
    assert len(json.dumps(problem)) < 10_000
    nameless = assert_problem(client.get("/v1/search/therapists?zip=60614&=x"), 422)
    assert [(e["loc"], e["message"]) for e in nameless["errors"]] == [
        (["query"], "a parameter has no name (as in `&=value`)")
    ]
    shouted = assert_problem(client.get("/v1/search/therapists?ZIP=60614"), 422)
    assert shouted["errors"][0]["message"].endswith("did you mean 'zip'?")


def test_probes_and_scrapers_are_not_refused_for_added_parameters(client: TestClient) -> None:
    for path in ("/healthz?probe=lb", "/readyz?t=1", "/metrics?format=text", "/openapi.json?v=2"):
        assert client.get(path).status_code == 200, path


def test_a_list_parameter_may_be_repeated(client: TestClient, admin: dict[str, str]) -> None:
    for seed, languages in ((1, ["es"]), (2, ["pl"]), (3, ["de"])):
        body = therapist_body(seed, languages=languages)
        assert client.post("/v1/therapists", json=body, headers=admin).status_code == 201
    response = client.get(
        "/v1/search/therapists",
        params=[("zip", "60614"), ("language", "es"), ("language", "pl")],
    )
    assert response.status_code == 200, response.text
    assert sorted(item["languages"][0] for item in response.json()["items"]) == ["es", "pl"]


# --- request bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"name": ', b"{'name': 'X'}", b'{"name": "X",}', b"\xff\xfe"])
def test_malformed_json_body_is_422_problem_naming_the_body(
    client: TestClient, db: Session, admin: dict[str, str], body: bytes
) -> None:
    response = client.post("/v1/payers", content=body, headers={**admin, **JSON})
    problem = assert_problem(response, 422)
    assert problem["errors"], problem
    assert problem["errors"][0]["loc"][0] == "body"
    assert count(db, Payer) == 0


@pytest.mark.parametrize(
    "body", [b"fy\xff^;", b"\x17\xe9", b"[" * 100_000, b'{"name": ' + b"[" * 5_000]
)
def test_body_the_json_decoder_cannot_read_is_422_naming_the_body_not_400(
    client: TestClient, db: Session, admin: dict[str, str], body: bytes
) -> None:
    # Bytes that are not UTF-8, or nesting too deep to decode, made the framework
    # answer an undocumented 400 (found by Schemathesis).
    response = client.post("/v1/payers", content=body, headers={**admin, **JSON})
    problem = assert_problem(response, 422)
    assert error_fields(problem) == ["body"]
    assert count(db, Payer) == 0


def test_422_errors_have_loc_field_message_and_type(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        "/v1/payers", json={"name": "", "phone": "12", "website": "nope"}, headers=admin
    )
    problem = assert_problem(response, 422)
    assert len(problem["errors"]) == 3
    for error in problem["errors"]:
        assert set(error) == {"loc", "field", "message", "type"}, error
        assert isinstance(error["loc"], list)
        assert error["loc"][0] == "body"
        assert isinstance(error["field"], str)
        assert error["field"]
        assert isinstance(error["message"], str)
        assert error["message"]
        assert isinstance(error["type"], str)
        assert error["type"]
    assert sorted(error_fields(problem)) == ["name", "phone", "website"]


def test_nested_422_field_is_a_dotted_path(client: TestClient, admin: dict[str, str]) -> None:
    body = therapist_body(practices=[{"location": location_body(zip="6061")}])
    problem = assert_problem(client.post("/v1/therapists", json=body, headers=admin), 422)
    errors = {e["field"]: e for e in problem["errors"]}
    assert "practices[0].location.zip" in errors, problem
    assert errors["practices[0].location.zip"]["loc"] == ["body", "practices", 0, "location", "zip"]
    # The one required field left out is reported too.
    assert "practices[0].accepting_new_patients" in errors


# --- mass assignment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"id": 99}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_unknown_field_in_payer_body_is_422_naming_it(
    client: TestClient, db: Session, admin: dict[str, str], extra: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/payers", json={"name": "Lakeshore", **extra}, headers=admin)
    problem = assert_problem(response, 422)
    assert field in error_fields(problem)
    assert count(db, Payer) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (therapist_body(source="nppes"), "source"),
        (therapist_body(id=7), "id"),
        (
            therapist_body(
                practices=[
                    {
                        "location": location_body(geocode_precision="provided"),
                        "accepting_new_patients": True,
                    }
                ]
            ),
            "practices[0].location.geocode_precision",
        ),
        (
            therapist_body(
                practices=[{"location": location_body(), "accepting_new_patients": True, "id": 3}]
            ),
            "practices[0].id",
        ),
    ],
    ids=["source", "id", "nested-location-field", "nested-practice-id"],
)
def test_unknown_field_in_therapist_body_is_422_naming_it(
    client: TestClient, db: Session, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(client.post("/v1/therapists", json=body, headers=admin), 422)
    assert field in error_fields(problem), problem
    assert count(db, Therapist) == 0


def test_unknown_field_in_patch_bodies_is_422_and_changes_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    payer = create_payer(client, admin, "Lakeshore")
    plan = create_plan(client, admin, payer["id"], "Lakeshore PPO", "commercial")
    cases = [
        (f"/v1/payers/{payer['id']}", {"name": "Renamed", "updated_at": "2020-01-01T00:00:00Z"}),
        (f"/v1/plans/{plan['id']}", {"name": "Renamed", "created_at": "2020-01-01T00:00:00Z"}),
    ]
    for path, body in cases:
        problem = assert_problem(client.patch(path, json=body, headers=admin), 422)
        unknown = next(name for name in body if name != "name")
        assert unknown in error_fields(problem), problem
    assert client.get(f"/v1/payers/{payer['id']}").json()["name"] == "Lakeshore"
    assert client.get(f"/v1/plans/{plan['id']}").json()["name"] == "Lakeshore PPO"


# --- non-finite numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("coordinate", ["latitude", "longitude"])
def test_non_finite_coordinate_is_422_naming_it_not_500(
    client: TestClient, db: Session, admin: dict[str, str], literal: str, coordinate: str
) -> None:
    placeholder = 12345.678
    body = therapist_body()
    body["practices"][0]["location"][coordinate] = placeholder
    raw = json.dumps(body).replace(f'"{coordinate}": {placeholder}', f'"{coordinate}": {literal}')
    assert literal in raw
    response = client.post("/v1/therapists", content=raw, headers={**admin, **JSON})
    problem = assert_problem(response, 422)
    assert f"practices[0].location.{coordinate}" in error_fields(problem), problem
    assert count(db, Therapist) == 0


def test_non_finite_number_in_a_patch_is_422_not_500(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = therapist_body()
    created = client.post("/v1/therapists", json=body, headers=admin)
    assert created.status_code == 201, created.text
    raw = json.dumps({"practices": body["practices"]}).replace("41.9245", "NaN")
    response = client.patch(
        f"/v1/therapists/{created.json()['id']}", content=raw, headers={**admin, **JSON}
    )
    problem = assert_problem(response, 422)
    assert "practices[0].location.latitude" in error_fields(problem)
    after = client.get(f"/v1/therapists/{created.json()['id']}").json()
    assert after["practices"][0]["location"]["latitude"] == pytest.approx(41.9245)


# --- body size limit --------------------------------------------------------------------------

LIMIT = 2000


@pytest.fixture
def limited_client(backend: Backend, client: TestClient) -> Iterator[TestClient]:
    """The app with a 2,000-byte body limit, on the same (clean) database as `client`."""
    application = create_app(Settings(database_url=backend.url, max_body_bytes=LIMIT))
    with TestClient(application, raise_server_exceptions=False) as limited:
        yield limited


def padded_payer(size: int, name: str = "Lakeshore") -> bytes:
    """A valid payer body of exactly `size` bytes (JSON whitespace as padding)."""
    head, tail = b'{"name": "' + name.encode() + b'"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


def chunks(body: bytes, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_body_at_the_limit_is_accepted(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    response = limited_client.post(
        "/v1/payers", content=padded_payer(LIMIT), headers={**admin, **JSON}
    )
    assert response.status_code == 201, response.text
    assert count(db, Payer) == 1


def test_chunked_body_under_the_limit_is_accepted(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    request = limited_client.build_request(
        "POST", "/v1/payers", content=chunks(padded_payer(LIMIT - 100)), headers={**admin, **JSON}
    )
    assert "content-length" not in request.headers
    response = limited_client.send(request)
    assert response.status_code == 201, response.text
    assert count(db, Payer) == 1


def test_body_over_the_limit_with_content_length_is_413_problem_and_writes_nothing(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    body = padded_payer(LIMIT + 1)
    request = limited_client.build_request(
        "POST", "/v1/payers", content=body, headers={**admin, **JSON}
    )
    assert request.headers["content-length"] == str(LIMIT + 1)
    problem = assert_problem(limited_client.send(request), 413)
    assert str(LIMIT) in problem["detail"]
    assert count(db, Payer) == 0


def test_therapist_body_over_the_limit_is_413_problem_and_writes_nothing(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    body = therapist_body(
        practices=[
            {
                "location": location_body(address_line1=f"{n} N Lincoln Ave"),
                "accepting_new_patients": True,
            }
            for n in range(100, 120)
        ]
    )
    assert len(json.dumps(body)) > LIMIT
    assert_problem(limited_client.post("/v1/therapists", json=body, headers=admin), 413)
    assert count(db, Therapist) == 0


def test_chunked_body_over_the_limit_is_413_problem_and_writes_nothing(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    request = limited_client.build_request(
        "POST", "/v1/payers", content=chunks(padded_payer(LIMIT * 3)), headers={**admin, **JSON}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = limited_client.send(request)
    assert count(db, Payer) == 0
    assert_problem(response, 413)


def test_chunked_body_over_the_limit_is_refused_and_writes_nothing(
    limited_client: TestClient, db: Session, admin: dict[str, str]
) -> None:
    """Whatever the status, an oversized chunked body never becomes a record or a 5xx."""
    request = limited_client.build_request(
        "POST", "/v1/payers", content=chunks(padded_payer(LIMIT * 3)), headers={**admin, **JSON}
    )
    response = limited_client.send(request)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert count(db, Payer) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/imports?payer_id=15535022441344196935680",
        "/v1/imports?payer_id=2147483648",
        "/v1/plans?payer_id=2147483648",
    ],
)
def test_ids_beyond_32_bits_in_a_query_are_422_naming_them_not_500(
    client: TestClient, admin: dict[str, str], path: str
) -> None:
    # SQLite cannot bind an integer over 64 bits: the import list answered 500 (found
    # by Schemathesis).
    problem = assert_problem(client.get(path, headers=admin), 422)
    assert error_fields(problem) == ["payer_id"]
