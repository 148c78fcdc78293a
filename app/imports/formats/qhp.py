"""CMS QHP machine-readable directories: `providers.json` and `plans.json`.

Both are one top-level JSON array, up to several GB, read element by element
(json_stream.array_items) so memory does not grow with the file.
"""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, BinaryIO

from app.imports.formats.json_stream import (
    array_items,
    describe_json_start,
    json_kind,
    read_json_start,
)
from app.imports.languages import language_codes
from app.imports.records import (
    FieldNames,
    ImportFileError,
    PlanRecord,
    PlanRef,
    Problem,
    ProviderRecord,
    Record,
    SiteRecord,
    Skipped,
    variant_read_as,
)
from app.imports.specialties import nucc_code_for
from app.networks.schemas import standard_component

PROVIDERS_EXPECTED = "a JSON array of provider objects (CMS QHP providers.json)"
PLANS_EXPECTED = "a JSON array of plan objects (CMS QHP plans.json)"

# The schema names HIOS-PLAN-ID as the (preferred and only defined) id type; a
# file that uses another cannot be matched to the payer's plans.
_PLAN_ID_TYPES = frozenset({"HIOS-PLAN-ID"})
_ACCEPTING: dict[str, bool | None] = {
    "accepting": True,
    "not accepting": False,
    # Says only that it differs by site; a site's own `accepting` may tell.
    "accepting in some locations": None,
}
_WORD_SEPARATORS = re.compile(r"[\s_-]+")
_GENDERS = {"male": "male", "female": "female", "other": "other", "m": "male", "f": "female"}


# validate.py's field names as providers.json spells them.
FIELD_NAMES = FieldNames(
    record={
        "first_name": "name.first",
        "middle_name": "name.middle",
        "last_name": "name.last",
        "name_suffix": "name.suffix",
        "specialties": "specialty",
        "sites": "addresses",
    },
    site={"address_line1": "address", "address_line2": "address_2"},
    plan={"plan": "plan_id", "effective_from": "years", "effective_to": "years"},
    sites="addresses",
    unindexed=frozenset({"specialties", "languages"}),
    # Plans declared in plans.json (or by their HIOS id alone).
    declared={"key": "plan_id", "name": "marketing_name"},
)


def parse_providers(stream: BinaryIO) -> Iterator[Record]:
    """One record per element of a providers.json array: individuals, facilities skipped."""
    for index, (line, item) in _array_items(stream, PROVIDERS_EXPECTED):
        if index == 0 and _looks_like_plan(item):
            raise ImportFileError(
                f"expected {PROVIDERS_EXPECTED}, found plan objects (this looks like plans.json)"
            )
        yield _provider(index, line, item)


def parse_plans(stream: BinaryIO) -> Iterator[PlanRecord]:
    """One PlanRecord per element of a plans.json array."""
    for index, (line, item) in _array_items(stream, PLANS_EXPECTED):
        if index == 0 and _looks_like_provider(item):
            found = "found provider objects (this looks like providers.json)"
            raise ImportFileError(f"expected {PLANS_EXPECTED}, {found}")
        yield _plan(index, line, item)


def _array_items(stream: BinaryIO, expected: str) -> Iterator[tuple[int, tuple[int, Any]]]:
    first, head = read_json_start(stream)
    if first != b"[":
        raise ImportFileError(f"expected {expected}, found {describe_json_start(first, head)}")
    return enumerate(array_items(stream))


def _looks_like_plan(item: Any) -> bool:
    return isinstance(item, dict) and "plan_id" in item and not {"npi", "type"} & item.keys()


def _looks_like_provider(item: Any) -> bool:
    return isinstance(item, dict) and "plan_id" not in item and bool({"npi", "type"} & item.keys())


def _provider(index: int, line: int, item: Any) -> Record:
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not isinstance(item, dict):
        problems.append(Problem("", f"expected a provider object, found {json_kind(item)}"))
        return ProviderRecord(
            index=index, line=line, npi=None, first_name=None, last_name=None, problems=problems
        )
    kind = _text(item, "type", "", problems)
    if kind is None or kind.upper() != "INDIVIDUAL":
        return Skipped(index=index, line=line, reason=_not_individual(kind))
    specialties, unmapped = _specialties(item, problems)
    if not specialties and not problems:
        listed = ", ".join(text for _, text in unmapped) or "none listed"
        return Skipped(index=index, line=line, reason=f"no physical-therapy specialty ({listed})")
    warnings.extend(
        Problem(path, f"specialty {text!r} is not a physical-therapy specialty; kept out")
        for path, text in unmapped
    )
    name = _object(item, "name", problems)
    plans = _plan_refs(item, problems, warnings)
    return ProviderRecord(
        index=index,
        line=line,
        npi=_text(item, "npi", "", problems),
        first_name=_text(name, "first", "name.", problems),
        middle_name=_text(name, "middle", "name.", problems),
        last_name=_text(name, "last", "name.", problems),
        name_suffix=_text(name, "suffix", "name.", problems),
        gender=_gender(item, problems, warnings),
        specialties=specialties,
        languages=_languages(item, problems, warnings),
        sites=_sites(item, plans, problems),
        problems=problems,
        warnings=warnings,
    )


def _not_individual(kind: str | None) -> str:
    if kind is None:
        return "no provider type (INDIVIDUAL expected)"
    if kind.upper() == "FACILITY":
        return "a facility, not an individual provider"
    return f"provider type {kind!r} is not INDIVIDUAL"


def _specialties(
    item: dict[str, Any], problems: list[Problem]
) -> tuple[list[str], list[tuple[str, str]]]:
    """(NUCC codes, primary first; (path, text) of the specialties that map to none)."""
    codes: list[str] = []
    unmapped: list[tuple[str, str]] = []
    for position, value in enumerate(_list(item, "specialty", problems)):
        if not isinstance(value, str):
            if value is not None:
                message = f"expected text, found {json_kind(value)}"
                problems.append(Problem(f"specialty[{position}]", message))
            continue
        text = value.strip()
        if not text:
            continue
        code = nucc_code_for(text)
        if code is None:
            unmapped.append((f"specialty[{position}]", text))
        elif code not in codes:
            codes.append(code)
    return codes, unmapped


def _gender(item: dict[str, Any], problems: list[Problem], warnings: list[Problem]) -> str | None:
    text = _text(item, "gender", "", problems)
    if text is None:
        return None
    gender = _GENDERS.get(text.lower())
    if gender is None:
        warnings.append(Problem("gender", f"{text!r} is not Male, Female or Other; left out"))
    return gender


def _languages(item: dict[str, Any], problems: list[Problem], warnings: list[Problem]) -> list[str]:
    codes: list[str] = []
    for position, value in enumerate(_list(item, "languages", problems)):
        if not isinstance(value, str):
            message = f"expected a language name, found {json_kind(value)}"
            problems.append(Problem(f"languages[{position}]", message))
            continue
        if not value.strip():
            continue
        found = language_codes(value)
        if not found:
            message = f"language {value.strip()!r} is not recognised; left out"
            warnings.append(Problem(f"languages[{position}]", message))
        codes.extend(code for code in found if code not in codes)
    return codes


def _sites(item: dict[str, Any], plans: list[PlanRef], problems: list[Problem]) -> list[SiteRecord]:
    accepting = _accepting(item.get("accepting"), "accepting", problems)
    addresses = item.get("addresses")
    # Files written to the first version of the schema have one `address`
    # object and the phone beside it.
    if addresses is None and isinstance(item.get("address"), dict):
        addresses = [item["address"]]
    phone = _text(item, "phone", "", problems)
    if addresses is None:
        return []
    if not isinstance(addresses, list):
        message = f"expected a list of address objects, found {json_kind(addresses)}"
        problems.append(Problem("addresses", message))
        return []
    sites: list[SiteRecord] = []
    for position, address in enumerate(addresses):
        if not isinstance(address, dict):
            message = f"expected an address object, found {json_kind(address)}"
            problems.append(Problem(f"addresses[{position}]", message))
            continue
        prefix = _element_prefix("addresses", position)
        site_accepting = accepting
        if address.get("accepting") is not None:
            site_accepting = _accepting(address["accepting"], f"{prefix}accepting", problems)
        sites.append(
            SiteRecord(
                address_line1=_text(address, "address", prefix, problems),
                address_line2=_text(address, "address_2", prefix, problems),
                city=_text(address, "city", prefix, problems),
                state=_text(address, "state", prefix, problems),
                zip=_text(address, "zip", prefix, problems),
                phone=_text(address, "phone", prefix, problems) or phone,
                accepting_new_patients=site_accepting,
                path=_element_path("addresses", position),  # whatever came before it
                # Each site its own PlanRefs, so that changing one site's leaves
                # the others alone; the first site can take the originals.
                plans=[plan.copy() for plan in plans] if sites else plans,
            )
        )
    return sites


@lru_cache(maxsize=1024)
def _element_prefix(name: str, position: int) -> str:
    """How problems name the fields of a list's element: "plans[0]." and so on."""
    return f"{_element_path(name, position)}."


@lru_cache(maxsize=1024)
def _element_path(name: str, position: int) -> str:
    """A list's element: "plans[0]", "addresses[1]"."""
    return f"{name}[{position}]"


def _accepting(value: Any, path: str, problems: list[Problem]) -> bool | None:
    if value is None or isinstance(value, bool):  # the first schema version used booleans
        return value
    if isinstance(value, str):
        if value in _ACCEPTING:  # as the schema spells it: nothing to normalise
            return _ACCEPTING[value]
        words = " ".join(_WORD_SEPARATORS.split(value.strip().lower()))
        if words in _ACCEPTING:
            return _ACCEPTING[words]
    known = ", ".join(repr(text) for text in _ACCEPTING)
    problems.append(Problem(path, f"{value!r} is not one of {known}"))
    return None


def _plan_refs(
    item: dict[str, Any], problems: list[Problem], warnings: list[Problem]
) -> list[PlanRef]:
    verified_at = _verified_at(item, problems)
    refs: dict[str, PlanRef] = {}
    for position, plan in enumerate(_list(item, "plans", problems)):
        if not isinstance(plan, dict):
            message = f"expected a plan object, found {json_kind(plan)}"
            problems.append(Problem(f"plans[{position}]", message))
            continue
        prefix = _element_prefix("plans", position)
        key = _plan_id(plan, prefix, problems)
        if key is None:
            continue
        if len(key) != _HIOS_LENGTH:
            key = _standard_component(key, prefix, warnings)
        tier = _text(plan, "network_tier", prefix, problems)
        first, last = _years(plan, prefix, problems)
        known = refs.get(key)
        if known is None:
            refs[key] = PlanRef(
                key, tier, first, last, verified_at, path=_element_path("plans", position)
            )
            continue
        # One site has one tier in a plan's network; the sample lists a plan once
        # per tier, so the first listed stands and the others are reported.
        if tier != known.network_tier:
            warnings.append(
                Problem(
                    f"{prefix}network_tier",
                    f"plan {key} is listed again with tier {tier}; "
                    f"kept the first tier listed, {known.network_tier}",
                )
            )
        known.effective_from = _earliest(known.effective_from, first)
        known.effective_to = _latest(known.effective_to, last)
    return list(refs.values())


def _plan_id(plan: dict[str, Any], prefix: str, problems: list[Problem]) -> str | None:
    """The plan's id, upper-cased as HIOS writes it; None (and a problem) when unusable."""
    plan_id = plan.get("plan_id")
    if plan.get("plan_id_type") == "HIOS-PLAN-ID" and type(plan_id) is str:
        plan_id = plan_id.strip()  # nearly always: the schema's own spelling
        if plan_id:
            return plan_id.upper()
    id_type = _text(plan, "plan_id_type", prefix, problems)
    if id_type is not None and id_type.upper() not in _PLAN_ID_TYPES:
        known = ", ".join(sorted(_PLAN_ID_TYPES))
        message = f"plan id type {id_type!r} is not one this import reads ({known})"
        problems.append(Problem(f"{prefix}plan_id_type", message))
        return None
    plan_id = _text(plan, "plan_id", prefix, problems)
    if plan_id is None:
        problems.append(Problem(f"{prefix}plan_id", "the plan has no plan_id"))
        return None
    return plan_id.upper()


_HIOS_LENGTH = 14


def _standard_component(key: str, prefix: str, warnings: list[Problem]) -> str:
    """The plan of a cost-sharing variant id (the CMS schema asks for the plan's own)."""
    plan = standard_component(key)
    if plan is None:
        return key
    warnings.append(Problem(f"{prefix}plan_id", variant_read_as(key, plan)))
    return plan


def _years(
    plan: dict[str, Any], prefix: str, problems: list[Problem]
) -> tuple[date | None, date | None]:
    """The network's span: 1 January of the first year listed to 31 December of the last."""
    years = plan.get("years")
    if type(years) is list:
        if not years:
            return None, None
        for year in years:
            if type(year) is not int or not 1900 <= year <= 9999:
                break
        else:  # nearly always: years written as numbers
            return _span(min(years), max(years))
    elif years is None:
        return None, None
    if not isinstance(years, list) or not all(_is_year(year) for year in years):
        problems.append(
            Problem(
                f"{prefix}years", f"expected a list of years such as [2025, 2026], found {years!r}"
            )
        )
        return None, None
    numbers = [int(year) for year in years]
    return _span(min(numbers), max(numbers))


@lru_cache(maxsize=256)  # dates are immutable, so records may share them
def _span(first: int, last: int) -> tuple[date, date]:
    return date(first, 1, 1), date(last, 12, 31)


def _is_year(value: Any) -> bool:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 9999


def _earliest(first: date | None, second: date | None) -> date | None:
    return min(first, second) if first and second else first or second


def _latest(first: date | None, second: date | None) -> date | None:
    return max(first, second) if first and second else first or second


def _verified_at(item: dict[str, Any], problems: list[Problem]) -> datetime | None:
    text = _text(item, "last_updated_on", "", problems)
    if text is None:
        return None
    moment = _moment(text)
    if moment is None:
        problems.append(
            Problem("last_updated_on", f"{text!r} is not a date (YYYY-MM-DD) or a date and time")
        )
    return moment


@lru_cache(maxsize=256)  # a file has few update dates; datetimes are immutable
def _moment(text: str) -> datetime | None:
    """A date, as the start of its day in UTC, or a date and time ("2025-03-01T10:00:00Z"):
    the schema asks for "ISO 8601 format (e.g. YYYY-MM-DD)", and both are."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _plan(index: int, line: int, item: Any) -> PlanRecord:
    problems: list[Problem] = []
    if not isinstance(item, dict):
        problems.append(Problem("", f"expected a plan object, found {json_kind(item)}"))
        return PlanRecord(
            index=index,
            line=line,
            key="",
            name=None,
            plan_type=None,
            hios_plan_id=None,
            problems=problems,
        )
    key = _plan_id(item, "", problems) or ""
    return PlanRecord(
        index=index,
        line=line,
        key=key,
        name=_text(item, "marketing_name", "", problems),
        plan_type="marketplace",  # QHPs are, by definition, sold on the Marketplace
        hios_plan_id=key or None,
        problems=problems,
    )


def _object(item: dict[str, Any], key: str, problems: list[Problem]) -> dict[str, Any]:
    value = item.get(key)
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(key, f"expected an object, found {json_kind(value)}"))
        return {}
    return value


def _list(item: dict[str, Any], key: str, problems: list[Problem]) -> list[Any]:
    """The list under `key`; a lone string counts as a list of one, as early files wrote it."""
    value = item.get(key)
    if type(value) is list:
        return value
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        problems.append(Problem(key, f"expected a list, found {json_kind(value)}"))
        return []
    return value


def _text(item: dict[str, Any], key: str, prefix: str, problems: list[Problem]) -> str | None:
    """The value under `key` as stripped text; numbers become their digits (NPIs, ZIPs).

    A problem names the field `prefix` + `key` ("addresses[0]." + "zip").
    """
    value = item.get(key)
    if type(value) is str:  # nearly always: spare the checks below
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(Problem(f"{prefix}{key}", f"expected text, found {json_kind(value)}"))
        return None
    text = str(value).strip()
    return text or None
