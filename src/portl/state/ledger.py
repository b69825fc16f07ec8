"""The run ledger: every run, its status and counts, and a copy of its latest checkpoints.

The ledger is ``state.db`` (SQLite) in the state folder, which follows the job, not the shell
(:func:`state_dir_for`): ``.portl/`` beside the job file, unless ``--state-dir``,
``PORTL_STATE_DIR`` or ``PORTL_HOME`` say otherwise. It is the user's record of what ran; the
authoritative checkpoint of a batch is the one committed in the destination's own transaction, so a
crash between the two leaves the destination right and the ledger one batch behind, never the other
way round.

A run records the process that runs it (host, pid and the process's start time). A run still
``running`` whose process is gone was killed (``kill -9``, a power cut): :meth:`Ledger.settle_stale`
marks it ``interrupted``, with the counts its last committed checkpoints recorded.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from portl.errors import PortlError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    job_path TEXT NOT NULL,
    job_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    counts TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job_path, job, started_at);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL REFERENCES runs (id),
    partition TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, partition)
);
CREATE TABLE IF NOT EXISTS quality_reports (
    run_id TEXT PRIMARY KEY REFERENCES runs (id),
    report TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quality_history (
    job TEXT NOT NULL,
    job_path TEXT NOT NULL,
    series TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (job, job_path, series, key)
);
"""

#: Statuses a run can be in. ``running`` after a crash means the process died mid-run.
RUNNING, SUCCEEDED, FAILED, INTERRUPTED, REJECT_LIMIT = "running", "succeeded", "failed", "interrupted", "reject_limit"
#: A run whose rows were loaded (batches committed as they went) but whose critical quality checks failed.
FAILED_CHECKS = "failed_checks"
FINISHED = {SUCCEEDED, FAILED_CHECKS}

STATE_FILE = "state.db"
KILLED = ("the process running it ended without recording an outcome (killed, or the machine stopped). Its counts are "
          "those of its last checkpoint recorded here, at most a batch behind the destination's own; the committed "
          "batches are kept: continue with --resume")


def state_dir_for(job_dir: str | None, explicit: str | None = None) -> str:
    """The ledger's folder for a job in ``job_dir``: ``explicit`` (``--state-dir`` or
    ``PORTL_STATE_DIR``) first, then ``$PORTL_HOME``, then ``.portl`` beside the job file. A job
    read from standard input (no folder) uses ``.portl`` in the current folder."""
    if explicit:
        return explicit
    home = os.environ.get("PORTL_HOME")
    if home:
        return home
    return os.path.join(job_dir, ".portl") if job_dir else ".portl"


def ledger_exists(state_dir: str) -> bool:
    return os.path.exists(os.path.join(state_dir, STATE_FILE))


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), to tell it from a later process
    given the same pid; None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_started": _process_start(pid)}


def process_alive(owner: dict[str, Any]) -> bool | None:
    """Whether the process that ``owner`` (:func:`this_process`) describes still runs; None when
    that cannot be known from here (another host, or no pid recorded)."""
    pid = owner.get("pid")
    if not pid or owner.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process holds the pid: it is alive, but is it ours?
    started = owner.get("pid_started")
    return started is None or _process_start(pid) == started


@dataclass
class RunRecord:
    """One row of the ledger."""

    id: str
    job: str
    job_path: str
    job_hash: str
    status: str
    started_at: float
    ended_at: float | None
    counts: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def unfinished(self) -> bool:
        return self.status not in FINISHED


def new_run_id() -> str:
    """A new run's id: when it started (UTC) and six random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


class Ledger:
    """Thread-safe access to the run ledger."""

    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, STATE_FILE)
        try:
            os.makedirs(state_dir, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PortlError(f"cannot open the run ledger {self.path}: {exc}; set --state-dir or PORTL_STATE_DIR to a writable folder") from exc
        self._lock = threading.Lock()

    def start_run(self, job: str, job_path: str, job_hash: str, meta: dict[str, Any], run_id: str | None = None) -> RunRecord:
        """Record a new run (``run_id``: one adopted from a destination's checkpoints)."""
        run_id = run_id or new_run_id()
        now = time.time()
        meta = {**meta, "process": this_process()}
        with self._lock:
            self._conn.execute(
                "INSERT INTO runs (id, job, job_path, job_hash, status, started_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, job, job_path, job_hash, RUNNING, now, json.dumps(meta)),
            )
        return RunRecord(run_id, job, job_path, job_hash, RUNNING, now, None, {}, dict(meta))

    def reopen(self, run_id: str) -> None:
        with self._lock:
            row = self._conn.execute("SELECT meta FROM runs WHERE id = ?", (run_id,)).fetchone()
            meta = {**(json.loads(row[0]) if row else {}), "process": this_process()}
            self._conn.execute("UPDATE runs SET status = ?, ended_at = NULL, error = NULL, meta = ? WHERE id = ?",
                               (RUNNING, json.dumps(meta), run_id))

    def settle_stale(self) -> list[str]:
        """Mark ``interrupted`` every run recorded as running whose process is gone, with the
        counts of its last recorded checkpoints. Returns their ids."""
        settled = []
        with self._lock:
            rows = self._conn.execute("SELECT id, meta, counts FROM runs WHERE status = ?", (RUNNING,)).fetchall()
            for run_id, meta, counts in rows:
                owner = json.loads(meta).get("process") or {}
                if process_alive(owner) is not False:
                    continue
                committed = self._committed_counts(run_id) or json.loads(counts)
                # It ended some time after its last recorded commit: that is the end shown.
                last = self._conn.execute("SELECT max(updated_at) FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()[0]
                self._conn.execute(
                    "UPDATE runs SET status = ?, ended_at = coalesce(?, started_at), counts = ?, error = ? "
                    "WHERE id = ? AND status = ?",
                    (INTERRUPTED, last, json.dumps(committed), KILLED, run_id, RUNNING))
                settled.append(run_id)
        return settled

    def _committed_counts(self, run_id: str) -> dict[str, Any] | None:
        """The run's counts as its partitions' last recorded checkpoints add them up."""
        states = [json.loads(s) for (s,) in self._conn.execute("SELECT state FROM checkpoints WHERE run_id = ?", (run_id,))]
        totals: dict[str, Any] = {}
        for state in states:
            for name, value in (state.get("counts") or {}).items():
                if isinstance(value, dict):
                    merged = totals.setdefault(name, {})
                    for reason, n in value.items():
                        merged[reason] = merged.get(reason, 0) + n
                else:
                    totals[name] = totals.get(name, 0) + value
        return totals or None

    def record_progress(self, run_id: str, checkpoints: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                        counts: dict[str, Any] | None = None) -> None:
        """Partitions' checkpoints (and the run's counts) in one transaction: one commit to sync."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT INTO checkpoints (run_id, partition, checkpoint, state, updated_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, partition) DO UPDATE SET checkpoint = excluded.checkpoint, "
                    "state = excluded.state, updated_at = excluded.updated_at",
                    [(run_id, partition, json.dumps(checkpoint), json.dumps(state), now)
                     for partition, (checkpoint, state) in checkpoints.items()],
                )
                if counts is not None:
                    self._conn.execute("UPDATE runs SET counts = ? WHERE id = ?", (json.dumps(counts), run_id))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, counts = ?, error = ? WHERE id = ?",
                (status, time.time(), json.dumps(counts), error, run_id),
            )

    def latest(self, job: str, job_path: str) -> RunRecord | None:
        """The most recent run of a job (by name and job file)."""
        row = self._conn.execute(
            "SELECT * FROM runs WHERE job = ? AND job_path = ? ORDER BY started_at DESC LIMIT 1", (job, job_path)
        ).fetchone()
        return self._record(row) if row else None

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id, or by a unique prefix of its id."""
        rows = self._conn.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY started_at DESC", (run_id + "%",)).fetchall()
        if len(rows) > 1 and not any(r[0] == run_id for r in rows):
            raise PortlError(f"run id prefix {run_id!r} matches {len(rows)} runs; give more of the id")
        exact = [r for r in rows if r[0] == run_id] or rows
        return self._record(exact[0], with_checkpoints=True) if exact else None

    def list(self, limit: int = 20, job: str | None = None) -> list[RunRecord]:
        query, params = "SELECT * FROM runs", []
        if job:
            query += " WHERE job = ?"
            params.append(job)
        query += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        return [self._record(r) for r in self._conn.execute(query, params).fetchall()]

    def _record(self, row: tuple, with_checkpoints: bool = False) -> RunRecord:
        record = RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), json.loads(row[8]), row[9])
        if with_checkpoints:
            for partition, checkpoint, state in self._conn.execute(
                "SELECT partition, checkpoint, state FROM checkpoints WHERE run_id = ? ORDER BY partition", (record.id,)
            ):
                record.checkpoints[partition] = {"checkpoint": json.loads(checkpoint), "state": json.loads(state)}
        return record

    # --- quality: reports and the counts anomaly checks compare with ------------------------------

    def save_report(self, run_id: str, report: dict[str, Any]) -> None:
        """Keep a run's quality report (``portl report RUN`` renders it again)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO quality_reports (run_id, report, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET report = excluded.report, created_at = excluded.created_at",
                (run_id, json.dumps(report, default=str), time.time()))

    def report(self, run_id: str) -> dict[str, Any] | None:
        """The quality report a run kept, or None."""
        row = self._conn.execute("SELECT report FROM quality_reports WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def history(self, job: str, job_path: str, series: str) -> dict[str, int]:
        """Counts earlier runs of a job recorded for ``series`` (``rows_per_date:day``), by key."""
        rows = self._conn.execute("SELECT key, count FROM quality_history WHERE job = ? AND job_path = ? AND series = ?",
                                  (job, job_path, series)).fetchall()
        return {key: count for key, count in rows}

    def record_history(self, job: str, job_path: str, series: str, counts: dict[str, int], run_id: str) -> None:
        """Record a finished run's counts for ``series``; a key seen again takes the newer count."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT INTO quality_history (job, job_path, series, key, count, run_id, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, job_path, series, key) DO UPDATE SET "
                    "count = excluded.count, run_id = excluded.run_id, recorded_at = excluded.recorded_at",
                    [(job, job_path, series, key, int(n), run_id, now) for key, n in counts.items()])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
