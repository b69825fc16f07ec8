"""The connector's settings: URL or fields, validation, and a password that is never printed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from portl.connectors import registry
from portl.connectors.mysql import Config

URL = "mysql://app:p%40ss-w0rd@db.example.com:3307/shop"


def test_the_url_gives_host_port_user_password_and_database():
    kwargs = Config(type="mysql", url=URL, table="t").connect_kwargs(".")
    assert {k: kwargs[k] for k in ("host", "port", "user", "password", "database", "charset", "connect_timeout")} == {
        "host": "db.example.com", "port": 3307, "user": "app", "password": "p@ss-w0rd", "database": "shop",
        "charset": "utf8mb4", "connect_timeout": 10}


def test_fields_override_the_matching_part_of_the_url_and_default_without_one():
    config = Config(type="mysql", url=URL, host="replica", password="other", database="audit")
    kwargs = config.connect_kwargs(".")
    assert (kwargs["host"], kwargs["port"], kwargs["password"], kwargs["database"]) == ("replica", 3307, "other", "audit")
    plain = Config(type="mariadb", user="u", database="d").connect_kwargs(".")
    assert (plain["host"], plain["port"], plain["password"]) == ("127.0.0.1", 3306, "")


def test_ssl_files_are_passed_through_relative_to_the_job_folder():
    kwargs = Config(type="mysql", url=URL, ssl_ca="certs/ca.pem", ssl_verify=True).connect_kwargs("/jobs")
    assert (kwargs["ssl_ca"], kwargs["ssl_verify_cert"], kwargs["ssl_verify_identity"]) == ("/jobs/certs/ca.pem", True, True)


def test_the_password_is_never_in_describe_or_repr():
    config = Config(type="mysql", url=URL, password="field-secret", table="orders")
    shown = config.describe() + repr(config) + str(config)
    assert "p%40ss-w0rd" not in shown and "p@ss-w0rd" not in shown and "field-secret" not in shown
    assert config.describe() == "app@db.example.com:3307/shop orders"


@pytest.mark.parametrize("fields, message", [
    ({"url": "postgresql://x/y"}, "url must start with mysql://"),
    ({"table": "a", "query": "SELECT 1"}, "give only one of table, tables and query"),
    ({"tables": "shop.*"}, "tables takes '\\*' or a list"),
    ({"tables": []}, "tables lists no table"),
    ({"tabel": "a"}, "Extra inputs are not permitted"),
])
def test_invalid_settings_are_refused_with_the_reason(fields, message):
    with pytest.raises(ValidationError, match=message):
        Config(type="mysql", **fields)


def test_mysql_and_mariadb_are_both_registered_names_of_this_connector():
    assert registry.module_for("mysql") is registry.module_for("mariadb")
    assert registry.module_for("mariadb").Config is Config


def test_importing_the_connector_does_not_import_the_driver():
    code = "import sys, portl.connectors.mysql.sink, portl.connectors.mysql.source; print('pymysql' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
