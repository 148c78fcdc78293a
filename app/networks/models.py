"""Payers, their plans, and which practices are in each plan's network."""

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, string_enum, utcnow

if TYPE_CHECKING:
    from app.therapists.models import Practice


class PlanType(StrEnum):
    MEDICARE_PART_B = "medicare_part_b"
    MEDICARE_ADVANTAGE = "medicare_advantage"
    MEDICAID = "medicaid"
    MARKETPLACE = "marketplace"
    COMMERCIAL = "commercial"


class Payer(Base):
    """An insurer (or a government program) that maintains provider networks."""

    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    website: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    plans: Mapped[list["Plan"]] = relationship(back_populates="payer", lazy="raise")


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("payer_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    plan_type: Mapped[PlanType] = mapped_column(string_enum(PlanType, "plan_type"))
    # 14-character HIOS plan id (e.g. 12345IL0010001); required for Marketplace plans.
    hios_plan_id: Mapped[str | None] = mapped_column(String(14), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    payer: Mapped[Payer] = relationship(back_populates="plans", lazy="raise")


class Participation(Base):
    """A practice in a plan's network (per practice: in-network at one clinic, not another)."""

    __tablename__ = "participations"
    __table_args__ = (
        UniqueConstraint("practice_id", "plan_id"),
        Index("ix_participations_plan_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    network_tier: Mapped[str | None] = mapped_column(String(60))
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    # When the insurer last confirmed this entry (No Surprises Act: every 90 days).
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    practice: Mapped["Practice"] = relationship(back_populates="participations", lazy="raise")
    plan: Mapped[Plan] = relationship(lazy="raise")
