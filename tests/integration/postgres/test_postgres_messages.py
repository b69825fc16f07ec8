"""PostgreSQL's words inside Portl's sentences: one full stop, and names that exist suggested."""

from __future__ import annotations

import psycopg
import pytest

import portl
from portl.connectors.postgres.connection import translate
from portl.errors import SourceError
from tests.integration.postgres.helpers import job_file


def test_a_server_detail_with_a_full_stop_is_joined_without_doubled_punctuation(pg):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    pg.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(psycopg.errors.UniqueViolation) as info:
        with pg.cursor() as cur, cur.copy("COPY t (id) FROM STDIN") as copy:
            copy.write_row((1,))
    message = str(translate(info.value, "writing to t"))
    assert message == ('writing to t: duplicate key value violates unique constraint "t_pkey"; '
                       "Key (id)=(1) already exists; at COPY t, line 1")


def test_a_missing_source_table_suggests_the_closest_tables(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE customers (id int); CREATE TABLE customer_notes (id int); CREATE SCHEMA sales; "
               "CREATE TABLE sales.custmer (id int)")
    path = job_file(tmp_path, f'source: {{type: postgres, url: "{pg_url}", table: custmers}}\n'
                              "destination: {type: csv, path: out.csv}\n")
    with pytest.raises(SourceError) as info:
        portl.plan(portl.load_job(path))
    assert str(info.value).endswith("; did you mean 'customers' or 'customer_notes' or 'sales.custmer'?")


def test_a_missing_destination_table_portl_may_not_create_suggests_the_closest(tmp_path, pg, pg_url):
    pg.execute("CREATE TABLE customers (id int)")
    (tmp_path / "in.csv").write_text("id\n1\n")
    path = job_file(tmp_path, "source: {type: csv, path: in.csv}\n"
                              f'destination: {{type: postgres, url: "{pg_url}", table: customer}}\n'
                              "mapping: {create_missing_columns: false}\n")
    with pytest.raises(portl.ConfigError) as info:
        portl.plan(portl.load_job(path))
    assert str(info.value).endswith("(did you mean 'customers'?)")
