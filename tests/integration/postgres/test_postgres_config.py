"""The connector's settings: names, validation, secrets, and quoting that matches the driver's."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest
from pydantic import ValidationError

from portl.connectors import registry
from portl.connectors.postgres import Config
from portl.connectors.postgres.typemap import DIALECT
from portl.connectors.sql.dialect import split_qualified


def test_postgres_and_postgresql_name_the_same_connector():
    assert registry.module_for("postgres") is registry.module_for("postgresql")
    assert Config(type="postgresql", table="t").type == "postgresql"


def test_loading_the_config_does_not_import_the_driver():
    code = ("import sys; from portl.connectors import registry; registry.module_for('postgres')"
            ".Config(type='postgres', url='postgresql://u:p@h/db', table='t'); print('psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_the_password_never_shows_in_repr_or_description():
    config = Config(type="postgres", url="postgresql://bob:hunter2@db.example:6543/shop", table="sales.orders")
    assert "hunter2" not in repr(config)
    assert config.describe() == "db.example:6543/shop sales.orders"
    fields = Config(type="postgres", host="db", user="bob", password="hunter2", database="shop", table="t")
    assert "hunter2" not in repr(fields) and "hunter2" not in str(fields.model_dump())
    assert fields.describe() == "db:5432/shop public.t"


def test_fields_override_the_url_and_default_to_localhost(tmp_path):
    config = Config(type="postgres", url="postgresql://bob@h:1/db", port=2, sslmode="require", sslrootcert="ca.pem")
    kwargs = config.connect_kwargs(str(tmp_path))
    assert (kwargs["conninfo"], kwargs["port"], kwargs["sslmode"]) == ("postgresql://bob@h:1/db", 2, "require")
    assert kwargs["sslrootcert"] == str(tmp_path / "ca.pem")
    plain = Config(type="postgres", database="db").connect_kwargs(".")
    assert (plain["host"], plain["port"], plain["dbname"], plain["application_name"], plain["connect_timeout"]) == (
        "127.0.0.1", 5432, "db", "portl", 10)


@pytest.mark.parametrize("fields, message", [
    ({"table": "t", "query": "SELECT 1"}, "give only one of table, tables and query"),
    ({"tables": "sales"}, "tables takes '*', 'schema.*' or a list"),
    ({"url": "mysql://h/db"}, "url must start with postgresql://"),
    ({"tabel": "t"}, "Extra inputs are not permitted"),
])
def test_invalid_settings_are_refused(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        Config(type="postgres", **fields)


def test_every_field_is_described():
    assert all(f.description for name, f in Config.model_fields.items() if name != "type")


@pytest.mark.parametrize("name", ["plain", "Mixed Case", 'with"quote', "dot.ted", "Zoë", "pct%"])
def test_the_dialect_quotes_as_psycopg_does_on_a_connection(pg_url, name):
    with psycopg.connect(pg_url) as conn:
        assert DIALECT.quote(name) == psycopg.sql.Identifier(name).as_string(conn)
    assert split_qualified(DIALECT.table(f'{DIALECT.quote("s")}.{DIALECT.quote(name)}')) == ["s", name]
