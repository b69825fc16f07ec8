"""Whole jobs through Portl's Python API, with PostgreSQL on either side."""

from __future__ import annotations

import csv
import decimal
import textwrap

import pytest

import portl
from tests.integration.postgres.helpers import job_file, rows_of

def run(path, tmp_path, **options):
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), **options))
    finally:
        the_plan.close()


def write_csv(tmp_path, header, rows, name="in.csv"):
    with open(tmp_path / name, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def csv_to_pg(tmp_path, pg_url, body=""):
    head = textwrap.dedent(f"""\
        name: people
        source: {{type: csv, path: in.csv}}
        destination: {{type: postgres, url: "{pg_url}", table: people}}
        mapping:
          columns: {{id: {{type: int}}, name: {{}}, amount: {{type: "decimal(10,2)"}}}}
        """)
    return job_file(tmp_path, head + body)


def test_csv_to_postgres_append_loads_every_row(tmp_path, pg, pg_url):
    write_csv(tmp_path, ["id", "name", "amount"], [(i, f"n{i}", f"{i}.25") for i in range(1, 1001)])
    report = run(csv_to_pg(tmp_path, pg_url, "batch: {size: 300}\n"), tmp_path)
    assert (report.status, report.counts.read, report.counts.inserted, report.counts.batches) == ("succeeded", 1000, 1000, 4)
    assert rows_of(pg, "SELECT count(*), sum(amount), min(name) FROM people") == [(1000, decimal.Decimal("500750.00"), "n1")]
    # The partition's checkpoint, and the one that says the run finished (engine.unfinished).
    assert rows_of(pg, "SELECT partition FROM _portl_checkpoints WHERE run_id = %s ORDER BY 1" % f"'{report.run_id}'") == [("0",), ("~finished",)]


def test_csv_to_postgres_upsert_counts_inserts_and_updates(tmp_path, pg, pg_url):
    path = csv_to_pg(tmp_path, pg_url, "conflict: {key: [id], strategy: merge}\n")
    write_csv(tmp_path, ["id", "name", "amount"], [(1, "ann", "1.00"), (2, "bob", "2.00")])
    run(path, tmp_path)
    write_csv(tmp_path, ["id", "name", "amount"], [(2, "BOB", ""), (3, "cy", "3.00")])
    report = run(path, tmp_path)
    assert (report.counts.inserted, report.counts.updated, report.counts.skipped_total) == (1, 1, 0)
    assert rows_of(pg, "SELECT id, name, amount FROM people ORDER BY id") == [
        (1, "ann", decimal.Decimal("1.00")), (2, "BOB", decimal.Decimal("2.00")), (3, "cy", decimal.Decimal("3.00"))]


def test_postgres_to_csv_writes_every_row_with_null_apart_from_empty(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, name text, paid boolean, amount numeric(6,2)); "
               "INSERT INTO t VALUES (1, 'a, \"b\"', true, 1.5), (2, '', false, NULL), (3, NULL, NULL, -2)")
    path = job_file(tmp_path, f"""\
        name: export
        source: {{type: postgres, url: "{pg_url}", table: t}}
        destination: {{type: csv, path: out.csv}}
        """)
    report = run(path, tmp_path)
    assert report.counts.inserted == 3
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        'id,name,paid,amount', '1,"a, ""b""",true,1.50', '2,"",false,', "3,,,-2.00"]


def test_a_parallel_copy_between_tables_reads_key_ranges_and_loads_every_row_once(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE src (id bigint PRIMARY KEY, v text); "
               "INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
    path = job_file(tmp_path, f"""\
        name: copy
        source: {{type: postgres, url: "{pg_url}", table: src}}
        destination: {{type: postgres, url: "{pg_url}", table: dst}}
        parallel: {{workers: 4}}
        batch: {{size: 1000}}
        """)
    report = run(path, tmp_path)
    assert (report.counts.read, report.counts.inserted) == (20000, 20000)
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id), sum(id) FROM dst") == [(20000, 20000, 200010000)]
    assert rows_of(pg, "SELECT count(*) FROM _portl_checkpoints WHERE checkpoint->>'done' = 'true' "
                       "AND partition <> '~finished'") == [(4,)]


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_a_crash_then_resume_loads_every_row_exactly_once(tmp_path, pg, pg_url, crash_hook, mode):
    pg.execute("CREATE TABLE people (id int PRIMARY KEY, name text, amount numeric(10,2)); "
               "INSERT INTO people VALUES (-1, 'before', 0)")
    body = "batch: {size: 40}\n" + crash_hook.yaml
    body += {"append": "mode: append\n", "replace": "mode: replace\n", "upsert": "conflict: {key: [id], strategy: overwrite}\n"}[mode]
    path = csv_to_pg(tmp_path, pg_url, body)
    write_csv(tmp_path, ["id", "name", "amount"], [(i, f"n{i}", "1.00") for i in range(1, 201)])
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    ((loaded,),) = rows_of(pg, "SELECT count(*) FROM people")
    if mode == "replace":
        assert loaded == 1  # readers still see the old table
    else:
        assert 1 < loaded < 201  # the batches before the crash were committed
    crash_hook.disarm()
    report = run(path, tmp_path, resume=True)
    assert report.resumed and report.counts.read == 200 and report.counts.inserted == 200
    ids = [r[0] for r in rows_of(pg, "SELECT id FROM people ORDER BY id")]
    assert ids == ([] if mode == "replace" else [-1]) + list(range(1, 201))


def test_transaction_job_rolls_everything_back_on_failure(tmp_path, pg, pg_url, crash_hook):
    pg.execute("CREATE TABLE people (id int, name text, amount numeric(10,2)); INSERT INTO people VALUES (1, 'old', 0)")
    body = "transaction: job\nmode: replace\nbatch: {size: 40}\nparallel: {workers: 2}\n"
    body += crash_hook.yaml
    path = csv_to_pg(tmp_path, pg_url, body)
    write_csv(tmp_path, ["id", "name", "amount"], [(i, f"n{i}", "1.00") for i in range(1, 501)])
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    assert rows_of(pg, "SELECT id, name FROM people") == [(1, "old")]


def test_the_plan_masks_the_password_and_shows_the_copy(tmp_path, pg, pg_url):
    url = pg_url.replace("postgres@", "postgres:hunter2@")
    write_csv(tmp_path, ["id", "name", "amount"], [(1, "a", "1.00")])
    the_plan = portl.plan(portl.load_job(csv_to_pg(tmp_path, url)))
    try:
        text = repr(the_plan.to_dict())
    finally:
        the_plan.close()
    assert "hunter2" not in text and "postgres:**********@" in text
    assert 'COPY "public"."people" ("id", "name", "amount") FROM STDIN (FORMAT binary)' in text
    assert "COPY FROM STDIN" in the_plan.sink.capabilities.bulk_method
