"""The v1 job language as typed models.

Every key a user can write is a field here, with a description that ``portl schema`` exports and
that ``docs/job-language.md`` is checked against. Unknown keys are errors (``extra="forbid"``).
Source and destination are a union of every registered connector's ``Config``, told apart by
``type``; :func:`job_model` builds that union once the registry is known (or, for loading a job,
the union of the connectors it names).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_serializer, model_validator

from portl.connectors.base import ConflictStrategy, WriteMode
from portl.connectors.registry import config_models
from portl.secrets import Secret
from portl.spec.quality import Check, distinct_names
from portl.types import LogicalType, parse_type


class Model(BaseModel):
    """Strict base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class KeyProblem(ValueError):
    """A rule a model checks across its keys, about one of them: reported at that key's line."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# --- mapping ---------------------------------------------------------------------------------

SIMPLE_TRANSFORMS = ("lower", "upper", "trim", "money", "percent", "null_if_empty")
ARG_TRANSFORMS = ("concat", "coalesce", "default", "date", "datetime", "replace", "null_if")


class Transform(Model):
    """One step of a column's transform pipeline, normalised from ``lower`` or ``{concat: [...]}``."""

    name: str
    args: Any = None
    sep: str = ""

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value in SIMPLE_TRANSFORMS:
                return {"name": value}
            if value in ARG_TRANSFORMS:
                raise ValueError(f"transform {value!r} needs an argument, e.g. {{{value}: ...}}")
            raise ValueError(_unknown("transform", value, SIMPLE_TRANSFORMS + ARG_TRANSFORMS))
        if isinstance(value, dict) and "name" not in value:
            keys = [k for k in value if k != "sep"]
            if len(keys) != 1:
                raise ValueError("a transform is a name (lower) or a one-key mapping ({concat: [a, b]})")
            name = keys[0]
            if name not in ARG_TRANSFORMS:
                raise ValueError(_unknown("transform", name, SIMPLE_TRANSFORMS + ARG_TRANSFORMS))
            if "sep" in value and name != "concat":
                raise ValueError("'sep' only goes with concat")
            return {"name": name, "args": value[name], "sep": value.get("sep", "")}
        return value

    @model_validator(mode="after")
    def _check_args(self) -> Transform:
        if self.name in {"concat", "coalesce"}:
            if not isinstance(self.args, list) or not self.args or not all(isinstance(a, str) for a in self.args):
                raise ValueError(f"{self.name} takes a list of source column names")
        if self.name in {"date", "datetime"}:
            formats = [self.args] if isinstance(self.args, str) else self.args
            if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
                raise ValueError(f"{self.name} takes a strptime format or a list of them, e.g. '%d/%m/%Y'")
        if self.name == "replace":
            if not isinstance(self.args, dict) or set(self.args) - {"pattern", "with"} or "pattern" not in self.args:
                raise ValueError("replace takes {pattern: <regex>, with: <text>}")
        if self.name == "null_if" and not isinstance(self.args, list):
            raise ValueError("null_if takes a list of values that become NULL")
        return self

    @property
    def formats(self) -> list[str]:
        return [self.args] if isinstance(self.args, str) else list(self.args or [])

    @model_serializer(mode="plain")
    def _as_written(self) -> Any:
        """Serialise back to the short form a user writes: ``lower`` or ``{concat: [...], sep: " "}``."""
        if self.args is None and self.name in SIMPLE_TRANSFORMS:
            return self.name
        return {self.name: self.args, **({"sep": self.sep} if self.sep else {})}


class ColumnSpec(Model):
    """How one destination column is computed from the source."""

    from_: str | None = Field(None, alias="from", description="Source column to read (default: the destination column's name).")
    type: str | None = Field(None, description="Destination type: int, bigint, float, decimal(p,s), text, bool, date, datetime/timestamp, timestamptz, json, uuid, bytes.")
    format: str | list[str] | None = Field(None, description="strptime format(s) for date and timestamp values given as text, tried in order; base64 or hex for bytes.")
    transform: list[Transform] = Field(default_factory=list, description="Transforms applied in order before the type coercion.")
    required: bool = Field(False, description="Reject rows where the value is NULL after mapping.")
    default: Any = Field(None, description="Value used when the source value is NULL.")

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str | None) -> str | None:
        if value is not None:
            parse_type(value)
        return value

    @field_validator("transform", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    @model_validator(mode="after")
    def _pipeline_order(self) -> ColumnSpec:
        for position, step in enumerate(self.transform):
            if step.name in {"concat", "coalesce"} and position != 0:
                raise ValueError(f"{step.name} reads source columns, so it must be the first transform")
        return self

    @property
    def logical_type(self) -> LogicalType | None:
        return parse_type(self.type) if self.type else None

    @property
    def formats(self) -> list[str]:
        return [self.format] if isinstance(self.format, str) else list(self.format or [])


class Mapping(Model):
    """Which destination columns are written, and how each is computed."""

    auto: bool = Field(False, description="Map source columns to destination columns of the same name (case- and space-insensitive).")
    columns: dict[str, ColumnSpec] = Field(default_factory=dict, description="Destination column -> how to compute it. A string value is short for {from: <string>}.")
    create_missing_columns: bool = Field(True, description="Create the table or add columns the destination lacks.")
    extra_destination_columns: Literal["ignore", "error"] = Field("ignore", description="What to do about destination columns nothing maps to.")

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"from": v} if isinstance(v, str) else ({} if v is None else v)) for k, v in value.items()}
        return value


# --- conflicts, batching, retries, parallelism -----------------------------------------------


class Conflict(Model):
    """Upsert by key: what happens to a row whose key already exists."""

    key: list[str] = Field(description="Destination columns forming the key.", min_length=1)
    strategy: ConflictStrategy = Field(ConflictStrategy.OVERWRITE, description="skip, overwrite, merge (incoming non-null values win) or fail (roll back the batch, report every conflicting key).")

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Batch(Model):
    """How many rows move, and are committed with their checkpoint, together."""

    size: int = Field(25_000, ge=1, le=10_000_000, description="Target rows per batch.")


class Retry(Model):
    """What happens when writing a batch fails."""

    strategy: Literal["retry", "skip", "fail"] = Field("retry", description="retry transient errors then fail; skip: after the retries, reject the batch's rows and go on; fail: stop at the first error.")
    attempts: int = Field(3, ge=1, le=100, description="Attempts per batch, the first one included.")
    backoff_ms: int = Field(200, ge=0, description="Wait before the second attempt; doubles each time, with jitter.")
    max_backoff_ms: int = Field(10_000, ge=0, description="Upper bound of the wait between attempts.")


class Service(Model):
    """What a job asks of the Portl service (``portl serve``); ``portl run`` ignores it."""

    record_log: Literal["batches", "full"] = Field("batches", description="batches: the service's record log holds each batch's range and counts and every rejected record, with its key; full: also every record written, by its key.")
    record_key: list[str] | None = Field(None, description="Destination columns naming a record in the record log. Default: conflict.key when the job has one.", min_length=1)

    @field_validator("record_key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Parallel(Model):
    """Parallel workers, each reading its own partition of the source."""

    workers: int = Field(1, ge=1, le=64, description="Partitions read, mapped and written at once.")


# --- hooks -----------------------------------------------------------------------------------


class ScriptHook(Model):
    """Run a command; the row or batch summary arrives as JSON on stdin."""

    type: Literal["script"]
    command: str | list[str] = Field(description="Command line (run through the shell when a string) or argv list.")
    timeout_s: float = Field(30.0, gt=0, description="Kill the command and fail after this many seconds.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")


class PythonHook(Model):
    """Call ``module:function`` in-process."""

    type: Literal["python"]
    function: str = Field(description="'package.module:function'; the job file's folder is on the import path.")

    @field_validator("function")
    @classmethod
    def _has_colon(cls, value: str) -> str:
        module, _, attr = value.partition(":")
        if not module or not attr:
            raise ValueError("expected 'module:function', e.g. 'myhooks:clean_row'")
        return value


class HttpHook(Model):
    """Send an HTTP request; the body is a Jinja template over the row or batch."""

    type: Literal["http"]
    url: str = Field(description="Request URL (a template).")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("POST", description="HTTP method.")
    headers: dict[str, str | Secret] = Field(default_factory=dict, description="Request headers; credential-like ones are masked in output.")
    body: str | dict[str, Any] | None = Field(None, description="Body template; a mapping is sent as JSON. Default: the row or batch summary as JSON.")
    timeout_s: float = Field(10.0, gt=0, description="Request timeout in seconds.")


class LambdaHook(Model):
    """Invoke an AWS Lambda function with the row or batch summary as its JSON payload."""

    type: Literal["lambda"]
    function: str = Field(min_length=1, description="Function name or ARN.")
    qualifier: str | None = Field(None, min_length=1, description="Alias or version to invoke, e.g. live or 7.")
    region: str | None = Field(None, min_length=1, description="AWS region. Default: the ARN's, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.")
    endpoint_url: str | None = Field(None, description="Invoke API endpoint instead of AWS's, e.g. http://127.0.0.1:9001.")
    access_key_id: str | None = Field(None, description="AWS access key id, with secret_access_key. Default: the usual AWS credentials.")
    secret_access_key: Secret | None = Field(None, description="AWS secret access key; never printed.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for the function's answer, per attempt.")
    invocation: Literal["RequestResponse", "Event"] = Field(
        "RequestResponse", description="RequestResponse waits for the answer; Event queues the call (after_* events only).")
    batch: bool = Field(False, description="Row events: send the rows of a batch together, as {\"rows\": [...]}.")
    batch_rows: int = Field(1000, ge=1, le=100_000, description="With batch: true, at most this many rows per invocation.")
    concurrency: int = Field(1, ge=1, le=64, description="With batch: true, invocations of one batch's rows in flight at once.")

    @field_validator("endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must be an http:// or https:// URL, e.g. http://127.0.0.1:9001")
        return value

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> LambdaHook:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            given, missing = ("access_key_id", "secret_access_key") if self.access_key_id else ("secret_access_key", "access_key_id")
            raise KeyProblem(given, f"{given} is given without {missing}; give both, or neither to use the usual AWS credentials")
        if self.concurrency > 1 and not self.batch:
            raise KeyProblem("concurrency", "concurrency applies to batch: true, where a batch's rows go in several "
                                            "invocations; add batch: true, or leave concurrency out")
        return self


Hook = Annotated[Union[ScriptHook, PythonHook, HttpHook, LambdaHook], Field(discriminator="type")]
HOOK_EVENTS = ("before_job", "after_job", "before_batch", "after_batch", "before_row", "after_row")


class Hooks(Model):
    """Hooks per event; each is one hook or a list run in order."""

    before_job: list[Hook] = Field(default_factory=list, description="Before anything is written.")
    after_job: list[Hook] = Field(default_factory=list, description="After the run, with its report.")
    before_batch: list[Hook] = Field(default_factory=list, description="Before each batch is written.")
    after_batch: list[Hook] = Field(default_factory=list, description="After each batch is committed.")
    before_row: list[Hook] = Field(default_factory=list, description="Per mapped row before writing; may change or drop it.")
    after_row: list[Hook] = Field(default_factory=list, description="Per row after its batch is committed.")

    @field_validator(*HOOK_EVENTS, mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _lambda_fits_its_event(self) -> Hooks:
        for event in HOOK_EVENTS:
            for hook in getattr(self, event):
                if not isinstance(hook, LambdaHook):
                    continue
                if hook.invocation == "Event" and not event.startswith("after_"):
                    raise KeyProblem(event, f"a lambda hook with invocation: Event gets no answer, so it cannot stop or "
                                            f"change anything; {event} needs invocation: RequestResponse (Event suits after_* events)")
                if hook.batch and event not in ("before_row", "after_row"):
                    raise KeyProblem(event, f"batch: true sends the rows of a batch together; {event} has no rows, "
                                            "so it applies only to before_row and after_row")
        return self

    @property
    def has_row_hooks(self) -> bool:
        return bool(self.before_row or self.after_row)


# --- validation and rejects ------------------------------------------------------------------


class Validation(Model):
    """Checks before, during and after the run."""

    schema_: bool = Field(True, alias="schema", description="Check type and nullability compatibility with the destination before writing.")
    row_count: bool = Field(True, description="After the run, check that the destination gained exactly the rows reported inserted.")
    max_rejects: int | None = Field(None, ge=0, description="Abort once more rows than this are rejected (default: no limit).")


class Rejects(Model):
    """Where rejected rows go."""

    path: str | None = Field(None, description="Reject file (CSV), relative to the job file. Default: <job name>.rejects.csv beside the job file.")


class Reports(Model):
    """Where a run with ``quality:`` checks writes its reports. ``{job}`` and ``{run_id}`` in a path
    are replaced; paths are relative to the job file. Every report is also kept in the ledger, for
    ``portl report RUN``."""

    json_: str | None = Field(None, alias="json", description="The report as JSON.")
    junit: str | None = Field(None, description="The report as JUnit XML: one test case per check, for CI.")
    html: str | None = Field(None, description="The report as one self-contained HTML page with charts.")


class DatabaseCopy(Model):
    """How a whole-database copy (a source with ``tables``) names and treats what it creates."""

    identifiers: Literal["keep", "lower"] = Field("keep", description="keep: tables and columns keep the source's names exactly (quoted); lower: names are folded to lower case.")
    if_exists: Literal["fail", "skip", "replace"] = Field("fail", description="A destination table that already holds rows: fail (stop before writing), skip (leave it as it is) or replace (drop it and copy it again).")


# --- the job ---------------------------------------------------------------------------------


class JobBase(Model):
    """Fields of a v1 job other than its connections."""

    version: Literal[1] = Field(1, description="Job language version; may be omitted.")
    name: str | None = Field(None, description="Job name (default: the file name without extension). Names the run in the ledger.")
    description: str | None = Field(None, description="Free text shown in the plan.")
    mode: WriteMode | None = Field(None, description="append, replace or upsert. Default: upsert when 'conflict' is given, else append.")
    mapping: Mapping = Field(default_factory=lambda: Mapping(auto=True), description="Column mapping; default: auto-map by name.")
    conflict: Conflict | None = Field(None, description="Key and strategy for upserts.")
    batch: Batch = Field(default_factory=Batch)
    retry: Retry = Field(default_factory=Retry)
    parallel: Parallel = Field(default_factory=Parallel)
    transaction: Literal["batch", "job"] = Field("batch", description="batch: each batch commits with its checkpoint; job: all or nothing.")
    hooks: Hooks = Field(default_factory=Hooks)
    validation: Validation = Field(default_factory=Validation)
    rejects: Rejects = Field(default_factory=Rejects)
    service: Service = Field(default_factory=Service, description="What the job asks of the Portl service: its record log.")
    copy_: DatabaseCopy = Field(default_factory=DatabaseCopy, alias="copy", description="Whole-database copies: identifier policy and what to do about tables that exist.")
    quality: list[Check] = Field(default_factory=list, description="Data-quality checks computed during the load; a critical failure fails the run (see docs/quality.md).")
    reports: Reports = Field(default_factory=Reports, description="Where the quality reports are written (JSON, JUnit XML, HTML).")

    @field_validator("quality")
    @classmethod
    def _distinct_checks(cls, value: list[Any]) -> list[Any]:
        return distinct_names(value)

    @model_validator(mode="after")
    def _mode_and_conflict(self) -> JobBase:
        if self.mode == WriteMode.UPSERT and self.conflict is None:
            raise KeyProblem("mode", "mode 'upsert' needs a 'conflict' section with the key columns")
        if self.conflict is not None and self.mode not in (None, WriteMode.UPSERT):
            raise KeyProblem("conflict", f"'conflict' only applies to mode upsert, but mode is {self.mode.value!r}")
        incremental = getattr(getattr(self, "source", None), "incremental", None)
        if incremental is not None and self.mode == WriteMode.REPLACE:
            raise KeyProblem("mode", "mode replace would keep only the rows of one run's window: an incremental source "
                                     "appends or upserts; give 'conflict: {key: [...]}' to update rows that changed")
        if incremental is not None and incremental.lookback is not None and self.conflict is None:
            raise KeyProblem("source", f"incremental.lookback reads rows again that the last run loaded ({incremental.lookback} "
                                       "before its mark); without a conflict key they would be loaded twice. Add "
                                       "'conflict: {key: [<the key column>]}' so they are upserted, or remove the lookback")
        return self

    @property
    def write_mode(self) -> WriteMode:
        return self.mode or (WriteMode.UPSERT if self.conflict else WriteMode.APPEND)


@lru_cache(maxsize=None)
def connector_union(types: frozenset[str] | None = None) -> Any:
    """The discriminated union of every registered connector config, or of the connectors named
    ``types`` only."""
    models = config_models(None if types is None else sorted(types))
    return Annotated[Union[tuple(models)], Field(discriminator="type")]


@lru_cache(maxsize=None)
def job_model(types: frozenset[str] | None = None) -> type[JobBase]:
    """The Job model, with source and destination typed by the connector registry.

    With ``types``, only those connectors are in the model: a job that names no other connector
    validates the same, and loading it imports no other connector's module.
    """
    conn = connector_union(types)
    return create_model(
        "Job",
        __base__=JobBase,
        source=(conn, Field(description="Where rows come from: a connector config, or a connection's name.")),
        destination=(conn, Field(description="Where rows go: a connector config, or a connection's name.")),
        connections=(dict[str, conn], Field(default_factory=dict, description="Named connections local to this file.")),
    )


def _unknown(kind: str, value: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"unknown {kind} {value!r}{hint} Valid: {', '.join(valid)}"
