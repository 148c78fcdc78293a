"""The therapist search: runs a query's statements (app.search.statements) and turns
their rows into the page: items, total, facet menus, the next cursor.

A search is at most two statements before the page's details: the page with its
practices and the total, or — with facets — the page's keys, the total and every
facet count at once, then the page's practices.
"""

import base64
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import InvalidInput
from app.fields import MAX_ID
from app.networks.models import Plan
from app.reference.vocabulary import Vocabulary, vocabulary
from app.search import geo, statements
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
from app.search.statements import IDENTITY, PLAN_KEYS, TRAITS, Search


def search_therapists(session: Session, query: SearchQuery) -> SearchResults:
    today = utcnow().date()
    search = statements.prepare(
        query,
        dialect=session.get_bind().dialect.name,
        today=today,
        payer_plans=_payer_plans(session, query),
        after=_decode_cursor(query),
    )
    connection = session.connection()  # Core: no ORM layer to cross
    if query.facets:
        # The area is read once for the page, the total and every facet count; the
        # page's practices and who its therapists are take one more short read.
        keys, total, facet_rows = _page_keys_and_facets(connection, search)
        rows = _page_details(connection, search, [key[-1] for key in keys])
        facets = _facet_counts(session, query, facet_rows)
    else:
        keys, total, rows = _page_with_details(connection, search)
        facets = {}
    people: dict[int, dict[str, Any]] = {}
    ranked, next_cursor = _arrange(query, keys, rows, people)
    # The page is assembled as plain values and validated once, as a whole: one
    # call into the validator instead of one per therapist, practice and plan.
    return SearchResults.model_validate(
        {
            "items": _hits(session, query, ranked, people, today),
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


def _payer_plans(session: Session, query: SearchQuery) -> list[int] | None:
    """The plans of the payers asked for (the filter is "in any of their plans")."""
    if not query.payer_ids:
        return None
    return list(session.scalars(select(Plan.id).where(Plan.payer_id.in_(query.payer_ids))))


# --- the page ------------------------------------------------------------------------------


def _page_with_details(
    connection: Connection, search: Search
) -> tuple[list[list[Any]], int, Sequence[Row[*tuple[Any, ...]]]]:
    """The page's therapists in order, each with its qualifying practices nearest first
    and who it is, and the total. Returns the page's sort keys (up to one more than
    the page, ending with the therapist id), the total and the rows."""
    assert search.statements.page is not None
    assert search.statements.count is not None
    rows = connection.execute(search.statements.page, search.values).all()
    by_name = search.shape.sort is Sort.NAME
    keys: dict[int, list[Any]] = {}
    for row in rows:
        if row.tid not in keys:
            keys[row.tid] = [row.last, row.first, row.tid] if by_name else [row.c2, row.tid]
    # An empty page (the data changed under a cursor) carries no total: count on its own.
    if rows:
        count = rows[0].total
    else:
        count = connection.execute(search.statements.count, search.values).scalar() or 0
    return list(keys.values()), count, rows


def _page_details(
    connection: Connection, search: Search, therapist_ids: list[int]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The qualifying practices of these therapists, and who they are."""
    if not therapist_ids:
        return []
    assert search.statements.details is not None
    values = search.values | {"tids": therapist_ids}
    return connection.execute(search.statements.details, values).all()


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
                column.key: getattr(row, column.key) for column in (*IDENTITY, *TRAITS)
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
    statement = statements.sites(session.get_bind().dialect.name)
    result = session.connection().execute(statement, {"ids": practice_ids, "today": today})
    names = list(result.keys())
    split = len(names) - len(PLAN_KEYS)
    for row in result:
        values = tuple(row)
        practice_id = values[0]
        if practice_id not in sites:
            sites[practice_id] = dict(zip(names[1:split], values[1:split], strict=True))
        if values[split] is not None:  # the plan id: in network with a plan today
            plans[practice_id].append(dict(zip(names[split:], values[split:], strict=True)))

    known = vocabulary(session)
    factor = geo.KM_PER_MILE if query.unit is Unit.MI else 1.0
    items = []
    for tid, found in ranked.items():
        # On PostgreSQL each statement reads its own snapshot: a practice deleted
        # after the page was read has no site here, and is left out.
        kept = [(pid, distance) for pid, distance in found if pid in sites]
        if not kept:
            continue
        practices = [
            _practice_hit(pid, round(d / factor, 2), sites[pid], plans[pid]) for pid, d in kept
        ]
        items.append(
            _identity(people[tid], known)
            | {"distance": practices[0]["distance"], "practices": practices}
        )
    return items


def _identity(person: dict[str, Any], known: Vocabulary) -> dict[str, Any]:
    """A page row's therapist columns as TherapistHit fields: sorted code lists, and
    specialties named, primary first."""
    values = {column.key: person[column.key] for column in IDENTITY}
    for name in ("certifications", "conditions", "services", "languages"):
        values[name] = sorted(person[name].split())
    primary = person["primary_specialty"]
    values["specialties"] = [
        {"code": code, "slug": known.specialties[code].slug,
         "display_name": known.specialties[code].display_name, "primary": code == primary}
        for code in sorted(person["specialties"].split(), key=lambda code: (code != primary, code))
    ]  # fmt: skip
    return values


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
    connection: Connection, search: Search
) -> tuple[list[list[Any]], int, list[tuple[str, str, int]]]:
    """The page's sort keys, the total, and the (facet, value, count) rows."""
    assert search.statements.keys_and_facets is not None
    by_name = search.shape.sort is Sort.NAME
    keys: list[list[Any]] = []
    total = 0
    facet_rows: list[tuple[str, str, int]] = []
    result = connection.execute(search.statements.keys_and_facets, search.values)
    for kind, value, n, c2, last, first in result:
        if kind == "page":
            keys.append([last, first, n] if by_name else [c2, n])
        elif kind == "total":
            total = n
        elif n:
            facet_rows.append((kind, value, n))
    keys.sort()  # the page's rows come unordered out of the union
    return keys, total, facet_rows


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
            plans = statements.plan_names(session.get_bind().dialect.name)
            ids = {"ids": sorted(int(value) for value in wanted)}
            labels |= {(facet, str(plan_id)): name for plan_id, name in session.execute(plans, ids)}
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
    return list(key)


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
