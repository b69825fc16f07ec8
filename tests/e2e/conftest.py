"""Helpers for the end-to-end tests: they drive the ``portl`` command as a user would.

Every test works in its own scratch folder (``tmp_path``): job files, CSV files and SQLite
databases are real files there, ``portl`` runs as a subprocess with that folder as its working
directory, and the run ledger lives in ``tmp_path/state`` (``PORTL_STATE_DIR``).
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PORTL = [sys.executable, "-m", "portl.cli.app"]

#: Files a run leaves beside a job; an example is copied without them, so it starts clean.
GENERATED = ("*.db", "*.db-journal", "*.db-wal", "*.db-shm", "*.rejects.csv", ".portl", "__pycache__")


@dataclass
class Result:
    """What one ``portl`` command did: exit code, output, and how long it took."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON lines on stdout (``--log-format json``): events, then the report."""
        events = []
        for line in self.stdout.splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    raise AssertionError(f"stdout line is not JSON: {line!r}\n{self.log}") from None
        return events

    @property
    def report(self) -> dict[str, Any]:
        """The final ``{"event": "report", ...}`` line of a successful run."""
        reports = [e for e in self.events if e.get("event") == "report"]
        assert len(reports) == 1, f"expected exactly one report line on stdout\n{self.log}"
        return reports[0]

    @property
    def finished(self) -> dict[str, Any]:
        """The details of the ``run_finished`` event: status, counts and error, also for failed runs."""
        found = [e for e in self.events if e.get("event") == "run_finished"]
        assert len(found) == 1, f"expected exactly one run_finished event\n{self.log}"
        return found[0]["details"]

    @property
    def log(self) -> str:
        """The command and everything it printed, for assertion messages."""
        return (f"$ portl {' '.join(self.args)}\n[exit {self.code} after {self.duration_s:.1f} s]\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


@dataclass
class Portl:
    """Runs ``portl`` in a folder, with its own ledger and a clean environment."""

    cwd: Path
    state_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        # The user's own defaults must not leak in: tracebacks on, or another connections file.
        env = {k: v for k, v in os.environ.items() if k not in ("PORTL_DEBUG", "PORTL_CONNECTIONS")}
        env.update(
            PORTL_STATE_DIR=str(self.state_dir),
            COLUMNS="400",  # rich wraps at the terminal width; keep each message on one line
            NO_COLOR="1",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        env.update(extra)
        return env

    def __call__(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Result:
        started = time.monotonic()
        done = subprocess.run(
            [*PORTL, *args], cwd=self.cwd, capture_output=True, text=True, timeout=timeout, env=self.env(**(env or {}))
        )
        return Result(list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def start(self, *args: str) -> subprocess.Popen:
        """Start ``portl`` without waiting, output on pipes (for tests that kill or interrupt it)."""
        return subprocess.Popen(
            [*PORTL, *args], cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )


@pytest.fixture
def portl(tmp_path: Path) -> Portl:
    """``portl(*args)`` runs the CLI in ``tmp_path`` and returns a :class:`Result`."""
    return Portl(tmp_path, tmp_path / "state")


def assert_clean_failure(result: Result, code: int | None = None) -> None:
    """A failure a user can read: the expected non-zero exit code, an ``error:`` sentence, no traceback."""
    if code is None:
        assert result.code != 0, result.log
    else:
        assert result.code == code, result.log
    assert "Traceback" not in result.stderr, result.log
    assert "internal error" not in result.stderr, result.log
    assert "error:" in result.stderr, result.log


def assert_balanced(counts: dict[str, Any]) -> None:
    """Every source row is in exactly one bucket."""
    assert counts["read"] == counts["inserted"] + counts["updated"] + counts["skipped"] + counts["rejected"], counts


def text_counts(text: str) -> dict[str, int]:
    """The counts of the text summary a run prints (``read 25``, ``inserted 18``, ...)."""
    found = re.findall(r"^(read|inserted|updated|skipped|rejected) +([\d,]+) *$", text, re.M)
    return {name: int(value.replace(",", "")) for name, value in found}


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query against a SQLite file (which must exist: connecting would create it)."""
    assert db.exists(), f"{db} does not exist"
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def table_rows(db: Path, table: str, order_by: str = "rowid") -> list[tuple]:
    return query(db, f'SELECT * FROM "{table}" ORDER BY {order_by}')


def create_table(db: Path, table: str, columns: str, rows: list[tuple] = ()) -> None:
    """Create ``table`` (with the column definitions ``columns``) in a SQLite file and fill it."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(f'CREATE TABLE "{table}" ({columns})')
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
        conn.commit()
    finally:
        conn.close()


def read_rejects(path: Path) -> list[dict[str, str]]:
    """The reject file's rows as dicts (columns source, line, record, column, value, error, original)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def digest(path: Path) -> str | None:
    """A file's SHA-256, or None when it does not exist."""
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_example(folder: Path, into: Path) -> Path:
    """Copy an example folder without the files earlier runs left in it; returns the copy."""
    target = into / folder.relative_to(REPO)
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns(*GENERATED))
    return target


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RecordingServer:
    """A local HTTP server that records every request and answers with a set status and body."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.status = 200
        self.body = b"{}"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append(Request(self.command, self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def http_server():
    """A :class:`RecordingServer` on 127.0.0.1, stopped after the test."""
    server = RecordingServer()
    yield server
    server.close()
