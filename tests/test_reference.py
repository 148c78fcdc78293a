"""Reference vocabularies that front ends draw their filter menus from."""

import csv

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.paths import DATA_DIR
from app.reference.seed import sync_reference_data


def test_specialties_are_every_pt_taxonomy_code(client: TestClient) -> None:
    with (DATA_DIR / "nucc_pt_taxonomy.csv").open(encoding="utf-8") as handle:
        expected = {row["code"] for row in csv.DictReader(handle)}
    response = client.get("/v1/specialties")
    assert response.status_code == 200
    codes = {item["code"]: item for item in response.json()}
    assert set(codes) == expected
    assert len(codes) == 12
    assert codes["2251N0400X"]["slug"] == "neurology"
    assert codes["2251N0400X"]["display_name"] == "Neurology Physical Therapist"
    assert "225200000X" in codes
    assert "225100000X" in codes


def test_conditions_cover_the_neuropathies(client: TestClient) -> None:
    conditions = {c["slug"]: c for c in client.get("/v1/conditions").json()}
    for slug in (
        "peripheral-neuropathy",
        "diabetic-neuropathy",
        "chemotherapy-induced-neuropathy",
        "stroke",
        "multiple-sclerosis",
        "parkinsons-disease",
        "balance-fall-risk",
        "vestibular-disorders",
    ):
        assert slug in conditions, slug
    assert conditions["diabetic-neuropathy"]["category"] == "neuropathy"


def test_services_certifications_and_languages(client: TestClient) -> None:
    services = {s["slug"] for s in client.get("/v1/services").json()}
    assert {"aerobic-conditioning", "flexibility", "strengthening", "balance-training",
            "aquatic-therapy", "gait-training"} <= services  # fmt: skip
    certifications = {c["code"]: c for c in client.get("/v1/certifications").json()}
    assert certifications["NCS"]["issuer"] == "ABPTS"
    languages = {lang["code"]: lang["name"] for lang in client.get("/v1/languages").json()}
    assert languages["es"] == "Spanish"
    assert len(languages) >= 180


def test_sync_is_idempotent(db: Session) -> None:
    assert sync_reference_data(db) == 0


def test_menus_show_the_languages_and_facility_types_in_use(
    client: TestClient, admin: dict[str, str]
) -> None:
    from tests.factories import create_therapist, therapist_body

    assert client.get("/v1/languages", params={"in_use": "true"}).json() == []
    create_therapist(client, admin, therapist_body(languages=["en", "vi"]))
    spoken = client.get("/v1/languages", params={"in_use": "true"}).json()
    assert [lang["code"] for lang in spoken] == ["en", "vi"]

    kinds = {k["value"]: k for k in client.get("/v1/facility-types").json()}
    assert set(kinds) == {"private_practice", "hospital_outpatient", "outpatient_clinic",
                          "home_health", "skilled_nursing", "aquatic_center"}  # fmt: skip
    assert kinds["private_practice"]["locations"] == 1
    assert kinds["home_health"]["locations"] == 0
    assert kinds["aquatic_center"]["label"] == "Aquatic therapy center"
