"""Fixtures shared by the import tests."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session

from app.db import create_db_engine
from app.migrate import prepare_database
from app.networks.models import Payer
from tests.conftest import Backend


@pytest.fixture
def payer_id(db: Session) -> int:
    """One payer in the clean test directory, for imports that need one."""
    payer = Payer(name="Lakeshore Health")
    db.add(payer)
    db.commit()
    return payer.id


@pytest.fixture
def own_database(backend: Backend, fresh_database_url: Callable[[str], str]) -> Iterator[Backend]:
    """A new, migrated database of the test's own on the same backend. The test app's
    in-process worker serves the shared one: it would claim jobs a test queues, or,
    every 30 s, fail one it finds running with no worker holding it."""
    url = fresh_database_url(backend.name)
    engine = create_db_engine(url)
    prepare_database(engine)
    yield Backend(name=backend.name, url=url, engine=engine)
    engine.dispose()
