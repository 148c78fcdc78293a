"""Large uploads are read and checked in a child process: the import reports the same."""

import marshal
import multiprocessing
import os
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.imports import reading, service
from app.imports.formats import Format
from app.imports.records import PlanRecord, PlanRef, Problem, Skipped
from app.imports.service import OnError, Outcome
from app.imports.validate import Checked, Provider, Site
from app.locations.models import GeocodePrecision
from app.reference.vocabulary import Vocabulary, vocabulary
from tests.conftest import Backend
from tests.imports.helpers import checksum, import_bytes, roster_csv, row

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROSTER = ("therapists", "locations", "practices", "participations", "plans", "search_practices")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def nppes_cut_short() -> bytes:
    """The NPPES sample, its 1,600th row cut off half-way (a download that stopped)."""
    lines = fixture("nppes/nppes_sample_practitioners.csv").splitlines(keepends=True)
    return b"".join(lines[:1600]) + lines[1600][:200] + b"\n"


def roster_with_refusals() -> bytes:
    """2,500 rows in two plans; rows 700 and 1,800 lack a first name."""
    return roster_csv(
        [
            row(n, ("loop", "lakeview")[n % 2], ("Silver PPO", "Gold HMO")[n % 2],
                plan_type="commercial", first_name="" if n in (700, 1800) else "Ana")
            for n in range(1, 2501)
        ]
    )  # fmt: skip


Progress = list[tuple[int, int]]


@dataclass
class Case:
    content: bytes
    format: Format
    # What the case is there for, so that it cannot pass by reporting nothing.
    shows: Callable[[Outcome, Progress], bool]
    payer: bool = True
    plans: bytes | None = None
    on_error: OnError = OnError.SKIP
    dry_run: bool = False


def read_in_steps(progress: Progress) -> bool:
    """Progress every 1,000 records, then at the end, the bytes read growing."""
    records = [done for done, _ in progress]
    read = [done for _, done in progress]
    return records[:2] == [1000, 2000] and 0 < read[0] < read[1] <= read[-1]


CASES = {
    "qhp with its plans.json": Case(
        fixture("qhp/physical_therapists.json"),
        Format.QHP,
        lambda outcome, _: outcome.counts.plans_created == 5 and outcome.counts.warnings == 4,
        plans=fixture("qhp/plans.json"),
    ),
    "plan-net ndjson": Case(
        fixture("plannet/physical_therapists.ndjson"),
        Format.FHIR,
        lambda outcome, _: outcome.counts.records_invalid == 1 and outcome.committed,
    ),
    "plan-net bundle, dry run": Case(
        fixture("plannet/physical_therapists_bundle.json"),
        Format.FHIR,
        lambda outcome, _: outcome.succeeded and not outcome.committed,
        dry_run=True,
    ),
    "nppes sample": Case(
        fixture("nppes/nppes_sample_practitioners.csv"),
        Format.NPPES,
        lambda outcome, progress: outcome.committed and read_in_steps(progress),
        payer=False,
    ),
    "nppes cut short": Case(
        nppes_cut_short(),
        Format.NPPES,
        lambda outcome, progress: "(line 1601)" in outcome.message and len(progress) == 1,
        payer=False,
    ),
    "roster csv, refusals skipped": Case(
        roster_with_refusals(),
        Format.CSV,
        lambda outcome, progress: outcome.counts.records_invalid == 2 and read_in_steps(progress),
    ),
    "roster csv, refusals rejected": Case(
        roster_with_refusals(),
        Format.CSV,
        lambda outcome, _: outcome.error_count == 2 and not outcome.committed,
        on_error=OnError.REJECT,
    ),
}


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the reading processes started, each once it has started."""
    started: list[int] = []

    class Counted(reading._InChild):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            assert self.process.pid is not None
            started.append(self.process.pid)

    monkeypatch.setattr(reading, "_InChild", Counted)
    return started


def run(case: Case, backend: Backend, tmp_path: Path, payer_id: int) -> tuple[Outcome, Progress]:
    progress: Progress = []
    outcome = import_bytes(
        backend.engine,
        tmp_path,
        case.content,
        payer_id=payer_id if case.payer else None,
        format=case.format,
        plans=case.plans,
        on_error=case.on_error,
        dry_run=case.dry_run,
        progress=lambda records, read: progress.append((records, read)),
    )
    return outcome, progress


@pytest.mark.parametrize("name", CASES)
def test_an_import_reports_the_same_whichever_process_reads_the_file(
    name: str,
    backend: Backend,
    payer_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[int],
) -> None:
    case = CASES[name]
    threshold = reading.CHILD_THRESHOLD_BYTES
    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", 0)
    child, progress_child = run(case, backend, tmp_path, payer_id)
    assert case.shows(child, progress_child), (child, progress_child)
    assert len(children) == 1
    after_child = checksum(backend.engine, *ROSTER)

    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", threshold)
    here, progress_here = run(case, backend, tmp_path, payer_id)
    assert len(children) == 1  # read here: no other child

    assert progress_here == progress_child
    if child.committed:
        # The same records again, read here: had the child lost or changed a value
        # on its way, this import would have written it.
        assert checksum(backend.engine, *ROSTER) == after_child
        assert here.counts.therapists_created == here.counts.therapists_updated == 0
        assert report(here) == report(child)
    else:
        assert here == child
        assert checksum(backend.engine, *ROSTER) == after_child


def report(outcome: Outcome) -> tuple[Any, ...]:
    """All an import reports but what it wrote (a second import writes nothing)."""
    counts = outcome.counts
    return (
        outcome.message,
        outcome.issues,
        outcome.skipped,
        outcome.error_count,
        outcome.warning_count,
        outcome.records_done,
        (counts.records_imported, counts.records_skipped, counts.records_invalid, counts.warnings),
    )


def test_small_uploads_are_read_here_and_large_ones_in_a_child(
    backend: Backend,
    payer_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[int],
) -> None:
    content = roster_csv([row(1, "loop")])
    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", len(content) + 1)
    assert import_bytes(backend.engine, tmp_path, content, payer_id=None).succeeded
    assert children == []
    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", len(content))
    assert import_bytes(backend.engine, tmp_path, content, payer_id=None).succeeded
    assert len(children) == 1


def big_roster(rows: int) -> bytes:
    return roster_csv(
        [row(n, "lakeview", "Silver PPO", plan_type="commercial") for n in range(1, rows + 1)]
    )


def test_a_reading_process_that_dies_fails_the_import_and_writes_nothing(
    backend: Backend,
    payer_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[int],
) -> None:
    before = checksum(backend.engine, *ROSTER)
    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", 0)

    def kill_the_child(records: int, _read: int) -> None:
        if records == 1000:  # the child is at most a few chunks ahead: still reading
            os.kill(children[0], signal.SIGKILL)

    outcome = import_bytes(
        backend.engine, tmp_path, big_roster(20_000), payer_id=payer_id, progress=kill_the_child
    )
    assert not outcome.succeeded
    assert not outcome.committed
    assert outcome.message == (
        "the import stopped: the process reading the file ended unexpectedly "
        "(killed by SIGKILL); nothing was written"
    )
    assert checksum(backend.engine, *ROSTER) == before
    assert multiprocessing.active_children() == []


class _Killed:
    """A reading process that was killed (what `_InChild` asks of its process)."""

    exitcode = -signal.SIGKILL

    def join(self, _timeout: float) -> None:
        pass


def test_a_message_cut_short_by_the_readers_death_fails_the_import() -> None:
    """Killed while sending a chunk, the child leaves the pipe ending inside a message:
    that is the same failure as a pipe ending between two messages."""
    receiving, sending = multiprocessing.Pipe(duplex=False)
    os.write(sending.fileno(), struct.pack("!i", 1000) + b"the first bytes of a chunk")
    sending.close()
    child = object.__new__(reading._InChild)
    child.receiving, child.process = receiving, _Killed()  # type: ignore[assignment]
    with pytest.raises(reading.ReadingFailed, match=r"ended unexpectedly \(killed by SIGKILL\)"):
        next(child.records())
    receiving.close()


class BrokenCodes(dict[str, str]):
    """A vocabulary whose look-ups fail: a checker bug, as the child would meet it."""

    def get(self, *_: object) -> Any:
        raise RuntimeError("the vocabulary broke")


def test_a_reading_process_that_raises_fails_the_import_and_writes_nothing(
    backend: Backend,
    payer_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = checksum(backend.engine, *ROSTER)
    read = vocabulary

    def broken(session: Session) -> Vocabulary:
        good = read(session)
        return Vocabulary(
            specialties=good.specialties,
            specialty_codes=BrokenCodes(good.specialty_codes),
            conditions=good.conditions,
            certifications=good.certifications,
            languages=good.languages,
            services=good.services,
        )

    monkeypatch.setattr(service, "vocabulary", broken)
    monkeypatch.setattr(reading, "CHILD_THRESHOLD_BYTES", 0)
    outcome = import_bytes(backend.engine, tmp_path, big_roster(10), payer_id=payer_id)
    assert not outcome.succeeded
    assert outcome.message == (
        "the import stopped: the process reading the file failed (RuntimeError); "
        "nothing was written"
    )
    assert checksum(backend.engine, *ROSTER) == before
    # Where it failed is in the log, for whoever runs the service.
    assert "the vocabulary broke" in caplog.text


def every_field_set(value: Any) -> bool:
    return all(getattr(value, f.name) not in (None, [], f.default) for f in fields(value))


def test_records_cross_the_pipe_unchanged() -> None:
    plans = [
        PlanRef("12345IL0010001", "preferred", date(2026, 1, 1), date(2026, 12, 31),
                datetime(2026, 10, 1, tzinfo=UTC), "plans[0]", 7),
        PlanRef("Gold HMO", "tier 2", date(2025, 7, 1), date(2027, 6, 30),
                datetime(2026, 10, 2, 13, 45, 10, 123456, tzinfo=UTC), "plans[2]", 9),
    ]  # fmt: skip
    provided = Site(
        address_key="2300 n lincoln ave ste 200|chicago|il|60614",
        address_line1="2300 N Lincoln Ave", address_line2="Suite 200", city="Chicago",
        state="IL", zip="60614-1234", latitude=41.9245, longitude=-87.6468,
        geocode_precision=GeocodePrecision.PROVIDED, name="Lakeview Neuro",
        phone="312-555-0147", fax="312-555-0148", facility_type="private_practice",
        accepting_new_patients=True, telehealth=True, plans=plans,
    )  # fmt: skip
    at_zip = Site(
        address_key="5 elm st|evanston|il|60201", address_line1="5 Elm St", address_line2=None,
        city="Evanston", state="IL", zip="60201", latitude=42.05, longitude=-87.69,
        geocode_precision=GeocodePrecision.CITY_CENTROID, name=None, phone=None, fax=None,
        facility_type=None, accepting_new_patients=False, telehealth=None, plans=[],
    )  # fmt: skip
    provider = Provider(
        npi="1234567893", first_name="Ana", middle_name="María", last_name="García",
        name_suffix="Jr", credentials=["PT", "DPT"], gender="female",
        specialties=["2251N0400X", "225100000X"], languages=["en", "es"],
        certifications=["NCS"], conditions=["stroke"], services=["dry-needling"],
        sites=[provided, at_zip],
    )  # fmt: skip
    # A field added to these without a place in the encoding fails here.
    assert all(map(every_field_set, [provider, provided, *plans]))
    items: list[reading.Item] = [
        reading.CheckedRecord(0, 2, Checked(provider, [], [Problem("sites[1].fax", "left out")])),
        reading.CheckedRecord(1, None, Checked(None, [Problem("npi", "is required")], [])),
        PlanRecord(2, 9, "gold", "Gold HMO", "commercial", None, [Problem("name", "too long")]),
        PlanRecord(3, None, "12345IL0010001", None, None, "12345IL0010001"),
        Skipped(4, 12, "a facility, not an individual provider"),
        Skipped(5, 13, "NPI deactivated", withdrawn="1234567893"),
    ]
    sent = marshal.dumps([reading._encode(item) for item in items])
    crossed = [reading._decode(item) for item in marshal.loads(sent)]  # noqa: S302 (made above)
    assert crossed == items
    first = crossed[0]
    assert isinstance(first, reading.CheckedRecord)
    assert first.checked.provider is not None
    moment = first.checked.provider.sites[0].plans[0].verified_at
    assert moment is not None
    assert moment.tzinfo is UTC
