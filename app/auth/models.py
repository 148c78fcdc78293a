"""API keys. Only a SHA-256 hash of each key is stored; the key is shown once."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, string_enum, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    PAYER = "payer"


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "(role = 'payer' AND payer_id IS NOT NULL) OR (role = 'admin' AND payer_id IS NULL)",
            name="role_scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The key's public prefix, safe to show in listings and logs.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(string_enum(Role, "api_key_role"))
    payer_id: Mapped[int | None] = mapped_column(
        ForeignKey("payers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
