"""The API's request and response bodies, as pydantic models: they are its OpenAPI schema too."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("holds a NUL character (\\x00), which the service cannot store")
    return text


StoredText = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": "^[^\\x00]*$"})]
"""Text the state database keeps as it was sent: PostgreSQL refuses NUL characters in text."""


class JobSubmission(BaseModel):
    """A job to run."""

    model_config = ConfigDict(extra="forbid")

    job: Union[str, dict[str, Any]] = Field(description="The job file: its YAML text, or the same structure as a "
                                            "JSON object. A v1 migration job or a v2 flow.")
    name: Optional[Annotated[StoredText, Field(max_length=200)]] = Field(None, description="Default: the job's own "
                                                                         "name.")
    labels: dict[StoredText, StoredText] = Field(default_factory=dict, description="Free labels to find the job by, "
                                                 "e.g. {\"team\": \"billing\"}.")


class Counts(BaseModel):
    read: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0


class Progress(BaseModel):
    rows_done: int
    rows_total: Optional[int]
    bytes_done: int
    bytes_total: Optional[int]
    rows_per_s: Optional[float] = Field(description="Since the job started; null before it has.")
    eta_s: Optional[float] = Field(description="Seconds left at that rate, when the total is known.")


class JobOut(BaseModel):
    """A job as the API shows it. Never its text: that may hold secrets."""

    id: uuid.UUID
    name: Optional[str]
    labels: dict[str, str]
    status: str = Field(description="queued, running, cancelling, cancelled, succeeded, failed or partial.")
    counts: Counts
    progress: Progress
    attempts: int
    created_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    error: Optional[str]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: Optional[str] = Field(description="Pass as cursor for the next page; null on the last page.")


class ProblemOut(BaseModel):
    message: str
    file: Optional[str] = None
    line: Optional[int] = None
    column: Optional[int] = None
    path: Optional[str] = Field(None, description="For a job sent as JSON: where in the document.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable: unauthorized, not_found, job_invalid, request_invalid, conflict, "
                      "job_finished, idempotency_conflict, rate_limited, internal...")
    message: str
    problems: list[ProblemOut] = []


class ErrorOut(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str = Field(description="ok; degraded when the broker cannot be reached or no worker answers; "
                        "unavailable when the state database cannot be reached.")
    version: str
    database: str = Field(description="reachable or unreachable.")
    database_revision: Optional[str]
    executor: str
    broker: Optional[str] = Field(None, description="reachable or unreachable when jobs go through a broker "
                                  "(Celery); null otherwise.")
    workers: Optional[int] = Field(None, description="Workers that answered: 1 (this server) in-process; the Celery "
                                   "workers that answered a ping within 0.3 s; null when the executor cannot tell.")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or one that is not valid."},
    404: {"model": ErrorOut, "description": "No such job for this tenant."},
    429: {"model": ErrorOut, "description": "The tenant has made its requests per minute: try again after the "
          "Retry-After header's seconds."},
}


class LogEntryOut(BaseModel):
    """What happened to one record: rejected (or skipped), where it came from and why."""

    id: int
    outcome: str = Field(description="rejected, skipped, inserted, updated or loaded.")
    key: Optional[str] = Field(description="The record's key, when the job knows it.")
    batch: Optional[int] = Field(description="The batch the record belonged to, when recorded.")
    source_location: Optional[str] = Field(description="Where in the source, e.g. 'people.csv, line 12, record 11'.")
    column: Optional[str] = Field(description="The column whose value was refused.")
    value: Optional[str] = Field(description="That value as read, passwords masked.")
    error: Optional[str]
    retry_count: int
    created_at: datetime
    updated_at: datetime


class LogPage(BaseModel):
    """A page of a job's record log, oldest entry first."""

    entries: list[LogEntryOut]
    next_cursor: Optional[str] = Field(description="Pass as cursor for the next page; null on the last page.")
    note: Optional[str] = Field(None, description="Set when a key was asked for and no entry has it: why that may be.")


class WebhookRegistration(BaseModel):
    """A URL to tell of job events."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http:// or https://; a public address unless an admin allowed "
                     "the tenant private addresses.")
    events: Optional[list[str]] = Field(None, description="Default: every event (job.succeeded, job.failed, "
                                        "job.partial, job.cancelled, batch.dead_lettered).")
    secret: Optional[str] = Field(None, min_length=16, max_length=100, description="The signing secret; default: "
                                  "a random one, answered once.")


class WebhookOut(BaseModel):
    """A webhook as listings show it: never its signing secret."""

    id: int
    url: str = Field(description="Credentials in it (a password, ?token=...) masked.")
    events: list[str]
    created_at: datetime


class NewWebhookOut(WebhookOut):
    """A webhook just registered, with its signing secret: the only answer that shows it."""

    secret: str = Field(description="Signs every delivery (X-Portl-Signature); shown this once only.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    """One event sent, or to be sent, to a webhook."""

    id: int = Field(description="Sent as X-Portl-Delivery: the same on every attempt.")
    event: str
    job_id: Optional[uuid.UUID] = Field(description="Null for a ping.")
    status: str = Field(description="pending, delivered or failed (out of attempts).")
    attempts: int
    response_status: Optional[int] = Field(description="The receiver's HTTP status at the last attempt.")
    last_error: Optional[str]
    next_retry_at: Optional[datetime] = Field(description="When a pending delivery is next tried.")
    created_at: datetime
    delivered_at: Optional[datetime]


class DeliveryPage(BaseModel):
    """A page of a webhook's deliveries, newest first."""

    deliveries: list[DeliveryOut]
    next_cursor: Optional[str] = Field(description="Pass as cursor for the next page; null on the last page.")


class FileOut(BaseModel):
    """A file just uploaded, in place under its path."""

    path: str = Field(description="Relative to the tenant's files folder, as jobs name it (crm/people.csv).")
    size: int = Field(description="In bytes.")
    sha256: str = Field(description="The SHA-256 of what was stored, in hex: compare it with your copy's.")
    uploaded_at: datetime


class FileEntryOut(BaseModel):
    """A file of the tenant's files folder."""

    path: str
    size: int
    modified: datetime


class FileList(BaseModel):
    """The tenant's files, by path."""

    files: list[FileEntryOut]
