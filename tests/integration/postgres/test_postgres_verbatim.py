"""The verbatim path into PostgreSQL: source text goes to COPY as it is, and comes out as the Arrow
path would have written it; a block the server refuses is loaded again in parts, its refused rows rejected."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import uuid

import pytest

import portl
from tests.integration.postgres.helpers import job_file, rows_of

def planned(path):
    return portl.plan(portl.load_job(path))


def run(path, tmp_path, **options):
    the_plan = planned(path)
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), **options))
        return report, the_plan.verbatim
    finally:
        the_plan.close()


def csv_job(tmp_path, pg_url, text: str, body: str = "", table: str = "people", columns: str = "") -> str:
    (tmp_path / "in.csv").write_text(text)
    mapping = f"mapping:\n  columns: {{{columns}}}\n" if columns else ""
    return job_file(tmp_path, f"""\
name: load
source: {{type: csv, path: in.csv}}
destination: {{type: postgres, url: "{pg_url}", table: {table}}}
{mapping}{body}""")


PEOPLE = "CREATE TABLE people (id bigint PRIMARY KEY, name text, amount numeric(10,2) NOT NULL, born date)"


def people_csv(n: int) -> str:
    return "id,name,amount,born\n" + "".join(f'{i},"n{i}, ""x""",{i}.25,2020-01-{i % 28 + 1:02d}\n' for i in range(1, n + 1))


def test_csv_into_typed_columns_goes_verbatim_and_loads_every_value(tmp_path, pg, pg_url):
    pg.execute(PEOPLE)
    path = csv_job(tmp_path, pg_url, people_csv(500), "batch: {size: 120}\n")
    report, verbatim = run(path, tmp_path)
    assert verbatim is not None and verbatim.columns == ("id", "name", "amount", "born")
    assert {name for name, _ in verbatim.request.types} == {"id", "amount", "born"}
    assert (report.counts.read, report.counts.inserted, report.counts.batches) == (500, 500, 5)
    assert rows_of(pg, "SELECT id, name, amount, born FROM people WHERE id = 7") == [
        (7, 'n7, "x"', decimal.Decimal("7.25"), dt.date(2020, 1, 8))]
    assert rows_of(pg, "SELECT count(*), sum(id) FROM people") == [(500, 125250)]


def test_a_block_the_server_refuses_is_loaded_in_parts_and_the_bad_rows_are_rejected_with_their_lines(tmp_path, pg, pg_url):
    pg.execute(PEOPLE)
    # Both values pass the text checks; the server refuses them (numeric(10,2) overflow, NOT NULL).
    text = "id,name,amount,born\n1,ann,1.00,\n2,bob,1234567890,\n3,cy,,\n4,dan,4.00,\n"
    events = portl.RunOptions().events
    seen = []
    events.subscribe(seen.append)
    report, verbatim = run(csv_job(tmp_path, pg_url, text), tmp_path, events=events)
    assert verbatim is not None
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (4, 2, 2)
    assert rows_of(pg, "SELECT id FROM people ORDER BY id") == [(1,), (4,)]
    # The block's records are its lines: its text is cut and loaded again in parts, unparsed, and
    # each refused row keeps the server's reason.
    with open(tmp_path / "load.rejects.csv", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["record"], r["column"], r["value"], r["original"]) for r in rejects] == [
        ("3", "2", "amount", "1234567890", "2,bob,1234567890,"), ("4", "3", "amount", "", "3,cy,,")]
    assert rejects[0]["error"].startswith("refused by the destination: numeric field overflow")
    assert 'null value in column "amount" of relation "people" violates not-null constraint' in rejects[1]["error"]
    assert [e.event for e in seen if e.event in ("verbatim_refused", "rows_refused")] == ["verbatim_refused", "rows_refused"]


def test_values_only_postgres_would_take_are_rejected_as_the_arrow_path_rejects_them(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE flags (id int PRIMARY KEY, on_ boolean, day date)")
    text = "id,on_,day\n1,true,2024-01-05\n2,on,2024-01-05\n3,yes,Jan 5 2024\n4,f,2024-01-06\n"
    report, verbatim = run(csv_job(tmp_path, pg_url, text, table="flags"), tmp_path)
    assert verbatim is not None
    assert (report.counts.inserted, report.counts.rejected) == (2, 2)
    assert rows_of(pg, "SELECT id, on_, day FROM flags ORDER BY id") == [
        (1, True, dt.date(2024, 1, 5)), (4, False, dt.date(2024, 1, 6))]


def test_a_quote_inside_an_unquoted_field_is_kept_as_arrow_reads_it(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE screens (id int, label text, size text)")
    text = 'id,label,size\n1,5" screen,small\n2,plain,big\n'
    report, _ = run(csv_job(tmp_path, pg_url, text, table="screens"), tmp_path)
    assert report.counts.inserted == 2
    assert rows_of(pg, "SELECT id, label, size FROM screens ORDER BY id") == [(1, '5" screen', "small"), (2, "plain", "big")]


def test_a_line_holding_only_the_end_of_data_mark_is_loaded_as_text(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE notes (note text)")
    report, verbatim = run(csv_job(tmp_path, pg_url, "note\nfirst\n\\.\nlast\n", table="notes"), tmp_path)
    assert verbatim is not None and report.counts.inserted == 3
    assert rows_of(pg, "SELECT note FROM notes ORDER BY note") == [("\\.",), ("first",), ("last",)]


def test_null_and_empty_strings_stay_apart(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE t (id int, v text)")
    run(csv_job(tmp_path, pg_url, 'id,v\n1,\n2,""\n3,x\n', table="t"), tmp_path)
    assert rows_of(pg, "SELECT id, v FROM t ORDER BY id") == [(1, None), (2, ""), (3, "x")]


def test_a_resumed_verbatim_load_has_each_row_once(tmp_path, pg, pg_url, crash_hook):
    pg.execute(PEOPLE)
    body = "batch: {size: 50}\n" + crash_hook.yaml
    path = csv_job(tmp_path, pg_url, people_csv(400), body)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    ((before,),) = rows_of(pg, "SELECT count(*) FROM people")
    assert 0 < before < 400
    crash_hook.disarm()
    report, verbatim = run(path, tmp_path, resume=True)
    assert verbatim is not None and report.resumed
    assert (report.counts.read, report.counts.inserted) == (400, 400)
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM people") == [(400, 400, 1, 400)]


def test_two_workers_load_byte_ranges_verbatim_each_row_once(tmp_path, pg, pg_url):
    pg.execute(PEOPLE)
    path = csv_job(tmp_path, pg_url, people_csv(3000), "batch: {size: 200}\nparallel: {workers: 2}\n")
    report, verbatim = run(path, tmp_path)
    assert verbatim is not None and (report.counts.read, report.counts.inserted) == (3000, 3000)
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id), sum(id) FROM people") == [(3000, 3000, 4501500)]


def test_an_upsert_goes_verbatim_through_the_staging_table_and_counts_updates(tmp_path, pg, pg_url):
    pg.execute(PEOPLE + "; INSERT INTO people VALUES (1, 'old', 0, NULL), (2, 'old', 0, NULL)")
    text = "id,name,amount,born\n1,ann,1.00,\n3,cy,3.00,\n"
    report, verbatim = run(csv_job(tmp_path, pg_url, text, "conflict: {key: [id], strategy: overwrite}\n"), tmp_path)
    assert verbatim is not None
    assert (report.counts.inserted, report.counts.updated) == (1, 1)
    assert rows_of(pg, "SELECT id, name FROM people ORDER BY id") == [(1, "ann"), (2, "old"), (3, "cy")]


def test_duplicate_keys_in_a_verbatim_upsert_block_are_settled_as_the_arrow_path_settles_them(tmp_path, pg, pg_url):
    pg.execute(PEOPLE)
    text = "id,name,amount,born\n1,first,1.00,\n1,second,2.00,\n2,bob,3.00,\n"
    report, _ = run(csv_job(tmp_path, pg_url, text, "conflict: {key: [id], strategy: overwrite}\n"), tmp_path)
    assert (report.counts.read, report.counts.inserted, report.counts.updated) == (3, 2, 1)
    assert rows_of(pg, "SELECT id, name FROM people ORDER BY id") == [(1, "second"), (2, "bob")]


@pytest.mark.parametrize("body, why", [
    ("hooks: {before_row: {type: python, function: 'rowhooks:keep'}}\n", "row hooks"),
    ("transaction: job\n", "transaction: job"),
    ("conflict: {key: [id], strategy: skip}\n", "strategy skip"),
])
def test_the_plan_says_why_the_verbatim_path_is_not_taken(tmp_path, pg, pg_url, body, why):
    pg.execute(PEOPLE)
    (tmp_path / "rowhooks.py").write_text("def keep(row):\n    return row\n")
    the_plan = planned(csv_job(tmp_path, pg_url, people_csv(3), body))
    try:
        data = the_plan.to_dict()["destination"]
    finally:
        the_plan.close()
    assert data["verbatim"] is None and why in data["verbatim_not_used_because"]


def test_a_real_column_keeps_its_values_off_the_verbatim_path(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE m (id int, x real)")
    the_plan = planned(csv_job(tmp_path, pg_url, "id,x\n1,0.1\n", table="m"))
    try:
        reason = the_plan.verbatim_why_not
    finally:
        the_plan.close()
    assert the_plan.verbatim is None and "column x: float values into a float4 column" in reason


# -- Postgres to Postgres --------------------------------------------------------------------

ALL_TYPES = """CREATE TABLE src (id bigint PRIMARY KEY, i int, n numeric(12,3), f double precision, b boolean,
    d date, ts timestamp, tz timestamptz, j jsonb, u uuid, raw bytea, t text, v varchar(20))"""


def copy_job(tmp_path, pg_url, body: str = "") -> str:
    return job_file(tmp_path, f"""\
name: copy
source: {{type: postgres, url: "{pg_url}", table: src}}
destination: {{type: postgres, url: "{pg_url}", table: dst}}
{body}""")


def test_a_table_copies_verbatim_with_every_type_intact(tmp_path, pg, pg_url):
    pg.execute(ALL_TYPES)
    key = uuid.uuid4()
    pg.execute("INSERT INTO src VALUES (1, -5, 12.345, 0.1, true, '2024-02-29', '2024-01-02 03:04:05.678901', "
               "'2024-01-02 03:04:05+02', '{\"a\": [1, \"x\"]}', %s, '\\x00ff', 'line\nbreak, \"quoted\"', ''), "
               "(2, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)", (key,))
    pg.execute("INSERT INTO src (id, t) SELECT g, 'row ' || g FROM generate_series(3, 1000) g")
    report, verbatim = run(copy_job(tmp_path, pg_url, "batch: {size: 300}\n"), tmp_path)
    assert verbatim is not None and (report.counts.read, report.counts.inserted) == (1000, 1000)
    columns = "id, i, n, f::text, b, d, ts, tz, j, u, raw, t, v"
    assert rows_of(pg, f"SELECT {columns} FROM dst WHERE id <= 2 ORDER BY id") == \
        rows_of(pg, f"SELECT {columns} FROM src WHERE id <= 2 ORDER BY id")
    ((first,),) = rows_of(pg, "SELECT j FROM dst WHERE id = 1")
    assert first == {"a": [1, "x"]}
    assert rows_of(pg, "SELECT count(*) FROM dst d JOIN src s USING (id) WHERE d.t IS NOT DISTINCT FROM s.t") == [(1000,)]


def test_a_copied_block_holding_a_value_arrow_cannot_hold_is_parsed_and_that_row_rejected(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE src (id int PRIMARY KEY, n numeric(10,2))")
    pg.execute("INSERT INTO src VALUES (1, 1.5), (2, 'NaN'), (3, 3)")
    report, verbatim = run(copy_job(tmp_path, pg_url), tmp_path)
    assert verbatim is not None
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 2, 1)
    assert rows_of(pg, "SELECT id, n FROM dst ORDER BY id") == [(1, decimal.Decimal("1.50")), (3, decimal.Decimal("3.00"))]
    assert "NaN" in (tmp_path / "copy.rejects.csv").read_text()


def test_a_resumed_verbatim_copy_continues_after_the_last_key(tmp_path, pg, pg_url, crash_hook):
    pg.execute("CREATE TABLE src (id bigint PRIMARY KEY, v text); "
               "INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 2000) g")
    path = copy_job(tmp_path, pg_url, "batch: {size: 300}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    crash_hook.disarm()
    report, verbatim = run(path, tmp_path, resume=True)
    assert verbatim is not None and report.counts.inserted == 2000
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id), sum(id) FROM dst") == [(2000, 2000, 2001000)]
    ((checkpoint,),) = rows_of(pg, "SELECT checkpoint FROM _portl_checkpoints WHERE checkpoint->>'done' = 'true' "
                                   "AND partition <> '~finished'")
    assert checkpoint["position"]["after"] == 2000


def test_an_unconstrained_numeric_column_is_read_the_arrow_way(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE src (id int PRIMARY KEY, n numeric); INSERT INTO src VALUES (1, 1.123456789012)")
    the_plan = planned(copy_job(tmp_path, pg_url))
    try:
        assert the_plan.verbatim is None
        assert "cannot hand its rows over as text" in the_plan.verbatim_why_not
    finally:
        the_plan.close()


def test_the_json_plan_lists_the_verbatim_columns_and_checks(tmp_path, pg, pg_url):
    pg.execute(PEOPLE)
    the_plan = planned(csv_job(tmp_path, pg_url, people_csv(2)))
    try:
        data = json.loads(json.dumps(the_plan.to_dict()))["destination"]["verbatim"]
    finally:
        the_plan.close()
    assert data == {"format": "csv", "columns": ["id", "name", "amount", "born"],
                    "checks": {"id": "bigint", "amount": "decimal(10,2)", "born": "date"}, "required": []}


def test_a_table_read_in_key_order_is_copied_as_binary_rows(tmp_path, pg, pg_url):
    pg.execute(ALL_TYPES)
    the_plan = planned(copy_job(tmp_path, pg_url))
    try:
        data = json.loads(json.dumps(the_plan.to_dict()))["destination"]["verbatim"]
        note = " ".join(the_plan.source_notes)
    finally:
        the_plan.close()
    assert data["format"] == "pgbinary" and "the source's binary COPY rows go to the destination" in note


@pytest.mark.parametrize("source, destination", [
    ("CREATE TABLE src (id bigint, v text)", ""),  # no key: no key range to read a refused block again by
    ("CREATE TABLE src (id bigint PRIMARY KEY, v int2)", "CREATE TABLE dst (id bigint PRIMARY KEY, v int4)"),
    ("CREATE TABLE src (id bigint PRIMARY KEY, v json)", ""),  # Portl creates jsonb: another binary layout
    ("CREATE TABLE src (id bigint PRIMARY KEY, v inet)", ""),  # read as text: its binary layout is not text
], ids=["no-key", "int2-into-int4", "json-into-created-jsonb", "inet"])
def test_a_copy_goes_as_csv_text_where_binary_rows_would_not_fit(tmp_path, pg, pg_url, source, destination):
    pg.execute(source)
    if destination:
        pg.execute(destination)
    pg.execute("INSERT INTO src VALUES (1, NULL)")
    the_plan = planned(copy_job(tmp_path, pg_url))
    try:
        assert the_plan.verbatim is not None and the_plan.verbatim.format.kind == "csv"
    finally:
        the_plan.close()
    report, _ = run(copy_job(tmp_path, pg_url), tmp_path)
    assert report.counts.inserted == 1


def test_binary_rows_the_destination_refuses_are_read_again_and_the_bad_row_rejected(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE src (id bigint PRIMARY KEY, v text, n numeric(6,2)); "
               "INSERT INTO src SELECT g, nullif('v' || g, 'v517'), g / 10.0 FROM generate_series(1, 1000) g")
    pg.execute("CREATE TABLE dst (id bigint PRIMARY KEY, v text NOT NULL, n numeric(6,2))")
    report, verbatim = run(copy_job(tmp_path, pg_url, "batch: {size: 200}\n"), tmp_path)
    assert verbatim is not None and verbatim.format.kind == "pgbinary"
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (1000, 999, 1)
    assert rows_of(pg, "SELECT count(*), sum(id), sum(n) FROM dst") == [(999, 500500 - 517, decimal.Decimal("50050.00") - decimal.Decimal("51.70"))]
    rejects = (tmp_path / "copy.rejects.csv").read_text()
    assert ",517,v,,required value is missing," in rejects
    assert rows_of(pg, "SELECT count(*) FROM dst WHERE id BETWEEN 401 AND 600") == [(199,)]  # the refused block's others


def test_copied_dates_arrow_cannot_hold_are_rejected_and_the_other_rows_loaded(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE src (id int PRIMARY KEY, d date, note text)")
    pg.execute("INSERT INTO src VALUES (1, '2024-01-05', 'NaN is only text here'), (2, 'infinity', NULL), "
               "(3, '10000-01-01', NULL), (4, '0044-03-15 BC', NULL), (5, '0999-12-31', NULL)")
    report, verbatim = run(copy_job(tmp_path, pg_url), tmp_path)
    assert verbatim is not None
    assert (report.counts.inserted, report.counts.rejected) == (2, 3)
    assert rows_of(pg, "SELECT id, d, note FROM dst ORDER BY id") == [
        (1, dt.date(2024, 1, 5), "NaN is only text here"), (5, dt.date(999, 12, 31), None)]


def test_a_copied_block_of_ordinary_values_is_not_parsed(tmp_path, pg, pg_url, monkeypatch):
    from portl.connectors.postgres import source

    pg.execute("CREATE TABLE src (id int PRIMARY KEY, d date, n numeric(6,2)); "
               "INSERT INTO src SELECT g, date '2024-01-01' + g, g / 100.0 FROM generate_series(1, 500) g")
    the_plan = planned(copy_job(tmp_path, pg_url))
    decoded = []
    original = source.Decoder.decode
    monkeypatch.setattr(source.Decoder, "decode", lambda self, *args: decoded.append(1) or original(self, *args))
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    assert the_plan.verbatim is not None and report.counts.inserted == 500 and decoded == []


def test_a_tsv_file_with_its_own_null_spelling_goes_verbatim(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE t (id int, v text, n numeric(6,2))")
    (tmp_path / "in.tsv").write_text('id\tv\tn\n1\tNA\t1.5\n2\t"NA"\tNA\n3\ta,b\t-2\n')
    path = job_file(tmp_path, f"""\
name: load
source: {{type: tsv, path: in.tsv, null_values: [NA]}}
destination: {{type: postgres, url: "{pg_url}", table: t}}
""")
    report, verbatim = run(path, tmp_path)
    assert verbatim is not None and report.counts.inserted == 3
    assert rows_of(pg, "SELECT id, v, n FROM t ORDER BY id") == [
        (1, None, decimal.Decimal("1.50")), (2, "NA", None), (3, "a,b", decimal.Decimal("-2.00"))]
