"""The connector seam: what a source and a sink are, and the few values that cross it.

A connector declares what it can do as data (:class:`Capabilities`) and implements a handful of
methods. Batching, retries, checkpoint bookkeeping, hooks and rejects belong to the engine; a
connector only reads Arrow batches, writes Arrow batches, and says how its failures should be
treated (:class:`~portl.errors.TransientError` or :class:`~portl.errors.TerminalError`).

A source and a sink that speak the same text format may also move blocks of text *verbatim*
(:class:`VerbatimSource`, :class:`VerbatimSink`): the engine decides when that gives the rows the
Arrow path would give, and falls back to the Arrow path for a block the destination refuses.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from portl.types import LogicalType


class WriteMode(str, enum.Enum):
    """How rows land in the destination."""

    APPEND = "append"
    REPLACE = "replace"
    UPSERT = "upsert"


class ConflictStrategy(str, enum.Enum):
    """What an upsert does with a row whose key already exists."""

    SKIP = "skip"
    OVERWRITE = "overwrite"
    MERGE = "merge"
    FAIL = "fail"


@dataclass(frozen=True)
class Checkpoint:
    """Where a partition of a source stands.

    ``position`` is the connector's own JSON-serialisable bookmark (a byte offset, a rowid, a row
    count). ``rows`` counts the source rows consumed in this partition so far. A checkpoint with
    ``done=True`` marks a finished partition.
    """

    partition: str
    position: dict[str, Any]
    rows: int = 0
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "position": self.position, "rows": self.rows, "done": self.done}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(data["partition"], dict(data["position"]), int(data.get("rows", 0)), bool(data.get("done", False)))


RunCheckpoints = dict[str, tuple[Checkpoint, dict[str, Any]]]
"""A run's committed checkpoints in a destination: partition -> (checkpoint, state)."""


def group_checkpoints(rows: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> dict[str, RunCheckpoints]:
    """``(run_id, checkpoint, state)`` rows, as a sink reads them, grouped by run."""
    runs: dict[str, RunCheckpoints] = {}
    for run_id, checkpoint, state in rows:
        cp = Checkpoint.from_json(checkpoint)
        runs.setdefault(run_id, {})[cp.partition] = (cp, state)
    return runs


@dataclass(frozen=True)
class Reject:
    """A source row that will not be loaded, with where it came from and why."""

    source: str
    error: str
    line: int | None = None
    record: int | None = None
    column: str | None = None
    value: Any = None
    original: str | None = None


@dataclass
class Chunk:
    """One batch read from a source, the checkpoint reached after it, and how to locate its rows.

    ``lines[i]`` / ``records[i]`` locate row ``i`` of ``data`` in the source (1-based, ``None`` when
    unknown), ``originals[i]`` is its raw text when the source has one. ``rejects`` holds rows the
    source itself could not parse (a ragged CSV line, invalid JSON); they count as read.
    """

    data: pa.RecordBatch
    checkpoint: Checkpoint
    first_record: int | None = None
    first_line: int | None = None
    lines: list[int] | None = None
    originals: list[str] | None = None
    rejects: list[Reject] = field(default_factory=list)
    size_bytes: int = 0
    verbatim: Verbatim | None = None
    """Set instead of ``data`` (then empty) when the block is handed over as text, as it is."""
    checked: pa.Table | None = None
    """With ``verbatim``: the block's typed columns (and the request's ``text`` ones) as the
    source's check parsed them, when it did; by source column name."""

    @property
    def rows_read(self) -> int:
        if self.verbatim is not None:
            return self.verbatim.rows + len(self.rejects)
        return self.data.num_rows + len(self.rejects)

    def line_of(self, index: int) -> int | None:
        if self.lines is not None:
            return self.lines[index]
        return None if self.first_line is None else self.first_line + index

    def record_of(self, index: int) -> int | None:
        return None if self.first_record is None else self.first_record + index

    def original_of(self, index: int) -> str | None:
        return None if self.originals is None else self.originals[index]


@dataclass(frozen=True)
class Estimate:
    """What a source knows of its size before reading: rows and/or bytes, each maybe unknown."""

    rows: int | None = None
    bytes: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a sink can do, as data the engine and the plan read."""

    modes: frozenset[WriteMode]
    upsert_strategies: frozenset[ConflictStrategy] = frozenset()
    transactional: bool = False
    """A batch and its checkpoint commit atomically (else: atomic file rename at the end)."""
    resumable: bool = True
    """--resume continues where the last committed batch left off (else it starts over)."""
    concurrent_writers: int = 1
    """How many batches may be written at once; the engine serialises writes beyond it."""
    alters_tables: bool = False
    """Can add missing columns (``create_missing_columns``)."""
    bulk_method: str = ""
    """One line for the plan: how a batch is written."""
    max_params: int | None = None
    verbatim: frozenset[str] = frozenset()
    """Text formats (:attr:`TextFormat.kind`) a batch can be loaded from as it is (``write_verbatim``)."""
    whole_databases: bool = False
    """Can receive a whole-database copy (``tables:`` on the source): a sink per table, then keys,
    indexes and foreign keys (:class:`CatalogSink`)."""
    mode_to_reuse: bool = False
    """A destination that already holds data is written only when the job says how (``mode:``):
    a file, which a default append would double on every re-run. Such a sink has
    ``existing_data() -> str | None``, what it holds ("out.csv, 1,234 bytes") or None."""
    savepoints: bool = False
    """Part of a transaction can be undone (``savepoint``): when the destination refuses some rows
    of a batch (:class:`~portl.errors.RowRefused`), the engine loads the others and rejects those."""
    keeps_runs: bool = False
    """The checkpoints of a finished run stay in the destination (``job_checkpoints`` returns
    them): an incremental job's mark is kept there, with the data it describes."""


@dataclass(frozen=True)
class ColumnInfo:
    """A destination column as introspected: Arrow type, declared type, nullability."""

    name: str
    type: pa.DataType
    declared: str = ""
    nullable: bool = True
    has_default: bool = False


@dataclass(frozen=True)
class TableInfo:
    """An existing destination table."""

    name: str
    columns: list[ColumnInfo]
    primary_key: list[str] = field(default_factory=list)
    unique_keys: list[list[str]] = field(default_factory=list)
    rows: int | None = None

    def column(self, name: str) -> ColumnInfo | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


@dataclass(frozen=True)
class WriteSpec:
    """How the engine wants batches written: mode, conflict key and strategy."""

    mode: WriteMode
    key: tuple[str, ...] = ()
    strategy: ConflictStrategy | None = None
    create_missing_columns: bool = True


@dataclass
class WriteResult:
    """Counts from writing one batch. ``skipped`` rows were left out by the conflict strategy."""

    inserted: int = 0
    updated: int = 0
    skipped: int = 0


@dataclass
class TargetPlan:
    """What a sink will do, for the plan: DDL before loading, statements per batch, notes."""

    target: str
    ddl: list[str] = field(default_factory=list)
    per_batch: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Source(Protocol):
    """Reads Arrow batches, each with the checkpoint reached after it."""

    description: str

    def schema(self) -> pa.Schema: ...

    def estimate(self) -> Estimate: ...

    def partitions(self, count: int) -> list[Checkpoint]: ...

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Writes Arrow batches, each with its checkpoint, in one destination transaction."""

    capabilities: Capabilities
    description: str

    def table_info(self) -> TableInfo | None: ...

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan: ...

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None: ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Any) -> WriteResult: ...

    def save_checkpoint(self, tx: Any, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None: ...

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]: ...

    def job_checkpoints(self, job: str) -> dict[str, RunCheckpoints]:
        """The committed checkpoints of every run of ``job`` (the ``job`` entry of their state)
        this destination holds, by run id: how the engine finds an unfinished run whatever ledger
        it has. A file destination answers with the run its sidecar describes, whatever the job."""
        ...

    def forget_run(self, run_id: str) -> None:
        """Drop the checkpoints of a run that will never be continued (a new run replaced it)."""
        ...

    def finish(self, run_id: str) -> None: ...

    def count_rows(self) -> int | None: ...

    def close(self) -> None: ...


@runtime_checkable
class PlacedSink(Protocol):
    """A sink without transactions (a search index's bulk API) whose writes must be safe to repeat:
    the engine tells it, before a batch's writes, where each of the batch's rows sits in the source,
    so that it can name each row's document after its place (run, partition, position). A batch
    sent again after a crash then overwrites its own documents instead of adding copies."""

    def place_rows(self, tx: Any, run_id: str, checkpoint: Checkpoint, places: list[int]) -> None:
        """The rows of the next batch written in ``tx`` sit at ``places`` (0-based) of partition
        ``checkpoint.partition``; ``write`` is then given that batch, or slices of it (``engine.isolate``)."""
        ...


@dataclass
class QueryResult:
    """What a read-only query gave: its column names, its first rows, and how many rows it had."""

    columns: list[str]
    rows: list[tuple]
    total: int


@runtime_checkable
class QueryableSink(Protocol):
    """A destination that answers SQL (quality checks: ``sql``, ``referential``, ``unique`` in the
    destination). Queries run read-only: whatever they change is rolled back."""

    dialect_name: str
    """How the docs and messages name its SQL: ``PostgreSQL``, ``SQLite``..."""

    def loaded_table(self) -> str:
        """The table the run loads, quoted for this destination's SQL (``{table}`` in a check)."""
        ...

    def quote(self, name: str) -> str:
        """An identifier (a column, or a table possibly qualified) quoted for this SQL."""
        ...

    def query(self, statement: str, tx: Any | None = None, limit: int = 20) -> QueryResult:
        """Run ``statement`` (in ``tx``, the job's open transaction, when given, else on its own)
        and roll back; keep at most ``limit`` rows. Raises TerminalError for SQL the destination refuses."""
        ...


@runtime_checkable
class SavepointSink(Protocol):
    """A sink whose transactions can undo part of their work (``capabilities.savepoints``)."""

    def savepoint(self, tx: Any) -> AbstractContextManager[None]:
        """A savepoint in ``tx``: work inside that raises is undone back to it (``tx`` stays
        usable), work that completes is kept."""
        ...


# --- verbatim blocks: source text loaded as it is ------------------------------------------------


@dataclass(frozen=True)
class TextFormat:
    """How a source writes its text blocks, for a destination that loads them as they are.

    ``kind="csv"`` is RFC 4180: fields separated by ``delimiter``; a field is either unquoted
    text or enclosed in ``quote`` with a quote inside doubled; an unquoted field equal to ``null``
    is NULL (a quoted one never is); every record ends with a newline, except perhaps the last
    of the source. The encoding is UTF-8.

    ``kind="pgbinary"`` is the rows of Postgres' binary COPY format, without its signature and
    trailer. Each value is in its type's own layout, so ``wire_types`` names every column's type
    as Postgres does (base type name and modifier), for the destination to check that its
    columns take exactly those layouts.
    """

    kind: str = "csv"
    delimiter: str = ","
    quote: str = '"'
    null: str = ""
    wire_types: tuple[tuple[str, str, int], ...] = ()  # (column, type name, modifier) for pgbinary


@dataclass(frozen=True)
class VerbatimOffer:
    """What a source can hand over as text, and what it vouches for.

    ``own_types``: each column's text is already the canonical text of the column's own logical
    type (a database writing out its values). ``checks``: the logical types a *text* column can
    be checked against block by block, and ``nulls``: whether a block can be checked for NULLs
    in given columns. Canonical text is text Portl's coercion reads as value *v* and that
    databases read back as *v* (``12``, ``-3.50``, ``2024-01-31``, ``true``, ISO 8601 times).
    """

    format: TextFormat
    own_types: bool = False
    checks: frozenset[str] = frozenset()
    nulls: bool = False
    also: tuple[TextFormat, ...] = ()  # further formats, for a destination that does not take ``format``


@dataclass(frozen=True)
class VerbatimRequest:
    """What the engine asks of a block before it may go verbatim: the source columns whose text
    must be canonical for a logical type, and those that must hold no NULL. A block that fails
    a check is read the ordinary way (an Arrow batch)."""

    types: tuple[tuple[str, LogicalType], ...] = ()
    required: frozenset[str] = frozenset()
    format: TextFormat | None = None  # the one of the offer's formats the destination takes
    text: frozenset[str] = frozenset()
    """Source columns to read as text beside the typed ones, for the quality checks: a source
    that parses a block to check it gives the parsed columns with the block (``Chunk.checked``),
    so the checks need not parse it again."""


@dataclass
class Verbatim:
    """A block of whole records in the source's :class:`TextFormat`, and how many there are.
    ``state`` is the source's own note of where the block came from, to parse it again."""

    data: bytes
    rows: int
    state: Any = None


@runtime_checkable
class VerbatimSource(Protocol):
    """A source that can hand its blocks over as text."""

    def verbatim_offer(self) -> VerbatimOffer | None: ...

    def read_verbatim(self, batch_rows: int, start: Checkpoint | None, request: VerbatimRequest) -> Iterator[Chunk]:
        """Like ``read``, but a chunk whose block passes ``request`` carries it in ``verbatim``
        (with the same checkpoint, lines and records as ``read`` would give)."""
        ...

    def parse_verbatim(self, chunk: Chunk) -> Chunk:
        """The chunk ``read`` would have given for that block: its rows as an Arrow batch, with
        the rows it cannot parse as rejects."""
        ...


@runtime_checkable
class VerbatimSink(Protocol):
    """A sink that can load a block of text as it is, in the batch's transaction."""

    def verbatim_problems(self, schema: pa.Schema, spec: WriteSpec, fmt: TextFormat) -> list[str]:
        """Why the destination would not read canonical text of ``schema``'s columns as Portl
        would (one reason per column), or nothing when it would."""
        ...

    def write_verbatim(self, block: Verbatim, columns: list[str], fmt: TextFormat, spec: WriteSpec, tx: Any) -> WriteResult:
        """Load ``block``, whose fields are ``columns`` in order. Raises a
        :class:`~portl.errors.TerminalError` for a block the destination refuses; the engine then
        loads that block's Arrow batch instead."""
        ...


# --- whole-database copies -------------------------------------------------------------------


@dataclass(frozen=True)
class IndexDef:
    """A secondary index (not the primary key)."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class ForeignKeyDef:
    """A foreign key, in the names of the copied tables."""

    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: str = field(default="", compare=False)
    """``DEFERRABLE`` or ``DEFERRABLE INITIALLY DEFERRED`` (Postgres), checked at commit rather
    than row by row: how an application fills tables that refer to each other."""


@dataclass(frozen=True)
class CheckDef:
    """A CHECK constraint: its name (empty when the source gave none) and its expression, in the
    source's SQL."""

    name: str
    expression: str


@dataclass(frozen=True)
class TableDef:
    """What a whole-database copy needs to know of one source table.

    ``schema`` holds the columns as Arrow fields (logical types via :mod:`portl.types`, with
    ``nullable`` set); ``identity`` names the column whose sequence / auto-increment counter must
    be reset after the copy. ``lengths`` are the declared lengths of text columns
    (``VARCHAR(160)``); ``defaults`` and ``checks`` are expressions in the SQL of ``dialect``
    (``sqlite``, ``postgres``, ``mysql``), which the destination translates or names as not copied.
    """

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...] = ()
    indexes: tuple[IndexDef, ...] = ()
    foreign_keys: tuple[ForeignKeyDef, ...] = ()
    identity: str | None = None
    rows: int | None = None
    lengths: dict[str, int] = field(default_factory=dict, compare=False)
    defaults: dict[str, str] = field(default_factory=dict, compare=False)
    checks: tuple[CheckDef, ...] = ()
    dialect: str = ""


@dataclass(frozen=True)
class ViewDef:
    """A view: its name and its query, in the SQL of ``dialect``; ``schema`` is the source's schema
    or database, which the query may name before a table (left out in the destination). An empty
    ``query`` is a view Portl cannot read, ``why`` says why."""

    name: str
    query: str
    dialect: str
    schema: str = ""
    why: str = ""


class Catalog(Protocol):
    """A source that can list and describe its tables (``tables: "*"``, ``tables: [a, b]``,
    ``tables: "schema.*"``) and open one of them as a Source."""

    def tables(self) -> list[TableDef]: ...

    def table_source(self, name: str) -> Source: ...

    def views(self) -> list[ViewDef]: ...


class CatalogSink(Protocol):
    """A destination that can receive whole tables: open a sink per table, then add keys,
    indexes and foreign keys, and reset identity counters, after the data is in."""

    def table_sink(self, name: str) -> Sink: ...

    def table_ddl(self, table: TableDef) -> list[str]:
        """``CREATE TABLE`` for a copied table: its columns, declared lengths and defaults."""
        ...

    def drop_ddl(self, tables: list[TableDef]) -> list[str]:
        """Dropping tables a copy makes again (``copy.if_exists: replace``)."""
        ...

    def constraint_ddl(self, tables: list[TableDef], absent: frozenset[str] = frozenset()) -> list[str]:
        """What follows the data; ``absent`` names tables to treat as not there (dropped first)."""
        ...

    def view_ddl(self, views: list[ViewDef], tables: list[TableDef]) -> list[str]:
        """``CREATE VIEW`` for each view whose query translates; the others go to ``notes``."""
        ...

    def execute_ddl(self, statements: list[str]) -> None: ...


# --- incremental sources: only what is new since the last run ------------------------------------


@runtime_checkable
class IncrementalSource(Protocol):
    """A source that can read only what changed since the last finished run of its job
    (``incremental:`` in its config): rows past a high-water mark of a cursor column, or files a
    glob finds that were not loaded before.

    The *mark* is JSON-serialisable data of the source's own (``{"cursor": "updated_at", "value":
    "2024-05-01T10:00:00"}``, ``{"files": {"a.csv": {"size": 120, "etag": "…"}}}``). The engine keeps
    the mark a run will leave with that run's checkpoints in the destination, so it commits with
    the data it describes, and hands the mark of the last finished run to the next one.
    """

    def incremental_mark(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """The mark this run will leave once finished, fixed before anything is read: the cursor's
        maximum now (or ``previous``'s when nothing is newer), the files that exist now together
        with those ``previous`` lists. ``previous`` is None on a job's first run."""
        ...

    def restrict(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> None:
        """From now on read only what lies past ``previous`` (less the lookback) and up to
        ``mark``: ``schema``, ``estimate``, ``partitions`` and ``read`` all see only that. With
        ``previous`` None, everything up to ``mark``."""
        ...

    def describe_incremental(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> list[str]:
        """Lines for the plan: the mark and the filter (``WHERE updated_at > … AND updated_at <= …``,
        ``3 new files of 12``)."""
        ...
