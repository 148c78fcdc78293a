"""The therapist search: filters, distance, facets and keyset paging, in SQL.

One statement shape serves both backends. Practice-level conditions (inside the
radius or viewport, plan, accepting, telehealth, facility type) are all tested on
the same practice row; a therapist qualifies through any one practice that passes
every condition, and is ranked by the nearest such practice.
"""

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import InvalidInput
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
)
from app.therapists.schemas import SpecialtyRead

GENERAL_PT = "225100000X"  # matches every physical therapist (any 2251* code)


def search_therapists(session: Session, query: SearchQuery) -> SearchResults:
    today = utcnow().date()
    distance = geo.haversine_km(query.origin.latitude, query.origin.longitude)
    matches = _matches(session, query, today, distance, without=None).subquery("m")

    per_therapist = (
        select(matches.c.tid, func.min(matches.c.d).label("d")).group_by(matches.c.tid)
    ).subquery("g")
    total = session.scalar(select(func.count()).select_from(per_therapist)) or 0

    page = select(per_therapist.c.tid, per_therapist.c.d)
    keyset = _decode_cursor(query)
    if query.sort is Sort.DISTANCE:
        if keyset:
            page = page.where(tuple_(per_therapist.c.d, per_therapist.c.tid) > tuple_(*keyset))
        page = page.order_by(per_therapist.c.d, per_therapist.c.tid)
    else:
        page = page.join(Therapist, Therapist.id == per_therapist.c.tid).add_columns(
            Therapist.last_name_key, Therapist.first_name_key
        )
        order = (Therapist.last_name_key, Therapist.first_name_key, per_therapist.c.tid)
        if keyset:
            page = page.where(tuple_(*order) > tuple_(*keyset))
        page = page.order_by(*order)
    rows = session.execute(page.limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]

    next_cursor = None
    if more:
        last = rows[-1]
        key = [last.d, last.tid] if query.sort is Sort.DISTANCE else [
            last.last_name_key, last.first_name_key, last.tid]  # fmt: skip
        next_cursor = _encode_cursor(query, key)

    items = _hits(session, query, matches, [(row.tid, row.d) for row in rows], today)
    return SearchResults(
        items=items,
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
    extra: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """Qualifying (therapist, practice, distance) rows; `without` drops that facet's filter."""
    statement = (
        select(
            Practice.therapist_id.label("tid"),
            Practice.id.label("pid"),
            distance.label("d"),
            *extra,
        )
        .join(Location, Location.id == Practice.location_id)
        .where(*_geo_conditions(session, query, distance))
    )
    if (query.genders and without is not Facet.GENDER) or query.q:
        statement = statement.join(Therapist, Therapist.id == Practice.therapist_id)
    return statement.where(*_filter_conditions(query, today, without))


def _geo_conditions(
    session: Session, query: SearchQuery, distance: ColumnElement[float]
) -> list[ColumnElement[bool]]:
    origin = (query.origin.latitude, query.origin.longitude)
    if query.origin.bbox is not None:
        box = geo.Box(*query.origin.bbox)
        reach = geo.covering_reach_km(box, origin)
        return [geo.spatial_prefilter(session, box=box, center=origin, reach_km=reach),
                geo.in_box(box)]  # fmt: skip
    radius_km = query.radius_km or 0.0
    box = geo.box_around(*origin, radius_km)
    return [
        geo.spatial_prefilter(session, box=box, center=origin, reach_km=radius_km),
        distance <= radius_km + geo.DISTANCE_SLACK_KM,
    ]


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
    matches: Any,
    ranked: list[tuple[int, float]],
    today: date,
) -> list[TherapistHit]:
    if not ranked:
        return []
    ids = [tid for tid, _d in ranked]
    practice_rows = session.execute(
        select(matches.c.tid, matches.c.pid, matches.c.d)
        .where(matches.c.tid.in_(ids))
        .order_by(matches.c.tid, matches.c.d, matches.c.pid)
    ).all()
    nearest: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in practice_rows:
        if len(nearest[row.tid]) < MAX_PRACTICES_PER_ITEM:
            nearest[row.tid].append((row.pid, row.d))

    therapists = {
        t.id: t
        for t in session.scalars(
            select(Therapist)
            .where(Therapist.id.in_(ids))
            .options(
                selectinload(Therapist.specialties).selectinload(TherapistSpecialty.specialty),
                selectinload(Therapist.conditions),
                selectinload(Therapist.services),
                selectinload(Therapist.certifications),
                selectinload(Therapist.languages),
            )
        )
    }
    practice_ids = [pid for rows in nearest.values() for pid, _d in rows]
    practices = {
        p.id: p
        for p in session.scalars(
            select(Practice).where(Practice.id.in_(practice_ids)).options(
                selectinload(Practice.location))
        )
    }  # fmt: skip
    plans: dict[int, list[PlanEntry]] = defaultdict(list)
    for participation, plan, payer in session.execute(
        select(Participation, Plan, Payer)
        .join(Plan, Plan.id == Participation.plan_id)
        .join(Payer, Payer.id == Plan.payer_id)
        .where(Participation.practice_id.in_(practice_ids), _current(today))
        .order_by(Payer.name, Plan.name)
    ).all():
        plans[participation.practice_id].append(
            PlanEntry(
                plan_id=plan.id,
                plan_name=plan.name,
                plan_type=plan.plan_type,
                payer_id=payer.id,
                payer_name=payer.name,
                network_tier=participation.network_tier,
                effective_from=participation.effective_from,
                effective_to=participation.effective_to,
                verified_at=participation.verified_at,
            )
        )

    factor = geo.KM_PER_MILE if query.unit is Unit.MI else 1.0
    hits = []
    for tid, best in ranked:
        therapist = therapists[tid]
        hits.append(
            TherapistHit(
                id=therapist.id,
                npi=therapist.npi,
                first_name=therapist.first_name,
                middle_name=therapist.middle_name,
                last_name=therapist.last_name,
                name_suffix=therapist.name_suffix,
                credentials=therapist.credentials,
                gender=therapist.gender,
                specialties=_specialties(therapist),
                certifications=[c.code for c in therapist.certifications],
                conditions=[c.slug for c in therapist.conditions],
                services=[s.slug for s in therapist.services],
                languages=[lang.code for lang in therapist.languages],
                distance=round(best / factor, 2),
                practices=[
                    PracticeHit(
                        id=pid,
                        distance=round(d / factor, 2),
                        accepting_new_patients=practices[pid].accepting_new_patients,
                        telehealth=practices[pid].telehealth,
                        home_visits=practices[pid].home_visits,
                        location=LocationRead.model_validate(practices[pid].location),
                        plans=plans[pid],
                    )
                    for pid, d in nearest[tid]
                ],
            )
        )
    return hits


def _specialties(therapist: Therapist) -> list[SpecialtyRead]:
    ordered = sorted(therapist.specialties, key=lambda s: (not s.is_primary, s.specialty_code))
    return [
        SpecialtyRead(
            code=s.specialty_code,
            slug=s.specialty.slug,
            display_name=s.specialty.display_name,
            primary=s.is_primary,
        )
        for s in ordered
    ]


# --- facets -------------------------------------------------------------------------------


def _facets(
    session: Session, query: SearchQuery, today: date, distance: ColumnElement[float]
) -> dict[str, list[FacetCount]]:
    """Counts of matching therapists per value; each facet ignores its own filter."""
    results: dict[str, list[FacetCount]] = {}
    for facet in query.facets:
        counts, labels = _facet_counts(session, query, today, distance, facet)
        selected = _selected(query, facet)
        for value in selected:
            counts.setdefault(value, 0)  # a chosen value stays visible in its menu
        results[facet.value] = [
            FacetCount(value=value, label=labels.get(value), count=count)
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        ]
    return results


def _selected(query: SearchQuery, facet: Facet) -> list[Any]:
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
    return selected[facet]  # fmt: skip


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


def _facet_counts(
    session: Session,
    query: SearchQuery,
    today: date,
    distance: ColumnElement[float],
    facet: Facet,
) -> tuple[dict[Any, int], dict[Any, str]]:
    """(value → therapists, value → label) for one facet, without that facet's own filter."""
    base = _matches(session, query, today, distance, without=facet)
    if facet in _PRACTICE_FACETS:
        column = _PRACTICE_FACETS[facet]
        statement = base.with_only_columns(
            column, func.count(func.distinct(Practice.therapist_id))
        ).group_by(column)
        rows = session.execute(statement).tuples()
        return {_plain(v): n for v, n in rows if v is not None}, {}

    matched = base.subquery("m")
    if facet is Facet.PLAN_ID:
        plan_counts = (
            select(Participation.plan_id, func.count(func.distinct(matched.c.tid)))
            .join(Participation, Participation.practice_id == matched.c.pid)
            .where(_current(today))
            .group_by(Participation.plan_id)
        )
        counts = {plan_id: n for plan_id, n in session.execute(plan_counts).tuples()}
        names = select(Plan.id, Plan.name).where(Plan.id.in_(list(counts)))
        return counts, {plan_id: name for plan_id, name in session.execute(names).tuples()}

    therapists = select(matched.c.tid).distinct().subquery("t")
    if facet is Facet.GENDER:
        genders = (
            select(Therapist.gender, func.count())
            .join(therapists, therapists.c.tid == Therapist.id)
            .where(Therapist.gender.is_not(None))
            .group_by(Therapist.gender)
        )
        return {_plain(v): n for v, n in session.execute(genders).tuples()}, {}

    value, owner, key, label = _LINKED_FACETS[facet]
    linked = select(value, func.count()).join(therapists, therapists.c.tid == owner).group_by(value)
    counts = {v: n for v, n in session.execute(linked).tuples()}
    labels = select(key, label).where(key.in_(list(counts)))
    return counts, {k: text for k, text in session.execute(labels).tuples()}


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
    shape = (float, int) if query.sort is Sort.DISTANCE else (str, str, int)
    if len(key) != len(shape) or not all(
        (isinstance(v, t) and not isinstance(v, bool)) or (t is float and isinstance(v, int))
        for v, t in zip(key, shape, strict=True)
    ):
        raise invalid
    return [literal(v) for v in key]
