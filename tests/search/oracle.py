"""An independent, brute-force model of `GET /v1/search/therapists`, and the checks.

Nothing here imports app.search: the directory is read back into plain Python
structures, distances are our own haversine, and the filters follow the written
contract. `check_search` runs a query through the API (every page) and compares
ids, order, totals, distances, practices, facets and paging with the model.
"""

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.geocoding import city_centroid, zip_centroid
from app.locations.models import Location
from app.networks.models import Participation, Plan
from app.reference.models import Specialty
from app.therapists.models import (
    Practice,
    Therapist,
    TherapistSpecialty,
    therapist_certifications,
    therapist_conditions,
    therapist_languages,
)
from app.therapists.names import name_key

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344
RADIUS_SLACK_KM = 1e-9  # the contract's float-noise allowance on the radius test
NEAR_TIE_KM = 1e-9  # two different places this close may come in either order
GENERAL_PT = "225100000X"
SEARCH = "/v1/search/therapists"
FACETS = (
    "specialty",
    "condition",
    "plan_id",
    "language",
    "gender",
    "facility_type",
    "accepting_new_patients",
    "telehealth",
)
THERAPIST_FACETS = {"specialty", "condition", "language", "gender"}

Params = list[tuple[str, str]]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


# The search directory is built once per session with participations that start and
# end "today"; a session that runs past midnight UTC must keep asking about that day
# (tests/search/conftest.py pins the service's clock to it as well).
SESSION_DAY = datetime.now(UTC).date()


def today_utc() -> date:
    return SESSION_DAY


# --- the directory, as plain data ---------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    plan_id: int
    payer_id: int
    effective_from: date | None
    effective_to: date | None

    def current(self, today: date) -> bool:
        return (self.effective_from is None or self.effective_from <= today) and (
            self.effective_to is None or self.effective_to >= today
        )


@dataclass(frozen=True)
class PracticeRow:
    id: int
    therapist_id: int
    location_id: int
    latitude: float
    longitude: float
    zip: str
    city: str
    state: str
    facility_type: str | None
    accepting_new_patients: bool
    telehealth: bool
    memberships: tuple[Membership, ...]


@dataclass(frozen=True)
class TherapistRow:
    id: int
    npi: str
    first_name: str
    last_name: str
    first_key: str
    last_key: str
    gender: str | None
    specialties: frozenset[str]
    conditions: frozenset[str]
    certifications: frozenset[str]
    languages: frozenset[str]


@dataclass
class Directory:
    therapists: dict[int, TherapistRow]
    practices: list[PracticeRow]
    specialty_slugs: dict[str, str]  # code -> slug
    plans: dict[int, int]  # plan id -> payer id
    by_therapist: dict[int, list[PracticeRow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped: dict[int, list[PracticeRow]] = defaultdict(list)
        for practice in self.practices:
            grouped[practice.therapist_id].append(practice)
        self.by_therapist = dict(grouped)


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def read_directory(engine: Engine) -> Directory:
    """Every therapist, practice and participation, read back with SQLAlchemy."""
    with Session(engine) as session:
        links: dict[str, dict[int, set[str]]] = {}
        for name, table, column in (
            ("conditions", therapist_conditions, "condition_slug"),
            ("certifications", therapist_certifications, "certification_code"),
            ("languages", therapist_languages, "language_code"),
        ):
            values: dict[int, set[str]] = defaultdict(set)
            for therapist_id, value in session.execute(
                select(table.c.therapist_id, table.c[column])
            ):
                values[therapist_id].add(value)
            links[name] = values
        specialties: dict[int, set[str]] = defaultdict(set)
        for therapist_id, code in session.execute(
            select(TherapistSpecialty.therapist_id, TherapistSpecialty.specialty_code)
        ):
            specialties[therapist_id].add(code)
        therapists = {
            row.id: TherapistRow(
                id=row.id,
                npi=row.npi,
                first_name=row.first_name,
                last_name=row.last_name,
                first_key=row.first_name_key,
                last_key=row.last_name_key,
                gender=_plain(row.gender),
                specialties=frozenset(specialties[row.id]),
                conditions=frozenset(links["conditions"][row.id]),
                certifications=frozenset(links["certifications"][row.id]),
                languages=frozenset(links["languages"][row.id]),
            )
            for row in session.execute(
                select(
                    Therapist.id,
                    Therapist.npi,
                    Therapist.first_name,
                    Therapist.last_name,
                    Therapist.first_name_key,
                    Therapist.last_name_key,
                    Therapist.gender,
                )
            )
        }
        plans = {
            plan_id: payer_id
            for plan_id, payer_id in session.execute(select(Plan.id, Plan.payer_id))
        }
        memberships: dict[int, list[Membership]] = defaultdict(list)
        for row in session.execute(
            select(
                Participation.practice_id,
                Participation.plan_id,
                Participation.effective_from,
                Participation.effective_to,
            ).order_by(Participation.id)
        ):
            memberships[row.practice_id].append(
                Membership(row.plan_id, plans[row.plan_id], row.effective_from, row.effective_to)
            )
        practices = [
            PracticeRow(
                id=row.id,
                therapist_id=row.therapist_id,
                location_id=row.location_id,
                latitude=row.latitude,
                longitude=row.longitude,
                zip=row.zip,
                city=row.city,
                state=row.state,
                facility_type=_plain(row.facility_type),
                accepting_new_patients=row.accepting_new_patients,
                telehealth=row.telehealth,
                memberships=tuple(memberships[row.id]),
            )
            for row in session.execute(
                select(
                    Practice.id,
                    Practice.therapist_id,
                    Practice.location_id,
                    Location.latitude,
                    Location.longitude,
                    Location.zip,
                    Location.city,
                    Location.state,
                    Location.facility_type,
                    Practice.accepting_new_patients,
                    Practice.telehealth,
                )
                .join(Location, Location.id == Practice.location_id)
                .order_by(Practice.id)
            )
        ]
        slugs = {
            code: slug for code, slug in session.execute(select(Specialty.code, Specialty.slug))
        }
    return Directory(therapists, practices, slugs, plans)


# --- the query, as the contract reads it --------------------------------------------------


@dataclass
class OracleQuery:
    latitude: float
    longitude: float
    resolved_from: str
    label: str | None
    unit: str
    radius: float | None  # None for a bbox
    bbox: tuple[float, float, float, float] | None
    specialties: list[str] = field(default_factory=list)  # NUCC codes
    conditions: set[str] = field(default_factory=set)
    certifications: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)
    genders: list[str] = field(default_factory=list)
    plan_ids: list[int] = field(default_factory=list)
    payer_ids: set[int] = field(default_factory=set)
    accepting_new_patients: bool | None = None
    telehealth: bool | None = None
    facility_types: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    sort: str = "distance"
    limit: int = 20
    facets: list[str] = field(default_factory=list)

    @property
    def factor(self) -> float:
        return KM_PER_MILE if self.unit == "mi" else 1.0

    @property
    def radius_km(self) -> float | None:
        return None if self.radius is None else self.radius * self.factor


def _values(params: Params, name: str) -> list[str]:
    out: list[str] = []
    for key, value in params:
        if key == name:
            out += [item.strip() for item in value.split(",") if item.strip()]
    return list(dict.fromkeys(out))


def _one(params: Params, name: str) -> str | None:
    found = [value for key, value in params if key == name]
    return found[-1] if found else None


def _flag(text: str | None) -> bool | None:
    return None if text is None else text.lower() in ("true", "1", "yes", "on")


def parse_query(directory: Directory, params: Params) -> OracleQuery:
    unit = _one(params, "unit") or "mi"
    radius: float | None = float(_one(params, "radius") or 25)
    bbox = None
    label = None
    if _one(params, "lat") is not None:
        lat, lon = float(_one(params, "lat") or 0), float(_one(params, "lon") or 0)
        kind = "coordinates"
    elif (code := _one(params, "zip")) is not None:
        place = zip_centroid(code)
        assert place is not None, code
        lat, lon, kind, label = place.latitude, place.longitude, "zip_centroid", place.zip
    elif (city := _one(params, "city")) is not None:
        found = city_centroid(city, _one(params, "state") or "")
        assert found is not None, city
        lat, lon, kind = found.latitude, found.longitude, "city_centroid"
        label = f"{found.city}, {found.state}"
    else:
        west, south, east, north = (float(v) for v in (_one(params, "bbox") or "").split(","))
        bbox = (west, south, east, north)
        span = east - west if west < east else east - west + 360
        lon = west + span / 2
        if lon > 180:
            lon -= 360
        lat, kind, radius = (south + north) / 2, "bbox_center", None
    by_slug = {slug: code for code, slug in directory.specialty_slugs.items()}
    specialties = []
    for value in _values(params, "specialty"):
        code = value.upper() if value.upper() in directory.specialty_slugs else by_slug[value]
        specialties.append(code)
    words = [w for w in name_key(_one(params, "q") or "").split(" ") if w]
    return OracleQuery(
        latitude=lat,
        longitude=lon,
        resolved_from=kind,
        label=label,
        unit=unit,
        radius=radius,
        bbox=bbox,
        specialties=list(dict.fromkeys(specialties)),
        conditions={v.lower() for v in _values(params, "condition")},
        certifications={v.upper() for v in _values(params, "certification")},
        languages={v.lower() for v in _values(params, "language")},
        genders=_values(params, "gender"),
        plan_ids=[int(v) for v in _values(params, "plan_id")],
        payer_ids={int(v) for v in _values(params, "payer_id")},
        accepting_new_patients=_flag(_one(params, "accepting_new_patients")),
        telehealth=_flag(_one(params, "telehealth")),
        facility_types=_values(params, "facility_type"),
        words=words,
        sort=_one(params, "sort") or "distance",
        limit=int(_one(params, "limit") or 20),
        facets=_values(params, "facets"),
    )


# --- evaluation ---------------------------------------------------------------------------


@dataclass
class Hit:
    therapist_id: int
    distance_km: float
    practices: list[tuple[float, int]]  # every qualifying practice, (km, id), nearest first


class Oracle:
    def __init__(self, directory: Directory, query: OracleQuery, today: date) -> None:
        self.directory = directory
        self.query = query
        self.today = today
        self.distance: dict[int, float] = {}
        self.inside: dict[int, bool] = {}
        cache: dict[tuple[float, float], float] = {}
        for practice in directory.practices:
            point = (practice.latitude, practice.longitude)
            if point not in cache:
                cache[point] = haversine_km(query.latitude, query.longitude, *point)
            self.distance[practice.id] = cache[point]
            self.inside[practice.id] = self._in_area(practice, cache[point])

    def _in_area(self, practice: PracticeRow, distance_km: float) -> bool:
        query = self.query
        if query.bbox is None:
            assert query.radius_km is not None
            return distance_km <= query.radius_km + RADIUS_SLACK_KM
        west, south, east, north = query.bbox
        lat, lon = practice.latitude, practice.longitude
        if not south <= lat <= north:
            return False
        return west <= lon <= east if west <= east else (lon >= west or lon <= east)

    def _therapist_ok(self, therapist: TherapistRow, without: str | None) -> bool:
        q = self.query
        if q.specialties and without != "specialty":
            general = GENERAL_PT in q.specialties
            if not any(
                code in q.specialties or (general and code.startswith("2251"))
                for code in therapist.specialties
            ):
                return False
        if q.conditions and without != "condition" and not q.conditions & therapist.conditions:
            return False
        if q.certifications and not q.certifications & therapist.certifications:
            return False
        if q.languages and without != "language" and not q.languages & therapist.languages:
            return False
        if q.genders and without != "gender" and therapist.gender not in q.genders:
            return False
        return all(
            therapist.first_key.startswith(word) or therapist.last_key.startswith(word)
            for word in q.words
        )

    def _practice_ok(self, practice: PracticeRow, without: str | None) -> bool:
        q = self.query
        if not self.inside[practice.id]:
            return False
        current = [m for m in practice.memberships if m.current(self.today)]
        checks = [
            not q.plan_ids or without == "plan_id" or any(m.plan_id in q.plan_ids for m in current),
            not q.payer_ids or any(m.payer_id in q.payer_ids for m in current),
            q.accepting_new_patients is None
            or without == "accepting_new_patients"
            or practice.accepting_new_patients is q.accepting_new_patients,
            q.telehealth is None or without == "telehealth" or practice.telehealth is q.telehealth,
            not q.facility_types
            or without == "facility_type"
            or practice.facility_type in q.facility_types,
        ]
        return all(checks)

    def matches(self, without: str | None = None) -> dict[int, list[PracticeRow]]:
        """therapist id -> qualifying practices (unordered)."""
        found: dict[int, list[PracticeRow]] = defaultdict(list)
        verdict: dict[int, bool] = {}
        for practice in self.directory.practices:
            if not self.inside[practice.id]:
                continue
            tid = practice.therapist_id
            if tid not in verdict:
                verdict[tid] = self._therapist_ok(self.directory.therapists[tid], without)
            if verdict[tid] and self._practice_ok(practice, without):
                found[tid].append(practice)
        return dict(found)

    def hits(self) -> list[Hit]:
        """Qualifying therapists in the order the contract asks for."""
        hits = []
        for tid, practices in self.matches().items():
            ranked = sorted((self.distance[p.id], p.id) for p in practices)
            hits.append(Hit(tid, ranked[0][0], ranked))
        if self.query.sort == "name":
            therapists = self.directory.therapists
            hits.sort(
                key=lambda h: (
                    therapists[h.therapist_id].last_key.encode(),
                    therapists[h.therapist_id].first_key.encode(),
                    h.therapist_id,
                )
            )
        else:
            hits.sort(key=lambda h: (h.distance_km, h.therapist_id))
        return hits

    def facet(self, name: str) -> list[tuple[str, int]]:
        """[(json value, count)] sorted by (-count, str(value))."""
        matched = self.matches(without=name)
        counts: dict[Any, int] = defaultdict(int)
        therapists = self.directory.therapists
        for tid, practices in matched.items():
            therapist = therapists[tid]
            values: set[Any]
            if name == "specialty":
                values = set(therapist.specialties)
            elif name == "condition":
                values = set(therapist.conditions)
            elif name == "language":
                values = set(therapist.languages)
            elif name == "gender":
                values = {therapist.gender} - {None}
            elif name == "plan_id":
                values = {
                    m.plan_id for p in practices for m in p.memberships if m.current(self.today)
                }
            elif name == "facility_type":
                values = {p.facility_type for p in practices} - {None}
            elif name == "accepting_new_patients":
                values = {p.accepting_new_patients for p in practices}
            else:
                values = {p.telehealth for p in practices}
            for value in values:
                counts[value] += 1
        for value in self._selected(name):
            counts.setdefault(value, 0)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        return [(json.dumps(value), count) for value, count in ordered]

    def _selected(self, name: str) -> list[Any]:
        q = self.query
        flags = {"accepting_new_patients": q.accepting_new_patients, "telehealth": q.telehealth}
        if name in flags:
            return [] if flags[name] is None else [flags[name]]
        return {
            "specialty": q.specialties,
            "condition": sorted(q.conditions),
            "plan_id": q.plan_ids,
            "language": sorted(q.languages),
            "gender": q.genders,
            "facility_type": q.facility_types,
        }[name]


# --- comparing the API with the model -----------------------------------------------------


class Mismatch(AssertionError):
    pass


def describe(params: Params) -> str:
    return "&".join(f"{k}={v}" for k, v in params)


def fail(params: Params, message: str) -> None:
    raise Mismatch(f"GET {SEARCH}?{describe(params)}\n  {message}")


def _same_rounded(got: float, km: float, factor: float) -> bool:
    """got is km in the unit to 0.01; a value sitting on a .xx5 edge may go either way."""
    exact = km / factor
    if got == round(exact, 2):
        return True
    scaled = exact * 100
    on_edge = abs(scaled - math.floor(scaled) - 0.5) < 1e-6
    return on_edge and abs(got - exact) <= 0.005 + 1e-9


def fetch_pages(
    client: TestClient, params: Params, *, all_pages: bool, max_pages: int = 200
) -> list[dict[str, Any]]:
    pages = []
    cursor = None
    for _ in range(max_pages):
        response = client.get(SEARCH, params=[*params, *([("cursor", cursor)] if cursor else [])])
        if response.status_code != 200:
            fail(params, f"page {len(pages) + 1}: HTTP {response.status_code}: {response.text}")
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None or not all_pages:
            return pages
    fail(params, f"more than {max_pages} pages")
    return pages


def _order_difference(
    got: Sequence[int],
    expected: Sequence[int],
    distance: dict[int, float],
    place: dict[int, tuple[float, float]],
    *,
    by_distance: bool,
) -> str | None:
    """The first position where got differs from expected, allowing near-ties in distance
    between different places (float noise may order those either way)."""
    for index, (g, e) in enumerate(zip(got, expected, strict=False)):
        if g == e:
            continue
        if (
            by_distance
            and g in distance
            and place[g] != place[e]
            and abs(distance[g] - distance[e]) <= NEAR_TIE_KM
        ):
            continue
        detail = f"got {g}" + (f" at {distance[g]!r} km" if g in distance else " (not a match)")
        return f"position {index}: {detail}, expected {e} at {distance[e]!r} km"
    if len(got) != len(expected):
        return f"got {len(got)} ids, expected {len(expected)}"
    if len(set(got)) != len(got):
        return "an id appears twice"
    if not set(got) <= set(distance):
        return f"ids not expected: {sorted(set(got) - set(distance))}"
    return None


def check_search(
    client: TestClient,
    directory: Directory,
    params: Params,
    *,
    all_pages: bool = True,
    today: date | None = None,
) -> dict[str, Any]:
    """Runs the search (every page unless told otherwise) and compares it with the model.

    Returns the first page, for callers that check more.
    """
    query = parse_query(directory, params)
    oracle = Oracle(directory, query, today or today_utc())
    hits = oracle.hits()
    pages = fetch_pages(client, params, all_pages=all_pages)
    first = pages[0]

    # origin
    origin = first["origin"]
    expected_origin = {
        "latitude": query.latitude,
        "longitude": query.longitude,
        "resolved_from": query.resolved_from,
        "label": query.label,
        "radius": query.radius,
        "unit": query.unit,
        "bbox": list(query.bbox) if query.bbox else None,
    }
    for key, value in expected_origin.items():
        if origin.get(key) != value:
            fail(params, f"origin.{key}: got {origin.get(key)!r}, expected {value!r}")

    # totals and paging
    for number, page in enumerate(pages, 1):
        if page["total"] != len(hits):
            fail(params, f"page {number}: total {page['total']}, expected {len(hits)}")
        last = number == len(pages)
        if all_pages and last and page["next_cursor"] is not None:
            fail(params, "the last page has a next_cursor")
        full = not last or (not all_pages and page["next_cursor"] is not None)
        if full and len(page["items"]) != query.limit:
            fail(params, f"page {number} has {len(page['items'])} items, not {query.limit}")
        if len(page["items"]) > query.limit:
            fail(params, f"page {number} has more than {query.limit} items")
    items = [item for page in pages for item in page["items"]]
    expected_hits = hits if all_pages else hits[: query.limit]
    if all_pages and len(pages) > 1:
        ids = [item["id"] for item in items]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            fail(params, f"paging returned therapists more than once: {twice[:10]}")

    # ids and order
    distance = {hit.therapist_id: hit.distance_km for hit in hits}
    by_id = {hit.therapist_id: hit for hit in hits}
    practice_of = {p.id: p for p in directory.practices}
    place = {
        hit.therapist_id: (
            practice_of[hit.practices[0][1]].latitude,
            practice_of[hit.practices[0][1]].longitude,
        )
        for hit in hits
    }
    difference = _order_difference(
        [item["id"] for item in items],
        [hit.therapist_id for hit in expected_hits],
        distance,
        place,
        by_distance=query.sort == "distance",
    )
    if difference:
        fail(params, f"therapists ({query.sort} order): {difference}")

    # per item: distance and practices
    for item in items:
        hit = by_id[item["id"]]
        if not _same_rounded(item["distance"], hit.distance_km, query.factor):
            fail(
                params,
                f"therapist {hit.therapist_id}: distance {item['distance']}, expected "
                f"{hit.distance_km / query.factor!r} {query.unit} (rounded to 0.01)",
            )
        practice_km = dict((pid, km) for km, pid in hit.practices)
        practice_place = {
            pid: (practice_of[pid].latitude, practice_of[pid].longitude) for pid in practice_km
        }
        got = [practice["id"] for practice in item["practices"]]
        difference = _order_difference(
            got,
            [pid for _km, pid in hit.practices[:3]],
            practice_km,
            practice_place,
            by_distance=True,
        )
        if difference:
            fail(params, f"therapist {hit.therapist_id} practices: {difference}")
        for practice in item["practices"]:
            if not _same_rounded(practice["distance"], practice_km[practice["id"]], query.factor):
                fail(
                    params,
                    f"therapist {hit.therapist_id} practice {practice['id']}: distance "
                    f"{practice['distance']}, expected "
                    f"{practice_km[practice['id']] / query.factor!r} {query.unit}",
                )

    # facets (the same on every page)
    expected_facets = {name: oracle.facet(name) for name in query.facets}
    for number, page in enumerate(pages, 1):
        if sorted(page["facets"]) != sorted(expected_facets):
            fail(params, f"page {number}: facets {sorted(page['facets'])}, asked {query.facets}")
        for name, expected_facet in expected_facets.items():
            got_facet = [(json.dumps(e["value"]), e["count"]) for e in page["facets"][name]]
            if got_facet != expected_facet:
                difference = _list_difference(got_facet, expected_facet)
                fail(params, f"page {number}: facet {name}: {difference}")
    return first


def _list_difference(got: Sequence[Any], expected: Sequence[Any]) -> str:
    for index, (g, e) in enumerate(zip(got, expected, strict=False)):
        if g != e:
            return (
                f"entry {index}: got {g}, expected {e} "
                f"(got {list(got)[:12]}, expected {list(expected)[:12]})"
            )
    rest = list(got[len(expected) :]) or list(expected[len(got) :])
    return f"got {len(got)} entries, expected {len(expected)}; the difference: {rest[:12]}"


def ids_of(pages: Iterable[dict[str, Any]]) -> list[int]:
    return [item["id"] for page in pages for item in page["items"]]
