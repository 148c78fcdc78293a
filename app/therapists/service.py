"""Therapist records: create, read, change and delete, with practices and networks."""

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db import Base, flush_or_conflict
from app.errors import Conflict, FieldError, InvalidInput, NotFound
from app.fields import MAX_ID
from app.locations import service as location_service
from app.locations.schemas import LocationRead
from app.networks.models import Participation, Plan
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.schemas import patch_values
from app.therapists.models import Practice, Source, Therapist, TherapistSpecialty
from app.therapists.names import name_key
from app.therapists.schemas import (
    REQUIRED_ON_UPDATE,
    CodeName,
    PlanSummary,
    PracticeIn,
    PracticeParticipationRead,
    PracticeRead,
    SlugName,
    SpecialtyIn,
    SpecialtyRead,
    TherapistCreate,
    TherapistRead,
    TherapistUpdate,
)

Vocabulary = TypeVar("Vocabulary", bound=Base)

_FULL_RECORD = (
    selectinload(Therapist.specialties).selectinload(TherapistSpecialty.specialty),
    selectinload(Therapist.conditions),
    selectinload(Therapist.services),
    selectinload(Therapist.certifications),
    selectinload(Therapist.languages),
    selectinload(Therapist.practices).selectinload(Practice.location),
    selectinload(Therapist.practices)
    .selectinload(Practice.participations)
    .selectinload(Participation.plan)
    .selectinload(Plan.payer),
)


def get_therapist(session: Session, therapist_id: int) -> Therapist:
    therapist = session.scalar(
        select(Therapist)
        .where(Therapist.id == therapist_id)
        .options(*_FULL_RECORD)
        .execution_options(populate_existing=True)
    )
    if therapist is None:
        raise NotFound(f"therapist {therapist_id} does not exist")
    return therapist


def list_therapists(
    session: Session, *, npi: str | None, cursor: str | None, limit: int
) -> tuple[list[Therapist], str | None]:
    """Therapists in id order, optionally the one with an NPI; keyset-paged."""
    statement = select(Therapist).options(*_FULL_RECORD).order_by(Therapist.id).limit(limit + 1)
    if npi is not None:
        statement = statement.where(Therapist.npi == npi)
    if cursor is not None:
        statement = statement.where(Therapist.id > decode_cursor(cursor))
    rows = list(session.scalars(statement))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id" or not value.isdigit() or int(value) > MAX_ID:
            raise ValueError(cursor)  # an id past the columns' range was never issued
        return int(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput.at(["query", "cursor"], "not a cursor this API issued") from error


def _resolve(
    session: Session, model: type[Vocabulary], key: str, values: Sequence[str], field: str
) -> list[Vocabulary]:
    """The vocabulary rows for these keys, or 422 naming each unknown one."""
    column = getattr(model, key)
    found = {
        getattr(row, key): row for row in session.scalars(select(model).where(column.in_(values)))
    }
    unknown = [
        FieldError(
            loc=["body", field, index],
            field=f"{field}[{index}]",
            message=f"unknown {field.rstrip('s')} {value!r}; see /v1/{field}",
            type="unknown_code",
        )
        for index, value in enumerate(values)
        if value not in found
    ]
    if unknown:
        raise InvalidInput(unknown)
    return list(dict.fromkeys(found[value] for value in values))


def _set_specialties(session: Session, therapist: Therapist, items: list[SpecialtyIn]) -> None:
    codes = [item.code for item in items]
    for index, code in enumerate(codes):
        if code[:4] != "2251" and code != "225200000X":
            raise InvalidInput.at(
                ["body", "specialties", index, "code"],
                f"{code} is not a physical therapy taxonomy code (2251*, 225200000X)",
            )
    specialties = _resolve(session, Specialty, "code", codes, "specialties")
    by_code = {s.code: s for s in specialties}
    therapist.specialties = [
        TherapistSpecialty(specialty=by_code[item.code], is_primary=item.primary) for item in items
    ]


def _set_vocabularies(session: Session, therapist: Therapist, values: dict[str, Any]) -> None:
    if "conditions" in values:
        therapist.conditions = _resolve(
            session, Condition, "slug", values["conditions"], "conditions"
        )
    if "services" in values:
        therapist.services = _resolve(session, Service, "slug", values["services"], "services")
    if "certifications" in values:
        codes = [code.upper() for code in values["certifications"]]
        therapist.certifications = _resolve(session, Certification, "code", codes, "certifications")
    if "languages" in values:
        therapist.languages = _resolve(session, Language, "code", values["languages"], "languages")


def _check_plans(session: Session, practices: list[PracticeIn]) -> None:
    wanted = {p.plan_id for practice in practices for p in practice.participations}
    known = set(session.scalars(select(Plan.id).where(Plan.id.in_(wanted)))) if wanted else set()
    errors = [
        FieldError(
            loc=["body", "practices", i, "participations", j, "plan_id"],
            field=f"practices[{i}].participations[{j}].plan_id",
            message=f"plan {p.plan_id} does not exist; see /v1/plans",
            type="unknown_plan",
        )
        for i, practice in enumerate(practices)
        for j, p in enumerate(practice.participations)
        if p.plan_id not in known
    ]
    if errors:
        raise InvalidInput(errors)


def _set_practices(session: Session, therapist: Therapist, practices: list[PracticeIn]) -> None:
    """Make the therapist's practices exactly these; a practice at a known location keeps its id."""
    _check_plans(session, practices)
    current = {practice.location_id: practice for practice in therapist.practices}
    kept: list[Practice] = []
    seen: dict[int, int] = {}
    for index, data in enumerate(practices):
        location = location_service.upsert_location(
            session, data=data.location, loc=["body", "practices", index, "location"]
        )
        session.flush()
        if location.id in seen:
            raise InvalidInput.at(
                ["body", "practices", index, "location"],
                f"same address as practices[{seen[location.id]}]; list each location once",
            )
        seen[location.id] = index
        practice = current.get(location.id) or Practice(location=location, participations=[])
        practice.location = location
        practice.accepting_new_patients = data.accepting_new_patients
        practice.telehealth = data.telehealth
        practice.home_visits = data.home_visits
        existing = {p.plan_id: p for p in practice.participations} if practice.id else {}
        practice.participations = [
            _apply_terms(
                existing.get(p.plan_id) or Participation(plan_id=p.plan_id), p.model_dump()
            )
            for p in data.participations
        ]
        kept.append(practice)
    dropped = [p.location_id for p in therapist.practices if p not in kept]
    therapist.practices = kept
    location_service.delete_orphans(session, dropped)


def _apply_terms(participation: Participation, terms: dict[str, Any]) -> Participation:
    for name, value in terms.items():
        setattr(participation, name, value)
    return participation


def create_therapist(
    session: Session, *, data: TherapistCreate, source: Source = Source.API
) -> Therapist:
    if session.scalar(select(Therapist.id).where(Therapist.npi == data.npi)) is not None:
        raise Conflict(f"a therapist with NPI {data.npi} already exists")
    values = data.model_dump(exclude={"specialties", "practices"})
    therapist = Therapist(
        npi=data.npi,
        first_name=data.first_name,
        first_name_key=name_key(data.first_name),
        last_name_key=name_key(data.last_name),
        middle_name=data.middle_name,
        last_name=data.last_name,
        name_suffix=data.name_suffix,
        credentials=data.credentials,
        gender=data.gender,
        source=source,
        # Empty collections up front: a pending object must not try to load them.
        specialties=[],
        conditions=[],
        services=[],
        certifications=[],
        languages=[],
        practices=[],
    )
    session.add(therapist)
    _set_specialties(session, therapist, data.specialties)
    _set_vocabularies(session, therapist, values)
    _set_practices(session, therapist, data.practices)
    flush_or_conflict(session, f"a therapist with NPI {data.npi} already exists")
    return get_therapist(session, therapist.id)


def update_therapist(session: Session, *, therapist_id: int, data: TherapistUpdate) -> Therapist:
    therapist = get_therapist(session, therapist_id)
    values = patch_values(data, not_null=REQUIRED_ON_UPDATE)
    for name in ("first_name", "middle_name", "last_name", "name_suffix", "credentials", "gender"):
        if name in values:
            setattr(therapist, name, values[name])
    therapist.first_name_key = name_key(therapist.first_name)
    therapist.last_name_key = name_key(therapist.last_name)
    if data.specialties is not None:
        therapist.specialties = []
        session.flush()  # the old primary row must go before the new one arrives
        _set_specialties(session, therapist, data.specialties)
    _set_vocabularies(session, therapist, values)
    if data.practices is not None:
        _set_practices(session, therapist, data.practices)
    session.flush()
    return get_therapist(session, therapist.id)


def delete_therapist(session: Session, *, therapist_id: int) -> None:
    therapist = get_therapist(session, therapist_id)
    location_ids = [practice.location_id for practice in therapist.practices]
    session.delete(therapist)
    location_service.delete_orphans(session, location_ids)


def to_read(therapist: Therapist) -> TherapistRead:
    """The public representation (built by hand: it joins several tables per item)."""
    return TherapistRead(
        id=therapist.id,
        npi=therapist.npi,
        first_name=therapist.first_name,
        middle_name=therapist.middle_name,
        last_name=therapist.last_name,
        name_suffix=therapist.name_suffix,
        credentials=therapist.credentials,
        gender=therapist.gender,
        specialties=[
            SpecialtyRead(
                code=s.specialty.code,
                slug=s.specialty.slug,
                display_name=s.specialty.display_name,
                primary=s.is_primary,
            )
            for s in sorted(
                therapist.specialties, key=lambda s: (not s.is_primary, s.specialty_code)
            )
        ],
        certifications=[CodeName(code=c.code, name=c.name) for c in therapist.certifications],
        conditions=[SlugName(slug=c.slug, name=c.name) for c in therapist.conditions],
        services=[SlugName(slug=s.slug, name=s.name) for s in therapist.services],
        languages=[CodeName(code=lang.code, name=lang.name) for lang in therapist.languages],
        practices=[_practice_read(p) for p in sorted(therapist.practices, key=lambda p: p.id)],
        source=therapist.source,
        created_at=therapist.created_at,
        updated_at=therapist.updated_at,
    )


def _practice_read(practice: Practice) -> PracticeRead:
    return PracticeRead(
        id=practice.id,
        accepting_new_patients=practice.accepting_new_patients,
        telehealth=practice.telehealth,
        home_visits=practice.home_visits,
        location=LocationRead.model_validate(practice.location),
        participations=[
            PracticeParticipationRead(
                id=p.id,
                plan=PlanSummary(
                    id=p.plan.id,
                    name=p.plan.name,
                    plan_type=p.plan.plan_type,
                    payer_id=p.plan.payer_id,
                    payer_name=p.plan.payer.name,
                ),
                network_tier=p.network_tier,
                effective_from=p.effective_from,
                effective_to=p.effective_to,
                verified_at=p.verified_at,
            )
            for p in sorted(practice.participations, key=lambda p: p.plan_id)
        ],
    )
