"""The run ledger: every run, its status and counts, and a copy of its latest checkpoints.

The ledger lives in ``.portl/state.db`` (SQLite) under the state folder. It is the user's record
of what ran; the authoritative checkpoint of a batch is the one committed in the destination's own
transaction, so a crash between the two leaves the destination right and the ledger one batch
behind, never the other way round.
"""

from __future__ import annotations

import json
import os
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
"""

#: Statuses a run can be in. ``running`` after a crash means the process died mid-run.
RUNNING, SUCCEEDED, FAILED, INTERRUPTED, REJECT_LIMIT = "running", "succeeded", "failed", "interrupted", "reject_limit"
FINISHED = {SUCCEEDED}


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


class Ledger:
    """Thread-safe access to the run ledger."""

    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "state.db")
        try:
            os.makedirs(state_dir, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PortlError(f"cannot open the run ledger {self.path}: {exc}; set --state-dir or PORTL_STATE_DIR to a writable folder") from exc
        self._lock = threading.Lock()

    def start_run(self, job: str, job_path: str, job_hash: str, meta: dict[str, Any]) -> RunRecord:
        run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO runs (id, job, job_path, job_hash, status, started_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, job, job_path, job_hash, RUNNING, now, json.dumps(meta)),
            )
        return RunRecord(run_id, job, job_path, job_hash, RUNNING, now, None, {}, dict(meta))

    def reopen(self, run_id: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE runs SET status = ?, ended_at = NULL, error = NULL WHERE id = ?", (RUNNING, run_id))

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

    def close(self) -> None:
        self._conn.close()
