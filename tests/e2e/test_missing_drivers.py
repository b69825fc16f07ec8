"""The database drivers are extras: without them, `portl connectors` still lists every connector and
says how to install what is missing, and a job naming such a connector fails with that sentence,
not an internal error. The drivers are made unimportable for the subprocess alone (stand-ins first
on PYTHONPATH that raise ImportError, as a missing install would)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import assert_clean_failure


@pytest.fixture
def without_drivers(tmp_path) -> dict[str, str]:
    for package in ("psycopg", "pymysql"):
        shadow = tmp_path / "shadow" / package
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(f'raise ImportError("{package} is not installed here (test stand-in)")\n')
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_connectors_lists_every_type_and_how_to_install_a_missing_driver(portl, without_drivers):
    result = portl("connectors", env=without_drivers)

    assert result.code == 0, result.log
    for name in ("csv", "parquet", "jsonl", "sqlite", "mysql", "postgres"):
        assert f"\n{name}" in "\n" + result.stdout, result.log
    assert "postgres: the PostgreSQL connector needs psycopg: pip install 'portl[postgres]'" in result.stdout
    assert "mysql: the MySQL connector needs PyMySQL: pip install 'portl[mysql]'" in result.stdout


@pytest.mark.parametrize("kind,extra", [("mysql", "portl[mysql]"), ("postgres", "portl[postgres]")])
def test_a_job_naming_a_connector_whose_driver_is_missing_says_what_to_install(portl, write, without_drivers, kind,
                                                                              extra):
    write("rows.csv", "id\n1\n")
    write("job.yaml", f"""
        source: {{type: csv, path: rows.csv}}
        destination: {{type: {kind}, url: "{kind}://root@127.0.0.1:9/db", table: t}}
    """)

    result = portl("plan", "job.yaml", env=without_drivers)

    assert_clean_failure(result, 1)
    assert f"pip install '{extra}'" in result.stderr, result.log
