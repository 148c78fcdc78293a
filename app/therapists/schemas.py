import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, field_validator

from app.fields import Label, Name, Npi
from app.locations.schemas import LocationIn, LocationRead
from app.networks.models import PlanType
from app.networks.schemas import ParticipationIn
from app.schemas import ReadModel, WriteModel
from app.therapists.models import Gender, Source

UNKNOWN_FLAG = (
    "null when no source says (the national NPI file, for one, says nothing about it); "
    "a search for true or false does not match it"
)


def _code(pattern: str, *, upper: bool, hint: str) -> AfterValidator:
    """Codes match case-insensitively: normalised first, then checked against the pattern."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        value = value.strip().upper() if upper else value.strip().lower()
        if not compiled.match(value):
            raise ValueError(f"not a valid code; expected {hint}")
        return value

    return AfterValidator(check)


NuccCode = Annotated[
    str,
    _code(r"^[0-9A-Z]{9}X$", upper=True, hint="a NUCC taxonomy code such as 2251N0400X"),
    Field(examples=["2251N0400X"]),
]
Slug = Annotated[
    str,
    _code(r"^[a-z0-9-]{1,60}$", upper=False, hint="a slug from the vocabulary"),
    Field(examples=["diabetic-neuropathy"]),
]
LanguageCode = Annotated[
    str,
    _code(r"^[a-z]{2}$", upper=False, hint="an ISO 639-1 two-letter code"),
    Field(description="ISO 639-1 code", examples=["es"]),
]
CertificationCode = Annotated[
    str,
    _code(r"^[A-Z]{2,10}$", upper=True, hint="a certification code such as NCS"),
    Field(examples=["NCS"]),
]
Credential = Annotated[
    Label,
    StringConstraints(min_length=1, max_length=20),
    Field(examples=["DPT"]),
]


class SpecialtyIn(WriteModel):
    code: NuccCode
    primary: StrictBool = False


class PracticeIn(WriteModel):
    """The therapist at one location, with the plan networks it is in there."""

    location: LocationIn
    # Strict: lax parsing would take 0, "no" or "off" for false where the schema says boolean.
    accepting_new_patients: StrictBool | None = Field(examples=[True], description=UNKNOWN_FLAG)
    telehealth: StrictBool | None = Field(default=False, description=UNKNOWN_FLAG)
    home_visits: StrictBool = False
    participations: list[ParticipationIn] = Field(default_factory=list, max_length=200)

    @field_validator("participations")
    @classmethod
    def _one_entry_per_plan(cls, participations: list[ParticipationIn]) -> list[ParticipationIn]:
        plan_ids = [p.plan_id for p in participations]
        if len(plan_ids) != len(set(plan_ids)):
            raise ValueError("a plan is listed twice for the same practice")
        return participations


def _one_primary(cls: type, specialties: list[SpecialtyIn] | None) -> list[SpecialtyIn] | None:
    if specialties is None:
        return None
    codes = [s.code for s in specialties]
    if len(codes) != len(set(codes)):
        raise ValueError("a specialty is listed twice")
    primaries = sum(s.primary for s in specialties)
    if primaries == 0 and len(specialties) == 1:
        specialties[0].primary = True
    elif primaries != 1:
        raise ValueError("exactly one specialty must be marked primary")
    return specialties


class TherapistCreate(WriteModel):
    """A therapist with practices, their locations and plan participations, in one body."""

    npi: Npi
    first_name: Name
    middle_name: Name | None = None
    last_name: Name
    name_suffix: Annotated[Label, Field(max_length=20)] | None = None
    credentials: list[Credential] = Field(default_factory=list, max_length=10)
    gender: Gender | None = None
    specialties: list[SpecialtyIn] = Field(min_length=1, max_length=20)
    certifications: list[CertificationCode] = Field(default_factory=list, max_length=20)
    conditions: list[Slug] = Field(default_factory=list, max_length=50)
    services: list[Slug] = Field(default_factory=list, max_length=50)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    practices: list[PracticeIn] = Field(default_factory=list, max_length=50)

    _check_specialties = field_validator("specialties")(_one_primary)


class TherapistUpdate(WriteModel):
    """Fields to change. A list that is given replaces the current one, practices included."""

    first_name: Name | None = None
    middle_name: Name | None = None
    last_name: Name | None = None
    name_suffix: Annotated[Label, Field(max_length=20)] | None = None
    credentials: list[Credential] | None = Field(default=None, max_length=10)
    gender: Gender | None = None
    specialties: list[SpecialtyIn] | None = Field(default=None, min_length=1, max_length=20)
    certifications: list[CertificationCode] | None = Field(default=None, max_length=20)
    conditions: list[Slug] | None = Field(default=None, max_length=50)
    services: list[Slug] | None = Field(default=None, max_length=50)
    languages: list[LanguageCode] | None = Field(default=None, max_length=20)
    practices: list[PracticeIn] | None = Field(default=None, max_length=50)

    _check_specialties = field_validator("specialties")(_one_primary)


# Fields of TherapistUpdate that cannot be cleared with null.
REQUIRED_ON_UPDATE = (
    "first_name", "last_name", "credentials", "specialties", "certifications",
    "conditions", "services", "languages", "practices",
)  # fmt: skip


class CodeName(ReadModel):
    code: str
    name: str


class SlugName(ReadModel):
    slug: str
    name: str


class SpecialtyRead(ReadModel):
    code: str
    slug: str
    display_name: str
    primary: bool


class PlanSummary(ReadModel):
    id: int
    name: str
    plan_type: PlanType
    payer_id: int
    payer_name: str


class PracticeParticipationRead(ReadModel):
    id: int
    plan: PlanSummary
    network_tier: str | None
    effective_from: date | None
    effective_to: date | None
    verified_at: datetime | None


class PracticeRead(ReadModel):
    id: int
    accepting_new_patients: bool | None = Field(description=UNKNOWN_FLAG)
    telehealth: bool | None = Field(description=UNKNOWN_FLAG)
    home_visits: bool
    location: LocationRead
    participations: list[PracticeParticipationRead]


class TherapistIdentity(ReadModel):
    """Who a therapist is: shared by the full record and by search results."""

    id: int
    npi: str
    first_name: str
    middle_name: str | None
    last_name: str
    name_suffix: str | None
    credentials: list[str]
    gender: Gender | None


class TherapistRead(TherapistIdentity):
    specialties: list[SpecialtyRead]
    certifications: list[CodeName]
    conditions: list[SlugName]
    services: list[SlugName]
    languages: list[CodeName]
    practices: list[PracticeRead]
    source: Source
    created_at: datetime
    updated_at: datetime


class TherapistPage(ReadModel):
    items: list[TherapistRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")
