"""Therapists and their practices (a therapist at a location)."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, string_enum, utcnow
from app.locations.models import Location
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.therapists.names import NAME_KEY_LENGTH

if TYPE_CHECKING:
    from app.networks.models import Participation


NAME_KEY = String(NAME_KEY_LENGTH).with_variant(
    String(NAME_KEY_LENGTH, collation="C"), "postgresql"
)


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class Source(StrEnum):
    """Where a therapist record came from."""

    API = "api"
    IMPORT = "import"
    NPPES = "nppes"
    DEMO = "demo"  # synthetic demonstration data, not real people


def _link_table(name: str, column: str, target: str, size: int) -> Table:
    return Table(
        name,
        Base.metadata,
        Column(
            "therapist_id",
            ForeignKey("therapists.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(column, String(size), ForeignKey(target), primary_key=True, index=True),
    )


therapist_conditions = _link_table("therapist_conditions", "condition_slug", "conditions.slug", 60)
therapist_services = _link_table("therapist_services", "service_slug", "services.slug", 60)
therapist_certifications = _link_table(
    "therapist_certifications", "certification_code", "certifications.code", 10
)
therapist_languages = _link_table("therapist_languages", "language_code", "languages.code", 2)


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    name_suffix: Mapped[str | None] = mapped_column(String(20))
    # Lower-case ASCII forms of the names (therapists.names.name_key), copied into the
    # search rows for prefix search and name order (queried there, so not indexed
    # here). Byte order ("C" collation) on PostgreSQL, as on SQLite.
    first_name_key: Mapped[str] = mapped_column(NAME_KEY)
    last_name_key: Mapped[str] = mapped_column(NAME_KEY)
    credentials: Mapped[list[str]] = mapped_column(JSON, default=list)
    gender: Mapped[Gender | None] = mapped_column(string_enum(Gender, "gender"))
    source: Mapped[Source] = mapped_column(string_enum(Source, "therapist_source"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    specialties: Mapped[list["TherapistSpecialty"]] = relationship(
        back_populates="therapist", cascade="all, delete-orphan", lazy="raise"
    )
    conditions: Mapped[list[Condition]] = relationship(
        secondary=therapist_conditions, lazy="raise", order_by=Condition.slug
    )
    services: Mapped[list[Service]] = relationship(
        secondary=therapist_services, lazy="raise", order_by=Service.slug
    )
    certifications: Mapped[list[Certification]] = relationship(
        secondary=therapist_certifications, lazy="raise", order_by=Certification.code
    )
    languages: Mapped[list[Language]] = relationship(
        secondary=therapist_languages, lazy="raise", order_by=Language.code
    )
    practices: Mapped[list["Practice"]] = relationship(
        back_populates="therapist", cascade="all, delete-orphan", lazy="raise"
    )


class TherapistSpecialty(Base):
    __tablename__ = "therapist_specialties"
    __table_args__ = (
        # At most one primary specialty per therapist.
        Index(
            "uq_therapist_specialties_primary",
            "therapist_id",
            unique=True,
            sqlite_where=text("is_primary"),
            postgresql_where=text("is_primary"),
        ),
    )

    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True
    )
    specialty_code: Mapped[str] = mapped_column(
        ForeignKey("specialties.code"), primary_key=True, index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    therapist: Mapped[Therapist] = relationship(back_populates="specialties", lazy="raise")
    specialty: Mapped[Specialty] = relationship(lazy="raise")


class Practice(Base):
    """A therapist at a location (the Plan-Net PractitionerRole)."""

    __tablename__ = "practices"
    __table_args__ = (
        Index("uq_practices_therapist_location", "therapist_id", "location_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT"), index=True
    )
    # None: not known (the national file, for one, says nothing about either).
    accepting_new_patients: Mapped[bool | None] = mapped_column(Boolean)
    telehealth: Mapped[bool | None] = mapped_column(Boolean)
    home_visits: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    therapist: Mapped[Therapist] = relationship(back_populates="practices", lazy="raise")
    location: Mapped[Location] = relationship(lazy="raise")
    participations: Mapped[list["Participation"]] = relationship(
        back_populates="practice", cascade="all, delete-orphan", lazy="raise"
    )
