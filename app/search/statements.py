"""The search's SQL, built once per query shape and run with the request's values.

What a search's statements look like depends on its *shape*: which filters are in
use and with how many values, radius or viewport, sort, cursor, facets. The values
themselves (the origin, the codes, the day, the cursor's keys) are bound at
execution. Building a statement and walking it for SQLAlchemy's cache key cost
0.7 to 3 ms of every request (measured on both backends, the most with facets); now
each shape is built once per process, and a statement object, reused, keeps its
cache key, so a request only binds values.

Every search reads the flat projection `search_practices` (app.search.projection).
Practice-level conditions (inside the radius or viewport, plan, accepting,
telehealth, facility type) are all tested on the same row; a therapist qualifies
through any one practice that passes every condition, and is ranked by the
nearest such practice.
"""

from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache, partial
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Date,
    Float,
    Integer,
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
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from app.db import in_bound_ids
from app.locations.models import FacilityType, Location
from app.networks.models import Participation, Payer, Plan
from app.search import geo
from app.search.models import SearchPractice
from app.search.projection import code_list, concat_agg, in_force
from app.search.schemas import Facet, SearchQuery, Sort
from app.therapists.models import Practice, Therapist

GENERAL_PT = "225100000X"  # matches every physical therapist (any 2251* code)
S = SearchPractice


@dataclass(frozen=True, slots=True)
class Shape:
    """Everything about a search that changes its SQL; nothing that only changes values."""

    dialect: str
    viewport: bool  # a bbox search: the exact area test is the box, not the radius
    longitude_ranges: int  # 2 when the searched box crosses the antimeridian
    specialties: int  # codes other than the general PT code
    any_pt: bool  # the general PT code is asked for
    conditions: int
    certifications: int
    languages: int
    genders: int
    facility_types: int
    plans: int
    payer_plans: int | None  # the payers' plans; None without a payer filter
    accepting_new_patients: bool | None
    telehealth: bool | None
    words: int
    sort: Sort
    after: bool  # a cursor's keys bound the page
    facets: tuple[Facet, ...]


@dataclass(frozen=True, slots=True)
class Search:
    """A request's statements and the values they are run with."""

    shape: Shape
    statements: "Statements"
    values: dict[str, Any]


def prepare(
    query: SearchQuery,
    *,
    dialect: str,
    today: date,
    payer_plans: list[int] | None,
    after: list[Any] | None,
) -> Search:
    """The statements for the query's shape (built on first use) and its values."""
    center = (query.origin.latitude, query.origin.longitude)
    if query.origin.bbox is not None:
        box = geo.Box(*query.origin.bbox)
        reach = geo.covering_reach_km(box, center)
    else:
        reach = query.radius_km or 0.0
        box = geo.box_around(*center, reach)
    codes = [code for code in query.specialties if code != GENERAL_PT]
    shape = Shape(
        dialect=dialect,
        viewport=query.origin.bbox is not None,
        longitude_ranges=len(box.longitude_ranges()),
        specialties=len(codes),
        any_pt=GENERAL_PT in query.specialties,
        conditions=len(query.conditions),
        certifications=len(query.certifications),
        languages=len(query.languages),
        genders=len(query.genders),
        facility_types=len(query.facility_types),
        plans=len(query.plan_ids),
        payer_plans=None if payer_plans is None else len(payer_plans),
        accepting_new_patients=query.accepting_new_patients,
        telehealth=query.telehealth,
        words=len(query.q),
        sort=query.sort,
        after=after is not None,
        facets=tuple(sorted(set(query.facets))),  # the same statement in any order
    )
    values: dict[str, Any] = {
        "today": today,
        "page_rows": query.limit + 1,  # one more than the page: is there a next one?
        **geo.origin_values(*center),
        **geo.near_values(dialect, box, center, reach),
        **(geo.box_values(box) if shape.viewport else
           {"max_chord2": geo.chord_squared_within(reach)}),
        **_code_values("specialty", codes),
        **_code_values("condition", query.conditions),
        **_code_values("certification", query.certifications),
        **_code_values("language", query.languages),
        **_plan_values("plan", query.plan_ids),
        **_plan_values("payer_plan", payer_plans or ()),
        **{f"gender_{i}": gender for i, gender in enumerate(query.genders)},
        **{f"facility_type_{i}": kind for i, kind in enumerate(query.facility_types)},
        **_word_values(query.q),
        **_after_values(query.sort, after),
    }  # fmt: skip
    return Search(shape, statements(shape), values)


# --- the conditions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Conditions:
    """A shape's conditions over the projection."""

    chord: ColumnElement[float]  # chord² from the origin (ranks like the distance)
    near: Any  # Select → Select narrowed by the spatial index
    area: ColumnElement[bool]  # the exact radius or box test
    fixed: list[ColumnElement[bool]]  # filters no facet ignores (certification, payer, q)
    by_facet: dict[Facet, ColumnElement[bool]]  # one per facet-able filter in use

    @classmethod
    def of(cls, shape: Shape) -> "_Conditions":
        chord = geo.chord_squared()
        if shape.viewport:
            area = geo.in_box(shape.longitude_ranges)
        else:
            area = chord <= bindparam("max_chord2", type_=Float)
        near = partial(geo.near, dialect=shape.dialect, longitude_ranges=shape.longitude_ranges)
        fixed = []
        if shape.certifications:
            fixed.append(or_(*_code_tests(S.certifications, "certification", shape.certifications)))
        for i in range(shape.words):
            fixed.append(or_(_prefix(S.first_name_key, i), _prefix(S.last_name_key, i)))
        if shape.payer_plans is not None:
            fixed.append(_in_plans(shape.dialect, "payer_plan", shape.payer_plans))
        return cls(chord, near, area, fixed, _facet_filters(shape))

    def all(self) -> list[ColumnElement[bool]]:
        """Every condition but the index: a row passing them all qualifies."""
        return [self.area, *self.fixed, *self.by_facet.values()]


def _facet_filters(shape: Shape) -> dict[Facet, ColumnElement[bool]]:
    """The filters a facet can ignore, by facet; only those in use."""
    filters: dict[Facet, ColumnElement[bool]] = {}
    if shape.specialties or shape.any_pt:
        tests = _code_tests(S.specialties, "specialty", shape.specialties)
        if shape.any_pt:
            tests.append(S.specialties.contains(" 2251"))  # any physical therapist code
        filters[Facet.SPECIALTY] = or_(*tests)
    if shape.conditions:
        filters[Facet.CONDITION] = or_(*_code_tests(S.conditions, "condition", shape.conditions))
    if shape.languages:
        filters[Facet.LANGUAGE] = or_(*_code_tests(S.languages, "language", shape.languages))
    if shape.genders:
        filters[Facet.GENDER] = S.gender.in_(
            [bindparam(f"gender_{i}", type_=S.gender.type) for i in range(shape.genders)]
        )
    if shape.plans:
        filters[Facet.PLAN_ID] = _in_plans(shape.dialect, "plan", shape.plans)
    if shape.accepting_new_patients is not None:
        filters[Facet.ACCEPTING_NEW_PATIENTS] = S.accepting_new_patients.is_(
            shape.accepting_new_patients
        )
    if shape.telehealth is not None:
        filters[Facet.TELEHEALTH] = S.telehealth.is_(shape.telehealth)
    if shape.facility_types:
        kinds = S.facility_type.type
        filters[Facet.FACILITY_TYPE] = S.facility_type.in_(
            [bindparam(f"facility_type_{i}", type_=kinds) for i in range(shape.facility_types)]
        )
    return filters


def _code_tests(column: Any, name: str, count: int) -> list[ColumnElement[bool]]:
    """The padded code list (" a b ") holds the code bound as `name_i`, for each i."""
    return [column.like(bindparam(f"{name}_{i}", type_=String), escape="/") for i in range(count)]


def _code_values(name: str, codes: Any) -> dict[str, str]:
    """LIKE patterns for " code ", with the pattern characters escaped."""
    return {f"{name}_{i}": f"%{_escape_like(f' {code} ')}%" for i, code in enumerate(codes)}


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _in_plans(dialect: str, name: str, count: int) -> ColumnElement[bool]:
    """The practice is in network today with one of the plans bound as `name`.

    The row's plan list answers while it is fresh (no start or end date has come
    since it was written); otherwise the participations themselves do. A CASE, not
    `fresh AND listed OR NOT fresh AND asked`: SQLite runs the EXISTS of that form
    for every row, fresh or not (five times the cost of the whole area scan,
    measured)."""
    if not count:
        return false()
    listed = or_(*_code_tests(S.plan_ids, name, count))
    asked = exists().where(
        Participation.practice_id == S.practice_id,
        in_bound_ids(Participation.plan_id, f"{name}_ids", dialect),
        in_force(_today()),
    )
    in_network: ColumnElement[bool] = case((_fresh(), listed), else_=asked)
    return in_network


def _plan_values(name: str, plan_ids: Any) -> dict[str, Any]:
    return _code_values(name, plan_ids) | ({f"{name}_ids": list(plan_ids)} if plan_ids else {})


def _today() -> BindParameter[date]:
    return bindparam("today", type_=Date)


def _fresh() -> ColumnElement[bool]:
    """No start or end date has come since the row's plan list was written."""
    today = _today()
    return and_(S.plans_as_of <= today, or_(S.plans_stale_on.is_(None), S.plans_stale_on > today))


def _prefix(column: Any, i: int) -> ColumnElement[bool]:
    """`column` starts with name word i, as a range; % and _ are plain text."""
    return and_(
        column >= bindparam(f"word_{i}", type_=String),
        column < bindparam(f"word_{i}_next", type_=String),
    )


def _word_values(words: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for i, word in enumerate(words):
        values[f"word_{i}"] = word
        values[f"word_{i}_next"] = word[:-1] + chr(ord(word[-1]) + 1)  # the first after it
    return values


def _after_values(sort: Sort, after: list[Any] | None) -> dict[str, Any]:
    if after is None:
        return {}
    names = ("after_last", "after_first", "after_tid") if sort is Sort.NAME else (
        "after_c2", "after_tid")  # fmt: skip
    return dict(zip(names, after, strict=True))


def _materialized(statement: Select[*tuple[Any, ...]], name: str) -> Any:
    """A CTE computed once however often it is referenced (SQLite ≥ 3.35, PostgreSQL ≥ 12)."""
    return statement.cte(name).prefix_with("MATERIALIZED")


# --- the statements ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statements:
    """A shape's statements. Without facets: `page`. With facets: `keys_and_facets`,
    then `details` for the page's therapists (bound as `tids`)."""

    page: Select[*tuple[Any, ...]] | None
    count: Select[*tuple[Any, ...]] | None  # the total alone, for an empty page
    keys_and_facets: CompoundSelect[*tuple[Any, ...]] | None
    details: Select[*tuple[Any, ...]] | None


# A front end sends a few shapes over and over. A shape with every facet holds about
# 550 kB of statement objects (measured), so the cache is bounded at about 70 MB; a
# shape pushed out is built again, as every request was before.
@lru_cache(maxsize=128)
def statements(shape: Shape) -> Statements:
    where = _Conditions.of(shape)
    if shape.facets:
        return Statements(None, None, _keys_and_facets(shape, where), _details(where, shape))
    page, count = _page_with_details(shape, where)
    return Statements(page, count, None, None)


IDENTITY = (
    Therapist.id, Therapist.npi, Therapist.first_name, Therapist.middle_name,
    Therapist.last_name, Therapist.name_suffix, Therapist.credentials, Therapist.gender,
)  # fmt: skip
# The therapist's code lists, as the projection keeps them.
TRAITS = (S.specialties, S.primary_specialty, S.certifications, S.conditions, S.services,
          S.languages)  # fmt: skip


def _page_with_details(
    shape: Shape, where: _Conditions
) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]]]:
    """One statement: the page's therapists in order (up to one more than the page),
    each with its qualifying practices nearest first and who it is, and the total;
    and the total alone."""
    by_name = shape.sort is Sort.NAME
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
    page_rows = _first_page_rows(shape, best).subquery("page")
    practice_c2 = where.chord.label("practice_c2")
    page = (
        select(*page_rows.c, S.practice_id, practice_c2, total.label("total"), *IDENTITY, *TRAITS)
        .join(S, S.therapist_id == page_rows.c.tid)
        .join(Therapist, Therapist.id == page_rows.c.tid)
        .where(*where.all())
        .order_by(*_sort_key(shape, page_rows), practice_c2, S.practice_id)
    )
    return page, select(total)


def _first_page_rows(shape: Shape, ranking: Any) -> Select[*tuple[Any, ...]]:
    """The ranking's rows after the cursor, in page order, one more than the page."""
    order = _sort_key(shape, ranking)
    page = select(*ranking.c)
    if shape.after:
        keys = (
            [bindparam("after_c2", type_=Float)]
            if shape.sort is Sort.DISTANCE
            else [bindparam("after_last", type_=String), bindparam("after_first", type_=String)]
        )
        page = page.where(tuple_(*order) > tuple_(*keys, bindparam("after_tid", type_=Integer)))
    return page.order_by(*order).limit(bindparam("page_rows", type_=Integer))


def _sort_key(shape: Shape, ranking: Any) -> tuple[Any, ...]:
    """A ranking's page order: (c2, tid), or (last, first, tid) by name."""
    columns = ranking.c
    if shape.sort is Sort.NAME:
        return columns.last, columns.first, columns.tid
    return columns.c2, columns.tid


def _details(where: _Conditions, shape: Shape) -> Select[*tuple[Any, ...]]:
    """The qualifying practices of the therapists bound as `tids`, and who they are."""
    practice_c2 = where.chord.label("practice_c2")
    return (
        select(S.therapist_id.label("tid"), S.practice_id, practice_c2, *IDENTITY, *TRAITS)
        .join(Therapist, Therapist.id == S.therapist_id)
        .where(in_bound_ids(S.therapist_id, "tids", shape.dialect), *where.all())
        .order_by(S.therapist_id, practice_c2, S.practice_id)
    )


_LOCATION_COLUMNS = (
    Location.id, Location.name, Location.address_line1, Location.address_line2, Location.city,
    Location.state, Location.zip, Location.latitude, Location.longitude,
    Location.geocode_precision, Location.phone, Location.fax, Location.facility_type,
    Location.accessibility, Location.updated_at,
)  # fmt: skip
PLAN_KEYS = ("plan_id", "plan_name", "plan_type", "payer_id", "payer_name", "network_tier",
             "effective_from", "effective_to", "verified_at")  # fmt: skip


@cache
def sites(dialect: str) -> Select[*tuple[Any, ...]]:
    """Each practice bound as `ids`: its site, and the plans it is in network with
    `today` (one row per plan, or one row of nulls): the plan columns come last."""
    network = (
        select(Participation.practice_id, Plan.id.label("plan_id"), Plan.name.label("plan_name"),
               Plan.plan_type, Payer.id.label("payer_id"), Payer.name.label("payer_name"),
               Participation.network_tier, Participation.effective_from,
               Participation.effective_to, Participation.verified_at)
        .join(Plan, Plan.id == Participation.plan_id)
        .join(Payer, Payer.id == Plan.payer_id)
        .where(in_bound_ids(Participation.practice_id, "ids", dialect), in_force(_today()))
        .subquery("network")
    )  # fmt: skip
    return (
        select(Practice.id.label("practice_id"), Practice.accepting_new_patients,
               Practice.telehealth, Practice.home_visits, *_LOCATION_COLUMNS,
               *(network.c[key] for key in PLAN_KEYS))
        .join(Location, Location.id == Practice.location_id)
        .outerjoin(network, network.c.practice_id == Practice.id)
        .where(in_bound_ids(Practice.id, "ids", dialect))
        .order_by(Practice.id, network.c.payer_name, network.c.plan_name)
    )  # fmt: skip


@cache
def plan_names(dialect: str) -> Select[*tuple[Any, ...]]:
    """The names of the plans bound as `ids`."""
    return select(Plan.id, Plan.name).where(in_bound_ids(Plan.id, "ids", dialect))


# --- facets --------------------------------------------------------------------------

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


def _keys_and_facets(shape: Shape, where: _Conditions) -> CompoundSelect[*tuple[Any, ...]]:
    """One statement, one pass over the area: the page's sort keys, the total, and the
    counts of matching therapists per facet value, each facet ignoring its own filter.
    Rows: (kind, value, n, c2, last, first), kind "page", "total" or a facet's name.

    The practices in the area are grouped once per therapist into what the page and
    each facet need: its nearest practice passing every filter (the page and the
    total), whether some practice passes every filter but a facet's own, and the
    therapist's value (or, for practice-level facets, which values its passing
    practices have). Counting therapists is then a plain count over those rows, with
    no DISTINCT per facet. Code lists are grouped as whole lists and split later.
    """
    by_name = shape.sort is Sort.NAME
    # Each filter and each facet value is computed once per practice row, in a
    # subquery the planner may not flatten (OFFSET 0): flattened, every filter would
    # be evaluated again inside each aggregate that tests it.
    rows = (
        where.near(select(
            S.therapist_id.label("tid"),
            where.chord.label("c2"),
            *((S.last_name_key.label("last"), S.first_name_key.label("first")) if by_name else ()),
            *(test.label(f"ok_{facet.value}") for facet, test in where.by_facet.items()),
            *(_facet_column(shape.dialect, facet).label(f"value_{facet.value}")
              for facet in shape.facets),
        ))
        .where(where.area, *where.fixed)
        .offset(0)
        .subquery("area_rows")
    )  # fmt: skip
    if len(where.by_facet) >= 2:
        # A row failing two filters counts for nothing: not for the page or the total
        # (they need every filter), not for any facet (each ignores only its own).
        # Dropped before grouping: on the dense benchmark with three filters, 28% of
        # the rows the grouping would sort.
        failures = sum(
            (case((rows.c[f"ok_{facet.value}"], 0), else_=1) for facet in where.by_facet),
            start=literal(0),
        )
        rows = select(rows).where(failures <= 1).subquery("near_rows")

    def passing(*ignored: Facet) -> ColumnElement[bool]:
        return and_(true(), *(rows.c[f"ok_{f.value}"] for f in where.by_facet if f not in ignored))

    columns: list[Any] = [rows.c.tid, func.min(case((passing(), rows.c.c2))).label("c2")]
    if by_name:  # the therapist's own, the same on each of its rows
        columns += [func.min(rows.c.last).label("last"), func.min(rows.c.first).label("first")]
    for facet in shape.facets:
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
            columns.append(concat_agg(shape.dialect, case((passing(facet), value))).label(name))
        else:  # a therapist-level value, the same on each of its rows
            columns.append(func.min(value).label(name))
            if any(other is not facet for other in where.by_facet):
                # else every therapist in the area passes
                columns.append(func.max(case((passing(facet), 1), else_=0)).label(f"{name}_ok"))
    people = _materialized(select(*columns).group_by(rows.c.tid), "people")

    no_text, no_float = cast(null(), String), cast(null(), Float)
    qualified = select(*people.c).where(people.c.c2.is_not(None)).subquery("qualified")
    page = _first_page_rows(shape, qualified).subquery("page")
    # The total and every practice-level value's count in one pass over the groups
    # (one pass per value cost 1.6 ms each on the dense PostgreSQL benchmark).
    sums = _materialized(
        select(
            func.count(people.c.c2).label("total"),
            *(func.sum(people.c[f"{facet.value}_{i}"]).label(f"{facet.value}_{i}")
              for facet in shape.facets if facet in _PRACTICE_VALUES
              for i, _option in enumerate(_PRACTICE_VALUES[facet])),
        ),
        "sums",
    )  # fmt: skip
    branches = [
        select(literal("page"), no_text, page.c.tid, page.c.c2,
               *((page.c.last, page.c.first) if by_name else (no_text, no_text))),
        select(literal("total"), no_text, sums.c.total, no_float, no_text, no_text),
    ]  # fmt: skip
    for facet in shape.facets:
        name = facet.value
        label = literal(name)
        if facet in _PRACTICE_VALUES:
            branches += [
                select(label, literal(str(option)), sums.c[f"{name}_{i}"],
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
    return union_all(*branches)


def _facet_column(dialect: str, facet: Facet) -> Any:
    """The row's value(s) for a facet: a column, or a padded code list."""
    if facet is not Facet.PLAN_ID:
        return _FACET_COLUMNS[facet]
    # Plans in network today: the stored list while it is fresh, else asked again.
    asked = code_list(
        dialect,
        Participation.plan_id,
        Participation,
        and_(Participation.practice_id == S.practice_id, in_force(_today())),
    )
    return case((_fresh(), S.plan_ids), else_=asked)
