"""Every failure becomes a Portl error that says what is wrong, whether a retry can help, and
never shows the password."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from portl.connectors.base import ConflictStrategy, WriteMode, WriteSpec
from portl.connectors.mysql import Config, open_sink, open_source
from portl.errors import RowRefused, SourceError, TerminalError, TransientError
from tests.integration.mysql.support import append, write_batches
from tests.services import MYSQL_HOST, MYSQL_PORT

PASSWORD = "s3cret-Passw0rd!"


def test_an_unreachable_server_is_a_terminal_error_naming_host_and_port():
    config = Config(type="mysql", url=f"mysql://someone:{PASSWORD}@127.0.0.1:3999/shop", table="t", connect_timeout=2)
    with pytest.raises(TerminalError) as caught:
        open_sink(config, ".")
    message = str(caught.value)
    assert "cannot reach the MySQL server at 127.0.0.1:3999" in message and "Check host and port" in message
    assert PASSWORD not in message


def test_a_wrong_password_says_the_credentials_were_refused_without_showing_them(make_user, database):
    user = make_user("the-right-one", "ALL")
    config = Config(type="mysql", host=MYSQL_HOST, port=MYSQL_PORT, user=user, password=PASSWORD,
                    database=database, table="t")
    with pytest.raises(TerminalError) as caught:
        open_sink(config, ".")
    message = str(caught.value)
    assert f"refused the credentials of user '{user}'" in message and "Check user and password" in message
    assert PASSWORD not in message and PASSWORD not in repr(config) and PASSWORD not in config.describe()


def test_an_unknown_database_says_how_to_create_it(mysql_url):
    url = mysql_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(TerminalError, match=r"database 'no_such_db' does not exist on .*CREATE DATABASE `no_such_db`"):
        open_source(Config(type="mysql", url=url, table="t"), ".")


def test_a_missing_table_in_a_query_names_the_table(config):
    with pytest.raises(SourceError, match=r"Table '.*\.nope' doesn't exist.*Check the table name"):
        open_source(config(query="SELECT * FROM nope"), ".")


def test_a_user_without_privileges_on_the_database_is_told_to_get_a_grant(make_user, database):
    user = make_user(PASSWORD)
    config = Config(type="mysql", user=user, password=PASSWORD, host=MYSQL_HOST, port=MYSQL_PORT, database=database,
                    table="t")
    with pytest.raises(TerminalError) as caught:
        open_source(config, ".")
    assert f"user {user!r} lacks a privilege" in str(caught.value) and "Grant it" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_read_only_user_cannot_load_and_is_told_which_privilege_is_missing(make_user, database, sql):
    sql("CREATE TABLE t (id INT)")
    user = make_user(PASSWORD, "SELECT")
    config = Config(type="mysql", user=user, password=PASSWORD, host=MYSQL_HOST, port=MYSQL_PORT, database=database,
                    table="t")
    s = open_sink(config, ".")
    try:
        batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32())})
        with pytest.raises(TerminalError, match=f"user {user!r} lacks a privilege.*(INSERT|CREATE) command denied"):
            append(s, batch)
    finally:
        s.close()


@pytest.mark.parametrize("local_infile", [True, False], ids=["load-data", "insert"])
def test_a_value_too_long_is_a_refused_row_naming_its_row_and_column(sql, sink, local_infile):
    sql("CREATE TABLE t (id INT, code VARCHAR(5))")
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2, 3], pa.int32()), "code": ["ok", "toolong", "fine"]})
    with pytest.raises(RowRefused) as caught:
        append(sink("t", local_infile=local_infile), batch)
    refused = caught.value
    assert (refused.row, refused.column) == (1, "code")
    assert refused.reason.startswith("Data t")  # "Data truncated" (LOAD DATA warning) or "Data too long" (INSERT error)
    assert "at row" not in refused.reason  # a row of Portl's own statement means nothing to the user
    assert sql("SELECT COUNT(*) FROM t") == [(0,)]


def test_an_incorrect_value_is_refused_instead_of_loading_a_changed_one(sql, sink):
    sql("CREATE TABLE t (id INT, n INT)")
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int32()), "n": ["7", "seven"]})
    with pytest.raises(RowRefused, match=r"Incorrect integer value: 'seven' for column .*n.* \(error 1366\)") as caught:
        append(sink("t"), batch)
    assert (caught.value.row, caught.value.column) == (1, "n")
    assert sql("SELECT COUNT(*) FROM t") == [(0,)]


def test_a_deadlock_between_two_writers_is_a_transient_error(sql, sink):
    sql("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    sql("INSERT INTO t VALUES (1, 0), (2, 0)")
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    write_batches(s, [pa.RecordBatch.from_pydict({"id": pa.array([3], pa.int32()), "v": pa.array([0], pa.int32())})], spec)

    def row(key: int, value: int) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict({"id": pa.array([key], pa.int32()), "v": pa.array([value], pa.int32())})

    errors: list[BaseException] = []
    locked = threading.Barrier(2, timeout=30)

    def writer(first: int, second: int) -> None:
        try:
            with s.transaction() as tx:
                s.write(row(first, first), spec, tx)  # locks row `first`
                locked.wait()
                s.write(row(second, first), spec, tx)  # waits for the other writer: a cycle
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(1, 2)), threading.Thread(target=writer, args=(2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(errors) == 1, errors
    assert isinstance(errors[0], TransientError) and "Deadlock" in str(errors[0]) and "worth retrying" in str(errors[0])
    assert sql("SELECT COUNT(*) FROM t WHERE v <> 0") in ([(2,)], [(1,)])


def test_a_connection_killed_mid_batch_is_a_transient_error(sql, sink):
    s = sink("t")
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32())})
    append(s, batch)
    with pytest.raises(TransientError, match="worth retrying"):
        with s.transaction() as tx:
            sql(f"KILL {tx.conn.thread_id()}")
            s.write(batch, WriteSpec(WriteMode.APPEND), tx)
    append(s, batch)  # the pool drops the dead connection and opens a new one
    assert sql("SELECT COUNT(*) FROM t") == [(2,)]
