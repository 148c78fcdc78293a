"""Runtime configuration, read once from `PTDIR_*` environment variables."""

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ptdir"


def default_database_url() -> str:
    """An SQLite file in the user's data directory (XDG), so no server is needed."""
    return f"sqlite:///{_data_home() / 'ptdir.sqlite3'}"


def default_import_dir() -> Path:
    return _data_home() / "imports"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PTDIR_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    # A PostgreSQL streaming replica for searches and vocabularies (optional).
    read_database_url: str | None = None
    # Seconds a request waits for a pooled connection before answering 503.
    database_pool_timeout: float = Field(default=5.0, gt=0, le=60)
    database_pool_size: int = Field(default=5, ge=1, le=100)
    # Largest JSON body accepted on the record endpoints (imports have their own limit).
    max_body_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # json: one JSON object per line (for log collectors); text: for a terminal.
    log_format: Literal["json", "text"] = "json"
    # One line per request (route, status, time, request id; searches coarsened).
    access_log: bool = True
    # Origins whose web pages may read public data ("*" for any; empty for none).
    # Writes and import jobs are never readable cross-origin.
    cors_origins: str = "*"
    # PostgreSQL: longest a request's statement may run before it is cancelled
    # (answered 503); 0 for no limit. Imports lift it for their own transactions.
    database_statement_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    # Uploaded rosters wait here until a worker has read them. Workers on several
    # machines need it on shared storage.
    import_dir: Path = Field(default_factory=default_import_dir)
    # Largest roster upload; checked while the body streams to disk, never held in memory.
    max_import_bytes: int = Field(default=4_000_000_000, ge=1_000, le=100_000_000_000)
    # Import worker threads inside each API process; 0 leaves the queue to `ptdir worker`.
    import_workers: int = Field(default=1, ge=0, le=8)
    # Public reads (GET and HEAD) each client may make per minute; 0 turns the limit off.
    rate_limit_per_minute: int = Field(default=600, ge=0, le=1_000_000)
    # Requests a client that has been quiet may make at once before the rate applies.
    rate_limit_burst: int = Field(default=100, ge=1, le=1_000_000)
    # Shared store so the limit holds across processes and machines; empty = per process.
    rate_limit_redis_url: str = ""
    # Key prefix in that store, so several deployments can share one Redis.
    rate_limit_redis_prefix: str = Field(default="ptdir:ratelimit:", min_length=1, max_length=100)
    # Peers whose X-Forwarded-For is believed; empty = the header is ignored.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()

    @field_validator("database_url")
    @classmethod
    def _supported_backend(cls, url: str) -> str:
        if url.startswith("sqlite") or url.startswith("postgresql"):
            return url
        raise ValueError("PTDIR_DATABASE_URL must be an sqlite:/// or postgresql+psycopg:// URL")

    @field_validator("read_database_url")
    @classmethod
    def _replica_is_postgres(cls, url: str | None) -> str | None:
        if url and not url.startswith("postgresql"):
            raise ValueError("PTDIR_READ_DATABASE_URL must be a postgresql+psycopg:// URL")
        return url or None

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",") if o.strip()):
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return value

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @field_validator("rate_limit_redis_url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        if not url or url.startswith(("redis://", "rediss://", "unix://")):
            return url
        raise ValueError("must be empty or a redis://, rediss:// or unix:// URL")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for entry in filter(None, (part.strip() for part in value.split(","))):
            try:
                # A bare address is a /32 (/128); host bits after a prefix are forgiven.
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return tuple(networks)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class InvalidSettings(Exception):
    """A `PTDIR_*` variable that cannot be used; the message names each one."""


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"PTDIR_{str(e['loc'][0]).upper()}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise InvalidSettings(f"invalid configuration: {problems}") from None
