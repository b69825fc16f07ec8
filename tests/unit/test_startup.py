"""What a command loads as it starts: only what the command and the job at hand need.

Each check runs in a fresh interpreter, since this test process has loaded everything already.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from portl.spec.loader import load_job

NEVER_AT_START = {"psycopg", "pymysql", "boto3", "jinja2", "httpx", "pyarrow", "pygments", "sqlalchemy", "alembic"}
SERVICE_TOOLKITS = {"sqlalchemy", "alembic", "celery", "kombu", "redis"}
OTHER_CONNECTORS = {"portl.connectors.parquet", "portl.connectors.jsonl", "portl.connectors.sqlite", "portl.connectors.mysql"}


def modules_loaded_by(code: str, cwd) -> set[str]:
    """The modules a fresh interpreter holds once ``code`` has run, or exited."""
    report = "import atexit, json, sys\natexit.register(lambda: print('MODULES', json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
    result = subprocess.run([sys.executable, "-c", report + textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.startswith("MODULES ")]
    assert lines, result.stderr
    return set(json.loads(lines[-1].removeprefix("MODULES ")))


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_command_line_loads_no_driver_no_arrow_and_no_job_language(tmp_path):
    loaded = modules_loaded_by("import portl.cli.app", tmp_path)

    assert packages(loaded) & NEVER_AT_START == set()
    assert {m for m in loaded if m.startswith(("portl.spec", "portl.engine", "portl.connectors", "portl.steps", "portl.wizard"))} == set()


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["tenants", "--help"], ["keys", "list", "--help"],
                                  ["service", "migrate", "--help"], ["worker", "--help"]])
def test_help_and_version_load_neither_sqlalchemy_nor_alembic(args, tmp_path):
    loaded = modules_loaded_by(f"""
        import sys
        from portl.cli.app import main
        sys.argv = ["portl", *{args!r}]
        main()
    """, tmp_path)

    assert "portl.cli.service" in loaded  # the service commands are registered, their toolkits not loaded
    assert packages(loaded) & SERVICE_TOOLKITS == set()
    assert {m for m in loaded if m.startswith("portl.service")} == set()


@pytest.mark.parametrize("args", [["--help"], ["submit", "--help"], ["jobs", "--help"], ["jobs", "list", "--help"]])
def test_the_server_client_commands_load_no_http_client_until_they_run(args, tmp_path):
    loaded = modules_loaded_by(f"""
        import sys
        from portl.cli.app import main
        sys.argv = ["portl", *{args!r}]
        main()
    """, tmp_path)

    assert "portl.cli.client" in loaded  # registered, its HTTP client not loaded
    assert packages(loaded) & {"httpx", "httpcore", "fastapi", "uvicorn", "celery", "redis"} == set()
    assert "portl.cli.serverapi" not in loaded


def test_importing_portl_loads_no_service_toolkit(tmp_path):
    assert packages(modules_loaded_by("import portl", tmp_path)) & SERVICE_TOOLKITS == set()


def test_loading_a_job_imports_only_the_connectors_it_names(write, tmp_path):
    write("job.yaml", """
        source: {type: csv, path: data.csv}
        destination: {type: postgres, url: 'postgresql://u@127.0.0.1:5432/db', table: t}
    """)

    loaded = modules_loaded_by("from portl.spec.loader import load_job; load_job('job.yaml')", tmp_path)

    assert {"portl.connectors.csv", "portl.connectors.postgres.config"} <= loaded
    assert loaded & OTHER_CONNECTORS == set()
    assert loaded & {"psycopg", "pyarrow.parquet", "jinja2"} == set()


def test_a_job_runs_without_loading_drivers_syntax_highlighting_or_the_progress_bar(write, tmp_path):
    write("data.csv", "id,name\n1,Ada\n2,Grace\n")
    write("job.yaml", "source: {type: csv, path: data.csv}\ndestination: {type: sqlite, path: out.db, table: people}\n")

    loaded = modules_loaded_by("""
        import sys
        from portl.cli.app import main
        sys.argv = ["portl", "run", "job.yaml", "--no-progress"]
        main()
    """, tmp_path)

    assert "portl.connectors.sqlite" in loaded  # the run did happen
    assert packages(loaded) & {"psycopg", "pymysql", "jinja2", "pygments"} == set()
    assert loaded & (OTHER_CONNECTORS - {"portl.connectors.sqlite"}) == set()
    assert loaded & {"pyarrow.parquet", "rich.syntax", "rich.progress"} == set()


def test_connections_of_other_types_in_the_job_file_are_validated_too(write, problems_of):
    path = write("job.yaml", """
        connections:
          warehouse: {type: sqlite, path: w.db}
          archive: {type: parquet, path: archive.parquet, compresion: zstd}
        source: {type: csv, path: data.csv}
        destination: warehouse
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line) for p in problems] == [
        ("unknown key 'compresion' in connections.archive; did you mean 'compression'?", 3),
    ]


def test_a_job_using_a_connection_of_its_file_loads_its_type(write):
    path = write("job.yaml", """
        connections:
          warehouse: {type: sqlite, path: w.db}
        source: {type: csv, path: data.csv}
        destination: {connection: warehouse, table: people}
    """)

    job = load_job(path, environ={}).job

    assert (job.source.type, job.destination.type, job.destination.table) == ("csv", "sqlite", "people")
    assert job.connections["warehouse"].type == "sqlite"
