"""The therapist search: filters, distance, facets and keyset paging, in SQL.

One statement shape serves both backends. Practice-level conditions (inside the
radius or viewport, plan, accepting, telehealth, facility type) are all tested on
the same practice row; a therapist qualifies through any one practice that passes
every condition, and is ranked by the nearest such practice.
"""

import base64
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import InvalidInput
from app.fields import MAX_ID
from app.locations.models import Location
from app.locations.schemas import LocationRead
from app.networks.models import Participation, Payer, Plan
from app.reference.models import Condition, Language, Specialty
from app.search import geo
from app.search.schemas import (
    MAX_PRACTICES_PER_ITEM,
    Facet,
    FacetCount,
    OriginRead,
    PlanEntry,
    PracticeHit,
    SearchQuery,
    SearchResults,
    Sort,
    TherapistHit,
    Unit,
)
from app.therapists.models import (
    Practice,
    Therapist,
    TherapistSpecialty,
    therapist_certifications,
    therapist_conditions,
    therapist_languages,
    therapist_services,
)
from app.therapists.schemas import SpecialtyRead

GENERAL_PT = "225100000X"  # matches every physical therapist (any 2251* code)


def search_therapists(session: Session, query: SearchQuery) -> SearchResults:
    today = utcnow().date()
    distance = geo.haversine_km(query.origin.latitude, query.origin.longitude)
    ranked_rows, total, next_cursor = _page(session, query, today, distance)
    return SearchResults(
        items=_hits(session, query, ranked_rows, today),
        total=total,
        next_cursor=next_cursor,
        facets=_facets(session, query, today, distance),
        origin=OriginRead(
            latitude=query.origin.latitude,
            longitude=query.origin.longitude,
            resolved_from=query.origin.kind,
            label=query.origin.label,
            radius=query.radius,
            unit=query.unit,
            bbox=list(query.origin.bbox) if query.origin.bbox else None,
        ),
    )


def _materialized(statement: Select[Any], name: str) -> Any:
    """A CTE computed once however often it is referenced (SQLite ≥ 3.35, PostgreSQL ≥ 12)."""
    return statement.cte(name).prefix_with("MATERIALIZED")


def _page(
    session: Session, query: SearchQuery, today: date, distance: ColumnElement[float]
) -> tuple[dict[int, list[tuple[int, float]]], int, str | None]:
    """One statement: the page's therapists in order, each with its nearest qualifying
    practices (at most 3), and the total — the match set is computed once."""
    matches = _matches(session, query, today, distance, without=None, name="candidates").subquery(
        "m"
    )
    ranked = _materialized(
        select(
            matches.c.tid,
            matches.c.pid,
            matches.c.d,
            func.row_number()
            .over(partition_by=matches.c.tid, order_by=(matches.c.d, matches.c.pid))
            .label("rn"),
        ),
        "ranked",
    )
    best = select(ranked.c.tid, ranked.c.d).where(ranked.c.rn == 1).subquery("best")
    total = select(func.count()).select_from(best).scalar_subquery()

    keyset = _decode_cursor(query)
    if query.sort is Sort.DISTANCE:
        order: tuple[Any, ...] = (best.c.d, best.c.tid)
        page = select(best.c.tid, best.c.d)
    else:
        order = (Therapist.last_name_key, Therapist.first_name_key, best.c.tid)
        page = select(best.c.tid, best.c.d, Therapist.last_name_key, Therapist.first_name_key)
        page = page.join(Therapist, Therapist.id == best.c.tid)
    if keyset:
        page = page.where(tuple_(*order) > tuple_(*keyset))
    page_rows = page.order_by(*order).limit(query.limit + 1).subquery("page")

    sort_key = (
        (page_rows.c.d, page_rows.c.tid)
        if query.sort is Sort.DISTANCE
        else (page_rows.c.last_name_key, page_rows.c.first_name_key, page_rows.c.tid)
    )
    statement = (
        select(*page_rows.c, ranked.c.pid, ranked.c.d.label("practice_d"), total.label("total"))
        .join(ranked, and_(ranked.c.tid == page_rows.c.tid, ranked.c.rn <= MAX_PRACTICES_PER_ITEM))
        .order_by(*sort_key, ranked.c.rn)
    )
    rows = session.execute(statement).all()

    therapists: dict[int, list[tuple[int, float]]] = {}
    keys: list[list[Any]] = []
    for row in rows:
        if row.tid not in therapists:
            therapists[row.tid] = []
            keys.append([row.d, row.tid] if query.sort is Sort.DISTANCE
                        else [row.last_name_key, row.first_name_key, row.tid])  # fmt: skip
        therapists[row.tid].append((row.pid, row.practice_d))
    # An empty page (the data changed under a cursor) carries no total: count on its own.
    count = rows[0].total if rows else session.scalar(select(total)) or 0

    next_cursor = None
    if len(therapists) > query.limit:
        del therapists[keys[query.limit][-1]]
        next_cursor = _encode_cursor(query, keys[query.limit - 1])
    return therapists, count, next_cursor


def _current(today: date) -> ColumnElement[bool]:
    """The participation is in force today (not before its start, not after its end)."""
    return and_(
        or_(Participation.effective_from.is_(None), Participation.effective_from <= today),
        or_(Participation.effective_to.is_(None), Participation.effective_to >= today),
    )


def _matches(
    session: Session,
    query: SearchQuery,
    today: date,
    distance: ColumnElement[float],
    *,
    without: Facet | None,
    name: str,
    extra: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """Qualifying (therapist, practice, distance) rows; `without` drops that facet's filter.

    The candidates (spatial index, filters) are materialised with their distance, and
    the radius is tested on that stored value: the distance is computed once per row.
    """
    candidates = (
        select(
            Practice.therapist_id.label("tid"),
            Practice.id.label("pid"),
            distance.label("d"),
            *extra,
        )
        .join(Location, Location.id == Practice.location_id)
        .where(*_geo_conditions(session, query))
    )
    if (query.genders and without is not Facet.GENDER) or query.q:
        candidates = candidates.join(Therapist, Therapist.id == Practice.therapist_id)
    rows = _materialized(candidates.where(*_filter_conditions(query, today, without)), name)
    matches = select(*rows.c)
    if query.radius_km is not None:
        matches = matches.where(rows.c.d <= query.radius_km + geo.DISTANCE_SLACK_KM)
    return matches


def _geo_conditions(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    """The spatial index pre-filter, and for a viewport the exact box test."""
    origin = (query.origin.latitude, query.origin.longitude)
    if query.origin.bbox is not None:
        box = geo.Box(*query.origin.bbox)
        reach = geo.covering_reach_km(box, origin)
        return [geo.spatial_prefilter(session, box=box, center=origin, reach_km=reach),
                geo.in_box(box)]  # fmt: skip
    radius_km = query.radius_km or 0.0
    box = geo.box_around(*origin, radius_km)
    return [geo.spatial_prefilter(session, box=box, center=origin, reach_km=radius_km)]


def _has(link: Any, column: str, values: Iterable[str]) -> ColumnElement[bool]:
    return exists().where(
        link.c.therapist_id == Practice.therapist_id, link.c[column].in_(list(values))
    )


def _filter_conditions(
    query: SearchQuery, today: date, without: Facet | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.specialties and without is not Facet.SPECIALTY:
        codes = [code for code in query.specialties if code != GENERAL_PT]
        wanted = [TherapistSpecialty.specialty_code.in_(codes)] if codes else []
        if GENERAL_PT in query.specialties:
            wanted.append(TherapistSpecialty.specialty_code.like("2251%"))
        conditions.append(
            exists().where(TherapistSpecialty.therapist_id == Practice.therapist_id, or_(*wanted))
        )
    if query.conditions and without is not Facet.CONDITION:
        conditions.append(_has(therapist_conditions, "condition_slug", query.conditions))
    if query.certifications:
        conditions.append(
            _has(therapist_certifications, "certification_code", query.certifications)
        )
    if query.languages and without is not Facet.LANGUAGE:
        conditions.append(_has(therapist_languages, "language_code", query.languages))
    if query.genders and without is not Facet.GENDER:
        conditions.append(Therapist.gender.in_(query.genders))
    for word in query.q:
        conditions.append(or_(_prefix(Therapist.first_name_key, word),
                              _prefix(Therapist.last_name_key, word)))  # fmt: skip
    if query.plan_ids and without is not Facet.PLAN_ID:
        conditions.append(
            exists().where(
                Participation.practice_id == Practice.id,
                Participation.plan_id.in_(query.plan_ids),
                _current(today),
            )
        )
    if query.payer_ids:
        conditions.append(
            exists().where(
                Participation.practice_id == Practice.id,
                Participation.plan_id == Plan.id,
                Plan.payer_id.in_(query.payer_ids),
                _current(today),
            )
        )
    if query.accepting_new_patients is not None and without is not Facet.ACCEPTING_NEW_PATIENTS:
        conditions.append(Practice.accepting_new_patients.is_(query.accepting_new_patients))
    if query.telehealth is not None and without is not Facet.TELEHEALTH:
        conditions.append(Practice.telehealth.is_(query.telehealth))
    if query.facility_types and without is not Facet.FACILITY_TYPE:
        conditions.append(Location.facility_type.in_(query.facility_types))
    return conditions


def _prefix(column: Any, word: str) -> ColumnElement[bool]:
    """`column` starts with `word`, as a range an index can serve; % and _ are plain text."""
    upper = word[:-1] + chr(ord(word[-1]) + 1)
    return and_(column >= word, column < upper)


# --- the page's items -------------------------------------------------------------------


def _hits(
    session: Session,
    query: SearchQuery,
    ranked: dict[int, list[tuple[int, float]]],
    today: date,
) -> list[TherapistHit]:
    """The page's items, loaded with a few set-based reads (no per-row queries)."""
    if not ranked:
        return []
    ids = list(ranked)
    practice_ids = [pid for practices in ranked.values() for pid, _d in practices]

    people = {
        row.id: row
        for row in session.execute(
            select(
                Therapist.id, Therapist.npi, Therapist.first_name, Therapist.middle_name,
                Therapist.last_name, Therapist.name_suffix, Therapist.credentials,
                Therapist.gender,
            ).where(Therapist.id.in_(ids))
        )
    }  # fmt: skip
    specialties: dict[int, list[SpecialtyRead]] = defaultdict(list)
    for specialty in session.execute(
        select(TherapistSpecialty.therapist_id, TherapistSpecialty.specialty_code,
               TherapistSpecialty.is_primary, Specialty.slug, Specialty.display_name)
        .join(Specialty, Specialty.code == TherapistSpecialty.specialty_code)
        .where(TherapistSpecialty.therapist_id.in_(ids))
        .order_by(TherapistSpecialty.is_primary.desc(), TherapistSpecialty.specialty_code)
    ):  # fmt: skip
        specialties[specialty.therapist_id].append(
            SpecialtyRead(code=specialty.specialty_code, slug=specialty.slug,
                          display_name=specialty.display_name, primary=specialty.is_primary)
        )  # fmt: skip
    links: dict[tuple[str, int], list[str]] = defaultdict(list)
    link_rows = union_all(
        *(
            select(
                literal(kind).label("kind"), table.c.therapist_id, table.c[column].label("v")
            ).where(table.c.therapist_id.in_(ids))
            for kind, (table, column) in _LINK_TABLES.items()
        )
    ).subquery("links")
    for link in session.execute(select(link_rows).order_by(link_rows.c.kind, link_rows.c.v)):
        links[(link.kind, link.therapist_id)].append(link.v)

    locations = {
        row.practice_id: row
        for row in session.execute(
            select(Practice.id.label("practice_id"), Practice.accepting_new_patients,
                   Practice.telehealth, Practice.home_visits, *_LOCATION_COLUMNS)
            .join(Location, Location.id == Practice.location_id)
            .where(Practice.id.in_(practice_ids))
        )
    }  # fmt: skip
    plans: dict[int, list[PlanEntry]] = defaultdict(list)
    for entry in session.execute(
        select(Participation.practice_id, Participation.network_tier,
               Participation.effective_from, Participation.effective_to,
               Participation.verified_at, Plan.id.label("plan_id"), Plan.name.label("plan_name"),
               Plan.plan_type, Payer.id.label("payer_id"), Payer.name.label("payer_name"))
        .join(Plan, Plan.id == Participation.plan_id)
        .join(Payer, Payer.id == Plan.payer_id)
        .where(Participation.practice_id.in_(practice_ids), _current(today))
        .order_by(Payer.name, Plan.name)
    ):  # fmt: skip
        plans[entry.practice_id].append(PlanEntry.model_validate(entry, from_attributes=True))

    factor = geo.KM_PER_MILE if query.unit is Unit.MI else 1.0
    hits = []
    for tid, practices in ranked.items():
        person = people[tid]
        hits.append(
            TherapistHit(
                id=tid,
                npi=person.npi,
                first_name=person.first_name,
                middle_name=person.middle_name,
                last_name=person.last_name,
                name_suffix=person.name_suffix,
                credentials=person.credentials,
                gender=person.gender,
                specialties=specialties[tid],
                certifications=links[("certifications", tid)],
                conditions=links[("conditions", tid)],
                services=links[("services", tid)],
                languages=links[("languages", tid)],
                distance=round(practices[0][1] / factor, 2),
                practices=[
                    PracticeHit(
                        id=pid,
                        distance=round(d / factor, 2),
                        accepting_new_patients=locations[pid].accepting_new_patients,
                        telehealth=locations[pid].telehealth,
                        home_visits=locations[pid].home_visits,
                        location=LocationRead.model_validate(locations[pid], from_attributes=True),
                        plans=plans[pid],
                    )
                    for pid, d in practices
                ],
            )
        )
    return hits


_LINK_TABLES: dict[str, tuple[Any, str]] = {
    "certifications": (therapist_certifications, "certification_code"),
    "conditions": (therapist_conditions, "condition_slug"),
    "languages": (therapist_languages, "language_code"),
    "services": (therapist_services, "service_slug"),
}
_LOCATION_COLUMNS = (
    Location.id, Location.name, Location.address_line1, Location.address_line2, Location.city,
    Location.state, Location.zip, Location.latitude, Location.longitude,
    Location.geocode_precision, Location.phone, Location.fax, Location.facility_type,
    Location.accessibility, Location.updated_at,
)  # fmt: skip


# --- facets -------------------------------------------------------------------------------


def _facets(
    session: Session, query: SearchQuery, today: date, distance: ColumnElement[float]
) -> dict[str, list[FacetCount]]:
    """Counts of matching therapists per value; each facet ignores its own filter.

    One statement: facets whose own filter is not in use share one match set
    (computed once); a facet whose filter is in use gets a match set without it.
    """
    if not query.facets:
        return {}
    practice_columns = [column.label(facet.value) for facet, column in _PRACTICE_FACETS.items()]
    shared = None
    branches = []
    for facet in query.facets:
        if _selected(query, facet):
            source = _materialized(
                _matches(
                    session,
                    query,
                    today,
                    distance,
                    without=facet,
                    extra=practice_columns,
                    name=f"c_{facet.value}",
                ),
                f"m_{facet.value}",
            )
        else:
            if shared is None:
                shared = _materialized(
                    _matches(
                        session,
                        query,
                        today,
                        distance,
                        without=None,
                        extra=practice_columns,
                        name="c_all",
                    ),
                    "m_all",
                )
            source = shared
        branches.append(_facet_branch(facet, source, today))
    counts: dict[str, dict[Any, tuple[str | None, int]]] = defaultdict(dict)
    for row in session.execute(union_all(*branches)):
        facet = Facet(row.facet)
        counts[facet.value][_facet_value(facet, row.value)] = (row.label, row.n)

    results: dict[str, list[FacetCount]] = {}
    for facet in query.facets:
        values = counts[facet.value]
        for value in _selected(query, facet):
            values.setdefault(value, (None, 0))  # a chosen value stays visible in its menu
        results[facet.value] = [
            FacetCount(value=value, label=label, count=n)
            for value, (label, n) in sorted(values.items(), key=lambda i: (-i[1][1], str(i[0])))
        ]
    return results


def _facet_branch(facet: Facet, source: Any, today: date) -> Select[Any, Any, Any, Any]:
    """SELECT facet, value, label, count of distinct therapists — one facet's counts.

    Every branch starts from the (small, materialised) match set and looks rows up
    by key from there, never the other way round.
    """
    name = literal(facet.value).label("facet")
    therapists = func.count(func.distinct(source.c.tid)).label("n")
    if facet in _PRACTICE_FACETS:
        value = source.c[facet.value]
        return (
            select(name, cast(value, String).label("value"), null_label(), therapists)
            .select_from(source)
            .where(value.is_not(None))
            .group_by(value)
        )
    if facet is Facet.PLAN_ID:
        # Count per plan first, name the plans after. Grouping by an expression (+ 0)
        # keeps SQLite from walking the whole plan_id index to get its groups in order
        # instead of looking up only the matched practices' participations.
        plan_id = (Participation.plan_id + 0).label("plan_id")
        per_plan = (
            select(plan_id, therapists)
            .select_from(source)
            .join(Participation, Participation.practice_id == source.c.pid)
            .where(_current(today))
            .group_by(plan_id)
        ).subquery("per_plan")
        return select(
            name, cast(Plan.id, String).label("value"), Plan.name.label("label"), per_plan.c.n
        ).join(per_plan, per_plan.c.plan_id == Plan.id)
    if facet is Facet.GENDER:
        return (
            select(name, cast(Therapist.gender, String).label("value"), null_label(), therapists)
            .select_from(source)
            .join(Therapist, Therapist.id == source.c.tid)
            .where(Therapist.gender.is_not(None))
            .group_by(Therapist.gender)
        )
    value, owner, key, label = _LINKED_FACETS[facet]
    grouped = value.concat("").label("value")  # an expression, for the reason given for plans
    per_value = (
        select(grouped, therapists)
        .select_from(source)
        .join(owner.table, owner == source.c.tid)
        .group_by(grouped)
    ).subquery("per_value")
    return select(name, per_value.c.value, label.label("label"), per_value.c.n).join(
        per_value, per_value.c.value == key
    )


def null_label() -> ColumnElement[Any]:
    return cast(null(), String).label("label")


def _facet_value(facet: Facet, text: str) -> Any:
    """Facet values come back as text from the UNION; give them their JSON type."""
    if facet is Facet.PLAN_ID:
        return int(text)
    if facet in (Facet.ACCEPTING_NEW_PATIENTS, Facet.TELEHEALTH):
        return text.lower() in ("1", "true", "t")
    return text


def _selected(query: SearchQuery, facet: Facet) -> list[Any]:
    """The values a facet's own filter currently selects."""
    selected: dict[Facet, list[Any]] = {
        Facet.SPECIALTY: list(query.specialties),
        Facet.CONDITION: list(query.conditions),
        Facet.PLAN_ID: list(query.plan_ids),
        Facet.LANGUAGE: list(query.languages),
        Facet.GENDER: [g.value for g in query.genders],
        Facet.FACILITY_TYPE: [f.value for f in query.facility_types],
        Facet.ACCEPTING_NEW_PATIENTS: []
        if query.accepting_new_patients is None
        else [query.accepting_new_patients],
        Facet.TELEHEALTH: [] if query.telehealth is None else [query.telehealth],
    }
    return selected[facet]


# Facets counted over practice rows: any qualifying practice with the value counts.
_PRACTICE_FACETS: dict[Facet, Any] = {
    Facet.ACCEPTING_NEW_PATIENTS: Practice.accepting_new_patients,
    Facet.TELEHEALTH: Practice.telehealth,
    Facet.FACILITY_TYPE: Location.facility_type,
}
# Facets over a therapist's link table: (value column, therapist column, label key, label).
_LINKED_FACETS: dict[Facet, tuple[Any, Any, Any, Any]] = {
    Facet.SPECIALTY: (
        TherapistSpecialty.specialty_code, TherapistSpecialty.therapist_id,
        Specialty.code, Specialty.display_name,
    ),
    Facet.CONDITION: (
        therapist_conditions.c.condition_slug, therapist_conditions.c.therapist_id,
        Condition.slug, Condition.name,
    ),
    Facet.LANGUAGE: (
        therapist_languages.c.language_code, therapist_languages.c.therapist_id,
        Language.code, Language.name,
    ),
}  # fmt: skip


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


# --- cursors -----------------------------------------------------------------------------


def _fingerprint(query: SearchQuery) -> str:
    """Identifies the result set a cursor belongs to (everything but the page)."""
    parts = {k: v for k, v in query.__dict__.items() if k not in ("cursor", "limit", "facets")}
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:16]


def _encode_cursor(query: SearchQuery, key: list[Any]) -> str:
    payload = json.dumps({"v": 1, "s": query.sort.value, "k": key, "f": _fingerprint(query)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(query: SearchQuery) -> list[Any] | None:
    if query.cursor is None:
        return None
    invalid = InvalidInput.at(["query", "cursor"], "not a cursor this API issued")
    try:
        raw = base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4))
        payload = json.loads(raw)
        key = payload["k"]
        if payload.get("v") != 1 or not isinstance(key, list):
            raise invalid
    except (ValueError, KeyError, TypeError):
        raise invalid from None
    if payload.get("s") != query.sort.value or payload.get("f") != _fingerprint(query):
        raise InvalidInput.at(
            ["query", "cursor"], "this cursor belongs to a different search; start from page 1"
        )
    if not _valid_key(query.sort, key):
        raise invalid
    return [literal(v) for v in key]


def _valid_key(sort: Sort, key: list[Any]) -> bool:
    """A keyset the database can compare: finite distance, ids in range, plain-text names."""
    if sort is Sort.DISTANCE:
        if len(key) != 2:
            return False
        distance, therapist_id = key
        return (
            isinstance(distance, int | float)
            and not isinstance(distance, bool)
            and math.isfinite(distance)
            and _valid_id(therapist_id)
        )
    if len(key) != 3:
        return False
    last, first, therapist_id = key
    return all(
        isinstance(name, str) and name.isascii() and name.isprintable() and len(name) <= 100
        for name in (last, first)
    ) and _valid_id(therapist_id)


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
