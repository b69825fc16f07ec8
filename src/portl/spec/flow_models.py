"""The v2 flow language (``version: 2``) as typed models.

A flow is a list of steps run in order, in one process, inside one database transaction::

    version: 2
    connections: {db: {type: postgres, url: ...}, api: {type: http, base_url: ...}}
    transaction: {scope: db, connection: db}
    steps:
      - {id: read_csv, type: csv.read, path: resources.csv}
      - id: upsert
        type: db.upsert
        batch: {from: steps.read_csv.rows, as: row}
        table: resources
        key: [code, source]
        mapping: {code: "{{ row.code }}", source: "{{ row.source }}"}

Every step has ``id`` and ``type``; ``save_as``, ``when``, ``batch``, ``connection`` and ``retry``
are optional. The step types are one discriminated union (``type``), so a misspelt type is
reported with the closest valid one. Values written as templates stay text here: they are
checked and compiled by :mod:`portl.steps`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, create_model, field_validator, model_validator

from portl.connectors.csv import Config as CsvConfig
from portl.connectors.registry import config_models
from portl.spec.models import Model
from portl.spec.positions import Path
from portl.steps.calls.config import HttpConnection, LambdaConnection

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DB_TYPES = ("postgres", "postgresql", "mysql", "mariadb")
CALL_TYPES = ("api.call", "lambda.invoke")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# --- settings shared by steps ------------------------------------------------------------------


class BatchSpec(Model):
    """Run the step (or a group's steps) once per item of a list."""

    from_: str = Field(alias="from", description="Expression giving the items, e.g. steps.read_csv.rows (with or without {{ }}).")
    as_: str = Field("item", alias="as", pattern=NAME_PATTERN, description="Name of the current item in the templates of the step.")
    key: str | None = Field(
        None,
        description="Template of an item's key, e.g. \"{{ row.source }}:{{ row.code }}\"; part of the default "
        "idempotency keys. Default: the item's index.",
    )


class RetrySpec(Model):
    """How an api.call or lambda.invoke step retries a failed call."""

    max_attempts: int = Field(3, ge=1, le=100, description="Attempts in all, the first one included.")
    backoff_ms: int = Field(200, ge=0, description="Wait before the second attempt; doubles each time (capped at 10 s), with jitter.")
    retry_on: list[str] = Field(
        ["5xx", "timeout", "connection"],
        description="Failures worth another attempt: 5xx, 4xx, timeout, connection, or exact statuses such as 429.",
    )

    @field_validator("retry_on", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        from portl.steps.calls.policy import retry_on_values

        values = [value] if isinstance(value, (str, int)) else value
        if isinstance(values, list):
            try:
                retry_on_values(values)
            except ValueError as exc:  # the message names the value that is not a retry class
                raise ValueError(str(exc).removeprefix("retry_on: ")) from None
            return [str(v).strip().lower() for v in values]
        return value


class TransactionSpec(Model):
    """The flow's database transaction."""

    scope: Literal["db", "item"] = Field(
        "db",
        description="db: one transaction for the whole flow, committed at the end; item: each item of a top-level "
        "batch commits on its own (and each top-level step outside a batch).",
    )
    connection: str | None = Field(None, description="Database connection the DB steps and the outbox use (default: the only database connection).")


class OutboxSettings(Model):
    """When the calls queued by ``outbox.enqueue`` are delivered."""

    deliver: Literal["after_commit", "later"] = Field(
        "after_commit",
        description="after_commit: the run delivers its queued calls once the transaction has committed; "
        "later: only `portl outbox drain` delivers them.",
    )


class StepBase(Model):
    """What every step has."""

    id: str = Field(pattern=NAME_PATTERN, description="Unique name of the step; its result is steps.<id> (or steps.<save_as>).")
    save_as: str | None = Field(None, pattern=NAME_PATTERN, description="Name of the result under steps. instead of the id.")
    when: str | None = Field(None, description="Expression; the step runs only when it is true (for conditional: which branch).")
    batch: BatchSpec | None = Field(None, description="Run once per item: {from: <expression>, as: <name>, key: <template>}.")
    connection: str | None = Field(None, description="Name of the connection the step uses, from connections:.")
    retry: RetrySpec | None = Field(None, description="Retries of api.call and lambda.invoke steps.")
    description: str | None = Field(None, description="Free text, shown in the plan.")

    @property
    def name(self) -> str:
        """Where the result is saved: ``steps.<name>``."""
        return self.save_as or self.id

    @property
    def uses_connection(self) -> bool:
        return True

    @model_validator(mode="after")
    def _retry_only_on_calls(self) -> StepBase:
        kind = getattr(self, "type", "")
        if self.retry is not None and kind not in CALL_TYPES:
            raise ValueError(
                f"retry applies to api.call and lambda.invoke steps, not {kind}: a failed database statement aborts the "
                "flow's transaction, so it is never retried on its own"
            )
        if self.connection is not None and not self.uses_connection:
            raise ValueError(f"a {kind} step takes no connection")
        return self


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Columns = Annotated[list[str], BeforeValidator(_one_or_many)]  # one column name, or a list of them


# --- reading a file ----------------------------------------------------------------------------


class CsvReadStep(StepBase, CsvConfig):
    """Read a CSV file with the CSV connector: ``{rows: [{column: text}], count: N, rejects: [...]}``."""

    type: Literal["csv.read"]
    max_rejects: int = Field(
        0, ge=0,
        description="Rows the CSV parser refuses (a wrong number of fields) that are left out with a warning; one "
        "more fails the step.",
    )

    @property
    def uses_connection(self) -> bool:
        return False

    def csv_config(self) -> CsvConfig:
        """The connector config of the file this step reads."""
        fields = {name: getattr(self, name) for name in CsvConfig.model_fields if name != "type"}
        return CsvConfig(type="csv", **fields)


# --- database steps ----------------------------------------------------------------------------


class DbUpsertStep(StepBase):
    """Insert a row, or update the row with the same key: ``{<returning>..., was_inserted}``."""

    type: Literal["db.upsert"]
    table: str = Field(description="Table to write; schema.table names its schema (database.table on MySQL).")
    key: Columns = Field(min_length=1, description="Columns of the unique key that decides insert or update.")
    mapping: dict[str, Any] = Field(min_length=1, description="Column -> value (a template, or a plain value).")
    returning: Columns = Field(["id"], description="Columns returned in the result, besides was_inserted.")

    @model_validator(mode="after")
    def _key_is_mapped(self) -> DbUpsertStep:
        missing = [k for k in self.key if k not in self.mapping]
        if missing:
            raise ValueError(f"key column {', '.join(missing)} has no value in mapping; every key column needs one")
        return self


class DbInsertStep(StepBase):
    """Insert one row: ``{count, <returning>...}``."""

    type: Literal["db.insert"]
    table: str = Field(description="Table to write.")
    mapping: dict[str, Any] = Field(min_length=1, description="Column -> value (a template, or a plain value).")
    returning: Columns = Field(default_factory=list, description="Columns of the new row returned in the result, e.g. [id].")


class DbUpdateStep(StepBase):
    """Update the rows matching ``where``: ``{count, rows}`` (rows: the returning columns)."""

    type: Literal["db.update"]
    table: str = Field(description="Table to update.")
    set_: dict[str, Any] = Field(alias="set", min_length=1, description="Column -> new value (a template, or a plain value).")
    where: dict[str, Any] = Field(min_length=1, description="Column -> value; rows where every column equals its value are updated.")
    returning: Columns = Field(default_factory=list, description="Columns of the updated rows returned in the result.")


class DbQueryOneStep(StepBase):
    """Run a query; the result is its first row as a mapping, or None when it returns no row."""

    type: Literal["db.query_one"]
    sql: str = Field(description="The query, with :name for each parameter; values never go into the SQL text.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameter name -> value (a template, or a plain value).")


class DbQueryStep(StepBase):
    """Run a query: ``{rows: [...], count: N}``."""

    type: Literal["db.query"]
    sql: str = Field(description="The query, with :name for each parameter.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameter name -> value (a template, or a plain value).")


# --- calls -------------------------------------------------------------------------------------


class ApiRequestFields(Model):
    """An HTTP request, as api.call and the outbox write it."""

    connection: str | None = Field(None, description="An http connection: its base_url, headers and timeout.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("POST", description="HTTP method.")
    url: str | None = Field(None, description="Whole URL (a template); or give path with a connection.")
    path: str | None = Field(None, description="Path added to the connection's base_url (a template).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (templates).")
    query: dict[str, Any] = Field(default_factory=dict, description="Query string parameters (templates).")
    body: Any = Field(None, description="JSON body: a mapping or list of templates, or one template.")
    idempotency_key: str | bool = Field(
        True,
        description="true: a key derived from the job, the step and the item key, sent in the connection's "
        "idempotency header; a template: that key; false: no key.",
    )
    timeout_s: float | None = Field(None, gt=0, description="Seconds per attempt (default: the connection's, else 10).")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _url_or_path(self) -> ApiRequestFields:
        if (self.url is None) == (self.path is None):
            raise ValueError("give either url (a whole URL) or path (added to the connection's base_url), not both" if self.url else
                             "give url (a whole URL) or path (added to the connection's base_url)")
        if self.path is not None and self.connection is None:
            raise ValueError("path needs a connection (an http connection with a base_url); or give a whole url")
        return self


class LambdaFields(Model):
    """A Lambda invocation, as lambda.invoke and the outbox write it."""

    connection: str | None = Field(None, description="A lambda connection (default: the only one).")
    function: str = Field(description="Function name or ARN (a template).")
    payload: Any = Field(None, description="JSON payload: a mapping or list of templates, or one template.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds per attempt (default: the connection's).")


class ApiCallStep(StepBase, ApiRequestFields):
    """Send an HTTP request: ``{status, body, headers, attempts}``."""

    type: Literal["api.call"]


class LambdaInvokeStep(StepBase, LambdaFields):
    """Invoke a Lambda function; the result is the function's JSON answer."""

    type: Literal["lambda.invoke"]


class OutboxApiCall(ApiRequestFields):
    """An HTTP request queued in the outbox."""

    type: Literal["api.call"]

    @model_validator(mode="after")
    def _needs_a_key(self) -> OutboxApiCall:
        if self.idempotency_key is False:
            raise ValueError("an outbox call needs an idempotency key (its dedup key); leave idempotency_key out or give a template")
        return self


class OutboxLambdaCall(LambdaFields):
    """A Lambda invocation queued in the outbox."""

    type: Literal["lambda.invoke"]
    idempotency_key: str | bool = Field(True, description="The call's dedup key: true derives it from the job, step and item key; or a template.")

    @model_validator(mode="after")
    def _needs_a_key(self) -> OutboxLambdaCall:
        if self.idempotency_key is False:
            raise ValueError("an outbox call needs an idempotency key (its dedup key); leave idempotency_key out or give a template")
        return self


OutboxCallSpec = Annotated[Union[OutboxApiCall, OutboxLambdaCall], Field(discriminator="type")]


class OutboxEnqueueStep(StepBase):
    """Write a call into the outbox table, inside the transaction: ``{enqueued, dedup_key}``."""

    type: Literal["outbox.enqueue"]
    call: OutboxCallSpec = Field(description="The call to deliver after commit: {type: api.call, ...} or {type: lambda.invoke, ...}.")

    @property
    def uses_connection(self) -> bool:
        return False


# --- structure and v1 jobs ---------------------------------------------------------------------


class ConditionalStep(StepBase):
    """Run ``then`` when ``when`` is true, else ``else``: ``{branch: then|else|none}``."""

    type: Literal["conditional"]
    when: str = Field(description="Expression choosing the branch.")
    then: list[Step] = Field(default_factory=list, description="Steps run when the condition is true.")
    else_: list[Step] = Field(default_factory=list, alias="else", description="Steps run when it is false.")

    @property
    def uses_connection(self) -> bool:
        return False

    @model_validator(mode="after")
    def _has_a_branch(self) -> ConditionalStep:
        if not self.then and not self.else_:
            raise ValueError("a conditional needs steps in then, else, or both")
        return self


class GroupStep(StepBase):
    """Run child steps in order, usually once per batch item: ``{<child>: result, ...}``."""

    type: Literal["group"]
    steps: list[Step] = Field(min_length=1, description="The child steps.")

    @property
    def uses_connection(self) -> bool:
        return False


class MigrateStep(StepBase):
    """Run a v1 migration job: ``{run_id, status, counts}``."""

    type: Literal["migrate"]
    job: str | dict[str, Any] = Field(
        description="A v1 job file (relative to this file), or a v1 job written inline (source, destination, mapping...).",
    )

    @property
    def uses_connection(self) -> bool:
        return False


Step = Annotated[
    Union[CsvReadStep, DbUpsertStep, DbInsertStep, DbUpdateStep, DbQueryOneStep, DbQueryStep, ApiCallStep,
          LambdaInvokeStep, ConditionalStep, GroupStep, OutboxEnqueueStep, MigrateStep],
    Field(discriminator="type"),
]
STEP_MODELS: tuple[type[StepBase], ...] = (
    CsvReadStep, DbUpsertStep, DbInsertStep, DbUpdateStep, DbQueryOneStep, DbQueryStep, ApiCallStep, LambdaInvokeStep,
    ConditionalStep, GroupStep, OutboxEnqueueStep, MigrateStep,
)
STEP_TYPES = tuple(m.model_fields["type"].annotation.__args__[0] for m in STEP_MODELS)
DB_STEP_TYPES = ("db.upsert", "db.insert", "db.update", "db.query_one", "db.query")

ConditionalStep.model_rebuild()
GroupStep.model_rebuild()


class FlowBase(Model):
    """Fields of a flow other than its connections."""

    version: Literal[2] = Field(description="2: this file is a flow of steps (version 1, or none, is a migration job).")
    name: str | None = Field(None, description="Flow name (default: the file name without extension); part of idempotency keys and run records.")
    description: str | None = Field(None, description="Free text, shown in the plan.")
    transaction: TransactionSpec = Field(default_factory=TransactionSpec, description="The database transaction: {scope: db|item, connection: <name>}.")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="When queued calls are delivered.")
    steps: list[Step] = Field(min_length=1, description="The steps, run in order.")


def connection_models() -> list[type]:
    """Every model a flow's ``connections:`` entry may be: the connectors, http and lambda."""
    return [*config_models(), HttpConnection, LambdaConnection]


@lru_cache(maxsize=1)
def flow_model() -> type[FlowBase]:
    """The Flow model, with ``connections`` typed by the connector registry plus http and lambda."""
    union = Annotated[Union[tuple(connection_models())], Field(discriminator="type")]
    return create_model(
        "Flow",
        __base__=FlowBase,
        connections=(dict[str, union], Field(default_factory=dict, description="Named connections: databases, http APIs, lambda.")),
    )


def iter_steps(steps: list[StepBase], path: Path = ("steps",), batched: bool = False) -> Iterator[tuple[StepBase, Path, bool]]:
    """Every step in document order (the order they run in), with its path in the file and whether
    it runs inside a batch (its own or an enclosing one)."""
    for index, step in enumerate(steps):
        here = path + (index,)
        inside = batched or step.batch is not None
        yield step, here, inside
        if isinstance(step, ConditionalStep):
            yield from iter_steps(step.then, here + ("then",), inside)
            yield from iter_steps(step.else_, here + ("else",), inside)
        elif isinstance(step, GroupStep):
            yield from iter_steps(step.steps, here + ("steps",), inside)


def children(step: StepBase) -> list[StepBase]:
    """The steps directly inside a conditional or a group."""
    if isinstance(step, ConditionalStep):
        return [*step.then, *step.else_]
    if isinstance(step, GroupStep):
        return list(step.steps)
    return []
