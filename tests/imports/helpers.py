"""Building roster files and reading back what an import left, for the import tests."""

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from app.imports.formats import Format
from app.imports.roster import Mode
from app.imports.service import ImportRequest, OnError, Outcome, Progress, run_import
from app.locations.models import Location
from app.networks.models import Participation, Plan
from app.therapists.models import Practice, Therapist
from tests.factories import make_npi

COLUMNS = (
    "npi", "first_name", "last_name", "specialties", "languages", "conditions",
    "location_name", "address_line1", "address_line2", "city", "state", "zip",
    "latitude", "longitude", "phone", "facility_type", "accepting_new_patients",
    "telehealth", "plan", "plan_type", "network_tier", "effective_from", "effective_to",
    "verified_at",
)  # fmt: skip

# Two Chicago clinics and one in Evanston; coordinates given, as a payer's file would.
SITES = {
    "lakeview": {"address_line1": "2300 N Lincoln Ave", "address_line2": "Suite 200",
                 "city": "Chicago", "state": "IL", "zip": "60614",
                 "latitude": "41.9245", "longitude": "-87.6468",
                 "location_name": "Lakeview Neuro Rehab"},
    "loop": {"address_line1": "55 E Monroe St", "address_line2": "", "city": "Chicago",
             "state": "IL", "zip": "60603", "latitude": "41.8807", "longitude": "-87.6252",
             "location_name": "Loop Neuro PT"},
    "evanston": {"address_line1": "1603 Orrington Ave", "address_line2": "", "city": "Evanston",
                 "state": "IL", "zip": "60201", "latitude": "", "longitude": "",
                 "location_name": "North Shore Balance"},
}  # fmt: skip


def row(
    seed: int,
    site: str,
    plan: str = "",
    *,
    plan_type: str = "",
    first_name: str = "Ana",
    last_name: str | None = None,
    **overrides: str,
) -> dict[str, str]:
    """One roster row: therapist `seed` at `site` in `plan`."""
    values = {
        "npi": make_npi(seed),
        "first_name": first_name,
        "last_name": last_name or f"Therapist{seed}",
        "specialties": "neurology",
        "languages": "en;es",
        "conditions": "peripheral-neuropathy",
        "phone": "312-555-0147",
        "facility_type": "private_practice",
        "accepting_new_patients": "yes",
        "telehealth": "no",
        "plan": plan,
        "plan_type": plan_type,
        "network_tier": "preferred" if plan else "",
        "effective_from": "",
        "effective_to": "",
        "verified_at": "2026-10-01" if plan else "",
    }
    return values | SITES[site] | overrides


def roster_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def import_bytes(
    engine: Engine,
    tmp_path: Path,
    content: bytes,
    *,
    payer_id: int | None,
    format: Format = Format.CSV,
    mode: Mode = Mode.REPLACE,
    dry_run: bool = False,
    on_error: OnError = OnError.REJECT,
    plans: bytes | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Runs an import of `content` in this process, as a worker would."""
    upload = tmp_path / f"upload-{hashlib.sha1(content).hexdigest()[:8]}"  # noqa: S324
    upload.write_bytes(content)
    plans_upload = None
    if plans is not None:
        plans_upload = tmp_path / "plans.json"
        plans_upload.write_bytes(plans)
    request = ImportRequest(
        format=format,
        mode=mode,
        payer_id=payer_id,
        upload=upload,
        plans_upload=plans_upload,
        dry_run=dry_run,
        on_error=on_error,
    )
    return run_import(engine, request, import_dir=tmp_path, progress=progress)


def roster_state(engine: Engine, payer_id: int | None = None) -> list[tuple[Any, ...]]:
    """Who is in which of a payer's plans where, today: (npi, address line 1, plan, tier, ends)."""
    with Session(engine) as session:
        statement = (
            select(
                Therapist.npi,
                Location.address_line1,
                Plan.name,
                Participation.network_tier,
                Participation.effective_to,
            )
            .join(Practice, Practice.therapist_id == Therapist.id)
            .join(Location, Location.id == Practice.location_id)
            .join(Participation, Participation.practice_id == Practice.id)
            .join(Plan, Plan.id == Participation.plan_id)
        )
        if payer_id is not None:
            statement = statement.where(Plan.payer_id == payer_id)
        return sorted(tuple(r) for r in session.execute(statement))


def checksum(engine: Engine, *tables: str) -> str:
    """A digest of whole tables (every column, updated_at included), in id order."""
    digest = hashlib.sha256()
    with engine.connect() as connection:
        for table in tables:
            for values in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")):  # noqa: S608
                digest.update(repr(tuple(values)).encode())
    return digest.hexdigest()
