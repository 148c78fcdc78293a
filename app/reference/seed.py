"""Loads the controlled vocabularies from `data/*.csv` into the database.

Run after every migration; idempotent: adds new rows and updates changed
names, and never deletes (records may still point at a retired code).
"""

import csv
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Base
from app.paths import DATA_DIR
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.reference.vocabulary import forget

_SOURCES: list[tuple[type[Base], str, str]] = [
    (Specialty, "nucc_pt_taxonomy.csv", "code"),
    (Condition, "conditions.csv", "slug"),
    (Service, "services.csv", "slug"),
    (Certification, "certifications.csv", "code"),
    (Language, "languages.csv", "code"),
]


def _rows(path: Path) -> Iterator[dict[str, str | None]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {key: (value or None) for key, value in row.items()}


def sync_reference_data(session: Session, data_dir: Path = DATA_DIR) -> int:
    """Upsert every vocabulary; returns how many rows were added or changed."""
    changed = 0
    for model, filename, key in _SOURCES:
        existing = {getattr(row, key): row for row in session.scalars(select(model))}
        for values in _rows(data_dir / filename):
            row = existing.get(values[key])
            if row is None:
                session.add(model(**values))
                changed += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                changed += 1
    session.flush()
    forget()  # this process reads them again on next use
    return changed
