import csv

import pytest

from app.imports.specialties import nucc_code_for
from app.paths import DATA_DIR


def taxonomy_rows() -> list[dict[str, str]]:
    with (DATA_DIR / "nucc_pt_taxonomy.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Physical Therapy", "225100000X"),
        ("Physical Therapist", "225100000X"),
        ("PT", "225100000X"),
        ("Neurologic Physical Therapy", "2251N0400X"),
        ("Neurological Physical Therapy", "2251N0400X"),
        ("Neuro PT", "2251N0400X"),
        ("Orthopaedic Physical Therapy", "2251X0800X"),
        ("Orthopedic PT", "2251X0800X"),
        ("Sports Physical Therapy", "2251S0007X"),
        ("Geriatric Physical Therapy", "2251G0304X"),
        ("Pediatric Physical Therapy", "2251P0200X"),
        ("Paediatric Physiotherapy", "2251P0200X"),
        ("Cardiovascular & Pulmonary Physical Therapy", "2251C2600X"),
        ("Hand Physical Therapist", "2251H1200X"),
        ("Physical Therapy Assistant", "225200000X"),
        ("Physical Therapist Assistant", "225200000X"),
        ("PTA", "225200000X"),
    ],
)
def test_common_names_map_to_their_code(text: str, code: str) -> None:
    assert nucc_code_for(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("  NEURO   pt ", "2251N0400X"),
        ("physical therapist - neurology", "2251N0400X"),
        ("Physical Therapist/Neurology", "2251N0400X"),
        ("Physical Therapist, Electrophysiology, Clinical", "2251E1300X"),
        ("Physical Therapist \u2013 Sports", "2251S0007X"),
        ("Pédiatric Physical Therapy", "2251P0200X"),
        ("2251n0400x", "2251N0400X"),
        (" 225200000X ", "225200000X"),
        ("physical-therapist", "225100000X"),
        ("physical-therapy-assistant", "225200000X"),
    ],
)
def test_matching_ignores_case_punctuation_and_accents(text: str, code: str) -> None:
    assert nucc_code_for(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # What is in brackets counts when it says more, and is left out when it
        # only abbreviates.
        ("Physical Therapy (PT)", "225100000X"),
        ("Physical Therapist Assistant (PTA)", "225200000X"),
        ("Physical Therapy (Neurology)", "2251N0400X"),
        ("Neurology (PT)", "2251N0400X"),
        ("Physical Therapist (Assistant)", "225200000X"),
        # A directory's inverted order.
        ("Therapist, Physical", "225100000X"),
        ("Therapist, Physical (PT)", "225100000X"),
        # Medicare's name for the specialty (code 65).
        ("Physical Therapist in Private Practice", "225100000X"),
    ],
)
def test_spellings_of_real_directories_map(text: str, code: str) -> None:
    assert nucc_code_for(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Longer names that say physical therapy: a field the taxonomy lacks, a
        # setting or a second profession leaves the profession itself.
        ("Physical Therapy/Occupational Therapy", "225100000X"),
        ("PT/OT", "225100000X"),
        ("Women's Health Physical Therapy", "225100000X"),
        ("Outpatient Physical Therapy", "225100000X"),
        ("Physical Therapy - Aquatic", "225100000X"),
        ("PT - Physical Therapist", "225100000X"),
        ("Physical Therapist - Vestibular", "225100000X"),
        ("Rehabilitation - Physical Therapy", "225100000X"),
        # A field the taxonomy has, alone, counts; two fields are the profession.
        ("Orthopedic Physical Therapist - OCS", "2251X0800X"),
        ("Geriatric and Neurologic Physical Therapy", "225100000X"),
        ("Physical Therapy Asst", "225200000X"),
        ("PT Assistant", "225200000X"),
    ],
)
def test_longer_names_that_say_physical_therapy_map(text: str, code: str) -> None:
    assert nucc_code_for(text) == code


@pytest.mark.parametrize("row", taxonomy_rows(), ids=lambda row: row["code"])
def test_every_display_name_and_code_of_the_taxonomy_maps(row: dict[str, str]) -> None:
    assert nucc_code_for(row["display_name"]) == row["code"]
    assert nucc_code_for(row["code"]) == row["code"]
    specialization = row["specialization"]
    if specialization:
        assert nucc_code_for(f"{row['classification']}, {specialization}") == row["code"]
        assert nucc_code_for(f"{row['slug']} PT") == row["code"]


@pytest.mark.parametrize(
    "text",
    [
        "Neurology",
        "neurology",  # the neurology PT slug alone: a physician's specialty as often
        "Dermatology",
        "Oncology",
        "Ophthalmology",
        "Sports Medicine",
        "Pediatrics",
        "Geriatrics",
        "Hand",
        "Orthopedic Surgery",
        "Physical Medicine & Rehabilitation",
        "Occupational Therapy",
        "Occupational Therapist Assistant",
        "Chiropractor",
        "Therapist, Occupational",
        "Physical Therapy Aide",  # not licensed
        "Physical Therapy Technician",
        "Speech Therapy",
        "Massage Therapist",
        "Internal Medicine (IM)",
        "207R00000X",
        "",
        "   ",
    ],
)
def test_other_specialties_map_to_nothing(text: str) -> None:
    assert nucc_code_for(text) is None
