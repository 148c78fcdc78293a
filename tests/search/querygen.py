"""Random search queries over a loaded directory (deterministic for a given seed)."""

import random
from dataclasses import dataclass

from app.geocoding import city_centroid, zip_centroid
from tests.search.oracle import FACETS, Directory, Params, PracticeRow, TherapistRow

FACILITY_TYPES = (
    "private_practice", "hospital_outpatient", "outpatient_clinic", "home_health",
    "skilled_nursing", "aquatic_center",
)  # fmt: skip
RADII = {"mi": (0.5, 2, 5, 10, 15, 25, 25, 40, 60, 60, 100, 150, 250),
         "km": (1, 5, 10, 20, 40, 80, 80, 150, 250, 400)}  # fmt: skip
# Viewports that cross the antimeridian (west > east), asymmetric about the data there.
ANTIMERIDIAN_BOXES = ("179.5,50,-179.6,54", "170,45,-170,60", "179.92,51.8,-179.9,52.1")


@dataclass(frozen=True)
class Query:
    params: Params
    all_pages: bool


def _fmt(value: float) -> str:
    return f"{value:.5f}".rstrip("0").rstrip(".")


def _origin(rng: random.Random, anchor: PracticeRow) -> tuple[Params, bool]:
    """(origin params, is_bbox), near the anchor practice."""
    kind = rng.choices(["coords", "zip", "city", "bbox"], weights=[35, 20, 15, 30])[0]
    if kind == "zip" and zip_centroid(anchor.zip[:5]) is not None:
        code = anchor.zip[:5] if rng.random() < 0.85 else anchor.zip[:5] + "-1234"
        return [("zip", code)], False
    if kind == "city" and city_centroid(anchor.city, anchor.state) is not None:
        city = anchor.city
        if rng.random() < 0.3:
            city = city.lower()
        state = anchor.state if rng.random() < 0.8 else anchor.state.lower()
        return [("city", city), ("state", state)], False
    if kind == "bbox":
        if rng.random() < 0.06:
            return [("bbox", rng.choice(ANTIMERIDIAN_BOXES))], True
        if rng.random() < 0.05:
            return [
                ("bbox", rng.choice(("-95,35,-80,47", "-80,37,-70,45", "-125,32,-114,42")))
            ], True
        width, height = rng.uniform(0.05, 12), rng.uniform(0.05, 8)
        cx = anchor.longitude + rng.uniform(-width / 2, width / 2)
        cy = anchor.latitude + rng.uniform(-height / 2, height / 2)
        south, north = max(-90.0, cy - height / 2), min(90.0, cy + height / 2)
        west, east = cx - width / 2, cx + width / 2
        if west < -180:
            west += 360
        if east > 180:
            east -= 360
        return [("bbox", ",".join(_fmt(v) for v in (west, south, east, north)))], True
    jitter = 0.02 if rng.random() < 0.5 else 0.3
    lat = max(-90.0, min(90.0, anchor.latitude + rng.uniform(-jitter, jitter)))
    lon = anchor.longitude + rng.uniform(-jitter, jitter)
    lon = lon - 360 if lon > 180 else lon + 360 if lon < -180 else lon
    return [("lat", _fmt(lat)), ("lon", _fmt(lon))], False


def random_query(rng: random.Random, directory: Directory, edge_ids: list[int]) -> Query:
    if rng.random() < 0.08 and edge_ids:
        anchor_therapist = directory.therapists[rng.choice(edge_ids)]
    else:
        anchor_therapist = directory.therapists[rng.choice(directory.practices).therapist_id]
    anchor_practices = directory.by_therapist[anchor_therapist.id]
    anchor = rng.choice(anchor_practices)
    params, is_bbox = _origin(rng, anchor)
    if not is_bbox:
        unit = rng.choice(["mi", "mi", "km"])
        radius: float = rng.choice(RADII[unit])
        if rng.random() < 0.25:
            radius = round(rng.uniform(0.2, 250 if unit == "mi" else 400), 3)
        if unit == "km":
            params.append(("unit", "km"))
        elif rng.random() < 0.2:
            params.append(("unit", "mi"))
        params.append(("radius", _fmt(radius)))
    elif rng.random() < 0.2:
        params.append(("unit", "km"))

    if rng.random() < 0.75:
        source, source_practice = anchor_therapist, anchor
    else:
        source = rng.choice(list(directory.therapists.values()))
        source_practice = rng.choice(directory.by_therapist[source.id])
    filters = rng.sample(
        ["specialty", "condition", "certification", "language", "gender", "plan_id",
         "payer_id", "accepting_new_patients", "telehealth", "facility_type", "q"],
        k=rng.choices([0, 1, 2, 3, 4], weights=[20, 30, 25, 15, 10])[0],
    )  # fmt: skip
    for name in filters:
        params += _filter(rng, directory, name, source, source_practice)

    if rng.random() < 0.3:
        params.append(("sort", "name"))
    elif rng.random() < 0.15:
        params.append(("sort", "distance"))
    all_pages = rng.random() < 0.35
    if all_pages or rng.random() < 0.5:
        params.append(("limit", str(rng.choice([1, 2, 3, 5, 7, 10, 25, 50, 100]))))
    if rng.random() < 0.4:
        chosen = rng.sample(FACETS, k=rng.randint(1, len(FACETS)))
        if rng.random() < 0.5:
            params.append(("facets", ",".join(chosen)))
        else:
            params += [("facets", name) for name in chosen]
    return Query(params, all_pages)


def _filter(
    rng: random.Random,
    directory: Directory,
    name: str,
    therapist: TherapistRow,
    practice: PracticeRow,
) -> Params:
    all_therapists = list(directory.therapists.values())

    def some(values: list[str], spare: list[str]) -> list[str]:
        chosen = [rng.choice(values)] if values else []
        if rng.random() < 0.3 and spare:
            chosen.append(rng.choice(spare))
        return list(dict.fromkeys(chosen))

    if name == "specialty":
        codes = sorted(therapist.specialties)
        spare = sorted(directory.specialty_slugs)
        values = some(codes, spare) or [rng.choice(spare)]
        if rng.random() < 0.15:
            values = ["225100000X"]
        out = []
        for code in values:
            if rng.random() < 0.4:
                out.append(directory.specialty_slugs[code])
            else:
                out.append(code if rng.random() < 0.8 else code.lower())
        return [("specialty", value) for value in out]
    if name == "condition":
        spare = sorted({c for t in all_therapists for c in t.conditions})
        return [("condition", v) for v in some(sorted(therapist.conditions), spare) or spare[:1]]
    if name == "certification":
        spare = sorted({c for t in all_therapists for c in t.certifications})
        return [("certification", v) for v in some(sorted(therapist.certifications), spare)]
    if name == "language":
        spare = sorted({c for t in all_therapists for c in t.languages})
        return [("language", v) for v in some(sorted(therapist.languages), spare)]
    if name == "gender":
        mine = [therapist.gender] if therapist.gender else []
        return [("gender", v) for v in some(mine, ["female", "male", "other"])]
    if name == "plan_id":
        mine = sorted({m.plan_id for m in practice.memberships})
        return [("plan_id", str(v)) for v in some(mine, sorted(directory.plans))] or [
            ("plan_id", str(min(directory.plans)))
        ]
    if name == "payer_id":
        mine = sorted({m.payer_id for m in practice.memberships})
        payers = sorted(set(directory.plans.values()))
        return [("payer_id", str(v)) for v in some(mine, payers)]
    if name == "accepting_new_patients":
        value = practice.accepting_new_patients if rng.random() < 0.8 else rng.random() < 0.5
        return [("accepting_new_patients", "true" if value else "false")]
    if name == "telehealth":
        value = practice.telehealth if rng.random() < 0.8 else rng.random() < 0.5
        return [("telehealth", "true" if value else "false")]
    if name == "facility_type":
        mine = [practice.facility_type] if practice.facility_type else []
        return [("facility_type", v) for v in some(mine, list(FACILITY_TYPES))]
    # q: prefixes of the first and/or last name, as people type them
    words = []
    for raw in ([therapist.last_name] if rng.random() < 0.6 else [therapist.first_name]) + (
        [therapist.last_name] if rng.random() < 0.2 else []
    ):
        words.append(raw[: rng.randint(1, max(1, min(6, len(raw))))])
    text = " ".join(words)
    return [("q", text.upper() if rng.random() < 0.2 else text)]
