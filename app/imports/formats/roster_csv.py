"""The project's CSV roster template: one row for each therapist, location and plan.

Consecutive rows with the same NPI are one therapist; among them, rows with the
same address are one site, and each row's plan puts that site in the plan's
network. A cell left empty on a therapist's (or a site's) later rows says nothing;
filled cells must agree. docs/imports.md describes the template for insurers.
"""

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import BinaryIO, TypeVar

from app.imports.formats.csv_rows import CsvRows
from app.imports.records import (
    FieldNames,
    ImportFileError,
    PlanRecord,
    PlanRef,
    Problem,
    ProviderRecord,
    Record,
    SiteRecord,
)
from app.networks.schemas import is_hios_shaped, standard_component

COLUMNS: tuple[str, ...] = (
    "npi",
    "first_name",
    "middle_name",
    "last_name",
    "name_suffix",
    "credentials",
    "gender",
    "specialties",
    "certifications",
    "conditions",
    "services",
    "languages",
    "location_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip",
    "latitude",
    "longitude",
    "phone",
    "fax",
    "facility_type",
    "accepting_new_patients",
    "telehealth",
    "plan",
    "plan_type",
    "network_tier",
    "effective_from",
    "effective_to",
    "verified_at",
)
# A required column must be in the header; its cells may still be empty, and the
# import then refuses the record with the same message every format gets (but an
# empty accepting_new_patients, which says the flag is not known).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "npi",
    "first_name",
    "last_name",
    "specialties",
    "address_line1",
    "city",
    "state",
    "zip",
    "accepting_new_patients",
)

# validate.py's field names as the template's columns (mostly the same); a list
# field is one cell, and a site's problems say which row's line.
FIELD_NAMES = FieldNames(
    record={"sites": "address_line1"},
    site={"name": "location_name"},
    sites=None,
    plans=None,
    indexed=False,
    declared={"key": "plan", "name": "plan", "plan_id": "plan"},
)

_ADDRESS_COLUMNS = ("address_line1", "address_line2", "city", "state", "zip")
_PLAN_DETAIL_COLUMNS = (
    "plan_type",
    "network_tier",
    "effective_from",
    "effective_to",
    "verified_at",
)
_LIST_SEPARATOR = re.compile(r"[;|]")
_CREDENTIAL_SEPARATOR = re.compile(r"[;|,]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]")
_BOOLEANS = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
}
_GENDERS = {"female": "female", "f": "female", "male": "male", "m": "male", "other": "other"}
_SHOWN_UNKNOWN = 5


def parse(stream: BinaryIO) -> Iterator[Record]:
    """Yields each plan the roster declares, then the provider records that use it."""
    rows = CsvRows(stream)
    try:
        yield from _records((line, cells) for line, cells, _ in rows.rows())
    finally:
        rows.close()


def _records(rows: Iterator[tuple[int, list[str]]]) -> Iterator[Record]:
    _, header = next(rows, (1, []))
    if not header:
        raise ImportFileError("the file is empty")
    names = _column_names(header)
    declared: dict[str, tuple[str, int]] = {}  # plan key → (plan type, line)
    therapist: _Therapist | None = None
    provider_count = 0
    for line, cells in rows:
        values = _cells_by_column(names, cells, line)
        if not any(values.values()):
            continue
        row = _Row(line, values)
        if therapist is not None and not therapist.continues_with(row.npi):
            yield therapist.record()
            therapist = None
        # Named after the therapist record its row belongs to: it has no index of its own.
        owner = provider_count if therapist is None else provider_count - 1
        plan_record = _declare_plan(row, declared, index=owner)
        if plan_record is not None:
            yield plan_record
        if therapist is None:
            therapist = _Therapist(provider_count, row)
            provider_count += 1
        else:
            therapist.add(row)
    if therapist is not None:
        yield therapist.record()


def _column_names(header: Sequence[str]) -> list[str]:
    names = [cell.strip().lower() for cell in header]
    while names and not names[-1]:
        names.pop()  # empty header cells at the end, as spreadsheets often save them
    if len(names) == 1 and (separator := _other_separator(names[0])):
        raise ImportFileError(
            f"the header is one column; the file looks separated by {separator}: "
            "the roster template separates columns with commas",
            line=1,
        )
    unknown = [
        repr(name) if name else f"an unnamed column (column {position})"
        for position, name in enumerate(names, start=1)
        if name not in COLUMNS
    ]
    if unknown:
        shown = ", ".join(unknown[:_SHOWN_UNKNOWN])
        more = f" and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
        # The national NPI file is the CSV most often sent in the template's place.
        nppes = " (this is the NPPES dissemination file: send format=nppes)"
        hint = nppes if {"entity type code", "npi"} <= set(names) else ""
        raise ImportFileError(
            f"the header has columns the roster template does not know: {shown}{more}{hint}",
            line=1,
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ImportFileError(
            f"the header names a column more than once: {', '.join(map(repr, repeated))}", line=1
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ImportFileError(
            f"the header lacks required columns: {', '.join(map(repr, missing))}", line=1
        )
    return names


def _other_separator(cell: str) -> str | None:
    """What a one-cell header is split by instead of commas, if it names template columns."""
    for separator, described in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
        if separator in cell and "npi" in (part.strip() for part in cell.split(separator)):
            return described
    return None


def _cells_by_column(names: list[str], cells: list[str], line: int) -> dict[str, str | None]:
    if len(cells) > len(names) and any(cell.strip() for cell in cells[len(names) :]):
        # Most often an unquoted comma inside a cell: every later cell has moved
        # one column right, so no cell of the row can be trusted.
        raise ImportFileError(
            f"line {line} has {len(cells)} cells but the header has {len(names)} columns; "
            "put quotes around cells that contain commas",
            line=line,
        )
    values: dict[str, str | None] = dict.fromkeys(COLUMNS)
    values.update(zip(names, [cell.strip() or None for cell in cells], strict=False))
    return values


class _Row:
    """One data row, its cells converted; what cannot be converted is in `problems`."""

    def __init__(self, line: int, values: dict[str, str | None]) -> None:
        self.line = line
        self.problems: list[Problem] = []
        self.npi = values["npi"]
        self.therapist = _TherapistFields(
            first_name=values["first_name"],
            middle_name=values["middle_name"],
            last_name=values["last_name"],
            name_suffix=values["name_suffix"],
            # Written after a name with commas ("PT, DPT"), as NPPES lists them too.
            credentials=_split(values["credentials"], _CREDENTIAL_SEPARATOR),
            gender=self._gender(values["gender"]),
            specialties=_split(values["specialties"]),
            certifications=_split(values["certifications"]),
            conditions=_split(values["conditions"]),
            services=_split(values["services"]),
            languages=_split(values["languages"]),
        )
        self.address = {name: values[name] for name in _ADDRESS_COLUMNS}
        self.site_key = tuple(
            [" ".join(value.split()).casefold() if value else "" for value in self.address.values()]
        )
        self.site = _SiteFields(
            location_name=values["location_name"],
            latitude=self._number("latitude", values["latitude"]),
            longitude=self._number("longitude", values["longitude"]),
            phone=values["phone"],
            fax=values["fax"],
            facility_type=values["facility_type"],
            accepting_new_patients=self._boolean(
                "accepting_new_patients", values["accepting_new_patients"]
            ),
            telehealth=self._boolean("telehealth", values["telehealth"]),
        )
        self.plan = values["plan"]
        self.plan_type = values["plan_type"]
        self.plan_ref = self._plan_ref(values)

    def _refuse(self, column: str, message: str) -> None:
        self.problems.append(Problem(field=column, message=f"line {self.line}: {message}"))

    def _gender(self, value: str | None) -> str | None:
        if value is None:
            return None
        gender = _GENDERS.get(value.lower())
        if gender is None:
            self._refuse("gender", f"{value!r} is not a gender (female, male or other)")
        return gender

    def _number(self, column: str, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            self._refuse(column, f"{value!r} is not a number")
            return None
        return number

    def _boolean(self, column: str, value: str | None) -> bool | None:
        if value is None:
            return None
        answer = _BOOLEANS.get(value.lower())
        if answer is None:
            self._refuse(column, f"{value!r} is not yes or no (true/false, yes/no, y/n, 1/0)")
        return answer

    def _date(self, column: str, value: str | None) -> date | None:
        if value is None:
            return None
        day = _iso_date(value)
        if day is None:
            self._refuse(column, f"{value!r} is not a date (YYYY-MM-DD)")
        return day

    def _moment(self, column: str, value: str | None) -> datetime | None:
        if value is None:
            return None
        moment = _iso_moment(value)
        if moment is not None:
            return moment
        self._refuse(
            column,
            f"{value!r} is neither a date (YYYY-MM-DD) nor a date and time with its UTC "
            "offset (2024-05-01T09:30:00-05:00)",
        )
        return None

    def _plan_ref(self, values: dict[str, str | None]) -> PlanRef | None:
        effective_from = self._date("effective_from", values["effective_from"])
        effective_to = self._date("effective_to", values["effective_to"])
        verified_at = self._moment("verified_at", values["verified_at"])
        if self.plan is None:
            for column in _PLAN_DETAIL_COLUMNS:
                if values[column] is not None:
                    self._refuse(column, f"{column} is given but plan is empty")
            return None
        return PlanRef(
            key=self.plan,
            network_tier=values["network_tier"],
            effective_from=effective_from,
            effective_to=effective_to,
            verified_at=verified_at,
            line=self.line,
        )


# Dates and datetimes are immutable, so records may share them; a roster
# repeats the same few on every row.
@lru_cache(maxsize=1024)
def _iso_date(value: str) -> date | None:
    try:
        if _ISO_DATE.match(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    return None


@lru_cache(maxsize=1024)
def _iso_moment(value: str) -> datetime | None:
    """A date (midnight UTC) or a date and time with its offset, in UTC."""
    try:
        if _ISO_DATE.match(value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        if _ISO_DATETIME.match(value):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 in UTC
        pass
    return None


@dataclass(slots=True)
class _TherapistFields:
    """The columns every row of one therapist repeats."""

    first_name: str | None
    middle_name: str | None
    last_name: str | None
    name_suffix: str | None
    credentials: list[str]
    gender: str | None
    specialties: list[str]
    certifications: list[str]
    conditions: list[str]
    services: list[str]
    languages: list[str]


@dataclass(slots=True)
class _SiteFields:
    """The columns every row of one therapist at one address repeats."""

    location_name: str | None
    latitude: float | None
    longitude: float | None
    phone: str | None
    fax: str | None
    facility_type: str | None
    accepting_new_patients: bool | None
    telehealth: bool | None


_Fields = TypeVar("_Fields", _TherapistFields, _SiteFields)
# Looked up once: dataclasses.fields() is slow next to a row's other work.
_FIELD_NAMES = {
    kind: tuple(item.name for item in fields(kind)) for kind in (_TherapistFields, _SiteFields)
}


def _merge(
    kept: _Fields, new: _Fields, *, line: int, sources: dict[str, int], problems: list[Problem]
) -> None:
    """Fills `kept`'s empty fields from `new`; a filled field `new` contradicts is a problem."""
    for column in _FIELD_NAMES[type(kept)]:
        value, current = getattr(new, column), getattr(kept, column)
        if value is None or value == []:
            continue
        if current is None or current == []:
            setattr(kept, column, value)
            sources[column] = line
        elif value != current and not _same_words(value, current):
            problems.append(
                Problem(
                    field=column,
                    message=f"line {line} has {_show(value)} but line {sources[column]} has "
                    f"{_show(current)}; rows of the same {_scope(kept)} must agree",
                )
            )


def _same_words(value: object, current: object) -> bool:
    """Two texts that differ only in how their words are spaced (a tab, a line
    break in a cell), which the import makes the same."""
    return isinstance(value, str) and isinstance(current, str) and value.split() == current.split()


def _scope(kept: _TherapistFields | _SiteFields) -> str:
    return "therapist" if isinstance(kept, _TherapistFields) else "therapist and address"


def _show(value: object) -> str:
    if isinstance(value, list):
        return repr("; ".join(value))
    if isinstance(value, bool):
        return "'yes'" if value else "'no'"
    return repr(str(value))


@dataclass(slots=True)
class _Site:
    address: dict[str, str | None]
    values: _SiteFields
    sources: dict[str, int]
    plans: dict[str, tuple[PlanRef, int]] = field(default_factory=dict)


class _Therapist:
    """The rows read so far of one therapist, merged."""

    def __init__(self, index: int, first: _Row) -> None:
        self.index = index
        self.line = first.line
        self.npi = first.npi
        self.values = first.therapist
        self.sources = _sources(first.therapist, first.line)
        self.sites: dict[tuple[str, ...], _Site] = {}
        self.problems: list[Problem] = []
        self._place(first)

    def continues_with(self, npi: str | None) -> bool:
        # Rows without an NPI cannot be told apart, so each is a therapist of its own.
        return npi is not None and npi == self.npi

    def add(self, row: _Row) -> None:
        _merge(
            self.values, row.therapist, line=row.line, sources=self.sources, problems=self.problems
        )
        self._place(row)

    def _place(self, row: _Row) -> None:
        """Adds the row's site, or merges it into the site at the same address."""
        self.problems.extend(row.problems)
        site = self.sites.get(row.site_key)
        if site is None:
            site = _Site(row.address, row.site, _sources(row.site, row.line))
            self.sites[row.site_key] = site
        else:
            _merge(
                site.values, row.site, line=row.line, sources=site.sources, problems=self.problems
            )
        if row.plan_ref is not None:
            self._add_plan(site, row.plan_ref, row.line)

    def _add_plan(self, site: _Site, plan: PlanRef, line: int) -> None:
        listed = site.plans.get(plan.key)
        if listed is None:
            site.plans[plan.key] = (plan, line)
        elif listed[0].terms() != plan.terms():
            self.problems.append(
                Problem(
                    field="plan",
                    message=f"line {line} lists plan {plan.key!r} at this address again, "
                    f"with other details than line {listed[1]}",
                )
            )

    def record(self) -> ProviderRecord:
        return ProviderRecord(
            index=self.index,
            line=self.line,
            npi=self.npi,
            first_name=self.values.first_name,
            middle_name=self.values.middle_name,
            last_name=self.values.last_name,
            name_suffix=self.values.name_suffix,
            credentials=self.values.credentials,
            gender=self.values.gender,
            specialties=self.values.specialties,
            certifications=self.values.certifications,
            conditions=self.values.conditions,
            services=self.values.services,
            languages=self.values.languages,
            sites=[_site_record(site) for site in self.sites.values()],
            problems=self.problems,
        )


def _sources(values: _TherapistFields | _SiteFields, line: int) -> dict[str, int]:
    """Each field's line of origin, for naming both lines when a later row disagrees."""
    return dict.fromkeys(_FIELD_NAMES[type(values)], line)


def _site_record(site: _Site) -> SiteRecord:
    return SiteRecord(
        address_line1=site.address["address_line1"],
        address_line2=site.address["address_line2"],
        city=site.address["city"],
        state=site.address["state"],
        zip=site.address["zip"],
        name=site.values.location_name,
        latitude=site.values.latitude,
        longitude=site.values.longitude,
        phone=site.values.phone,
        fax=site.values.fax,
        facility_type=site.values.facility_type,
        accepting_new_patients=site.values.accepting_new_patients,
        telehealth=site.values.telehealth,
        plans=[plan for plan, _ in site.plans.values()],
        line=min(site.sources.values()),
        # validate.py names the location's name "name"; the template, location_name.
        lines={
            "name" if column == "location_name" else column: line
            for column, line in site.sources.items()
        },
    )


def _declare_plan(
    row: _Row, declared: dict[str, tuple[str, int]], *, index: int
) -> PlanRecord | None:
    """A PlanRecord the first time a plan comes with its type; a problem if the type changes."""
    if row.plan is None or row.plan_type is None:
        return None
    known = declared.get(row.plan)
    if known is None:
        declared[row.plan] = (row.plan_type, row.line)
        hios_plan_id = _hios_plan_id(row.plan)
        return PlanRecord(
            index=index,
            line=row.line,
            key=row.plan,
            name=hios_plan_id or row.plan,
            plan_type=row.plan_type,
            hios_plan_id=hios_plan_id,
        )
    if known[0] != row.plan_type:
        row.problems.append(
            Problem(
                field="plan_type",
                message=f"line {row.line} gives plan {row.plan!r} the type {row.plan_type!r} "
                f"but line {known[1]} gives it {known[0]!r}",
            )
        )
    return None


def _hios_plan_id(plan: str) -> str | None:
    """The plan column's HIOS id, in either case, a cost-sharing variant's too (the
    import reads that as its plan's, with a warning); None for a plan's name."""
    plan = plan.upper()
    return plan if is_hios_shaped(plan) or standard_component(plan) else None


def _split(cell: str | None, separator: re.Pattern[str] = _LIST_SEPARATOR) -> list[str]:
    return [] if cell is None else list(_items(cell, separator))


@lru_cache(maxsize=4096)  # a roster repeats the same few lists (specialties, languages)
def _items(cell: str, separator: re.Pattern[str]) -> tuple[str, ...]:
    return tuple(item for item in (part.strip() for part in separator.split(cell)) if item)
