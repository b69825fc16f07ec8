"""Named connections: from the job file, a connections file, PORTL_CONNECTIONS, or connections.yaml."""

from portl.spec.loader import load_job

JOB_USING_WAREHOUSE = """
    source: {type: csv, path: customers.csv}
    destination: warehouse
"""

CONNECTIONS = """
    connections:
      warehouse:
        type: sqlite
        path: /srv/warehouse.db
        table: customers
"""


def test_connection_named_in_the_job_file(write):
    path = write("job.yaml", """
        connections:
          warehouse: {type: sqlite, path: w.db, table: customers}
        source: {type: csv, path: customers.csv}
        destination: warehouse
    """)

    loaded = load_job(path, environ={})

    assert loaded.job.destination.type == "sqlite"
    assert loaded.job.destination.path == "w.db"
    assert loaded.job.connections["warehouse"].table == "customers"


def test_inline_keys_override_and_extend_the_named_connection(write):
    path = write("job.yaml", """
        connections:
          warehouse: {type: sqlite, path: w.db, table: customers}
        source: {connection: warehouse, query: select * from orders, table: null}
        destination: {type: csv, path: out.csv}
    """)

    source = load_job(path, environ={}).job.source

    assert (source.path, source.table, source.query) == ("w.db", None, "select * from orders")


def test_connection_from_the_given_connections_file(write):
    job = write("jobs/job.yaml", JOB_USING_WAREHOUSE)
    connections = write("config/conns.yaml", CONNECTIONS)

    loaded = load_job(job, connections_file=connections, environ={})

    assert loaded.job.destination.path == "/srv/warehouse.db"
    assert loaded.job.destination.table == "customers"


def test_connection_from_the_file_named_by_portl_connections(write):
    job = write("jobs/job.yaml", JOB_USING_WAREHOUSE)
    connections = write("config/conns.yaml", CONNECTIONS)

    loaded = load_job(job, environ={"PORTL_CONNECTIONS": connections})

    assert loaded.job.destination.path == "/srv/warehouse.db"


def test_connection_from_connections_yaml_beside_the_job(write):
    job = write("jobs/job.yaml", JOB_USING_WAREHOUSE)
    write("jobs/connections.yaml", CONNECTIONS)

    loaded = load_job(job, environ={})

    assert loaded.job.destination.path == "/srv/warehouse.db"


def test_job_file_connections_come_before_the_connections_file(write):
    job = write("jobs/job.yaml", """
        connections:
          warehouse: {type: sqlite, path: local.db, table: t}
        source: {type: csv, path: customers.csv}
        destination: warehouse
    """)
    write("jobs/connections.yaml", CONNECTIONS)

    assert load_job(job, environ={}).job.destination.path == "local.db"


def test_given_connections_file_comes_before_portl_connections(write):
    job = write("job.yaml", JOB_USING_WAREHOUSE)
    given = write("given.yaml", CONNECTIONS)
    other = write("other.yaml", CONNECTIONS.replace("/srv/warehouse.db", "/elsewhere.db"))

    loaded = load_job(job, connections_file=given, environ={"PORTL_CONNECTIONS": other})

    assert loaded.job.destination.path == "/srv/warehouse.db"


def test_unknown_connection_names_the_closest_and_where_it_looked(write, problems_of):
    job = write("job.yaml", JOB_USING_WAREHOUSE.replace("destination: warehouse", "destination: warehose"))
    connections = write("conns.yaml", CONNECTIONS)

    problems = problems_of(load_job, job, connections_file=connections, environ={})

    assert [(p.file, p.line, p.column) for p in problems] == [(job, 2, 14)]
    assert problems[0].message == (
        "destination: unknown connection 'warehose'; did you mean 'warehouse'? "
        f"Looked in: the connections of this file (it has none); {connections}"
    )


def test_unknown_connection_without_any_connections_file(write, problems_of):
    job = write("job.yaml", JOB_USING_WAREHOUSE)

    problems = problems_of(load_job, job, environ={})

    assert problems[0].message == (
        "destination: unknown connection 'warehouse'. Looked in: the connections of this file (it has none); "
        "no connections file (PORTL_CONNECTIONS is not set and there is no connections.yaml beside the job file)"
    )


def test_problems_inside_a_connections_file_are_located_in_that_file(write, problems_of):
    job = write("job.yaml", JOB_USING_WAREHOUSE)
    connections = write("conns.yaml", CONNECTIONS.replace("table: customers", "tabel: customers"))

    problems = problems_of(load_job, job, connections_file=connections, environ={})

    assert [str(p) for p in problems] == [
        f"{connections}:5:5: unknown key 'tabel' in connections.warehouse; did you mean 'table'?"
    ]


def test_missing_key_of_a_named_connection_names_the_connection(write, problems_of):
    job = write("job.yaml", JOB_USING_WAREHOUSE)
    connections = write("conns.yaml", "connections:\n  warehouse: {type: sqlite}\n")

    problems = problems_of(load_job, job, connections_file=connections, environ={})

    assert [(p.message, p.file, p.line) for p in problems] == [
        ("missing required key 'path' in destination (connection 'warehouse')", job, 2)
    ]


def test_missing_connections_file_is_reported_when_a_name_needs_it(write, problems_of, tmp_path):
    job = write("job.yaml", JOB_USING_WAREHOUSE)
    missing = str(tmp_path / "nope.yaml")

    problems = problems_of(load_job, job, environ={"PORTL_CONNECTIONS": missing})

    assert [str(p) for p in problems] == [f"{missing}: connections file {missing} does not exist"]


def test_connections_file_must_hold_a_connections_mapping(write, problems_of):
    job = write("job.yaml", JOB_USING_WAREHOUSE)
    connections = write("conns.yaml", "warehouse: {type: sqlite, path: w.db}\n")

    problems = problems_of(load_job, job, connections_file=connections, environ={})

    assert problems[0].file == connections
    assert problems[0].message.startswith("a connections file holds 'connections:'")


def test_multi_job_file_shares_its_connections_and_entries_may_add_their_own(write):
    path = write("daily.yaml", """
        connections:
          db: {type: sqlite, path: shared.db}
        jobs:
          - name: a
            connections:
              extra: {type: csv, path: extra.csv}
            source: extra
            destination: {connection: db, table: a}
    """)

    job = load_job(path, job_name="a", environ={}).job

    assert job.source.path == "extra.csv"
    assert job.destination.path == "shared.db"
    assert sorted(job.connections) == ["db", "extra"]


def test_a_reference_that_is_not_a_name_is_reported(write, problems_of):
    path = write("job.yaml", """
        source: {connection: [a, b]}
        destination: {type: csv, path: out.csv}
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line, p.column) for p in problems] == [
        ("source.connection: expected the name of a connection", 1, 22)
    ]


def test_a_url_written_where_a_connection_name_belongs_has_its_password_masked(write, problems_of):
    path = write("job.yaml", """
        source: {type: csv, path: a.csv}
        destination: "postgres://app:hunter2@db.internal/prod"
    """)

    problems = problems_of(load_job, path, environ={})

    assert "hunter2" not in problems[0].message
    assert problems[0].message.startswith("destination: unknown connection 'postgres://app:**********@db.internal/prod'")


def test_a_problem_in_a_job_file_connection_the_job_uses_is_reported_once(write, problems_of):
    path = write("job.yaml", """
        connections:
          warehouse: {type: sqlite, path: w.db, tabel: t}
        source: {type: csv, path: a.csv}
        destination: warehouse
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line, p.column) for p in problems] == [
        ("unknown key 'tabel' in connections.warehouse; did you mean 'table'?", 2, 41)
    ]
