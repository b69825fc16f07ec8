"""A run spread over processes (or machines): begun in one place, its partitions loaded in others,
finished where its last partition ends.

:func:`portl.engine.run.run` does a whole run in one process. An executor that hands partitions to
other processes (the service's Celery workers) uses the three parts here instead:

- :func:`start_run` opens a new run: it refuses or supersedes an unfinished run of the job as
  ``run`` does, prepares the destination, and commits each partition's start as its first
  checkpoint. The destination then knows the run and all its partitions: it is their one record.
- :func:`load_partition` loads one partition, from the checkpoint its destination holds. A
  partition loaded again (a task delivered twice, a retry) goes on from its last committed batch,
  and one already done is not loaded at all: every row is committed once.
- :func:`finish_run` runs the checks of a finished run once every partition is done (row
  accounting, row count), commits the run's ``~finished`` checkpoint and the destination's last
  step (a table swap), and runs ``after_job`` hooks. Finishing a finished run changes nothing.

The parts keep no run ledger: the caller keeps its own record of the run (the service's state
database), and the destination's checkpoints are the authority. Each part takes its own reject
file (``plan.reject_path``): processes never append to one file at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from portl.connectors.base import Checkpoint, WriteMode
from portl.engine.hooks import HookContext, HookRunner
from portl.engine.incremental import continue_window
from portl.engine.outcome import Counts, RunReport
from portl.engine.plan import Plan
from portl.engine.run import RunOptions, _Run
from portl.engine.unfinished import FINISHED, unfinished_runs
from portl.errors import Interrupted, PortlError, ResumeError, ValidationFailed
from portl.plural import counted
from portl.state import ledger as L


@dataclass
class Started:
    """A run begun by :func:`start_run`: its id and its partitions' starts."""

    run_id: str
    partitions: list[Checkpoint]
    warnings: list[str]


def refusal(plan: Any) -> str | None:
    """Why the run of ``plan`` cannot be spread over processes, or None when it can."""
    if not isinstance(plan, Plan):
        return "a whole-database copy runs as one piece"
    sink, job = plan.sink, plan.job.job
    if not sink.capabilities.resumable:
        return f"{sink.description} keeps no checkpoints"
    if sink.capabilities.concurrent_writers < 2:
        return f"{sink.description} takes one writer at a time"
    if job.transaction == "job":
        return "the job loads in one transaction (transaction: job)"
    if job.quality:
        return "its quality checks judge the whole input, gathered in one process"
    return None


def start_run(plan: Plan, options: RunOptions | None = None, partitions: int | None = None) -> Started:
    """Begin a run of ``plan`` cut into ``partitions`` (default: the job's ``parallel.workers``);
    no row is loaded."""
    return _Part(plan, options).start(partitions)


def load_partition(plan: Plan, run_id: str, partition: str, options: RunOptions | None = None) -> Counts:
    """Load one partition of the run ``run_id`` from its committed checkpoint; its counts so far,
    over every attempt. Raises :class:`Interrupted` when ``options.stop`` stopped it first."""
    return _Part(plan, options).load_one(run_id, partition)


def finish_run(plan: Plan, run_id: str, options: RunOptions | None = None) -> RunReport:
    """Finish the run ``run_id`` once every partition is done."""
    return _Part(plan, options).finish(run_id)


def _never_loaded(run: Any) -> bool:
    """Whether an unfinished run committed its partitions' starts only (begun by :func:`start_run`,
    then stopped before any batch): forgetting it loses nothing."""
    return all(cp.rows == 0 and not cp.done and not (state.get("counts") or {}).get("read")
               for cp, state in run.committed.values())


class _Quiet:
    """The ledger's copy of checkpoints, for a part that keeps no ledger: nothing to write."""

    def checkpoint(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _Part(_Run):
    def __init__(self, plan: Plan, options: RunOptions | None):
        if plan.errors:
            raise ValidationFailed("the plan has errors, nothing was written:\n" + "\n".join(f"  - {e}" for e in plan.errors))
        why = refusal(plan)
        if why is not None:
            raise PortlError(f"job {plan.name!r} cannot be loaded in parts: {why}")
        options = options or RunOptions()
        super().__init__(plan, options, None, L.state_dir_for(plan.job.base_dir, options.state_dir))
        self.ledger_sync = _Quiet()  # type: ignore[assignment]

    def _hooks(self) -> HookRunner:
        return HookRunner(self.job.hooks, HookContext(self.plan.name, self.run_id, self.plan.job.base_dir),
                          self.job.retry.attempts, self.job.retry.backoff_ms)

    # --- the parts ------------------------------------------------------------------------

    def start(self, partitions: int | None) -> Started:
        plan, sink = self.plan, self.sink
        pending = unfinished_runs(sink, self.job_key)
        empty = [p for p in pending if _never_loaded(p)]  # begun, then nothing loaded: nothing to keep
        pending = [p for p in pending if p not in empty]
        if pending:
            last = pending[-1]
            if plan.spec.mode == WriteMode.APPEND:
                raise ResumeError(
                    f"run {last.run_id} of job {plan.name!r} stopped after committing "
                    f"{counted(last.rows, 'source row')} into {sink.description}; appending again would load them "
                    "twice. Retry the job that started it, which continues it")
            self.warnings.append(self._new_run_note(last))
        starts = self.source.partitions(max(1, partitions or self.job.parallel.workers))
        self.rows_before = sink.count_rows() if self.job.validation.row_count else None
        self.state_extra.update(partitions=len(starts), rows_before=self.rows_before)
        self.run_id = L.new_run_id()
        self.events.run_id = self.run_id
        self.hooks = self._hooks()
        try:
            self.hooks.run_event("before_job", {"job": plan.name, "run_id": self.run_id, "resumed": False})
            sink.prepare(plan.mapping.schema, plan.spec, resuming=False)
            for earlier in empty + pending:  # never to be continued: this run loads their rows again
                sink.forget_run(earlier.run_id)
            with sink.transaction() as tx:
                for start in starts:
                    sink.save_checkpoint(tx, self.run_id, start,
                                         {**self.state_extra, "counts": Counts().to_json(), "rejects_offset": 0})
        finally:
            self.hooks.close()
        self.events.emit("run_started", resumed=False, partitions=len(starts), target=sink.description)
        return Started(self.run_id, starts, list(self.warnings))

    def load_one(self, run_id: str, partition: str) -> Counts:
        self.run_id = self.events.run_id = run_id
        committed = self.sink.load_checkpoints(run_id)
        if partition not in committed:
            raise ResumeError(f"run {run_id} has no partition {partition!r} in {self.sink.description}: it was "
                              "never started there, or a later run of the job replaced it")
        checkpoint, state = committed[partition]
        counts = Counts.from_json(state.get("counts", {}))
        self.partition_counts[partition] = counts
        if checkpoint.done or FINISHED in committed:
            return counts
        self.state_extra.update(partitions=state.get("partitions"), rows_before=state.get("rows_before"))
        continue_window(self.plan, committed, self.state_extra)  # the window the run began with, not this plan's
        self.rejects.truncate(int(state.get("rejects_offset", 0)))  # what a stopped attempt wrote past its commit
        self.hooks = self._hooks()
        try:
            self.sink.prepare(self.plan.mapping.schema, self.plan.spec, resuming=True)
            self._load_partition(checkpoint, self.abort)
        finally:
            self.hooks.close()
        if self.options.stop.is_set():
            raise Interrupted(f"stopped after {counted(counts.batches, 'committed batch')} of partition "
                              f"{partition} ({counted(counts.read, 'source row')})")
        return counts

    def finish(self, run_id: str) -> RunReport:
        started = time.monotonic()
        self.run_id = self.events.run_id = run_id
        committed = self.sink.load_checkpoints(run_id)
        if not committed:
            raise ResumeError(f"run {run_id} has no checkpoint in {self.sink.description}: it was never started "
                              "there, or a later run of the job replaced it")
        marker = committed.pop(FINISHED, None)
        continue_window(self.plan, committed, self.state_extra)  # the ~finished checkpoint keeps the run's mark
        for partition, (_, state) in committed.items():
            self.partition_counts[partition] = Counts.from_json(state.get("counts", {}))
            self.rows_before = state.get("rows_before")
        left = sorted(p for p, (cp, _) in committed.items() if not cp.done)
        if left and marker is None:
            raise PortlError(f"run {run_id} cannot finish: {counted(len(left), 'partition')} not loaded yet "
                             f"({', '.join(left)})")
        self.hooks = self._hooks()
        try:
            self.sink.prepare(self.plan.mapping.schema, self.plan.spec, resuming=True)
            if marker is None:
                self._finish_checks()
                self._warn_of_rejects()
                self._mark_finished()
            self.sink.finish(run_id)
            report = RunReport(run_id, self.plan.name, L.SUCCEEDED, self.total(), time.monotonic() - started,
                               self.rejects.path if self.total().rejected else None, True, warnings=self.warnings,
                               already_finished=marker is not None)
            if marker is None:
                self.hooks.run_event("after_job", report.to_json())
        finally:
            self.hooks.close()
        self.events.emit("run_finished", status=L.SUCCEEDED, counts=report.counts.to_json(), error=None)
        return report
