from datetime import datetime

from pydantic import Field

from app.imports.formats import Format
from app.imports.models import IssueLevel, JobStatus
from app.imports.roster import Mode
from app.imports.service import OnError
from app.schemas import ReadModel


class ImportProgress(ReadModel):
    records_done: int = Field(description="Records read so far (plans, providers, skipped rows)")
    bytes_done: int
    bytes_total: int | None


class SkippedRecord(ReadModel):
    """A record the import left out of the directory, and why."""

    line: int | None
    record_index: int | None
    reason: str


class ImportCounts(ReadModel):
    therapists_created: int = 0
    therapists_updated: int = 0
    therapists_unchanged: int = 0
    therapists_removed: int = Field(
        default=0,
        description="National file only: therapists it had seeded whose NPI it now withdraws "
        "(deactivated, no longer a physical therapist), listed in no payer's network",
    )
    locations_created: int = 0
    locations_updated: int = 0
    locations_unchanged: int = 0
    practices_created: int = 0
    practices_updated: int = 0
    participations_created: int = 0
    participations_updated: int = 0
    participations_unchanged: int = 0
    participations_ended: int = Field(
        default=0, description="Participations of the payer's plans the file no longer lists"
    )
    plans_created: int = 0
    plans_updated: int = 0
    records_imported: int = 0
    records_skipped: int = Field(
        default=0, description="Records outside the directory (not a PT, a facility…)"
    )
    records_invalid: int = Field(default=0, description="Records refused; see `errors`")
    warnings: int = 0
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)
    skipped_examples: dict[str, list[SkippedRecord]] = Field(
        default_factory=dict,
        description="The first records skipped for each reason (up to 5), with the reason's "
        "detail, such as the specialty texts that name no physical therapy",
    )


class ImportIssue(ReadModel):
    """A problem with one record: where, which field, why; errors refuse the record."""

    id: int
    level: IssueLevel
    line: int | None = Field(description="1-based line in the file, where the format has lines")
    record_index: int | None = Field(description="0-based position of the record in the file")
    field: str | None
    message: str


class ImportIssuePage(ReadModel):
    items: list[ImportIssue]
    next_cursor: str | None


class ImportJobRead(ReadModel):
    id: int
    payer_id: int | None
    format: Format
    mode: Mode
    dry_run: bool
    on_error: OnError
    status: JobStatus
    message: str | None = Field(description="What happened, in a sentence")
    progress: ImportProgress
    counts: ImportCounts | None = Field(description="Set when the job has finished")
    error_count: int
    warning_count: int
    errors: list[ImportIssue] = Field(description="The first problems; page with /errors")
    errors_next_cursor: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="Running time so far, or in all")


class ImportJobPage(ReadModel):
    items: list[ImportJobRead]
    next_cursor: str | None
