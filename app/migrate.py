"""Schema migrations and reference-data sync, run by `ptdir db upgrade` and at start-up."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.paths import ALEMBIC_INI
from app.reference.seed import sync_reference_data
from app.search import projection


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False
    return config


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder (the default lives in the user's data dir)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def prepare_database(engine: Engine) -> None:
    """Bring the schema to head, the vocabularies up to date and the search projection
    complete (idempotent; the projection is rebuilt once after the upgrade adding it)."""
    upgrade(engine)
    with Session(engine) as session, session.begin():
        sync_reference_data(session)
        if not projection.is_complete(session):
            projection.refresh(session)
