"""A connection killed by the server in the middle of a load is retried; no row lands twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import psycopg


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
