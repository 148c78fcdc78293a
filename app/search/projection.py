"""Keeps the search projection (`search_practices`) in step with the records.

Every ORM write is noticed by session hooks: a flush records which therapists,
practices, locations and plans changed, and the commit rebuilds the affected
therapists' rows in the same transaction, so a search never sees a half-applied
change. Bulk loaders that write with Core statements call `refresh()` themselves.

Rows are rebuilt with one INSERT … SELECT per batch of therapists: the database
copies and aggregates, Python only names the therapists. Whatever inserts rows
then hands the same therapists to `geo.index_new_rows()` (SQLite's R*Tree). A bulk loader that has
just created a therapist already holds everything its rows need, so `traits()`
and `practice_row()` build them in Python instead, with the values a rebuild
writes (tests/imports/test_search_rows.py compares them).
"""

import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from app.db import utcnow
from app.locations.models import Location
from app.networks.models import Participation, Plan
from app.search import geo
from app.search.models import SearchPractice
from app.therapists.models import (
    Practice,
    Therapist,
    TherapistSpecialty,
    therapist_certifications,
    therapist_conditions,
    therapist_languages,
    therapist_services,
)

_BATCH = 500  # therapists per statement (well under every bind-parameter limit)
_CELLS_PER_DEGREE = 10  # spatial key: 0.1° latitude bands, 0.1° longitude cells
_LONGITUDE_CELLS = 4096  # more than 360 degrees of 0.1° cells
_ID_SPAN = 2**31  # practice ids are 32-bit


def spatial_key(latitude: Any, longitude: Any, practice_id: Any) -> Any:
    """SQL: band, then cell, then practice, so neighbours on the map get neighbouring keys."""
    band = cast(func.floor((latitude + 90) * _CELLS_PER_DEGREE), BigInteger)
    cell = cast(func.floor((longitude + 180) * _CELLS_PER_DEGREE), BigInteger)
    return (band * _LONGITUDE_CELLS + cell) * _ID_SPAN + practice_id


def concat_agg(dialect: str, column: Any) -> Any:
    """The aggregate joining a group's values with spaces (order unspecified)."""
    text = column if isinstance(column.type, String) else cast(column, String)
    if dialect == "postgresql":
        return func.string_agg(text, literal(" "))
    return func.group_concat(text, literal(" "))


def code_list(dialect: str, column: Any, owner: Any, where: ColumnElement[bool]) -> Any:
    """' a b c ': the values of `column` for one row, space-separated, padded."""
    joined = concat_agg(dialect, column)
    values = select(joined).select_from(owner).where(where).scalar_subquery()
    return literal(" ") + func.coalesce(values, literal("")) + literal(" ")


def in_force(day: date | ColumnElement[date], held: Any = Participation) -> ColumnElement[bool]:
    """The participation is in force on `day` (not before its start, not after its end)."""
    return and_(
        or_(held.effective_from.is_(None), held.effective_from <= day),
        or_(held.effective_to.is_(None), held.effective_to >= day),
    )


def _source(dialect: str, today: date) -> Any:
    """SELECT producing the projection rows (all practices; callers narrow it)."""
    latitude = func.radians(Location.latitude)
    longitude = func.radians(Location.longitude)
    practice_plans = Participation.practice_id == Practice.id
    # The next day the practice's set of current plans can change: a start still to
    # come, or the last day of one in force. Until then the stored list holds.
    next_change = (
        select(
            func.min(
                case(
                    (Participation.effective_from > today, Participation.effective_from),
                    (Participation.effective_to >= today, Participation.effective_to),
                )
            )
        )
        .where(practice_plans)
        .scalar_subquery()
    )
    return (
        select(
            spatial_key(Location.latitude, Location.longitude, Practice.id).label("id"),
            Practice.id.label("practice_id"),
            Practice.therapist_id,
            Location.latitude,
            Location.longitude,
            (func.cos(latitude) * func.cos(longitude)).label("x"),
            (func.cos(latitude) * func.sin(longitude)).label("y"),
            func.sin(latitude).label("z"),
            Practice.accepting_new_patients,
            Practice.telehealth,
            Location.facility_type,
            Therapist.gender,
            Therapist.last_name_key,
            Therapist.first_name_key,
            code_list(
                dialect,
                TherapistSpecialty.specialty_code,
                TherapistSpecialty,
                TherapistSpecialty.therapist_id == Practice.therapist_id,
            ).label("specialties"),
            *(
                code_list(
                    dialect, table.c[column], table, table.c.therapist_id == Practice.therapist_id
                ).label(name)
                for name, (table, column) in _LINKS.items()
            ),
            select(TherapistSpecialty.specialty_code)
            .where(
                TherapistSpecialty.therapist_id == Practice.therapist_id,
                TherapistSpecialty.is_primary,
            )
            .scalar_subquery()
            .label("primary_specialty"),
            code_list(
                dialect,
                Participation.plan_id,
                Participation,
                and_(practice_plans, in_force(today)),
            ).label("plan_ids"),
            literal(today).label("plans_as_of"),
            next_change.label("plans_stale_on"),
        )
        .join(Location, Location.id == Practice.location_id)
        .join(Therapist, Therapist.id == Practice.therapist_id)
    )


_LINKS = {
    "conditions": (therapist_conditions, "condition_slug"),
    "certifications": (therapist_certifications, "certification_code"),
    "languages": (therapist_languages, "language_code"),
    "services": (therapist_services, "service_slug"),
}
_COLUMNS = [
    "id", "practice_id", "therapist_id", "latitude", "longitude", "x", "y", "z",
    "accepting_new_patients", "telehealth", "facility_type", "gender", "last_name_key",
    "first_name_key", "specialties", "conditions", "certifications", "languages", "services",
    "primary_specialty", "plan_ids",
    "plans_as_of", "plans_stale_on",
]  # fmt: skip


def _padded(codes: Iterable[str]) -> str:
    """The code-list form, " a b ", sorted (what search reads does not depend on order)."""
    return f" {' '.join(sorted(codes))} "


def traits(
    *,
    gender: Any,
    last_name_key: str,
    first_name_key: str,
    specialties: Sequence[str],
    primary_specialty: str | None,
    conditions: Iterable[str],
    certifications: Iterable[str],
    languages: Iterable[str],
    services: Iterable[str],
) -> dict[str, Any]:
    """The therapist's columns of its search rows, the same on each of its practices."""
    return {
        "gender": gender,
        "last_name_key": last_name_key,
        "first_name_key": first_name_key,
        "specialties": _padded(specialties),
        "conditions": _padded(conditions),
        "certifications": _padded(certifications),
        "languages": _padded(languages),
        "services": _padded(services),
        "primary_specialty": primary_specialty,
    }


def practice_row(
    therapist: dict[str, Any],
    *,
    practice_id: int,
    therapist_id: int,
    latitude: float,
    longitude: float,
    accepting_new_patients: bool | None,
    telehealth: bool | None,
    facility_type: Any,
    participations: Iterable[tuple[int, date | None, date | None]],
    today: date,
) -> dict[str, Any]:
    """The search row of one practice, as `refresh()` would write it from the records.

    `therapist` is `traits()` of its therapist; `participations` are (plan id,
    effective_from, effective_to) of every participation the practice has. The
    arithmetic is `_source()`'s, in the same order, so the floats are the same bits
    (both databases call the C library's sin and cos, as Python does).
    """
    band = math.floor((latitude + 90) * _CELLS_PER_DEGREE)
    cell = math.floor((longitude + 180) * _CELLS_PER_DEGREE)
    phi, lam = math.radians(latitude), math.radians(longitude)
    in_force: list[str] = []
    changes: list[date] = []
    for plan_id, start, end in participations:
        if (start is None or start <= today) and (end is None or end >= today):
            in_force.append(str(plan_id))
        if start is not None and start > today:
            changes.append(start)
        elif end is not None and end >= today:
            changes.append(end)
    return {
        "id": (band * _LONGITUDE_CELLS + cell) * _ID_SPAN + practice_id,
        "practice_id": practice_id,
        "therapist_id": therapist_id,
        "latitude": latitude,
        "longitude": longitude,
        "x": math.cos(phi) * math.cos(lam),
        "y": math.cos(phi) * math.sin(lam),
        "z": math.sin(phi),
        "accepting_new_patients": accepting_new_patients,
        "telehealth": telehealth,
        "facility_type": facility_type,
        **therapist,
        "plan_ids": f" {' '.join(sorted(in_force, key=int))} ",
        "plans_as_of": today,
        "plans_stale_on": min(changes, default=None),
    }


def refresh(session: Session, therapist_ids: Collection[int] | None = None) -> None:
    """Rebuilds the rows of these therapists (all of them when None) from the records."""
    dialect = session.get_bind().dialect.name
    source = _source(dialect, utcnow().date())
    if therapist_ids is None:
        session.execute(delete(SearchPractice))
        # In key order: on PostgreSQL the heap then starts out spatially clustered.
        key = spatial_key(Location.latitude, Location.longitude, Practice.id)
        session.execute(insert(SearchPractice).from_select(_COLUMNS, source.order_by(key)))
        geo.index_new_rows(session)
        return
    for batch in _batches(sorted(set(therapist_ids))):
        if dialect == "postgresql":
            # Two transactions refreshing one therapist take turns, so the second
            # deletes what the first inserted instead of colliding with it.
            session.execute(
                select(Therapist.id).where(Therapist.id.in_(batch)).order_by(Therapist.id)
                .with_for_update()
            )  # fmt: skip
        session.execute(delete(SearchPractice).where(SearchPractice.therapist_id.in_(batch)))
        session.execute(
            insert(SearchPractice).from_select(
                _COLUMNS, source.where(Practice.therapist_id.in_(batch))
            )
        )
        geo.index_new_rows(session, batch)


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]


def is_complete(session: Session) -> bool:
    """Every practice has its row (false after an upgrade that added the projection)."""
    practices = session.scalar(select(func.count()).select_from(Practice)) or 0
    rows = session.scalar(select(func.count()).select_from(SearchPractice)) or 0
    return practices == rows


# --- keeping it in step with ORM writes ------------------------------------------------


@dataclass
class _Pending:
    therapists: set[int] = field(default_factory=set)
    practices: set[int] = field(default_factory=set)
    locations: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.therapists or self.practices or self.locations)


_KEY = "search_projection_pending"


def _pending(session: Session) -> _Pending:
    pending = session.info.get(_KEY)
    if pending is None:
        pending = session.info[_KEY] = _Pending()
    return pending


def _note(pending: _Pending, objects: Iterable[Any]) -> None:
    for obj in objects:
        if isinstance(obj, Therapist) and obj.id is not None:
            pending.therapists.add(obj.id)
        elif isinstance(obj, TherapistSpecialty | Practice) and obj.therapist_id is not None:
            pending.therapists.add(obj.therapist_id)
        elif isinstance(obj, Participation) and obj.practice_id is not None:
            pending.practices.add(obj.practice_id)
        elif isinstance(obj, Location) and obj.id is not None:
            pending.locations.add(obj.id)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # A deleted plan takes its participations with it (ON DELETE CASCADE): note the
    # practices now, while they can still be found.
    plans = [obj.id for obj in session.deleted if isinstance(obj, Plan) and obj.id is not None]
    if plans:
        with session.no_autoflush:
            _pending(session).practices.update(
                session.scalars(
                    select(Participation.practice_id).where(Participation.plan_id.in_(plans))
                )
            )


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # Still the pre-flush view here: new, changed and deleted objects alike.
    pending = _pending(session)
    _note(pending, session.new)
    _note(pending, session.dirty)
    _note(pending, session.deleted)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer commit refreshes
    session.flush()
    pending = session.info.pop(_KEY, None)
    if not pending:
        return
    therapists = set(pending.therapists)
    for column, ids in (
        (Practice.id, pending.practices),
        (Practice.location_id, pending.locations),
    ):
        for batch in _batches(sorted(ids)):
            therapists.update(
                session.scalars(select(Practice.therapist_id).where(column.in_(batch)))
            )
    refresh(session, therapists)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction, committed or rolled back
        session.info.pop(_KEY, None)
