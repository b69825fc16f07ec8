"""A value the destination refuses rejects that row, not its batch: through the ``portl`` command,
into PostgreSQL, MariaDB and SQLite, the refused row goes to the reject file with its file line,
column, value, original text and the server's reason, every other row is loaded, and the run
exits 0 with counts that add up."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_balanced, read_rejects

COLUMNS = ["id", "name", "n", "d", "pid", "nn"]
GOOD = {"id": "{i}", "name": "ab", "n": "1", "d": "2024-01-31", "pid": "1", "nn": "x"}

# The same table in each dialect: a short text, a small number, a date, a foreign key and a NOT NULL
# column with a default (so that Portl does not require a value: only the server refuses a NULL).
DDL = {
    "postgres": ["CREATE TABLE parent (id int PRIMARY KEY)", "INSERT INTO parent VALUES (1)",
                 "CREATE TABLE t (id int PRIMARY KEY, name varchar(3), n smallint, d date, "
                 "pid int REFERENCES parent (id), nn text NOT NULL DEFAULT 'x')"],
    "mysql": ["CREATE TABLE parent (id int PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO parent VALUES (1)",
              "CREATE TABLE t (id int PRIMARY KEY, name varchar(3), n smallint, d date, pid int, "
              "nn varchar(20) NOT NULL DEFAULT 'x', FOREIGN KEY (pid) REFERENCES parent (id)) ENGINE=InnoDB"],
    "sqlite": ["CREATE TABLE parent (id integer PRIMARY KEY)", "INSERT INTO parent VALUES (1)",
               "CREATE TABLE t (id integer PRIMARY KEY, name text, n integer, d text, "
               "pid integer REFERENCES parent (id), nn text NOT NULL DEFAULT 'x')"],
}
# SQLite has no length limits, no narrow integers and no date type: nothing to refuse there.
NOT_IN_SQLITE = "SQLite stores any text in a column of any declared length or type, so it refuses no such value"


@dataclass(frozen=True)
class Case:
    column: str
    bad: str
    reasons: dict[str, str]  # by dialect: a piece of the server's message
    named: dict[str, str]  # by dialect: the column the reject names (empty: the server names none)


CASES = {
    "too_long_text": Case("name", "toolong", {"postgres": "value too long for type character varying(3)",
                                              "mysql": "for column 'name'"},
                          {"postgres": "name", "mysql": "name"}),
    "out_of_range_number": Case("n", "99999", {"postgres": 'value "99999" is out of range for type smallint',
                                               "mysql": "Out of range value for column 'n'"},
                                {"postgres": "n", "mysql": "n"}),
    "bad_date": Case("d", "2024-02-30", {"postgres": "date/time field value out of range",
                                         "mysql": "for column 'd'"},
                     {"postgres": "d", "mysql": "d"}),
    "not_null": Case("nn", "", {"postgres": 'null value in column "nn"', "mysql": "'nn'",
                                "sqlite": "NOT NULL constraint failed: t.nn"},
                     {"postgres": "nn", "mysql": "nn", "sqlite": "nn"}),
    "unique_under_append": Case("id", "1", {"postgres": "duplicate key value violates unique constraint",
                                            "mysql": "Duplicate entry '1'", "sqlite": "UNIQUE constraint failed: t.id"},
                                {"postgres": "id", "mysql": "id", "sqlite": "id"}),
    "foreign_key": Case("pid", "9", {"postgres": "violates foreign key constraint", "mysql": "a foreign key constraint fails",
                                     "sqlite": "FOREIGN KEY constraint failed"},
                        {"postgres": "pid", "mysql": "pid", "sqlite": ""}),
}


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def target(request, tmp_path):
    """``(dialect, destination YAML, run(sql) -> rows)`` for a fresh database with the table ``t``."""
    dialect = request.param
    if dialect == "postgres":
        import psycopg

        url = request.getfixturevalue("pg_url")
        conn = psycopg.connect(url, autocommit=True)
        request.addfinalizer(conn.close)

        def query(sql):
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

        destination = f'{{type: postgres, url: "{url}", table: t}}'
    elif dialect == "mysql":
        import pymysql

        url = request.getfixturevalue("mysql_url")
        conn = pymysql.connect(host=url.split("@")[1].split(":")[0], port=int(url.rsplit(":", 1)[1].split("/")[0]),
                               user="root", password="", database=url.rsplit("/", 1)[1], autocommit=True)
        request.addfinalizer(conn.close)

        def query(sql):
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())

        destination = f'{{type: mysql, url: "{url}", table: t}}'
    else:
        path = tmp_path / "out.db"

        def query(sql):
            db = sqlite3.connect(path)
            try:
                with db:
                    return db.execute(sql).fetchall()
            finally:
                db.close()

        destination = "{type: sqlite, path: out.db, table: t, foreign_keys: true}"
    for statement in DDL[dialect]:
        query(statement)
    return dialect, destination, query


def csv_lines(rows: int, bad: dict[int, tuple[str, str]]) -> str:
    """A CSV of ``rows`` good rows with ids 1..rows, except ``bad[i] = (column, value)``."""
    out = [",".join(COLUMNS)]
    for i in range(1, rows + 1):
        row = {k: v.format(i=i) for k, v in GOOD.items()}
        if i in bad:
            column, value = bad[i]
            row[column] = value
        out.append(",".join(row[c] for c in COLUMNS))
    return "\n".join(out) + "\n"


def job(write, destination: str, body: str = "", validation: str = "{schema: false}") -> Path:
    # The date column is loaded as text (the schema check off, which would ask for type date), so that the
    # destination parses it and is the one to refuse a bad date.
    return write("load.yaml", f"""
        name: load
        source: {{type: csv, path: in.csv}}
        destination: {destination}
        validation: {validation}
        mapping: {{columns: {{id: {{type: int}}, name: {{}}, n: {{type: int}}, d: {{type: text}}, pid: {{type: int}}, nn: {{}}}}}}
        {body}
    """)


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_value_rejects_its_row_with_its_line_and_the_others_load(portl, write, target, case):
    dialect, destination, query = target
    spec = CASES[case]
    if dialect not in spec.reasons:
        pytest.skip(NOT_IN_SQLITE)
    write("in.csv", csv_lines(5, {3: (spec.column, spec.bad)}))
    result = portl("run", str(job(write, destination)), "--format", "json")
    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (5, 4, 1), counts
    assert_balanced(counts)
    assert query("SELECT id FROM t ORDER BY id") == [(1,), (2,), (4,), (5,)]
    (reject,) = read_rejects(Path(result.report["rejects_file"]))
    original = csv_lines(5, {3: (spec.column, spec.bad)}).splitlines()[3]
    assert (reject["line"], reject["record"], reject["original"]) == ("4", "3", original)
    assert reject["column"] == spec.named[dialect]
    if spec.named[dialect]:
        assert reject["value"] == spec.bad
    assert reject["error"].startswith("refused by the destination: "), reject
    assert spec.reasons[dialect] in reject["error"], reject
    assert "line" not in reject["error"] and "row 3" not in reject["error"], "no position within Portl's own batch"


def test_one_bad_row_among_100_000_rejects_only_that_row(portl, write, target):
    dialect, destination, query = target
    bad_column, bad_value = ("nn", "") if dialect == "sqlite" else ("name", "toolong")
    write("in.csv", csv_lines(100_000, {61_234: (bad_column, bad_value)}))
    result = portl("run", str(job(write, destination)), "--format", "json", timeout=300)
    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (result.report["status"], counts["read"], counts["inserted"], counts["rejected"]) == (
        "succeeded", 100_000, 99_999, 1)
    assert_balanced(counts)
    assert query("SELECT count(*), sum(id) FROM t") == [(99_999, 100_000 * 100_001 // 2 - 61_234)]
    (reject,) = read_rejects(Path(result.report["rejects_file"]))
    assert (reject["line"], reject["column"]) == ("61235", bad_column)


def test_a_resumed_load_with_refused_rows_loads_each_good_row_once_and_rejects_each_bad_row_once(
        portl, write, target, crash_hook):
    dialect, destination, query = target
    # Batches of about 100 rows: rows 10 and 120 are refused before the crash (before batch 3), 250
    # and 420 after it.
    bad = {i: ("nn", "") for i in (10, 120, 250, 420)}
    write("in.csv", csv_lines(500, bad))
    path = str(job(write, destination, "batch: {size: 100}\n        " + crash_hook.yaml))
    crash_hook.arm()
    first = portl("run", path, "--format", "json")
    assert first.code != 0 and "simulated crash before batch 3" in first.output, first.log
    ((loaded,),) = query("SELECT count(*) FROM t")
    assert 150 < loaded < 200
    assert [r["record"] for r in read_rejects(Path(path).parent / "load.rejects.csv")] == [
        "10", "120"]
    crash_hook.disarm()
    resumed = portl("run", path, "--resume", "--format", "json")
    assert resumed.code == 0, resumed.log
    counts = resumed.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (500, 496, 4), counts
    assert query("SELECT count(*), count(DISTINCT id), sum(id) FROM t") == [(496, 496, 500 * 501 // 2 - 800)]
    rejects = read_rejects(Path(resumed.report["rejects_file"]))
    assert [r["record"] for r in rejects] == ["10", "120", "250", "420"]


def test_an_upsert_rejects_the_refused_rows_and_updates_and_inserts_the_others(portl, write, target):
    dialect, destination, query = target
    query("INSERT INTO t (id, name, n, d, pid, nn) VALUES (1, 'old', 1, '2024-01-01', 1, 'x'), "
          "(2, 'old', 1, '2024-01-01', 1, 'x')")
    # Row 2 (an update) would store a NULL in nn, row 4 (an insert) a missing parent: the upsert
    # statement refuses them, without naming a row.
    write("in.csv", csv_lines(5, {2: ("nn", ""), 4: ("pid", "9")}))
    body = "mode: upsert\n        conflict: {key: [id], strategy: overwrite}"
    result = portl("run", str(job(write, destination, body)), "--format", "json")
    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["updated"], counts["rejected"]) == (5, 2, 1, 2), counts
    assert_balanced(counts)
    assert query("SELECT id, name FROM t ORDER BY id") == [(1, "ab"), (2, "old"), (3, "ab"), (5, "ab")]
    rejects = read_rejects(Path(result.report["rejects_file"]))
    assert [(r["line"], r["column"]) for r in rejects] == [("3", "nn"), ("5", CASES["foreign_key"].named[dialect])]


def test_with_one_transaction_for_the_job_the_refused_row_is_rolled_back_alone(portl, write, target):
    dialect, destination, query = target
    write("in.csv", csv_lines(300, {120: ("nn", ""), 250: ("id", "7")}))
    result = portl("run", str(job(write, destination, "batch: {size: 100}\n        transaction: job")), "--format", "json")
    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (300, 298, 2), counts
    assert query("SELECT count(*), sum(id) FROM t") == [(298, 300 * 301 // 2 - 370)]
    assert [r["record"] for r in read_rejects(Path(result.report["rejects_file"]))] == ["120", "250"]


def test_refused_rows_count_against_max_rejects_and_a_batch_past_it_is_not_sorted_out(portl, write, target):
    dialect, destination, query = target
    # Batches of about 100 rows: row 10 is refused in the first (within the limit of 1); rows 150
    # and 160 in the second, which passes it: that batch rolls back and the run stops.
    write("in.csv", csv_lines(300, {10: ("nn", ""), 150: ("nn", ""), 160: ("nn", "")}))
    path = job(write, destination, "batch: {size: 100}", validation="{schema: false, max_rejects: 1}")
    result = portl("run", str(path), "--format", "json")
    assert result.code == 3, result.log
    assert "more rows rejected than validation.max_rejects (1)" in result.output, result.log
    assert "the batch was rolled back and the run stopped" in result.output, result.log
    ((loaded,),) = query("SELECT count(*) FROM t")
    assert 50 < loaded < 149
    assert [r["record"] for r in read_rejects(Path(path).parent / "load.rejects.csv")] == ["10"]


def test_a_run_whose_every_row_is_refused_says_so(portl, write, target):
    dialect, destination, query = target
    write("in.csv", csv_lines(4, {i: ("nn", "") for i in range(1, 5)}))
    result = portl("run", str(job(write, destination)), "--format", "json")
    assert result.code == 0, result.log
    report = result.report
    assert (report["status"], report["counts"]["inserted"], report["counts"]["rejected"]) == ("succeeded", 0, 4)
    assert any(w.startswith("every source row was rejected (4): nothing was loaded") for w in report["warnings"]), report
    assert query("SELECT count(*) FROM t") == [(0,)]


def test_mysql_without_load_data_rejects_the_refused_rows_of_its_inserts(portl, write, mysql_url, sql_mysql):
    for statement in DDL["mysql"]:
        sql_mysql(statement)
    write("in.csv", csv_lines(50, {7: ("name", "toolong"), 30: ("id", "1")}))
    destination = f'{{type: mysql, url: "{mysql_url}", table: t, local_infile: false}}'
    result = portl("run", str(job(write, destination)), "--format", "json")
    assert result.code == 0, result.log
    assert (result.report["counts"]["inserted"], result.report["counts"]["rejected"]) == (48, 2)
    rejects = read_rejects(Path(result.report["rejects_file"]))
    assert [(r["line"], r["column"], r["value"]) for r in rejects] == [("8", "name", "toolong"), ("31", "id", "1")]
    assert "Data too long for column 'name' (error 1406)" in rejects[0]["error"]
    assert "Duplicate entry '1' for key 'PRIMARY' (error 1062)" in rejects[1]["error"]


def test_postgres_rows_copied_in_binary_that_the_destination_refuses_are_rejected(portl, write, pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE src (id bigint PRIMARY KEY, name varchar(10)); CREATE TABLE dst (id bigint PRIMARY KEY, "
                     "name varchar(3)); INSERT INTO src SELECT g, CASE WHEN g IN (77, 1500) THEN 'toolong' ELSE 'ab' END "
                     "FROM generate_series(1, 2000) g")
    path = write("copy.yaml", f"""
        name: copy
        source: {{type: postgres, url: "{pg_url}", table: src}}
        destination: {{type: postgres, url: "{pg_url}", table: dst}}
        batch: {{size: 500}}
    """)
    result = portl("run", str(path), "--format", "json", "--log-format", "json")
    assert result.code == 0, result.log
    assert any(e.get("event") == "verbatim_refused" for e in result.events), "the binary rows went as they are"
    assert (result.report["counts"]["inserted"], result.report["counts"]["rejected"]) == (1998, 2)
    rejects = read_rejects(Path(result.report["rejects_file"]))
    assert [(r["record"], r["column"], r["value"]) for r in rejects] == [("77", "name", "toolong"), ("1500", "name", "toolong")]
    assert all(r["original"].startswith('{"id": ') for r in rejects)  # a table has no text: the row as JSON
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM dst").fetchone() == (1998, 2000 * 2001 // 2 - 1577)


@pytest.fixture
def sql_mysql(mysql_url):
    import pymysql

    conn = pymysql.connect(host=mysql_url.split("@")[1].split(":")[0], port=int(mysql_url.rsplit(":", 1)[1].split("/")[0]),
                           user="root", password="", database=mysql_url.rsplit("/", 1)[1], autocommit=True)

    def run(statement):
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    yield run
    conn.close()


def test_a_run_whose_every_row_is_refused_says_so_even_within_its_reject_limit(portl, write, tmp_path):
    write("in.csv", csv_lines(3, {i: ("nn", "") for i in range(1, 4)}))
    db = sqlite3.connect(tmp_path / "out.db")
    try:
        for statement in DDL["sqlite"]:
            db.execute(statement)
        db.commit()
    finally:
        db.close()
    path = job(write, "{type: sqlite, path: out.db, table: t}", validation="{schema: false, max_rejects: 10}")
    result = portl("run", str(path), "--format", "json")
    assert result.code == 0, result.log
    assert any(w.startswith("every source row was rejected (3): nothing was loaded") for w in result.report["warnings"])


def test_a_replace_whose_first_batch_has_a_refused_row_leaves_only_the_new_rows(portl, write, target):
    dialect, destination, query = target
    if dialect != "sqlite":  # Postgres and MySQL swap in a copy of the table, which no foreign key may point at
        query("DROP TABLE t")
        query(DDL[dialect][-1].replace(", FOREIGN KEY (pid) REFERENCES parent (id)", "").replace(
            " REFERENCES parent (id)", ""))
    query("INSERT INTO t (id, name, n, d, pid, nn) VALUES (100, 'old', 1, '2024-01-01', 1, 'x')")
    write("in.csv", csv_lines(5, {2: ("nn", "")}))
    result = portl("run", str(job(write, destination, "mode: replace")), "--format", "json")
    assert result.code == 0, result.log
    assert (result.report["counts"]["inserted"], result.report["counts"]["rejected"]) == (4, 1)
    assert query("SELECT id FROM t ORDER BY id") == [(1,), (3,), (4,), (5,)]
