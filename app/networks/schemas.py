import re
from datetime import date, datetime, timedelta
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.db import utcnow
from app.fields import IsoDate, IsoDateTime, Label, Phone, RecordId, ShortText, us_state_codes
from app.networks.models import PlanType
from app.schemas import ReadModel, WriteModel

_HIOS = re.compile(r"^\d{5}[A-Z]{2}\d{7}$")


def is_hios_shaped(value: str) -> bool:
    """5 digits, 2 letters, 7 digits: the form of a HIOS plan id (its state not checked)."""
    return bool(_HIOS.match(value))


# A plan's cost-sharing reduction variant: its 14-character id, a dash (often
# left out) and two digits. The variants of a plan share its network.
_CSR_VARIANT = re.compile(r"^(\d{5}[A-Z]{2}\d{7})-?(\d{2})$")


def standard_component(value: str) -> str | None:
    """The plan a cost-sharing variant id ("12345IL0010001-01") belongs to, else None."""
    match = _CSR_VARIANT.match(value)
    return match[1] if match else None


def _hios(value: str) -> str:
    value = value.strip().upper()
    if not _HIOS.match(value):
        raise ValueError("HIOS plan id is 14 characters: 5 digits, state code, 7 digits")
    if value[5:7] not in us_state_codes():
        raise ValueError(f"HIOS plan id names an unknown state '{value[5:7]}'")
    return value


HiosPlanId = Annotated[
    str,
    AfterValidator(_hios),
    Field(description="14-character HIOS standard component id", examples=["12345IL0010001"]),
]
NetworkTier = Annotated[Label, Field(min_length=1, max_length=60, examples=["preferred"])]


class PayerCreate(WriteModel):
    name: ShortText = Field(examples=["Lakeshore Health Plans"])
    website: HttpUrl | None = Field(default=None, examples=["https://www.example.com"])
    phone: Phone | None = None


class PayerUpdate(WriteModel):
    name: ShortText | None = None
    website: HttpUrl | None = None
    phone: Phone | None = None


class PayerRead(ReadModel):
    id: int
    name: str
    website: str | None
    phone: str | None


class PlanCreate(WriteModel):
    name: ShortText = Field(examples=["Lakeshore Silver PPO"])
    plan_type: PlanType
    hios_plan_id: HiosPlanId | None = Field(default=None, validate_default=True)

    @field_validator("hios_plan_id")
    @classmethod
    def _hios_for_marketplace(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("plan_type") is PlanType.MARKETPLACE:
            raise ValueError("required for a marketplace plan")
        return value


class PlanUpdate(WriteModel):
    name: ShortText | None = None
    plan_type: PlanType | None = None
    hios_plan_id: HiosPlanId | None = None


class PlanRead(ReadModel):
    id: int
    payer_id: int
    name: str
    plan_type: PlanType
    hios_plan_id: str | None


def _not_in_future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("verified_at needs a timezone (e.g. 2026-11-01T12:00:00Z)")
    if value > utcnow() + timedelta(minutes=5):
        raise ValueError("verified_at cannot be in the future")
    return value


VerifiedAt = Annotated[
    IsoDateTime | None,
    AfterValidator(_not_in_future),
    Field(
        description="When the insurer last confirmed this entry", examples=["2026-11-01T09:30:00Z"]
    ),
]


class ParticipationTerms(WriteModel):
    """Network terms of a practice in a plan."""

    network_tier: NetworkTier | None = None
    effective_from: IsoDate | None = Field(default=None, examples=["2026-01-01"])
    effective_to: IsoDate | None = Field(default=None, examples=[None])
    verified_at: VerifiedAt = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


class ParticipationIn(ParticipationTerms):
    """A plan participation nested in a therapist's practice."""

    plan_id: RecordId


class ParticipationCreate(ParticipationTerms):
    """Adds a practice to this plan's network."""

    practice_id: RecordId


class ParticipationUpdate(ParticipationTerms):
    pass


class ParticipationRead(ReadModel):
    id: int
    practice_id: int
    plan_id: int
    network_tier: str | None
    effective_from: date | None
    effective_to: date | None
    verified_at: datetime | None
    updated_at: datetime


class ParticipationPage(ReadModel):
    items: list[ParticipationRead]
    total: int
