"""Request bodies and API shortcuts for arranging test data."""

import copy
from typing import Any

from fastapi.testclient import TestClient

from app.fields import npi_check_digit


def make_npi(seed: int) -> str:
    """A valid NPI derived from a small number."""
    first_nine = f"1{seed:08d}"
    return first_nine + str(npi_check_digit(first_nine))


def location_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Lakeview Neuro Rehab",
        "address_line1": "2300 N Lincoln Ave",
        "address_line2": "Suite 200",
        "city": "Chicago",
        "state": "IL",
        "zip": "60614",
        "latitude": 41.9245,
        "longitude": -87.6468,
        "phone": "(312) 555-0147",
        "fax": "312.555.0148",
        "facility_type": "private_practice",
        "accessibility": ["wheelchair_accessible"],
    }
    body.update(overrides)
    return body


# Other Chicago clinics, for records with several practice sites.
WRIGLEYVILLE = {
    "name": "Wrigleyville Balance Clinic", "address_line1": "3600 N Clark St",
    "address_line2": None, "zip": "60613", "latitude": 41.9484, "longitude": -87.6553,
}  # fmt: skip
LOOP = {
    "name": "Loop Neuro PT", "address_line1": "55 E Monroe St",
    "address_line2": None, "zip": "60603", "latitude": 41.8807, "longitude": -87.6252,
}  # fmt: skip


def practice_at(site: dict[str, Any], *, accepting: bool) -> dict[str, Any]:
    """A practice body at one of the clinics above."""
    return {"location": location_body(**site), "accepting_new_patients": accepting}


def therapist_body(npi_seed: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "npi": make_npi(npi_seed),
        "first_name": "Ana",
        "last_name": "García",
        "credentials": ["PT", "DPT"],
        "gender": "female",
        "specialties": [{"code": "2251N0400X", "primary": True}, {"code": "2251G0304X"}],
        "certifications": ["NCS"],
        "conditions": ["diabetic-neuropathy", "peripheral-neuropathy"],
        "services": ["balance-training", "strengthening"],
        "languages": ["en", "es"],
        "practices": [
            {
                "location": location_body(),
                "accepting_new_patients": True,
                "telehealth": True,
                "participations": [],
            }
        ],
    }
    body.update(copy.deepcopy(overrides))
    return body


def create_payer(
    client: TestClient, headers: dict[str, str], name: str = "Medicare"
) -> dict[str, Any]:
    response = client.post("/v1/payers", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def create_plan(
    client: TestClient,
    headers: dict[str, str],
    payer_id: int,
    name: str = "Medicare Part B",
    plan_type: str = "medicare_part_b",
    hios_plan_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "plan_type": plan_type}
    if hios_plan_id:
        body["hios_plan_id"] = hios_plan_id
    response = client.post(f"/v1/payers/{payer_id}/plans", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def create_therapist(
    client: TestClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = client.post("/v1/therapists", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
