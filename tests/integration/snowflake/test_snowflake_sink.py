"""Writing Snowflake through fakesnow: PUT and COPY INTO with the checkpoint in the batch's
transaction, replace by swap, upserts, a COPY the server refuses, and what the plan shows."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

import portl
from portl.cli.render import render_plan
from tests.integration.snowflake.helpers import run_job



PEOPLE = "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"


def people_job(snowflake_job, body: str = "", table: str = "people") -> str:
    head = ("name: people\nsource: {type: csv, path: in.csv}\n"
            f"destination: {{type: snowflake, {{snowflake}}, table: {table}}}\n")
    return snowflake_job(head + body)


def rows(place, table: str = "people") -> list[tuple]:
    return place.query(f'SELECT "id", "name", "city" FROM "{table}" ORDER BY "id"')


def test_append_loads_every_row_and_commits_a_checkpoint_per_batch(tmp_path, snowflake_job, snowflake_place):
    (tmp_path / "in.csv").write_text("id,name,city\n" + "".join(f"{i},n{i},\n" for i in range(1, 8)) + "4,\"\",x\n")
    report = run_job(people_job(snowflake_job, "batch: {size: 3}\n" + PEOPLE))
    assert (report.counts.read, report.counts.inserted, report.counts.batches) == (8, 8, 3)
    loaded = rows(snowflake_place)
    assert len(loaded) == 8 and loaded[0] == (1, "n1", None)
    assert (4, "", "x") in loaded  # an empty string stays an empty string, a missing value is NULL
    checkpoints = snowflake_place.query('SELECT partition, checkpoint FROM "_portl_checkpoints" WHERE partition = \'0\'')
    assert json.loads(checkpoints[0][1])["rows"] == 8


def test_the_plan_shows_the_ddl_put_copy_merge_and_no_password(tmp_path, snowflake_job):
    (tmp_path / "in.csv").write_text("id,name,city\n1,a,b\n")
    path = people_job(snowflake_job, "conflict: {key: [id], strategy: merge}\n" + PEOPLE)
    the_plan = portl.plan(portl.load_job(path))
    try:
        shown = the_plan.to_dict()
        console = Console(file=io.StringIO(), width=400)
        render_plan(console, the_plan)
        text = console.file.getvalue()
    finally:
        the_plan.close()
    statements = "\n".join(the_plan.target.ddl + the_plan.target.per_batch)
    assert 'CREATE TABLE IF NOT EXISTS "people" (\n  "id" NUMBER(10,0),\n  "name" VARCHAR,\n  "city" VARCHAR,\n  ' \
           'PRIMARY KEY ("id")\n)' in statements
    assert "PUT 'file://" in statements and "AUTO_COMPRESS = FALSE" in statements
    assert "COPY INTO \"_portl_stage_" in statements and "FILE_FORMAT = (TYPE = CSV COMPRESSION = GZIP" in statements
    assert "ON_ERROR = ABORT_STATEMENT" in statements
    assert 'MERGE INTO "people" t USING "_portl_stage_' in statements
    assert 'WHEN MATCHED THEN UPDATE SET t."name" = COALESCE(s."name", t."name")' in statements
    assert "MERGE INTO" in text and "COPY INTO" in text
    assert "'snow'" not in json.dumps(shown, default=str) and '"snow"' not in json.dumps(shown, default=str)
    assert "password: snow" not in text and "password" not in text.replace("password: '**********'", "")


def test_replace_swaps_the_loaded_table_in_and_leaves_no_side_table(tmp_path, snowflake_job, snowflake_place):
    path = people_job(snowflake_job, "mode: replace\n" + PEOPLE)
    (tmp_path / "in.csv").write_text("id,name,city\n1,ann,oslo\n2,bob,rome\n")
    run_job(path)
    (tmp_path / "in.csv").write_text("id,name,city\n5,eve,kyiv\n")
    the_plan = portl.plan(portl.load_job(path))
    try:
        swap = the_plan.target.per_batch[-1]
    finally:
        the_plan.close()
    assert swap.startswith("-- once, after the last batch: ")
    assert 'ALTER TABLE "people" SWAP WITH "people__portl_new"; DROP TABLE "people__portl_new"' in swap
    report = run_job(path)
    assert report.counts.inserted == 1
    assert rows(snowflake_place) == [(5, "eve", "kyiv")]
    tables = {name for (name,) in snowflake_place.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = CURRENT_SCHEMA()")}
    assert tables == {"people", "_portl_checkpoints"}
    # fakesnow has no ALTER TABLE ... SWAP WITH: the run says it renamed instead
    assert any("SWAP WITH" in w and "people" in w for w in report.warnings)


def test_a_copy_the_server_refuses_names_the_table_and_file_and_loads_nothing(tmp_path, snowflake_job, snowflake_place):
    snowflake_place.query('CREATE TABLE "people" ("id" NUMBER(10,0), "name" VARCHAR, "city" VARCHAR, "code" NUMBER(3,0))')
    (tmp_path / "in.csv").write_text("id,name,city,code\n1,ann,oslo,7\n2,bob,rome,12345\n")
    path = people_job(snowflake_job, "mapping: {columns: {id: {type: int}, name: {}, city: {}, code: {type: int}}}\n")
    with pytest.raises(portl.PortlError) as caught:
        run_job(path)
    message = str(caught.value)
    assert message.startswith("COPY INTO people refused the batch in file b1_")
    assert ".csv.gz: Conversion Error: CSV Error on Line: 2 " in message  # the server's words: file, line
    assert "line N of the file is row N of the batch" in message
    assert "rolled back: nothing of it was written" in message
    assert snowflake_place.query('SELECT count(*) FROM "people"') == [(0,)]
    assert snowflake_place.query('SELECT count(*) FROM "_portl_checkpoints"') == [(0,)]


def test_an_upsert_into_a_table_created_without_quotes_finds_its_columns(tmp_path, snowflake_job, snowflake_place):
    snowflake_place.query("CREATE TABLE PEOPLE (ID NUMBER(10,0), NAME VARCHAR, CITY VARCHAR)")
    snowflake_place.query("INSERT INTO PEOPLE VALUES (1, 'ann', 'oslo')")
    (tmp_path / "in.csv").write_text("id,name,city\n1,ANN,\n2,bob,rome\n")
    report = run_job(people_job(snowflake_job, "conflict: {key: [ID], strategy: merge}\n" + PEOPLE))
    assert (report.counts.inserted, report.counts.updated) == (1, 1)
    # fakesnow cannot MERGE inside a transaction: the run says it upserted with UPDATE and INSERT
    assert any("cannot run MERGE inside a transaction" in w for w in report.warnings)
    assert snowflake_place.query("SELECT ID, NAME, CITY FROM PEOPLE ORDER BY ID") == [(1, "ANN", "oslo"), (2, "bob", "rome")]


def test_an_upsert_that_crashed_resumes_and_loads_each_row_once(tmp_path, snowflake_job, snowflake_place, crash_hook):
    body = "batch: {size: 10}\nconflict: {key: [id], strategy: overwrite}\n" + crash_hook.yaml + PEOPLE
    path = people_job(snowflake_job, body)
    (tmp_path / "in.csv").write_text("id,name,city\n" + "".join(f"{i},n{i},c\n" for i in range(1, 51)))
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(path)
    crash_hook.disarm()
    assert snowflake_place.query('SELECT count(*) FROM "people"') == [(20,)]  # two committed batches
    report = run_job(path, resume=True)
    assert report.resumed and report.counts.read == 50 and report.counts.inserted == 50
    assert [r[0] for r in rows(snowflake_place)] == list(range(1, 51))


@pytest.mark.parametrize("strategy,expected", [
    ("skip", [(1, "ann", "oslo"), (2, "bob", "rome"), (3, "cy", "lima")]),
    ("fail", [(1, "ann", "oslo"), (2, "bob", "rome"), (3, "cy", "lima")]),
    ("overwrite", [(1, "ANN", None), (2, "BOB", "paris"), (3, "cy", "lima")]),
    ("merge", [(1, "ANN", "oslo"), (2, "BOB", "paris"), (3, "cy", "lima")]),
])
def test_the_merge_statement_real_snowflake_runs_settles_each_strategy(snowflake_place, strategy, expected):
    """fakesnow cannot MERGE inside a transaction, so runs here upsert with UPDATE and INSERT; the
    MERGE Snowflake runs is checked here on its own, outside a transaction."""
    from portl.connectors.base import ConflictStrategy
    from portl.connectors.snowflake import staging

    snowflake_place.query('CREATE TABLE "people" ("id" NUMBER(10,0), "name" VARCHAR, "city" VARCHAR)')
    snowflake_place.query('''INSERT INTO "people" VALUES (1, 'ann', 'oslo'), (2, 'bob', 'rome')''')
    snowflake_place.query('CREATE TABLE "staged" ("id" NUMBER(10,0), "name" VARCHAR, "city" VARCHAR)')
    snowflake_place.query('''INSERT INTO "staged" VALUES (1, 'ANN', NULL), (2, 'BOB', 'paris'), (3, 'cy', 'lima')''')
    (merge,) = staging.statements('"staged"', '"people"', ["id", "name", "city"], ["id"], ConflictStrategy(strategy))
    counts = snowflake_place.query(merge)
    assert counts[0][0] == 1  # number of rows inserted
    assert rows(snowflake_place) == expected


def test_a_replace_that_crashed_resumes_into_its_loaded_table_and_swaps_once(tmp_path, snowflake_job, snowflake_place,
                                                                               crash_hook):
    path = people_job(snowflake_job, "mode: replace\nbatch: {size: 10}\n" + crash_hook.yaml + PEOPLE)
    (tmp_path / "in.csv").write_text("id,name,city\n100,old,x\n")
    run_job(path)
    (tmp_path / "in.csv").write_text("id,name,city\n" + "".join(f"{i},n{i},c\n" for i in range(1, 51)))
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(path)
    crash_hook.disarm()
    assert rows(snowflake_place) == [(100, "old", "x")]  # readers still see the old rows
    assert snowflake_place.query('SELECT count(*) FROM "people__portl_new"') == [(20,)]
    report = run_job(path, resume=True)
    assert report.resumed and report.counts.inserted == 50
    assert [r[0] for r in rows(snowflake_place)] == list(range(1, 51))
    tables = {name for (name,) in snowflake_place.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = CURRENT_SCHEMA()")}
    assert tables == {"people", "_portl_checkpoints"}


def test_json_is_loaded_as_a_document_not_as_a_string(tmp_path, snowflake_job, snowflake_place):
    (tmp_path / "in.csv").write_text('id,doc\n1,"{""a"": {""b"": [1, 2]}}"\n2,\n')
    path = people_job(snowflake_job, "mapping: {columns: {id: {type: int}, doc: {type: json}}}\n")
    the_plan = portl.plan(portl.load_job(path))
    try:
        statements = "\n".join(the_plan.target.ddl + the_plan.target.per_batch)
    finally:
        the_plan.close()
    assert 'CAST("doc" AS VARCHAR) AS "doc"' in statements  # staged as text...
    assert 'INSERT INTO "people" ("id", "doc") SELECT "id", PARSE_JSON("doc") AS "doc" FROM "_portl_stage_' in statements
    report = run_job(path)
    assert report.counts.inserted == 2
    assert snowflake_place.query('SELECT "id", "doc":a.b[1]::INT, "doc" IS NULL FROM "people" ORDER BY "id"') == \
        [(1, 2, False), (2, None, True)]
