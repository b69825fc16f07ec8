"""``run()``: execute a :class:`~portl.engine.plan.Plan` and return a :class:`RunReport`.

Per partition of the source, one worker reads and maps batches on a reader thread while it writes
the previous batch: ``read -> map -> before_row hooks -> settle duplicate keys`` then, under the
destination's write lock, ``rejects appended -> sink.write -> checkpoint saved -> commit``. Every
source row ends in exactly one bucket: inserted, updated, skipped (with a reason) or rejected.

A lone partition writing to a destination that takes several writers keeps two batches in flight,
committed in order (:mod:`portl.engine.pipeline`). A block the plan lets go verbatim skips the
mapping and goes to ``sink.write_verbatim`` (:mod:`portl.engine.verbatim`). A row the destination
refuses for its data is rejected alone: the batch is written again in parts, in savepoints, and the
good rows commit with the checkpoint (:mod:`portl.engine.isolate`).

Whether a job has an unfinished run to continue, or to refuse a new append over, is decided by the
destination's own checkpoints (:mod:`portl.engine.unfinished`), not by the ledger.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import Checkpoint, Chunk, ConflictStrategy, Reject, Verbatim, WriteMode, WriteResult
from portl.engine.conflicts import settle_duplicates
from portl.engine.events import Events
from portl.engine.executor import LocalExecutor
from portl.engine.hooks import HookContext, HookRunner
from portl.engine.incremental import STATE_KEY as INCREMENTAL, continue_window
from portl.engine.isolate import isolate, record_starts, refused_rejects, text_rejects
from portl.engine.ledger_sync import LedgerSync
from portl.engine.mapping import apply_mapping
from portl.engine.pipeline import Abandoned, current_turn, write_in_order
from portl.engine.outcome import Counts, RunReport
from portl.engine.plan import Plan
from portl.engine.prefetch import prefetch
from portl.engine.rejects import RejectFile
from portl.engine.source_news import SourceNews
from portl.engine.retry import call_with_retries, resumable_read
from portl.engine.unfinished import FINISHED, Unfinished, job_key, unfinished_runs
from portl.engine.validation import check_row_count
from portl.engine.verbatim import empty_like
from portl.plural import counted
from portl.errors import (
    ChecksFailed, ConflictError, Interrupted, RejectLimitExceeded, ResumeError, RowRefused, TerminalError,
    TransientError, ValidationFailed,
)
from portl.state import ledger as L

SKIP_DUPLICATE = "duplicate key in the source (first row kept)"
SKIP_CONFLICT = "key already in the destination (strategy skip)"
PIPELINE_DEPTH = 2  # batches of a lone partition in flight at once (see engine.pipeline)


@dataclass
class RunOptions:
    """How to run: ledger location, resume/restart, events, and the stop signal (Ctrl-C).

    ``state_dir`` None: the ledger follows the job (:func:`portl.state.ledger.state_dir_for`)."""

    state_dir: str | None = None
    resume: bool = False
    restart: bool = False
    events: Events = field(default_factory=Events)
    stop: threading.Event = field(default_factory=threading.Event)
    halt: threading.Event = field(default_factory=threading.Event)
    """Set to abort at once (a second Ctrl-C): batches being written roll back instead of committing."""
    record_key: tuple[str, ...] = ()
    """Destination columns naming a record. Set: after each commit, a ``records`` event gives the
    key of each rejected row by its record number (and, with ``record_outcomes``, of every row
    written), for a caller that keeps a log of records (the service)."""
    record_outcomes: bool = False


@dataclass
class Prepared:
    """A batch ready to write, with what happened to the rows that will not be."""

    chunk: Chunk
    data: pa.RecordBatch
    source_index: pa.Array
    rejects: list[Reject]
    skipped: dict[str, int]
    folded: int
    rows_read: int
    verbatim: Verbatim | None = None
    """The block's text, when it goes to the destination as it is (``data`` is then empty)."""
    refused: list[Reject] = field(default_factory=list)
    """Rows the destination refused at the last attempt to write the batch (``engine.isolate``)."""
    hint: RowRefused | None = None
    """The refusal of the block's text, its row counted in ``data``: where to start looking."""
    reject_keys: dict[int, str] = field(default_factory=dict)
    """With ``RunOptions.record_key``: the key of each rejected row the source could read, by record number."""

    @property
    def rows_to_write(self) -> int:
        return self.verbatim.rows if self.verbatim is not None else self.data.num_rows


def run(plan: Plan, options: RunOptions | None = None) -> RunReport:
    """Execute ``plan``. Raises a :class:`PortlError` on failure, after recording it in the ledger."""
    options = options or RunOptions()
    if not isinstance(plan, Plan):  # a whole-database copy
        from portl.engine.copy import run_database

        if plan.errors:
            raise ValidationFailed("the plan has errors, nothing was written:\n" + "\n".join(f"  - {e}" for e in plan.errors))
        return run_database(plan, options)
    if plan.errors:
        raise ValidationFailed("the plan has errors, nothing was written:\n" + "\n".join(f"  - {e}" for e in plan.errors))
    state_dir = L.state_dir_for(plan.job.base_dir, options.state_dir)
    # A --resume with no ledger there yet opens one only if the destination has a run to continue:
    # a failed --resume leaves no stray ledger behind.
    ledger = None if options.resume and not L.ledger_exists(state_dir) else L.Ledger(state_dir)
    the_run = _Run(plan, options, ledger, state_dir)
    try:
        with _COLLECTIONS.fewer():
            return the_run.execute()
    finally:
        if the_run.ledger is not None:
            the_run.ledger.close()


class _Collections:
    """The cyclic garbage collector's first threshold: 50,000 allocations while any run goes on,
    not 700.

    Batches are few large objects, but a driver may allocate a container per row (psycopg's COPY
    reads make a generator per row): at 700 the collector then runs thousands of times, each
    oldest-generation pass walking every object of the process, which cost a third of the CPU time
    of reading a million Postgres rows. Runs may overlap (threads of one process): the last one
    to finish puts the old threshold back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._saved: tuple[int, ...] = ()

    @contextmanager
    def fewer(self) -> Iterator[None]:
        with self._lock:
            if not self._runs:
                self._saved = gc.get_threshold()
                gc.set_threshold(max(self._saved[0], 50_000), *self._saved[1:])
            self._runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if not self._runs:
                    gc.set_threshold(*self._saved)


_COLLECTIONS = _Collections()


class _Run:
    def __init__(self, plan: Plan, options: RunOptions, ledger: L.Ledger | None, state_dir: str):
        self.plan, self.options, self.ledger, self.state_dir = plan, options, ledger, state_dir
        self.job = plan.job.job
        self.job_key = job_key(plan.name, plan.job.job.destination)
        # Written into every checkpoint's state: the destination can then tell this job's
        # unfinished runs from finished ones whatever ledger a later run finds (engine.unfinished).
        self.state_extra: dict[str, Any] = {"job": self.job_key}
        if getattr(plan, "incremental", None) is not None:  # the window commits with the rows (engine.incremental)
            self.state_extra[INCREMENTAL] = plan.incremental.to_state()
        self.superseded: list[str] = []
        self.events = options.events
        self.sink, self.source = plan.sink, plan.source
        # Rejects name their source the way the source's own parser rejects do: its short name.
        self.source_name = getattr(plan.source, "name", plan.source.description)
        self.rejects = RejectFile(plan.reject_path)
        # One transaction for the whole job means one connection: its writes cannot overlap.
        writers = max(1, plan.sink.capabilities.concurrent_writers)
        single = writers == 1 or plan.job.job.transaction == "job"
        self.write_lock = threading.Lock() if single else None
        # A partition writes its next batch while the previous one commits (engine.pipeline),
        # within the writers the destination takes; see _share_writers for several partitions.
        self.depth = 1 if single else min(PIPELINE_DEPTH, writers)
        self.writer_slots = threading.BoundedSemaphore(writers)
        self.commit_lock = threading.Lock()
        self.batches_started = 0
        self.counts_lock = threading.Lock()
        self.partition_counts: dict[str, Counts] = {}
        self.abort = threading.Event()
        self.job_tx: Any = None
        self.warnings = list(plan.warnings)
        self.hooks: HookRunner | None = None
        self.ledger_sync: LedgerSync | None = None
        self.quality: Any = None  # the quality: checks' gate (engine.quality_run), once the ledger is open
        self.quality_report: Any = None
        # The source columns the record key is read from, for rows rejected before they had one.
        by_name = {c.name: c.sources for c in plan.mapping.columns}
        self.key_sources = tuple(by_name[k][0] for k in options.record_key if len(by_name.get(k, ())) == 1)
        if len(self.key_sources) != len(options.record_key):
            self.key_sources = ()

    # --- the run as a whole ---------------------------------------------------------------

    def execute(self) -> RunReport:
        started = time.monotonic()
        record, starts, resumed, committed = self._open_run()
        earlier = self.total().read  # what the run being resumed had committed; not this process's work
        if record is None:
            return self._already_finished()
        self.run_id = record.id
        self.events.run_id = record.id
        status, error = L.FAILED, None
        self.ledger_sync = LedgerSync(self.ledger, self.run_id)
        if self.job.quality:
            from portl.engine.quality_run import RunQuality

            self.quality = RunQuality(self.plan, self.ledger)
            self.quality.adopt_earlier(self.rejects.path, earlier)
            self.quality.gate.note("run", f"run {record.id} {'resumed' if resumed else 'started'}, loading "
                                          f"{self.source.description} into {self.sink.description}")
        self.earlier_rows = earlier
        try:
            self.hooks = HookRunner(self.job.hooks, HookContext(self.plan.name, record.id, self.plan.job.base_dir),
                                    self.job.retry.attempts, self.job.retry.backoff_ms)
            self.events.emit("run_started", resumed=resumed, partitions=len(starts), target=self.sink.description)
            self.hooks.run_event("before_job", {"job": self.plan.name, "run_id": self.run_id, "resumed": resumed})
            self.sink.prepare(self.plan.mapping.schema, self.plan.spec, resuming=committed)
            for run_id in self.superseded:  # never to be continued: this run loads their rows again
                self.sink.forget_run(run_id)
            self._load(starts)
            self.ledger_sync.close()
            for part in (self.source, self.sink):  # values changed on the way: zero dates, NaN...
                for warning in getattr(part, "warnings", lambda: [])():
                    self._warn_once(warning)
            if self.options.stop.is_set():
                raise Interrupted(self._interrupted_message())
            self._finish_checks()
            if self.quality is not None and self.quality_report is None:  # batches committed as they went
                self._judge_quality(None)
            self._warn_of_rejects()
            self._mark_finished()
            self.sink.finish(self.run_id)
            checks_failed = self.quality_report is not None and self.quality_report.exit_code
            summary = RunReport(self.run_id, self.plan.name, L.FAILED_CHECKS if checks_failed else L.SUCCEEDED,
                                self.total(), time.monotonic() - started,
                                self.rejects.path if self.total().rejected else None, resumed, warnings=self.warnings,
                                earlier_rows=earlier)
            self.hooks.run_event("after_job", summary.to_json())
            if checks_failed:
                status = L.FAILED_CHECKS
                raise self._checks_failed(loaded=True)
            status = L.SUCCEEDED
        except Interrupted as exc:
            status, error = L.INTERRUPTED, str(exc)
            raise
        except RejectLimitExceeded as exc:
            status, error = L.REJECT_LIMIT, str(exc)
            raise
        except ChecksFailed as exc:
            status, error = L.FAILED_CHECKS, str(exc)
            raise
        except KeyboardInterrupt:
            status, error = L.INTERRUPTED, "aborted by a second Ctrl-C; the batch in flight was rolled back"
            raise
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            failure = sys.exc_info()[1]
            try:
                self.ledger_sync.close()
            except Exception:  # the run failed already; its own error is the one to report
                pass
            if self.hooks is not None:
                self.hooks.close()
            counts = self.total()
            self.ledger.finish_run(self.run_id, status, counts.to_json(), error)
            quality = self._keep_quality(status)
            report = RunReport(self.run_id, self.plan.name, status, counts, time.monotonic() - started,
                               self.rejects.path if counts.rejected else None, resumed, warnings=self.warnings, error=error,
                               earlier_rows=earlier, quality=quality)
            if failure is not None:
                failure.report = report  # the CLI shows the counts reached before the failure
            self.events.emit("run_finished", level="info" if status == L.SUCCEEDED else "error", status=status,
                             counts=counts.to_json(), error=error)
        return report

    def _open_run(self) -> tuple[L.RunRecord | None, list[Checkpoint], bool, bool]:
        """Start a fresh run or reopen the one being resumed. Returns the run, the partition starts,
        whether this is a resume, and whether the destination holds committed batches of it.

        The destination's checkpoints decide whether the job has an unfinished run
        (:mod:`portl.engine.unfinished`); the ledger adds what it knows of it."""
        plan, job = self.plan, self.job
        previous = self.ledger.latest(plan.name, plan.job.path) if self.ledger is not None else None
        ledger_run = previous.id if previous is not None and previous.unfinished else None
        if ledger_run is not None and self._finished_elsewhere(ledger_run):
            previous, ledger_run = self.ledger.latest(plan.name, plan.job.path), None
        pending = unfinished_runs(self.sink, self.job_key, ledger_run)
        if self.options.resume and not self.options.restart:
            if pending:
                return self._reopen(pending[-1], previous)
            if ledger_run is not None and self.sink.capabilities.resumable and self.ledger.get(ledger_run).checkpoints:
                # The ledger saw batches commit, the destination holds none of them: a run recorded
                # elsewhere finished it or replaced it. Starting it over would load them again.
                raise ResumeError(
                    f"run {ledger_run} committed batches, but {self.sink.description} holds no checkpoint of it: "
                    "it was finished or replaced by a run recorded in another ledger. Nothing was changed; "
                    "to load the source again, run the job without --resume")
            if ledger_run is not None:  # nothing was committed (or kept): it starts again under its own id
                return self._reopen(Unfinished(ledger_run, {}), previous)
            if previous is not None:
                self.previous = previous
                return None, [], True, False
            where = self.ledger.path if self.ledger is not None else os.path.join(self.state_dir, L.STATE_FILE)
            raise ResumeError(f"nothing to resume: job {plan.name!r} has no unfinished run in {self.sink.description} "
                              f"and no recorded run in {where}")
        if pending:
            last = pending[-1]
            if plan.spec.mode == WriteMode.APPEND and not self.options.restart:
                raise ResumeError(
                    f"run {last.run_id} of job {plan.name!r} stopped after committing {counted(last.rows, 'source row')} "
                    f"into {self.sink.description}; appending again would load them twice. "
                    f"Continue it with: portl run {plan.job.path} --resume (or start over with --restart, "
                    "which loads those rows again)"
                )
            self.warnings.append(self._new_run_note(last))
            self.superseded = [p.run_id for p in pending]
        elif ledger_run is not None:
            self.warnings.append(f"the previous run {ledger_run} did not finish (it committed nothing); this is a new run")
        starts = self.source.partitions(job.parallel.workers)
        self.rows_before = self.sink.count_rows() if job.validation.row_count else None
        self.state_extra.update(partitions=len(starts), rows_before=self.rows_before)
        meta = {"partitions": [s.to_json() for s in starts], "rows_before": self.rows_before,
                "rejects_file": self.rejects.path, "destination": self.sink.description, "mode": plan.spec.mode.value}
        if INCREMENTAL in self.state_extra:
            meta[INCREMENTAL] = self.state_extra[INCREMENTAL]
        if self.ledger is None:
            self.ledger = L.Ledger(self.state_dir)
        record = self.ledger.start_run(plan.name, plan.job.path, plan.job_hash, meta)
        self.rejects.start_fresh()
        return record, starts, False, False

    def _finished_elsewhere(self, run_id: str) -> bool:
        """Whether the destination says the ledger's unfinished run finished after all (continued
        with another ledger); the ledger then records it as it ended."""
        if not self.sink.capabilities.resumable:
            return False
        marker = self.sink.load_checkpoints(run_id).get(FINISHED)
        if marker is None:
            return False
        self.ledger.finish_run(run_id, L.SUCCEEDED, marker[1].get("counts", {}), None)
        return True

    def _reopen(self, pending: Unfinished, previous: L.RunRecord | None) -> tuple[L.RunRecord, list[Checkpoint], bool, bool]:
        """Continue ``pending``: the ledger's record of it, or one made from the destination's
        checkpoints when this ledger never saw it (a run started from elsewhere)."""
        plan, committed = self.plan, pending.committed
        note = continue_window(plan, committed, self.state_extra)  # before its partitions are cut again
        if note is not None:
            self.warnings.append(note)
        if self.ledger is None:
            self.ledger = L.Ledger(self.state_dir)
        record = previous if previous is not None and previous.id == pending.run_id else self.ledger.get(pending.run_id)
        if record is None:
            starts = pending.starts(self.source.partitions(pending.partitions))
            meta = {"partitions": [s.to_json() for s in starts], "rows_before": pending.rows_before,
                    "rejects_file": self.rejects.path, "destination": self.sink.description,
                    "mode": plan.spec.mode.value, "adopted_from_destination": True}
            record = self.ledger.start_run(plan.name, plan.job.path, plan.job_hash, meta, run_id=pending.run_id)
            self.warnings.append(f"run {pending.run_id} is not in the ledger {self.ledger.path}; it is continued from "
                                 f"the checkpoints committed in {self.sink.description}")
        else:
            if record.job_hash != plan.job_hash:
                self.warnings.append(f"the job file changed since run {record.id} started; resuming with the new version")
            self.ledger.reopen(record.id)
            starts = [Checkpoint.from_json(p) for p in record.meta.get("partitions", [])] or self.source.partitions(1)
            starts = pending.starts(starts)
        for partition, (cp, state) in committed.items():
            self.partition_counts[partition] = Counts.from_json(state.get("counts", {}))
        offset = max((state.get("rejects_offset", 0) for _, state in committed.values()), default=0)
        self.rejects.truncate(offset)
        self.rows_before = record.meta.get("rows_before")
        self.state_extra.update(partitions=len(starts), rows_before=self.rows_before)
        self.events.run_id = record.id
        self.events.emit("resuming", run_id=record.id, committed_rows=sum(c.read for c in self.partition_counts.values()),
                         committed_bytes=sum(c.bytes for c in self.partition_counts.values()))
        return record, starts, True, bool(committed)

    def _new_run_note(self, last: Unfinished) -> str:
        """What a new run does about an unfinished one it does not continue (upsert, replace, --restart)."""
        spec = self.plan.spec
        stopped = f"run {last.run_id} stopped after committing {counted(last.rows, 'source row')}"
        if spec.mode == WriteMode.UPSERT:
            return (f"{stopped}; this new run loads every source row again: keys already loaded are "
                    f"{'left as they are' if spec.strategy == ConflictStrategy.SKIP else 'updated'} "
                    f"(strategy {spec.strategy.value}), none is duplicated. It can no longer be continued with --resume")
        if spec.mode == WriteMode.REPLACE:
            return f"{stopped}; this new run replaces the destination's rows, so its rows are not kept twice"
        return (f"{stopped}; --restart loads every source row again, and the rows it committed stay in "
                f"{self.sink.description}: delete them first unless you want them twice")

    def _mark_finished(self) -> None:
        """Commit the checkpoint that tells the destination this run finished (engine.unfinished)."""
        if not self.sink.capabilities.resumable:
            return
        with self.sink.transaction() as tx:
            self.sink.save_checkpoint(tx, self.run_id, Checkpoint(FINISHED, {}, self.total().read, done=True),
                                      {**self.state_extra, "counts": self.total().to_json(),
                                       "rejects_offset": self.rejects.size})

    def _already_finished(self) -> RunReport:
        prev = self.previous
        self.events.run_id = prev.id
        self.events.emit("nothing_to_resume", run_id=prev.id)
        return RunReport(prev.id, prev.job, prev.status, Counts.from_json(prev.counts), 0.0, None, resumed=True,
                         already_finished=True, warnings=[f"run {prev.id} already finished; nothing was changed"])

    def _load(self, starts: list[Checkpoint]) -> None:
        pending = [s for s in starts if not s.done]
        self._share_writers(len(pending))
        loading = getattr(self.source, "loading", None)
        if loading is not None:  # the source follows the commits (a glob of files: a line per file loaded)
            self.ledger_sync = SourceNews(self.ledger_sync, loading(starts), self.events)
        # A failure confined to one partition (a damaged file of a glob) lets the others load to
        # their end; not in one transaction for the job, which would only roll them back.
        executor = LocalExecutor(self.job.parallel.workers, confine=self.job.transaction != "job",
                                 on_confined=lambda start, exc: self.events.emit(
                                     "partition_failed", level="error", partition=start.partition, error=str(exc)))
        if self.job.transaction == "job":
            with self.sink.transaction() as tx:
                self.job_tx = tx
                offset = self.rejects.size
                try:
                    executor.map(self._load_partition, pending, self.abort)
                except BaseException:
                    self.rejects.truncate(offset)
                    raise
                if self.options.stop.is_set():
                    self.rejects.truncate(offset)
                    raise Interrupted("stopped by the user; with transaction: job nothing was committed. Run the job again to start over")
                if self.quality is not None:  # judged before the commit: a critical failure rolls it all back
                    self._judge_quality(tx)
                    if self.quality_report.exit_code:
                        self.rejects.truncate(offset)
                        raise self._checks_failed(loaded=False)
        else:
            executor.map(self._load_partition, pending, self.abort)

    def _share_writers(self, partitions: int) -> None:
        """How the partitions share the destination's writers.

        Each partition keeps ``depth`` batches open (one having its rows written, one committing)
        while that fits in the writers; the slots bound the batches having their rows written at
        once to as many as there are partitions (at least ``PIPELINE_DEPTH``). More such streams
        only made the server contend (1M rows into Postgres on 2 cores, 2 workers: 2.8 s with one
        batch in flight each, 3.0-3.3 s with two writing their rows each). A commit, though, is
        round trips and a disk flush: another batch's rows go in meanwhile, and the partition
        left once the others are done writes with every slot.
        """
        if partitions <= 1 or self.depth <= 1:
            return
        writers = max(1, self.sink.capabilities.concurrent_writers)
        if partitions * self.depth > writers:
            self.depth = 1  # one batch at a time each: the partitions alone keep the writers busy
            return
        self.writer_slots = threading.BoundedSemaphore(min(writers, max(partitions, PIPELINE_DEPTH)))

    def _finish_checks(self) -> None:
        counts = self.total()
        if not counts.balanced:
            raise ValidationFailed(
                f"row accounting failed: read {counts.read:,} but inserted {counts.inserted:,} + updated {counts.updated:,} "
                f"+ skipped {counts.skipped_total:,} + rejected {counts.rejected:,} differ; please report this"
            )
        if self.job.validation.row_count:
            problem = check_row_count(self.plan.spec.mode, getattr(self, "rows_before", None), self.sink.count_rows(), counts.inserted)
            if problem:
                raise ValidationFailed(problem)

    def _judge_quality(self, tx: Any) -> None:
        """Judge the quality checks (in ``tx``, the job's transaction, when there is one)."""
        counts = self.total()
        delta = None
        rows_before = getattr(self, "rows_before", None)
        if any(c.check == "row_count" and c.against == "source" for c in self.job.quality) and rows_before is not None:
            delta = self.sink.count_rows() - rows_before
        self.quality_report = self.quality.judge(counts=counts, tx=tx, rows_delta=delta, run_id=self.run_id,
                                                 resumed_rows=self.earlier_rows, in_one_transaction=tx is not None)
        # Failed warnings are in the report's quality summary, not repeated as run warnings.
        self.events.emit("checks_judged", status=self.quality_report.status, summary=self.quality_report.summary())

    def _checks_failed(self, loaded: bool) -> ChecksFailed:
        from portl.engine.quality_run import checks_failed

        return checks_failed(self.quality_report, self.run_id, loaded)

    def _keep_quality(self, status: str) -> dict[str, Any] | None:
        """Store the quality report (ledger, the job's report files); the run report's summary of it."""
        if self.quality is None:
            return None
        rolled_back = status == L.FAILED_CHECKS and self.job_tx is not None
        loaded = status in (L.SUCCEEDED, L.FAILED_CHECKS) and not rolled_back
        return self.quality.finish(self.quality_report, status, self.ledger, self.run_id, loaded, self.warnings)

    def _warn_of_rejects(self) -> None:
        """A run that loaded little of its source says so, even when no reject limit stopped it."""
        counts = self.total()
        if counts.rejected == 0:
            return
        if counts.rejected == counts.read:  # said even within a reject limit: nothing at all was loaded
            self._warn_once(f"every source row was rejected ({counts.rejected:,}): nothing was loaded. "
                            f"The reasons are in {self.rejects.path}")
        elif counts.rejected * 2 > counts.read and self.job.validation.max_rejects is None:
            self._warn_once(f"{counts.rejected:,} of {counts.read:,} source rows were rejected "
                            f"({100 * counts.rejected / counts.read:.0f}%); the reasons are in {self.rejects.path}. "
                            "Set validation.max_rejects to stop such a run instead")

    def total(self) -> Counts:
        out = Counts()
        with self.counts_lock:
            for c in self.partition_counts.values():
                out.add(c)
        return out

    def _interrupted_message(self) -> str:
        counts = self.total()
        return (f"stopped by the user after {counted(counts.batches, 'committed batch')} "
                f"({counted(counts.read, 'source row')}). "
                f"Nothing is half-written; continue with: portl run {self.plan.job.path} --resume")

    # --- one partition --------------------------------------------------------------------

    def _load_partition(self, start: Checkpoint, abort: threading.Event) -> None:
        counts = self.partition_counts.setdefault(start.partition, Counts())

        def stopped() -> bool:
            return abort.is_set() or self.options.stop.is_set()

        items = prefetch(self._prepared(start), abort)
        try:
            if self.depth > 1:
                done = write_in_order(items, lambda prepared: self._write(prepared, counts), self.depth,
                                      self.writer_slots, stopped)
                last = done.chunk.checkpoint if done is not None else start
            else:
                last = start
                for prepared in items:
                    if stopped():
                        return
                    self._write(prepared, counts)
                    last = prepared.chunk.checkpoint
        finally:
            items.close()
        if stopped():
            return
        self._commit_checkpoint(replace(last, done=True), counts)

    def _prepared(self, start: Checkpoint) -> Iterator[Prepared]:
        def retrying(n: int, exc: Exception, delay: float, at: Checkpoint) -> None:
            self.events.emit("retry", level="warning", attempt=n + 1, error=str(exc), wait_s=round(delay, 3),
                             partition=at.partition, reading_after_row=at.rows)

        # Keys of the rows written are read from parsed batches: a verbatim block is not parsed.
        size, verbatim = self.job.batch.size, None if self.options.record_outcomes else self.plan.verbatim
        # A destination whose requests have a size limit (Google Sheets: 10 MB) takes fewer rows at once.
        size = min(size, getattr(self.sink, "max_batch_rows", None) or size)
        if verbatim is not None:
            request = verbatim.request
            if self.quality is not None:  # the block's check also parses what the quality checks read
                request = replace(request, text=frozenset(self.quality.sources.values()))

            def read(at: Checkpoint) -> Iterator[Chunk]:
                return self.source.read_verbatim(size, at, request)
        else:
            def read(at: Checkpoint) -> Iterator[Chunk]:
                return self.source.read(size, at)

        # A read that drops its connection is opened again from the last chunk's checkpoint.
        reader = resumable_read(read, start, self.job.retry, retrying)
        try:
            for chunk in reader:
                yield self._prepare(chunk)
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()

    def _prepare(self, chunk: Chunk, observe: bool = True) -> Prepared:
        """Map, run the quality checks' row checks, run before_row hooks, settle duplicate keys:
        everything that needs no lock. ``observe`` False: the chunk was seen by the checks already
        (a verbatim block parsed again after the destination refused it)."""
        plan = self.plan
        checking = self.quality is not None and observe
        if chunk.verbatim is not None:  # the plan made sure that none of these steps would change it
            checked = self.quality.checked_batch(chunk) if checking else None
            if checked is not None:  # the source's own check parsed the columns the checks read
                verdict = self.quality.inspect(chunk, checked, None)
                if not verdict.reject:
                    return self._verbatim_prepared(chunk)
                parsed = self.source.parse_verbatim(chunk)  # rows to reject: the block takes the ordinary path
                mapped = apply_mapping(plan.mapping, parsed.data)
                return self._prepare_rows(parsed, mapped, verdict)
            if checking:  # the checks need the rows: parsed here, the text still goes as it is when all pass
                parsed = self.source.parse_verbatim(chunk)
                mapped = apply_mapping(plan.mapping, parsed.data)
                if not mapped.rejects and not parsed.rejects:
                    verdict = self.quality.screen(parsed, mapped.data, mapped.source_index, self.source_name,
                                                  self._originals, [])
                    if not verdict[2]:
                        return self._verbatim_prepared(chunk)
                    return self._prepare_rows(parsed, mapped, verdict)
                return self._prepare_rows(parsed, mapped, None)
            return self._verbatim_prepared(chunk)
        return self._prepare_rows(chunk, apply_mapping(plan.mapping, chunk.data), None, observe)

    def _verbatim_prepared(self, chunk: Chunk) -> Prepared:
        none = pa.array([], pa.int64())
        return Prepared(chunk, empty_like(self.plan.mapping.schema), none, list(chunk.rejects), {}, 0, chunk.rows_read,
                        chunk.verbatim)

    def _prepare_rows(self, chunk: Chunk, mapped: Any, screened: tuple | None, observe: bool = True) -> Prepared:
        plan = self.plan
        for warning in mapped.warnings:
            self._warn_once(warning)
        rejects = list(chunk.rejects)
        reject_keys: dict[int, str] = {}
        mapping_rejects: list[Reject] = []
        if mapped.rejects:
            originals = self._originals(chunk, [e.index for e in mapped.rejects])
            mapping_rejects = [Reject(self.source_name, e.error, chunk.line_of(e.index), chunk.record_of(e.index),
                                      e.column, e.value, originals.get(e.index)) for e in mapped.rejects]
            rejects += mapping_rejects
            if self.key_sources:
                reject_keys = source_keys(chunk, [e.index for e in mapped.rejects], self.key_sources)
        data, index = mapped.data, mapped.source_index
        if screened is not None and not isinstance(screened, tuple):  # a Verdict: observed, its rejects leave
            screened = self.quality.apply(screened, chunk, data, index, self.source_name, self._originals,
                                          mapping_rejects)
        elif screened is None and self.quality is not None and observe:
            screened = self.quality.screen(chunk, data, index, self.source_name, self._originals, mapping_rejects)
        if screened is not None:
            data, index, failing = screened
            if failing:
                rejects += failing
                if self.key_sources:
                    positions = [r.record - chunk.first_record for r in failing
                                 if r.record is not None and chunk.first_record is not None]
                    reject_keys.update(source_keys(chunk, positions, self.key_sources))
        skipped: dict[str, int] = {}
        if self.hooks.has("before_row") and data.num_rows:
            data, dropped = self.hooks.before_rows(data)
            if dropped:
                drop = pa.array(sorted(i for i, _ in dropped), pa.int64())
                keep = pc.invert(pc.is_in(pa.array(range(index.__len__()), pa.int64()), value_set=drop))
                index = index.filter(keep)
                for _, reason in dropped:
                    key = f"hook before_row: {reason}"
                    skipped[key] = skipped.get(key, 0) + 1
        folded = 0
        spec = plan.spec
        if spec.mode == WriteMode.UPSERT and data.num_rows > 1:
            settled = settle_duplicates(data, index, spec.key, spec.strategy)
            if settled.duplicate_keys:
                raise ConflictError(self.sink.description, list(spec.key), settled.duplicate_keys,
                                    where="{verb} more than once in the source batch")
            data, index, folded = settled.batch, settled.source_index, settled.folded
            if settled.skipped_index is not None and len(settled.skipped_index):
                skipped[SKIP_DUPLICATE] = len(settled.skipped_index)
        # Keep the chunk's positions and checkpoint, not its source data (or a connector's raw
        # block): the prefetched batches then hold only what is written.
        slim = replace(chunk, data=chunk.data.slice(0, 0))
        if hasattr(chunk, "_portl_block"):  # but the source's text, for rows the destination may refuse
            slim._portl_block = chunk._portl_block  # type: ignore[attr-defined]
        return Prepared(slim, data, index, rejects, skipped, folded, chunk.rows_read, reject_keys=reject_keys)

    def _warn_once(self, warning: str) -> None:
        with self.counts_lock:
            if warning in self.warnings:
                return
            self.warnings.append(warning)
        self.events.emit("warning", level="warning", message=warning)

    def _originals(self, chunk: Chunk, indexes: list[int]) -> dict[int, str]:
        raw_rows = getattr(self.source, "raw_rows", None)
        if raw_rows is not None:
            try:
                return raw_rows(chunk, indexes)
            except Exception:  # the original text is a courtesy; the reject itself is recorded anyway
                pass
        rows = chunk.data.take(pa.array(indexes, pa.int64())).to_pylist()
        return {i: json.dumps(r, default=str, ensure_ascii=False) for i, r in zip(indexes, rows)}

    def _write(self, prepared: Prepared, counts: Counts) -> None:
        chunk = prepared.chunk
        batch_no = self._next_batch_number()
        self.hooks.run_event("before_batch", {"job": self.plan.name, "run_id": self.run_id, "batch": batch_no,
                                               "partition": chunk.checkpoint.partition, "rows": prepared.rows_to_write})
        delta = self._write_with_policy(prepared, counts, batch_no)
        if delta is None:
            return
        self.events.emit("batch_committed", batch=batch_no, partition=chunk.checkpoint.partition,
                         rows=prepared.rows_read, bytes=chunk.size_bytes, inserted=delta.inserted, updated=delta.updated,
                         skipped=delta.skipped_total, rejected=delta.rejected, totals=self.total().to_json())
        if self.options.record_key:
            written = written_keys(prepared.data, self.options.record_key) if self.options.record_outcomes else []
            self.events.emit("records", batch=batch_no, partition=chunk.checkpoint.partition,
                             rejected=sorted(prepared.reject_keys.items()), written=written,
                             outcome="inserted" if self.plan.spec.mode == WriteMode.APPEND else "loaded")
        self.hooks.run_event("after_batch", {"job": self.plan.name, "run_id": self.run_id, "batch": batch_no,
                                              "counts": self.total().to_json()})
        if self.hooks.has("after_row") and prepared.data.num_rows:
            self.hooks.after_rows(prepared.data, {"batch": batch_no})
        limit = self.job.validation.max_rejects
        total = self.total()
        if limit is not None and total.rejected > limit:
            self.abort.set()
            raise RejectLimitExceeded(
                f"{counted(total.rejected, 'row')} rejected, more than validation.max_rejects ({limit:,}); the run stopped after "
                f"batch {batch_no}. See {self.rejects.path}"
            )

    def _next_batch_number(self) -> int:
        with self.counts_lock:
            self.batches_started += 1
            return self.batches_started

    def _write_with_policy(self, prepared: Prepared, counts: Counts, batch_no: int) -> Counts | None:
        """Write a batch under the retry policy; return what it added to the counts, or None when
        strategy ``skip`` rejected the whole batch instead."""
        policy = self.job.retry

        def attempt(ready: Prepared) -> Counts:
            if self.job_tx is not None:
                return self._commit(ready, counts, self.job_tx)

            def retrying(n: int, exc: Exception, delay: float) -> None:
                self.events.emit("retry", level="warning", batch=batch_no, attempt=n + 1, error=str(exc), wait_s=round(delay, 3))

            tries = 0

            def commit_once() -> Counts:
                nonlocal tries
                tries += 1
                landed = self._landed(ready, counts) if tries > 1 else None
                return landed if landed is not None else self._commit(ready, counts, None)

            return call_with_retries(commit_once, policy, retrying)

        with self.write_lock or nullcontext():
            if prepared.verbatim is not None:
                try:
                    return attempt(prepared)
                except ConflictError:
                    raise
                except (TerminalError, RowRefused) as exc:
                    # The destination refused the text (a value out of range, a NOT NULL column...):
                    # the block is written again in parts, as text when its records are its lines,
                    # else as its Arrow batch, and the refused rows rejected (engine.isolate).
                    self.events.emit("verbatim_refused", batch=batch_no, error=str(exc))
                    if isinstance(exc, RowRefused) and self.sink.capabilities.savepoints and \
                            record_starts(prepared.verbatim) is not None:
                        prepared.hint = exc
                    else:
                        parsed = self._parsed(prepared)
                        parsed.hint = _hint(prepared, parsed, exc)
                        prepared = parsed
                except TransientError as exc:
                    if policy.strategy != "skip" or self.job_tx is not None:
                        raise
                    self._reject_batch(self._parsed(prepared), counts, exc, batch_no)
                    return None
            try:
                return attempt(prepared)
            except ConflictError:
                raise
            except (TransientError, TerminalError, RowRefused) as exc:  # refused: a sink that cannot isolate rows
                if policy.strategy != "skip" or self.job_tx is not None:
                    raise
                self._reject_batch(self._parsed(prepared) if prepared.verbatim is not None else prepared, counts, exc,
                                   batch_no)
                return None

    def _parsed(self, prepared: Prepared) -> Prepared:
        """The ordinary Arrow path for a verbatim block: parsed, mapped, rows that fail rejected."""
        return self._prepare(self.source.parse_verbatim(prepared.chunk), observe=False)

    def _commit(self, prepared: Prepared, counts: Counts, job_tx: Any) -> Counts:
        """Write one batch, then append its rejects, save its checkpoint and commit.

        Writing may run in parallel (sinks with several concurrent writers); the reject append,
        the checkpoint and the commit happen under one lock, so the reject file's length saved in
        any checkpoint covers exactly the batches committed so far."""
        chunk = prepared.chunk
        manager = nullcontext(job_tx) if job_tx is not None else self.sink.transaction()
        active = manager.__enter__()
        prepared.refused = []
        place_rows = getattr(self.sink, "place_rows", None)
        if place_rows is not None:  # a sink without transactions names its rows after their place (PlacedSink)
            place_rows(active, self.run_id, chunk.checkpoint, _places(prepared))
        try:
            try:
                result = self._write_batch(prepared, active, job_tx is not None)
            except RowRefused as refused:
                if prepared.verbatim is not None or not self.sink.capabilities.savepoints:
                    raise  # a verbatim block is cut in _write_with_policy, where its rows can be parsed
                if job_tx is None:  # the batch's transaction is spoilt: the good rows go in a new one
                    spoilt, manager = manager, nullcontext()
                    spoilt.__exit__(type(refused), refused, refused.__traceback__)
                    fresh = self.sink.transaction()
                    active = fresh.__enter__()
                    manager = fresh
                result = self._isolate(prepared, active, refused)
            turn = current_turn()
            if turn is not None:  # the checkpoint must not commit before the previous batch's
                turn.wait()
            if self.options.halt.is_set():  # aborted while this batch was written: it rolls back
                raise Abandoned()
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        delta = self._delta(prepared, result)
        with self.commit_lock:
            before = self.rejects.size
            try:
                offset = self.rejects.append(prepared.rejects + prepared.refused)
                after = Counts()
                after.add(counts)
                after.add(delta)
                state = {**self.state_extra, "counts": after.to_json(), "rejects_offset": offset}
                self.sink.save_checkpoint(active, self.run_id, chunk.checkpoint, state)
            except BaseException:
                self.rejects.truncate(before)
                if not manager.__exit__(*sys.exc_info()):
                    raise
            try:
                manager.__exit__(None, None, None)
            except BaseException:
                if job_tx is None:
                    self.rejects.truncate(before)
                raise
            with self.counts_lock:
                counts.add(delta)
        self.ledger_sync.checkpoint(chunk.checkpoint.partition, chunk.checkpoint.to_json(), state, self.total().to_json())
        return delta

    def _write_batch(self, prepared: Prepared, tx: Any, in_job: bool) -> WriteResult:
        """Write the batch's rows (or its verbatim block) in ``tx``. A batch whose text the
        destination refused before is written in parts straight away (``engine.isolate``); in the
        job's one transaction a batch is written in a savepoint, which a refusal rolls back."""
        spec, savepoints = self.plan.spec, self.sink.capabilities.savepoints
        if prepared.verbatim is not None:
            if prepared.hint is not None:
                return self._isolate_text(prepared, tx, prepared.hint)
            verbatim = self.plan.verbatim
            return self.sink.write_verbatim(prepared.verbatim, list(verbatim.columns), verbatim.format, spec, tx)
        if not prepared.data.num_rows:
            return WriteResult()
        if prepared.hint is not None and not in_job and savepoints:
            return self._isolate(prepared, tx, prepared.hint, hint=True)
        if in_job and savepoints:
            with self.sink.savepoint(tx):
                return self.sink.write(prepared.data, spec, tx)
        return self.sink.write(prepared.data, spec, tx)

    def _landed(self, prepared: Prepared, counts: Counts) -> Counts | None:
        """Before writing a batch again: when the destination holds its checkpoint already, the
        failed attempt did commit (the server committed, then the connection dropped before the
        answer arrived). The batch is then recorded as committed, not written twice; its delta
        comes from the counts committed with it."""
        if not self.sink.capabilities.resumable:
            return None
        checkpoint = prepared.chunk.checkpoint
        saved = self.sink.load_checkpoints(self.run_id).get(checkpoint.partition)
        if saved is None or saved[0].to_json() != json.loads(json.dumps(checkpoint.to_json())):
            return None
        state = saved[1]
        after = Counts.from_json(state.get("counts", {}))
        conflicts = after.skipped.get(SKIP_CONFLICT, 0) - counts.skipped.get(SKIP_CONFLICT, 0)
        result = WriteResult(inserted=after.inserted - counts.inserted,
                             updated=after.updated - counts.updated - prepared.folded,
                             skipped=conflicts - prepared.skipped.get(SKIP_CONFLICT, 0))
        delta = self._delta(prepared, result)
        with self.commit_lock:
            self.rejects.append(prepared.rejects + prepared.refused)  # the failed attempt took them back out
            with self.counts_lock:
                counts.add(delta)
        self.ledger_sync.checkpoint(checkpoint.partition, checkpoint.to_json(), state, self.total().to_json())
        return delta

    def _delta(self, prepared: Prepared, result: WriteResult) -> Counts:
        skipped = dict(prepared.skipped)
        if result.skipped:
            skipped[SKIP_CONFLICT] = skipped.get(SKIP_CONFLICT, 0) + result.skipped
        updated = result.updated + prepared.folded
        return Counts(read=prepared.rows_read, inserted=result.inserted, updated=updated, skipped=skipped,
                      rejected=len(prepared.rejects) + len(prepared.refused), batches=1, bytes=prepared.chunk.size_bytes)

    def _isolate(self, prepared: Prepared, tx: Any, refused: RowRefused, hint: bool = False) -> WriteResult:
        """The destination refused rows of the batch: write it again in parts, each in a savepoint
        of ``tx``, so that the good rows load and each refused row becomes a reject."""
        spec, data = self.plan.spec, prepared.data

        def write(start: int, stop: int) -> WriteResult:
            with self.sink.savepoint(tx):
                return self.sink.write(data.slice(start, stop - start), spec, tx)

        found = isolate(write, data.num_rows, refused, hint=hint, limit=self._refusals_allowed(prepared))
        self._stop_if_too_many(found)
        prepared.refused = refused_rejects(found, data, prepared.source_index, prepared.chunk, self.source_name,
                                           getattr(self.source, "raw_rows", None))
        self.events.emit("rows_refused", rows=len(found.refused), writes=found.writes, error=str(refused))
        return found.result

    def _reject_batch(self, prepared: Prepared, counts: Counts, exc: Exception, batch_no: int) -> None:
        """Retry strategy ``skip``: the batch could not be written, so its rows go to the reject file."""
        chunk = prepared.chunk
        rows = prepared.data.to_pylist()
        message = f"batch {batch_no} could not be written: {exc}"
        positions = prepared.source_index.to_pylist()
        texts = self._source_texts(chunk, positions)
        failed = [Reject(self.source_name, message, chunk.line_of(i), chunk.record_of(i), None, None,
                         texts.get(i) or json.dumps(r, default=str, ensure_ascii=False)) for i, r in zip(positions, rows)]
        empty = replace(prepared, data=prepared.data.slice(0, 0), source_index=prepared.source_index.slice(0, 0),
                        rejects=prepared.rejects + failed, folded=0)
        self._commit(empty, counts, None)
        self.events.emit("batch_rejected", level="error", batch=batch_no, rows=len(failed), error=str(exc))

    def _refusals_allowed(self, prepared: Prepared) -> int | None:
        """How many rows of this batch the destination may refuse before the reject limit is passed."""
        limit = self.job.validation.max_rejects
        return None if limit is None else max(0, limit - self.total().rejected - len(prepared.rejects))

    def _stop_if_too_many(self, found: Any) -> None:
        if found.stopped:  # the batch rolls back: its rejects are not listed, the run stops here
            limit = self.job.validation.max_rejects
            raise RejectLimitExceeded(
                f"more rows rejected than validation.max_rejects ({limit:,}): the destination refused rows of a batch "
                f"past that limit ({found.refused[-1][1].reason}); the batch was rolled back and the run stopped. "
                f"Rows rejected before it are in {self.rejects.path}")

    def _isolate_text(self, prepared: Prepared, tx: Any, refused: RowRefused) -> WriteResult:
        """The destination refused rows of a verbatim block whose records are its lines: load the
        block's text again in parts (``engine.isolate``), without parsing it."""
        block, verbatim, spec = prepared.verbatim, self.plan.verbatim, self.plan.spec
        starts = record_starts(block)

        def write(start: int, stop: int) -> WriteResult:
            part = Verbatim(block.data[starts[start]:starts[stop]], stop - start, block.state)
            with self.sink.savepoint(tx):
                return self.sink.write_verbatim(part, list(verbatim.columns), verbatim.format, spec, tx)

        found = isolate(write, block.rows, refused, limit=self._refusals_allowed(prepared))
        self._stop_if_too_many(found)
        prepared.refused = text_rejects(found, prepared.chunk, block, starts, self.source_name)
        self.events.emit("rows_refused", rows=len(found.refused), writes=found.writes, error=str(refused))
        return found.result

    def _source_texts(self, chunk: Chunk, positions: list[int]) -> dict[int, str]:
        """The source's own text of rows of a prepared chunk, when it has one."""
        raw_rows = getattr(self.source, "raw_rows", None)
        try:
            return raw_rows(chunk, positions) if raw_rows is not None else {}
        except Exception:  # the original text is a courtesy; the reject itself is recorded anyway
            return {}

    def _commit_checkpoint(self, checkpoint: Checkpoint, counts: Counts) -> None:
        """Mark a partition finished, so a resume skips it."""
        with self.write_lock or nullcontext():
            context = nullcontext(self.job_tx) if self.job_tx is not None else self.sink.transaction()
            with self.commit_lock, context as tx:
                state = {**self.state_extra, "counts": counts.to_json(), "rejects_offset": self.rejects.size}
                self.sink.save_checkpoint(tx, self.run_id, checkpoint, state)
            self.ledger_sync.checkpoint(checkpoint.partition, checkpoint.to_json(), state, None)


def _places(prepared: Prepared) -> list[int]:
    """Where each row of a prepared batch sits in its partition of the source (0-based): the rows
    the partition gave before the chunk, plus the row's index in the chunk. The same rows read
    again from the same checkpoint get the same places, whatever the batch size."""
    before = prepared.chunk.checkpoint.rows - prepared.rows_read
    return pc.add(prepared.source_index.cast(pa.int64()), before).to_pylist()


def record_key_text(values: list[Any]) -> str:
    """A record's key as the record log keeps it: the value itself for a one-column key, else a JSON list."""
    if len(values) == 1:
        return "" if values[0] is None else str(values[0])
    return json.dumps([None if v is None else str(v) for v in values], ensure_ascii=False)


def source_keys(chunk: Chunk, indexes: list[int], columns: tuple[str, ...]) -> dict[int, str]:
    """The keys of rows of a chunk as the source read them, by record number."""
    data = chunk.data
    if not indexes or any(c not in data.schema.names for c in columns):
        return {}
    taken = data.select(list(columns)).take(pa.array(indexes, pa.int64())).to_pylist()
    keys = {}
    for i, row in zip(indexes, taken):
        record = chunk.record_of(i)
        if record is not None:
            keys[record] = record_key_text([row[c] for c in columns])
    return keys


def written_keys(data: pa.RecordBatch, columns: tuple[str, ...]) -> list[str]:
    """The keys of the rows of a written batch."""
    if not data.num_rows or any(c not in data.schema.names for c in columns):
        return []
    picked = data.select(list(columns)).to_pylist()
    return [record_key_text([row[c] for c in columns]) for row in picked]


def _hint(block: Prepared, parsed: Prepared, refused: Exception) -> RowRefused | None:
    """The refusal of a verbatim block, its row turned into a row of the block's parsed batch
    (found by its record number), or None when it names no row found there."""
    if not isinstance(refused, RowRefused) or refused.row is None or block.chunk.first_record is None:
        return None
    first = parsed.chunk.first_record
    if first is None:
        return None
    at = pc.index(parsed.source_index, block.chunk.first_record + refused.row - first).as_py()
    if at < 0:
        return None
    return RowRefused(refused.reason, row=at, column=refused.column, value=refused.value, doing=refused.doing)
