from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from app.auth.dependencies import PrincipalDep
from app.auth.service import Principal
from app.db import SessionDep
from app.errors import WRITE_ERRORS, InvalidFile, InvalidInput, Problem
from app.fields import MAX_ID, PathId
from app.imports import jobs
from app.imports.formats import FORMAT_DESCRIPTIONS, PAYER_FORMATS, Format, check_file
from app.imports.models import ImportJob, IssueLevel, JobStatus
from app.imports.records import ImportFileError
from app.imports.roster import Mode
from app.imports.schemas import (
    ImportCounts,
    ImportIssue,
    ImportIssuePage,
    ImportJobPage,
    ImportJobRead,
    ImportProgress,
)
from app.imports.service import ImportRequest, OnError
from app.imports.uploads import spool
from app.networks import service as network_service
from app.therapists.service import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", tags=["imports"])

_FORMATS = "; ".join(f"`{f.value}`: {d}" for f, d in FORMAT_DESCRIPTIONS.items())
_UPLOAD_ERRORS: dict[int | str, dict[str, object]] = {
    202: {
        "description": "The file is queued as an import job",
        "headers": {
            "Location": {
                "description": "The job's address: `/v1/imports/{id}`",
                "schema": {"type": "string"},
            }
        },
    },
    **WRITE_ERRORS,
    404: {"model": Problem, "description": "No such payer"},
    413: {"model": Problem, "description": "The file is over the import size limit"},
    415: {
        "model": Problem,
        "description": "The body is not the file as it is: compressed (Content-Encoding) or a form",
    },
    422: {
        "model": Problem,
        "description": "Invalid parameters, or a file that is empty, not UTF-8, "
        "not the declared format or cut short",
    },
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The roster file itself (not multipart), UTF-8 with or without a BOM.",
        "content": {
            # A QHP array or a FHIR Bundle: the JSON document itself, not a JSON string.
            "application/json": {"schema": {"type": ["array", "object"]}},
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

FormatQuery = Annotated[Format, Query(description=f"The file's format. {_FORMATS}")]
ModeQuery = Annotated[
    Mode,
    Query(
        description="`replace`: the payer's participations become exactly what the file "
        "lists (the rest are ended); `merge`: only add and update"
    ),
]
DryRunQuery = Annotated[bool, Query(description="Check and count everything, write nothing")]
OnErrorQuery = Annotated[
    OnError,
    Query(
        description="`reject`: one refused record rejects the import; "
        "`skip`: import the valid records and report the rest"
    ),
]


@router.post(
    "/payers/{payer_id}/imports",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_UPLOAD_ERRORS,
    openapi_extra=_UPLOAD_BODY,
)
async def import_payer_roster(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    payer_id: PathId,
    format: FormatQuery,
    mode: ModeQuery = Mode.REPLACE,
    dry_run: DryRunQuery = False,
    on_error: OnErrorQuery = OnError.REJECT,
) -> ImportJobRead:
    """Upload a payer's network roster, imported in the background (admin or the payer's key)."""
    principal.require_payer(payer_id)
    if format not in PAYER_FORMATS:
        raise InvalidInput.at(
            ["query", "format"],
            f"{format.value} carries no networks; import it with POST /v1/imports (admin)",
        )
    return await _upload(request, response, principal, payer_id, format, mode, dry_run, on_error)


@router.post(
    "/imports",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_UPLOAD_ERRORS,
    openapi_extra=_UPLOAD_BODY,
)
async def import_national_roster(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    format: FormatQuery,
    dry_run: DryRunQuery = False,
    on_error: OnErrorQuery = OnError.REJECT,
) -> ImportJobRead:
    """Upload therapists without networks: the NPPES file, or the CSV template (admin)."""
    principal.require_admin()
    if format not in (Format.NPPES, Format.CSV):
        raise InvalidInput.at(
            ["query", "format"], f"{format.value} lists networks; import it for its payer"
        )
    return await _upload(request, response, principal, None, format, Mode.MERGE, dry_run, on_error)


async def _upload(
    request: Request,
    response: Response,
    principal: Principal,
    payer_id: int | None,
    format: Format,
    mode: Mode,
    dry_run: bool,
    on_error: OnError,
) -> ImportJobRead:
    settings = request.app.state.settings
    factory = request.app.state.sessionmaker
    if payer_id is not None:
        await anyio.to_thread.run_sync(_require_payer, factory, payer_id)
    path, size = await spool(request, settings.import_dir, settings.max_import_bytes)
    try:
        await anyio.to_thread.run_sync(_check_file, format, path)
    except ImportFileError as error:
        path.unlink(missing_ok=True)
        raise InvalidFile(error.message) from error
    job_request = ImportRequest(
        format=format,
        mode=mode,
        payer_id=payer_id,
        upload=path,
        dry_run=dry_run,
        on_error=on_error,
    )
    try:
        job = await anyio.to_thread.run_sync(
            _queue, factory, job_request, principal, size, settings.import_dir
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    worker = getattr(request.app.state, "import_worker", None)
    if worker is not None:
        worker.wake.set()
    response.headers["Location"] = f"/v1/imports/{job.id}"
    return job


def _require_payer(factory: sessionmaker[Session], payer_id: int) -> None:
    with factory() as session:
        network_service.get_payer(session, payer_id)


def _check_file(format: Format, path: Path) -> None:
    with path.open("rb") as stream:
        check_file(format, stream)


def _queue(
    factory: sessionmaker[Session],
    request: ImportRequest,
    principal: Principal,
    size: int,
    import_dir: Path,
) -> ImportJobRead:
    with factory() as session, session.begin():
        job = jobs.create_job(
            session, request=request, api_key_id=principal.key_id, bytes_total=size
        )
        return to_read(session, job, import_dir)


@router.get("/imports", responses=WRITE_ERRORS)
def list_imports(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    payer_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this payer's jobs")
    ] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ImportJobPage:
    """Import jobs the key may see, newest first (a payer key sees its own payer's only)."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = jobs.list_jobs(
        session, principal, payer_id=payer_id, status=status_, before=after, limit=limit + 1
    )
    next_cursor = encode_cursor(found[limit - 1].id) if len(found) > limit else None
    return ImportJobPage(
        items=[
            to_read(session, job, _import_dir(request), with_issues=False) for job in found[:limit]
        ],
        next_cursor=next_cursor,
    )


@router.get("/imports/{job_id}", responses={**WRITE_ERRORS, 404: {"model": Problem}})
def get_import(
    request: Request, session: SessionDep, principal: PrincipalDep, job_id: PathId
) -> ImportJobRead:
    """An import's status, progress, counts, first problems and timings."""
    return to_read(session, jobs.visible_job(session, principal, job_id), _import_dir(request))


def _import_dir(request: Request) -> Path:
    """Where uploads wait, and where a worker process leaves a job's progress (SQLite)."""
    import_dir: Path = request.app.state.settings.import_dir
    return import_dir


@router.get("/imports/{job_id}/errors", responses={**WRITE_ERRORS, 404: {"model": Problem}})
def list_import_errors(
    session: SessionDep,
    principal: PrincipalDep,
    job_id: PathId,
    level: Annotated[IssueLevel | None, Query(description="Only errors or only warnings")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ImportIssuePage:
    """An import's problems in file order: line or record index, field and message."""
    job = jobs.visible_job(session, principal, job_id)
    after = decode_cursor(cursor) if cursor is not None else None
    items, next_cursor = _issues(session, job.id, level=level, after=after, limit=limit)
    return ImportIssuePage(items=items, next_cursor=next_cursor)


def _issues(
    session: Session, job_id: int, *, level: IssueLevel | None, after: int | None, limit: int
) -> tuple[list[ImportIssue], str | None]:
    found = jobs.list_issues(session, job_id, level=level, after=after, limit=limit + 1)
    next_cursor = encode_cursor(found[limit - 1].id) if len(found) > limit else None
    return [ImportIssue.model_validate(issue) for issue in found[:limit]], next_cursor


def to_read(
    session: Session, job: ImportJob, import_dir: Path, *, with_issues: bool = True
) -> ImportJobRead:
    running = job.status is JobStatus.RUNNING
    live = jobs.live_progress(job.id, import_dir) if running else None
    issues, next_cursor = (
        _issues(session, job.id, level=None, after=None, limit=20) if with_issues else ([], None)
    )
    finished = job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    return ImportJobRead(
        id=job.id,
        payer_id=job.payer_id,
        format=Format(job.format),
        mode=Mode(job.mode),
        dry_run=job.dry_run,
        on_error=OnError(job.on_error),
        status=job.status,
        message=job.message,
        progress=ImportProgress(
            records_done=live.records_done if live else job.records_done,
            bytes_done=live.bytes_done if live else job.bytes_done,
            bytes_total=job.bytes_total,
        ),
        counts=ImportCounts.model_validate(job.counts) if finished and job.counts else None,
        error_count=job.error_count,
        warning_count=job.warning_count,
        errors=issues,
        errors_next_cursor=next_cursor,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=jobs.elapsed_seconds(job.started_at, job.finished_at),
    )
