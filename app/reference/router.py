"""Vocabularies for filter menus, so front ends need not hard-code them."""

from fastapi import APIRouter
from sqlalchemy import select

from app.db import SessionDep
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.reference.schemas import (
    CertificationRead,
    ConditionRead,
    LanguageRead,
    ServiceRead,
    SpecialtyRead,
)

router = APIRouter(prefix="/v1", tags=["reference data"])


@router.get("/specialties")
def list_specialties(session: SessionDep) -> list[SpecialtyRead]:
    """NUCC physical therapy taxonomy codes with their slugs (e.g. `neurology`)."""
    rows = session.scalars(select(Specialty).order_by(Specialty.code))
    return [SpecialtyRead.model_validate(row) for row in rows]


@router.get("/conditions")
def list_conditions(session: SessionDep) -> list[ConditionRead]:
    """Conditions treated, grouped by category (neuropathy, neurological, balance…)."""
    rows = session.scalars(select(Condition).order_by(Condition.category, Condition.slug))
    return [ConditionRead.model_validate(row) for row in rows]


@router.get("/services")
def list_services(session: SessionDep) -> list[ServiceRead]:
    """Exercise and treatment services offered (aerobic, balance, aquatic, gait…)."""
    return [
        ServiceRead.model_validate(r)
        for r in session.scalars(select(Service).order_by(Service.slug))
    ]


@router.get("/certifications")
def list_certifications(session: SessionDep) -> list[CertificationRead]:
    """Board certifications (ABPTS specialist certifications such as NCS)."""
    rows = session.scalars(select(Certification).order_by(Certification.code))
    return [CertificationRead.model_validate(row) for row in rows]


@router.get("/languages")
def list_languages(session: SessionDep) -> list[LanguageRead]:
    """ISO 639-1 languages a therapist can list."""
    rows = session.scalars(select(Language).order_by(Language.code))
    return [LanguageRead.model_validate(row) for row in rows]
