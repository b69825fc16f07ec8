"""Whole jobs through ``portl.run(portl.plan(portl.load_job(path)))`` with MySQL at either end."""

from __future__ import annotations

import csv
import decimal
import sqlite3

import pytest

import portl
from tests.integration.mysql.support import job_file, run_job

def write_csv(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def test_a_csv_file_appends_to_a_new_mysql_table(tmp_path, mysql_url, sql):
    write_csv(tmp_path / "in.csv", ["id", "name", "amount", "joined"],
              [(i, f"name {i} ✓", f"{i}.50", f"2024-01-{i % 28 + 1:02d}") for i in range(1, 2501)])
    path = job_file(tmp_path, f"""
        name: customers
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: '{mysql_url}', table: customers}}
        batch: {{size: 1000}}
        mapping:
          columns:
            id: {{type: bigint}}
            name: {{}}
            amount: {{type: "decimal(10,2)"}}
            joined: {{type: date}}
    """)
    report = run_job(path, tmp_path / "state")
    assert (report.status, report.counts.read, report.counts.inserted, report.counts.batches) == ("succeeded", 2500, 2500, 3)
    assert sql("SELECT COUNT(*), SUM(amount), MIN(joined), MAX(joined) FROM customers")[0][:2] == (2500, decimal.Decimal("3127500.00"))
    assert sql("SELECT name FROM customers WHERE id = 42") == [("name 42 ✓",)]
    # The partition's checkpoint, and the one that says the run finished (engine.unfinished).
    assert sql("SELECT `partition` FROM _portl_checkpoints WHERE run_id = %s ORDER BY 1", (report.run_id,)) == [("0",), ("~finished",)]


def test_a_csv_file_upserts_into_mysql_with_counts_that_add_up(tmp_path, mysql_url, sql):
    sql("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40), city VARCHAR(40))")
    sql("INSERT INTO people VALUES (1, 'ann', 'oslo'), (2, 'bob', 'rome')")
    write_csv(tmp_path / "in.csv", ["id", "name", "city"], [(1, "ANN", ""), (2, "BOB", "paris"), (3, "cy", "lima"), (3, "cy2", "")])
    path = job_file(tmp_path, f"""
        name: people
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: '{mysql_url}', table: people}}
        conflict: {{key: [id], strategy: merge}}
    """)
    report = run_job(path, tmp_path / "state")
    counts = report.counts
    assert (counts.read, counts.inserted, counts.updated, counts.skipped_total) == (4, 1, 3, 0)
    assert sql("SELECT * FROM people ORDER BY id") == [(1, "ANN", "oslo"), (2, "BOB", "paris"), (3, "cy2", "lima")]


def test_a_mysql_table_exports_to_csv(tmp_path, mysql_url, sql):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), paid TINYINT(1), amount DECIMAL(6,2), raw BLOB)")
    sql("INSERT INTO t VALUES (1, 'ann', 1, 1.50, x'00ff'), (2, '', 0, NULL, NULL), (3, NULL, NULL, -2.00, '')")
    path = job_file(tmp_path, f"""
        name: export
        source: {{type: mysql, url: '{mysql_url}', table: t}}
        destination: {{type: csv, path: out.csv}}
    """)
    report = run_job(path, tmp_path / "state")
    assert report.counts.read == report.counts.inserted == 3
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "id,name,paid,amount,raw", '1,"ann",true,1.50,"AP8="', '2,"",false,,', '3,,,-2.00,""']


def test_a_crashed_parallel_export_resumes_reading_each_row_once(tmp_path, mysql_url, sql, crash_hook):
    sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    for start in range(0, 6000, 1000):
        sql("INSERT INTO t VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(start + 1, start + 1001)))
    path = job_file(tmp_path, f"""
        name: export
        source: {{type: mysql, url: '{mysql_url}', table: t}}
        destination: {{type: sqlite, path: out.db, table: t}}
        batch: {{size: 500}}
        parallel: {{workers: 2}}
        {crash_hook.yaml.strip()}
    """)
    crash_hook.arm()
    with pytest.raises(portl.HookError, match="simulated crash"):
        run_job(path, tmp_path / "state")
    crash_hook.disarm()
    report = run_job(path, tmp_path / "state", resume=True)
    assert report.resumed and report.counts.read == report.counts.inserted == 6000
    with sqlite3.connect(tmp_path / "out.db") as out:
        assert out.execute("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM t").fetchone() == (6000, 6000, 1, 6000)


def test_the_plan_shows_the_load_data_statement_and_masks_the_password(tmp_path, make_user, database):
    from tests.services import MYSQL_HOST, MYSQL_PORT

    password = "not-printed-0451"
    user = make_user(password, "ALL")
    write_csv(tmp_path / "in.csv", ["id"], [(1,)])
    path = job_file(tmp_path, f"""
        name: shown
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: 'mysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/{database}', table: t}}
    """)
    the_plan = portl.plan(portl.load_job(path))
    try:
        data = the_plan.to_dict()
    finally:
        the_plan.close()
    assert data["destination"]["bulk_method"].startswith("LOAD DATA LOCAL INFILE")
    assert any(s.startswith("LOAD DATA LOCAL INFILE '<batch file>' INTO TABLE") for s in data["per_batch"])
    assert data["config"]["destination"]["url"] == f"mysql://{user}:**********@{MYSQL_HOST}:{MYSQL_PORT}/{database}"
    assert password not in repr(data) and password not in the_plan.sink.description


def test_parallel_workers_share_one_job_transaction_safely(tmp_path, mysql_url, sql):
    write_csv(tmp_path / "in.csv", ["id", "name"], [(i, f"n{i}") for i in range(1, 20_001)])
    path = job_file(tmp_path, f"""
        name: together
        source: {{type: csv, path: in.csv}}
        destination: {{type: mysql, url: '{mysql_url}', table: t}}
        transaction: job
        parallel: {{workers: 4}}
        batch: {{size: 1000}}
        conflict: {{key: [id], strategy: overwrite}}
        mapping: {{columns: {{id: {{type: int}}, name: {{}}}}}}
    """)
    report = run_job(path, tmp_path / "state")
    assert report.counts.read == report.counts.inserted == 20_000
    assert sql("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id) FROM t") == [(20_000, 20_000, 20_000 * 20_001 // 2)]
