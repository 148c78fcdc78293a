"""Writes checked provider records into the directory, a batch at a time.

Therapists are matched by NPI and locations by normalised address; a practice
is a therapist at a location. Participations belong to the importing payer's
plans only: the import never reads or writes another payer's rows, and never
deletes a therapist, location or practice (others may use them).

`replace` makes the payer's participations exactly what the file lists: every
participation of any of the payer's plans that the file does not list is
ended (its `effective_to` becomes yesterday; one that had not started yet is
removed). `merge` only adds and updates.

Writes use Core statements over whole batches (one SELECT per table, then
executemany INSERTs and UPDATEs of what changed), and rebuild the search rows
of the therapists a batch changed: re-read from the database for therapists that
existed before the batch, built from the batch itself for the ones it created
(they have nothing but what the batch wrote). A record that changes nothing writes
nothing, so importing the same file twice changes nothing the second time.
"""

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.db import Base, one_of, utcnow
from app.fields import has_control_characters, is_valid_npi
from app.imports.bulk import chunks, insert_many, insert_new
from app.imports.records import (
    INTERNAL_NAMES,
    FieldNames,
    PlanRecord,
    PlanRef,
    Problem,
    variant_read_as,
)
from app.imports.validate import Provider, Site, spaced, unique
from app.locations import service as location_service
from app.locations.models import Location
from app.networks.models import Participation, Plan, PlanType
from app.networks.schemas import is_hios_shaped, standard_component
from app.search import geo, projection
from app.search.models import SearchPractice
from app.therapists.models import (
    Practice,
    Source,
    Therapist,
    TherapistSpecialty,
    therapist_certifications,
    therapist_conditions,
    therapist_languages,
    therapist_services,
)
from app.therapists.names import name_key

Where = tuple[int | None, int | None]  # a record's line and index in its file

BATCH_SIZE = 4000

_LINKS = (
    ("languages", therapist_languages, "language_code"),
    ("certifications", therapist_certifications, "certification_code"),
    ("conditions", therapist_conditions, "condition_slug"),
    ("services", therapist_services, "service_slug"),
)
_THERAPIST_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "name_suffix",
    "credentials",
    "gender",
)
_LOCATION_DETAILS = ("name", "phone", "fax", "facility_type")

# The participations a replace listed that existed before it, so the rest can be
# ended at the end (the ones it created are known by their created_at: see
# RosterImport.created_at).
_seen = Table(
    "import_seen_participations",
    MetaData(),
    # No key: a participation listed twice (or by a repeated NPI) may be noted twice.
    Column("practice_id", Integer),
    Column("plan_id", Integer),
    Index("ix_import_seen_participations", "practice_id", "plan_id"),
    prefixes=["TEMPORARY"],
)


class Mode(StrEnum):
    REPLACE = "replace"
    MERGE = "merge"


@dataclass(slots=True)
class Counts:
    therapists_created: int = 0
    therapists_updated: int = 0
    therapists_unchanged: int = 0
    therapists_removed: int = 0
    locations_created: int = 0
    locations_updated: int = 0
    locations_unchanged: int = 0
    practices_created: int = 0
    practices_updated: int = 0
    participations_created: int = 0
    participations_updated: int = 0
    participations_unchanged: int = 0
    participations_ended: int = 0
    plans_created: int = 0
    plans_updated: int = 0
    records_imported: int = 0
    records_skipped: int = 0
    records_invalid: int = 0
    warnings: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Refusal:
    line: int | None
    source: str | None  # the other file the declaration is in ("in the plans file")
    why: Problem

    def message(self, ref: PlanRef) -> str:
        if self.source is not None:
            where = f" {self.source}" + (f" (line {self.line})" if self.line is not None else "")
        elif self.line is not None and self.line != ref.line:
            where = f" at line {self.line}"
        else:
            where = ""
        return (
            f"plan {ref.key!r} is not imported: its declaration{where} was refused "
            f"({self.why.field}: {self.why.message})"
        )


class PlanCatalogue:
    """The payer's plans, found by HIOS id, by name or by the key a file declared."""

    def __init__(
        self,
        session: Session,
        payer_id: int | None,
        counts: Counts,
        settle: Callable[[], None] = lambda: None,
    ) -> None:
        self.session = session
        self.payer_id = payer_id
        self.counts = counts
        # Waits until no batch is being written: the session is then this thread's.
        self.settle = settle
        self.by_key: dict[str, int] = {}
        self.hios: dict[int, str | None] = {}  # plan id → its HIOS id
        # What a declaration changed that the file did not say: the caller reports them.
        self.warnings: list[Problem] = []
        # Declarations refused, by key in any case (see `refuse`).
        self.refused: dict[str, _Refusal] = {}
        if payer_id is None:
            return
        rows = session.execute(
            select(Plan.id, Plan.name, Plan.hios_plan_id).where(Plan.payer_id == payer_id)
        )
        for plan_id, name, hios in rows:
            self.by_key[name.casefold()] = plan_id
            self.hios[plan_id] = hios
            if hios:
                self.by_key[hios.upper()] = plan_id

    @property
    def ids(self) -> list[int]:
        return sorted(set(self.by_key.values()))

    def lookup(self, key: str) -> int | None:
        found = self.by_key.get(key.upper()) or self.by_key.get(key.casefold())
        if found is None and (standard := standard_component(key.upper())) is not None:
            return self.by_key.get(standard)  # a cost-sharing variant is in its plan's network
        return found

    def _as_variant(self, key: str) -> bool:
        """Whether `key` is found only as a cost-sharing variant of a plan's id."""
        return (
            self.by_key.get(key.upper()) is None
            and self.by_key.get(key.casefold()) is None
            and standard_component(key.upper()) is not None
        )

    def declare(self, record: PlanRecord) -> list[Problem]:
        """Creates or renames the plan a file declares; returns what is wrong with it."""
        problems = self._declare(record)
        if not problems:
            self.refused.pop(spaced(record.key or "").casefold(), None)
        return problems

    def refuse(self, record: PlanRecord, why: Problem, source: str | None = None) -> None:
        """Notes a declaration the import refused (`source`: the other file it is in), so a
        record naming the plan by the same key is told why, and the plan is not created
        by that record instead (a HIOS id would be, as a Marketplace plan)."""
        if record.key:
            refusal = _Refusal(record.line, source, why)
            self.refused.setdefault(spaced(record.key).casefold(), refusal)

    def _declare(self, record: PlanRecord) -> list[Problem]:
        self.settle()
        if self.payer_id is None:
            return [Problem("plan", "this import has no payer, so it cannot declare plans")]
        key = spaced(record.key or "")
        name = spaced(record.name or record.hios_plan_id or record.key or "")
        hios = record.hios_plan_id.strip().upper() if record.hios_plan_id else None
        standard = standard_component(hios) if hios else None
        variant = standard is not None
        if hios and standard:
            self.warnings.append(Problem("plan_id", variant_read_as(hios, standard)))
            name = standard if name.upper() == hios else name
            hios = standard
        problems = []
        if not key:
            problems.append(Problem("key", "is required"))
        if not name or len(name) > 200:
            problems.append(Problem("name", "is required and at most 200 characters"))
        elif has_control_characters(name) or has_control_characters(key):
            field = "name" if has_control_characters(name) else "key"
            problems.append(Problem(field, "must not contain control characters"))
        if hios is not None and not is_hios_shaped(hios):
            problems.append(Problem("plan_id", "a HIOS plan id is 5 digits, 2 letters, 7 digits"))
        try:
            plan_type = PlanType(record.plan_type or ("marketplace" if hios else "commercial"))
        except ValueError:
            kinds = ", ".join(member.value for member in PlanType)
            problems.append(Problem("plan_type", f"must be one of {kinds}"))
        if problems:
            return problems
        if hios:
            plan_id = self.lookup(hios)
            named = self.lookup(name)
            if named not in (None, plan_id) and self.hios.get(named):
                # Insurers reuse a marketing name for plans of several HIOS ids (one per
                # state or service area). A payer's plan names are unique, so the
                # second one is told apart by its id, never merged into the first.
                taken = name
                name = f"{name} ({hios})"[:200]
                self.warnings.append(
                    Problem(
                        "name",
                        f"another of the payer's plans ({self.hios[named]}) is named "
                        f"{taken!r}; plan {hios} is named {name!r}",
                    )
                )
            elif plan_id is None:
                plan_id = named  # a plan known by its name so far gets its HIOS id
        else:
            plan_id = self.lookup(name)
        if hios and plan_id is None:
            owner = self.session.scalar(select(Plan.payer_id).where(Plan.hios_plan_id == hios))
            if owner is not None:
                return [Problem("plan_id", f"plan {hios} belongs to another payer")]
        if plan_id is None:
            plan = Plan(payer_id=self.payer_id, name=name, plan_type=plan_type, hios_plan_id=hios)
            self.session.add(plan)
            self.session.flush()
            plan_id = plan.id
            self.counts.plans_created += 1
        else:
            plan = self.session.get_one(Plan, plan_id)
            if variant:  # one of several names of the plan's variants: the plan keeps its own
                name = plan.name
            if (plan.name, plan.plan_type, plan.hios_plan_id) != (
                name,
                plan_type,
                hios or plan.hios_plan_id,
            ):
                if self.lookup(name) not in (None, plan_id):
                    return [Problem("name", f"another of the payer's plans is named {name!r}")]
                plan.name, plan.plan_type = name, plan_type
                plan.hios_plan_id = hios or plan.hios_plan_id
                self.session.flush()
                self.counts.plans_updated += 1
        self.by_key[key.upper() if hios else key] = plan_id
        self.by_key[key.casefold()] = plan_id
        self.by_key[name.casefold()] = plan_id
        self.hios[plan_id] = hios or self.hios.get(plan_id)
        if hios:
            self.by_key[hios] = plan_id
        return []

    def resolve(self, provider: Provider, names: FieldNames) -> list[Problem]:
        """Checks every plan the provider's sites name; a new HIOS id becomes a plan."""
        problems: list[Problem] = []
        for i, site in enumerate(provider.sites):
            for j, ref in enumerate(site.plans):
                if self.lookup(ref.key) is not None:
                    if self._as_variant(ref.key):
                        variant = ref.key.upper()
                        message = variant_read_as(variant, standard_component(variant) or "")
                        if ref.line is not None:
                            message = f"line {ref.line}: {message}"
                        where = names.of_plan(f"sites[{i}].", j, "plan", ref)
                        self.warnings.append(Problem(where, message))
                    continue
                name = names.of_plan(f"sites[{i}].", j, "plan", ref)
                found = len(problems)
                if self.payer_id is None:
                    problems.append(Problem(name, "this import has no payer, so it lists no plans"))
                elif (refused := self.refused.get(spaced(ref.key).casefold())) is not None:
                    problems.append(Problem(name, refused.message(ref)))
                elif is_hios_shaped(hios := ref.key.upper()) or standard_component(hios):
                    # In either case, or a cost-sharing variant's: declare() reads it as
                    # its plan's, with a warning.
                    problems.extend(
                        Problem(name, p.message)
                        for p in self.declare(PlanRecord(0, None, hios, hios, "marketplace", hios))
                    )
                else:
                    problems.append(
                        Problem(
                            name,
                            f"unknown plan {ref.key!r}: not one of the payer's plans "
                            "(see /v1/plans?payer_id=) and not declared in the file",
                        )
                    )
                if ref.line is not None:  # the CSV row that names the plan
                    for problem in problems[found:]:
                        problem.message = f"line {ref.line}: {problem.message}"
        return unique(problems)


class RosterImport:
    """One import's writes: feed it records, then `finish()`; the caller commits."""

    def __init__(
        self,
        session: Session,
        *,
        payer_id: int | None,
        mode: Mode,
        source: Source,
        today: date | None = None,
        names: FieldNames = INTERNAL_NAMES,
    ) -> None:
        self.session = session
        self.names = names  # how the file names a plan reference, for problems
        self.dialect = session.get_bind().dialect.name
        if self.dialect == "sqlite":
            _take_sqlite_write_lock(session)
        self.mode = mode
        self.source = source
        self.today = today or utcnow().date()
        self.counts = Counts()
        self.created_at = utcnow()
        # Locations after this one are this import's: listed again by a later batch,
        # they count as created, once, not as unchanged each time.
        self.last_location_before = session.scalar(select(func.max(Location.id))) or 0
        self.writer = _Writer(self.dialect)
        self.plans = PlanCatalogue(session, payer_id, self.counts, self.writer.wait)
        self.pending: list[Provider] = []
        # NPIs the national file withdraws, with where it says so (see `withdraw`).
        self.withdrawn: list[tuple[str, str, Where]] = []
        self.withdrawal_warnings: list[tuple[Where, Problem]] = []
        # NPIs of records the import refused (kept going with on_error=skip): the
        # file names these therapists, but what it says of them is unknown, so a
        # replace does not end their participations.
        self.refused_npis: set[str] = set()
        # Cleared when a refused record means nothing will be committed: the rest of
        # the file is still checked, but writing it would be wasted work.
        self.writing = True
        if mode is Mode.REPLACE and payer_id is not None:
            # Every participation this import creates carries `created_at`, so
            # `_end_unlisted` tells them apart without recording each one (a first
            # import recorded 250,000 rows for 100,000 records). No participation
            # that existed before may carry it: it is later than every one of the
            # payer's, even one stamped by a host whose clock runs ahead. Writers
            # running meanwhile: imports for this payer wait for their turn; a
            # participation an API request adds is ended if it committed before
            # `_end_unlisted` reads (as when every listed one was recorded), unless
            # it carries this very microsecond, and then it stays, as if it had
            # committed a moment later.
            latest = self.plans.ids and session.scalar(
                select(func.max(Participation.created_at)).where(
                    one_of(Participation.plan_id, self.plans.ids, self.dialect)
                )
            )
            if latest and latest >= self.created_at:
                self.created_at = latest + timedelta(microseconds=1)
            connection = session.connection()
            _seen.drop(connection, checkfirst=True)
            _seen.create(connection)

    def add(self, provider: Provider) -> list[Problem]:
        problems = self.plans.resolve(provider, self.names)
        if problems:
            return problems
        self.counts.records_imported += 1
        if self.writing:
            self.pending.append(provider)
            if len(self.pending) >= BATCH_SIZE:
                self.flush()
        return []

    def withdraw(self, npi: str, reason: str, where: Where) -> None:
        """The national file says this NPI is no physical therapist's any more.

        A therapist the seed put in the directory under it, and no payer's network
        lists, is removed (a deactivated NPI cannot bill; search must not offer
        it). One a payer or the API added, or a network lists, stays: the payers'
        own files decide; the record gets a warning saying so.
        """
        if self.writing and is_valid_npi(npi):
            self.withdrawn.append((npi, reason, where))
            if len(self.withdrawn) >= BATCH_SIZE:
                self._remove_withdrawn()

    def stop_writing(self) -> None:
        self.writing = False
        self.pending.clear()
        self.withdrawn.clear()

    def flush(self) -> None:
        if self.pending and self.writing:
            self._remove_withdrawn()  # those read since the last batch, before its writes
            self.writer.start(_Batch(self, _merge_duplicates(self.pending)).write)
        self.pending = []

    def abandon(self) -> None:
        """Waits for the batch being written, if any; what it did no longer matters."""
        with contextlib.suppress(Exception):
            self.writer.wait()

    def finish(self) -> Counts:
        self.flush()
        self.writer.wait()
        self._remove_withdrawn()
        if self.ends_unlisted:
            self._end_unlisted()
        if self.mode is Mode.REPLACE and self.plans.payer_id is not None:
            _seen.drop(self.session.connection(), checkfirst=True)
        return self.counts

    def _remove_withdrawn(self) -> None:
        if not self.withdrawn:
            return
        # An NPI the unwritten batch lists as a physical therapist stays: the file
        # says both (the national file lists an NPI once), and removing is the
        # step that cannot be taken back.
        listing = {provider.npi for provider in self.pending}
        withdrawn = [entry for entry in self.withdrawn if entry[0] not in listing]
        self.withdrawn = []
        if not withdrawn or not self.writing:
            return
        self.writer.wait()  # the batches before, written in file order
        listed = (
            exists()
            .where(Practice.therapist_id == Therapist.id)
            .where(Participation.practice_id == Practice.id)
        )
        npis = sorted({npi for npi, _, _ in withdrawn})
        found = {
            row.npi: row
            for chunk in chunks(npis)
            for row in self.session.execute(
                select(Therapist.id, Therapist.npi, Therapist.source, listed.label("listed")).where(
                    one_of(Therapist.npi, chunk, self.dialect)
                )
            )
        }
        removed = sorted(
            row.id for row in found.values() if row.source == Source.NPPES and not row.listed
        )
        gone = set(removed)
        for npi, reason, where in withdrawn:
            row = found.get(npi)
            if row is None or row.id in gone:
                continue
            kept_by = "a payer's network lists" if row.listed else "a payer or the API added"
            message = f"{reason}: the directory keeps NPI {npi}, whom {kept_by}"
            self.withdrawal_warnings.append((where, Problem("NPI", message)))
        for chunk in chunks(removed):
            sites = select(Practice.location_id).where(
                one_of(Practice.therapist_id, chunk, self.dialect)
            )
            location_ids = list(self.session.scalars(sites))
            self.session.execute(
                delete(Therapist)
                .where(one_of(Therapist.id, chunk, self.dialect))
                .execution_options(synchronize_session=False)
            )
            # What only these therapists used: no one else's address goes.
            for ids in chunks(sorted(set(location_ids))):
                location_service.delete_orphans(self.session, ids)
        self.counts.therapists_removed += len(removed)

    @property
    def ends_unlisted(self) -> bool:
        """A replace that imported a roster: what it did not list is ended.

        A file from which no therapist was imported (a QHP file of facilities, a
        bulk export's Location.ndjson, every record refused) is not an empty
        roster: taken as one, it ended the payer's whole network (the import
        service refuses it). Nor is a plans.json alone, which only declares plans.
        """
        return (
            self.writing
            and self.mode is Mode.REPLACE
            and self.plans.payer_id is not None
            and self.counts.records_imported > 0
        )

    def _end_unlisted(self) -> None:
        """Ends every participation of the payer's plans that the file did not list,
        but those of therapists a refused record names (see `refused_npis`)."""
        plan_ids = self.plans.ids
        if not plan_ids:
            return
        yesterday = self.today - timedelta(days=1)
        rows = self.session.execute(
            select(Participation.id, Participation.effective_from, Practice.therapist_id)
            .join(Practice, Practice.id == Participation.practice_id)
            .where(one_of(Participation.plan_id, plan_ids, self.dialect))
            .where(Participation.created_at != self.created_at)
            .where(
                ~exists()
                .where(_seen.c.practice_id == Participation.practice_id)
                .where(_seen.c.plan_id == Participation.plan_id)
            )
            .where(
                (Participation.effective_to.is_(None)) | (Participation.effective_to > yesterday)
            )
        ).all()
        refused = self._refused_therapists()
        rows = [row for row in rows if row.therapist_id not in refused]
        if not rows:
            return
        never_started = [r.id for r in rows if r.effective_from and r.effective_from > yesterday]
        running = [r.id for r in rows if not (r.effective_from and r.effective_from > yesterday)]
        for chunk in chunks(never_started):
            self.session.execute(
                delete(Participation).where(one_of(Participation.id, chunk, self.dialect))
            )
        now = utcnow()
        for chunk in chunks(running):
            self.session.execute(
                update(Participation)
                .where(one_of(Participation.id, chunk, self.dialect))
                .values(effective_to=yesterday, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        self.counts.participations_ended += len(rows)
        projection.refresh(self.session, {r.therapist_id for r in rows})

    def _refused_therapists(self) -> set[int]:
        npis = sorted(self.refused_npis)
        return {
            therapist_id
            for chunk in chunks(npis)
            for therapist_id in self.session.scalars(
                select(Therapist.id).where(one_of(Therapist.npi, chunk, self.dialect))
            )
        }


class _Writer:
    """Writes one batch in a thread of its own while the next one is read and checked.

    On PostgreSQL a batch's writes spend much of their time waiting for the
    server (COPY, foreign-key checks, index updates) and reading and checking the
    next records needs no database, so the two overlap, on two cores. There is
    one batch in the writer at a time, written in file order on the import's
    session, so the writes are the same as in one thread; the reading thread
    waits (`wait`) before it uses the session itself. SQLite gains nothing: it
    gives up the GIL for every row it steps, and taking it back from a busy
    thread costs more than the overlap saves, so it writes in place.
    """

    def __init__(self, dialect: str) -> None:
        self.behind = dialect == "postgresql"
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, write: Callable[[], None]) -> None:
        self.wait()
        if not self.behind:
            write()
            return

        def run() -> None:
            try:
                write()
            except BaseException as error:  # handed to the reading thread by wait()
                self.error = error

        self.thread = threading.Thread(target=run, name="import-writer", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        """Returns once no batch is being written; raises what the last one raised."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


class _Batch:
    """The writes for one batch of providers."""

    def __init__(self, job: RosterImport, providers: list[Provider]) -> None:
        self.job = job
        self.dialect = job.dialect
        self.session = job.session
        self.counts = job.counts
        self.providers = providers
        self.changed: set[int] = set()  # therapists whose search rows must be rebuilt
        self.now = utcnow()
        # What the search rows of the batch's new therapists are built from.
        self.created: dict[str, dict[str, Any]] = {}  # NPI → the therapist row inserted
        self.places: dict[str, tuple[float, float, Any]] = {}  # address key → lat, lon, type
        self.new_terms: dict[int, list[tuple[int, date | None, date | None]]] = {}

    def write(self) -> None:
        therapist_ids = self._therapists()
        self._links(therapist_ids)
        location_ids = self._locations()
        practice_ids = self._practices(therapist_ids, location_ids)
        if self.job.plans.payer_id is not None:
            self._participations(practice_ids)
        existing = self.changed - {therapist_ids[npi] for npi in self.created}
        if existing:
            projection.refresh(self.session, existing)
        self._search_rows(therapist_ids, location_ids, practice_ids)

    # Therapists ---------------------------------------------------------------------

    def _therapists(self) -> dict[str, int]:
        table = _table(Therapist)
        by_npi = {p.npi: p for p in self.providers}
        existing = {
            row.npi: row
            for chunk in chunks(list(by_npi))
            for row in self.session.execute(
                select(table.c.id, table.c.npi, *(table.c[f] for f in _THERAPIST_FIELDS)).where(
                    one_of(table.c.npi, chunk, self.dialect)
                )
            )
        }
        new_rows, changed_rows = [], []
        for npi, provider in by_npi.items():
            values = self._therapist_values(provider, existing.get(npi))
            if npi not in existing:
                new_rows.append(
                    values | {"npi": npi, "source": self.job.source, "created_at": self.now}
                )
            elif values:
                changed_rows.append(values | {"_id": existing[npi].id})
        ids = {npi: row.id for npi, row in existing.items()}
        # Only these can have links, practices and participations already: the
        # batch's new therapists need no look-ups (a first import has none).
        self.known_therapists = sorted(ids.values())
        if new_rows:
            new_ids = insert_new(self.session.connection(), table, new_rows)
            ids.update((row["npi"], id_) for row, id_ in zip(new_rows, new_ids, strict=True))
            self.changed.update(new_ids)
            self.created = {row["npi"]: row for row in new_rows}
            self.counts.therapists_created += len(new_rows)
        if changed_rows:
            _update_many(self.session, table, changed_rows)
            self.changed.update(row["_id"] for row in changed_rows)
        self._updated_therapists = {row["_id"] for row in changed_rows}
        return ids

    def _therapist_values(self, provider: Provider, current: Any) -> dict[str, Any]:
        """All fields for a new therapist; only the changed ones for an existing one."""
        wanted: dict[str, Any] = {
            "first_name": provider.first_name,
            "last_name": provider.last_name,
            "first_name_key": name_key(provider.first_name),
            "last_name_key": name_key(provider.last_name),
        }
        # What the file leaves empty is kept: another source may know it.
        for name in ("middle_name", "name_suffix", "gender"):
            value = getattr(provider, name)
            if value is not None or current is None:
                wanted[name] = value
        if provider.credentials or current is None:
            wanted["credentials"] = provider.credentials
        if current is None:
            return wanted | {"updated_at": self.now}
        for name in _SPELLED_NAMES:
            if name in wanted and not _spelled_better(getattr(current, name), wanted[name]):
                wanted[name] = getattr(current, name)
        changed = {
            name: value
            for name, value in wanted.items()
            if name.endswith("_key") or getattr(current, name) != value
        }
        if set(changed) <= {"first_name_key", "last_name_key"}:
            return {}
        return changed | {"updated_at": self.now}

    def _links(self, ids: dict[str, int]) -> None:
        """Adds the specialties and vocabulary codes the file gives; never removes any."""
        touched: set[int] = set()
        specialties = _table(TherapistSpecialty)
        held: dict[int, dict[str, bool]] = {}
        for chunk in chunks(self.known_therapists):
            for therapist_id, code, primary in self.session.execute(
                select(
                    specialties.c.therapist_id,
                    specialties.c.specialty_code,
                    specialties.c.is_primary,
                ).where(one_of(specialties.c.therapist_id, chunk, self.dialect))
            ):
                held.setdefault(therapist_id, {})[code] = primary
        new_specialties = []
        for provider in self.providers:
            therapist_id = ids[provider.npi]
            current = held.setdefault(therapist_id, {})
            has_primary = any(current.values())
            for code in provider.specialties:
                if code not in current:
                    current[code] = not has_primary
                    has_primary = True
                    new_specialties.append(
                        {
                            "therapist_id": therapist_id,
                            "specialty_code": code,
                            "is_primary": current[code],
                        }
                    )
                    touched.add(therapist_id)
        if new_specialties:
            insert_many(self.session.connection(), specialties, new_specialties)
        for attribute, table, column in _LINKS:
            have: set[tuple[int, str]] = set()
            for chunk in chunks(self.known_therapists):
                have.update(
                    (therapist_id, code)
                    for therapist_id, code in self.session.execute(
                        select(table.c.therapist_id, table.c[column]).where(
                            one_of(table.c.therapist_id, chunk, self.dialect)
                        )
                    )
                )
            rows = []
            for provider in self.providers:
                therapist_id = ids[provider.npi]
                for code in getattr(provider, attribute):
                    if (therapist_id, code) not in have:
                        have.add((therapist_id, code))
                        rows.append({"therapist_id": therapist_id, column: code})
                        touched.add(therapist_id)
            if rows:
                insert_many(self.session.connection(), table, rows)
        created = self.changed - self._updated_therapists
        updated = self._updated_therapists | (touched - created)
        self.counts.therapists_updated += len(updated)
        self.counts.therapists_unchanged += len(ids) - len(created) - len(updated)
        self.changed |= touched

    # Locations ----------------------------------------------------------------------

    def _locations(self) -> dict[str, int]:
        table = _table(Location)
        sites: dict[str, Site] = {}
        for provider in self.providers:
            for site in provider.sites:
                kept = sites.get(site.address_key)  # another therapist's listing of it
                sites[site.address_key] = site if kept is None else _merged_site(kept, site)
        existing = {
            row.address_key: row
            for chunk in chunks(list(sites))
            for row in self.session.execute(
                select(
                    table.c.id,
                    table.c.address_key,
                    table.c.latitude,
                    table.c.longitude,
                    table.c.geocode_precision,
                    *(table.c[name] for name in _LOCATION_DETAILS),
                ).where(one_of(table.c.address_key, chunk, self.dialect))
            )
        }
        new_rows, changed_rows = [], []
        for key, site in sites.items():
            current = existing.get(key)
            if current is None:
                new_rows.append(_location_row(site, self.now))
                self.places[key] = (site.latitude, site.longitude, site.facility_type)
                continue
            changes = {
                name: getattr(site, name)
                for name in _LOCATION_DETAILS
                if getattr(site, name) is not None and getattr(current, name) != getattr(site, name)
            }
            if site.geocode_precision == "provided" and (
                (current.latitude, current.longitude, current.geocode_precision)
                != (site.latitude, site.longitude, "provided")
            ):
                changes |= {
                    "latitude": site.latitude,
                    "longitude": site.longitude,
                    "geocode_precision": site.geocode_precision,
                }
            if changes:
                changed_rows.append(changes | {"_id": current.id, "updated_at": self.now})
            self.places[key] = (
                changes.get("latitude", current.latitude),
                changes.get("longitude", current.longitude),
                changes.get("facility_type", current.facility_type),
            )
        if changed_rows and self.job.source is Source.NPPES:
            changed_rows = self._nppes_fills_gaps(changed_rows, existing)
        ids = {key: row.id for key, row in existing.items()}
        if new_rows:
            new_ids = insert_new(self.session.connection(), table, new_rows)
            ids.update(
                (row["address_key"], id_) for row, id_ in zip(new_rows, new_ids, strict=True)
            )
            self.counts.locations_created += len(new_rows)
        _update_many(self.session, table, changed_rows)
        if changed_rows:
            moved = [row["_id"] for row in changed_rows]
            for chunk in chunks(moved):
                self.changed.update(
                    self.session.scalars(
                        select(Practice.therapist_id).where(
                            one_of(Practice.location_id, chunk, self.dialect)
                        )
                    )
                )
        self.counts.locations_updated += len(changed_rows)
        ours = self.job.last_location_before
        listed_before = [row for row in existing.values() if row.id <= ours]
        changed_before = [row for row in changed_rows if row["_id"] <= ours]
        self.counts.locations_unchanged += len(listed_before) - len(changed_before)
        return ids

    def _nppes_fills_gaps(
        self, changed_rows: list[dict[str, Any]], existing: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The national file's changes to sites a payer's network lists, cut to what
        the directory does not know yet.

        A provider updates NPPES when they think of it; a payer verifies its directory
        every 90 days (No Surprises Act). A monthly reload must not turn a phone that
        payers confirmed back into the one the provider last filed. A site no network
        lists has only the national file to go by, and takes its changes.
        """
        listed: set[int] = set()
        today = self.now.date()
        for chunk in chunks([row["_id"] for row in changed_rows]):
            listed.update(
                self.session.scalars(
                    select(Practice.location_id)
                    .join(Participation, Participation.practice_id == Practice.id)
                    .where(one_of(Practice.location_id, chunk, self.dialect))
                    .where(
                        or_(
                            Participation.effective_to.is_(None),
                            Participation.effective_to >= today,
                        )
                    )
                )
            )
        current = {row.id: row for row in existing.values()}
        kept = []
        for row in changed_rows:
            if row["_id"] in listed:
                row = {
                    name: value
                    for name, value in row.items()
                    if name not in _LOCATION_DETAILS or getattr(current[row["_id"]], name) is None
                }
                if set(row) <= {"_id", "updated_at"}:
                    continue
            kept.append(row)
        return kept

    # Practices ----------------------------------------------------------------------

    def _practices(
        self, therapist_ids: dict[str, int], location_ids: dict[str, int]
    ) -> dict[tuple[int, int], int]:
        table = _table(Practice)
        existing = {
            (row.therapist_id, row.location_id): row
            for chunk in chunks(self.known_therapists)
            for row in self.session.execute(
                select(
                    table.c.id,
                    table.c.therapist_id,
                    table.c.location_id,
                    table.c.accepting_new_patients,
                    table.c.telehealth,
                ).where(one_of(table.c.therapist_id, chunk, self.dialect))
            )
        }
        wanted: dict[tuple[int, int], Site] = {}
        for provider in self.providers:
            for site in provider.sites:
                wanted[(therapist_ids[provider.npi], location_ids[site.address_key])] = site
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        for pair, site in wanted.items():
            current = existing.get(pair)
            if current is None:
                new_rows.append(
                    {
                        "therapist_id": pair[0],
                        "location_id": pair[1],
                        # None: the file does not say (searches for either value skip it).
                        "accepting_new_patients": site.accepting_new_patients,
                        "telehealth": site.telehealth,
                        "home_visits": False,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
                continue
            changes = {
                name: getattr(site, name)
                for name in ("accepting_new_patients", "telehealth")
                if getattr(site, name) is not None and getattr(current, name) != getattr(site, name)
            }
            if changes:
                changed_rows.append(changes | {"_id": current.id, "updated_at": self.now})
                self.changed.add(pair[0])
        ids = {pair: row.id for pair, row in existing.items()}
        self.known_practices = sorted(ids.values())
        if new_rows:
            new_ids = insert_new(self.session.connection(), table, new_rows)
            for row, practice_id in zip(new_rows, new_ids, strict=True):
                ids[(row["therapist_id"], row["location_id"])] = practice_id
                self.changed.add(row["therapist_id"])
            self.counts.practices_created += len(new_rows)
        _update_many(self.session, table, changed_rows)
        self.counts.practices_updated += len(changed_rows)
        self._sites = {
            ids[(therapist_ids[p.npi], location_ids[s.address_key])]: (therapist_ids[p.npi], s)
            for p in self.providers
            for s in p.sites
        }
        return ids

    # Participations -----------------------------------------------------------------

    def _participations(self, _practice_ids: dict[tuple[int, int], int]) -> None:
        table = _table(Participation)
        plans = self.job.plans
        plan_ids = plans.ids
        existing = {
            (row.practice_id, row.plan_id): row
            for chunk in chunks(self.known_practices)
            for row in self.session.execute(
                select(
                    table.c.id,
                    table.c.practice_id,
                    table.c.plan_id,
                    table.c.network_tier,
                    table.c.effective_from,
                    table.c.effective_to,
                    table.c.verified_at,
                )
                .where(one_of(table.c.practice_id, chunk, self.dialect))
                .where(one_of(table.c.plan_id, plan_ids, self.dialect))
            )
        }
        new_rows, changed_rows, seen = [], [], []
        added: set[tuple[int, int]] = set()  # a plan listed twice for one practice counts once
        for practice_id, (therapist_id, site) in self._sites.items():
            for ref in site.plans:
                plan_id = plans.lookup(ref.key)
                assert plan_id is not None  # resolved when the record was added
                if (practice_id, plan_id) in added:
                    continue
                added.add((practice_id, plan_id))
                current = existing.get((practice_id, plan_id))
                if current is None:
                    new_rows.append(
                        {
                            "network_tier": ref.network_tier,
                            "effective_from": ref.effective_from,
                            "effective_to": ref.effective_to,
                            "verified_at": ref.verified_at,
                            "practice_id": practice_id,
                            "plan_id": plan_id,
                            "created_at": self.job.created_at,
                            "updated_at": self.now,
                        }
                    )
                    self.changed.add(therapist_id)
                    self.new_terms.setdefault(practice_id, []).append(
                        (plan_id, ref.effective_from, ref.effective_to)
                    )
                    continue
                seen.append({"practice_id": practice_id, "plan_id": plan_id})
                terms = {
                    "network_tier": ref.network_tier,
                    "effective_from": ref.effective_from,
                    "effective_to": ref.effective_to,
                    "verified_at": ref.verified_at,
                }
                changes = {
                    name: value
                    for name, value in terms.items()
                    if _differs(getattr(current, name), value)
                }
                if changes:
                    changed_rows.append(changes | {"_id": current.id, "updated_at": self.now})
                    self.changed.add(therapist_id)
                else:
                    self.counts.participations_unchanged += 1
        if new_rows:
            insert_many(self.session.connection(), table, new_rows)
            self.counts.participations_created += len(new_rows)
        _update_many(self.session, table, changed_rows)
        self.counts.participations_updated += len(changed_rows)
        if seen and self.job.mode is Mode.REPLACE:
            insert_many(self.session.connection(), _seen, seen)

    # Search rows --------------------------------------------------------------------

    def _search_rows(
        self,
        therapist_ids: dict[str, int],
        location_ids: dict[str, int],
        practice_ids: dict[tuple[int, int], int],
    ) -> None:
        """Inserts the search rows of the therapists this batch created.

        A new therapist has no specialties, codes, practices or participations but
        the ones this batch wrote, all of them held here, so re-reading them with
        the projection's aggregate query would only cost time.
        """
        if not self.created:
            return
        today = utcnow().date()  # as refresh() takes it
        rows = []
        for provider in self.providers:
            inserted = self.created.get(provider.npi)
            if inserted is None:
                continue
            therapist_id = therapist_ids[provider.npi]
            traits = projection.traits(
                gender=inserted["gender"],
                last_name_key=inserted["last_name_key"],
                first_name_key=inserted["first_name_key"],
                specialties=provider.specialties,
                # _links makes a new therapist's first specialty its primary one.
                primary_specialty=provider.specialties[0] if provider.specialties else None,
                conditions=provider.conditions,
                certifications=provider.certifications,
                languages=provider.languages,
                services=provider.services,
            )
            for site in provider.sites:
                practice_id = practice_ids[(therapist_id, location_ids[site.address_key])]
                latitude, longitude, facility_type = self.places[site.address_key]
                rows.append(
                    projection.practice_row(
                        traits,
                        practice_id=practice_id,
                        therapist_id=therapist_id,
                        latitude=latitude,
                        longitude=longitude,
                        # As _practices stores a new practice.
                        accepting_new_patients=site.accepting_new_patients,
                        telehealth=site.telehealth,
                        facility_type=facility_type,
                        participations=self.new_terms.get(practice_id, ()),
                        today=today,
                    )
                )
        insert_many(self.session.connection(), _table(SearchPractice), rows)
        geo.index_rows(self.session, rows)


_SPELLED_NAMES = ("first_name", "middle_name", "last_name")


def _spelled_better(stored: str | None, given: str | None) -> bool:
    """Whether a file's spelling of a name replaces the stored one.

    Another name always does. The same name spelled otherwise only when it tells
    more: letter case where the stored one has none ("Pérez" over NPPES's
    "PEREZ"), or accents it lacks. Else each month's national file, in capitals,
    would undo what payers wrote, and their next files redo it.
    """
    if stored is None or given is None or name_key(stored) != name_key(given):
        return True
    return _spelling_detail(given) > _spelling_detail(stored)


def _spelling_detail(name: str) -> tuple[bool, bool]:
    return (name != name.upper() and name != name.lower(), not name.isascii())


def _take_sqlite_write_lock(session: Session) -> None:
    """Begins the session's transaction IMMEDIATE: SQLite's write lock is held from here.

    New rows take the ids after the largest in their table (bulk.insert_new);
    holding the lock before reading it keeps other writers from taking them
    meanwhile. The import would hold the lock from its first batch anyway (SQLite
    has one writer at a time); API writes wait for it (busy_timeout) or fail.
    """
    driver = session.connection().connection.dbapi_connection
    assert isinstance(driver, sqlite3.Connection)
    if not driver.in_transaction:
        driver.execute("BEGIN IMMEDIATE")
    else:  # a transaction that may only have read: a write, if no-op, takes the lock
        driver.execute("DELETE FROM therapists WHERE 0")


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def _differs(current: Any, wanted: Any) -> bool:
    if isinstance(current, datetime) and isinstance(wanted, datetime):
        return _as_utc(current) != _as_utc(wanted)
    return bool(current != wanted)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _location_row(site: Site, now: datetime) -> dict[str, Any]:
    return {
        "address_key": site.address_key,
        "name": site.name,
        "address_line1": site.address_line1,
        "address_line2": site.address_line2,
        "city": site.city,
        "state": site.state,
        "zip": site.zip,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "geocode_precision": site.geocode_precision,
        "phone": site.phone,
        "fax": site.fax,
        "facility_type": site.facility_type,
        "accessibility": [],
        "created_at": now,
        "updated_at": now,
    }


def _merge_duplicates(providers: list[Provider]) -> list[Provider]:
    """One provider per NPI in a batch, merged as if each record were written in turn.

    A later record wins on what it gives and keeps what it leaves empty, as it
    does when the two fall in different batches (see `_therapist_values`,
    `_locations`, `_practices`); sites, plans and codes add up. So where a batch
    boundary falls, which depends on the file's length, changes nothing.
    """
    merged: dict[str, Provider] = {}
    for provider in providers:
        earlier = merged.get(provider.npi)
        if earlier is None:
            merged[provider.npi] = provider
            continue
        sites = {site.address_key: site for site in earlier.sites}
        for site in provider.sites:
            kept = sites.get(site.address_key)
            sites[site.address_key] = site if kept is None else _merged_site(kept, site)
        provider.sites = list(sites.values())
        for name in ("middle_name", "name_suffix", "gender"):
            if getattr(provider, name) is None:
                setattr(provider, name, getattr(earlier, name))
        if not provider.credentials:
            provider.credentials = earlier.credentials
        for name in ("specialties", "languages", "certifications", "conditions", "services"):
            setattr(
                provider,
                name,
                list(dict.fromkeys([*getattr(earlier, name), *getattr(provider, name)])),
            )
        merged[provider.npi] = provider
    return list(merged.values())


# What a later listing of an address leaves empty keeps the earlier listing's value.
_SITE_DETAILS = (*_LOCATION_DETAILS, "accepting_new_patients", "telehealth")


def _merged_site(earlier: Site, later: Site) -> Site:
    """One address listed twice in a batch: as the later listing updates the earlier one."""
    kept: dict[str, Any] = {
        name: getattr(earlier, name) for name in _SITE_DETAILS if getattr(later, name) is None
    }
    if later.geocode_precision != "provided" and earlier.geocode_precision == "provided":
        kept |= {
            "latitude": earlier.latitude,
            "longitude": earlier.longitude,
            "geocode_precision": earlier.geocode_precision,
        }
    # A plan listed by both takes the later terms; the earlier listing's order stays.
    plans = {ref.key: ref for ref in earlier.plans} | {ref.key: ref for ref in later.plans}
    return replace(later, plans=list(plans.values()), **kept)


def _update_many(session: Session, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """UPDATEs rows by `_id`; rows naming the same columns share one executemany."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for names, group in groups.items():
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in names if name != "_id"}),
            group,
        )
