"""``/api/v1/jobs/{id}/logs``: a job's record log, the records it rejected (or skipped) with where
they came from and why. A page at a time as JSON, or every matching entry as NDJSON to download
(``Accept: application/x-ndjson`` or ``?format=ndjson``). ``?key=K`` answers "why is record K
not in the destination": its entries, or none with a note saying what that means."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, select

from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import _own_job, tenant_session
from portl.service.api.schemas import ERRORS, ErrorOut, LogEntryOut, LogPage
from portl.service.models import RecordLogEntry
from portl.service.status import Outcome
from portl.service.tenants import Caller

router = APIRouter(prefix="/api/v1/jobs", tags=["record log"])
MAX_PAGE = 500
MAX_ID = 2**63 - 1
"""The largest id a row can have (the columns are 64-bit): a larger one would fail in the database."""
NDJSON = "application/x-ndjson"
_STREAM_CHUNK = 500


@router.get("/{job_id}/logs", response_model=LogPage, summary="A job's record log", responses={
    200: {"content": {NDJSON: {"schema": {"type": "string", "description": "One LogEntryOut per line."}}},
          "description": "A page as JSON; with Accept: application/x-ndjson or ?format=ndjson, every matching "
                         "entry, one JSON object per line."},
    422: {"model": ErrorOut, "description": "A filter or the cursor is malformed."}, **ERRORS})
def job_logs(
    job_id: uuid.UUID,
    request: Request,
    caller: CurrentCaller,
    outcome: Annotated[Optional[str], Query(description="Only entries with this outcome, e.g. rejected.")] = None,
    batch: Annotated[Optional[int], Query(ge=0, le=MAX_ID, description="Only the entries of this batch.")] = None,
    key: Annotated[Optional[str], Query(description="Only the entries of the record with this key.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[Optional[str], Query(description="next_cursor of the previous page.")] = None,
    format: Annotated[Optional[Literal["json", "ndjson"]], Query(description="ndjson: every matching entry, "
                                                                 "streamed (as Accept: application/x-ndjson).")] = None,
    accept: Annotated[Optional[str], Header(include_in_schema=False)] = None,
) -> LogPage | StreamingResponse:
    """The records the job did not load as they were, oldest first: outcome, key when known,
    source location, column, value (passwords masked), error, retries and times."""
    if outcome is not None and outcome not in Outcome.ALL:
        raise ApiError(422, "request_invalid", f"outcome {outcome!r} is not one of {', '.join(Outcome.ALL)}")
    if key is not None and "\x00" in key:
        raise ApiError(422, "request_invalid", f"key {key!r} holds a NUL character (\\x00), which the record log "
                       "cannot hold")
    after = _decode(cursor) if cursor is not None else 0
    query = select(RecordLogEntry).where(RecordLogEntry.job_id == job_id, RecordLogEntry.tenant_id == caller.tenant_id)
    if outcome is not None:
        query = query.where(RecordLogEntry.outcome == outcome)
    if batch is not None:
        query = query.where(RecordLogEntry.batch_id == batch)
    if key is not None:
        query = query.where(RecordLogEntry.record_key == key)
    with tenant_session(request, caller) as session:
        _own_job(session, caller, job_id)
    if format == "ndjson" or (format is None and NDJSON in (accept or "")):
        return StreamingResponse(_every(request, caller, query, after), media_type=NDJSON)
    with tenant_session(request, caller) as session:
        rows = list(session.scalars(_page(query, after, limit + 1)))
    more = len(rows) > limit
    entries = [entry_out(r) for r in rows[:limit]]
    note = None
    if key is not None and not entries and after == 0:
        note = (f"no rejected or skipped record of this job has the key {key!r}: if the job has finished, the "
                "record was loaded, or it is not in the source the job read (check the key and the source); "
                "a record rejected before its key could be read is listed without one (filter by outcome)")
    return LogPage(entries=entries, next_cursor=_encode(entries[-1].id) if more else None, note=note)


def entry_out(row: RecordLogEntry) -> LogEntryOut:
    return LogEntryOut(id=row.id, outcome=row.outcome, key=row.record_key, batch=row.batch_id,
                       source_location=row.source_location, column=row.column_name, value=row.value, error=row.error,
                       retry_count=row.retry_count or 0, created_at=row.created_at, updated_at=row.updated_at)


def _page(query: Select[Any], after: int, limit: int) -> Select[Any]:
    return query.where(RecordLogEntry.id > after).order_by(RecordLogEntry.id).limit(limit)


def _every(request: Request, caller: Caller, query: Select[Any], after: int) -> Iterator[bytes]:
    """Every matching entry, one JSON line each, read a chunk at a time (memory stays flat)."""
    while True:
        with tenant_session(request, caller) as session:
            rows = list(session.scalars(_page(query, after, _STREAM_CHUNK)))
            lines = [entry_out(r).model_dump_json() + "\n" for r in rows]
            after = rows[-1].id if rows else after
        if not lines:
            return
        yield "".join(lines).encode()


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(["log", last_id]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        kind, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "log" or not isinstance(last, int) or not 0 <= last <= MAX_ID:
            raise ValueError(cursor)
        return last
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "request_invalid", "cursor is not one this endpoint gave: pass next_cursor as it was "
                       "answered") from exc
