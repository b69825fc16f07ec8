"""An incremental Snowflake source: each run reads only the rows whose cursor grew since the
job's last finished run, into a Snowflake destination that keeps the mark with its checkpoints."""

from __future__ import annotations

import io

from rich.console import Console

import portl
from portl.cli.render import render_plan
from tests.integration.snowflake.helpers import run_job


JOB = """
name: orders_sync
source: {type: snowflake, {snowflake}, table: orders, incremental: {cursor: updated_at}}
destination: {type: snowflake, {snowflake}, table: orders_copy}
conflict: {key: [id]}
batch: {size: 2}
"""


def insert(place, rows: list[tuple[int, str, str]]) -> None:
    for id_, name, stamp in rows:
        place.query('INSERT INTO "orders" VALUES (%s, %s, %s::TIMESTAMP_NTZ)', (id_, name, stamp))


def test_each_run_moves_only_the_rows_whose_cursor_grew(snowflake_job, snowflake_place):
    snowflake_place.query('CREATE TABLE "orders" ("id" NUMBER(10,0), "name" VARCHAR, "updated_at" TIMESTAMP_NTZ)')
    insert(snowflake_place, [(i, f"n{i}", f"2024-05-01 10:0{i}:00") for i in range(1, 6)])
    path = snowflake_job(JOB)
    first = run_job(path)
    assert (first.counts.read, first.counts.inserted) == (5, 5)

    insert(snowflake_place, [(6, "n6", "2024-05-01 10:06:00")])
    snowflake_place.query('''UPDATE "orders" SET "name" = 'N2', "updated_at" = '2024-05-01 10:07:00' WHERE "id" = 2''')
    the_plan = portl.plan(portl.load_job(path))
    try:
        console = Console(file=io.StringIO(), width=300)
        render_plan(console, the_plan)
    finally:
        the_plan.close()
    assert "\"updated_at\" > '2024-05-01 10:05:00'" in console.file.getvalue()
    second = run_job(path)
    assert (second.counts.read, second.counts.inserted, second.counts.updated) == (2, 1, 1)
    assert snowflake_place.query('SELECT "id", "name" FROM "orders_copy" ORDER BY "id"') == \
        [(1, "n1"), (2, "N2"), (3, "n3"), (4, "n4"), (5, "n5"), (6, "n6")]

    third = run_job(path)
    assert third.counts.read == 0
