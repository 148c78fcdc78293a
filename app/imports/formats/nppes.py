"""The public NPPES dissemination CSV: every physical therapist in the national NPI file.

The file has one row per NPI and 329 columns; only individuals with a PT or PTA
taxonomy become provider records, the rest are skipped with a reason. NPPES knows
nothing of networks, so records carry no plans and no accepting-new-patients flag.
"""

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import BinaryIO

from app.fields import normalise_state
from app.geocoding import place_address
from app.imports.formats.csv_rows import CsvRows
from app.imports.records import (
    FieldNames,
    ImportFileError,
    ProviderRecord,
    Record,
    SiteRecord,
    Skipped,
)

_TAXONOMY_SLOTS = range(1, 16)
_PRACTICE = "Provider Business Practice Location Address"
_NPI = "NPI"
_ENTITY_TYPE = "Entity Type Code"
_LAST_NAME = "Provider Last Name (Legal Name)"
_FIRST_NAME = "Provider First Name"
_MIDDLE_NAME = "Provider Middle Name"
_NAME_SUFFIX = "Provider Name Suffix Text"
_CREDENTIALS = "Provider Credential Text"
_GENDER = "Provider Gender Code"
# The files of 2025 on name the same column (values M and F) this way.
_SEX = "Provider Sex Code"
_DEACTIVATED = "NPI Deactivation Date"
_REACTIVATED = "NPI Reactivation Date"
_LINE1 = "Provider First Line Business Practice Location Address"
_LINE2 = "Provider Second Line Business Practice Location Address"
_CITY = f"{_PRACTICE} City Name"
_STATE = f"{_PRACTICE} State Name"
_POSTAL_CODE = f"{_PRACTICE} Postal Code"
_COUNTRY = f"{_PRACTICE} Country Code (If outside U.S.)"
_PHONE = f"{_PRACTICE} Telephone Number"
_FAX = f"{_PRACTICE} Fax Number"

# validate.py's field names as NPPES columns; a list field is one cell.
FIELD_NAMES = FieldNames(
    record={
        "npi": _NPI,
        "first_name": _FIRST_NAME,
        "middle_name": _MIDDLE_NAME,
        "last_name": _LAST_NAME,
        "name_suffix": _NAME_SUFFIX,
        "credentials": _CREDENTIALS,
        "gender": _GENDER,
        "specialties": "Healthcare Provider Taxonomy Code",
        "sites": _LINE1,
    },
    site={
        "address_line1": _LINE1,
        "address_line2": _LINE2,
        "city": _CITY,
        "state": _STATE,
        "zip": _POSTAL_CODE,
        "phone": _PHONE,
        "fax": _FAX,
    },
    sites=None,
    indexed=False,
)


def _taxonomy(slot: int) -> str:
    return f"Healthcare Provider Taxonomy Code_{slot}"


def _primary_switch(slot: int) -> str:
    return f"Healthcare Provider Primary Taxonomy Switch_{slot}"


_USED_COLUMNS: tuple[str, ...] = (
    _NPI,
    _ENTITY_TYPE,
    _LAST_NAME,
    _FIRST_NAME,
    _MIDDLE_NAME,
    _NAME_SUFFIX,
    _CREDENTIALS,
    _GENDER,
    _DEACTIVATED,
    _REACTIVATED,
    _LINE1,
    _LINE2,
    _CITY,
    _STATE,
    _POSTAL_CODE,
    _COUNTRY,
    _PHONE,
    _FAX,
    *(name for slot in _TAXONOMY_SLOTS for name in (_taxonomy(slot), _primary_switch(slot))),
)

_GENDERS = {"M": "male", "F": "female"}
_CREDENTIAL_SEPARATOR = re.compile(r"[,;]")


def _is_pt_taxonomy(code: str) -> bool:
    """Physical Therapist (2251…X, every specialisation) or Physical Therapy Assistant."""
    return code.startswith("2251") or code == "225200000X"


def parse(stream: BinaryIO) -> Iterator[Record]:
    """Yields a ProviderRecord per physical therapist and a Skipped per other row."""
    rows = CsvRows(stream)
    try:
        _, header, width = next(rows.rows(), (1, [], 0))
        if not header:
            raise ImportFileError("the file is empty")
        columns = _Columns(_column_positions(header))
        for index, (line, cells, count) in enumerate(rows.rows(keep=columns.needed)):
            if count != width:
                raise ImportFileError(
                    f"line {line} has {count} fields but the header has {width}; "
                    "the file may be truncated",
                    line=line,
                )
            yield _record(index, line, cells, columns)
    finally:
        rows.close()


def _column_positions(header: Sequence[str]) -> dict[str, int]:
    positions = {name.strip(): position for position, name in enumerate(header)}
    if _GENDER not in positions and _SEX in positions:
        positions[_GENDER] = positions[_SEX]
    missing = [name for name in _USED_COLUMNS if name not in positions]
    if missing:
        others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImportFileError(
            f"this is not an NPPES dissemination file: the header has no column "
            f"'{missing[0]}'{others}",
            line=1,
        )
    return positions


class _Columns:
    """Where each column the import reads stands in a row, looked up once per file."""

    __slots__ = (
        "city",
        "country",
        "credentials",
        "deactivated",
        "entity_type",
        "fax",
        "first_name",
        "gender",
        "last_name",
        "line1",
        "line2",
        "middle_name",
        "name_suffix",
        "needed",
        "npi",
        "phone",
        "postal_code",
        "reactivated",
        "state",
        "taxonomies",
    )

    def __init__(self, positions: dict[str, int]) -> None:
        self.npi = positions[_NPI]
        self.entity_type = positions[_ENTITY_TYPE]
        self.last_name = positions[_LAST_NAME]
        self.first_name = positions[_FIRST_NAME]
        self.middle_name = positions[_MIDDLE_NAME]
        self.name_suffix = positions[_NAME_SUFFIX]
        self.credentials = positions[_CREDENTIALS]
        self.gender = positions[_GENDER]
        self.deactivated = positions[_DEACTIVATED]
        self.reactivated = positions[_REACTIVATED]
        self.line1 = positions[_LINE1]
        self.line2 = positions[_LINE2]
        self.city = positions[_CITY]
        self.state = positions[_STATE]
        self.postal_code = positions[_POSTAL_CODE]
        self.country = positions[_COUNTRY]
        self.phone = positions[_PHONE]
        self.fax = positions[_FAX]
        # (code, primary switch) of each taxonomy slot
        self.taxonomies = tuple(
            (positions[_taxonomy(slot)], positions[_primary_switch(slot)])
            for slot in _TAXONOMY_SLOTS
        )
        self.needed = max(positions[name] for name in _USED_COLUMNS) + 1


def _cell(cells: list[str], position: int) -> str | None:
    return cells[position].strip() or None


def _record(index: int, line: int, cells: list[str], at: _Columns) -> Record:
    npi = _cell(cells, at.npi)
    deactivated = _cell(cells, at.deactivated)
    if deactivated is not None and _is_deactivated(deactivated, _cell(cells, at.reactivated)):
        return Skipped(index=index, line=line, reason=DEACTIVATED, withdrawn=npi)
    entity_type = _cell(cells, at.entity_type)
    if entity_type == "2":
        return Skipped(index=index, line=line, reason="organization (entity type 2)")
    if entity_type != "1":
        return Skipped(index=index, line=line, reason=f"unknown entity type {entity_type!r}")
    specialties = _pt_specialties(cells, at.taxonomies)
    if not specialties:
        return Skipped(index=index, line=line, reason=NOT_A_PT, withdrawn=npi)
    country = (_cell(cells, at.country) or "US").upper()
    if country != "US":
        return Skipped(
            index=index, line=line, reason=f"practice location outside the US ({country})"
        )
    site = SiteRecord(
        address_line1=_cell(cells, at.line1),
        address_line2=_cell(cells, at.line2),
        city=_cell(cells, at.city),
        state=_cell(cells, at.state),
        zip=_zip(_cell(cells, at.postal_code)),
        phone=_cell(cells, at.phone),
        fax=_cell(cells, at.fax),
    )
    if site.zip and site.city and _is_state(site.state) and not _can_place(*_where(site)):
        # Mostly military APO/FPO addresses. The file cannot be corrected by whoever
        # imports it, and a site off the map is no practice a search can find.
        return Skipped(index=index, line=line, reason=UNPLACED)
    credentials = _cell(cells, at.credentials)
    return ProviderRecord(
        index=index,
        line=line,
        npi=npi,
        first_name=_cell(cells, at.first_name),
        middle_name=_cell(cells, at.middle_name),
        last_name=_cell(cells, at.last_name),
        name_suffix=_cell(cells, at.name_suffix),
        credentials=[] if credentials is None else list(_split_credentials(credentials)),
        gender=_GENDERS.get(cells[at.gender].strip()),
        specialties=specialties,
        sites=[site],
    )


UNPLACED = "practice address cannot be placed (unknown ZIP code and city)"
DEACTIVATED = "NPI deactivated"
NOT_A_PT = "no physical-therapy taxonomy"


def _is_state(state: str | None) -> bool:
    """A state code validation will take; another is refused there, not skipped here."""
    try:
        return state is not None and bool(normalise_state(state))
    except ValueError:
        return False


def _where(site: SiteRecord) -> tuple[str, str, str]:
    return site.zip or "", site.city or "", (site.state or "").strip().upper()


@lru_cache(maxsize=4096)
def _can_place(zip_code: str, city: str, state: str) -> bool:
    return place_address(zip_code, city, state) is not None


def _is_deactivated(deactivated: str, reactivated: str | None) -> bool:
    if reactivated is None:
        return True
    deactivated_on, reactivated_on = _nppes_date(deactivated), _nppes_date(reactivated)
    if deactivated_on is None or reactivated_on is None:
        return True  # an unreadable date cannot show the NPI came back
    return reactivated_on < deactivated_on


def _nppes_date(value: str) -> date | None:
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


def _pt_specialties(cells: list[str], taxonomies: tuple[tuple[int, int], ...]) -> list[str]:
    """The row's PT taxonomy codes, the primary one first, each once."""
    codes: list[str] = []
    for code_at, switch_at in taxonomies:
        code = cells[code_at]
        if not code:  # most slots are empty
            continue
        code = code.strip().upper()
        if not _is_pt_taxonomy(code):
            continue
        if cells[switch_at].strip().upper() == "Y":
            codes.insert(0, code)
        else:
            codes.append(code)
    return list(dict.fromkeys(codes))


@lru_cache(maxsize=4096)  # a file repeats the same few credential spellings
def _split_credentials(text: str) -> tuple[str, ...]:
    """'P.T., D.P.T.' → ('PT', 'DPT'): NPPES credential text is free, dotted or not."""
    parts = (" ".join(part.replace(".", "").split()) for part in _CREDENTIAL_SEPARATOR.split(text))
    return tuple(dict.fromkeys(part for part in parts if part))


def _zip(value: str | None) -> str | None:
    """NPPES writes ZIP+4 as nine bare digits."""
    if value is not None and len(value) == 9 and value.isdecimal():
        return f"{value[:5]}-{value[5:]}"
    return value
