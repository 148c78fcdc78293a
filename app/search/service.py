"""The therapist search: filters, distance, facets and keyset paging, in SQL.

Search reads the flat projection `search_practices` (one row per practice, in
spatial order; see app.search.projection). Practice-level conditions (inside the
radius or viewport, plan, accepting, telehealth, facility type) are all tested on
the same row; a therapist qualifies through any one practice that passes every
condition, and is ranked by the nearest such practice.

A search is at most two statements before the page's details: the page with its
practices and the total, and — when asked for — every facet count at once.
"""

import base64
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from app.db import in_bound_ids, utcnow
from app.errors import InvalidInput
from app.fields import MAX_ID
from app.locations.models import FacilityType, Location
from app.networks.models import Participation, Payer, Plan
from app.reference.vocabulary import Vocabulary, vocabulary
from app.search import geo
from app.search.models import SearchPractice
from app.search.projection import code_list, concat_agg, in_force
from app.search.schemas import (
    MAX_PRACTICES_PER_ITEM,
    Facet,
    FacetCount,
    OriginRead,
    SearchQuery,
    SearchResults,
    Sort,
    Unit,
)
from app.therapists.models import (
    Practice,
    Therapist,
)

GENERAL_PT = "225100000X"  # matches every physical therapist (any 2251* code)
S = SearchPractice


def search_therapists(session: Session, query: SearchQuery) -> SearchResults:
    conditions = _Conditions.build(session, query, utcnow().date())
    if query.facets:
        # The area is read once for the page, the total and every facet count; the
        # page's practices and who its therapists are take one more short read.
        keys, total, facet_rows = _page_keys_and_facets(session, query, conditions)
        rows = _page_details(session, conditions, [key[-1] for key in keys])
        facets = _facet_counts(session, query, facet_rows)
    else:
        keys, total, rows = _page_with_details(session, query, conditions)
        facets = {}
    people: dict[int, dict[str, Any]] = {}
    ranked, next_cursor = _arrange(query, keys, rows, people)
    # The page is assembled as plain values and validated once, as a whole: one
    # call into the validator instead of one per therapist, practice and plan.
    return SearchResults.model_validate(
        {
            "items": _hits(session, query, ranked, people, conditions.today),
            "total": total,
            "next_cursor": next_cursor,
            "facets": facets,
            "origin": OriginRead(
                latitude=query.origin.latitude,
                longitude=query.origin.longitude,
                resolved_from=query.origin.kind,
                label=query.origin.label,
                radius=query.radius,
                unit=query.unit,
                bbox=list(query.origin.bbox) if query.origin.bbox else None,
            ),
        }
    )


@dataclass(frozen=True, slots=True)
class _Conditions:
    """A search's SQL pieces over the projection, built once per request."""

    today: date
    chord: ColumnElement[float]  # chord² from the origin (ranks like the distance)
    near: Callable[[Select[*tuple[Any, ...]]], Select[*tuple[Any, ...]]]  # spatial index
    area: ColumnElement[bool]  # the exact radius or box test
    fixed: list[ColumnElement[bool]]  # filters no facet ignores (certification, payer, q)
    by_facet: dict[Facet, ColumnElement[bool]]  # one per facet-able filter in use

    @classmethod
    def build(cls, session: Session, query: SearchQuery, today: date) -> "_Conditions":
        origin = (query.origin.latitude, query.origin.longitude)
        chord = geo.chord_squared(*origin)
        if query.origin.bbox is not None:
            box = geo.Box(*query.origin.bbox)
            reach = geo.covering_reach_km(box, origin)
            area = geo.in_box(box)
        else:
            reach = query.radius_km or 0.0
            box = geo.box_around(*origin, reach)
            area = chord <= geo.chord_squared_within(reach)
        near = partial(geo.near, session=session, box=box, center=origin, reach_km=reach)
        fixed = [or_(*(_has_code(S.certifications, c) for c in query.certifications))
                 ] if query.certifications else []  # fmt: skip
        for word in query.q:
            fixed.append(or_(_prefix(S.first_name_key, word), _prefix(S.last_name_key, word)))
        if query.payer_ids:
            plans = session.scalars(select(Plan.id).where(Plan.payer_id.in_(query.payer_ids)))
            fixed.append(_in_plans(list(plans), today))
        return cls(today, chord, near, area, fixed, _facet_filters(query, today))

    def all(self) -> list[ColumnElement[bool]]:
        """Every condition but the index: a row passing them all qualifies."""
        return [self.area, *self.fixed, *self.by_facet.values()]


def _facet_filters(query: SearchQuery, today: date) -> dict[Facet, ColumnElement[bool]]:
    """The filters a facet can ignore, by facet; only those in use."""
    filters: dict[Facet, ColumnElement[bool]] = {}
    if query.specialties:
        codes = [_has_code(S.specialties, code) for code in query.specialties if code != GENERAL_PT]
        if GENERAL_PT in query.specialties:
            codes.append(S.specialties.contains(" 2251"))  # any physical therapist code
        filters[Facet.SPECIALTY] = or_(*codes)
    if query.conditions:
        filters[Facet.CONDITION] = or_(*(_has_code(S.conditions, c) for c in query.conditions))
    if query.languages:
        filters[Facet.LANGUAGE] = or_(*(_has_code(S.languages, c) for c in query.languages))
    if query.genders:
        filters[Facet.GENDER] = S.gender.in_(query.genders)
    if query.plan_ids:
        filters[Facet.PLAN_ID] = _in_plans(list(query.plan_ids), today)
    if query.accepting_new_patients is not None:
        filters[Facet.ACCEPTING_NEW_PATIENTS] = S.accepting_new_patients.is_(
            query.accepting_new_patients
        )
    if query.telehealth is not None:
        filters[Facet.TELEHEALTH] = S.telehealth.is_(query.telehealth)
    if query.facility_types:
        filters[Facet.FACILITY_TYPE] = S.facility_type.in_(query.facility_types)
    return filters


def _has_code(column: Any, code: str) -> ColumnElement[bool]:
    """The padded code list (" a b ") holds `code`."""
    test: ColumnElement[bool] = column.contains(f" {code} ", autoescape=True)
    return test


def _in_plans(plan_ids: list[int], today: date) -> ColumnElement[bool]:
    """The practice is in network today with one of these plans.

    The row's plan list answers while it is fresh (no start or end date has come
    since it was written); otherwise the participations themselves do."""
    if not plan_ids:
        return false()
    fresh = _fresh(today)
    listed = or_(*(_has_code(S.plan_ids, str(plan_id)) for plan_id in plan_ids))
    asked = exists().where(
        Participation.practice_id == S.practice_id,
        Participation.plan_id.in_(plan_ids),
        in_force(today),
    )
    return or_(and_(fresh, listed), and_(not_(fresh), asked))


def _fresh(today: date) -> ColumnElement[bool]:
    """No start or end date has come since the row's plan list was written."""
    return and_(S.plans_as_of <= today, or_(S.plans_stale_on.is_(None), S.plans_stale_on > today))


def _prefix(column: Any, word: str) -> ColumnElement[bool]:
    """`column` starts with `word`, as a range; % and _ are plain text."""
    upper = word[:-1] + chr(ord(word[-1]) + 1)
    return and_(column >= word, column < upper)


def _materialized(statement: Select[*tuple[Any, ...]], name: str) -> Any:
    """A CTE computed once however often it is referenced (SQLite ≥ 3.35, PostgreSQL ≥ 12)."""
    return statement.cte(name).prefix_with("MATERIALIZED")


# --- the page ------------------------------------------------------------------------------


def _page_with_details(
    session: Session, query: SearchQuery, where: _Conditions
) -> tuple[list[list[Any]], int, Sequence[Row[*tuple[Any, ...]]]]:
    """One statement: the page's therapists in order, each with its qualifying
    practices nearest first and who it is, and the total. Returns the page's sort
    keys (up to one more than the page, ending with the therapist id), the total
    and the rows."""
    by_name = query.sort is Sort.NAME
    best = _materialized(
        where.near(select(
            S.therapist_id.label("tid"),
            func.min(where.chord).label("c2"),
            *((func.min(S.last_name_key).label("last"), func.min(S.first_name_key).label("first"))
              if by_name else ()),
        ))
        .where(*where.all())
        .group_by(S.therapist_id),
        "best",
    )  # fmt: skip
    total = select(func.count()).select_from(best).scalar_subquery()
    page_rows = _first_page_rows(query, best).subquery("page")
    sort_key = _sort_key(query, page_rows)
    practice_c2 = where.chord.label("practice_c2")
    statement = (
        select(*page_rows.c, S.practice_id, practice_c2, total.label("total"), *_IDENTITY, *_TRAITS)
        .join(S, S.therapist_id == page_rows.c.tid)
        .join(Therapist, Therapist.id == page_rows.c.tid)
        .where(*where.all())
        .order_by(*sort_key, practice_c2, S.practice_id)
    )
    rows = session.connection().execute(statement).all()  # Core: no ORM layer to cross
    keys: dict[int, list[Any]] = {}
    for row in rows:
        if row.tid not in keys:
            keys[row.tid] = [row.last, row.first, row.tid] if by_name else [row.c2, row.tid]
    # An empty page (the data changed under a cursor) carries no total: count on its own.
    count = rows[0].total if rows else session.scalar(select(total)) or 0
    return list(keys.values()), count, rows


def _first_page_rows(query: SearchQuery, ranking: Any) -> Select[*tuple[Any, ...]]:
    """The ranking's rows after the cursor, in page order, one more than the page."""
    order = _sort_key(query, ranking)
    page = select(*ranking.c)
    keyset = _decode_cursor(query)
    if keyset:
        page = page.where(tuple_(*order) > tuple_(*keyset))
    return page.order_by(*order).limit(query.limit + 1)


def _sort_key(query: SearchQuery, ranking: Any) -> tuple[Any, ...]:
    """A ranking's page order: (c2, tid), or (last, first, tid) by name."""
    columns = ranking.c
    if query.sort is Sort.NAME:
        return columns.last, columns.first, columns.tid
    return columns.c2, columns.tid


def _page_details(
    session: Session, where: _Conditions, therapist_ids: list[int]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The qualifying practices of these therapists, and who they are."""
    if not therapist_ids:
        return []
    practice_c2 = where.chord.label("practice_c2")
    dialect = session.get_bind().dialect.name
    statement = (
        select(S.therapist_id.label("tid"), S.practice_id, practice_c2, *_IDENTITY, *_TRAITS)
        .join(Therapist, Therapist.id == S.therapist_id)
        .where(in_bound_ids(S.therapist_id, "tids", dialect), *where.all())
        .order_by(S.therapist_id, practice_c2, S.practice_id)
    )
    return session.connection().execute(statement, {"tids": therapist_ids}).all()


def _arrange(
    query: SearchQuery,
    keys: list[list[Any]],
    rows: Sequence[Row[*tuple[Any, ...]]],
    people: dict[int, dict[str, Any]],
) -> tuple[dict[int, list[tuple[int, float]]], str | None]:
    """The page's therapists in order, each with its nearest qualifying practices (at
    most 3) and their distances in km; who each one is goes into `people`. A key past
    the page means there is a next one: its cursor is the page's last key."""
    practices: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:  # each therapist's practices come nearest first
        found = practices[row.tid]
        if not found:
            people[row.tid] = {
                column.key: getattr(row, column.key) for column in (*_IDENTITY, *_TRAITS)
            }
        if len(found) < MAX_PRACTICES_PER_ITEM:
            found.append((row.practice_id, geo.km_from_chord_squared(row.practice_c2)))
    page = keys[: query.limit]
    ranked = {key[-1]: practices[key[-1]] for key in page}
    next_cursor = _encode_cursor(query, page[-1]) if len(keys) > query.limit else None
    return ranked, next_cursor


# --- the page's items -------------------------------------------------------------------


def _hits(
    session: Session,
    query: SearchQuery,
    ranked: dict[int, list[tuple[int, float]]],
    people: dict[int, dict[str, Any]],
    today: date,
) -> list[dict[str, Any]]:
    """The page's items. Who each therapist is came with the page; their practices'
    sites and plans take one more read, a statement built once with expanding
    parameters. Code lists come from the projection, names from the vocabularies."""
    if not ranked:
        return []
    sites: dict[int, dict[str, Any]] = {}
    plans: dict[int, list[dict[str, Any]]] = defaultdict(list)
    practice_ids = [pid for found in ranked.values() for pid, _d in found]
    statement = _sites(session.get_bind().dialect.name)
    result = session.connection().execute(statement, {"ids": practice_ids, "today": today})
    names = list(result.keys())
    split = len(names) - len(_PLAN_KEYS)
    for row in result:
        values = tuple(row)
        practice_id = values[0]
        if practice_id not in sites:
            sites[practice_id] = dict(zip(names[1:split], values[1:split], strict=True))
        if values[split] is not None:  # the plan id: in network with a plan today
            plans[practice_id].append(dict(zip(names[split:], values[split:], strict=True)))

    known = vocabulary(session)
    factor = geo.KM_PER_MILE if query.unit is Unit.MI else 1.0
    return [
        {
            **_identity(people[tid], known),
            "distance": round(found[0][1] / factor, 2),
            "practices": [
                _practice_hit(pid, round(d / factor, 2), sites[pid], plans[pid]) for pid, d in found
            ],
        }
        for tid, found in ranked.items()
    ]


_IDENTITY = (
    Therapist.id, Therapist.npi, Therapist.first_name, Therapist.middle_name,
    Therapist.last_name, Therapist.name_suffix, Therapist.credentials, Therapist.gender,
)  # fmt: skip
# The therapist's code lists, as the projection keeps them.
_TRAITS = (S.specialties, S.primary_specialty, S.certifications, S.conditions, S.services,
           S.languages)  # fmt: skip


def _identity(person: dict[str, Any], known: Vocabulary) -> dict[str, Any]:
    """A page row's therapist columns as TherapistHit fields: sorted code lists, and
    specialties named, primary first."""
    values = {column.key: person[column.key] for column in _IDENTITY}
    for column in (S.certifications, S.conditions, S.services, S.languages):
        values[column.key] = sorted(person[column.key].split())
    primary = person["primary_specialty"]
    values["specialties"] = [
        {"code": code, "slug": known.specialties[code].slug,
         "display_name": known.specialties[code].display_name, "primary": code == primary}
        for code in sorted(person["specialties"].split(), key=lambda code: (code != primary, code))
    ]  # fmt: skip
    return values


_LOCATION_COLUMNS = (
    Location.id, Location.name, Location.address_line1, Location.address_line2, Location.city,
    Location.state, Location.zip, Location.latitude, Location.longitude,
    Location.geocode_precision, Location.phone, Location.fax, Location.facility_type,
    Location.accessibility, Location.updated_at,
)  # fmt: skip
_PLAN_KEYS = ("plan_id", "plan_name", "plan_type", "payer_id", "payer_name", "network_tier",
              "effective_from", "effective_to", "verified_at")  # fmt: skip


@cache
def _sites(dialect: str) -> Select[*tuple[Any, ...]]:
    """Each practice's site, and the plans it is in network with today (one row per
    plan, or one row of nulls): the plan columns come last. Built once per dialect,
    with the practice ids and the day as bound values."""
    network = (
        select(Participation.practice_id, Plan.id.label("plan_id"), Plan.name.label("plan_name"),
               Plan.plan_type, Payer.id.label("payer_id"), Payer.name.label("payer_name"),
               Participation.network_tier, Participation.effective_from,
               Participation.effective_to, Participation.verified_at)
        .join(Plan, Plan.id == Participation.plan_id)
        .join(Payer, Payer.id == Plan.payer_id)
        .where(in_bound_ids(Participation.practice_id, "ids", dialect),
               in_force(bindparam("today", type_=Date)))
        .subquery("network")
    )  # fmt: skip
    return (
        select(Practice.id.label("practice_id"), Practice.accepting_new_patients,
               Practice.telehealth, Practice.home_visits, *_LOCATION_COLUMNS,
               *(network.c[key] for key in _PLAN_KEYS))
        .join(Location, Location.id == Practice.location_id)
        .outerjoin(network, network.c.practice_id == Practice.id)
        .where(in_bound_ids(Practice.id, "ids", dialect))
        .order_by(Practice.id, network.c.payer_name, network.c.plan_name)
    )  # fmt: skip


def _practice_hit(
    practice_id: int, distance: float, site: dict[str, Any], plans: list[dict[str, Any]]
) -> dict[str, Any]:
    """A PracticeHit's fields."""
    location = dict(site)
    flags = {name: location.pop(name) for name in _PRACTICE_FLAGS}
    return {"id": practice_id, "distance": distance, **flags, "location": location, "plans": plans}


_PRACTICE_FLAGS = ("accepting_new_patients", "telehealth", "home_visits")


# --- facets -------------------------------------------------------------------------------


def _page_keys_and_facets(
    session: Session, query: SearchQuery, where: _Conditions
) -> tuple[list[list[Any]], int, list[tuple[str, str, int]]]:
    """One statement, one pass over the area: the page's sort keys, the total, and the
    counts of matching therapists per facet value, each facet ignoring its own filter.

    The practices in the area are grouped once per therapist into what the page and
    each facet need: its nearest practice passing every filter (the page and the
    total), whether some practice passes every filter but a facet's own, and the
    therapist's value (or, for practice-level facets, which values its passing
    practices have). Counting therapists is then a plain count over those rows, with
    no DISTINCT per facet. Code lists are grouped as whole lists and split later.
    """
    dialect = session.get_bind().dialect.name
    by_name = query.sort is Sort.NAME
    # Each filter and each facet value is computed once per practice row, in a
    # subquery the planner may not flatten (OFFSET 0): flattened, every filter would
    # be evaluated again inside each aggregate that tests it.
    rows = (
        where.near(select(
            S.therapist_id.label("tid"),
            where.chord.label("c2"),
            *((S.last_name_key.label("last"), S.first_name_key.label("first")) if by_name else ()),
            *(test.label(f"ok_{facet.value}") for facet, test in where.by_facet.items()),
            *(_facet_column(dialect, facet, where).label(f"value_{facet.value}")
              for facet in query.facets),
        ))
        .where(where.area, *where.fixed)
        .offset(0)
        .subquery("area_rows")
    )  # fmt: skip

    def passing(*ignored: Facet) -> ColumnElement[bool]:
        return and_(true(), *(rows.c[f"ok_{f.value}"] for f in where.by_facet if f not in ignored))

    columns: list[Any] = [rows.c.tid, func.min(case((passing(), rows.c.c2))).label("c2")]
    if by_name:  # the therapist's own, the same on each of its rows
        columns += [func.min(rows.c.last).label("last"), func.min(rows.c.first).label("first")]
    for facet in query.facets:
        value = rows.c[f"value_{facet.value}"]
        name = facet.value
        if facet in _PRACTICE_VALUES:
            columns += [
                func.max(case((and_(passing(facet), value == option), 1), else_=0)).label(
                    f"{name}_{i}"
                )
                for i, option in enumerate(_PRACTICE_VALUES[facet])
            ]
        elif facet is Facet.PLAN_ID:
            columns.append(concat_agg(dialect, case((passing(facet), value))).label(name))
        else:  # a therapist-level value, the same on each of its rows
            columns.append(func.min(value).label(name))
            if _others_filter(where, facet):  # else every therapist in the area passes
                columns.append(func.max(case((passing(facet), 1), else_=0)).label(f"{name}_ok"))
    people = _materialized(select(*columns).group_by(rows.c.tid), "people")

    no_text, no_float = cast(null(), String), cast(null(), Float)
    qualified = select(*people.c).where(people.c.c2.is_not(None)).subquery("qualified")
    page = _first_page_rows(query, qualified).subquery("page")
    branches = [
        select(literal("page"), no_text, page.c.tid, page.c.c2,
               *((page.c.last, page.c.first) if by_name else (no_text, no_text))),
        select(literal("total"), no_text, func.count(people.c.c2), no_float, no_text, no_text),
    ]  # fmt: skip
    for facet in query.facets:
        name = facet.value
        label = literal(name)
        if facet in _PRACTICE_VALUES:
            branches += [
                select(label, literal(str(option)), func.sum(people.c[f"{name}_{i}"]),
                       no_float, no_text, no_text)
                for i, option in enumerate(_PRACTICE_VALUES[facet])
            ]  # fmt: skip
            continue
        value = people.c[name]
        ok = [value.is_not(None)]
        if f"{name}_ok" in people.c:
            ok.append(people.c[f"{name}_ok"] == 1)
        branches.append(
            select(label, cast(value, String), func.count(), no_float, no_text, no_text)
            .where(*ok)
            .group_by(value)
        )

    keys: list[list[Any]] = []
    total = 0
    facet_rows: list[tuple[str, str, int]] = []
    for kind, value, n, c2, last, first in session.connection().execute(union_all(*branches)):
        if kind == "page":
            keys.append([last, first, n] if by_name else [c2, n])
        elif kind == "total":
            total = n
        elif n:
            facet_rows.append((kind, value, n))
    keys.sort()  # the page's rows come unordered out of the union
    return keys, total, facet_rows


def _others_filter(where: _Conditions, facet: Facet) -> bool:
    """Some filter other than the facet's own is in use."""
    return any(other is not facet for other in where.by_facet)


def _facet_counts(
    session: Session, query: SearchQuery, facet_rows: list[tuple[str, str, int]]
) -> dict[str, list[FacetCount]]:
    """Facet menus from the counted rows: code lists split, values typed and named,
    chosen values kept, largest count first."""
    counted: dict[Facet, defaultdict[Any, int]] = {f: defaultdict(int) for f in query.facets}
    for facet_name, value, n in facet_rows:
        facet = Facet(facet_name)
        if facet in _CODE_LIST_FACETS:
            for code in set(value.split()):
                counted[facet][code] += n
        else:
            counted[facet][value] += n

    labels = _facet_labels(session, query, counted)
    results: dict[str, list[FacetCount]] = {}
    for facet, found in counted.items():
        counts = {_facet_value(facet, value): n for value, n in found.items()}
        for chosen in _selected(query, facet):
            counts.setdefault(chosen, 0)  # a chosen value stays visible in its menu
        results[facet.value] = [
            FacetCount(value=value, label=labels.get((facet, str(value))), count=n)
            for value, n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        ]
    return results


def _facet_column(dialect: str, facet: Facet, where: _Conditions) -> Any:
    """The row's value(s) for a facet: a column, or a padded code list."""
    if facet is not Facet.PLAN_ID:
        return _FACET_COLUMNS[facet]
    # Plans in network today: the stored list while it is fresh, else asked again.
    asked = code_list(
        dialect,
        Participation.plan_id,
        Participation,
        and_(Participation.practice_id == S.practice_id, in_force(where.today)),
    )
    return case((_fresh(where.today), S.plan_ids), else_=asked)


def _facet_labels(
    session: Session, query: SearchQuery, counted: dict[Facet, defaultdict[Any, int]]
) -> dict[tuple[Facet, str], str]:
    """Display names for the values found (and chosen): vocabularies from memory, plan
    names from the database."""
    known = vocabulary(session)
    names: dict[Facet, Mapping[str, str]] = {
        Facet.SPECIALTY: {code: entry.display_name for code, entry in known.specialties.items()},
        Facet.CONDITION: known.conditions,
        Facet.LANGUAGE: known.languages,
    }
    labels: dict[tuple[Facet, str], str] = {}
    for facet, found in counted.items():
        wanted = {str(value) for value in [*found, *_selected(query, facet)]}
        if facet is Facet.PLAN_ID and wanted:
            plans = select(Plan.id, Plan.name).where(Plan.id.in_(sorted(int(v) for v in wanted)))
            labels |= {(facet, str(plan_id)): name for plan_id, name in session.execute(plans)}
        elif facet in names:
            labels |= {(facet, value): names[facet][value] for value in wanted
                       if value in names[facet]}  # fmt: skip
    return labels


def _facet_value(facet: Facet, text: str) -> Any:
    """Facet values come back as text; give them their JSON type."""
    if facet is Facet.PLAN_ID:
        return int(text)
    if facet in (Facet.ACCEPTING_NEW_PATIENTS, Facet.TELEHEALTH):
        return text == "True"
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


_FACET_COLUMNS: dict[Facet, Any] = {
    Facet.SPECIALTY: S.specialties,
    Facet.CONDITION: S.conditions,
    Facet.LANGUAGE: S.languages,
    Facet.GENDER: S.gender,
    Facet.ACCEPTING_NEW_PATIENTS: S.accepting_new_patients,
    Facet.TELEHEALTH: S.telehealth,
    Facet.FACILITY_TYPE: S.facility_type,
}
# Facets whose value is per practice, with every value they can take.
_PRACTICE_VALUES: dict[Facet, tuple[Any, ...]] = {
    Facet.ACCEPTING_NEW_PATIENTS: (True, False),
    Facet.TELEHEALTH: (True, False),
    Facet.FACILITY_TYPE: tuple(FacilityType),
}
_CODE_LIST_FACETS = {Facet.SPECIALTY, Facet.CONDITION, Facet.LANGUAGE, Facet.PLAN_ID}


# --- cursors -----------------------------------------------------------------------------


def _fingerprint(query: SearchQuery) -> str:
    """Identifies the result set a cursor belongs to (everything but the page)."""
    parts = {k: v for k, v in query.__dict__.items() if k not in ("cursor", "limit", "facets")}
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:16]


def _encode_cursor(query: SearchQuery, key: list[Any]) -> str:
    payload = json.dumps({"v": 2, "s": query.sort.value, "k": key, "f": _fingerprint(query)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(query: SearchQuery) -> list[Any] | None:
    if query.cursor is None:
        return None
    invalid = InvalidInput.at(["query", "cursor"], "not a cursor this API issued")
    try:
        raw = base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4))
        payload = json.loads(raw)
        key = payload["k"]
        if payload.get("v") != 2 or not isinstance(key, list):
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
