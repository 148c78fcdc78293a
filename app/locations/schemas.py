from datetime import datetime
from typing import Self

from pydantic import Field, model_validator

from app.fields import Latitude, Longitude, Phone, ShortText, StateCode, ZipCode
from app.locations.models import Accessibility, FacilityType, GeocodePrecision
from app.schemas import ReadModel, WriteModel


class LocationIn(WriteModel):
    """A practice site. Without coordinates it is placed at its ZIP centroid."""

    name: ShortText | None = Field(default=None, examples=["Lakeview Neuro Rehab"])
    address_line1: ShortText = Field(examples=["2300 N Lincoln Ave"])
    address_line2: ShortText | None = Field(default=None, examples=["Suite 200"])
    city: ShortText = Field(max_length=100, examples=["Chicago"])
    state: StateCode
    zip: ZipCode
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    phone: Phone | None = None
    fax: Phone | None = None
    facility_type: FacilityType | None = None
    accessibility: list[Accessibility] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise ValueError(f"{missing} is required when the other coordinate is given")
        return self


class LocationRead(ReadModel):
    id: int
    name: str | None
    address_line1: str
    address_line2: str | None
    city: str
    state: str
    zip: str
    latitude: float
    longitude: float
    geocode_precision: GeocodePrecision
    phone: str | None
    fax: str | None
    facility_type: FacilityType | None
    accessibility: list[str]
    updated_at: datetime
