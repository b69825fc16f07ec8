"""Writing Arrow batches into an Elasticsearch or OpenSearch index with the bulk API.

A search index has no transactions, so exactly-once rests on names instead:

- every document has a deterministic ``_id``: the key columns' values (:func:`typemap.key_text`)
  when the job or the index has a key, else ``<run id>.<partition>.<position>`` from the row's
  place in the source (the engine gives it, :class:`~portl.connectors.base.PlacedSink`). A batch
  sent again after a crash overwrites its own documents, never adds copies;
- after each batch, its checkpoint is written (and refreshed) into Portl's own checkpoint index,
  so a resume continues after the last batch whose checkpoint is there.

Conflict strategies map to bulk actions: overwrite → ``index``; skip → ``create``, a 409 counted
as skipped; merge → ``update`` with ``doc_as_upsert`` and the row's nulls left out (the existing
values stay); fail → the batch's keys are looked up first (``_mget``) and any found fails the
batch before anything is written (a document created by someone else between the look-up and
the write is still reported, but the batch's other documents are then written).

Documents the cluster refuses one by one (a value its mapping cannot parse, a key already there
for ``create``) go to the reject file with the cluster's reason: the engine writes the batch
again in parts (:mod:`portl.engine.isolate`); within one transaction each part is answered from
what the first bulk request already did for its rows, and a row sent again (in a new transaction)
lands on the same document id, so nothing is copied.

``mode: replace`` loads a new index (``<index>-portl-a`` or ``-b``, whichever the alias does not
point to) and, when the run finishes, points the alias ``<index>`` at it in one atomic
``_aliases`` request (an existing concrete index of that name is removed in the same request),
then deletes the previous Portl index. Readers see the old documents until then.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from portl.connectors.base import (
    Capabilities, Checkpoint, ColumnInfo, ConflictStrategy, RunCheckpoints, TableInfo, TargetPlan, WriteMode,
    WriteResult, WriteSpec,
)
from portl.connectors.elasticsearch import typemap
from portl.connectors.elasticsearch.checkpoints import CheckpointIndex
from portl.connectors.elasticsearch.client import SearchClient, _path, translate
from portl.connectors.elasticsearch.config import Config
from portl.errors import ConflictError, RowRefused, TerminalError, TransientError

SIDES = ("-portl-a", "-portl-b")
_FIELD = re.compile(r"field \[([^\]]+)\]")
INSERTED, UPDATED, SKIPPED = "inserted", "updated", "skipped"


class Bulk:
    """The sink's "transaction": what the bulk requests made in it did, row by row.

    The engine names the batch's rows first (``place_rows``); the first ``write`` then gets the
    whole batch, later ones (isolating refused documents) slices of it, answered from
    ``outcomes`` without sending the documents again."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.partition = ""
        self.places: list[int] | None = None
        self.whole: pa.RecordBatch | None = None
        self.outcomes: dict[int, Any] = {}

    def place(self, run_id: str, partition: str, places: list[int]) -> None:
        self.run_id, self.partition, self.places = run_id, partition, places
        self.whole, self.outcomes = None, {}

    def start_of(self, batch: pa.RecordBatch) -> int | None:
        """Where ``batch`` starts in the placed batch, or None when it is not a part of it."""
        if self.places is None:
            return None
        if self.whole is None:
            if batch.num_rows != len(self.places):
                return None
            self.whole = batch
            return 0
        if not batch.num_columns:
            return None
        start = batch.column(0).offset - self.whole.column(0).offset
        if 0 <= start and start + batch.num_rows <= self.whole.num_rows and batch.schema == self.whole.schema:
            return start
        return None


class Refusal:
    """A document the cluster refused, with its reason and the field it named."""

    def __init__(self, reason: str, column: str | None = None):
        self.reason, self.column = reason, column


class ElasticsearchSink:
    """Writes batches with ``helpers.streaming_bulk``, one checkpoint document after each."""

    capabilities = Capabilities(
        modes=frozenset(WriteMode),
        upsert_strategies=frozenset(ConflictStrategy),
        transactional=False,
        resumable=True,
        concurrent_writers=1,
        alters_tables=True,
        bulk_method="bulk API (streaming_bulk), requests bounded by chunk_rows and chunk_bytes; deterministic _ids",
        savepoints=True,
        keeps_runs=True,
    )

    def __init__(self, config: Config, base_dir: str):
        given = [k for k in ("query", "sort", "fields", "incremental") if getattr(config, k) is not None]
        if given:
            raise TerminalError(f"a {config.type} destination takes no {' or '.join(repr(k) for k in given)} "
                                "(they are for sources)")
        self.config = config
        self.client = SearchClient(config, base_dir)
        self.client.check()
        self.index = config.index
        self.target = config.index
        self.description = f"{config.type} index {config.index}"
        self._key: tuple[str, ...] = ()
        self._action = "index"
        self._spec: WriteSpec | None = None
        self._warnings: list[str] = []
        self.checkpoints = CheckpointIndex(self.client, config.checkpoint_index, config.index)
        self._spoilt: Bulk | None = None

    # --- introspection and planning ------------------------------------------------------

    def _mappings(self, index: str) -> dict[str, Any] | None:
        answer = self.client.request("GET", f"/{_path(index)}/_mapping", f"reading the mapping of index {index}",
                                     missing_ok=True)
        return typemap.merged_mappings(answer) if answer else None

    def table_info(self) -> TableInfo | None:
        mappings = self._mappings(self.index)
        if mappings is None:
            return None
        schema = typemap.schema_of(mappings)
        return TableInfo(self.index, [ColumnInfo(f.name, f.type, str(typemap.logical_of(f))) for f in schema],
                         list(typemap.key_of(mappings)))

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_action(spec)
        mappings = self._mappings(self.index)
        plan = TargetPlan(target=f"{self.config.type} {self.config.location()} index {self.index}")
        key = spec.key if spec.mode == WriteMode.UPSERT else ()
        if spec.mode == WriteMode.REPLACE:
            side = self._side()
            plan.ddl.append(f"PUT /{side} " + json.dumps({"mappings": self._new_mappings(schema, key, mappings)}))
            plan.notes.append(f"mode replace loads index {side}, then points alias {self.index} at it in one "
                              "_aliases request when the run finishes")
        elif mappings is None:
            plan.ddl.append(f"PUT /{self.index} " + json.dumps({"mappings": typemap.index_mappings(schema, key)}))
        else:
            missing = {f.name: typemap.field_mapping(typemap.logical_of(f)) for f in schema
                       if f.name not in (mappings.get("properties") or {})}
            if missing:
                plan.ddl.append(f"PUT /{self.index}/_mapping " + json.dumps({"properties": missing}))
        action, key = self._how(spec, mappings)
        ids = f"_id from ({', '.join(key)})" if key else "_id from run, partition and row position"
        plan.per_batch.append(f"POST /_bulk: {action} actions, {ids}; at most {self.config.chunk_rows:,} documents "
                              f"and {self.config.chunk_bytes:,} bytes a request")
        plan.per_batch.append(f"PUT /{self.config.checkpoint_index}/_doc/<run>:<partition>?refresh=wait_for (checkpoint)")
        for f in schema:
            if typemap.logical_of(f).name == "decimal":
                plan.notes.append(f"column {f.name}: decimals are stored as keyword text to keep every digit")
                break
        return plan

    def _check_action(self, spec: WriteSpec) -> None:
        if spec.mode == WriteMode.UPSERT and self.config.action is not None:
            raise TerminalError(
                f"{self.description}: 'action' applies to modes append and replace; with mode upsert the conflict "
                "strategy decides (overwrite: index, skip: create, merge: update with doc_as_upsert, fail: create "
                "after looking the keys up). Remove 'action'")

    def _how(self, spec: WriteSpec, mappings: dict[str, Any] | None) -> tuple[str, tuple[str, ...]]:
        """The bulk action and the key columns naming the documents."""
        if spec.mode == WriteMode.UPSERT:
            action = {ConflictStrategy.OVERWRITE: "index", ConflictStrategy.SKIP: "create",
                      ConflictStrategy.MERGE: "update", ConflictStrategy.FAIL: "create"}[spec.strategy]
            return action, tuple(spec.key)
        key = typemap.key_of(mappings or {}) if spec.mode == WriteMode.APPEND else ()
        action = self.config.action or ("create" if key else "index")
        return ("update" if action == "upsert" else action), key

    # --- preparing the index -------------------------------------------------------------

    def _alias_targets(self) -> list[str]:
        answer = self.client.request("GET", f"/_alias/{_path(self.index)}", f"reading alias {self.index}",
                                     missing_ok=True)
        return sorted(answer) if answer else []

    def _side(self) -> str:
        """The index a replace loads: the one of Portl's two the alias does not point to."""
        current = self._alias_targets()
        for suffix in SIDES:
            if self.index + suffix not in current:
                return self.index + suffix
        return self.index + SIDES[0]

    def _new_mappings(self, schema: pa.Schema, key: tuple[str, ...], old: dict[str, Any] | None) -> dict[str, Any]:
        mappings = typemap.index_mappings(schema, key)
        if old:  # the fields of the index being replaced keep their mapping
            properties = dict(old.get("properties") or {})
            for name, mapping in mappings["properties"].items():
                properties.setdefault(name, mapping)
            mappings["properties"] = properties
        return mappings

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_action(spec)
        self._spec = spec
        self.checkpoints.ensure()
        mappings = self._mappings(self.index)
        key = spec.key if spec.mode == WriteMode.UPSERT else ()
        if spec.mode == WriteMode.REPLACE:
            self.target = self._side()
            existing = self._mappings(self.target)
            if existing is not None and not resuming:
                self.client.request("DELETE", f"/{_path(self.target)}", f"deleting index {self.target}")
                existing = None
            if existing is None:
                self._create(self.target, self._new_mappings(schema, key, mappings))
            self._action, self._key = self._how(spec, None)
            return
        if mappings is None:
            self._create(self.index, typemap.index_mappings(schema, key))
        elif spec.create_missing_columns:
            missing = {f.name: typemap.field_mapping(typemap.logical_of(f)) for f in schema
                       if f.name not in (mappings.get("properties") or {})}
            if missing:
                self.client.request("PUT", f"/{_path(self.index)}/_mapping", f"adding fields to index {self.index}",
                                    body={"properties": missing})
        self._action, self._key = self._how(spec, mappings)
        absent = [k for k in self._key if k not in schema.names]
        if absent:
            raise TerminalError(f"index {self.index} is keyed on ({', '.join(self._key)}), but the rows have no "
                                f"{', '.join(absent)}: map {'it' if len(absent) == 1 else 'them'}, since each document's _id is made of its key")

    def _create(self, index: str, mappings: dict[str, Any]) -> None:
        self.client.request("PUT", f"/{_path(index)}", f"creating index {index}", body={"mappings": mappings})

    # --- writing -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Bulk]:
        """A :class:`Bulk`. After one that ended in an error (a refused document), the next goes
        on with it: the engine writes the batch's good rows again in a fresh transaction, and
        they are answered from what the first request did."""
        bulk, self._spoilt = self._spoilt or Bulk(), None
        try:
            yield bulk
        except BaseException:
            self._spoilt = bulk
            raise

    @contextmanager
    def savepoint(self, tx: Bulk) -> Iterator[None]:
        """Nothing to undo: a part written again is answered from what was done (see :class:`Bulk`)."""
        yield

    def place_rows(self, tx: Bulk, run_id: str, checkpoint: Checkpoint, places: list[int]) -> None:
        tx.place(run_id, checkpoint.partition, places)

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Bulk) -> WriteResult:
        if self._spec is None:
            self._spec = spec
        start = tx.start_of(batch)
        outcomes = tx.outcomes if start is not None else {}  # a batch the engine did not place: nothing to recall
        offset = start or 0
        todo = [i for i in range(batch.num_rows) if offset + i not in outcomes]
        if todo:
            part = batch if len(todo) == batch.num_rows else batch.take(pa.array(todo, pa.int64()))
            docs, warnings = typemap.documents(part)
            self._warnings += [w for w in warnings if w not in self._warnings]
            ids = [self._id(doc, tx, offset + i) for doc, i in zip(docs, todo)]
            for i, outcome in zip(todo, self._send(docs, ids, spec)):
                outcomes[offset + i] = outcome
        result = WriteResult()
        for i in range(batch.num_rows):
            outcome = outcomes[offset + i]
            if isinstance(outcome, Refusal):
                raise RowRefused(outcome.reason, row=i, column=outcome.column,
                                 doing=f"writing into {self.config.type} index {self.target}")
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def _id(self, doc: dict[str, Any], tx: Bulk, position: int) -> str | None:
        if self._key:
            return typemap.key_text([doc.get(k) for k in self._key])
        if tx.places is not None and tx.run_id is not None:
            if position >= len(tx.places):  # a document the cluster named would be copied on a resend
                raise TerminalError(f"writing into {self.config.type} index {self.target}: row {position + 1} of the "
                                    f"batch has no place in the source ({len(tx.places)} places given)")
            return f"{tx.run_id}.{tx.partition}.{tx.places[position]}"
        return None  # written outside a run: the cluster names it

    def _send(self, docs: list[dict[str, Any]], ids: list[str | None], spec: WriteSpec) -> list[Any]:
        """Send documents in bulk; return each one's outcome (INSERTED / UPDATED / SKIPPED or a Refusal)."""
        action, keyed = self._action, bool(self._key)
        strategy = spec.strategy if spec.mode == WriteMode.UPSERT else None
        if strategy == ConflictStrategy.FAIL:
            self._fail_on_existing(docs, ids)
        actions = []
        waiting: dict[Any, deque[int]] = {}
        for i, (doc, doc_id) in enumerate(zip(docs, ids)):
            item: dict[str, Any] = {"_op_type": action, "_index": self.target}
            if doc_id is not None:
                item["_id"] = doc_id
            if action == "update":
                body = {k: v for k, v in doc.items() if v is not None} if strategy == ConflictStrategy.MERGE else doc
                item.update(doc=body, doc_as_upsert=True)
            else:
                item["_source"] = doc
            actions.append(item)
            waiting.setdefault(doc_id if doc_id is not None else i, deque()).append(i)
        outcomes: list[Any] = [None] * len(docs)
        conflicts: list[int] = []
        throttled = ""
        doing = f"writing into {self.config.type} index {self.target}"
        try:
            for position, (ok, result) in enumerate(self.client.bulk(
                    actions, chunk_rows=self.config.chunk_rows, chunk_bytes=self.config.chunk_bytes,
                    max_retries=self.config.max_retries)):
                info = next(iter(result.values())) if len(result) == 1 else result
                doc_id = info.get("_id")
                queue = waiting.get(doc_id) if doc_id in waiting else waiting.get(position)
                i = queue.popleft() if queue else position
                status = int(info.get("status", 200))
                if ok:
                    created = info.get("result") == "created" or status == 201
                    outcomes[i] = INSERTED if created or not keyed else UPDATED
                elif status == 409 and action == "create":
                    if strategy == ConflictStrategy.SKIP:
                        outcomes[i] = SKIPPED
                    elif not keyed:  # its own _id: written by an earlier attempt of this batch
                        outcomes[i] = INSERTED
                    else:
                        conflicts.append(i)
                elif status == 429 or status >= 500:
                    throttled = f"{status} {_item_reason(info)}"
                else:
                    reason = _item_reason(info)
                    match = _FIELD.search(reason)
                    outcomes[i] = Refusal(reason, match.group(1) if match else None)
        except Exception as exc:
            raise translate(exc, doing, self.client.where) from exc
        if throttled:
            raise TransientError(f"{doing}: {self.client.where} still answered {throttled} after "
                                 f"{self.config.max_retries} retries; the batch will be sent again")
        if conflicts:
            self._settle_conflicts(conflicts, docs, ids, outcomes, strategy)
        return outcomes

    def _existing(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The documents of ``ids`` already in the target, by ``_id``."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 1000):
            answer = self.client.request("POST", f"/{_path(self.target)}/_mget", f"looking up keys in {self.target}",
                                         body={"ids": ids[start:start + 1000]})
            for doc in answer.get("docs", []):
                if doc.get("found"):
                    found[doc["_id"]] = doc.get("_source") or {}
        return found

    def _fail_on_existing(self, docs: list[dict[str, Any]], ids: list[str | None]) -> None:
        """Strategy fail: refuse the batch before writing anything when a key is there already
        (other than as this very row: written by an earlier attempt of the batch)."""
        existing = self._existing([i for i in ids if i is not None])
        taken = [self._key_values(doc) for doc, doc_id in zip(docs, ids)
                 if doc_id in existing and not _same(existing[doc_id], doc)]
        if taken:
            raise ConflictError(self.description, list(self._key), taken)

    def _settle_conflicts(self, conflicts: list[int], docs: list[dict[str, Any]], ids: list[str | None],
                          outcomes: list[Any], strategy: ConflictStrategy | None) -> None:
        """Documents ``create`` found taken: the same document (an earlier attempt of this batch
        wrote it) counts as loaded; another one is a refusal, or a conflict under strategy fail."""
        existing = self._existing([ids[i] for i in conflicts])
        taken = []
        for i in conflicts:
            if _same(existing.get(ids[i]), docs[i]):
                outcomes[i] = INSERTED
            elif strategy == ConflictStrategy.FAIL:
                taken.append(self._key_values(docs[i]))
            else:
                outcomes[i] = Refusal(f"a document with _id {ids[i]!r} (key {', '.join(self._key)}) already exists "
                                      f"in index {self.target}")
        if taken:
            raise ConflictError(self.description, list(self._key), taken,
                                where="{verb} in " + self.target + " (created while the batch was written; its other "
                                "documents are written)")

    def _key_values(self, doc: dict[str, Any]) -> tuple:
        return tuple(doc.get(k) for k in self._key)

    # --- checkpoints (checkpoints.CheckpointIndex) ---------------------------------------

    def save_checkpoint(self, tx: Bulk, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        self.checkpoints.save(run_id, checkpoint, state)

    def load_checkpoints(self, run_id: str) -> RunCheckpoints:
        return self.checkpoints.of_run(run_id)

    def job_checkpoints(self, job: str) -> dict[str, RunCheckpoints]:
        return self.checkpoints.of_job(job)

    def forget_run(self, run_id: str) -> None:
        self.checkpoints.forget(run_id)

    # --- finishing -----------------------------------------------------------------------

    def finish(self, run_id: str) -> None:
        if self._spec is None or self._spec.mode != WriteMode.REPLACE:
            return
        current = self._alias_targets()
        if self._mappings(self.index) is not None and not current:
            actions = [{"add": {"index": self.target, "alias": self.index}}, {"remove_index": {"index": self.index}}]
        else:
            actions = [{"remove": {"index": name, "alias": self.index}} for name in current]
            actions.append({"add": {"index": self.target, "alias": self.index}})
        self.client.request("POST", "/_aliases", f"pointing alias {self.index} at index {self.target}",
                            body={"actions": actions})
        for name in current:
            if name != self.target and name in (self.index + s for s in SIDES):
                self.client.request("DELETE", f"/{_path(name)}", f"deleting the replaced index {name}", missing_ok=True)

    def count_rows(self) -> int | None:
        target = self.target
        if self._mappings(target) is None:
            return 0
        self.client.request("POST", f"/{_path(target)}/_refresh", f"refreshing index {target}")
        answer = self.client.request("POST", f"/{_path(target)}/_count", f"counting documents of index {target}")
        return int(answer.get("count", 0))

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def close(self) -> None:
        self.client.close()


def _item_reason(info: dict[str, Any]) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            text += f" ({cause.get('type', '')}: {cause['reason']})"
        return text
    return str(error or info.get("result") or f"status {info.get('status')}")


def _same(existing: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    """Whether a stored document is this one (nulls and absent fields alike)."""
    if existing is None:
        return False
    names = set(existing) | set(doc)
    return all(json.dumps(existing.get(n), sort_keys=True) == json.dumps(doc.get(n), sort_keys=True) for n in names)

