from app.locations.models import FacilityType
from app.schemas import ReadModel


class SpecialtyRead(ReadModel):
    code: str
    slug: str
    display_name: str
    classification: str
    specialization: str | None


class ConditionRead(ReadModel):
    slug: str
    name: str
    category: str


class ServiceRead(ReadModel):
    slug: str
    name: str


class CertificationRead(ReadModel):
    code: str
    name: str
    issuer: str


class LanguageRead(ReadModel):
    code: str
    name: str


class FacilityTypeRead(ReadModel):
    value: FacilityType
    label: str
    locations: int
