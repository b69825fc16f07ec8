"""A connection killed by the server in the middle of a run (``pg_terminate_backend`` from another
session) is retried within the run: a batch being written goes again in a new transaction, a read
opens again after the last batch it produced, and no row lands twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from portl.connectors.postgres.connection import translate
from portl.errors import TransientError

ROWS = 200_000
BATCH = 5_000


@pytest.mark.parametrize("error,says", [
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
     "terminating connection due to administrator command (the server ended the session; worth retrying)"),
    (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly\n"
                              "\tThis probably means the server terminated abnormally"),
     "the connection to the server was lost (server closed the connection unexpectedly); worth retrying"),
], ids=["ended-by-the-server", "closed-under-the-client"])
def test_a_dropped_connection_is_classified_as_transient(error, says):
    translated = translate(error, "reading postgres db.example:5432/shop public.src", table="public.src", source=True)
    assert isinstance(translated, TransientError)
    assert str(translated) == f"reading postgres db.example:5432/shop public.src: {says}"


def test_a_connection_killed_mid_load_is_retried_and_every_row_lands_once(tmp_path, pg_url):
    rows = 200_000
    with open(tmp_path / "in.csv", "w") as f:
        f.write("id,name,amount\n")
        f.writelines(f"{i},name-{i},{i % 1000}.{i % 100:02d}\n" for i in range(1, rows + 1))
    (tmp_path / "job.yaml").write_text(
        f"name: dropped\nsource: {{type: csv, path: in.csv}}\n"
        f"destination: {{type: postgres, url: '{pg_url}', table: t}}\n"
        "batch: {size: 5000}\nretry: {attempts: 5, backoff_ms: 100}\n"
        "mapping: {columns: {id: {type: bigint}, name: {}, amount: {type: 'decimal(10,2)'}}}\n"
    )
    command = [sys.executable, "-m", "portl.cli.app", "run", "job.yaml", "--log-format", "json"]
    env = {**os.environ, "PORTL_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []

    def kill_when_loading() -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                has_rows = admin.execute("SELECT to_regclass('public.t') IS NOT NULL").fetchone()[0]
                if has_rows and admin.execute("SELECT count(*) FROM t").fetchone()[0] >= 20_000:
                    done = admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'portl'"
                    ).fetchall()
                    killed.extend(done)
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=kill_when_loading)
    killer.start()
    out, err = proc.communicate(timeout=300)
    killer.join()
    assert killed, "the load finished before a connection could be killed"
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, err[-2000:]
    retries = [e for e in events if e["event"] == "retry"]
    assert retries and "connection" in retries[0]["details"]["error"].lower()
    with psycopg.connect(pg_url) as conn:
        count, distinct, total = conn.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM t").fetchone()
    assert (count, distinct, total) == (rows, rows, rows * (rows + 1) // 2)


@pytest.mark.parametrize("key", ["bigint PRIMARY KEY", "bigint NOT NULL"], ids=["keyset", "no-primary-key"])
def test_a_source_connection_killed_mid_read_resumes_after_the_last_batch(tmp_path, pg_url, pg, key):
    # Wide rows: the result is many times what the socket buffers hold, so the server is still
    # sending when its session is ended.
    pg.execute(f"CREATE TABLE src (id {key}, name text, pad text)")
    pg.execute("INSERT INTO src SELECT i, 'name-' || i, repeat('x', 300) FROM generate_series(1, %s) AS i", (ROWS,))
    (tmp_path / "job.yaml").write_text(
        f"name: dropped-read\nsource: {{type: postgres, url: '{pg_url}', table: src}}\n"
        f"destination: {{type: postgres, url: '{pg_url}', table: copied}}\n"
        f"batch: {{size: {BATCH}}}\nretry: {{attempts: 5, backoff_ms: 100}}\n"
    )
    env = {**os.environ, "PORTL_STATE_DIR": str(tmp_path / "state")}
    # The mapping changes nothing: the path a user gets by default sends the source's COPY text
    # straight to the destination's COPY.
    plan = subprocess.run([sys.executable, "-m", "portl.cli.app", "plan", "job.yaml", "--format", "json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert json.loads(plan.stdout)["destination"]["verbatim"] is not None

    command = [sys.executable, "-m", "portl.cli.app", "run", "job.yaml", "--log-format", "json"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[tuple] = []  # (rows committed by then, the statement, whether the session was ended)

    def kill_the_read_when_loading() -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None and not killed:
                committed = _committed_rows(admin)
                if committed >= 20_000:
                    for statement, ended in admin.execute(
                            "SELECT query, pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' "
                            "AND query LIKE %s", ("COPY (SELECT % TO STDOUT%",)).fetchall():
                        killed.append((committed, statement, ended))
                time.sleep(0.005)

    killer = threading.Thread(target=kill_the_read_when_loading)
    killer.start()
    out, err = proc.communicate(timeout=300)
    killer.join()
    assert killed and all(ended for _, _, ended in killed), f"the read finished before it could be killed: {killed}"
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    retries = [e["details"] for e in events if e["event"] == "retry"]
    assert len(retries) == 1, retries
    message = retries[0]["error"]
    assert message.startswith("reading postgres ") and " public.src: " in message, message
    assert "; worth retrying" in message, message
    # Ended while sending rows, or after: the client sees the socket close, or the server's goodbye.
    assert "the connection to the server was lost" in message or "the server ended the session" in message, message
    # The read had produced at least the rows committed when it was killed, and it resumes
    # after the last batch it produced.
    resumed_at = retries[0]["reading_after_row"]
    assert killed[0][0] <= resumed_at < ROWS and resumed_at % BATCH == 0, (resumed_at, killed)
    counts = [e for e in events if e["event"] == "run_finished"][-1]["details"]["counts"]
    assert (counts["read"], counts["inserted"], counts["updated"], counts["skipped"], counts["rejected"]) == (
        ROWS, ROWS, 0, 0, 0)
    # `copied` has no key: a row read twice would be there twice.
    assert pg.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'copied'::regclass").fetchone() == (0,)
    assert pg.execute("SELECT count(*), count(DISTINCT id), sum(id), min(length(pad)) FROM copied").fetchone() == (
        ROWS, ROWS, ROWS * (ROWS + 1) // 2, 300)


def _committed_rows(conn: psycopg.Connection) -> int:
    """Source rows the run has committed so far, as its checkpoint in the destination says."""
    if conn.execute("SELECT to_regclass('public._portl_checkpoints')").fetchone()[0] is None:
        return 0
    return conn.execute("SELECT coalesce(max((checkpoint ->> 'rows')::bigint), 0) FROM _portl_checkpoints").fetchone()[0]
