"""Practice sites. One row per normalised address, shared by every practice there."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, string_enum, utcnow
from app.locations.address import ADDRESS_KEY_LENGTH


class FacilityType(StrEnum):
    PRIVATE_PRACTICE = "private_practice"
    HOSPITAL_OUTPATIENT = "hospital_outpatient"
    OUTPATIENT_CLINIC = "outpatient_clinic"
    HOME_HEALTH = "home_health"
    SKILLED_NURSING = "skilled_nursing"
    AQUATIC_CENTER = "aquatic_center"


FACILITY_LABELS = {
    FacilityType.PRIVATE_PRACTICE: "Private practice",
    FacilityType.HOSPITAL_OUTPATIENT: "Hospital outpatient department",
    FacilityType.OUTPATIENT_CLINIC: "Outpatient clinic",
    FacilityType.HOME_HEALTH: "Home health agency",
    FacilityType.SKILLED_NURSING: "Skilled nursing facility",
    FacilityType.AQUATIC_CENTER: "Aquatic therapy center",
}


class GeocodePrecision(StrEnum):
    PROVIDED = "provided"  # coordinates came with the record
    ZIP_CENTROID = "zip_centroid"  # placed at the ZIP's centroid (offline lookup)
    # The ZIP is not in the offline table: placed at the mean of the city's ZIPs.
    CITY_CENTROID = "city_centroid"


class Accessibility(StrEnum):
    WHEELCHAIR_ACCESSIBLE = "wheelchair_accessible"
    ACCESSIBLE_PARKING = "accessible_parking"
    ELEVATOR = "elevator"
    ACCESSIBLE_RESTROOM = "accessible_restroom"
    PUBLIC_TRANSIT_NEARBY = "public_transit_nearby"
    ASL_INTERPRETER = "asl_interpreter"


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised address (see locations.address): the identity of a site.
    address_key: Mapped[str] = mapped_column(String(ADDRESS_KEY_LENGTH), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    zip: Mapped[str] = mapped_column(String(10))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    geocode_precision: Mapped[GeocodePrecision] = mapped_column(
        string_enum(GeocodePrecision, "geocode_precision")
    )
    phone: Mapped[str | None] = mapped_column(String(10))
    fax: Mapped[str | None] = mapped_column(String(10))
    facility_type: Mapped[FacilityType | None] = mapped_column(
        string_enum(FacilityType, "facility_type"), index=True
    )
    accessibility: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
