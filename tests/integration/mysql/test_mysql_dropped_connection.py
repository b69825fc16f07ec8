"""A MySQL connection killed in the middle of a run (``KILL <id>`` from another session) is retried
within the run: the batch being written goes again in a new transaction, a read opens again after
the last batch it produced, and every source row lands exactly once."""

from __future__ import annotations

import decimal
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pymysql
import pytest

from portl.connectors.base import WriteMode, WriteSpec
from portl.connectors.mysql import Config
from portl.connectors.mysql.client import Server
from portl.errors import TransientError
from tests.integration.mysql.support import job_file
from tests.services import MYSQL_HOST, MYSQL_PORT

ROWS = 200_000
BATCH = 5_000


@pytest.mark.parametrize("errno,text", [
    (2006, "MySQL server has gone away"),
    (2013, "Lost connection to MySQL server during query"),
    (2055, "Lost connection to MySQL server at 'reading initial communication packet', system error: 104"),
    (1927, "Connection was killed"),
])
def test_a_dropped_connection_is_classified_as_transient(errno, text):
    server = Server(Config(type="mysql", url="mysql://root@db.example:3306/shop", table="t"), ".", "destination")
    error = server.error(pymysql.err.OperationalError(errno, text), "writing to t")
    assert isinstance(error, TransientError)
    assert f"{text} (error {errno}); worth retrying" in str(error)


def test_a_connection_killed_while_load_data_sends_its_file_is_a_transient_error(sink, sql):
    s = sink("t")
    rows = 400_000  # about 40 MB of batch file: the client is still sending it when the session is killed
    batch = pa.RecordBatch.from_pydict({"id": pa.array(range(rows), pa.int64()), "pad": pa.array(["x" * 100] * rows)})
    s.prepare(batch.schema, WriteSpec(WriteMode.APPEND), False)
    killed = []

    def kill_the_load() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for connection, state in sql("SELECT ID, STATE FROM information_schema.PROCESSLIST "
                                         "WHERE INFO LIKE 'LOAD DATA LOCAL%' AND DB = DATABASE()"):
                sql(f"KILL {int(connection)}")
                killed.append(state)
            time.sleep(0.001)

    killer = threading.Thread(target=kill_the_load)
    killer.start()
    try:
        with pytest.raises(TransientError, match="(gone away|Lost connection).*worth retrying"):
            with s.transaction() as tx:
                s.write(batch, WriteSpec(WriteMode.APPEND), tx)
    finally:
        killed.append("stop")
        killer.join()
    assert killed[0] != "stop", "the load finished before it could be killed"
    assert sql("SELECT COUNT(*) FROM t") == [(0,)]


def test_a_read_opened_again_after_its_last_chunk_goes_on_counting_zero_dates(sql, source):
    sql("SET SESSION sql_mode = ''")
    sql("CREATE TABLE t (id INT PRIMARY KEY, born DATE)")
    sql("INSERT INTO t VALUES (1, '0000-00-00'), (2, '2024-05-00'), (3, '1999-12-31'), (4, '0000-00-00')")
    s = source(table="t")
    first = s.read(2, None)
    chunk = next(first)  # ids 1 and 2; then the connection drops
    first.close()
    rest = [c for c in s.read(2, chunk.checkpoint)]
    assert [r["id"] for c in rest for r in c.data.to_pylist()] == [3, 4]
    assert s.warnings() == ["3 zero dates (such as 0000-00-00) became NULL in column born"]


@dataclass
class Outcome:
    """A finished ``portl run``: its exit code, JSON events and stderr, and what the killer killed."""

    returncode: int
    events: list[dict]
    stderr: str
    killed: list[tuple] = field(default_factory=list)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def counts(self) -> dict:
        return self.of("run_finished")[-1]["details"]["counts"]


def run_killing(tmp_path, database: str, job: str, statement_like: str, after_rows: int = 20_000) -> Outcome:
    """Run ``job`` with the CLI; once the run has committed ``after_rows`` source rows, kill every
    connection of it that is running a statement starting like ``statement_like``."""
    command = [sys.executable, "-m", "portl.cli.app", "run", job, "--log-format", "json"]
    env = {**os.environ, "PORTL_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[tuple] = []

    def kill_when_loading() -> None:
        admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", database=database, autocommit=True)
        try:
            with admin.cursor() as cur:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and proc.poll() is None and not killed:
                    if _committed_rows(cur) >= after_rows:
                        cur.execute("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                                    "AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE %s",
                                    (statement_like + "%",))
                        for connection, info in cur.fetchall():
                            try:
                                cur.execute(f"KILL {int(connection)}")
                                killed.append((connection, info))
                            except pymysql.err.OperationalError:
                                pass  # the statement finished and the connection closed meanwhile
                    time.sleep(0.005)
        finally:
            admin.close()

    killer = threading.Thread(target=kill_when_loading)
    killer.start()
    out, err = proc.communicate(timeout=600)
    killer.join()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return Outcome(proc.returncode, events, err, killed)


def _committed_rows(cur) -> int:
    """Source rows the run has committed so far, as its checkpoint in the destination says."""
    cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = '_portl_checkpoints'")
    if not cur.fetchone()[0]:
        return 0
    cur.execute("SELECT COALESCE(MAX(CAST(JSON_EXTRACT(checkpoint, '$.rows') AS UNSIGNED)), 0) FROM _portl_checkpoints")
    return int(cur.fetchone()[0])


def write_csv(path, first: int = 1, last: int = ROWS, prefix: str = "name") -> None:
    with open(path, "w") as f:
        f.write("id,name,amount\n")
        f.writelines(f"{i},{prefix}-{i},{i % 1000}.{i % 100:02d}\n" for i in range(first, last + 1))


def assert_retried(outcome: Outcome, side: str) -> None:
    assert outcome.killed, "the run finished before a connection could be killed"
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    retries = outcome.of("retry")
    assert retries, "the killed connection was not retried"
    message = retries[0]["details"]["error"]
    # The kill lands wherever the session is by then: loading, saving the checkpoint, committing.
    assert f" on MySQL {side} " in message and "worth retrying" in message
    assert "Lost connection" in message or "gone away" in message or "killed" in message.lower()


def assert_balanced(counts: dict, read: int, inserted: int, updated: int = 0) -> None:
    assert (counts["read"], counts["inserted"], counts["updated"], counts["skipped"], counts["rejected"]) == (
        read, inserted, updated, 0, 0)


def test_a_destination_connection_killed_mid_append_is_retried_and_every_row_lands_once(tmp_path, mysql_url, database, sql):
    write_csv(tmp_path / "in.csv")
    job = job_file(tmp_path, f"""
        name: dropped-append
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: '{mysql_url}', table: t}}
        batch: {{size: {BATCH}}}
        retry: {{attempts: 5, backoff_ms: 100}}
        mapping: {{columns: {{id: {{type: bigint}}, name: {{}}, amount: {{type: 'decimal(10,2)'}}}}}}
    """)
    outcome = run_killing(tmp_path, database, job, "LOAD DATA")
    assert_retried(outcome, "destination")
    assert_balanced(outcome.counts, ROWS, ROWS)
    assert sql("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id) FROM t") == [(ROWS, ROWS, ROWS * (ROWS + 1) // 2)]


def test_a_destination_connection_killed_mid_upsert_is_retried_with_counts_that_balance(tmp_path, mysql_url, database, sql):
    existing = 50_000
    sql("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2))")
    rows = [(i, f"old-{i}", 0) for i in range(ROWS - existing + 1, ROWS + 1)]  # the last 50,000 ids are there already
    for start in range(0, len(rows), 10_000):
        sql("INSERT INTO t VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows[start:start + 10_000])),
            [v for row in rows[start:start + 10_000] for v in row])
    write_csv(tmp_path / "in.csv", prefix="new")
    job = job_file(tmp_path, f"""
        name: dropped-upsert
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: '{mysql_url}', table: t}}
        conflict: {{key: [id], strategy: overwrite}}
        batch: {{size: {BATCH}}}
        retry: {{attempts: 5, backoff_ms: 100}}
        mapping: {{columns: {{id: {{type: bigint}}, name: {{}}, amount: {{type: 'decimal(10,2)'}}}}}}
    """)
    # The statement that moves the staged batch into the table (or the checkpoint's): killed, the
    # whole batch rolls back.
    outcome = run_killing(tmp_path, database, job, "INSERT INTO")
    assert_retried(outcome, "destination")
    assert_balanced(outcome.counts, ROWS, ROWS - existing, existing)
    assert sql("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), SUM(name LIKE 'new-%') FROM t") == [
        (ROWS, ROWS, ROWS * (ROWS + 1) // 2, ROWS)]
    assert sql("SELECT name, amount FROM t WHERE id = %s", (ROWS - 1,)) == [(f"new-{ROWS - 1}", decimal.Decimal("999.99"))]


@pytest.mark.parametrize("key", ["BIGINT PRIMARY KEY", "BIGINT NOT NULL"], ids=["keyset", "no-primary-key"])
def test_a_source_connection_killed_mid_read_resumes_after_the_last_batch(tmp_path, mysql_url, database, sql, key):
    # Wide rows: the result is many times what the socket buffers hold, so the server is still
    # sending when the connection is killed.
    sql(f"CREATE TABLE src (id {key}, name VARCHAR(40), pad VARCHAR(300))")
    for start in range(1, ROWS + 1, 10_000):
        ids = range(start, min(start + 10_000, ROWS + 1))
        sql("INSERT INTO src VALUES " + ", ".join(["(%s, %s, REPEAT('x', 300))"] * len(ids)),
            [v for i in ids for v in (i, f"name-{i}")])
    job = job_file(tmp_path, f"""
        name: dropped-read
        source: {{type: mysql, url: '{mysql_url}', table: src}}
        destination: {{type: mysql, url: '{mysql_url}', table: copied}}
        batch: {{size: {BATCH}}}
        retry: {{attempts: 5, backoff_ms: 100}}
    """)
    outcome = run_killing(tmp_path, database, job, "SELECT CAST(CONCAT_WS")  # the source's packed read
    assert_retried(outcome, "source")
    resumed_at = outcome.of("retry")[0]["details"]["reading_after_row"]
    assert 0 < resumed_at < ROWS and resumed_at % BATCH == 0
    assert_balanced(outcome.counts, ROWS, ROWS)
    # `copied` has no key: a row read twice would be there twice.
    assert sql("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), MIN(LENGTH(pad)) FROM copied") == [
        (ROWS, ROWS, ROWS * (ROWS + 1) // 2, 300)]
