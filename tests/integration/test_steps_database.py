"""The db steps of flows against the real PostgreSQL and MariaDB servers: upserts and their
was_inserted, inserts and updates returning rows, queries, bound values, and the transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from textwrap import dedent, indent

import pytest

from portl.errors import StepError
from portl.spec.flow import load_flow
from portl.steps.runner import FlowOptions, run_flow

TABLES = {
    "postgres": [
        "CREATE TABLE resources (id bigserial PRIMARY KEY, code text NOT NULL, source text NOT NULL, name text, "
        "UNIQUE (code, source))",
        "CREATE TABLE versions (id bigserial PRIMARY KEY, resource_id bigint NOT NULL, n integer NOT NULL, status text NOT NULL)",
    ],
    "mysql": [
        "CREATE TABLE resources (id BIGINT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(50) NOT NULL, source VARCHAR(50) NOT NULL, "
        "name TEXT, UNIQUE KEY (code, source)) ENGINE=InnoDB",
        "CREATE TABLE versions (id BIGINT AUTO_INCREMENT PRIMARY KEY, resource_id BIGINT NOT NULL, n INT NOT NULL, "
        "status VARCHAR(20) NOT NULL) ENGINE=InnoDB",
    ],
}


class Database:
    """A fresh database of one kind, its tables created, with a way to query it."""

    def __init__(self, kind: str, url: str):
        self.kind, self.url = kind, url
        for statement in TABLES[kind]:
            self.execute(statement)

    def execute(self, statement: str, params: tuple = ()) -> list[tuple]:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                cur = conn.execute(statement, params)
                return cur.fetchall() if cur.description else []
        import pymysql
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password="",
                               database=parts.path.lstrip("/"), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params or None)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()


@pytest.fixture(params=["postgres", "mysql"])
def database(request) -> Database:
    url = request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")
    return Database(request.param, url)


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return str(tmp_path / name)
    return _write


@pytest.fixture
def flow(write, database, http_recorder):
    """``flow(steps, rows=..., scope="db")``: a flow on ``database`` with the recorder as ``api``."""

    def _flow(steps: str, rows: str = "code,source,name\nA1,crm,Alpha\nB2,crm,Beta\nC3,erp,Gamma\n", scope: str = "db") -> str:
        write("r.csv", rows)
        head = dedent(f"""
            version: 2
            name: dbflow
            connections:
              db: {{type: {database.kind}, url: "{database.url}"}}
              api: {{type: http, base_url: "{http_recorder.base_url}"}}
            transaction: {{scope: {scope}}}
            steps:
              - {{id: read_csv, type: csv.read, path: r.csv}}
        """).lstrip("\n")
        return write("flow.yaml", head + indent(dedent(steps).strip("\n"), "  ") + "\n")

    return _flow


@pytest.fixture
def run(tmp_path):
    def _run(path: str):
        return run_flow(load_flow(path), FlowOptions(state_dir=str(tmp_path / "state")))
    return _run


UPSERT = """
- id: each
  type: group
  batch: {from: steps.read_csv.rows, as: row}
  steps:
    - id: up
      type: db.upsert
      table: resources
      key: [code, source]
      mapping: {code: "{{ row.code }}", source: "{{ row.source }}", name: "{{ row.name }}"}
    - {id: tell, type: api.call, connection: api, path: /up, body: "{{ steps.up }}"}
"""


def test_upsert_inserts_then_updates_and_says_which(flow, run, database, http_recorder):
    path = flow(UPSERT)

    run(path)
    database.execute("UPDATE resources SET name = 'changed' WHERE code = 'A1'")
    run(path)

    answers = [r.json for r in http_recorder.requests]
    ids = [a["id"] for a in answers[:3]]
    assert [a["was_inserted"] for a in answers[:3]] == [True, True, True]
    assert [a["was_inserted"] for a in answers[3:]] == [False, False, False]
    assert [a["id"] for a in answers[3:]] == ids
    assert database.execute("SELECT code, name FROM resources ORDER BY id") == [("A1", "Alpha"), ("B2", "Beta"), ("C3", "Gamma")]


def test_insert_returning_gives_the_new_rows_columns(flow, run, http_recorder):
    path = flow("""
        - id: add
          type: db.insert
          batch: {from: steps.read_csv.rows, as: row}
          table: versions
          mapping: {resource_id: "{{ idx + 10 }}", n: "{{ idx + 1 }}", status: draft}
          returning: [id, n]
        - {id: tell, type: api.call, connection: api, path: /added, body: "{{ steps.add }}"}
    """)

    run(path)

    added = http_recorder.requests[0].json
    assert [a["n"] for a in added] == [1, 2, 3] and all(a["count"] == 1 for a in added)
    assert len({a["id"] for a in added}) == 3


def test_update_counts_rows_and_returns_the_returning_columns(flow, run, database, http_recorder):
    database.execute("INSERT INTO versions (resource_id, n, status) VALUES (1, 1, 'draft'), (1, 2, 'draft'), (2, 1, 'draft')")
    path = flow("""
        - id: publish
          type: db.update
          table: versions
          set: {status: published}
          where: {resource_id: 1, status: draft}
          returning: [n]
        - {id: tell, type: api.call, connection: api, path: /updated, body: "{{ steps.publish }}"}
    """)

    run(path)

    body = http_recorder.requests[0].json
    assert body["count"] == 2 and sorted(r["n"] for r in body["rows"]) == [1, 2]
    assert database.execute("SELECT status FROM versions ORDER BY id") == [("published",), ("published",), ("draft",)]


def test_query_one_gives_none_without_a_row_and_query_gives_every_row(flow, run, database, http_recorder):
    database.execute("INSERT INTO versions (resource_id, n, status) VALUES (7, 1, 'draft'), (7, 2, 'published')")
    path = flow("""
        - {id: none, type: db.query_one, sql: "SELECT n FROM versions WHERE resource_id = :r", params: {r: 99}}
        - {id: all, type: db.query, sql: "SELECT n, status FROM versions WHERE resource_id = :r ORDER BY n", params: {r: 7}}
        - {id: tell, type: api.call, connection: api, path: /q, body: {none: "{{ steps.none }}", all: "{{ steps.all }}"}}
    """)

    run(path)

    assert http_recorder.requests[0].json == {
        "none": None, "all": {"rows": [{"n": 1, "status": "draft"}, {"n": 2, "status": "published"}], "count": 2}}


def test_values_are_bound_never_spliced_into_the_sql(flow, run, database):
    evil = "x'); DROP TABLE resources; --"
    path = flow(UPSERT.replace("{{ row.name }}", "{{ row.name }}"), rows=f'code,source,name\nA1,crm,"{evil}"\n')

    run(path)

    assert database.execute("SELECT name FROM resources") == [(evil,)]


def test_an_upsert_on_a_table_without_an_id_column_says_how_to_set_returning(flow, run, database):
    database.execute("CREATE TABLE tags (code VARCHAR(20) NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (code, tag))")
    path = flow("""
        - id: tag
          type: db.upsert
          batch: {from: steps.read_csv.rows, as: row}
          table: tags
          key: [code, tag]
          mapping: {code: "{{ row.code }}", tag: "{{ row.source }}"}
    """)

    with pytest.raises(StepError) as info:
        run(path)

    first = str(info.value).split("\n")[0]
    assert first.startswith("step tag (db.upsert) failed on item 0: ")
    assert "id" in first and "db.upsert returns the column id unless told otherwise: set returning:" in first
    assert database.execute("SELECT count(*) FROM tags") == [(0,)]


def test_an_upsert_with_returning_empty_gives_only_was_inserted(flow, run, database, http_recorder):
    database.execute("CREATE TABLE tags (code VARCHAR(20) NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (code, tag))")
    path = flow("""
        - id: tag
          type: db.upsert
          batch: {from: steps.read_csv.rows, as: row}
          table: tags
          key: [code, tag]
          mapping: {code: "{{ row.code }}", tag: "{{ row.source }}"}
          returning: []
        - {id: tell, type: api.call, connection: api, path: /tags, body: "{{ steps.tag }}"}
    """)

    run(path)

    assert http_recorder.requests[0].json == [{"was_inserted": True}] * 3
    assert database.execute("SELECT code, tag FROM tags ORDER BY code") == [("A1", "crm"), ("B2", "crm"), ("C3", "erp")]


def test_a_failure_on_the_last_item_rolls_back_everything_and_says_where(flow, run, database, http_recorder):
    path = flow(UPSERT, rows="code,source,name\nA1,crm,Alpha\nB2,crm,Beta\n,erp,No code\n")

    with pytest.raises(StepError) as info:
        run(path)

    message = str(info.value)
    assert message.startswith("step up (db.upsert) failed on item 2: ")
    assert "code" in message.split("\n")[0]  # the server names the column that refused NULL
    assert "  SQL: INSERT INTO " in message and "VALUES (:code, :source, :name)" in message
    assert "  params: code=None, source='erp', name='No code'" in message
    assert "The transaction was rolled back: nothing this run wrote to" in message
    assert info.value.idx == (2,)
    assert database.execute("SELECT count(*) FROM resources") == [(0,)]
    assert len(http_recorder.requests) == 2  # the calls made before the failure are not undone


def test_with_scope_item_the_items_before_a_failure_stay_committed(flow, run, database):
    path = flow(UPSERT, rows="code,source,name\nA1,crm,Alpha\nB2,crm,Beta\n,erp,No code\n", scope="item")

    with pytest.raises(StepError, match="The failed item was rolled back"):
        run(path)

    assert database.execute("SELECT code FROM resources ORDER BY code") == [("A1",), ("B2",)]


def test_a_failure_after_a_migrate_step_says_the_migration_stays_committed(flow, run, database, tmp_path):
    path = flow("""
        - id: archive
          type: migrate
          job: {source: {type: csv, path: r.csv}, destination: {type: sqlite, path: archive.db, table: archive}}
        - id: up
          type: db.upsert
          batch: {from: steps.read_csv.rows, as: row}
          table: resources
          key: [code, source]
          mapping: {code: "{{ row.code }}", source: "{{ row.source }}", name: "{{ row.name }}"}
        - {id: boom, type: db.query_one, sql: "SELECT * FROM missing_table"}
    """)

    with pytest.raises(StepError) as info:
        run(path)

    message = str(info.value)
    assert message.startswith("step boom (db.query_one) failed: ")
    assert "The flow's transaction was rolled back" in message
    assert "The migrate step archive ran in its own transactions: what it committed stays" in message
    assert "nothing this run wrote" not in message
    assert database.execute("SELECT count(*) FROM resources") == [(0,)]
    conn = sqlite3.connect(tmp_path / "archive.db")
    try:
        assert conn.execute("SELECT count(*) FROM archive").fetchall() == [(3,)]
    finally:
        conn.close()


def test_a_rolled_back_flow_leaves_no_outbox_rows(flow, run, database):
    path = flow("""
        - id: queue
          type: outbox.enqueue
          batch: {from: steps.read_csv.rows, as: row}
          call: {type: api.call, connection: api, path: /later, body: {code: "{{ row.code }}"}}
        - {id: boom, type: db.query_one, sql: "SELECT * FROM missing_table"}
    """)

    with pytest.raises(StepError, match="step boom"):
        run(path)

    assert database.execute("SELECT count(*) FROM portl_outbox") == [(0,)]


def test_enqueued_calls_are_delivered_after_commit_once(flow, run, database, http_recorder):
    path = flow("""
        - id: queue
          type: outbox.enqueue
          batch: {from: steps.read_csv.rows, as: row, key: "{{ row.code }}"}
          call: {type: api.call, connection: api, path: /later, body: {code: "{{ row.code }}"}}
    """)

    report = run(path)
    run(path)

    assert report.counts["enqueued"] == 3
    assert [r.json["code"] for r in http_recorder.requests_to("/later")] == ["A1", "B2", "C3"]
    assert database.execute("SELECT status, count(*) FROM portl_outbox GROUP BY status") == [("delivered", 3)]


def test_calls_the_run_cannot_deliver_stay_queued_and_the_run_succeeds_with_a_warning(flow, run, database, http_recorder):
    http_recorder.respond("POST", "/later", 503, {"error": "down"})
    path = flow("""
        - id: queue
          type: outbox.enqueue
          batch: {from: steps.read_csv.rows, as: row}
          call: {type: api.call, connection: api, path: /later}
    """)

    report = run(path)

    assert report.status == "succeeded"
    assert any("3 still pending" in w for w in report.warnings), report.warnings
    assert database.execute("SELECT status, count(*) FROM portl_outbox GROUP BY status") == [("pending", 3)]
