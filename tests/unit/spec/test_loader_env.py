"""${env:NAME} substitution in sources, destinations, connections and hook urls and headers."""

from pydantic import SecretStr

from portl.spec.envsubst import substitute
from portl.spec.loader import load_job

JOB = """
    source:
      type: csv
      path: "${env:DATA_DIR}/customers.csv"
    destination:
      type: sqlite
      path: ${env:DB_DIR:-out}/warehouse.db
      table: ${env:SCHEMA}_${env:TABLE}
"""


def test_variables_are_substituted_inside_strings(write):
    loaded = load_job(write("job.yaml", JOB), environ={"DATA_DIR": "/data", "DB_DIR": "/db", "SCHEMA": "crm", "TABLE": "customers"})

    assert loaded.job.source.path == "/data/customers.csv"
    assert loaded.job.destination.path == "/db/warehouse.db"
    assert loaded.job.destination.table == "crm_customers"


def test_default_is_used_when_the_variable_is_unset(write):
    loaded = load_job(write("job.yaml", JOB), environ={"DATA_DIR": "/data", "SCHEMA": "crm", "TABLE": "t"})

    assert loaded.job.destination.path == "out/warehouse.db"


def test_missing_variable_is_located_at_the_value_that_uses_it(write, problems_of):
    path = write("job.yaml", JOB)

    problems = problems_of(load_job, path, environ={"SCHEMA": "crm", "TABLE": "t"})

    assert [str(p) for p in problems] == [f"{path}:3:9: environment variable DATA_DIR is not set (used in source.path)"]


def test_every_missing_variable_is_reported(write, problems_of):
    problems = problems_of(load_job, write("job.yaml", JOB), environ={"DATA_DIR": "/d"})

    assert [(p.message, p.line) for p in problems] == [
        ("environment variable SCHEMA is not set (used in destination.table)", 7),
        ("environment variable TABLE is not set (used in destination.table)", 7),
    ]


def test_secret_values_substituted_from_the_environment_never_appear_in_problems(write, problems_of):
    path = write("job.yaml", """
        source: {type: csv, path: a.csv, header: "${env:HEADER}"}
        destination: {type: csv, path: b.csv}
    """)

    problems = problems_of(load_job, path, environ={"HEADER": "hunter2"})

    assert [p.message for p in problems] == ["source.header: expected true or false"]


def test_hook_url_and_headers_are_substituted(write):
    path = write("job.yaml", """
        source: {type: csv, path: a.csv}
        destination: {type: csv, path: b.csv}
        hooks:
          after_job:
            type: http
            url: ${env:HOOK_BASE}/done
            headers: {Authorization: "Bearer ${env:TOKEN}"}
            body: "${env:NOT_TOUCHED}"
    """)

    hook = load_job(path, environ={"HOOK_BASE": "https://hooks.example.com", "TOKEN": "abc"}).job.hooks.after_job[0]

    assert hook.url == "https://hooks.example.com/done"
    header = hook.headers["Authorization"]
    assert (header.get_secret_value() if isinstance(header, SecretStr) else header) == "Bearer abc"
    assert hook.body == "${env:NOT_TOUCHED}"


def test_missing_variable_in_a_connection_the_job_does_not_use_is_not_an_error(write):
    path = write("job.yaml", """
        connections:
          prod: {type: sqlite, path: "${env:PROD_DB}"}
          local: {type: sqlite, path: local.db}
        source: {type: csv, path: a.csv}
        destination: {connection: local, table: t}
    """)

    loaded = load_job(path, environ={})

    assert loaded.job.destination.path == "local.db"


def test_missing_variable_in_a_used_connection_is_reported_where_the_connection_is_written(write, problems_of):
    path = write("job.yaml", """
        connections:
          prod: {type: sqlite, path: "${env:PROD_DB}"}
        source: {type: csv, path: a.csv}
        destination: {connection: prod, table: t}
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line, p.column) for p in problems] == [
        ("environment variable PROD_DB is not set (used in connections.prod.path)", 2, 30)
    ]


def test_doubled_dollar_keeps_the_reference_as_text():
    value, result = substitute("$${env:HOME} and ${env:HOME}", {"HOME": "/root"})

    assert value == "${env:HOME} and /root"
    assert result.failures == []


def test_empty_variable_takes_the_default_like_the_shell():
    assert substitute("${env:X:-fallback}", {"X": ""})[0] == "fallback"
    assert substitute("${env:X}", {"X": ""})[0] == ""


def test_malformed_reference_is_a_failure():
    value, result = substitute("${env:1BAD}", {})

    assert value == "${env:1BAD}"
    assert result.failures == [((), "'${env:1BAD}' is not a valid reference; write ${env:NAME} or ${env:NAME:-default}")]


def test_non_string_values_are_left_alone():
    data = {"port": 5432, "flags": [True, None], "name": "${env:N}"}

    value, result = substitute(data, {"N": "db"}, ("source",))

    assert value == {"port": 5432, "flags": [True, None], "name": "db"}
    assert result.changed == {("source", "name")}
