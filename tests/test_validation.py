"""Every write is validated; each rule has a row here, and a bad row writes nothing."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.fields import is_valid_npi, npi_check_digit
from app.therapists.models import Therapist
from tests.factories import create_payer, location_body, therapist_body


def test_npi_luhn_check_over_80840_prefix() -> None:
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567890")
    assert npi_check_digit("123456789") == 3
    assert not is_valid_npi("123456789")
    assert not is_valid_npi("12345678931")
    assert not is_valid_npi("\uff11" * 10)  # full-width digits are not ASCII digits


def _location(**changes: Any) -> dict[str, Any]:
    return {"practices": [{"location": location_body(**changes), "accepting_new_patients": True}]}


# (case, changes to a valid body, field named in the 422)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("npi check digit", {"npi": "1234567890"}, "npi"),
    ("npi too short", {"npi": "123456789"}, "npi"),
    ("npi letters", {"npi": "12345678ab"}, "npi"),
    ("unknown NUCC code", {"specialties": [{"code": "2251Z9999X"}]}, "specialties[0]"),
    ("non-PT NUCC code", {"specialties": [{"code": "207Q00000X"}]}, "specialties[0].code"),
    ("malformed NUCC code", {"specialties": [{"code": "neurology"}]}, "specialties[0].code"),
    ("no specialty", {"specialties": []}, "specialties"),
    (
        "two primaries",
        {
            "specialties": [
                {"code": "2251N0400X", "primary": True},
                {"code": "2251G0304X", "primary": True},
            ]
        },
        "specialties",
    ),
    ("unknown condition", {"conditions": ["diabetic-neuropathy", "gout"]}, "conditions[1]"),
    ("unknown language", {"languages": ["en", "xx"]}, "languages[1]"),
    ("unknown certification", {"certifications": ["ZZZ"]}, "certifications[0]"),
    ("unknown service", {"services": ["yoga-flying"]}, "services[0]"),
    ("bad gender", {"gender": "unknown"}, "gender"),
    ("unknown state", _location(state="ZZ"), "practices[0].location.state"),
    ("zip letters", _location(zip="6061A"), "practices[0].location.zip"),
    ("zip too long", _location(zip="606141"), "practices[0].location.zip"),
    ("latitude over 90", _location(latitude=90.5), "practices[0].location.latitude"),
    ("latitude under -90", _location(latitude=-91), "practices[0].location.latitude"),
    ("longitude over 180", _location(longitude=180.01), "practices[0].location.longitude"),
    ("longitude under -180", _location(longitude=-181), "practices[0].location.longitude"),
    ("latitude as text", _location(latitude="north"), "practices[0].location.latitude"),
    ("only one coordinate", _location(longitude=None), "practices[0].location"),
    ("phone too short", _location(phone="555-0147"), "practices[0].location.phone"),
    ("phone letters", _location(phone="312-555-CALL"), "practices[0].location.phone"),
    ("phone area code 0", _location(phone="012-555-0147"), "practices[0].location.phone"),
    ("fax too long", _location(fax="312 555 01477"), "practices[0].location.fax"),
    ("bad facility type", _location(facility_type="spa"), "practices[0].location.facility_type"),
    ("unknown field", {"is_admin": True}, "is_admin"),
    ("unknown nested field", _location(owner="x"), "practices[0].location.owner"),
    ("empty first name", {"first_name": "  "}, "first_name"),
    (
        "unknown plan",
        {
            "practices": [
                {
                    "location": location_body(),
                    "accepting_new_patients": True,
                    "participations": [{"plan_id": 424242}],
                }
            ]
        },
        "practices[0].participations[0].plan_id",
    ),
    # Lax parsing took these for false, 1970-01-01 and 1970-01-01T00:00:00Z (found by
    # Schemathesis: the schema says boolean, date and date-time).
    (
        "accepting flag as a number",
        {"practices": [{"location": location_body(), "accepting_new_patients": 0}]},
        "practices[0].accepting_new_patients",
    ),
    (
        "home visits as text",
        {
            "practices": [
                {"location": location_body(), "accepting_new_patients": True, "home_visits": "no"}
            ]
        },
        "practices[0].home_visits",
    ),
    (
        "primary as a number",
        {"specialties": [{"code": "2251N0400X", "primary": 1}]},
        "specialties[0].primary",
    ),
    *(
        (
            f"{name} as {value!r}",
            {
                "practices": [
                    {
                        "location": location_body(),
                        "accepting_new_patients": True,
                        "participations": [{"plan_id": 1, name: value}],
                    }
                ]
            },
            f"practices[0].participations[0].{name}",
        )
        for name in ("verified_at", "effective_from", "effective_to")
        for value in (0, "0", 1700000000)
    ),
    (
        "missing accepting flag",
        {"practices": [{"location": location_body()}]},
        "practices[0].accepting_new_patients",
    ),
    (
        "same address twice",
        {
            "practices": [
                {"location": location_body(), "accepting_new_patients": True},
                {
                    "location": location_body(address_line1="2300 N. Lincoln Avenue"),
                    "accepting_new_patients": False,
                },
            ]
        },
        "practices[1].location",
    ),
]


@pytest.mark.parametrize(("case", "changes", "field"), INVALID, ids=[row[0] for row in INVALID])
def test_invalid_therapist_is_422_naming_the_field_and_writes_nothing(
    client: TestClient,
    admin: dict[str, str],
    db: Session,
    case: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/v1/therapists", json=therapist_body(**changes), headers=admin)
    assert response.status_code == 422, f"{case}: {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    fields = [error["field"] for error in problem["errors"]]
    assert field in fields, f"{case}: expected {field} in {fields}"
    assert db.scalar(select(func.count()).select_from(Therapist)) == 0


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("(312) 555-0147", "3125550147"),
        ("+1 312 555 0147", "3125550147"),
        ("1-312-555-0147", "3125550147"),
        ("312.555.0147", "3125550147"),
    ],
)
def test_phone_numbers_are_normalised_to_ten_digits(
    client: TestClient, admin: dict[str, str], raw: str, stored: str
) -> None:
    response = client.post("/v1/therapists", json=therapist_body(**_location(phone=raw)),
                           headers=admin)  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["practices"][0]["location"]["phone"] == stored


def test_accepted_spellings_are_normalised(client: TestClient, admin: dict[str, str]) -> None:
    body = therapist_body(
        specialties=[{"code": "2251n0400x"}],
        languages=["EN"],
        certifications=["ncs"],
        **_location(state="il", zip="606142301"),
    )
    response = client.post("/v1/therapists", json=body, headers=admin)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["specialties"] == [
        {"code": "2251N0400X", "slug": "neurology",
         "display_name": "Neurology Physical Therapist", "primary": True}
    ]  # fmt: skip
    assert record["languages"] == [{"code": "en", "name": "English"}]
    assert record["certifications"][0]["code"] == "NCS"
    location = record["practices"][0]["location"]
    assert (location["state"], location["zip"]) == ("IL", "60614-2301")


def test_boundary_coordinates_are_accepted(client: TestClient, admin: dict[str, str]) -> None:
    body = therapist_body(**_location(latitude=-90, longitude=180))
    response = client.post("/v1/therapists", json=body, headers=admin)
    assert response.status_code == 201, response.text
    location = response.json()["practices"][0]["location"]
    assert (location["latitude"], location["longitude"]) == (-90, 180)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates_are_refused(
    client: TestClient, admin: dict[str, str], literal: str
) -> None:
    import json

    text = json.dumps(therapist_body()).replace("41.9245", literal)
    response = client.post(
        "/v1/therapists",
        content=text,
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["errors"]]
    assert "practices[0].location.latitude" in fields


# Plans: the HIOS id and the Marketplace rule.
PLAN_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("marketplace without HIOS", {"name": "Silver", "plan_type": "marketplace"}, "hios_plan_id"),
    ("HIOS 13 chars", {"name": "S", "plan_type": "marketplace", "hios_plan_id": "12345IL001000"},
     "hios_plan_id"),
    ("HIOS bad state", {"name": "S", "plan_type": "marketplace", "hios_plan_id": "12345ZZ0010001"},
     "hios_plan_id"),
    ("unknown plan type", {"name": "S", "plan_type": "vision"}, "plan_type"),
    ("empty name", {"name": "", "plan_type": "commercial"}, "name"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), PLAN_INVALID, ids=[r[0] for r in PLAN_INVALID])
def test_invalid_plan_is_422_naming_the_field(
    client: TestClient, admin: dict[str, str], case: str, body: dict[str, Any], field: str
) -> None:
    payer = create_payer(client, admin)
    response = client.post(f"/v1/payers/{payer['id']}/plans", json=body, headers=admin)
    assert response.status_code == 422, case
    assert field in [error["field"] for error in response.json()["errors"]]
    assert client.get("/v1/plans").json() == []


def test_control_characters_in_text_are_refused_not_stored(
    client: TestClient, admin: dict[str, str], db: Session
) -> None:
    """PostgreSQL cannot store NUL or an unpaired surrogate; no backend should accept
    them (or other controls)."""
    for changes, field in (
        ({"first_name": "A\u0000na"}, "first_name"),
        ({"last_name": "Garc\ud800a"}, "last_name"),  # an unpaired surrogate (a JSON escape)
        ({"credentials": ["PT\u0007"]}, "credentials[0]"),
        (_location(address_line1="1 Main\u0000 St"), "practices[0].location.address_line1"),
    ):
        # json.dumps escapes what UTF-8 cannot carry (the surrogate) as a client would.
        body = json.dumps(therapist_body(**changes))
        json_headers = admin | {"Content-Type": "application/json"}
        response = client.post("/v1/therapists", content=body, headers=json_headers)
        assert response.status_code == 422, response.text
        assert field in [error["field"] for error in response.json()["errors"]]
    assert db.scalar(select(func.count()).select_from(Therapist)) == 0
