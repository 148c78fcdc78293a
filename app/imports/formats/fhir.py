"""HL7 Da Vinci PDex Plan-Net R4 directories, as NDJSON or as a Bundle.

Resources refer to each other in any order (a PractitionerRole may come before
the Location it names), so a first pass stores the resources the directory
uses in a temporary SQLite database on disk and a second pass joins them:
memory holds one practitioner's resources at a time, whatever the file's size.
"""

import calendar
import csv
import json
import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import ijson  # type: ignore[import-untyped]

from app.db import utcnow
from app.imports.encoding import decode_error, skip_utf8_bom
from app.imports.formats.json_stream import (
    describe_json_start,
    json_file_error,
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
)
from app.imports.specialties import nucc_code_for
from app.networks.schemas import is_hios_shaped
from app.paths import DATA_DIR

_PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/"
NETWORK_REFERENCE = f"{_PLAN_NET}StructureDefinition/network-reference"
NEW_PATIENTS = f"{_PLAN_NET}StructureDefinition/newpatients"
PRODUCT_TYPE_SYSTEM = f"{_PLAN_NET}CodeSystem/InsuranceProductTypeCS"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
# How files also write those two systems: with https or a trailing slash, or as
# the code systems' OIDs (HL7's registry names both).
_NPI_SYSTEMS = frozenset({NPI_SYSTEM, "urn:oid:2.16.840.1.113883.4.6"})
_NUCC_SYSTEMS = frozenset({NUCC_SYSTEM, "urn:oid:2.16.840.1.113883.6.101"})
DEGREE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0360"  # MD, DPT, PT…
# Identifier.type's code system (v2 table 0203), as R4 and as STU3 named it: a file
# may write the NPI under a system of its own, typed `NPI` in it.
_IDENTIFIER_TYPE_SYSTEMS = frozenset(
    {"http://terminology.hl7.org/CodeSystem/v2-0203", "http://hl7.org/fhir/v2/0203"}
)
BUNDLE_EXPECTED = 'a FHIR Bundle (a JSON object with "resourceType": "Bundle")'

_STORED = frozenset(
    {"Practitioner", "PractitionerRole", "Location", "Organization", "InsurancePlan"}
)
# What a logical reference (`{"identifier": …}` without `reference`) may name: a
# role's practitioner (by NPI, most often) and locations, and the networks of
# roles and plans.
_NAMED_BY_IDENTIFIER = frozenset({"Practitioner", "Location", "Organization"})
_BY_IDENTIFIER = "?identifier="  # "Practitioner?identifier=<system>|<value>", as FHIR searches
_ORGANIZATION = ("Organization/", f"Organization{_BY_IDENTIFIER}")
# The directory's flag means "a new patient can book here": only `newpt` says so.
# `existptonly` and `existptfam` (existing patients and their families) turn the
# public away, so they count as not accepting.
_ACCEPTING_CODES = {"newpt": True, "nopt": False, "existptonly": False, "existptfam": False}
# What files write in acceptingPatients.text alone, lowercased: plain phrasings,
# and the code system's own displays and definitions.
_ACCEPTING_TEXTS = {
    "accepting": True,
    "accepting new patients": True,
    "accepting patients": True,
    "not accepting": False,
    "not accepting new patients": False,
    "not accepting patients": False,
    "existing patients only": False,
    "accepting existing patients": False,
    "accepting existing patients and their families": False,
    "accepting existing patients and members of their families": False,
}
# InsuranceProductTypeCS → PlanType. Medicare Part A and Part D plans, dental,
# vision, TRICARE, VA and IHS have no PlanType of their own: left unknown.
_PLAN_TYPES = {
    "qhp": "marketplace",
    "medi": "medicaid",
    "medihmo": "medicaid",
    "mediadv": "medicare_advantage",
    "mediadvhmo": "medicare_advantage",
    "medib": "medicare_part_b",  # outpatient physical therapy is a Part B benefit
    "mediab": "medicare_part_b",
    "commppo": "commercial",
    "commhdhp": "commercial",
    "commpos": "commercial",
    "commhmo": "commercial",
    "commepo": "commercial",
    "fep": "commercial",  # FEHB plans are sold by commercial carriers
}
# The same, as files write it in words instead of the code system's codes.
_PLAN_TYPE_WORDS = {
    "medicaid": "medicaid",
    "medicaid hmo": "medicaid",
    "medicare advantage": "medicare_advantage",
    "medicare part b": "medicare_part_b",
    "medicare": "medicare_part_b",  # original Medicare: outpatient PT is Part B
    "commercial": "commercial",
    "qualified health plan": "marketplace",
    "marketplace": "marketplace",
    "exchange": "marketplace",
}
# InsurancePlanTypeCS → how a plan's name ends when its type has no text or
# display: the code system's displays, without the "-QHP" the product type says.
_PLAN_LEVELS = {
    "platinum": "Platinum",
    "gold": "Gold",
    "silver": "Silver",
    "bronze": "Bronze",
    "catastrophic": "Catastrophic",
    "lowdeductible": "Low Deductible",
    "highdeductible": "High Deductible",
    "catastrophicplan": "Catastrophic Plan",
}
_PLAN_NAME_LIMIT = 200  # Plan.name's length, which PlanCatalogue.declare enforces
_FHIR_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T.+)?$")
# HumanName.use, best first; any other use (temp, nickname, anonymous) ranks
# between a name without one and the names no longer in use.
_NAME_USES = {"official": 0, "usual": 1, "": 2, "old": 4, "maiden": 4}
_OTHER_NAME_USE = 3
_GENDERS = frozenset({"male", "female", "other"})
# How files write the US in address.country (ISO 3166 codes, names), casefolded,
# dots dropped. The territories have ISO codes of their own, but the directory
# lists them as US states (data/us_states.csv), as NPPES does: they are US here.
_US_COUNTRIES = frozenset(
    {
        *("us", "usa", "united states", "united states of america"),
        *("pr", "pri", "puerto rico"),
        *("gu", "gum", "guam"),
        *("vi", "vir", "us virgin islands", "virgin islands", "virgin islands, us"),
        *("virgin islands of the united states", "united states virgin islands"),
        *("as", "asm", "american samoa"),
        *("mp", "mnp", "northern mariana islands"),
    }
)

_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE resource (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    line INTEGER,
    practitioner TEXT,  -- a PractitionerRole's "Practitioner/<id>"
    body TEXT NOT NULL,
    PRIMARY KEY (type, id)
);
-- `position` is that of the InsurancePlan or PractitionerRole naming the network;
-- `plan` the InsurancePlan's id, `key` that of the plan (the product, or one of its plan[]).
CREATE TABLE plan_network (
    network TEXT NOT NULL, plan TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE role_network (network TEXT NOT NULL, role TEXT NOT NULL, position INTEGER NOT NULL);
-- Other names of "Type/id": a Bundle entry's urn:uuid fullUrl, and the logical
-- references its identifiers answer ("Practitioner?identifier=<system>|<value>").
CREATE TABLE alias (name TEXT PRIMARY KEY, reference TEXT NOT NULL);
"""
# Run once the whole file is stored: a Bundle's urn:uuid references, and logical
# references by identifier, resolve only when every resource is known, and
# indexes built at the end cost less than indexes kept up to date row by row.
# Rows are stored in batches, so the networks of a resource's later copies (the
# first copy stands) go only now.
_AFTER_LOADING = """
DELETE FROM plan_network WHERE position <> (
    SELECT position FROM resource WHERE type = 'InsurancePlan' AND id = plan_network.plan
);
DELETE FROM role_network WHERE position <> (
    SELECT position FROM resource WHERE type = 'PractitionerRole' AND id = role_network.role
);
UPDATE resource SET practitioner = (SELECT reference FROM alias WHERE name = practitioner)
    WHERE practitioner IN (SELECT name FROM alias);
UPDATE plan_network SET network = (SELECT reference FROM alias WHERE name = network)
    WHERE network IN (SELECT name FROM alias);
UPDATE role_network SET network = (SELECT reference FROM alias WHERE name = network)
    WHERE network IN (SELECT name FROM alias);
CREATE INDEX resource_order ON resource (type, position);
CREATE INDEX resource_practitioner ON resource (practitioner, position);
CREATE INDEX plan_network_network ON plan_network (network, position);
"""
_BATCH = 1000  # rows stored at a time: few calls into SQLite, little memory
_CACHED = 4096  # answers kept per kind of question the second pass asks
_UNLISTED_NETWORKS = """
SELECT position, line, id, body FROM resource
WHERE type = 'Organization'
    AND 'Organization/' || id IN (SELECT network FROM role_network)
    AND 'Organization/' || id NOT IN (SELECT network FROM plan_network)
ORDER BY position
"""
# Roles that name a Practitioner the file does not have (a bulk export's
# PractitionerRole.ndjson uploaded alone): the join by Practitioner finds none.
_ROLES_WITHOUT_PRACTITIONER = """
SELECT position, line, id, practitioner FROM resource AS role
WHERE type = 'PractitionerRole' AND practitioner IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM resource
    WHERE type = 'Practitioner'
        AND substr(role.practitioner, 1, 13) = 'Practitioner/'
        AND id = substr(role.practitioner, 14)
)
ORDER BY position
"""
# What such a role is skipped and counted as; which role and reference follow in brackets.
ROLE_WITHOUT_PRACTITIONER = (
    "a PractitionerRole names a Practitioner that is not in the file; a bulk export's "
    "files, one per resource type, must be concatenated into one upload"
)


# validate.py's field names in Plan-Net resources. A name that starts with a
# resource type stands alone; the others are under "Practitioner/<id>." or, for a
# site, "Location/<id>.".
FIELD_NAMES = FieldNames(
    record={
        "npi": "identifier",
        "first_name": "name.given",
        "middle_name": "name.given",
        "last_name": "name.family",
        "name_suffix": "name.suffix",
        "credentials": "qualification",
        "languages": "communication",
        "specialties": "PractitionerRole.specialty",
        "sites": "PractitionerRole.location",
    },
    site={
        "address_line1": "address.line",
        "address_line2": "address.line",
        "city": "address.city",
        "state": "address.state",
        "zip": "address.postalCode",
        "latitude": "position.latitude",
        "longitude": "position.longitude",
        "phone": "telecom",
        "fax": "telecom",
    },
    plan={
        "plan": "PractitionerRole.extension:network-reference",
        "effective_from": "PractitionerRole.period.start",
        "effective_to": "PractitionerRole.period.end",
    },
    plans=None,
    unindexed=frozenset({"credentials", "specialties", "languages"}),
    declared={
        "key": "InsurancePlan.id",
        "name": "InsurancePlan.name",
        "plan_id": "InsurancePlan.identifier",
        "plan_type": "InsurancePlan.type",
    },
)


def parse_ndjson(stream: BinaryIO, *, today: date | None = None) -> Iterator[Record]:
    """Plan records, then one record per Practitioner, from one resource per line.

    `today` (by default the UTC date, as the roster import takes it) tells which
    roles, contact points and qualifications the file says have ended.
    """
    with _ResourceStore(today or utcnow().date()) as store:
        for entry in _ndjson_entries(stream):
            store.add(entry)
        yield from store.records()


def parse_bundle(stream: BinaryIO, *, today: date | None = None) -> Iterator[Record]:
    """Plan records, then one record per Practitioner, from the entries of a Bundle
    (`today` as for parse_ndjson)."""
    with _ResourceStore(today or utcnow().date()) as store:
        for entry in _bundle_entries(stream):
            store.add(entry)
        yield from store.records()


@dataclass(slots=True)
class _Entry:
    position: int  # 0-based, among the file's resources (NDJSON) or entries (Bundle)
    line: int | None
    resource: dict[str, Any]
    full_url: str | None = None
    text: str | None = None  # the resource as the file writes it, where it has one line


def _ndjson_entries(stream: BinaryIO) -> Iterator[_Entry]:
    skip_utf8_bom(stream)
    position = 0
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise decode_error(error, line=number) from error
        try:
            resource = json.loads(text)
        except json.JSONDecodeError as error:
            raise _bad_line(stream, number, error, first=position == 0) from error
        except ValueError as error:  # an integer longer than Python converts (4300 digits)
            raise ImportFileError(
                f"line {number} has a number too long to read", line=number
            ) from error
        # Such a line belongs to no record, and skipping it could drop a
        # practitioner unnoticed: the file is not Plan-Net NDJSON, so it is refused.
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            found = "an object without a resourceType" if isinstance(resource, dict) else None
            raise ImportFileError(
                f"line {number} is not a FHIR resource (a JSON object with a resourceType); "
                f"found {found or json_kind(resource)}",
                line=number,
            )
        if resource["resourceType"] == "Bundle":
            raise ImportFileError(
                f"line {number} is a whole Bundle; NDJSON has one resource per line", line=number
            )
        yield _Entry(position, number, resource, text=text)
        position += 1
    if position == 0:
        raise ImportFileError("the file is empty")


def _bad_line(
    stream: BinaryIO, number: int, error: json.JSONDecodeError, *, first: bool
) -> ImportFileError:
    if all(not raw.strip() for raw in stream):
        return ImportFileError(
            f"line {number}, the last line, is not valid JSON: "
            "the file looks truncated (upload cut short?)",
            line=number,
        )
    hint = " (NDJSON has one whole resource per line: is this a Bundle?)" if first else ""
    return ImportFileError(
        f"line {number} is not valid JSON: {error.msg} at column {error.colno}{hint}", line=number
    )


def _bundle_entries(stream: BinaryIO) -> Iterator[_Entry]:
    first, head = read_json_start(stream)
    if first != b"{":
        raise ImportFileError(
            f"expected {BUNDLE_EXPECTED}, found {describe_json_start(first, head)}"
        )
    start = stream.tell()
    resource_type = _top_level_resource_type(stream)
    if resource_type != "Bundle":
        raise ImportFileError(
            f"expected a Bundle, found {resource_type or 'a JSON object without a resourceType'}"
        )
    stream.seek(start)
    position = 0
    try:
        for entry in ijson.items(stream, "entry.item", use_float=True):
            if not isinstance(entry, dict):
                raise ImportFileError(f"entry {position} of the Bundle is not an object")
            resource = entry.get("resource")
            if resource is not None:  # an entry without one (a delete) names no resource
                if not isinstance(resource, dict) or not isinstance(
                    resource.get("resourceType"), str
                ):
                    raise ImportFileError(
                        f"entry {position} of the Bundle holds no FHIR resource "
                        "(a JSON object with a resourceType)"
                    )
                yield _Entry(position, None, resource, _string(entry.get("fullUrl")))
            position += 1
    except ijson.JSONError as error:
        raise json_file_error(error, stream, where=f"at entry {position}") from error
    except UnicodeDecodeError as error:  # ijson decoding a lone surrogate escape
        raise _not_unicode() from error


def _top_level_resource_type(stream: BinaryIO) -> str | None:
    """The Bundle's own resourceType, wherever it stands among its keys."""
    # ijson filters by prefix in C: when the key comes after `entry`, the whole
    # file is scanned once more without building anything.
    try:
        # use_float: yajl's C backend crashes the process on an integer of more
        # than 4300 digits when it builds Python ints (ijson 3.x).
        found = next(iter(ijson.items(stream, "resourceType", use_float=True)), None)
    except ijson.JSONError as error:
        raise json_file_error(error, stream, where="before the Bundle's resourceType") from error
    except UnicodeDecodeError as error:
        raise _not_unicode() from error
    return found if isinstance(found, str) else None


def _not_unicode() -> ImportFileError:
    # A JSON escape of half a surrogate pair (\ud800) decodes to a string that no
    # UTF-8 text can hold: the resource store and ijson both refuse it.
    return ImportFileError(
        "the file escapes half a surrogate pair (such as \\ud800 alone), which is not Unicode text"
    )


class _ResourceStore:
    """The resources of one file, on disk, so references resolve in any order."""

    def __init__(self, today: date) -> None:
        self.today = today  # the import's date: what ended before it is out of use

    def __enter__(self) -> Self:
        self._directory = tempfile.TemporaryDirectory(prefix="plannet-")
        try:
            self._db = sqlite3.connect(Path(self._directory.name) / "resources.sqlite")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._directory.cleanup()
            raise
        # Rows waiting to be stored, and what the second pass asks again and again.
        self._aliases: list[tuple[str, str]] = []
        self._resources: list[tuple[str, str, int, int | None, str | None, str]] = []
        self._plan_networks: list[tuple[str, str, str, int]] = []
        self._role_networks: list[tuple[str, str, int]] = []
        self._plans_listing: dict[str, list[str]] = {}
        self._in_file: dict[str, bool] = {}
        self._duplicates: list[tuple[int, int | None, str]] = []  # position, line, type
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._db.close()
        finally:
            self._directory.cleanup()

    def add(self, entry: _Entry) -> None:
        resource = entry.resource
        kind = resource["resourceType"]
        if kind not in _STORED:
            return
        # A transaction Bundle may give a resource only its urn:uuid fullUrl, which
        # then is its identity. FHIR ids never hold "#" or ":", so neither stand-in
        # collides with one; a resource with neither is "#<position>".
        urn = entry.full_url if entry.full_url and entry.full_url.startswith("urn:") else None
        resource_id = _string(resource.get("id")) or urn or f"#{entry.position}"
        if urn:
            self._aliases.append((urn, f"{kind}/{resource_id}"))
        if kind in _NAMED_BY_IDENTIFIER:
            reference = f"{kind}/{resource_id}"
            self._aliases.extend((name, reference) for name in _logical_names(kind, resource))
        practitioner = None
        if kind == "InsurancePlan":
            self._plan_networks.extend(
                (network, resource_id, plan.key, entry.position)
                for plan in _plans_of(resource_id, resource)
                for network in plan.networks
            )
        elif kind == "PractitionerRole":
            practitioner = _reference(resource.get("practitioner"), "Practitioner")
            self._role_networks.extend(
                (network, resource_id, entry.position)
                for _, network in _network_references(resource)
                if network
            )
        if entry.text is not None and "text" not in resource:
            body = entry.text  # spares encoding it again
        else:
            resource.pop("text", None)  # the narrative: often the bulk of a resource, never read
            body = json.dumps(resource)
        self._resources.append((kind, resource_id, entry.position, entry.line, practitioner, body))
        if len(self._resources) >= _BATCH:
            self._store_batch()

    def _store_batch(self) -> None:
        # In file order, so that of two copies of a resource the first stands.
        try:
            self._db.executemany("INSERT OR IGNORE INTO alias VALUES (?, ?)", self._aliases)
            stored = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO resource VALUES (?, ?, ?, ?, ?, ?)", self._resources
            )
            if self._db.total_changes - stored < len(self._resources):
                self._note_duplicates()
            self._db.executemany(
                "INSERT INTO plan_network VALUES (?, ?, ?, ?)", self._plan_networks
            )
            self._db.executemany("INSERT INTO role_network VALUES (?, ?, ?)", self._role_networks)
        except UnicodeEncodeError as error:
            raise _not_unicode() from error
        for rows in (self._aliases, self._resources, self._plan_networks, self._role_networks):
            rows.clear()

    def _note_duplicates(self) -> None:
        """The resources of the batch that another of the same type and id came before."""
        for kind, resource_id, position, line, _, _ in self._resources:
            (first,) = self._db.execute(
                "SELECT position FROM resource WHERE type = ? AND id = ?", (kind, resource_id)
            ).fetchone()
            if first != position:
                self._duplicates.append((position, line, kind))

    def records(self) -> Iterator[Record]:
        self._store_batch()
        for position, line, kind in self._duplicates:
            # Counted and reported, not silently dropped: the file may hold two
            # versions of a resource, and the one kept may be the older.
            reason = f"a second {kind} with the same id (the first in the file is kept)"
            yield Skipped(index=position, line=line, reason=reason)
        self._db.executescript(_AFTER_LOADING)
        for position, line, plan_id, body in self._db.execute(
            "SELECT position, line, id, body FROM resource"
            " WHERE type = 'InsurancePlan' ORDER BY position"
        ):
            yield from _insurance_plans(position, line, plan_id, json.loads(body))
        for position, line, network_id, body in self._db.execute(_UNLISTED_NETWORKS):
            yield PlanRecord(
                index=position,
                line=line,
                key=f"Organization/{network_id}",
                name=_string(json.loads(body).get("name")),
                plan_type=None,
                hios_plan_id=None,
            )
        for position, line, practitioner_id, body in self._db.execute(
            "SELECT position, line, id, body FROM resource"
            " WHERE type = 'Practitioner' ORDER BY position"
        ):
            yield _practitioner(self, position, line, practitioner_id, json.loads(body))
        for position, line, role_id, practitioner in self._db.execute(_ROLES_WITHOUT_PRACTITIONER):
            # Counted, not dropped unseen: each is a practice the payer's file lists
            # and the directory would not.
            detail = f"PractitionerRole/{role_id}.practitioner: {_not_in_file(practitioner)}"
            reason = f"{ROLE_WITHOUT_PRACTITIONER} ({detail})"
            yield Skipped(index=position, line=line, reason=reason)

    def resolve(self, reference: str) -> str:
        """A reference as "Type/id": a Bundle's urn:uuid fullUrl, or a logical reference
        by identifier, followed to the first resource in the file it names."""
        if reference.startswith("urn:") or _BY_IDENTIFIER in reference:
            row = self._db.execute(
                "SELECT reference FROM alias WHERE name = ?", (reference,)
            ).fetchone()
            if row is not None:
                return str(row[0])
        return reference

    def get(self, reference: str) -> tuple[str, dict[str, Any]] | None:
        """(id, resource) of the resource a reference points to, if the file has it."""
        kind, _, resource_id = self.resolve(reference).partition("/")
        row = self._db.execute(
            "SELECT body FROM resource WHERE type = ? AND id = ?", (kind, resource_id)
        ).fetchone()
        return None if row is None else (resource_id, json.loads(row[0]))

    def roles_of(self, practitioner_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT id, body FROM resource"
            " WHERE practitioner = ? AND type = 'PractitionerRole' ORDER BY position",
            (f"Practitioner/{practitioner_id}",),
        )
        return [(role_id, json.loads(body)) for role_id, body in rows]

    def plans_listing(self, network: str) -> list[str]:
        """The keys of the plans that list a network, in file order."""
        # A directory has few networks and every role names one: asked once each.
        listing = self._plans_listing.get(network)
        if listing is None:
            rows = self._db.execute(
                "SELECT key FROM plan_network WHERE network = ? ORDER BY position, rowid",
                (network,),
            )
            listing = self._plans_listing[network] = [str(key) for (key,) in rows]
            if len(self._plans_listing) > _CACHED:
                self._plans_listing.clear()
        return listing

    def is_network(self, reference: str) -> bool:
        """Whether a reference is to one of the file's networks: an Organization in it,
        or one an InsurancePlan in it lists."""
        resolved = self.resolve(reference)
        return resolved.startswith(_ORGANIZATION) and (
            bool(self.plans_listing(resolved)) or self.has(resolved)
        )

    def has(self, reference: str) -> bool:
        """Whether the file has the resource a reference points to."""
        found = self._in_file.get(reference)
        if found is None:
            found = self._in_file[reference] = self.get(reference) is not None
            if len(self._in_file) > _CACHED:
                self._in_file.clear()
        return found


def _insurance_plans(
    position: int, line: int | None, plan_id: str, product: dict[str, Any]
) -> Iterator[PlanRecord]:
    problems: list[Problem] = []
    if plan_id.startswith("#"):
        problems.append(
            Problem(
                "InsurancePlan.id",
                "the InsurancePlan has no id or urn fullUrl, so no network can be tied to it",
            )
        )
    plan_type = _plan_type(product)
    for plan in _plans_of(plan_id, product):
        yield PlanRecord(
            index=position,
            line=line,
            key=plan.key,
            name=plan.name,
            plan_type=plan_type,
            hios_plan_id=plan.hios_plan_id,
            problems=list(problems),
        )


@dataclass(slots=True)
class _Plan:
    """A plan an InsurancePlan declares: the product itself, or one of its `plan[]`."""

    key: str
    name: str | None
    hios_plan_id: str | None
    networks: list[str]


def _plans_of(product_id: str, product: dict[str, Any]) -> list[_Plan]:
    """The plans of an InsurancePlan, with the networks each one's providers are in.

    A Plan-Net InsurancePlan is a product. A `plan[]` entry with an identifier of
    its own is a specific plan of it (the identifier a HIOS plan id, say), and its
    `network` that plan's: each is a plan of its own. Entries without one are the
    product's cost-sharing variants, one plan with the product. A product
    `network` that no entry names applies to every plan of the product.
    """
    key = f"InsurancePlan/{product_id}"
    product_name = _string(product.get("name"))
    entries = [entry for entry in _list(product.get("plan")) if isinstance(entry, dict)]
    variants = [entry for entry in entries if not _identifiers(entry)]
    plans: list[_Plan] = []
    if variants or not entries:
        named = [network for entry in variants for network in _networks(entry)]
        plans.append(_Plan(key, product_name, _hios_plan_id(product), named))
    plans += _entry_plans(key, product_name, entries, taken=[plan.name for plan in plans])
    named_by_entries = {network for entry in entries for network in _networks(entry)}
    shared = [network for network in _networks(product) if network not in named_by_entries]
    for plan in plans:
        plan.networks = list(dict.fromkeys(plan.networks + shared))
    return plans


def _entry_plans(
    key: str, product_name: str | None, entries: list[dict[str, Any]], taken: list[str | None]
) -> list[_Plan]:
    """The plans of a product's `plan[]` entries that have an identifier of their own."""
    identified = [
        (position, entry) for position, entry in enumerate(entries) if _identifiers(entry)
    ]
    labels = [_plan_label(entry) for _, entry in identified]
    # The product's only plan needs nothing to tell it apart ("Acme Gold" and its gold plan).
    alone = len(identified) == 1 and not taken
    names = [product_name if alone else _plan_name(product_name, label) for label in labels]
    # A payer's plan names are unique (in any case): two plans named alike would
    # be one, so each of them adds its identifier.
    counted = Counter(name.casefold() for name in [*taken, *names] if name)
    plans: list[_Plan] = []
    for (position, entry), label, name in zip(identified, labels, names, strict=True):
        hios = _hios_plan_id(entry)
        if name and counted[name.casefold()] > 1:
            name = _plan_name(product_name, label, f"({hios or _identifiers(entry)[0]})")
        plans.append(_Plan(f"{key}.plan[{position}]", name, hios, _networks(entry)))
    return plans


def _identifiers(resource: dict[str, Any]) -> list[str]:
    identifiers = _list(resource.get("identifier"))
    values = (_string(found.get("value")) for found in identifiers if isinstance(found, dict))
    return [value for value in values if value]


def _networks(resource: dict[str, Any]) -> list[str]:
    """The networks an InsurancePlan or one of its `plan[]` lists, each once."""
    references = (_reference(network, "Organization") for network in _list(resource.get("network")))
    return list(dict.fromkeys(reference for reference in references if reference))


def _plan_label(entry: dict[str, Any]) -> str | None:
    """What tells a plan of a product apart: its type's text or display, else its code."""
    concept = entry.get("type")
    text = _string(concept.get("text")) if isinstance(concept, dict) else None
    displays = (_string(coding.get("display")) for coding in _coding_objects(concept))
    code = next((code for _, code in _codings(concept) if code), None)
    fallback = _PLAN_LEVELS.get(code.lower(), code) if code else None
    return text or next((display for display in displays if display), None) or fallback


def _plan_name(product_name: str | None, *labels: str | None) -> str | None:
    """The product's name and the plan's labels, the product's cut so that they fit."""
    label = " ".join(label for label in labels if label)
    if not label or not product_name:
        return product_name or label or None
    name = f"{product_name} {label}"
    room = _PLAN_NAME_LIMIT - len(label) - 1
    # A product name already too long is refused as a plan's would be.
    if len(name) <= _PLAN_NAME_LIMIT or len(product_name) > _PLAN_NAME_LIMIT or room < 1:
        return name
    return f"{product_name[:room].rstrip()} {label}"


def _plan_type(plan: dict[str, Any]) -> str | None:
    """The product type's plan type: a Plan-Net code, else what the type says in words."""
    concepts = _list(plan.get("type"))
    for concept in concepts:
        for system, code in _codings(concept):
            if system in (PRODUCT_TYPE_SYSTEM, None) and code in _PLAN_TYPES:
                return _PLAN_TYPES[code]
    # Files that write the type in words, as code, display or text ("Medicaid").
    for concept in concepts:
        words = [code for _, code in _codings(concept)]
        words += [_string(c.get("display")) for c in _coding_objects(concept)]
        words.append(_string(concept.get("text")) if isinstance(concept, dict) else None)
        for word in words:
            found = _PLAN_TYPE_WORDS.get(" ".join(word.lower().split())) if word else None
            if found:
                return found
    return None


def _hios_plan_id(resource: dict[str, Any]) -> str | None:
    """The first HIOS-shaped identifier of an InsurancePlan or of one of its `plan[]`."""
    for value in _identifiers(resource):
        if is_hios_shaped(value.upper()):
            return value.upper()
    return None


def _practitioner(
    store: _ResourceStore,
    position: int,
    line: int | None,
    practitioner_id: str,
    practitioner: dict[str, Any],
) -> Record:
    roles = store.roles_of(practitioner_id)
    # Without an id, only a role naming one of its identifiers can be its.
    if practitioner_id.startswith("#") and not roles:
        reason = "the Practitioner has no id or urn fullUrl, and no PractitionerRole names it"
        return Skipped(index=position, line=line, reason=reason)
    if practitioner.get("active") is False:
        return Skipped(index=position, line=line, reason="the Practitioner is inactive")
    if not roles:
        return Skipped(index=position, line=line, reason="no PractitionerRole")
    warnings: list[Problem] = []
    active: list[tuple[str, dict[str, Any]]] = []
    for role_id, role in roles:
        if role.get("active") is False:
            message = "the role is inactive; left out"
            warnings.append(Problem(f"PractitionerRole/{role_id}.active", message))
        # A role that has ended is no more in use than an inactive one: the
        # practitioner no longer works there. One yet to start is listed, its
        # participations starting when it does.
        elif (ended := _ended(role, store.today)) is not None:
            message = f"the role ended on {ended.isoformat()}; left out"
            warnings.append(Problem(f"PractitionerRole/{role_id}.period.end", message))
        else:
            active.append((role_id, role))
    if not active:
        return Skipped(index=position, line=line, reason="no active PractitionerRole")
    specialties, kept_out, other_roles = _specialties(active)
    if not specialties:
        listed = ", ".join(dict.fromkeys(label for _, label in kept_out)) or "none listed"
        reason = f"no physical-therapy specialty ({listed})"
        return Skipped(index=position, line=line, reason=reason)
    warnings.extend(
        Problem(path, f"{label} is not a physical-therapy specialty; kept out")
        for path, label in kept_out
    )
    # A role in another profession (a therapist who also practises as a
    # chiropractor, say): where and in which networks is not where they see
    # patients as a physical therapist.
    warnings.extend(
        Problem(
            f"PractitionerRole/{role_id}",
            "no physical-therapy specialty in this role; its locations and networks are left out",
        )
        for role_id, _ in active
        if role_id in other_roles
    )
    active = [(role_id, role) for role_id, role in active if role_id not in other_roles]
    path = f"Practitioner/{practitioner_id}"
    problems: list[Problem] = []
    closed: dict[str, str | None] = {}
    sites = _sites(store, active, problems, warnings, closed)
    if closed and not sites and not problems:
        return Skipped(index=position, line=line, reason=_no_site_reason(closed))
    npi = _npi(practitioner, path, problems)
    first_name, middle_name, last_name, suffix = _name(practitioner)
    return ProviderRecord(
        index=position,
        line=line,
        npi=npi,
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        name_suffix=suffix,
        credentials=_credentials(practitioner, store.today),
        gender=_gender(practitioner, path, warnings),
        specialties=specialties,
        languages=_languages(practitioner, path, warnings),
        sites=sites,
        problems=problems,
        warnings=warnings,
        path=path,
    )


def _no_site_reason(closed: dict[str, str | None]) -> str:
    """Why a practitioner whose every Location is no practice is skipped."""
    countries = [country for country in closed.values() if country is not None]
    if not countries:
        return "every Location of its roles is inactive or suspended"
    abroad = f"outside the US ({', '.join(dict.fromkeys(countries))})"
    if len(countries) < len(closed):
        return f"every Location of its roles is inactive, suspended or {abroad}"
    return f"every Location of its roles is {abroad}"


def _specialties(
    roles: list[tuple[str, dict[str, Any]]],
) -> tuple[list[str], list[tuple[str, str]], set[str]]:
    """(PT codes of all roles, primary first; (path, label) of the specialties kept out;
    the ids of the roles that list specialties, none of them physical therapy)."""
    codes: list[str] = []
    kept_out: list[tuple[str, str]] = []
    other_roles: set[str] = set()
    for role_id, role in roles:
        listed = _list(role.get("specialty"))
        if listed:
            other_roles.add(role_id)
        for position, concept in enumerate(listed):
            code, label = _specialty_code(concept)
            if code is not None and _is_physical_therapy(code):
                other_roles.discard(role_id)
                if code not in codes:
                    codes.append(code)
            else:
                kept_out.append((f"PractitionerRole/{role_id}.specialty[{position}]", label))
    return codes, kept_out, other_roles


def _specialty_code(concept: Any) -> tuple[str | None, str]:
    """(NUCC code, how messages name the specialty); a specialty without one is read by name."""
    codings = _codings(concept)
    for system, code in codings:
        if _is_system(system, _NUCC_SYSTEMS) and code:
            return code.upper(), code.upper()
    text = _string(concept.get("text")) if isinstance(concept, dict) else None
    if text is None:
        displays = (_string(c.get("display")) for c in _coding_objects(concept))
        text = next((display for display in displays if display), None)
    if text is None:
        label = next((code for _, code in codings if code), None)
        return None, repr(label) if label else "a specialty with no NUCC code or name"
    return nucc_code_for(text), repr(text)


def _is_system(system: Any, known: frozenset[str]) -> bool:
    if not isinstance(system, str):
        return False
    written = system.strip().rstrip("/")
    if written.startswith("https://"):
        written = "http://" + written.removeprefix("https://")
    return written in known


def _is_physical_therapy(code: str) -> bool:
    """Physical Therapist (2251…X, every specialisation) or Physical Therapy Assistant."""
    return code.startswith("2251") or code == "225200000X"


def _npi(practitioner: dict[str, Any], path: str, problems: list[Problem]) -> str | None:
    """The value of the NPI's identifier: the one under the NPI's system, else one typed NPI."""
    identifiers = [
        found for found in _list(practitioner.get("identifier")) if isinstance(found, dict)
    ]
    by_system = [found for found in identifiers if _is_system(found.get("system"), _NPI_SYSTEMS)]
    npis = by_system + [found for found in identifiers if _is_typed_npi(found)]
    for identifier in npis:
        if value := _string(identifier.get("value")):
            return value
    # An NPI identifier without a value is left to the import's own "is required".
    if not npis:
        problems.append(Problem(f"{path}.identifier", _no_npi(identifiers)))
    return None


def _no_npi(identifiers: list[dict[str, Any]]) -> str:
    """Why a Practitioner has no NPI: which identifiers it has instead."""
    if not identifiers:
        return f"no identifier with system {NPI_SYSTEM} was found: the Practitioner has none"
    systems = [_string(found.get("system")) or "none" for found in identifiers]
    return (
        f"no identifier with system {NPI_SYSTEM} (or typed NPI) was found; the systems of "
        f"its identifiers: {', '.join(dict.fromkeys(systems))}"
    )


def _is_typed_npi(identifier: dict[str, Any]) -> bool:
    """Whether an Identifier's `type` says it is an NPI (v2-0203 `NPI`), whatever its system."""
    return any(
        _is_system(system, _IDENTIFIER_TYPE_SYSTEMS) and code == "NPI"
        for system, code in _codings(identifier.get("type"))
    )


def _name(practitioner: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """(first, middle, last, suffix) of the name the practitioner goes by."""
    names = [name for name in _list(practitioner.get("name")) if isinstance(name, dict)]
    # min() keeps the first of equals: the file's order decides within a use.
    name = min(names, key=_name_rank, default={})
    given = [part for part in map(_string, _list(name.get("given"))) if part]
    suffixes = [part for part in map(_string, _list(name.get("suffix"))) if part]
    return (
        given[0] if given else None,
        " ".join(given[1:]) or None,
        _string(name.get("family")),
        " ".join(suffixes) or None,
    )


def _name_rank(name: dict[str, Any]) -> int:
    """Old and maiden names are no longer in use: taken only when every name is."""
    use = (_string(name.get("use")) or "").lower()
    return _NAME_USES.get(use, _OTHER_NAME_USE)


def _gender(practitioner: dict[str, Any], path: str, warnings: list[Problem]) -> str | None:
    gender = _string(practitioner.get("gender"))
    if gender is None or gender.lower() == "unknown":
        return None
    if gender.lower() not in _GENDERS:
        warnings.append(
            Problem(f"{path}.gender", f"{gender!r} is not male, female or other; left out")
        )
        return None
    return gender.lower()


def _credentials(practitioner: dict[str, Any], today: date) -> list[str]:
    """Degrees and licences ("DPT", "MD"): v2-0360 codes, else the qualification's text."""
    credentials: list[str] = []
    for qualification in _list(practitioner.get("qualification")):
        concept = qualification.get("code") if isinstance(qualification, dict) else None
        if not isinstance(concept, dict):
            continue
        # A licence that has expired is no credential: left out as quietly as a
        # name no longer in use, since the practitioner's current ones remain.
        if _ended(qualification, today) is not None:
            continue
        codings = _codings(concept)
        # A taxonomy-coded qualification is a board certification in a
        # specialty ("Board Certified Internal Medicine"), not a credential.
        if any(_is_system(system, _NUCC_SYSTEMS) for system, _ in codings):
            continue
        degree = next(
            (code for system, code in codings if code and (system or "").startswith(DEGREE_SYSTEM)),
            None,
        )
        any_code = next((code for _, code in codings if code), None)
        credential = degree or _string(concept.get("text")) or any_code
        if credential and credential not in credentials:
            credentials.append(credential)
    return credentials


def _languages(practitioner: dict[str, Any], path: str, warnings: list[Problem]) -> list[str]:
    codes: list[str] = []
    for position, concept in enumerate(_list(practitioner.get("communication"))):
        found = _language(concept)
        codes += [code for code in found if code not in codes]
        if not found:
            message = f"{_language_shown(concept)}; left out"
            warnings.append(Problem(f"{path}.communication[{position}]", message))
    return codes


def _language(concept: Any) -> list[str]:
    """The ISO 639-1 codes of a communication: its BCP 47 tag's, else those its text or a
    display names ("Spanish", "Vietnamese"), read as QHP files' language names are."""
    tag = _language_tag(concept)
    # BCP 47 tags: the language is the first subtag ("en-US" → "en").
    code = tag.split("-")[0].lower() if tag else None
    if code is not None and code in _language_codes():
        return [code]
    for name in _concept_texts(concept):
        if codes := language_codes(name):
            return list(codes)
    return []


def _language_tag(concept: Any) -> str | None:
    return next((code for _, code in _codings(concept) if code), None)


def _language_shown(concept: Any) -> str:
    """A communication the directory cannot read, as its warning names it."""
    tag = _language_tag(concept)
    if tag:
        return f"{tag!r} is not an ISO 639-1 language the directory knows"
    names = _concept_texts(concept)
    if names:
        return f"{names[0]!r} is not a language the directory knows"
    return "a language with no code or name"


def _concept_texts(concept: Any) -> list[str]:
    """A CodeableConcept's text, then its codings' displays."""
    text = _string(concept.get("text")) if isinstance(concept, dict) else None
    displays = (_string(coding.get("display")) for coding in _coding_objects(concept))
    return [name for name in (text, *displays) if name]


@cache
def _language_codes() -> frozenset[str]:
    with (DATA_DIR / "languages.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["code"] for row in csv.DictReader(handle))


def _sites(
    store: _ResourceStore,
    roles: list[tuple[str, dict[str, Any]]],
    problems: list[Problem],
    warnings: list[Problem],
    closed: dict[str, str | None],
) -> list[SiteRecord]:
    """One site per Location the roles name; roles at the same Location share it.

    A Location no longer in use (`status` inactive or suspended) adds none, nor
    does one outside the US; its reference goes to `closed`, with its country
    when that is why.
    """
    sites: dict[str, SiteRecord] = {}
    voices: dict[str, list[_Voice]] = {}  # whether new patients are accepted, by site
    location_said: dict[str, list[_Said]] = {}
    for role_id, role in roles:
        path = f"PractitionerRole/{role_id}"
        role_said = _new_patients(store, role, path, problems)
        networks = [network for _, network in _network_references(role) if network]
        plans = _plan_refs(store, role, path, problems)
        locations = _list(role.get("location"))
        if not locations:
            message = "the role names no Location, so it adds no site (nor its networks)"
            warnings.append(Problem(f"{path}.location", message))
        elif next(_network_references(role), None) is None:
            # Said, since a replace then ends the practice's participations in the
            # payer's plans: the file lists the practice in none of them.
            message = (
                "the role names no network (network-reference), so its practice is in none "
                "of the payer's plans"
            )
            warnings.append(Problem(f"{path}.extension:network-reference", message))
        for position, reference in enumerate(locations):
            target = _reference(reference, "Location")
            found = _location(store, path, role, target)
            if found is None:
                message = _location_not_found(target)
                problems.append(Problem(f"{path}.location[{position}]", message))
                continue
            key, location = found
            status = _string(location.get("status"))
            if status in ("inactive", "suspended"):
                message = f"{key} is {status}; no practice there"
                warnings.append(Problem(f"{path}.location[{position}]", message))
                closed[key] = None
                continue
            # The directory lists US practices only, as NPPES does: a foreign
            # address would otherwise fail the US state and ZIP checks and,
            # under on_error=reject, refuse the whole roster.
            country = _foreign_country(location)
            if country is not None:
                message = f"{key} is outside the US ({country}); no practice there"
                warnings.append(Problem(f"{path}.location[{position}]", message))
                closed[key] = country
                continue
            site = sites.get(key)
            if site is None:
                site = sites[key] = _site(location, key, problems, store.today)
                location_said[key] = _new_patients(store, location, key, problems)
                voices[key] = []
            site.phone = site.phone or _telecom(role, "phone", store.today)
            site.fax = site.fax or _telecom(role, "fax", store.today)
            # The role's own statement is the practitioner's; a Location's is
            # the practice's, and stands in when the role says nothing.
            speaker, said = (path, role_said) if role_said else (key, location_said[key])
            voices[key].extend(_voices(said, networks or [path], speaker))
            listed = {plan.key for plan in site.plans}
            site.plans.extend(plan.copy() for plan in plans if plan.key not in listed)
    for key, site in sites.items():
        site.accepting_new_patients = _accepting(store, key, voices[key], warnings)
    return list(sites.values())


def _location(
    store: _ResourceStore, path: str, role: dict[str, Any], target: str | None
) -> tuple[str, dict[str, Any]] | None:
    """(key, Location) a role's location reference points to: a Location in the file,
    or one the role contains (`#id`), which is the site just as well."""
    if target is None:
        return None
    if target.startswith("#"):
        for position, contained in enumerate(_list(role.get("contained"))):
            if (
                isinstance(contained, dict)
                and contained.get("resourceType") == "Location"
                and _string(contained.get("id")) == target[1:]
            ):
                return f"{path}.contained[{position}]", contained
        return None
    resolved = store.resolve(target)
    found = store.get(resolved) if resolved.startswith("Location/") else None
    return None if found is None else (f"Location/{found[0]}", found[1])


def _location_not_found(target: str | None) -> str:
    if target is not None and _BY_IDENTIFIER in target:
        return _not_in_file(target)
    where = "contained in the role" if target and target.startswith("#") else "in the file"
    return f"{target or 'the reference'} is not a Location {where}"


def _foreign_country(location: dict[str, Any]) -> str | None:
    """The Location's `address.country` as the file writes it, when that is not the US;
    None for a US address, or one that names no country (US, as in every roster)."""
    address = location.get("address")
    country = _string(address.get("country")) if isinstance(address, dict) else None
    if country is None:
        return None
    written = " ".join(country.replace(".", "").casefold().split())
    return None if written in _US_COUNTRIES else country


def _site(location: dict[str, Any], key: str, problems: list[Problem], today: date) -> SiteRecord:
    address = location.get("address")
    address = address if isinstance(address, dict) else {}
    lines = [part for part in map(_string, _list(address.get("line"))) if part]
    position = location.get("position")
    position = position if isinstance(position, dict) else {}
    return SiteRecord(
        address_line1=lines[0] if lines else None,
        address_line2=", ".join(lines[1:]) or None,
        city=_string(address.get("city")),
        state=_string(address.get("state")),
        zip=_string(address.get("postalCode")),
        name=_string(location.get("name")),
        latitude=_coordinate(position, "latitude", key, problems),
        longitude=_coordinate(position, "longitude", key, problems),
        phone=_telecom(location, "phone", today),
        fax=_telecom(location, "fax", today),
        path=key,
    )


def _coordinate(
    position: dict[str, Any], axis: str, key: str, problems: list[Problem]
) -> float | None:
    value = position.get(axis)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        message = f"expected a number, found {json_kind(value)}"
        problems.append(Problem(f"{key}.position.{axis}", message))
        return None
    return float(value)


def _telecom(resource: dict[str, Any], system: str, today: date) -> str | None:
    """The first-ranked contact point of a kind (phone, fax) in use today."""
    ranked: list[tuple[int, int, str]] = []
    for order, point in enumerate(_list(resource.get("telecom"))):
        if not isinstance(point, dict) or point.get("system") != system:
            continue
        # A number the file says is out of use is none at all: shown, it would
        # send patients to a line that no longer reaches the practice.
        if not _in_use(point, today):
            continue
        value = _string(point.get("value"))
        rank = point.get("rank")
        if value:
            ranked.append((rank if isinstance(rank, int) and rank > 0 else 2**31, order, value))
    return min(ranked)[2] if ranked else None


def _in_use(point: dict[str, Any], today: date) -> bool:
    """Whether a ContactPoint is in use today: not `old`, and within its `period`."""
    use = _string(point.get("use"))
    start, end = _period(point)
    return (
        (use is None or use.lower() != "old")
        and (start is None or start <= today)
        and (end is None or end >= today)
    )


@dataclass(frozen=True, slots=True)
class _Said:
    """What one newpatients extension says, and of which network when it names one."""

    accepting: bool
    network: str | None  # its `fromnetwork`


@dataclass(frozen=True, slots=True)
class _Voice:
    """Whether new patients are accepted at a site through one network (or one role
    that names none), and the field of the file that says so."""

    accepting: bool
    through: str  # a reference, as the file writes it
    field: str


def _new_patients(
    store: _ResourceStore, resource: dict[str, Any], path: str, problems: list[Problem]
) -> list[_Said]:
    """What the resource's newpatients extensions say (one per network, at most)."""
    said: list[_Said] = []
    for position, extension in enumerate(_list(resource.get("extension"))):
        if not isinstance(extension, dict) or extension.get("url") != NEW_PATIENTS:
            continue
        parts = [part for part in _list(extension.get("extension")) if isinstance(part, dict)]
        network = next(
            (
                _reference(part.get("valueReference"), "Organization")
                for part in parts
                if part.get("url") == "fromnetwork"
            ),
            None,
        )
        for part in parts:
            if part.get("url") != "acceptingPatients":
                continue
            accepting = _accepting_patients(part, f"{path}.extension[{position}]", problems)
            if accepting is not None:
                said.append(_Said(accepting, network))
    # A file may also say how the practitioner stands in another payer's network:
    # what it says of its own networks is what this directory lists.
    if any(entry.network and store.is_network(entry.network) for entry in said):
        said = [entry for entry in said if not entry.network or store.is_network(entry.network)]
    return said


def _accepting_patients(part: dict[str, Any], path: str, problems: list[Problem]) -> bool | None:
    """An acceptingPatients value: its code, else its text when it reads plainly."""
    if isinstance(part.get("valueBoolean"), bool):  # drafts of the IG used a boolean
        return bool(part["valueBoolean"])
    concept = part.get("valueCodeableConcept")
    codes = [code for _, code in _codings(concept) if code]
    # The IG's type is CodeableConcept; files also write the bare code.
    codes += [part[k] for k in ("valueCode", "valueString") if isinstance(part.get(k), str)]
    known = [code.strip().lower() for code in codes]
    known = [code for code in known if code in _ACCEPTING_CODES]
    if known:
        return _ACCEPTING_CODES[known[0]]
    text = _string(concept.get("text")) if isinstance(concept, dict) else None
    said = " ".join(text.lower().split()) if text else None
    if said in _ACCEPTING_TEXTS:
        return _ACCEPTING_TEXTS[said]
    known_codes = ", ".join(_ACCEPTING_CODES)
    found = (
        f"code {codes[0]!r} is not one of {known_codes}"
        if codes
        else f"has no code (valueCodeableConcept with one of {known_codes})"
    )
    problems.append(Problem(path, f"acceptingPatients {found}"))
    return None


def _voices(said: list[_Said], networks: list[str], speaker: str) -> Iterator[_Voice]:
    """Each statement, through the network it names, else through each of the role's."""
    field = f"{speaker}.extension:newpatients"
    for entry in said:
        for network in [entry.network] if entry.network else networks:
            yield _Voice(entry.accepting, network, field)


def _accepting(
    store: _ResourceStore, key: str, voices: list[_Voice], warnings: list[Problem]
) -> bool | None:
    """Whether the site takes new patients: what every statement there says, else unknown.

    Accepting through one network and not another leaves the site unknown (stored as
    not accepting) rather than promise an appointment: the directory holds one value
    per practice, so the insurer is warned which network said what.
    """
    values = {voice.accepting for voice in voices}
    if len(values) < 2:
        return next(iter(values), None)

    def through(accepting: bool) -> str:
        names = (_network_name(store, v.through) for v in voices if v.accepting is accepting)
        return ", ".join(dict.fromkeys(names))

    field = next(voice.field for voice in voices if voice.accepting is not voices[0].accepting)
    message = (
        f"accepting new patients for {through(True)}, not for {through(False)}; the directory "
        f"holds one value per practice, so the practice at {key} is stored as unknown "
        "(one already in the directory keeps its value)"
    )
    if Problem(field, message) not in warnings:
        warnings.append(Problem(field, message))
    return None


def _network_name(store: _ResourceStore, reference: str) -> str:
    """A network as messages name it: its reference, and its name when the file has it."""
    reference = store.resolve(reference)  # a Bundle's urn:uuid, followed
    found = store.get(reference) if reference.startswith("Organization/") else None
    name = _string(found[1].get("name")) if found else None
    return f"{reference} ({name})" if name else reference


def _plan_refs(
    store: _ResourceStore, role: dict[str, Any], path: str, problems: list[Problem]
) -> list[PlanRef]:
    """The plans whose networks the role belongs to: InsurancePlans, else the networks."""
    keys: list[str] = []
    for position, network in _network_references(role):
        extension_path = f"{path}.extension[{position}]"
        if network is None:
            problems.append(Problem(extension_path, "network-reference without a reference"))
            continue
        resolved = store.resolve(network)
        if not resolved.startswith(_ORGANIZATION):
            message = f"network-reference {network} does not point to an Organization"
            problems.append(Problem(extension_path, message))
            continue
        plan_keys = list(store.plans_listing(resolved))
        if not plan_keys and store.has(resolved):
            plan_keys = [resolved]
        if not plan_keys:
            problems.append(Problem(extension_path, _network_not_in_file(network)))
        keys.extend(key for key in plan_keys if key not in keys)
    period = role.get("period")
    period = period if isinstance(period, dict) else {}
    effective_from = _date(period.get("start"), f"{path}.period.start", problems, end=False)
    effective_to = _date(period.get("end"), f"{path}.period.end", problems, end=True)
    verified_at = _last_updated(role, path, problems)
    return [PlanRef(key, None, effective_from, effective_to, verified_at) for key in keys]


def _period(resource: dict[str, Any]) -> tuple[date | None, date | None]:
    """(first, last day) of a resource's `period`; a bound that is not a FHIR date is None.

    A role's unreadable period is reported where its participations take their
    dates (_plan_refs); a contact point's or a qualification's only decides
    whether it is still in use, and refusing the record for it would drop more
    than it protects.
    """
    period = resource.get("period")
    period = period if isinstance(period, dict) else {}
    unread: list[Problem] = []
    start = _date(period.get("start"), "period.start", unread, end=False)
    return start, _date(period.get("end"), "period.end", unread, end=True)


def _ended(resource: dict[str, Any], today: date) -> date | None:
    """The last day of the resource's `period`, when that is before today."""
    end = _period(resource)[1]
    return end if end is not None and end < today else None


def _network_references(role: dict[str, Any]) -> Iterator[tuple[int, str | None]]:
    """(position in `extension`, reference) of each network-reference extension."""
    for position, extension in enumerate(_list(role.get("extension"))):
        if isinstance(extension, dict) and extension.get("url") == NETWORK_REFERENCE:
            yield position, _reference(extension.get("valueReference"), "Organization")


def _date(value: Any, path: str, problems: list[Problem], *, end: bool) -> date | None:
    """A FHIR date or dateTime; a year or month alone stands for its first or last day."""
    if value is None:
        return None
    match = _FHIR_DATE.match(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError(value)
        year, month, day = match.groups()
        if month is None:
            return date(int(year), 12, 31) if end else date(int(year), 1, 1)
        if day is None:
            last = calendar.monthrange(int(year), int(month))[1]
            return date(int(year), int(month), last if end else 1)
        return date(int(year), int(month), int(day))
    except ValueError:  # the pattern, or a day the calendar lacks (2025-02-30)
        problems.append(Problem(path, f"{value!r} is not a FHIR date (YYYY-MM-DD)"))
        return None


def _last_updated(resource: dict[str, Any], path: str, problems: list[Problem]) -> datetime | None:
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # OverflowError: year 1 or 9999 in UTC
        message = f"{value!r} is not a FHIR instant (such as 2025-01-31T09:00:00Z)"
        problems.append(Problem(f"{path}.meta.lastUpdated", message))
        return None


def _reference(value: Any, kind: str) -> str | None:
    """A Reference's target as "Type/id" (absolute URLs and versions are cut to that), or
    for a logical reference to a `kind` resource, the identifier it gives, as
    "<kind>?identifier=<system>|<value>" (the store knows which resource has it)."""
    if not isinstance(value, dict):
        return None
    reference = _string(value.get("reference"))
    if reference is None:
        identifier = value.get("identifier")
        return _logical_reference(kind, identifier) if isinstance(identifier, dict) else None
    if reference.startswith(("urn:", "#")):
        return reference
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _logical_reference(kind: str, identifier: dict[str, Any]) -> str | None:
    """How a reference by identifier names its target; an NPI under the NPI's own system,
    whatever the file writes, so that it meets the Practitioner's NPI identifier."""
    value = _string(identifier.get("value"))
    if value is None:
        return None
    system = NPI_SYSTEM if _is_typed_npi(identifier) else _identifier_system(identifier)
    return _named_by_identifier(kind, system, value)


def _logical_names(kind: str, resource: dict[str, Any]) -> list[str]:
    """The logical references that name a resource: one per identifier, and an identifier
    typed NPI also under the NPI's system."""
    names: list[str] = []
    for identifier in _list(resource.get("identifier")):
        value = _string(identifier.get("value")) if isinstance(identifier, dict) else None
        if value is None:
            continue
        names.append(_named_by_identifier(kind, _identifier_system(identifier), value))
        if _is_typed_npi(identifier):
            names.append(_named_by_identifier(kind, NPI_SYSTEM, value))
    return list(dict.fromkeys(names))


def _identifier_system(identifier: dict[str, Any]) -> str | None:
    """An Identifier's system as logical references match it: as written (no trailing
    slash), the NPI's other names (https, its OID) as its own."""
    system = identifier.get("system")
    if not isinstance(system, str):
        return None
    return NPI_SYSTEM if _is_system(system, _NPI_SYSTEMS) else system.strip().rstrip("/") or None


def _named_by_identifier(kind: str, system: str | None, value: str) -> str:
    return f"{kind}{_BY_IDENTIFIER}{system or ''}|{value}"


def _not_in_file(reference: str) -> str:
    """What a reference that finds nothing in the file failed to find."""
    kind, by_identifier, identifier = reference.partition(_BY_IDENTIFIER)
    if by_identifier:
        return f"no {kind} in the file has the identifier {identifier}"
    return f"{reference} is not in the file"


def _network_not_in_file(network: str) -> str:
    _, by_identifier, identifier = network.partition(_BY_IDENTIFIER)
    if by_identifier:
        return (
            f"no network in the file has the identifier {identifier} (no Organization has it, "
            "and no InsurancePlan lists it)"
        )
    return f"network {network} is not in the file, and no InsurancePlan in it lists it"


def _codings(concept: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) of each coding of a CodeableConcept."""
    return [(_string(c.get("system")), _string(c.get("code"))) for c in _coding_objects(concept)]


def _coding_objects(concept: Any) -> list[dict[str, Any]]:
    codings = _list(concept.get("coding")) if isinstance(concept, dict) else []
    return [coding for coding in codings if isinstance(coding, dict)]


def _list(value: Any) -> list[Any]:
    """The list itself, not a copy: callers only read it."""
    return value if isinstance(value, list) else []


def _string(value: Any) -> str | None:
    if type(value) is str:  # nearly always: spare the checks below
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None
