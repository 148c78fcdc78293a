"""`SearchQueryDep`: query parameters → a validated `SearchQuery`, or 422 naming the field."""

import math
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import ReadSessionDep
from app.errors import FieldError, InvalidInput
from app.fields import MAX_ID, has_control_characters
from app.geocoding import city_centroid, zip_centroid
from app.locations.models import FacilityType
from app.networks.models import Payer, Plan
from app.reference.vocabulary import Vocabulary, vocabulary
from app.search import geo
from app.search.schemas import (
    MAX_BBOX_KM2,
    MAX_RADIUS,
    MAX_VALUES_PER_FILTER,
    Facet,
    Origin,
    OriginKind,
    SearchQuery,
    Sort,
    Unit,
)
from app.therapists.models import Gender
from app.therapists.names import name_key

MAX_Q_LENGTH = 100


def _error(name: str, message: str) -> InvalidInput:
    return InvalidInput.at(["query", name], message)


def _resolve_origin(
    *,
    lat: float | None,
    lon: float | None,
    zip_code: str | None,
    city: str | None,
    state: str | None,
    bbox: str | None,
) -> Origin:
    given = [
        name
        for name, present in (
            ("lat/lon", lat is not None or lon is not None),
            ("zip", zip_code is not None),
            ("city/state", city is not None or state is not None),
            ("bbox", bbox is not None),
        )
        if present
    ]
    if len(given) != 1:
        raise InvalidInput(
            [
                FieldError(
                    loc=["query"],
                    field="origin",
                    message="give exactly one origin: lat+lon, zip, city+state or bbox"
                    + (f" (got {', '.join(given)})" if given else ""),
                    type="origin",
                )
            ]
        )
    if given == ["lat/lon"]:
        if lat is None or lon is None:
            raise _error("lon" if lon is None else "lat", "lat and lon go together")
        return Origin(lat, lon, OriginKind.COORDINATES)
    if zip_code is not None:
        code = zip_code.strip()
        if not (len(code) in (5, 10) and code[:5].isdigit() and (len(code) == 5 or (
            code[5] == "-" and code[6:].isdigit()))):  # fmt: skip
            raise _error("zip", "ZIP must be 5 digits or ZIP+4 (12345 or 12345-6789)")
        place = zip_centroid(code)
        if place is None:
            raise _error("zip", f"unknown ZIP code {code[:5]}")
        return Origin(place.latitude, place.longitude, OriginKind.ZIP_CENTROID, place.zip)
    if city is not None or state is not None:
        if not city or not city.strip():
            raise _error("city", "city and state go together")
        if not state or not state.strip():
            raise _error("state", "city and state go together")
        found = city_centroid(city, state)
        if found is None:
            raise _error(
                "city", f"unknown city {city.strip()!r} in state {state.strip().upper()!r}"
            )
        label = f"{found.city}, {found.state}"
        return Origin(found.latitude, found.longitude, OriginKind.CITY_CENTROID, label)
    return _parse_bbox(bbox or "")


def _parse_bbox(text: str) -> Origin:
    parts = text.split(",")
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise _error("bbox", "bbox is west,south,east,north in degrees") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise _error("bbox", "bbox values must be finite numbers")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise _error("bbox", "bbox longitudes must be within [-180, 180]")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise _error("bbox", "bbox latitudes must be within [-90, 90]")
    if south > north:
        raise _error("bbox", "bbox south is above north")
    if west == east:
        raise _error("bbox", "bbox west and east are equal")
    width = east - west if west < east else east + 360 - west
    area = (
        geo.EARTH_RADIUS_KM**2
        * math.radians(width)
        * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    )
    if area > MAX_BBOX_KM2:
        raise _error(
            "bbox",
            f"bbox covers {area:,.0f} km²; at most {MAX_BBOX_KM2:,} km² "
            "(about 1,600 by 1,600 km): zoom in",
        )
    center_lon = west + width / 2
    if center_lon > 180:
        center_lon -= 360
    return Origin(
        (south + north) / 2, center_lon, OriginKind.BBOX_CENTER, bbox=(west, south, east, north)
    )


def _split(values: list[str] | None, name: str) -> list[str]:
    """Repeated parameters, each of which may also hold a comma-separated list."""
    items = [item.strip() for value in values or [] for item in value.split(",") if item.strip()]
    if any(has_control_characters(item) for item in items):
        raise _error(name, "values must not contain control characters")
    if len(items) > MAX_VALUES_PER_FILTER:
        raise _error(name, f"at most {MAX_VALUES_PER_FILTER} values")
    return list(dict.fromkeys(items))


def _ids(values: list[str], name: str) -> list[int]:
    ids = []
    for value in values:
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            raise _error(name, f"{value!r} is not an id")
        ids.append(int(value))
    return ids


def get_search_query(
    session: ReadSessionDep,
    lat: Annotated[
        float | None,
        Query(
            ge=-90,
            le=90,
            allow_inf_nan=False,
            description="Origin latitude (with lon)",
            examples=[41.9229],
        ),
    ] = None,
    lon: Annotated[
        float | None,
        Query(
            ge=-180,
            le=180,
            allow_inf_nan=False,
            description="Origin longitude (with lat)",
            examples=[-87.6483],
        ),
    ] = None,
    zip: Annotated[
        str | None,
        Query(max_length=10, description="Origin: a ZIP code's centroid", examples=["60614"]),
    ] = None,
    city: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Origin: a city (with state); St./Saint spellings match",
            examples=["Chicago"],
        ),
    ] = None,
    state: Annotated[
        str | None, Query(max_length=2, description="State of `city`", examples=["IL"])
    ] = None,
    bbox: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Origin: a map viewport `west,south,east,north`; west > east crosses "
            "the antimeridian. Distances are measured from its centre. At most "
            f"{MAX_BBOX_KM2:,} km².",
            examples=["-87.75,41.85,-87.55,41.99"],
        ),
    ] = None,
    radius: Annotated[
        float,
        Query(
            gt=0,
            allow_inf_nan=False,
            description="Search radius (max 250 mi / 400 km); ignored with bbox",
            examples=[10],
        ),
    ] = 25,
    unit: Annotated[
        Unit, Query(description="Unit of radius and distances", examples=["mi"])
    ] = Unit.MI,
    specialty: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="NUCC code or slug (`neurology` = 2251N0400X); `225100000X` matches "
            "every physical therapist. Repeat for OR.",
            examples=[["neurology"]],
        ),
    ] = None,
    condition: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="Condition slug (see /v1/conditions)",
            examples=[["diabetic-neuropathy"]],
        ),
    ] = None,
    certification: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="Board certification, e.g. NCS",
            examples=[["NCS"]],
        ),
    ] = None,
    plan_id: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="In this plan's network at the practice (see /v1/plans)",
            examples=[["1"]],
        ),
    ] = None,
    payer_id: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="In any plan of this payer",
            examples=[["1"]],
        ),
    ] = None,
    accepting_new_patients: Annotated[
        bool | None,
        Query(
            description="The practice accepts new patients (true) or not (false); one whose "
            "flag is not known matches neither",
            examples=[True],
        ),
    ] = None,
    telehealth: Annotated[
        bool | None,
        Query(
            description="The practice offers telehealth (true) or not (false); one whose "
            "flag is not known matches neither",
            examples=[True],
        ),
    ] = None,
    language: Annotated[
        list[str] | None,
        Query(max_length=MAX_VALUES_PER_FILTER, description="ISO 639-1 code", examples=[["es"]]),
    ] = None,
    gender: Annotated[
        list[Gender] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER, description="Therapist gender", examples=[["female"]]
        ),
    ] = None,
    facility_type: Annotated[
        list[FacilityType] | None,
        Query(
            max_length=MAX_VALUES_PER_FILTER,
            description="Kind of facility",
            examples=[["private_practice"]],
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_Q_LENGTH,
            description="Name search: each word is a prefix of the first or last name; "
            "case and accents do not matter",
            examples=["garc"],
        ),
    ] = None,
    sort: Annotated[
        Sort, Query(description="`distance` (nearest first) or `name`", examples=["distance"])
    ] = Sort.DISTANCE,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size", examples=[20])] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            description="`next_cursor` of the previous page",
            examples=["eyJ2IjoxLCJzIjoiZGlzdGFuY2UifQ"],
        ),
    ] = None,
    facets: Annotated[
        list[str] | None,
        Query(
            max_length=len(Facet),
            description="Fields to count matches by (comma-separated or repeated): "
            + ", ".join(f.value for f in Facet),
            examples=[["specialty,plan_id"]],
        ),
    ] = None,
) -> SearchQuery:
    origin = _resolve_origin(lat=lat, lon=lon, zip_code=zip, city=city, state=state, bbox=bbox)
    if origin.bbox is None and radius > MAX_RADIUS[unit]:
        raise _error("radius", f"radius is at most {MAX_RADIUS[unit]:g} {unit.value}")

    known = vocabulary(session)
    specialties = _resolve_specialties(known, _split(specialty, "specialty"))
    conditions = _listed(known.conditions, [v.lower() for v in _split(condition, "condition")],
                         "condition")  # fmt: skip
    certifications = _listed(
        known.certifications, [v.upper() for v in _split(certification, "certification")],
        "certification",
    )  # fmt: skip
    languages = _listed(known.languages, [v.lower() for v in _split(language, "language")],
                        "language")  # fmt: skip
    plan_ids = _known(session, Plan.id, _ids(_split(plan_id, "plan_id"), "plan_id"), "plan_id")
    payer_ids = _known(session, Payer.id, _ids(_split(payer_id, "payer_id"), "payer_id"),
                       "payer_id")  # fmt: skip
    if q and has_control_characters(q):
        raise _error("q", "q must not contain control characters")
    words = tuple(w for w in name_key(q).split(" ") if w) if q else ()
    facet_names = _split(facets, "facets")
    unknown = [name for name in facet_names if name not in Facet.__members__.values()]
    if unknown:
        raise _error("facets", f"unknown facet {unknown[0]!r}; one of: "
                     + ", ".join(f.value for f in Facet))  # fmt: skip
    return SearchQuery(
        origin=origin,
        radius=None if origin.bbox else radius,
        unit=unit,
        specialties=tuple(specialties),
        conditions=tuple(conditions),
        certifications=tuple(certifications),
        plan_ids=tuple(plan_ids),
        payer_ids=tuple(payer_ids),
        accepting_new_patients=accepting_new_patients,
        telehealth=telehealth,
        languages=tuple(languages),
        genders=tuple(dict.fromkeys(gender or [])),
        facility_types=tuple(dict.fromkeys(facility_type or [])),
        q=words,
        sort=sort,
        limit=limit,
        cursor=cursor,
        facets=tuple(Facet(name) for name in facet_names),
    )


Value = TypeVar("Value", str, int)


def _known(session: Session, column: Any, values: list[Value], name: str) -> list[Value]:
    if not values:
        return []
    found = set(session.scalars(select(column).where(column.in_(values))))
    for value in values:
        if value not in found:
            raise _error(name, f"unknown {name.replace('_', ' ')} {value!r}")
    return values


def _listed(known: Mapping[str, str], values: list[str], name: str) -> list[str]:
    for value in values:
        if value not in known:
            raise _error(name, f"unknown {name} {value!r}")
    return values


def _resolve_specialties(known: Vocabulary, values: list[str]) -> list[str]:
    """Codes or slugs → NUCC codes."""
    codes = []
    for value in values:
        code = known.specialty_codes.get(value.upper()) or known.specialty_codes.get(value.lower())
        if code is None:
            raise _error("specialty", f"unknown specialty {value!r}; see /v1/specialties")
        codes.append(code)
    return list(dict.fromkeys(codes))


SearchQueryDep = Annotated[SearchQuery, Depends(get_search_query)]
