"""Issuing, checking and revoking API keys."""

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Role
from app.db import utcnow
from app.errors import Forbidden, InvalidInput, NotFound
from app.networks.models import Payer

KEY_PREFIX = "ptd_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, its role and, for payer keys, the payer it may manage."""

    key_id: int
    role: Role
    payer_id: int | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this operation needs an admin key")

    def require_payer(self, payer_id: int) -> None:
        """Admins manage every payer; a payer key only its own."""
        if not (self.is_admin or self.payer_id == payer_id):
            raise Forbidden("this key may only manage its own payer's plans and networks")


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(key: str) -> bool:
    parts = key.split("_")
    return (
        len(parts) == 3
        and parts[0] + "_" == KEY_PREFIX
        and len(parts[1]) == 8
        and len(parts[2]) >= 32
    )


def create_key(
    session: Session, *, role: Role, payer_id: int | None = None, name: str | None = None
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is never stored and cannot be shown again."""
    if role is Role.PAYER:
        if payer_id is None:
            raise InvalidInput.at(["payer_id"], "a payer key needs the payer it belongs to")
        if session.get(Payer, payer_id) is None:
            raise NotFound(f"payer {payer_id} does not exist")
    elif payer_id is not None:
        raise InvalidInput.at(["payer_id"], "an admin key is not scoped to a payer")
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32).replace('_', '-')}"
    key = ApiKey(
        prefix=prefix, key_hash=hash_key(plaintext), role=role, payer_id=payer_id, name=name
    )
    session.add(key)
    session.flush()
    return key, plaintext


def authenticate(session: Session, plaintext: str) -> Principal | None:
    """The principal for a live key, or None for an unknown or revoked one."""
    if not looks_like_key(plaintext):
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key_id=key.id, role=key.role, payer_id=key.payer_id)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, *, prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"no API key with prefix {prefix}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key
