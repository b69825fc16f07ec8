"""Writing CSV, TSV, JSON lines and Parquet to an S3 object, exactly once.

An object cannot be written a little at a time, but a multipart upload can: parts are uploaded
one by one, stay invisible, and become the object, whole, when the upload is completed. So a run
that is killed leaves no object (or the previous one, untouched), and ``mode: replace`` swaps the
object at the very end.

A text object (:class:`ObjectTextSink`) is written like this:

- batches are encoded by the format's own file sink (header, quoting, gzip members) into a
  buffer; once it holds the part size, it is uploaded as the next part. A transaction that
  uploaded a part commits by replacing ``<key>.portl-checkpoint.json`` (the sidecar): the upload
  id, every part's number and ETag, the bytes after the last part (stored as
  ``<key>.<parts>.portl-tail`` when there are any) and each partition's checkpoint;
- until the first part is uploaded, every commit stores the buffer as the tail, so each batch of
  a small object (or of the first part of a big one) commits by itself;
- afterwards a commit that uploads no part is kept in memory: its checkpoint reaches the sidecar
  with the next part. A run killed in between resumes from the last part, and reads the rows after
  it again, into the same part number (uploading a part number again replaces it);
- a transaction that fails takes the buffer back to where it began; parts it uploaded are
  uploaded again under the same numbers, and completing the upload leaves out a part it does not
  list. So ``transaction: job`` streams its parts too, and memory stays about one part;
- finishing uploads the rest as the last part, deletes the sidecar, then completes the upload.
  A crash between the two leaves no checkpoint: the next run starts over, and the object still
  appears once.

S3 parts are at least 5 MiB (but the last); the part size grows past 1,000 parts so that an
upload's 10,000 parts hold about 275 GB. Appending to an existing object is refused: S3 has no
append, and copying the object into a new upload first is a cost a user should choose knowingly.

Parquet (:class:`ObjectParquetSink`) is written to a local temporary file by the Parquet sink
and uploaded when the run finishes; like a local Parquet file it cannot be resumed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

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
from portl.connectors.filesink import SIDECAR_SUFFIX, SidecarCheckpoints
from portl.connectors.objectstore import TAIL_SUFFIX, store_for
from portl.connectors.objectstore.paths import split_url
from portl.errors import TerminalError

PART_BYTES = 8 << 20
"""Upload a part once the buffer holds this much (S3's minimum is 5 MiB)."""
MAX_PARTS = 10_000


class _Tx:
    """One transaction: the parts it uploaded, what the buffer held before it, its checkpoints."""

    def __init__(self, buffered: int) -> None:
        self.buffered = buffered  # bytes in the buffer when it began
        self.carry: bytes | None = None  # those bytes, once a part of this transaction took them
        self.parts: list[dict[str, Any]] = []
        self.run_id: str | None = None
        self.partitions: dict[str, dict[str, Any]] = {}


class ObjectTextSink(SidecarCheckpoints):
    """A CSV, TSV or JSON lines object in S3, written by a multipart upload (see the module)."""

    def __init__(self, config: Any, encoder: Any):
        self.config = config
        self.encoder = encoder  # the format's file sink: only its header() and encode() are used
        self.store = store_for(config)
        self.url = self.name = config.path
        self.sidecar_url = self.url + SIDECAR_SUFFIX
        self.compressed = encoder.compressed
        self.format_label = encoder.format_label
        self.description = f"{self.format_label} object {self.url}"
        self.capabilities = Capabilities(
            modes=_modes(self.store, self.url),
            transactional=True,
            resumable=True,
            concurrent_writers=1,
            bulk_method=f"S3 multipart upload ({encoder.bulk_method.split(',')[0]}), a part per {PART_BYTES >> 20} MiB",
            mode_to_reuse=True,
        )
        self.schema: pa.Schema | None = None
        self._side: dict[str, Any] | None = None
        self._buffer = bytearray()
        self._waiting: dict[str, dict[str, Any]] = {}  # checkpoints committed, not yet in the sidecar
        self._prepared = False

    # -- what is there -------------------------------------------------------------------------

    def table_info(self) -> TableInfo | None:
        return None

    def count_rows(self) -> int | None:
        return None  # the object being written is invisible until the run completes it

    def existing_data(self) -> str | None:
        """The object, when it exists and no unfinished run of ours is writing it."""
        found = self.store.head(self.url, missing_ok=True)
        if found is None or self.store.get_text(self.sidecar_url) is not None:
            return None
        return f"{self.url} ({found.size:,} bytes)"

    # -- the Sink seam -------------------------------------------------------------------------

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_mode(spec)
        key = self.url.rsplit("/", 1)[-1]
        plan = TargetPlan(
            target=self.url,
            ddl=[f"start a multipart upload of {self.url}; it becomes the object, whole, when the run finishes"
                 + (" (replacing the object there)" if spec.mode is WriteMode.REPLACE else "")],
            per_batch=[f"append the batch as {self.format_label} to the part buffer; at {PART_BYTES >> 20} MiB upload "
                       f"it as the next part, then replace {key}{SIDECAR_SUFFIX}"],
        )
        if self.compressed:
            plan.notes.append("gzip: each batch is written as its own gzip member")
        return plan

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_mode(spec)
        self.schema = schema
        side = self._read_sidecar()
        self._waiting = {}
        if resuming and side is not None and side.get("mode") == spec.mode.value and side.get("run_id"):
            self._continue(side)
        else:
            self._discard(side)
            header = self.encoder.header(schema)
            self._buffer = bytearray(_gzip(header) if self.compressed and header else header)
            self._side = {"run_id": None, "mode": spec.mode.value, "upload_id": None, "parts": [], "tail": 0,
                          "partitions": {}}
        side = self._side
        self._remove_old_tails(self._tail_url(len(side["parts"])) if side.get("tail") else None)
        self._prepared = True

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        if not self._prepared:
            raise TerminalError(f"{self.name}: the sink must be prepared before writing")
        tx = _Tx(len(self._buffer))
        try:
            yield tx
            self._commit(tx)
        except BaseException:
            # Parts this transaction uploaded are not in the sidecar: the next part uploads take
            # their numbers again, and completing the upload leaves out any part it does not list.
            self._buffer = bytearray(tx.carry) if tx.carry is not None else self._buffer[: tx.buffered]
            raise

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: _Tx) -> WriteResult:
        if batch.num_rows:
            data = self.encoder.encode(batch)
            self._buffer += _gzip(data) if self.compressed else data
            parts = len(self._side["parts"]) + len(tx.parts)  # type: ignore[index]
            if len(self._buffer) >= PART_BYTES * (1 + parts // 1000):
                body = bytes(self._buffer)
                if tx.carry is None:
                    tx.carry = body[: tx.buffered]
                tx.parts.append(self._upload_part(self._upload_id(), parts + 1, body))
                self._buffer = bytearray()
        return WriteResult(inserted=batch.num_rows)

    def forget_run(self, run_id: str) -> None:
        """Nothing to do: a fresh run's :meth:`prepare` aborts what an earlier one left."""

    def finish(self, run_id: str) -> None:
        if not self._prepared:
            return
        side = self._side or {}
        parts = list(side.get("parts", []))
        if side.get("upload_id"):
            if self._buffer or not parts:
                parts.append(self._upload_part(side["upload_id"], len(parts) + 1, bytes(self._buffer)))
            # The sidecar goes first: a crash before the completion leaves no checkpoint, so the
            # next run starts over and the object still appears once.
            self.store.delete(self.sidecar_url)
            self.store.call("complete the upload of", self.url, "complete_multipart_upload",
                            UploadId=side["upload_id"], MultipartUpload={"Parts": parts})
        else:
            self.store.delete(self.sidecar_url)
            self.store.put(self.url, bytes(self._buffer))
        self._buffer, self._side, self._prepared = bytearray(), None, False
        self._remove_old_tails(None)  # the object is complete: no tail is needed any more

    def close(self) -> None:
        """Nothing to release: an unfinished upload stays for ``--resume`` (or the next run aborts it)."""
        self._buffer = bytearray()

    # -- mechanics -----------------------------------------------------------------------------

    def _check_mode(self, spec: WriteSpec) -> None:
        if spec.mode not in (WriteMode.APPEND, WriteMode.REPLACE):
            raise TerminalError(f"{self.name}: S3 objects cannot be written with mode {spec.mode.value}; use replace")
        if spec.mode is WriteMode.APPEND and self.existing_data() is not None:
            raise TerminalError(
                f"cannot append to the existing object {self.url}: S3 objects cannot be appended to; use "
                "mode: replace, or write to a new key"
            )

    def _commit(self, tx: _Tx) -> None:
        """Make the transaction durable when it uploaded a part, or while no part is uploaded (the
        buffer goes to the tail object); otherwise its checkpoints wait for the next part."""
        side = self._side
        assert side is not None
        waiting = {**self._waiting, **tx.partitions}
        run_id = tx.run_id or side.get("run_id")
        if not tx.parts and side["parts"]:
            self._waiting = waiting
            return
        before, tail = side, bytes(self._buffer)
        parts = [*side["parts"], *tx.parts]
        if tail:  # named after the parts it follows: the tail the last sidecar names is never overwritten
            self.store.put(self._tail_url(len(parts)), tail)
        side = {**side, "run_id": run_id, "parts": parts, "tail": len(tail),
                "partitions": {**side.get("partitions", {}), **waiting}}
        self.store.put(self.sidecar_url, json.dumps(side).encode("utf-8"))
        self._side, self._waiting = side, {}
        # The transaction has landed with the sidecar: deleting the tail it no longer names is
        # cleanup, and a failure of it must not undo the commit (the next finish or prepare retries).
        if before.get("tail") and len(before["parts"]) != len(parts):
            self._remove_old_tails(self._tail_url(len(parts)) if tail else None)

    def _remove_old_tails(self, keep: str | None) -> None:
        """Delete every tail object of this key but ``keep`` (the one the sidecar names). This is
        cleanup after a commit or a completion has landed: a failure leaves the tails for the next
        finish or prepare, and never fails or undoes the run."""
        own = re.compile(re.escape(self.url) + r"\.\d+" + re.escape(TAIL_SUFFIX))
        try:
            for url in self.store.keys_after(self.url + "."):
                if url != keep and own.fullmatch(url):
                    self.store.delete(url)
        except Exception:  # noqa: BLE001 - what is left is harmless, and removed next time
            pass

    def _tail_url(self, parts: int) -> str:
        """Where the bytes after the first ``parts`` parts are kept (``<key>.<parts>.portl-tail``)."""
        return f"{self.url}.{parts}{TAIL_SUFFIX}"

    def _upload_id(self) -> str:
        """The run's multipart upload, started with its first part."""
        side = self._side
        assert side is not None
        if not side.get("upload_id"):
            answer = self.store.call("start the upload of", self.url, "create_multipart_upload")
            # Kept at once (not only when the sidecar is next written), so that parts of a
            # transaction that fails still go to this upload when it is written again.
            self._side = side = {**side, "upload_id": answer["UploadId"]}
        return side["upload_id"]

    def _upload_part(self, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        if number > MAX_PARTS:
            raise TerminalError(f"{self.url}: an S3 upload has at most {MAX_PARTS:,} parts; this object is larger "
                                "than one upload can hold")
        answer = self.store.call(f"upload part {number} of", self.url, "upload_part", UploadId=upload_id,
                                 PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _continue(self, side: dict[str, Any]) -> None:
        """Take up the run the sidecar describes: its upload's parts, and the tail it committed."""
        upload_id = side.get("upload_id")
        if upload_id:
            try:
                self.store.call("resume the upload of", self.url, "list_parts", UploadId=upload_id, MaxParts=1)
            except TerminalError as exc:
                raise TerminalError(
                    f"{exc}; the unfinished run cannot be continued: run the job again without --resume (or with "
                    "--restart) to load everything again"
                ) from exc
        for other in self.store.uploads(self.url):  # started by the run that stopped, never recorded
            if other != upload_id:
                self.store.call("abort an old upload of", self.url, "abort_multipart_upload", UploadId=other)
        tail = int(side.get("tail") or 0)
        tail_url = self._tail_url(len(side.get("parts", [])))
        data = self.store.get_range(tail_url, 0, tail) if tail else b""
        if len(data) != tail:
            raise TerminalError(f"{tail_url} holds {len(data):,} bytes, the checkpoint expects {tail:,}; run "
                                "the job again with --restart")
        self._buffer, self._side = bytearray(data), side

    def _discard(self, side: dict[str, Any] | None) -> None:
        """Undo what an interrupted run that is not being continued left: its upload (and any
        other unfinished upload of this key, which only a crashed writer leaves), tail, sidecar."""
        for upload_id in self.store.uploads(self.url):
            self.store.call("abort an old upload of", self.url, "abort_multipart_upload", UploadId=upload_id)
        if side is not None:
            if side.get("tail"):
                self.store.delete(self._tail_url(len(side.get("parts", []))))
            self.store.delete(self.sidecar_url)

    def _read_sidecar(self) -> dict[str, Any] | None:
        text = self.store.get_text(self.sidecar_url)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise TerminalError(f"cannot read the checkpoint object {self.sidecar_url} ({exc}); delete it to start over") from exc


def _modes(store: Any, url: str) -> frozenset[WriteMode]:
    """``replace``, and ``append`` while the key holds no object: S3 has no append."""
    if store.head(url, missing_ok=True) is not None:
        return frozenset({WriteMode.REPLACE})
    return frozenset({WriteMode.APPEND, WriteMode.REPLACE})


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, compresslevel=6, mtime=0)


class ObjectParquetSink:
    """A Parquet object in S3: written to a local temporary file, uploaded when the run finishes
    (multipart above the part size), so the object appears whole or not at all."""

    def __init__(self, config: Any):
        from portl.connectors.parquet import ParquetSink

        self.config = config
        self.store = store_for(config)
        self.url = self.name = config.path
        self.description = f"Parquet object {self.url}"
        self._folder = tempfile.mkdtemp(prefix="portl-parquet-")
        self._local = os.path.join(self._folder, "data.parquet")
        self._inner = ParquetSink(config.model_copy(update={"path": self._local}), self._folder)
        self._inner.name = self.url
        self.capabilities = Capabilities(
            modes=_modes(self.store, self.url),
            transactional=True,
            resumable=False,
            concurrent_writers=1,
            bulk_method=f"pyarrow ParquetWriter ({config.compression}) to a local file, uploaded when the run finishes",
            mode_to_reuse=True,
        )

    def table_info(self) -> TableInfo | None:
        return None

    def count_rows(self) -> int | None:
        return None

    def existing_data(self) -> str | None:
        found = self.store.head(self.url, missing_ok=True)
        return None if found is None else f"{self.url} ({found.size:,} bytes)"

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_mode(spec)
        return TargetPlan(
            target=self.url,
            ddl=[f"write a local temporary Parquet file; upload it as {self.url} when the run finishes"],
            per_batch=[f"write the batch as a row group ({self.config.compression})"],
            notes=["a Parquet object cannot be continued: --resume writes it again from the start"],
        )

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_mode(spec)
        self._inner.prepare(schema, WriteSpec(WriteMode.REPLACE), resuming)

    def transaction(self) -> Any:
        return self._inner.transaction()

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Any) -> WriteResult:
        return self._inner.write(batch, spec, tx)

    def save_checkpoint(self, tx: Any, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        """Nothing to keep: an unfinished Parquet object cannot be continued."""

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        return {}

    def job_checkpoints(self, job: str) -> dict[str, RunCheckpoints]:
        return {}

    def forget_run(self, run_id: str) -> None:
        """Nothing is kept to forget."""

    def finish(self, run_id: str) -> None:
        self._inner.finish(run_id)
        if not os.path.exists(self._local):
            return
        from boto3.s3.transfer import TransferConfig

        bucket, key = split_url(self.url)
        try:
            self.store.client.upload_file(self._local, bucket, key, Config=TransferConfig(
                multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES))
        except Exception as exc:
            raise self.store.error(getattr(exc, "__cause__", None) or exc, bucket, key, "upload") from exc
        finally:
            os.remove(self._local)

    def close(self) -> None:
        self._inner.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _check_mode(self, spec: WriteSpec) -> None:
        if spec.mode not in (WriteMode.APPEND, WriteMode.REPLACE):
            raise TerminalError(f"{self.name}: Parquet objects cannot be written with mode {spec.mode.value}; use replace")
        if spec.mode is WriteMode.APPEND and self.existing_data() is not None:
            raise TerminalError(
                f"cannot append to the existing Parquet object {self.url}: Parquet files cannot be appended to; "
                "use mode: replace, or write to a new key"
            )

