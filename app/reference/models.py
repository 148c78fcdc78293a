"""Controlled vocabularies: NUCC specialties, conditions, services, certifications, languages."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Specialty(Base):
    """A NUCC taxonomy code for physical therapy (2251*, 225200000X)."""

    __tablename__ = "specialties"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    classification: Mapped[str] = mapped_column(String(200))
    specialization: Mapped[str | None] = mapped_column(String(200))


class Condition(Base):
    __tablename__ = "conditions"

    slug: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))


class Service(Base):
    """An exercise or treatment offered (aerobic, balance, aquatic, gait…)."""

    __tablename__ = "services"

    slug: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Certification(Base):
    """A board certification such as ABPTS NCS."""

    __tablename__ = "certifications"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(60))


class Language(Base):
    """An ISO 639-1 language."""

    __tablename__ = "languages"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
