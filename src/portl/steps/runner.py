"""``run_flow()``: run a flow's steps in order, in one process, inside its database transaction.

The steps are walked by :class:`~portl.steps.walk.Walker`; this module holds what a live run
adds: the :class:`Runtime` (the database session, the HTTP and Lambda clients), the commits, the
delivery of the outbox after commit, the run ledger and the report.

Transactions: with ``scope: db`` (the default) everything the DB steps and ``outbox.enqueue``
write is committed once, after the last step; with ``scope: item`` after each item of a
top-level batch (and after each top-level step outside a batch). Any failure rolls back what is
not committed and stops the run. HTTP and Lambda calls are not part of the transaction: their
idempotency keys, and the outbox, are what make a re-run safe.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from portl.errors import Interrupted, PortlError, StepError
from portl.plural import counted, plural
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import OutboxEnqueueStep, StepBase, iter_steps
from portl.steps.context import Scope
from portl.steps.events import FlowEvents
from portl.steps.walk import StepStats, Walker

__all__ = ["FlowOptions", "FlowReport", "Runtime", "run_flow"]

#: Testing aid: with this set to 1, the process kills itself (SIGKILL) right after a commit,
#: before the outbox is delivered, as a crash there would.
CRASH_AFTER_COMMIT = "PORTL_CRASH_AFTER_COMMIT"


@dataclass
class FlowReport:
    """The outcome of a flow run."""

    run_id: str
    job: str
    status: str
    duration_s: float
    counts: dict[str, int]
    steps: list[StepStats]
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    rolled_back: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "job": self.job, "status": self.status, "duration_s": round(self.duration_s, 3),
                "counts": self.counts, "steps": [s.to_json() for s in self.steps], "warnings": self.warnings,
                "error": self.error, "rolled_back": self.rolled_back}


@dataclass
class FlowOptions:
    """How to run a flow: the ledger's folder (None: beside the flow file, see
    :func:`portl.state.ledger.state_dir_for`), the events, the stop signal (Ctrl-C)."""

    state_dir: str | None = None
    events: FlowEvents = field(default_factory=FlowEvents)
    stop: threading.Event = field(default_factory=threading.Event)


# --- a live run --------------------------------------------------------------------------------


class Runtime:
    """What a live run holds: the database session, the HTTP and Lambda clients, the events."""

    def __init__(self, loaded: LoadedFlow, events: FlowEvents, options: FlowOptions):
        self.loaded = loaded
        self.events = events
        self.state_dir = options.state_dir
        self.stop = options.stop
        self.session: Any = None
        self.committed = 0
        self.enqueued_since_commit = 0
        self.enqueued_committed = 0
        self.attempts: dict[str, int] = {}
        #: Ids of the migrate steps that ran: their v1 jobs commit on their own, a rollback keeps them.
        self.migrated: list[str] = []
        self._http: Any = None
        self._lambda: dict[tuple[str, float | None], Any] = {}

    def open_database(self) -> None:
        from portl.steps.database import Session

        name = self.loaded.database
        self.session = Session(self.loaded.connection(name), self.loaded.base_dir)
        if any(isinstance(s, OutboxEnqueueStep) for s, _, _ in iter_steps(self.loaded.flow.steps)):
            from portl.steps.outbox import ensure_outbox

            # Before the flow's transaction: MySQL would commit it to run the DDL.
            ensure_outbox(self.session.conn, self.session.outbox_dialect)
            self.session.commit()

    def http_client(self) -> Any:
        if self._http is None:
            from portl.steps.calls.http import http_client

            self._http = http_client()
        return self._http

    def lambda_client(self, name: str, timeout_s: float | None) -> Any:
        client = self._lambda.get((name, timeout_s))
        if client is None:
            from portl.steps.calls.lambda_ import lambda_client

            connection = self.loaded.connection(name)
            if timeout_s is not None:
                connection = connection.model_copy(update={"timeout_s": timeout_s})
            client = self._lambda[(name, timeout_s)] = lambda_client(connection)
        return client

    def on_attempt(self, step: StepBase, scope: Scope) -> Any:
        def report(number: int, outcome: str, details: dict[str, Any]) -> None:
            self.attempts[step.id] = self.attempts.get(step.id, 0) + 1
            level = "warning" if outcome != "ok" else ("info" if number > 1 else "debug")
            self.events.emit("call_attempt", level, step.id, scope.idx, outcome=outcome, **details)
        return report

    def enqueued(self, fresh: bool) -> None:
        if fresh:
            self.enqueued_since_commit += 1

    def commit(self, step: StepBase | None, scope: Scope | None) -> None:
        if self.session is None:
            return
        self.session.commit()
        self.committed += 1
        self.enqueued_committed += self.enqueued_since_commit
        self.enqueued_since_commit = 0
        if self.loaded.flow.transaction.scope == "db" or self.events.wants("debug"):
            self.events.emit("committed", "info" if step is None else "debug", None if step is None else step.id,
                             () if scope is None else scope.idx, database=self.session.where)
        if os.environ.get(CRASH_AFTER_COMMIT) == "1":
            os.kill(os.getpid(), signal.SIGKILL)

    def interrupted_message(self, step: StepBase, index: int) -> str:
        if self.loaded.flow.transaction.scope == "item":
            return (f"stopped by the user before item {index} of step {step.id}; the items before it were committed, "
                    "the rest were not run")
        return f"stopped by the user before item {index} of step {step.id}; the transaction was rolled back, nothing was written"

    def close(self) -> None:
        if self.session is not None:
            self.session.rollback()
            self.session.close()
        if self._http is not None:
            self._http.close()
        for client in self._lambda.values():
            client.close()


def run_flow(loaded: LoadedFlow, options: FlowOptions | None = None) -> FlowReport:
    """Run ``loaded``; record it in the run ledger. Raises a :class:`PortlError` (a
    :class:`StepError` for a failed step) after rolling back and recording the failure."""
    from portl.state import ledger as L
    from portl.steps.checks import check_flow

    options = options or FlowOptions()
    check_flow(loaded)
    events = options.events
    walker = Walker(loaded, events, runtime=None)
    options = replace(options, state_dir=L.state_dir_for(loaded.base_dir, options.state_dir))
    ledger = L.Ledger(options.state_dir)
    job_hash = hashlib.sha256(loaded.text.encode()).hexdigest()[:16]
    database = loaded.database
    meta = {"kind": "flow", "transaction": loaded.flow.transaction.scope,
            "destination": loaded.connection(database).describe() if database else None}
    record = ledger.start_run(loaded.name, loaded.path, job_hash, meta)
    events.run_id = record.id
    runtime = Runtime(loaded, events, options)
    walker.runtime = runtime
    started = time.monotonic()
    status, error, warnings = L.FAILED, None, []
    try:
        events.emit("run_started", job=loaded.name, file=loaded.path, transaction=loaded.flow.transaction.scope,
                    database=meta["destination"])
        if database is not None:
            runtime.open_database()
        walker.walk(Scope.root(loaded.name, record.id))
        runtime.commit(None, None)
        try:
            warnings += _deliver(loaded, runtime, events)
        except PortlError as exc:  # committed already: the calls stay queued for a drain
            warnings.append(f"the queued calls were not delivered ({exc}); they stay in the outbox: "
                            f"portl outbox drain {loaded.path}")
        status = L.SUCCEEDED
    except Interrupted as exc:
        status, error = L.INTERRUPTED, str(exc)
        raise
    except KeyboardInterrupt:
        status, error = L.INTERRUPTED, "aborted by Ctrl-C; what was not committed was rolled back"
        raise
    except BaseException as exc:
        error = str(exc) or type(exc).__name__
        if isinstance(exc, StepError):
            events.emit("step_failed", "error", exc.step_id, exc.idx, error=error)
        raise
    finally:
        runtime.close()
        if status != L.SUCCEEDED and runtime.session is not None:
            undone = ("nothing was written" if not runtime.committed else
                      f"{runtime.committed} commits made before the failure stay")
            if runtime.migrated:
                undone += f", except what the migrate steps {', '.join(runtime.migrated)} committed on their own"
            events.emit("rolled_back", "error" if status == L.FAILED else "warning", database=runtime.session.where, kept=undone)
            if runtime.enqueued_committed:
                warnings.append(f"{counted(runtime.enqueued_committed, 'call')} of committed items "
                                f"{plural(runtime.enqueued_committed, 'is')} waiting in the outbox: "
                                f"portl outbox drain {loaded.path}")
        counts = dict(walker.counts, enqueued=runtime.enqueued_committed, attempts=sum(runtime.attempts.values()))
        counts["read"] = counts["items"]
        for step_id, attempts in runtime.attempts.items():
            walker.stats[step_id].attempts = attempts
        # With scope item only the failed item is undone; the summary says so only for scope db.
        rolled_back = status != L.SUCCEEDED and runtime.session is not None and loaded.flow.transaction.scope == "db"
        report = FlowReport(record.id, loaded.name, status, time.monotonic() - started, counts,
                            list(walker.stats.values()), warnings, error, rolled_back)
        ledger.finish_run(record.id, status, counts, error)
        ledger.close()
        failure = _current_exception()
        if failure is not None:
            failure.report = report
            if isinstance(failure, StepError) and runtime.session is not None and status == L.FAILED:
                failure.args = (f"{failure}\n{_rolled_back(loaded, runtime)}",)
        events.emit("run_finished", "info" if status == L.SUCCEEDED else "error", status=status, counts=counts,
                    error=error, seconds=round(report.duration_s, 3))
    return report


def _current_exception() -> BaseException | None:
    return sys.exc_info()[1]


def _rolled_back(loaded: LoadedFlow, runtime: Runtime) -> str:
    where = runtime.session.where
    if loaded.flow.transaction.scope == "item" and runtime.committed:
        text = (f"The failed item was rolled back in {where}; the {runtime.committed} commits before it (scope: item) "
                "stay. HTTP and Lambda calls already made are not undone.")
    elif runtime.migrated:
        text = (f"The flow's transaction was rolled back: its steps' writes to {where} were not kept. HTTP and Lambda "
                "calls already made are not undone; re-running sends them again with the same idempotency keys.")
    else:
        text = (f"The transaction was rolled back: nothing this run wrote to {where} was kept. HTTP and Lambda calls "
                "already made are not undone; re-running sends them again with the same idempotency keys.")
    if runtime.migrated:
        many = len(runtime.migrated) > 1
        text += (f" The migrate step{'s' if many else ''} {', '.join(runtime.migrated)} ran in {'their' if many else 'its'} "
                 f"own transactions: what {'they' if many else 'it'} committed stays (see portl runs).")
    return text


def _deliver(loaded: LoadedFlow, runtime: Runtime, events: FlowEvents) -> list[str]:
    """Deliver the queued calls after commit (``outbox: {deliver: after_commit}``)."""
    if not runtime.enqueued_committed or loaded.flow.outbox.deliver != "after_commit":
        return []
    from portl.steps.outbox import DrainOptions, open_outbox

    outbox = open_outbox(loaded.connection(loaded.database), loaded.base_dir)
    try:
        def tell(event: Any) -> None:
            level = "info" if event.event == "delivered" else "warning"
            events.emit(f"outbox_{event.event}", level, event.call.step_id, (event.call.idx,) if event.call.idx is not None else (),
                        call_id=event.call.id, **event.details)

        report = outbox.deliver(loaded.name, loaded.flow.connections, DrainOptions(wait=False), tell)
    finally:
        outbox.close()
    events.emit("outbox_drained", delivered=report.delivered, pending=report.pending, dead=len(report.dead))
    warnings = []
    if report.pending or report.dead:
        warnings.append(f"outbox: {counted(report.delivered, 'call')} delivered, {report.pending} still pending, {len(report.dead)} "
                        f"moved to the dead-letter table; see portl outbox list {loaded.path}")
    return warnings
