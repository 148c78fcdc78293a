"""What every import format yields: provider records in one normalised shape.

A parser maps its format's vocabulary onto these records (QHP `accepting`
strings, FHIR extensions, NPPES taxonomy columns) and reports what it could
not map. Field rules that hold whatever the format (NPI check digit, state,
ZIP, coordinates, plan id) are checked once, by the import itself, so every
format refuses the same values with the same messages.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import BinaryIO, Protocol


class ImportFileError(Exception):
    """The file as a whole cannot be read: wrong format, encoding, truncated, empty."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(slots=True)
class Problem:
    """Something wrong with one field of one record; `field` is a dotted path in the record."""

    field: str
    message: str


@dataclass(slots=True)
class PlanRecord:
    """A plan the file itself declares (QHP `plans.json`, FHIR InsurancePlan)."""

    index: int  # 0-based position among the file's records
    line: int | None  # 1-based line where the record starts, where the format has lines
    key: str  # how provider records refer to the plan (PlanRef.key)
    name: str | None
    plan_type: str | None  # an app.networks.models.PlanType value, when the format says
    hios_plan_id: str | None
    problems: list[Problem] = field(default_factory=list)


def variant_read_as(variant: str, plan: str) -> str:
    """The warning for a cost-sharing variant id read as its plan's."""
    return f"{variant} is a cost-sharing variant of plan {plan}; read as {plan}"


@dataclass(slots=True)
class PlanRef:
    """A site's place in one plan's network."""

    # A HIOS plan id, or the key of a PlanRecord in the same file, or the name of
    # a plan the payer already has.
    key: str
    network_tier: str | None = None
    effective_from: date | None = None
    effective_to: date | None = None
    verified_at: datetime | None = None
    # Where the reference is in the file, for naming its problems: QHP's
    # "plans[2]" (its place among the provider's plans), the CSV row's line.
    path: str | None = None
    line: int | None = None

    def terms(self) -> tuple[object, ...]:
        """What the reference says, wherever in the file it is."""
        return (
            self.key,
            self.network_tier,
            self.effective_from,
            self.effective_to,
            self.verified_at,
        )

    def copy(self) -> "PlanRef":
        """Another reference with the same values (a site's own, to change alone)."""
        return PlanRef(
            self.key,
            self.network_tier,
            self.effective_from,
            self.effective_to,
            self.verified_at,
            self.path,
            self.line,
        )


@dataclass(slots=True)
class SiteRecord:
    """The provider at one address (a Practice at a Location)."""

    address_line1: str | None
    city: str | None
    state: str | None
    zip: str | None
    address_line2: str | None = None
    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone: str | None = None
    fax: str | None = None
    facility_type: str | None = None  # an app.locations.models.FacilityType value
    accepting_new_patients: bool | None = None
    telehealth: bool | None = None
    plans: list[PlanRef] = field(default_factory=list)
    # Where the site is in the file, for naming its fields: "Location/loc-1" in
    # Plan-Net; None where FieldNames.sites says (QHP's addresses[i], CSV columns).
    path: str | None = None
    # The line of the site's first row, where a record spans several (the CSV),
    # and of the row each field's value came from, where another.
    line: int | None = None
    lines: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class FieldNames:
    """How a format names the fields that are checked after parsing (validate.py, and
    the plan lookup), so that a problem names the field as the file does:
    `addresses[0].zip` in QHP, `Location/loc-1.address.postalCode` in Plan-Net, a
    column in a CSV. Keys are ProviderRecord, SiteRecord and PlanRef field names;
    a field not listed keeps its name. Parsers name their own problems directly.
    """

    record: Mapping[str, str] = field(default_factory=dict)
    site: Mapping[str, str] = field(default_factory=dict)
    plan: Mapping[str, str] = field(default_factory=dict)
    # A site's fields are "<sites>[i].<field>"; None: they are columns of the row.
    sites: str | None = "sites"
    # A plan's fields are "<site>.<plans>[j].<field>" (unless the reference knows its
    # own place in the file, PlanRef.path); None: columns.
    plans: str | None = "plans"
    # False where a list is one cell ("neurology; vestibular"): no "[i]".
    indexed: bool = True
    # Lists the parser filters or maps (codes from free text, certifications out of
    # qualifications), so that an index into the record's list is none into the
    # file's: named without one (the message quotes the value).
    unindexed: frozenset[str] = frozenset()
    # A plan the file declares (PlanRecord): "key", "name", "plan_id", "plan_type"
    # as the format names them; None: "plan.<field>".
    declared: Mapping[str, str] | None = None

    def of_record(self, name: str, path: str | None = None) -> str:
        """ "first_name", "specialties[2]" as the format names them. A name that
        starts with a resource type ("PractitionerRole.location") stands alone;
        others go under the record's path ("Practitioner/p1.name.given")."""
        base, bracket, rest = name.partition("[")
        mapped = self.record.get(base, base)
        if bracket and self.indexed and base not in self.unindexed:
            mapped = f"{mapped}[{rest}"
        if path and not mapped[:1].isupper():
            return f"{path}.{mapped}"
        return mapped

    def site_prefix(self, index: int, site: "SiteRecord") -> str:
        if site.path:
            return f"{site.path}."
        return f"{self.sites}[{index}]." if self.sites else ""

    def of_site(self, prefix: str, name: str) -> str:
        return prefix + self.site.get(name, name)

    def of_declared(self, name: str) -> str:
        if self.declared is None:
            return f"plan.{name}"
        return self.declared.get(name, name)

    def of_plan(self, site_prefix: str, index: int, name: str, ref: PlanRef) -> str:
        mapped = self.plan.get(name, name)
        if ref.path is not None:
            return f"{ref.path}.{mapped}"
        if self.plans is None:
            return mapped
        return f"{site_prefix}{self.plans}[{index}].{mapped}"


# The names of the normalised records themselves.
INTERNAL_NAMES = FieldNames()


@dataclass(slots=True)
class ProviderRecord:
    """One therapist as the file describes it, with the sites where it practises."""

    index: int
    line: int | None
    npi: str | None
    first_name: str | None
    last_name: str | None
    middle_name: str | None = None
    name_suffix: str | None = None
    credentials: list[str] = field(default_factory=list)
    gender: str | None = None  # female | male | other, as app.therapists.models.Gender
    specialties: list[str] = field(default_factory=list)  # NUCC codes, primary first
    languages: list[str] = field(default_factory=list)  # ISO 639-1 codes
    certifications: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    sites: list[SiteRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # refuse the record
    warnings: list[Problem] = field(default_factory=list)  # kept out, record still imported
    # Where the record's own fields are in the file ("Practitioner/p1"), if not at its top.
    path: str | None = None


@dataclass(slots=True)
class Skipped:
    """A record outside the directory's scope (not a physical therapist, a facility)."""

    index: int
    line: int | None
    reason: str
    # The NPI, when the national file says it is no physical therapist's any more
    # (deactivated, or without a physical-therapy taxonomy now): a therapist the
    # seed put in the directory under it goes (RosterImport.withdraw).
    withdrawn: str | None = None


Record = PlanRecord | ProviderRecord | Skipped


class Parser(Protocol):
    """Reads a binary stream from its start and yields records in file order.

    Memory must not grow with the file: records are yielded as they are read.
    Raises ImportFileError when the file as a whole cannot be read.
    """

    def __call__(self, stream: BinaryIO) -> Iterator[Record]: ...
