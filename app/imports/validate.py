"""Checks every provider record against the rules that hold whatever the format.

The result is a `Provider` with normalised values (an NPI that passes its check
digit, a USPS state code, a ZIP or ZIP+4, coordinates in range or a ZIP
centroid) or the list of problems that refuse the record. Phone and fax
numbers that cannot be read are dropped with a warning: a directory entry
without a fax is still useful, one with a wrong fax is not.
"""

import re
from dataclasses import dataclass, field
from functools import lru_cache

from app.fields import (
    has_control_characters,
    normalise_npi,
    normalise_phone,
    normalise_state,
    normalise_zip,
)
from app.geocoding import UNPLACEABLE, is_far_from, place_address
from app.imports.languages import language_codes
from app.imports.records import (
    INTERNAL_NAMES,
    FieldNames,
    PlanRef,
    Problem,
    ProviderRecord,
    SiteRecord,
)
from app.imports.specialties import nucc_code_for
from app.locations.address import address_key
from app.locations.models import FacilityType, GeocodePrecision
from app.networks.schemas import is_hios_shaped
from app.reference.vocabulary import Vocabulary
from app.search.geo import haversine_km_py
from app.therapists.models import Gender

_PT_CODE = re.compile(r"^(2251[0-9A-Z]{5}X|225200000X)$")
_FACILITY_TYPES = {member.value for member in FacilityType}
_GENDERS = {member.value for member in Gender}
# As the API takes them (app.therapists.schemas).
_MAX_CREDENTIALS = 10
_CREDENTIAL_LENGTH = 20


@dataclass(slots=True)
class Site:
    address_key: str
    address_line1: str
    address_line2: str | None
    city: str
    state: str
    zip: str
    latitude: float
    longitude: float
    geocode_precision: GeocodePrecision
    name: str | None
    phone: str | None
    fax: str | None
    facility_type: str | None
    accepting_new_patients: bool | None
    telehealth: bool | None
    plans: list[PlanRef]


@dataclass(slots=True)
class Provider:
    npi: str
    first_name: str
    middle_name: str | None
    last_name: str
    name_suffix: str | None
    credentials: list[str]
    gender: str | None
    specialties: list[str]  # NUCC codes, primary first
    languages: list[str]
    certifications: list[str]
    conditions: list[str]
    services: list[str]
    sites: list[Site]


@dataclass(slots=True)
class Checked:
    provider: Provider | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # The record's NPI when that much of it is valid, refused or not: a replace
    # leaves a refused therapist's participations as they were.
    npi: str | None = None


class _Checker:
    def __init__(self, record: ProviderRecord) -> None:
        self.problems = list(record.problems)
        self.warnings = list(record.warnings)

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    def text(self, name: str, value: str | None, *, required: bool, limit: int) -> str | None:
        value = value.strip() if value else None
        if not value:
            if required:
                self.fail(name, "is required")
            return None
        if has_control_characters(value):
            value = without_layout(value)
            if has_control_characters(value):
                self.fail(name, "must not contain control characters or unpaired surrogates")
                return None
        if len(value) > limit:
            self.fail(name, f"is longer than {limit} characters")
            return None
        return value

    def normalised(self, name: str, value: str | None, check: object) -> str | None:
        if value is None or not value.strip():
            self.fail(name, "is required")
            return None
        try:
            return check(value)  # type: ignore[operator,no-any-return]
        except ValueError as error:
            self.fail(name, str(error))
            return None

    def phone(self, name: str, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        number, extension = _without_extension(value)
        try:
            phone = normalise_phone(number)
        except ValueError as error:
            self.warnings.append(Problem(name, f"{error}; left out"))
            return None
        if extension:
            message = f"extension {extension!r} left out (the directory keeps the 10 digits)"
            self.warnings.append(Problem(name, message))
        return phone

    def codes(
        self, name: str, values: list[str], known: dict[str, str] | set[str], *, upper: bool
    ) -> list[str]:
        found: list[str] = []
        for index, raw in enumerate(values):
            value = raw.strip().upper() if upper else raw.strip().lower()
            if value not in known:
                self.fail(f"{name}[{index}]", f"unknown {name.rstrip('s')} {raw!r}; see /v1/{name}")
            elif value not in found:
                found.append(value)
        return found

    def languages(self, values: list[str], known: dict[str, str]) -> list[str]:
        """ISO 639-1 codes, or the names /v1/languages gives them ("Spanish", "Español")."""
        found: list[str] = []
        for index, raw in enumerate(values):
            code = raw.strip().lower()
            codes = [code] if code in known else [c for c in language_codes(raw) if c in known]
            if not codes:
                self.fail(f"languages[{index}]", f"unknown language {raw!r}; see /v1/languages")
            found.extend(code for code in codes if code not in found)
        return found


# Line breaks and tabs, with the spaces around them.
_LAYOUT = re.compile(r"[ ]*[\t\r\n][ \t\r\n]*")


def without_layout(value: str) -> str:
    """A line break or tab inside a cell (a spreadsheet's "Suite 2⏎Rear") is layout,
    not content: each becomes one space. Other control characters stay, to be refused."""
    return _LAYOUT.sub(" ", value).strip()


def spaced(value: str) -> str:
    """The value stripped, and without layout if it has any control character."""
    return without_layout(value) if has_control_characters(value) else value.strip()


def check_provider(
    record: ProviderRecord, vocabulary: Vocabulary, names: FieldNames = INTERNAL_NAMES
) -> Checked:
    """The record with normalised values, or the problems that refuse it, each naming
    its field as the format does."""
    check = _Checker(record)
    checked = _check(check, record, vocabulary, names)
    if names is not INTERNAL_NAMES:
        found = len(record.problems)
        if len(check.problems) > found:
            _name_as_the_file(check.problems[found:], record, names)
            # A field the parser already said why it could not read is not missing too.
            told = {problem.field for problem in record.problems}
            check.problems[found:] = [
                problem
                for problem in unique(check.problems[found:])
                if not (problem.message == "is required" and problem.field in told)
            ]
        found = len(record.warnings)
        if len(check.warnings) > found:
            _name_as_the_file(check.warnings[found:], record, names)
            check.warnings[found:] = unique(check.warnings[found:])
    return checked


def unique(problems: list[Problem]) -> list[Problem]:
    """Each problem once. A QHP plan is checked at every address that lists it, but
    the file lists it once, and so names its problem."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for problem in problems:
        if (problem.field, problem.message) not in seen:
            seen.add((problem.field, problem.message))
            kept.append(problem)
    return kept


def _check(
    check: _Checker, record: ProviderRecord, vocabulary: Vocabulary, names: FieldNames
) -> Checked:
    npi = check.normalised("npi", record.npi, normalise_npi)
    first_name = check.text("first_name", record.first_name, required=True, limit=100)
    last_name = check.text("last_name", record.last_name, required=True, limit=100)
    middle_name = check.text("middle_name", record.middle_name, required=False, limit=100)
    name_suffix = check.text("name_suffix", record.name_suffix, required=False, limit=20)
    credentials = _credentials(check, record.credentials)
    gender = record.gender.strip().lower() if record.gender else None
    if gender is not None and gender not in _GENDERS:
        check.fail("gender", "must be female, male or other")
    specialties = _specialties(check, record.specialties, vocabulary)
    languages = check.languages(record.languages, vocabulary.languages)
    certifications = check.codes(
        "certifications", record.certifications, vocabulary.certifications, upper=True
    )
    conditions = check.codes("conditions", record.conditions, vocabulary.conditions, upper=False)
    services = check.codes("services", record.services, vocabulary.services, upper=False)
    if not record.sites:
        check.fail("sites", "the record gives no practice address")
    sites = [_site(check, f"sites[{i}]", site) for i, site in enumerate(record.sites)]
    keys: dict[str, int] = {}
    for index, site in enumerate(sites):
        if site is None:
            continue
        if site.address_key in keys:
            _merge_site(sites[keys[site.address_key]], site)  # type: ignore[arg-type]
            sites[index] = None
        else:
            keys[site.address_key] = index
    if check.problems or not (npi and first_name and last_name):
        return Checked(None, check.problems, check.warnings, npi)
    provider = Provider(
        npi=npi,
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        name_suffix=name_suffix,
        credentials=list(dict.fromkeys(credentials)),
        gender=gender,
        specialties=specialties,
        languages=languages,
        certifications=certifications,
        conditions=conditions,
        services=services,
        sites=[site for site in sites if site is not None],
    )
    return Checked(provider, [], check.warnings, npi)


# "(847) 555-0100 ext. 12", "847-555-0100 x12": directories write extensions so.
_EXTENSION = re.compile(r"^(.*?\d)\s*,?\s*(?:ext\.?|extension|x)\s*(\d{1,6})\s*$", re.IGNORECASE)


def _without_extension(value: str) -> tuple[str, str | None]:
    if "x" not in value and "X" not in value:  # every spelling has one; most phones none
        return value, None
    match = _EXTENSION.match(value.strip())
    return (match[1], match[2]) if match else (value, None)


def _specialties(check: _Checker, values: list[str], vocabulary: Vocabulary) -> list[str]:
    codes: list[str] = []
    for index, raw in enumerate(values):
        token = raw.strip()
        code = (
            vocabulary.specialty_codes.get(token.upper())
            or vocabulary.specialty_codes.get(token.lower())
            # The display names /v1/specialties lists, and their common spellings.
            or vocabulary.specialty_codes.get(nucc_code_for(token) or "")
        )
        if code is None:
            hint = (
                "not a physical therapy taxonomy code (2251*, 225200000X)"
                if re.match(r"^[0-9A-Z]{9}X$", token.upper()) and not _PT_CODE.match(token.upper())
                else "unknown specialty; see /v1/specialties"
            )
            check.fail(f"specialties[{index}]", f"{raw!r}: {hint}")
        elif code not in codes:
            codes.append(code)
    if not values:
        check.fail("specialties", "at least one physical therapy specialty is required")
    return codes


def _site(check: _Checker, name: str, record: SiteRecord) -> Site | None:
    before = len(check.problems)
    line1 = check.text(f"{name}.address_line1", record.address_line1, required=True, limit=200)
    line2 = check.text(f"{name}.address_line2", record.address_line2, required=False, limit=200)
    city = check.text(f"{name}.city", record.city, required=True, limit=100)
    state = check.normalised(f"{name}.state", record.state, normalise_state)
    zip_code = check.normalised(f"{name}.zip", record.zip, normalise_zip)
    site_name = check.text(f"{name}.name", record.name, required=False, limit=200)
    facility_type = record.facility_type.strip().lower() if record.facility_type else None
    if facility_type is not None and facility_type not in _FACILITY_TYPES:
        check.fail(f"{name}.facility_type", f"must be one of {', '.join(sorted(_FACILITY_TYPES))}")
    position = _position(check, name, record, zip_code, city, state)
    plans = [_plan_ref(check, name, i, ref) for i, ref in enumerate(record.plans)]
    listed: set[str] = set()
    for index, ref in enumerate(plans):
        if ref is not None and ref.key in listed:
            check.warnings.append(
                Problem(f"{name}.plans[{index}]", "plan listed twice; first kept")
            )
            plans[index] = None
        elif ref is not None:
            listed.add(ref.key)
    if len(check.problems) > before or position is None:
        return None
    if not (line1 and city and state and zip_code):
        return None  # each missing one was reported above
    latitude, longitude, precision = position
    return Site(
        address_key=address_key(
            line1=line1, line2=line2, city=city, state=state, zip_code=zip_code
        ),
        address_line1=line1,
        address_line2=line2,
        city=city,
        state=state,
        zip=zip_code,
        latitude=latitude,
        longitude=longitude,
        geocode_precision=precision,
        name=site_name,
        phone=check.phone(f"{name}.phone", record.phone),
        fax=check.phone(f"{name}.fax", record.fax),
        facility_type=facility_type,
        accepting_new_patients=record.accepting_new_patients,
        telehealth=record.telehealth,
        plans=[ref for ref in plans if ref is not None],
    )


def _position(
    check: _Checker,
    name: str,
    record: SiteRecord,
    zip_code: str | None,
    city: str | None,
    state: str | None,
) -> tuple[float, float, GeocodePrecision] | None:
    latitude, longitude = record.latitude, record.longitude
    if (latitude is None) != (longitude is None):
        missing = "longitude" if longitude is None else "latitude"
        check.fail(f"{name}.{missing}", "is required when the other coordinate is given")
        return None
    if latitude is not None and longitude is not None:
        if not -90 <= latitude <= 90:
            check.fail(f"{name}.latitude", "must be between -90 and 90")
            return None
        if not -180 <= longitude <= 180:
            check.fail(f"{name}.longitude", "must be between -180 and 180")
            return None
        return _near_the_address(check, name, latitude, longitude, zip_code, city, state)
    if zip_code is None or city is None or state is None:
        return None  # each missing one was reported
    place = place_address(zip_code, city, state)
    if place is None:
        check.fail(f"{name}.zip", UNPLACEABLE)
        return None
    if place.precision is GeocodePrecision.CITY_CENTROID:
        check.warnings.append(
            Problem(f"{name}.zip", f"unknown ZIP code {zip_code}; placed at the centre of the city")
        )
    return place.latitude, place.longitude, place.precision


def _near_the_address(
    check: _Checker,
    name: str,
    latitude: float,
    longitude: float,
    zip_code: str | None,
    city: str | None,
    state: str | None,
) -> tuple[float, float, GeocodePrecision]:
    """The coordinates given, unless they lie far from the address they belong to."""
    provided = latitude, longitude, GeocodePrecision.PROVIDED
    if not is_far_from(latitude, longitude, zip_code, city, state):
        return provided
    if -90 <= longitude <= 90 and not is_far_from(longitude, latitude, zip_code, city, state):
        check.warnings.append(
            Problem(
                f"{name}.latitude",
                f"latitude {latitude} and longitude {longitude} are swapped: "
                "taken the other way round, which is at the address",
            )
        )
        return longitude, latitude, GeocodePrecision.PROVIDED
    place = place_address(zip_code, city, state) if zip_code and city and state else None
    if place is None:
        return provided
    away = haversine_km_py(latitude, longitude, place.latitude, place.longitude)
    by_zip = place.precision is GeocodePrecision.ZIP_CENTROID
    check.warnings.append(
        Problem(
            f"{name}.latitude",
            f"({latitude}, {longitude}) is {away:,.0f} km from "
            f"{f'ZIP {zip_code}' if by_zip else f'{city}, {state}'}; "
            f"not taken: a new site is placed at the centre of the {'ZIP' if by_zip else 'city'}, "
            "one already in the directory keeps its position",
        )
    )
    return place.latitude, place.longitude, place.precision


def _credentials(check: _Checker, values: list[str]) -> list[str]:
    """Up to ten, each at most 20 characters: the rest is left out with a warning.

    Files write credentials as free text ("Physical Therapist License"); one too
    long for the directory's short form ("PT", "DPT") says nothing wrong with the
    therapist, so it does not refuse the record.
    """
    kept: list[str] = []
    for index, raw in enumerate(values):
        value = spaced(raw) if raw else ""
        name = f"credentials[{index}]"
        if not value or value in kept:
            continue
        if len(kept) == _MAX_CREDENTIALS:
            check.warnings.append(Problem(name, f"more than {_MAX_CREDENTIALS}; left out"))
        elif len(value) > _CREDENTIAL_LENGTH:
            message = f"{value[:40]!r} is longer than {_CREDENTIAL_LENGTH} characters; left out"
            check.warnings.append(Problem(name, message))
        elif has_control_characters(value):
            check.warnings.append(Problem(name, "has control characters; left out"))
        else:
            kept.append(value)
    return kept


def _plan_ref(check: _Checker, site: str, index: int, ref: PlanRef) -> PlanRef | None:
    key = ref.key.strip() if ref.key else ""
    if not key:
        check.fail(f"{site}.plans[{index}].plan", "is required")
        return None
    if len(key) > 200:
        check.fail(f"{site}.plans[{index}].plan", "is longer than 200 characters")
        return None
    if has_control_characters(key):
        key = without_layout(key)
        if has_control_characters(key):
            check.fail(f"{site}.plans[{index}].plan", "must not contain control characters")
            return None
    tier = ref.network_tier.strip() if ref.network_tier else None
    if tier and has_control_characters(tier):
        tier = without_layout(tier)
        if has_control_characters(tier):
            check.fail(f"{site}.plans[{index}].network_tier", "must not contain control characters")
            return None
    if tier and len(tier) > 60:
        check.fail(f"{site}.plans[{index}].network_tier", "is longer than 60 characters")
        return None
    start, end = ref.effective_from, ref.effective_to
    if start is not None and end is not None and end < start:
        check.fail(f"{site}.plans[{index}].effective_to", "is before effective_from")
        return None
    key, tier = _plan_key(key), tier or None
    if key == ref.key and tier == ref.network_tier:
        return ref  # as nearly every file writes them: nothing to normalise
    return PlanRef(key, tier, start, end, ref.verified_at, ref.path, ref.line)


@lru_cache(maxsize=4096)  # a roster names the same few plans on every record
def _plan_key(key: str) -> str:
    """A HIOS plan id in capitals, as plans store it; any other key as written."""
    upper = key.upper()
    return upper if is_hios_shaped(upper) else key


_SITE_FIELD = re.compile(r"sites\[(\d+)\]\.(?:plans\[(\d+)\](?:\.(\w+))?|(\w+))$")


def _name_as_the_file(problems: list[Problem], record: ProviderRecord, names: FieldNames) -> None:
    """Renames the fields of problems found here ("sites[0].zip") as the format names them."""
    for problem in problems:
        match = _SITE_FIELD.match(problem.field)
        if match is None:
            problem.field = names.of_record(problem.field, record.path)
            continue
        index = int(match[1])
        site = record.sites[index]
        prefix = names.site_prefix(index, site)
        line = site.line
        if match[2] is not None:
            ref = site.plans[int(match[2])]
            problem.field = names.of_plan(prefix, int(match[2]), match[3] or "plan", ref)
            line = ref.line or line
        else:
            problem.field = names.of_site(prefix, match[4])
            line = site.lines.get(match[4], line) if site.lines else line
        if line is not None:
            problem.message = f"line {line}: {problem.message}"


def _merge_site(kept: Site, duplicate: Site) -> None:
    """Two entries for one address (e.g. "Suite 200" and "Ste 200") become one site."""
    seen = {ref.key for ref in kept.plans}
    kept.plans.extend(ref for ref in duplicate.plans if ref.key not in seen)
    for name in ("name", "phone", "fax", "facility_type", "accepting_new_patients", "telehealth"):
        if getattr(kept, name) is None:
            setattr(kept, name, getattr(duplicate, name))
