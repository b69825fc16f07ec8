"""Failures say what and where, never show a password, and are classified for retrying."""

from __future__ import annotations

import threading
import time

import psycopg
import pyarrow as pa
import pytest

from portl.connectors.base import ConflictStrategy, WriteMode, WriteSpec
from portl.connectors.postgres import Config, open_sink, open_source
from portl.errors import ConnectorError, RowRefused, SourceError, TerminalError, TransientError
from tests.integration.postgres.helpers import write_batch

APPEND = WriteSpec(WriteMode.APPEND)
PEOPLE = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string())])


def people(*rows):
    return pa.RecordBatch.from_pylist([{"id": i, "name": n} for i, n in rows], schema=PEOPLE)


def test_an_unreachable_server_is_named_with_host_and_port():
    config = Config(type="postgres", url="postgresql://bob:hunter2@127.0.0.1:5999/shop", table="t")
    with pytest.raises(TransientError) as caught:
        open_source(config, ".")
    assert str(caught.value).startswith("cannot connect to PostgreSQL at 127.0.0.1:5999: connection refused")
    assert "hunter2" not in str(caught.value)


def test_a_missing_database_is_terminal_and_named(pg_url):
    config = Config(type="postgres", url=pg_url.rsplit("/", 1)[0] + "/no_such_db", password="hunter2", table="t")
    with pytest.raises(TerminalError) as caught:
        open_sink(config, ".").table_info()
    message = str(caught.value)
    assert message.startswith('cannot connect to PostgreSQL at 127.0.0.1:5432: database "no_such_db" does not exist')
    assert "hunter2" not in message


def test_an_unknown_user_is_terminal_and_named(pg_url):
    config = Config(type="postgres", url=pg_url, user="nobody_here", password="hunter2", table="t")
    with pytest.raises(TerminalError) as caught:
        open_source(config, ".")
    assert 'role "nobody_here" does not exist; check `user`' in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_missing_table_to_read_is_a_source_error(pg, config):
    with pytest.raises(SourceError, match=r"table public\.missing does not exist"):
        open_source(config(table="missing"), ".")


def test_a_missing_table_in_a_query_is_a_source_error(pg, config):
    with pytest.raises(SourceError, match='relation "missing" does not exist'):
        open_source(config(query="SELECT * FROM missing"), ".")


def test_reading_without_the_select_privilege_names_table_privilege_and_grant(pg, pg_url, role):
    pg.execute("CREATE TABLE secret (id int)")
    config = Config(type="postgres", url=pg_url, user=role, table="secret")
    with pytest.raises(TerminalError) as caught:
        source = open_source(config, ".")
        list(source.read(10, None))
    message = str(caught.value)
    assert "permission denied for table secret" in message
    assert f"{role} needs the SELECT privilege on public.secret: GRANT SELECT ON public.secret TO {role}" in message


def test_writing_without_the_insert_privilege_names_it(pg, pg_url, role):
    pg.execute(f'CREATE TABLE t (id int, name text); GRANT SELECT ON t TO "{role}"')
    sink = open_sink(Config(type="postgres", url=pg_url, user=role, table="t"), ".")
    try:
        with pytest.raises(TerminalError, match=rf"permission denied for table t; {role} needs the INSERT privilege on public.t"):
            write_batch(sink, people((1, "a")), APPEND)
    finally:
        sink.close()


def test_creating_a_table_without_the_create_privilege_names_the_schema(pg, pg_url, role):
    pg.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    sink = open_sink(Config(type="postgres", url=pg_url, user=role, table="t"), ".")
    try:
        with pytest.raises(TerminalError, match=rf'permission denied for schema public; {role} needs the CREATE privilege on SCHEMA "public"'):
            sink.prepare(PEOPLE, APPEND, resuming=False)
    finally:
        sink.close()


def test_a_value_copy_refuses_is_a_refused_row_naming_its_row_column_and_value(pg, sink):
    pg.execute("CREATE TABLE t (id int, name text, born date)")
    s = sink("t")
    schema = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string()), pa.field("born", pa.string())])
    batch = pa.RecordBatch.from_pylist([{"id": 1, "name": "a", "born": "2024-01-01"},
                                        {"id": 2, "name": "b", "born": "yesterday-ish"}], schema=schema)
    with pytest.raises(RowRefused) as caught:
        write_batch(s, batch, APPEND)
    refused = caught.value
    assert (refused.row, refused.column, refused.value) == (1, "born", "yesterday-ish")
    assert refused.reason == 'invalid input syntax for type date: "yesterday-ish"'  # no line of Portl's COPY
    assert str(refused).startswith("writing to postgres ")


def test_an_upsert_refusal_names_the_target_not_the_staging_table(pg, sink):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL DEFAULT 'x', born date)")
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    schema = pa.schema([pa.field("id", pa.int32()), pa.field("born", pa.string())])
    with pytest.raises(RowRefused) as caught:
        write_batch(s, pa.RecordBatch.from_pylist([{"id": 1, "born": "soon"}], schema=schema), spec)
    assert (caught.value.row, caught.value.column, caught.value.value) == (0, "born", "soon")
    schema = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string())])
    with pytest.raises(RowRefused) as caught:  # NOT NULL is checked by the upsert statement: no row named
        write_batch(s, pa.RecordBatch.from_pylist([{"id": 1, "name": None}], schema=schema), spec)
    assert (caught.value.row, caught.value.column) == (None, "name")
    assert 'of relation "t" violates not-null constraint' in caught.value.reason
    assert "_portl_stage" not in str(caught.value)


def test_a_deadlock_is_a_transient_error(pg, pg_url, sink):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    other = psycopg.connect(pg_url)
    other.execute("SET deadlock_timeout = '10s'")  # so the sink's session is the one that detects it
    other.execute("UPDATE t SET name = 'other' WHERE id = 1")
    caught: list[BaseException] = []

    def upsert():
        try:
            write_batch(s, people((2, "sink"), (1, "sink")), spec)  # locks row 2, then waits for row 1
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=upsert)
    worker.start()
    _wait_for_lock_wait(pg)
    other.execute("UPDATE t SET name = 'other' WHERE id = 2")  # waits for the sink: a deadlock
    worker.join(timeout=30)
    other.commit()
    other.close()
    assert len(caught) == 1 and isinstance(caught[0], TransientError)
    assert "deadlock detected" in str(caught[0])


def test_a_lock_timeout_is_a_transient_error(pg, pg_url, sink):
    pg.execute("CREATE TABLE t (id int, name text)")
    s = sink("t", lock_timeout=0.2)
    holder = psycopg.connect(pg_url)
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    try:
        with pytest.raises(TransientError, match="lock timeout"):
            write_batch(s, people((1, "a")), APPEND)
    finally:
        holder.rollback()
        holder.close()
    assert write_batch(s, people((1, "a")), APPEND).inserted == 1


def test_a_dropped_connection_is_a_transient_error_and_the_next_try_reconnects(pg, sink):
    pg.execute("CREATE TABLE t (id int, name text)")
    s = sink("t", application_name="portl-dropped")
    write_batch(s, people((1, "a")), APPEND)  # leaves an idle connection in the pool
    pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'portl-dropped'")
    time.sleep(0.2)
    with pytest.raises(TransientError, match="the connection to the server was lost|terminat"):
        write_batch(s, people((2, "b")), APPEND)
    assert write_batch(s, people((3, "c")), APPEND).inserted == 1


def test_every_failure_is_a_connector_error(pg, config):
    for bad in (config(table="missing"), config(query="SELEC 1")):
        with pytest.raises(ConnectorError):
            open_source(bad, ".")


def _wait_for_lock_wait(pg, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                             "AND datname = current_database()").fetchone()[0]
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the sink's upsert never waited for the row lock")
