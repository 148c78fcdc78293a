"""The search request (one typed query object) and the response."""

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from app.locations.models import FacilityType
from app.locations.schemas import LocationRead
from app.networks.models import PlanType
from app.schemas import ReadModel
from app.therapists.models import Gender
from app.therapists.schemas import UNKNOWN_FLAG, SpecialtyRead, TherapistIdentity

MAX_RADIUS = {"mi": 250.0, "km": 400.0}
# A map viewport of about 1,600 by 1,600 km, five times the largest radius's circle:
# a state or a region, not the country (one search must not read every practice).
MAX_BBOX_KM2 = 2_500_000
MAX_VALUES_PER_FILTER = 20
MAX_PRACTICES_PER_ITEM = 3


class Unit(StrEnum):
    MI = "mi"
    KM = "km"


class Sort(StrEnum):
    DISTANCE = "distance"
    NAME = "name"


class Facet(StrEnum):
    SPECIALTY = "specialty"
    CONDITION = "condition"
    PLAN_ID = "plan_id"
    LANGUAGE = "language"
    GENDER = "gender"
    FACILITY_TYPE = "facility_type"
    ACCEPTING_NEW_PATIENTS = "accepting_new_patients"
    TELEHEALTH = "telehealth"


class OriginKind(StrEnum):
    COORDINATES = "coordinates"
    ZIP_CENTROID = "zip_centroid"
    CITY_CENTROID = "city_centroid"
    BBOX_CENTER = "bbox_center"


@dataclass(frozen=True)
class Origin:
    latitude: float
    longitude: float
    kind: OriginKind
    label: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: where, which filters, which page. Built by `search.params`."""

    origin: Origin
    radius: float | None  # None for a bbox search
    unit: Unit
    specialties: tuple[str, ...] = ()  # NUCC codes (slugs already resolved)
    conditions: tuple[str, ...] = ()
    certifications: tuple[str, ...] = ()
    plan_ids: tuple[int, ...] = ()
    payer_ids: tuple[int, ...] = ()
    accepting_new_patients: bool | None = None
    telehealth: bool | None = None
    languages: tuple[str, ...] = ()
    genders: tuple[Gender, ...] = ()
    facility_types: tuple[FacilityType, ...] = ()
    q: tuple[str, ...] = ()  # name words, as name keys
    sort: Sort = Sort.DISTANCE
    limit: int = 20
    cursor: str | None = None
    facets: tuple[Facet, ...] = field(default=())

    @property
    def radius_km(self) -> float | None:
        if self.radius is None:
            return None
        return self.radius * (1.609344 if self.unit is Unit.MI else 1.0)


class PlanEntry(ReadModel):
    plan_id: int
    plan_name: str
    plan_type: PlanType
    payer_id: int
    payer_name: str
    network_tier: str | None
    effective_from: date | None
    effective_to: date | None
    verified_at: datetime | None


class PracticeHit(ReadModel):
    id: int
    distance: float = Field(description="From the origin, in the requested unit, to 0.01")
    accepting_new_patients: bool | None = Field(description=UNKNOWN_FLAG)
    telehealth: bool | None = Field(description=UNKNOWN_FLAG)
    home_visits: bool
    location: LocationRead
    plans: list[PlanEntry] = Field(description="Networks this practice is in today")


class TherapistHit(TherapistIdentity):
    specialties: list[SpecialtyRead]
    certifications: list[str]
    conditions: list[str]
    services: list[str]
    languages: list[str]
    distance: float = Field(description="Of the nearest qualifying practice")
    practices: list[PracticeHit] = Field(
        description=f"Qualifying practices, nearest first (at most {MAX_PRACTICES_PER_ITEM})"
    )


class FacetCount(ReadModel):
    value: str | int | bool
    label: str | None = None
    count: int


class OriginRead(ReadModel):
    latitude: float
    longitude: float
    resolved_from: OriginKind
    label: str | None
    radius: float | None
    unit: Unit
    bbox: list[float] | None


class SearchResults(ReadModel):
    items: list[TherapistHit]
    total: int = Field(description="Therapists matching, over all pages")
    next_cursor: str | None
    facets: dict[str, list[FacetCount]]
    origin: OriginRead
