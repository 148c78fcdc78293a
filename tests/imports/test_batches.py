"""A file of many batches imports as one of a single batch does.

Batches are written one after the other; on PostgreSQL each in a thread of its
own while the next is read (app.imports.roster._Writer). Plans declared half-way,
refused records, a file that breaks off and a failing write must all end as they
do when everything happens in one thread, one batch at a time.
"""

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.imports import roster
from app.imports.service import OnError
from app.therapists.models import Therapist
from tests.conftest import Backend
from tests.imports.helpers import import_bytes, roster_csv, roster_state, row


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roster, "BATCH_SIZE", 3)


def many_batches() -> bytes:
    """30 therapists; every tenth declares a plan of its own, half-way through the file."""
    sites = ("lakeview", "loop", "evanston")
    rows = []
    for n in range(1, 31):
        plan, kind = ("Silver PPO", "commercial") if n % 10 else (f"Plan {n}", "medicaid")
        rows.append(row(n, sites[n % 3], plan, plan_type=kind))
        rows.append(row(n, sites[(n + 1) % 3], "Silver PPO"))
    return roster_csv(rows)


def therapists(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Therapist)) or 0


def test_small_batches_write_what_one_batch_writes(
    payer_id: int, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = import_bytes(backend.engine, tmp_path, many_batches(), payer_id=payer_id)
    assert whole.succeeded, whole.issues
    expected = roster_state(backend.engine, payer_id)
    # The same file again, now into a directory that has it, in batches of three.
    monkeypatch.setattr(roster, "BATCH_SIZE", 3)
    again = import_bytes(backend.engine, tmp_path, many_batches(), payer_id=payer_id)
    assert again.succeeded, again.issues
    assert again.counts.participations_unchanged == whole.counts.participations_created == 60
    assert roster_state(backend.engine, payer_id) == expected


@pytest.mark.usefixtures("small_batches")
def test_small_batches_into_an_empty_directory(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    outcome = import_bytes(backend.engine, tmp_path, many_batches(), payer_id=payer_id)
    assert outcome.succeeded, outcome.issues
    counts = outcome.counts
    assert (counts.therapists_created, counts.practices_created) == (30, 60)
    assert (counts.participations_created, counts.plans_created) == (60, 4)
    assert len(roster_state(backend.engine, payer_id)) == 60


@pytest.mark.usefixtures("small_batches")
def test_a_refused_record_after_several_batches_writes_nothing(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    content = many_batches() + roster_csv([row(40, "loop", zip="6061")]).split(b"\n", 1)[1]
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=payer_id)
    assert not outcome.succeeded
    assert outcome.counts.records_invalid == 1
    assert therapists(db) == 0
    skipped = import_bytes(
        backend.engine, tmp_path, content, payer_id=payer_id, on_error=OnError.SKIP
    )
    assert skipped.succeeded, skipped.issues
    assert therapists(db) == 30


@pytest.mark.usefixtures("small_batches")
def test_a_file_that_breaks_off_after_several_batches_writes_nothing(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int
) -> None:
    content = many_batches() + b"1,2,3," * 40 + b"\n"  # more cells than the header has
    outcome = import_bytes(backend.engine, tmp_path, content, payer_id=payer_id)
    assert not outcome.succeeded
    assert "cannot be read" in outcome.message
    assert therapists(db) == 0


@pytest.mark.usefixtures("small_batches")
def test_a_write_that_fails_fails_the_import_and_writes_nothing(
    db: Session, backend: Backend, tmp_path: Path, payer_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    write = roster._Batch.write

    def fail_the_fourth(batch: roster._Batch) -> None:
        written.append(len(batch.providers))
        if len(written) == 4:
            raise RuntimeError("the disk is full")
        write(batch)

    monkeypatch.setattr(roster._Batch, "write", fail_the_fourth)
    with pytest.raises(RuntimeError, match="the disk is full"):
        import_bytes(backend.engine, tmp_path, many_batches(), payer_id=payer_id)
    assert therapists(db) == 0


def test_an_address_this_import_created_counts_as_created_once(
    payer_id: int, backend: Backend, tmp_path: Path, small_batches: None
) -> None:
    # 30 therapists at three addresses, over ten batches: three locations, all new.
    content = roster_csv([row(n, ("lakeview", "loop", "evanston")[n % 3]) for n in range(1, 31)])
    first = import_bytes(backend.engine, tmp_path, content, payer_id=None)
    assert first.succeeded, first.issues
    counts = first.counts
    assert (counts.locations_created, counts.locations_unchanged) == (3, 0)
    # Again: each batch that lists one of them finds it as it was.
    again = import_bytes(backend.engine, tmp_path, content, payer_id=None).counts
    assert (again.locations_created, again.locations_updated) == (0, 0)
    assert again.locations_unchanged == 30
