"""Vocabularies for filter menus, so front ends need not hard-code them."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from app.db import ReadSessionDep
from app.locations.models import FACILITY_LABELS, FacilityType, Location
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.reference.schemas import (
    CertificationRead,
    ConditionRead,
    FacilityTypeRead,
    LanguageRead,
    ServiceRead,
    SpecialtyRead,
)
from app.therapists.models import therapist_languages

router = APIRouter(prefix="/v1", tags=["reference data"])


@router.get("/specialties")
def list_specialties(session: ReadSessionDep) -> list[SpecialtyRead]:
    """NUCC physical therapy taxonomy codes with their slugs (e.g. `neurology`)."""
    rows = session.scalars(select(Specialty).order_by(Specialty.code))
    return [SpecialtyRead.model_validate(row) for row in rows]


@router.get("/conditions")
def list_conditions(session: ReadSessionDep) -> list[ConditionRead]:
    """Conditions treated, grouped by category (neuropathy, neurological, balance…)."""
    rows = session.scalars(select(Condition).order_by(Condition.category, Condition.slug))
    return [ConditionRead.model_validate(row) for row in rows]


@router.get("/services")
def list_services(session: ReadSessionDep) -> list[ServiceRead]:
    """Exercise and treatment services offered (aerobic, balance, aquatic, gait…)."""
    return [
        ServiceRead.model_validate(r)
        for r in session.scalars(select(Service).order_by(Service.slug))
    ]


@router.get("/certifications")
def list_certifications(session: ReadSessionDep) -> list[CertificationRead]:
    """Board certifications (ABPTS specialist certifications such as NCS)."""
    rows = session.scalars(select(Certification).order_by(Certification.code))
    return [CertificationRead.model_validate(row) for row in rows]


@router.get("/languages")
def list_languages(
    session: ReadSessionDep,
    in_use: Annotated[
        bool, Query(description="Only languages some therapist speaks (for filter menus)")
    ] = False,
) -> list[LanguageRead]:
    """ISO 639-1 languages a therapist can list, or (`in_use=true`) the ones listed."""
    statement = select(Language).order_by(Language.code)
    if in_use:
        spoken = select(therapist_languages.c.language_code).distinct()
        statement = statement.where(Language.code.in_(spoken))
    return [LanguageRead.model_validate(row) for row in session.scalars(statement)]


@router.get("/facility-types")
def list_facility_types(session: ReadSessionDep) -> list[FacilityTypeRead]:
    """Kinds of facility, with how many practice locations of each kind the directory has."""
    counts = dict(
        session.execute(
            select(Location.facility_type, func.count())
            .where(Location.facility_type.is_not(None))
            .group_by(Location.facility_type)
        ).all()
    )
    return [
        FacilityTypeRead(value=kind, label=FACILITY_LABELS[kind], locations=counts.get(kind, 0))
        for kind in FacilityType
    ]
