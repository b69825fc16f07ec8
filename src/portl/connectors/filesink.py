"""Writing files exactly once: the temp file, the checkpoint sidecar, and values as text.

A file has no transactions, so a file sink builds them from three facts: bytes past a known length
can be cut off (``ftruncate``), a fsync makes written bytes durable, and ``os.replace`` swaps a
file atomically. :class:`ByteFileSink` writes a byte stream (CSV, JSON lines) like this:

- ``replace`` writes ``<path>.portl-tmp`` and renames it over ``<path>`` when the run finishes;
  ``append`` writes ``<path>`` itself.
- ``<path>.portl-checkpoint.json`` (the sidecar) records the run id, the data file's length at the
  last commit and each partition's checkpoint.
- A transaction commits by fsyncing the data file, then replacing the sidecar atomically. A
  failed transaction cuts the data file back to the last committed length. After a crash, the
  sidecar on disk describes data that is on disk, so ``--resume`` truncates to its length and goes on.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import (
    Capabilities,
    Checkpoint,
    RunCheckpoints,
    TableInfo,
    TargetPlan,
    WriteMode,
    WriteResult,
    WriteSpec,
)
from portl.errors import TerminalError
from portl.types import decimal_text

TMP_SUFFIX = ".portl-tmp"
SIDECAR_SUFFIX = ".portl-checkpoint.json"


class FileTx:
    """One transaction of a file sink: the checkpoints to record when it commits."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.partitions: dict[str, dict[str, Any]] = {}


class SidecarCheckpoints:
    """The checkpoints of a sink that keeps them in a sidecar beside its data (a file, an object):
    one run at a time, whichever job it was, since the destination has one writer at a time. A
    transaction (:class:`FileTx` or alike) gathers them; the sink writes the sidecar when it commits.
    Subclasses keep the sidecar they last wrote in ``_side`` and read it with ``_read_sidecar``."""

    _side: dict[str, Any] | None = None

    def _read_sidecar(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def save_checkpoint(self, tx: Any, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        tx.run_id = run_id
        tx.partitions[checkpoint.partition] = {"checkpoint": checkpoint.to_json(), "state": state}

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        side = self._side if self._side is not None else self._read_sidecar()
        if side is None or side.get("run_id") != run_id:
            return {}
        return {
            pid: (Checkpoint.from_json(entry["checkpoint"]), dict(entry.get("state") or {}))
            for pid, entry in side.get("partitions", {}).items()
        }

    def job_checkpoints(self, job: str) -> dict[str, RunCheckpoints]:
        """The run the sidecar describes, whichever job it was."""
        side = self._side if self._side is not None else self._read_sidecar()
        if side is None or not side.get("run_id"):
            return {}
        return {side["run_id"]: self.load_checkpoints(side["run_id"])}


class ByteFileSink(SidecarCheckpoints):
    """Base of the sinks that write a byte stream (CSV, JSON lines), append or replace.

    Subclasses set ``format_label`` and ``bulk_method`` and implement :meth:`encode`; they may
    add a header (:meth:`header`) and check an existing file before appending to it
    (:meth:`check_existing`).
    """

    format_label = "text"
    bulk_method = ""

    def __init__(self, path: str, name: str, compressed: bool):
        self.path = path
        self.name = name
        self.compressed = compressed
        self.tmp_path = path + TMP_SUFFIX
        self.sidecar_path = path + SIDECAR_SUFFIX
        self.description = f"{self.format_label} file {name}"
        self.capabilities = Capabilities(
            modes=frozenset({WriteMode.APPEND, WriteMode.REPLACE}),
            transactional=True,
            resumable=True,
            concurrent_writers=1,
            bulk_method=self.bulk_method,
            mode_to_reuse=True,
        )
        self._fd: int | None = None
        self._data_path: str | None = None
        self._committed = 0
        self._side: dict[str, Any] | None = None
        self.schema: pa.Schema | None = None
        """The schema being written, once prepared."""

    # -- format hooks --------------------------------------------------------------------------

    def header(self, schema: pa.Schema) -> bytes:
        """Bytes that start a new file (a CSV header line)."""
        return b""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        """The batch as bytes of the format, uncompressed."""
        raise NotImplementedError

    def check_existing(self, schema: pa.Schema) -> None:
        """Raise :class:`TerminalError` when the non-empty file at ``path`` cannot take these rows."""

    def table_info(self) -> TableInfo | None:
        return None

    def count_rows(self) -> int | None:
        return None

    def existing_data(self) -> str | None:
        """The file, when it holds data no unfinished run of ours is writing (no sidecar)."""
        if os.path.exists(self.sidecar_path) or not os.path.isfile(self.path):
            return None
        size = os.path.getsize(self.path)
        return f"{self.name} ({size:,} bytes)" if size else None

    # -- the Sink seam -------------------------------------------------------------------------

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_mode(spec)
        base = os.path.basename(self.path)
        side = base + SIDECAR_SUFFIX
        if spec.mode is WriteMode.REPLACE:
            data = base + TMP_SUFFIX
            before = [f"write {data}; rename it over {self.name} when the run finishes"]
        else:
            data = base
            before = [f"append to {self.name} (created if missing)"]
            if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
                self.check_existing(schema)  # a dry run should show what the load would refuse
        plan = TargetPlan(
            target=self.name,
            ddl=before,
            per_batch=[f"append the batch as {self.format_label} to {data}, fsync, then replace {side}"],
        )
        if self.compressed:
            plan.notes.append("gzip: each batch is written as its own gzip member")
        return plan

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_mode(spec)
        self.close()
        self.schema = schema
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        side = self._read_sidecar()
        if resuming and side is not None and side.get("mode") == spec.mode.value:
            data_path = os.path.join(os.path.dirname(os.path.abspath(self.path)), side["data_file"])
            if os.path.exists(data_path):
                self._open(data_path)
                self._truncate(int(side["size"]))
                self._committed, self._side = int(side["size"]), side
                return
        self._discard_leftovers(side)
        if spec.mode is WriteMode.REPLACE:
            self._open(self.tmp_path, fresh=True)
            self._write_bytes(self.header(schema))
        else:
            self._open(self.path)
            initial = os.fstat(self._fd).st_size  # type: ignore[arg-type]
            if initial == 0:
                self._write_bytes(self.header(schema))
            else:
                self.check_existing(schema)
                if not self.compressed and not _ends_with_newline(self.path):
                    self._write_raw(b"\n")
        os.fsync(self._fd)  # type: ignore[arg-type]
        self._committed = os.fstat(self._fd).st_size  # type: ignore[arg-type]
        self._side = {
            "run_id": None,
            "mode": spec.mode.value,
            "data_file": os.path.basename(self._data_path),  # type: ignore[arg-type]
            "initial_size": 0 if spec.mode is WriteMode.REPLACE else initial,
            "size": self._committed,
            "partitions": {},
        }
        self._write_sidecar(self._side)

    @contextmanager
    def transaction(self) -> Iterator[FileTx]:
        if self._fd is None:
            raise TerminalError(f"{self.name}: the sink must be prepared before writing")
        tx = FileTx()
        try:
            yield tx
            self._commit(tx)
        except BaseException:
            self._rollback()
            raise

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: FileTx) -> WriteResult:
        if batch.num_rows:
            self._write_bytes(self.encode(batch))
        return WriteResult(inserted=batch.num_rows)

    def forget_run(self, run_id: str) -> None:
        """Nothing to do: a fresh run's :meth:`prepare` discards what an earlier one left."""

    def finish(self, run_id: str) -> None:
        if self._fd is None:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        # The sidecar goes first: a crash between the two steps leaves no checkpoint, so a resume
        # loads everything again into a new temp file, and the final file still appears once.
        _remove(self.sidecar_path)
        if self._data_path == self.tmp_path:
            replace_atomically(self.tmp_path, self.path)
        self._side = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- mechanics -----------------------------------------------------------------------------

    @property
    def final_or_current_path(self) -> str:
        """The file holding the rows: the temp file while a replace is running, else ``path``."""
        if self._fd is not None and self._data_path:
            return self._data_path
        return self.path

    def _check_mode(self, spec: WriteSpec) -> None:
        if spec.mode not in self.capabilities.modes:
            raise TerminalError(
                f"{self.name}: {self.format_label} files cannot be written with mode {spec.mode.value}; "
                "use append or replace"
            )

    def _open(self, path: str, fresh: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        try:
            self._fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise TerminalError(f"cannot open {path} for writing: {exc.strerror or exc}") from exc
        self._data_path = path

    def _write_bytes(self, data: bytes) -> None:
        if data:
            self._write_raw(gzip.compress(data, compresslevel=6, mtime=0) if self.compressed else data)

    def _write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]  # type: ignore[arg-type]
        except OSError as exc:
            raise TerminalError(f"cannot write {self.name}: {exc.strerror or exc}") from exc

    def _truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)  # type: ignore[arg-type]

    def _commit(self, tx: FileTx) -> None:
        os.fsync(self._fd)  # type: ignore[arg-type]
        size = os.fstat(self._fd).st_size  # type: ignore[arg-type]
        side = dict(self._side or {})
        side["size"] = size
        if tx.run_id is not None:
            side["run_id"] = tx.run_id
        side["partitions"] = {**side.get("partitions", {}), **tx.partitions}
        self._write_sidecar(side)
        self._committed, self._side = size, side

    def _rollback(self) -> None:
        if self._fd is not None:
            self._truncate(self._committed)

    def _discard_leftovers(self, side: dict[str, Any] | None) -> None:
        """Undo what an interrupted run that is not being resumed left behind (``--restart``).

        An append is cut back to the length the file had before that run, so starting over does
        not load its rows twice; a replace only loses its temp file.
        """
        if side is not None and side.get("mode") == WriteMode.APPEND.value and os.path.exists(self.path):
            keep = int(side.get("initial_size", side.get("size", 0)))
            with open(self.path, "r+b") as f:
                f.truncate(min(keep, os.fstat(f.fileno()).st_size))
        _remove(self.tmp_path)
        _remove(self.sidecar_path)

    def _read_sidecar(self) -> dict[str, Any] | None:
        try:
            with open(self.sidecar_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TerminalError(
                f"cannot read the checkpoint file {self.sidecar_path} ({exc}); delete it to start over"
            ) from exc

    def _write_sidecar(self, side: dict[str, Any]) -> None:
        temp = self.sidecar_path + ".tmp"
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(side, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.sidecar_path)


def replace_atomically(source: str, target: str) -> None:
    """Rename ``source`` over ``target`` and make the rename durable."""
    os.replace(source, target)
    try:
        fd = os.open(os.path.dirname(os.path.abspath(target)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some platforms and file systems cannot fsync a directory
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


# -- values as text, for the text formats ---------------------------------------------------------


def text_ready(batch: pa.RecordBatch, *, csv: bool = False) -> pa.RecordBatch:
    """The batch with the values a text format cannot hold as they are turned into text.

    Binary becomes base64 and all-null columns strings. For ``csv``, nested values become JSON
    text, decimals with more than six decimal places their digits as text, and Arrow's CSV
    writer writes dates, times, timestamps and the other decimals unquoted in ISO form. For JSON,
    nested values stay nested, and timestamps become ``2024-01-02T03:04:05.123456`` (``Z`` or an
    offset when zoned), dates and times their ISO text and decimals their exact digits. Numbers,
    booleans and strings are left as they are.
    """
    arrays, fields, changed = [], [], False
    for field, column in zip(batch.schema, batch.columns):
        converted = _as_text(column, csv)
        if converted is not None:
            changed = True
            arrays.append(converted)
            fields.append(pa.field(field.name, converted.type))
        else:
            arrays.append(column)
            fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields)) if changed else batch


def _as_text(column: pa.Array, csv: bool) -> pa.Array | None:
    kind = column.type
    if pa.types.is_dictionary(kind):
        decoded = column.dictionary_decode()
        return _as_text(decoded, csv) or decoded
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return pa.array(
            [None if v is None else base64.b64encode(v).decode("ascii") for v in column.to_pylist()],
            pa.string(),
        )
    if pa.types.is_decimal(kind) and (not csv or kind.scale > 6):
        # Arrow writes a decimal under 10^-6 with more than six decimal places in exponent form
        # (0E-10 for zero), so such a column is written as its digits, quoted as text is.
        return decimal_text(column)
    if not csv:
        if pa.types.is_timestamp(kind):
            return pc.replace_substring(pc.cast(column, pa.string()), " ", "T", max_replacements=1)
        if pa.types.is_date(kind) or pa.types.is_time(kind):
            return pc.cast(column, pa.string())
    elif pa.types.is_nested(kind):
        dumps = json.JSONEncoder(ensure_ascii=False, default=json_default).encode
        return pa.array([None if v is None else dumps(v) for v in column.to_pylist()], pa.string())
    return None


def json_default(value: Any) -> Any:
    """JSON for values ``json`` does not know: ISO dates and times, exact decimals, base64 bytes."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)
