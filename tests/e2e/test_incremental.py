"""An incremental job driven through the CLI, as a user runs it every night: plan, run, change the
source, plan and run again; a job that would duplicate rows is refused by `portl validate`."""

from __future__ import annotations

import json
import sqlite3

from .conftest import create_table, query, text_counts

JOB = """\
name: orders_nightly
source:
  type: sqlite
  path: shop.db
  table: orders
  incremental: {cursor: updated_at, lookback: 5m}
destination: {type: sqlite, path: warehouse.db, table: orders}
conflict: {key: [id]}
"""


def test_each_run_moves_only_what_changed_and_the_plan_says_what_it_will_read(portl, write, tmp_path):
    create_table(tmp_path / "shop.db", "orders", "id INTEGER PRIMARY KEY, item TEXT, updated_at TIMESTAMP",
                 [(i, f"item {i}", f"2024-05-01 10:{i:02d}:00") for i in range(1, 21)])
    write("job.yaml", JOB)

    first = portl("plan", "job.yaml", "--format", "json")
    assert first.code == 0, first.log
    window = json.loads(first.stdout)["source"]["incremental"]
    assert window["previous"] is None and window["mark"]["value"] == "2024-05-01 10:20:00"

    ran = portl("run", "job.yaml")
    assert ran.code == 0, ran.log
    assert text_counts(ran.output)["inserted"] == 20

    shop = sqlite3.connect(tmp_path / "shop.db")
    shop.execute("UPDATE orders SET item = 'changed', updated_at = '2024-05-01 11:00:00' WHERE id = 3")
    shop.execute("INSERT INTO orders VALUES (21, 'new', '2024-05-01 11:01:00')")
    shop.commit()
    shop.close()

    plan = portl("plan", "job.yaml")
    assert plan.code == 0, plan.log
    assert "previous mark: '2024-05-01 10:20:00' (the last finished run's)" in plan.output
    assert "new mark: '2024-05-01 11:01:00'" in plan.output
    assert "filter: WHERE \"updated_at\" > '2024-05-01 10:15:00' AND \"updated_at\" <= '2024-05-01 11:01:00'" in plan.output

    again = portl("run", "job.yaml")
    assert again.code == 0, again.log
    # 16..20 again (the 5-minute lookback), and rows 3 and 21: upserted, none twice.
    assert text_counts(again.output) == {"read": 7, "inserted": 1, "updated": 6, "skipped": 0, "rejected": 0}
    assert query(tmp_path / "warehouse.db", "SELECT count(*), count(DISTINCT id) FROM orders") == [(21, 21)]
    assert query(tmp_path / "warehouse.db", "SELECT item FROM orders WHERE id = 3") == [("changed",)]

    runs = portl("runs", "--format", "json")
    latest = json.loads(runs.stdout)[0]["run_id"]
    shown = portl("runs", "show", latest)
    assert "incremental after updated_at = 2024-05-01 10:20:00, up to updated_at = 2024-05-01 11:01:00" in shown.output


def test_validate_refuses_a_lookback_without_a_conflict_key_at_its_line(portl, write):
    write("job.yaml", JOB.replace("conflict: {key: [id]}\n", ""))
    checked = portl("validate", "job.yaml")
    assert checked.code != 0
    assert "job.yaml:2:1" in checked.output and "would be loaded twice" in checked.output


def test_full_refresh_reads_every_row_again_and_excludes_resume(portl, write, tmp_path):
    create_table(tmp_path / "shop.db", "orders", "id INTEGER PRIMARY KEY, item TEXT, updated_at TIMESTAMP",
                 [(i, f"item {i}", f"2024-05-01 10:{i:02d}:00") for i in range(1, 11)])
    write("job.yaml", JOB)
    assert portl("run", "job.yaml").code == 0

    plan = portl("plan", "job.yaml", "--full-refresh")
    assert plan.code == 0, plan.log
    assert "full refresh: every row again, setting aside the last finished run's mark (2024-05-01 10:10:00)" in plan.output
    refreshed = portl("run", "job.yaml", "--full-refresh")
    assert refreshed.code == 0, refreshed.log
    assert text_counts(refreshed.output) == {"read": 10, "inserted": 0, "updated": 10, "skipped": 0, "rejected": 0}

    both = portl("run", "job.yaml", "--full-refresh", "--resume")
    assert both.code == 2 and "--full-refresh starts a new one" in both.output
