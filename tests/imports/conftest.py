"""Fixtures shared by the import tests."""

import pytest
from sqlalchemy.orm import Session

from app.networks.models import Payer


@pytest.fixture
def payer_id(db: Session) -> int:
    """One payer in the clean test directory, for imports that need one."""
    payer = Payer(name="Lakeshore Health")
    db.add(payer)
    db.commit()
    return payer.id
