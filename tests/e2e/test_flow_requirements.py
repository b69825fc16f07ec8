"""`portl plan` and `portl run` on a flow name an optional package it needs but cannot import,
before anything runs. The package is made unimportable for the subprocess alone: a folder first on
PYTHONPATH holds a stand-in that raises ImportError, as a broken or missing install would."""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.e2e.conftest import assert_clean_failure

FLOW = """\
version: 2
name: notify
connections:
  aws: {type: lambda, endpoint_url: "http://127.0.0.1:9", region: eu-west-1, access_key_id: x, secret_access_key: y}
steps:
  - id: read
    type: csv.read
    path: items.csv
  - id: notify
    type: lambda.invoke
    function: notify-items
    payload: {count: "{{ steps.read.rows | length }}"}
"""


@pytest.fixture
def without_boto3(tmp_path):
    """PYTHONPATH for a ``portl`` where ``import boto3`` raises ImportError."""
    shadow = tmp_path / "shadow" / "boto3"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("boto3 is not installed here (test stand-in)")\n')
    return os.pathsep.join([str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture
def flow(write):
    write("items.csv", "id\n1\n2\n")
    return write("flow.yaml", FLOW)


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_lambda_step_without_boto3_is_a_problem_at_the_step_before_anything_runs(portl, flow, without_boto3, command):
    result = portl(command, "flow.yaml", env={"PYTHONPATH": without_boto3})
    assert_clean_failure(result, 2)
    assert ("flow.yaml:10:11: step notify (lambda.invoke) needs the boto3 package, which cannot be imported "
            "(boto3 is not installed here (test stand-in)); install it with: pip install 'portl[aws]'") in result.stderr
    assert not (portl.state_dir / "state.db").exists()  # not even a run recorded


def test_with_boto3_importable_the_same_flow_plans(portl, flow):
    result = portl("plan", "flow.yaml")
    assert result.code == 0, result.log
    assert "cannot be imported" not in result.output
    assert "notify-items" in result.stdout


def test_db_steps_on_mysql_without_pymysql_are_a_problem_at_the_connection(portl, write, tmp_path):
    shadow = tmp_path / "shadow" / "pymysql"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'pymysql\'")\n')
    write("items.csv", "id\n1\n")
    write("flow.yaml", textwrap.dedent("""\
        version: 2
        connections:
          db: {type: mysql, url: "mysql://root@127.0.0.1:9/nowhere"}
        steps:
          - id: read
            type: csv.read
            path: items.csv
          - id: save
            type: db.insert
            table: items
            batch: {from: steps.read.rows, as: row}
            mapping: {id: "{{ row.id }}"}
        """))
    result = portl("plan", "flow.yaml", env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert_clean_failure(result, 2)
    assert ("flow.yaml:3:14: connection db (mysql) needs the pymysql package, which cannot be imported "
            "(No module named 'pymysql'); install it with: pip install 'portl[mysql]'") in result.stderr
