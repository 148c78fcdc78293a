"""The controlled vocabularies, read once per database and kept in memory.

They change only when a deployment syncs `data/*.csv` (`sync_reference_data`,
run at start-up), so a process reads them once; every search then validates
codes and names values without a round trip.
"""

import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.reference.models import Certification, Condition, Language, Service, Specialty


@dataclass(frozen=True, slots=True)
class SpecialtyName:
    code: str
    slug: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Vocabulary:
    specialties: dict[str, SpecialtyName]  # by code
    specialty_codes: dict[str, str]  # upper-case code or slug → code
    conditions: dict[str, str]  # slug → name
    certifications: dict[str, str]  # code → name
    languages: dict[str, str]  # code → name
    services: dict[str, str]  # slug → name


_loaded: dict[str, Vocabulary] = {}
_lock = threading.Lock()


def vocabulary(session: Session) -> Vocabulary:
    """The vocabularies of the session's database (read on first use)."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    found = _loaded.get(key)
    if found is None:
        with _lock:
            found = _loaded.get(key) or _read(session)
            _loaded[key] = found
    return found


def forget() -> None:
    """Drop what was read (after the vocabularies themselves were synced)."""
    with _lock:
        _loaded.clear()


def _read(session: Session) -> Vocabulary:
    specialties = {
        code: SpecialtyName(code, slug, name)
        for code, slug, name in session.execute(
            select(Specialty.code, Specialty.slug, Specialty.display_name)
        )
    }
    return Vocabulary(
        specialties=specialties,
        specialty_codes={code.upper(): code for code in specialties}
        | {entry.slug: code for code, entry in specialties.items()},
        conditions={
            slug: name for slug, name in session.execute(select(Condition.slug, Condition.name))
        },
        certifications={
            code: name
            for code, name in session.execute(select(Certification.code, Certification.name))
        },
        languages={
            code: name for code, name in session.execute(select(Language.code, Language.name))
        },
        services={slug: name for slug, name in session.execute(select(Service.slug, Service.name))},
    )


def _names(
    session: Session, key: InstrumentedAttribute[str], name: InstrumentedAttribute[str]
) -> dict[str, str]:
    return {k: v for k, v in session.execute(select(key, name))}
