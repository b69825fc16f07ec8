"""Incremental jobs against real databases: each run moves only what changed since the job's last
finished run, the mark kept with the destination's checkpoints.

The sources are real PostgreSQL, MariaDB and SQLite tables with an ``updated_at`` cursor; the
destination is PostgreSQL (SQLite where a test says so)."""

from __future__ import annotations

import datetime
import io
import sqlite3
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

import portl
from portl.cli.render import render_plan
from portl.engine import spread
from portl.errors import ConfigError, PortlError

T0 = datetime.datetime(2024, 5, 1, 10, 0, 0)


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


class Origin:
    """A source table ``orders(id, name, updated_at)`` in one of the three databases."""

    def __init__(self, kind: str, tmp_path: Path, pg_url: str | None = None, mysql_url: str | None = None):
        self.kind = kind
        if kind == "postgres":
            import psycopg

            self.url = pg_url
            self.conn = psycopg.connect(pg_url, autocommit=True)
            self.mark = "%s"
            self.source = f'{{type: postgres, url: "{pg_url}", table: orders'
            self.run("CREATE TABLE orders (id integer PRIMARY KEY, name text, updated_at timestamp)")
        elif kind == "mysql":
            import pymysql

            self.url = mysql_url
            name = mysql_url.rsplit("/", 1)[1]
            self.conn = pymysql.connect(host="127.0.0.1", user="root", database=name, autocommit=True)
            self.mark = "%s"
            self.source = f'{{type: mysql, url: "{mysql_url}", table: orders'
            self.run("CREATE TABLE orders (id int PRIMARY KEY, name varchar(40), updated_at datetime(6), "
                     "KEY (updated_at))")
        else:
            self.conn = sqlite3.connect(tmp_path / "src.db", isolation_level=None)
            self.mark = "?"
            self.source = "{type: sqlite, path: src.db, table: orders"
            self.run("CREATE TABLE orders (id integer PRIMARY KEY, name text, updated_at timestamp)")

    def run(self, statement: str, params: tuple = ()) -> None:
        statement = statement.replace("?", self.mark)
        if self.kind == "mysql":
            with self.conn.cursor() as cur:
                cur.execute(statement, params or None)
        else:
            self.conn.execute(statement, params)

    def value(self, stamp: datetime.datetime | None):
        if stamp is None or self.kind != "sqlite":
            return stamp
        return stamp.isoformat(sep=" ")  # SQLite keeps times as ISO text

    def insert(self, rows: list[tuple[int, str, datetime.datetime | None]]) -> None:
        for id_, name, stamp in rows:
            self.run("INSERT INTO orders VALUES (?, ?, ?)", (id_, name, self.value(stamp)))

    def update(self, id_: int, name: str, stamp: datetime.datetime) -> None:
        self.run("UPDATE orders SET name = ?, updated_at = ? WHERE id = ?", (name, self.value(stamp), id_))

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def origin(request, tmp_path, pg_url):
    mysql_url = request.getfixturevalue("mysql_url") if request.param == "mysql" else None
    made = Origin(request.param, tmp_path, pg_url, mysql_url)
    yield made
    made.close()


@pytest.fixture
def pg_origin(tmp_path, pg_url):
    made = Origin("postgres", tmp_path, pg_url)
    yield made
    made.close()


@pytest.fixture
def dest(pg_url):
    import psycopg

    conn = psycopg.connect(pg_url, autocommit=True)
    yield conn
    conn.close()


def job(tmp_path: Path, origin: Origin, pg_url: str, incremental: str = "{cursor: updated_at}", extra: str = "",
        conflict: bool = True, source_end: str = "}") -> str:
    text = textwrap.dedent(f"""\
        name: orders_sync
        source: {origin.source}, incremental: {incremental}{source_end}
        destination: {{type: postgres, url: "{pg_url}", table: orders_copy}}
        batch: {{size: 2}}
        """) + ("conflict: {key: [id]}\n" if conflict else "") + textwrap.dedent(extra)
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def run(path: str, **options) -> portl.RunReport:
    plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(plan, portl.RunOptions(**options))
    finally:
        plan.close()


def copied(dest) -> list[tuple]:
    return dest.execute("SELECT id, name FROM orders_copy ORDER BY id").fetchall()


def counts(report) -> tuple[int, int, int]:
    return report.counts.read, report.counts.inserted, report.counts.updated


# --- what moves ---------------------------------------------------------------------------------


def test_only_new_and_changed_rows_move_on_each_run(origin, tmp_path, pg_url, dest):
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 6)])
    path = job(tmp_path, origin, pg_url)
    assert counts(run(path)) == (5, 5, 0)
    assert counts(run(path)) == (0, 0, 0)  # nothing changed: nothing is read
    origin.update(2, "changed", at(20))
    origin.insert([(6, "n6", at(21))])
    assert counts(run(path)) == (2, 1, 1)
    assert copied(dest) == [(1, "n1"), (2, "changed"), (3, "n3"), (4, "n4"), (5, "n5"), (6, "n6")]


def test_lookback_reads_late_rows_again_and_upserts_them_without_duplicates(origin, tmp_path, pg_url, dest):
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 11)])
    path = job(tmp_path, origin, pg_url, "{cursor: updated_at, lookback: 3m}")
    assert counts(run(path)) == (10, 10, 0)
    # A row committed late, its cursor before the last mark but within the lookback.
    origin.insert([(11, "late", at(9))])
    report = run(path)
    assert counts(report) == (4, 1, 3)  # 08, 09 (twice: row 9 and the late row) and 10: after 10:07
    assert dest.execute("SELECT count(*), count(DISTINCT id) FROM orders_copy").fetchone() == (11, 11)
    assert (11, "late") in copied(dest)


def test_rows_with_a_null_cursor_are_loaded_by_the_first_run_only(origin, tmp_path, pg_url, dest):
    origin.insert([(1, "a", at(1)), (2, "nocursor", None)])
    path = job(tmp_path, origin, pg_url)
    assert counts(run(path)) == (2, 2, 0)
    origin.insert([(3, "nocursor too", None)])
    assert counts(run(path)) == (0, 0, 0)
    assert copied(dest) == [(1, "a"), (2, "nocursor")]


def test_initial_sets_where_the_first_run_starts(origin, tmp_path, pg_url, dest):
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 6)])
    path = job(tmp_path, origin, pg_url, "{cursor: updated_at, initial: '2024-05-01 10:03:00'}")
    assert counts(run(path)) == (3, 3, 0)
    assert [r[0] for r in copied(dest)] == [3, 4, 5]


def test_a_resumed_run_reads_the_window_it_began_with(origin, tmp_path, pg_url, dest, crash_hook):
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 11)])
    path = job(tmp_path, origin, pg_url, extra=crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(PortlError, match="simulated crash"):
        run(path)
    crash_hook.disarm()
    assert dest.execute("SELECT count(*) FROM orders_copy").fetchone() == (4,)  # two batches of two
    origin.insert([(11, "after the crash", at(30))])
    origin.update(1, "changed after the crash", at(31))
    resumed = run(path, resume=True)
    assert resumed.resumed and resumed.counts.read == 10 and resumed.counts.inserted == 10
    assert (11, "after the crash") not in copied(dest)  # past the mark the run began with
    assert any("reads the window it began with" in w for w in resumed.warnings), resumed.warnings
    assert counts(run(path)) == (2, 1, 1)  # the next run reads on from that mark
    assert dest.execute("SELECT count(*) FROM orders_copy").fetchone() == (11,)
    assert (1, "changed after the crash") in copied(dest)


def test_a_query_source_is_read_through_its_window(origin, tmp_path, pg_url, dest):
    if origin.kind == "sqlite":
        source = "{type: sqlite, path: src.db, query: 'SELECT id, upper(name) AS name, updated_at FROM orders'"
    else:
        source = origin.source.split(", table:")[0] + ", query: 'SELECT id, upper(name) AS name, updated_at FROM orders'"
    origin.source = source
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 4)])
    path = job(tmp_path, origin, pg_url)
    assert counts(run(path)) == (3, 3, 0)
    origin.insert([(4, "n4", at(10))])
    assert counts(run(path)) == (1, 1, 0)
    assert copied(dest)[-1] == (4, "N4")


# --- parallel, in parts, in one transaction ----------------------------------------------------


def test_parallel_partitions_read_only_the_window(origin, tmp_path, pg_url, dest):
    origin.insert([(i, f"n{i}", at(i)) for i in range(1, 301)])
    path = job(tmp_path, origin, pg_url, extra="parallel: {workers: 3}\n")
    assert counts(run(path)) == (300, 300, 0)
    for i in (5, 150, 290):
        origin.update(i, "changed", at(400 + i))
    origin.insert([(301, "new", at(999))])
    assert counts(run(path)) == (4, 1, 3)
    assert dest.execute("SELECT count(*) FROM orders_copy WHERE name = 'changed'").fetchone() == (3,)


def test_a_run_in_parts_carries_its_window_to_every_part(pg_origin, tmp_path, pg_url, dest):
    pg_origin.insert([(i, f"n{i}", at(i)) for i in range(1, 101)])
    path = job(tmp_path, pg_origin, pg_url, extra="parallel: {workers: 2}\n")
    plan = portl.plan(portl.load_job(path))
    try:
        started = spread.start_run(plan, partitions=2)
    finally:
        plan.close()
    pg_origin.insert([(101, "while the parts load", at(500))])
    for part in started.partitions:  # each part plans again, as a worker does: its plan sees the new row
        plan = portl.plan(portl.load_job(path))
        try:
            spread.load_partition(plan, started.run_id, part.partition)
        finally:
            plan.close()
    plan = portl.plan(portl.load_job(path))
    try:
        report = spread.finish_run(plan, started.run_id)
    finally:
        plan.close()
    assert report.counts.read == 100
    assert dest.execute("SELECT max(id) FROM orders_copy").fetchone() == (100,)
    assert counts(run(path)) == (1, 1, 0)  # the next run starts at the mark the run in parts left


def test_transaction_job_keeps_the_mark_with_its_one_commit(pg_origin, tmp_path, pg_url, dest):
    pg_origin.insert([(i, f"n{i}", at(i)) for i in range(1, 6)])
    path = job(tmp_path, pg_origin, pg_url, extra="transaction: job\n")
    assert counts(run(path)) == (5, 5, 0)
    pg_origin.insert([(6, "n6", at(10))])
    assert counts(run(path)) == (1, 1, 0)


def test_into_sqlite_without_conflict_rows_are_appended_once(tmp_path, pg_url):
    origin = Origin("sqlite", tmp_path)
    try:
        origin.insert([(i, f"n{i}", at(i)) for i in range(1, 4)])
        path = tmp_path / "job.yaml"
        path.write_text(textwrap.dedent("""\
            name: append_new
            source: {type: sqlite, path: src.db, table: orders, incremental: {cursor: id}}
            destination: {type: sqlite, path: out.db, table: orders}
            """))
        assert counts(run(str(path))) == (3, 3, 0)
        origin.insert([(4, "n4", None)])
        assert counts(run(str(path))) == (1, 1, 0)
        assert counts(run(str(path))) == (0, 0, 0)
    finally:
        origin.close()
    out = sqlite3.connect(tmp_path / "out.db")
    assert out.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone() == (4, 4)
    out.close()


def refresh(path: str) -> portl.RunReport:
    plan = portl.plan(portl.load_job(path), full_refresh=True)
    try:
        return portl.run(plan, portl.RunOptions())
    finally:
        plan.close()


def test_a_full_refresh_reads_every_row_again_and_the_next_run_reads_on_from_its_mark(pg_origin, tmp_path, pg_url, dest):
    pg_origin.insert([(i, f"n{i}", at(i)) for i in range(1, 5)])
    path = job(tmp_path, pg_origin, pg_url)
    assert counts(run(path)) == (4, 4, 0)
    dest.execute("UPDATE orders_copy SET name = 'drifted'")  # the destination went wrong: read it all again
    pg_origin.insert([(5, "n5", at(5))])
    plan = portl.plan(portl.load_job(path), full_refresh=True)
    try:
        assert "setting aside the last finished run's mark (2024-05-01T10:04:00)" in plan.incremental.lines[-1]
    finally:
        plan.close()
    assert counts(refresh(path)) == (5, 1, 4)
    assert copied(dest) == [(i, f"n{i}") for i in range(1, 6)]
    assert counts(run(path)) == (0, 0, 0)


def test_a_full_refresh_without_a_conflict_key_into_a_table_with_rows_is_refused(tmp_path):
    origin = Origin("sqlite", tmp_path)
    try:
        origin.insert([(i, f"n{i}", at(i)) for i in range(1, 4)])
        path = tmp_path / "job.yaml"
        path.write_text("name: append_new\nsource: {type: sqlite, path: src.db, table: orders, incremental: {cursor: id}}\n"
                        "destination: {type: sqlite, path: out.db, table: orders}\n")
        run(str(path))
        with pytest.raises(ConfigError, match="already holds 3 rows: without a conflict key they would be loaded twice"):
            portl.plan(portl.load_job(str(path)), full_refresh=True)
    finally:
        origin.close()


def test_a_full_refresh_of_a_job_that_is_not_incremental_is_refused(tmp_path):
    (tmp_path / "in.csv").write_text("id\n1\n")
    path = tmp_path / "job.yaml"
    path.write_text("name: plain\nsource: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n")
    with pytest.raises(ConfigError, match="job 'plain' is not incremental"):
        portl.plan(portl.load_job(str(path)), full_refresh=True)


# --- the plan --------------------------------------------------------------------------------------


def test_the_plan_shows_the_previous_mark_the_new_mark_and_the_filter(pg_origin, tmp_path, pg_url):
    pg_origin.insert([(i, f"n{i}", at(i)) for i in range(1, 4)])
    path = job(tmp_path, pg_origin, pg_url, "{cursor: updated_at, lookback: 1m}")
    plan = portl.plan(portl.load_job(path))
    try:
        first = plan.to_dict()["source"]["incremental"]
    finally:
        plan.close()
    assert first["previous"] is None and first["mark"]["value"] == "2024-05-01T10:03:00"
    assert "previous mark: none, first run: every row, NULL cursors included" in first["lines"]
    run(path)
    pg_origin.insert([(4, "n4", at(8))])
    plan = portl.plan(portl.load_job(path))
    try:
        data = plan.to_dict()["source"]["incremental"]
        out = io.StringIO()
        render_plan(Console(file=out, width=200), plan)
    finally:
        plan.close()
    assert data["previous"]["value"] == "2024-05-01T10:03:00" and data["mark"]["value"] == "2024-05-01T10:08:00"
    text = out.getvalue()
    assert "previous mark: '2024-05-01 10:03:00' (the last finished run's)" in text
    assert "new mark: '2024-05-01 10:08:00'" in text
    assert ("filter: WHERE \"updated_at\" > '2024-05-01 10:02:00'::timestamp AND \"updated_at\" <= "
            "'2024-05-01 10:08:00'::timestamp") not in text  # the plan shows values, not driver casts
    assert "filter: WHERE \"updated_at\" > '2024-05-01 10:02:00' AND \"updated_at\" <= '2024-05-01 10:08:00'" in text


# --- refusals ------------------------------------------------------------------------------------


def problem(path: str) -> str:
    with pytest.raises(ConfigError) as caught:
        plan = portl.plan(portl.load_job(path))
        plan.close()
    return str(caught.value)


def test_an_unknown_cursor_column_is_refused_at_its_line(origin, tmp_path, pg_url):
    path = job(tmp_path, origin, pg_url, "{cursor: updatedat}")
    message = problem(path)
    assert "job.yaml:2:" in message and "has no column updatedat" in message and "updated_at" in message


def test_a_cursor_that_cannot_be_ordered_is_refused(pg_origin, tmp_path, pg_url):
    pg_origin.run("ALTER TABLE orders ADD COLUMN flag boolean")
    message = problem(job(tmp_path, pg_origin, pg_url, "{cursor: flag}"))
    assert "column flag of" in message and "is bool" in message and "cannot mark what is new" in message


def test_a_duration_lookback_on_a_numeric_cursor_is_refused(pg_origin, tmp_path, pg_url):
    message = problem(job(tmp_path, pg_origin, pg_url, "{cursor: id, lookback: 10m}"))
    assert "cursor id is int" in message and "a number of its units" in message


def test_a_lookback_without_a_conflict_key_is_refused(pg_origin, tmp_path, pg_url):
    message = problem(job(tmp_path, pg_origin, pg_url, "{cursor: updated_at, lookback: 10m}", conflict=False))
    assert "job.yaml:2:1" in message and "loaded twice" in message and "conflict: {key:" in message


def test_mode_replace_is_refused(pg_origin, tmp_path, pg_url):
    message = problem(job(tmp_path, pg_origin, pg_url, conflict=False, extra="mode: replace\n"))
    assert "mode replace would keep only the rows of one run's window" in message


def test_a_whole_database_copy_cannot_be_incremental(tmp_path, pg_url):
    path = tmp_path / "job.yaml"
    path.write_text(f'source: {{type: postgres, url: "{pg_url}", tables: "*", incremental: {{cursor: updated_at}}}}\n'
                    f'destination: {{type: postgres, url: "{pg_url}", schema: copy}}\n')
    message = problem(str(path))
    assert "job.yaml:1:" in message and "write one job per table" in message


def test_a_file_destination_cannot_hold_the_mark(pg_origin, tmp_path, pg_url):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(f"""\
        source: {pg_origin.source}, incremental: {{cursor: updated_at}}}}
        destination: {{type: csv, path: out.csv}}
        mode: append
        """))
    message = problem(str(path))
    assert "keeps no record of finished runs" in message


# --- other cursor types ----------------------------------------------------------------------------


def test_a_timestamptz_cursor_compares_instants_whatever_the_zone_they_were_written_in(pg_origin, tmp_path, pg_url, dest):
    pg_origin.run("ALTER TABLE orders ALTER COLUMN updated_at TYPE timestamptz USING updated_at AT TIME ZONE 'UTC'")
    pg_origin.run("SET TIME ZONE 'Asia/Tokyo'")
    pg_origin.insert([(i, f"n{i}", datetime.datetime(2024, 5, 1, 10, i, tzinfo=datetime.timezone.utc)) for i in range(1, 6)])
    path = job(tmp_path, pg_origin, pg_url, "{cursor: updated_at, lookback: 2m}")
    assert counts(run(path)) == (5, 5, 0)
    pg_origin.insert([(6, "n6", datetime.datetime(2024, 5, 1, 19, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=9))))])
    assert counts(run(path)) == (3, 1, 2)  # 10:04 and 10:05 UTC again, and 10:10 UTC (19:10 in Tokyo)


def test_a_date_cursor_looks_back_whole_days(tmp_path, pg_url, mysql_url, dest):
    origin = Origin("mysql", tmp_path, mysql_url=mysql_url)
    try:
        origin.run("ALTER TABLE orders MODIFY updated_at date")
        origin.insert([(i, f"n{i}", datetime.date(2024, 5, i)) for i in range(1, 6)])
        path = job(tmp_path, origin, pg_url, "{cursor: updated_at, lookback: 1d}")
        assert counts(run(path)) == (5, 5, 0)
        origin.insert([(6, "n6", datetime.date(2024, 5, 5))])  # the same day as the mark: a late row
        assert counts(run(path)) == (2, 1, 1)  # past May 4 (the mark less a day): both rows of May 5
    finally:
        origin.close()
