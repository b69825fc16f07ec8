"""What a user expects of any command line: job files from pipes and standard input, --version,
completion, --quiet and --verbose, --format json everywhere (errors too), run --all, and
`portl connectors`."""

from __future__ import annotations

import json
import os
import subprocess
import threading

from tests.e2e.conftest import PORTL, Result, assert_clean_failure, query, text_counts

CSV = "id,name\n1,Ada\n2,Grace\n3,Edsger\n"
JOB = "source: {type: csv, path: people.csv}\ndestination: {type: sqlite, path: out.db, table: people}\n"


def piped(portl, *args: str, stdin: str) -> Result:
    """``portl ARGS`` with ``stdin`` on its standard input."""
    done = subprocess.run([*PORTL, *args], cwd=portl.cwd, input=stdin, capture_output=True, text=True, timeout=120,
                          env=portl.env())
    return Result(list(args), done.returncode, done.stdout, done.stderr, 0.0)


def test_a_job_from_standard_input_runs_with_paths_relative_to_the_current_directory(portl, write):
    write("people.csv", CSV)

    result = piped(portl, "run", "-", "--no-progress", stdin=JOB)

    assert result.code == 0, result.log
    assert text_counts(result.stderr)["inserted"] == 3
    assert query(portl.cwd / "out.db", "SELECT name FROM people ORDER BY id") == [("Ada",), ("Grace",), ("Edsger",)]


def test_dev_stdin_is_read_once_so_validate_sees_the_job(portl):
    result = piped(portl, "validate", "/dev/stdin", stdin=JOB)

    assert result.code == 0, result.log
    assert result.stdout.strip() == "ok /dev/stdin: job 'stdin' is valid (csv -> sqlite, append)"


def test_problems_of_a_job_from_standard_input_name_it_stdin(portl):
    result = piped(portl, "validate", "-", stdin=JOB.replace("table:", "tabel:"))

    assert_clean_failure(result, 2)
    assert "<stdin>:2:43: unknown key 'tabel' in destination; did you mean 'table'?" in result.stderr


def test_a_process_substitution_plans_like_a_file(portl, write):
    write("people.csv", CSV)
    write("job.yaml", JOB)

    done = subprocess.run(["bash", "-c", " ".join(PORTL) + " plan <(cat job.yaml) --format json"], cwd=portl.cwd,
                          capture_output=True, text=True, timeout=120, env=portl.env())

    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["destination"]["mode"] == "append"
    assert [c["destination"] for c in plan["mapping"]] == ["id", "name"]


def test_a_fifo_does_not_hang(portl):
    fifo = portl.cwd / "job.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=(JOB,))
    writer.start()

    result = portl("validate", str(fifo), timeout=60)
    writer.join(timeout=5)

    assert result.code == 0, result.log
    assert "job 'job' is valid" in result.stdout


def test_version_and_completion(portl):
    from portl import __version__

    version = portl("--version")
    completion = portl("--show-completion", "bash")

    assert (version.code, version.stdout) == (0, f"portl {__version__}\n")
    assert completion.code == 0, completion.log
    assert "_PORTL_COMPLETE=complete_bash" in completion.stdout and "complete -o default -F _portl_completion portl" in completion.stdout


def test_quiet_prints_nothing_on_success_and_verbose_prints_each_batch(portl, write):
    write("people.csv", CSV)
    write("job.yaml", JOB.replace("sqlite, ", "sqlite, ") + "batch: {size: 2}\n")

    quiet = portl("-q", "run", "job.yaml")
    verbose = portl("run", "job.yaml", "--restart", "--verbose", "--no-progress")

    assert quiet.code == 0, quiet.log
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert verbose.code == 0, verbose.log
    assert "batch 1 committed: 2 rows read, 2 inserted" in verbose.stderr
    assert "batch 2 committed: 1 rows read, 1 inserted" in verbose.stderr or "batch 2 committed: 1 row read" in verbose.stderr


def test_quiet_still_prints_the_error(portl):
    result = portl("run", "missing.yaml", "--quiet")

    assert_clean_failure(result, 2)
    assert "job file missing.yaml does not exist" in result.stderr


def test_plan_of_an_invalid_job_prints_its_problems_as_json_on_stdout(portl, write):
    write("job.yaml", "source: {type: csv, path: people.csv}\ndestination: {type: sqlite, path: o.db, tabel: t}\n")

    result = portl("plan", "job.yaml", "--format", "json")

    assert result.code == 2, result.log
    document = json.loads(result.stdout)
    assert document["event"] == "error"
    error = document["error"]
    assert (error["type"], error["exit_code"], error["message"]) == ("ConfigError", 2, "1 problem found")
    assert error["problems"] == [{"file": "job.yaml", "line": 2, "column": 41,
                                  "message": "unknown key 'tabel' in destination; did you mean 'table'?"}]


def test_validate_prints_every_job_as_json(portl, write):
    write("jobs.yaml", f"""
jobs:
  - {{name: first, source: {{type: csv, path: a.csv}}, destination: {{type: sqlite, path: o.db, table: a}}}}
  - name: second
    source: {{type: csv, path: b.csv}}
    destination: {{type: sqlite, path: o.db, table: b}}
    mode: upsert
    conflict: {{key: [id], strategy: skip}}
""")

    result = portl("validate", "jobs.yaml", "--format", "json")

    assert result.code == 0, result.log
    checked = json.loads(result.stdout)
    assert (checked["file"], checked["valid"]) == ("jobs.yaml", True)
    assert [(j["name"], j["write_mode"], j["conflict_key"], j["conflict_strategy"]) for j in checked["jobs"]] == [
        ("first", "append", None, None), ("second", "upsert", ["id"], "skip"),
    ]


def test_run_summary_and_the_runs_of_the_ledger_as_json(portl, write):
    write("people.csv", CSV)
    write("job.yaml", JOB)

    ran = portl("run", "job.yaml", "--format", "json")
    listed = portl("runs", "--format", "json")
    shown = portl("runs", "show", ran.report["run_id"][:12], "--format", "json")

    assert ran.code == 0, ran.log
    assert [e["event"] for e in ran.events] == ["report"]
    assert ran.report["counts"]["inserted"] == 3
    runs = json.loads(listed.stdout)
    assert [(r["run_id"], r["job"], r["status"]) for r in runs] == [(ran.report["run_id"], "job", "succeeded")]
    one = json.loads(shown.stdout)
    assert (one["run_id"], one["counts"]["inserted"], one["error"]) == (ran.report["run_id"], 3, None)


def test_run_all_runs_every_job_in_order_and_stops_at_the_first_failure(portl, write):
    write("people.csv", CSV)
    write("jobs.yaml", """
jobs:
  - {name: first, source: {type: csv, path: people.csv}, destination: {type: sqlite, path: out.db, table: a}}
  - {name: broken, source: {type: csv, path: nowhere.csv}, destination: {type: sqlite, path: out.db, table: b}}
  - {name: third, source: {type: csv, path: people.csv}, destination: {type: sqlite, path: out.db, table: c}}
""")

    text = portl("run", "jobs.yaml", "--all", "--no-progress")
    as_json = portl("run", "jobs.yaml", "--all", "--format", "json")

    assert_clean_failure(text, 1)
    assert "ran 2 of 3 jobs: first succeeded, broken failed; not run: third" in text.stderr
    assert query(portl.cwd / "out.db", "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('a', 'b', 'c')") == [("a",)]
    summary = [e for e in as_json.events if e.get("event") == "jobs"]
    assert as_json.code == 1, as_json.log
    assert [(j["name"], j["status"]) for j in summary[0]["jobs"]] == [("first", "succeeded"), ("broken", "failed")]
    assert summary[0]["not_run"] == ["third"]
    assert as_json.events[-1]["event"] == "error" and "nowhere.csv" in as_json.events[-1]["error"]["message"]


def test_run_all_says_which_jobs_ran_when_all_succeed(portl, write):
    write("people.csv", CSV)
    write("jobs.yaml", """
jobs:
  - {name: first, source: {type: csv, path: people.csv}, destination: {type: sqlite, path: out.db, table: a}}
  - {name: second, source: {type: csv, path: people.csv}, destination: {type: sqlite, path: out.db, table: b}}
""")

    result = portl("run", "jobs.yaml", "--all", "--no-progress")

    assert result.code == 0, result.log
    assert "ran 2 of 2 jobs: first succeeded, second succeeded" in result.stderr
    assert query(portl.cwd / "out.db", "SELECT count(*) FROM a") == query(portl.cwd / "out.db", "SELECT count(*) FROM b") == [(3,)]


def test_rows_without_dry_run_is_an_error(portl, write):
    write("job.yaml", JOB)

    result = portl("run", "job.yaml", "--rows", "3")

    assert result.code == 2, result.log
    assert "--rows sets how much of the plan's preview --dry-run shows" in result.stderr
    assert not (portl.cwd / "out.db").exists()


def test_connectors_lists_every_registered_type_with_its_capabilities(portl):
    from portl.connectors.registry import connector_types

    text = portl("connectors")
    listed = json.loads(portl("connectors", "--format", "json").stdout)

    assert text.code == 0, text.log
    assert [c["type"] for c in listed] == [t.names[0] for t in connector_types()]
    by_type = {c["type"]: c for c in listed}
    assert by_type["postgres"]["aliases"] == ["postgresql"]
    assert by_type["postgres"]["sink"]["upsert_strategies"] == ["fail", "merge", "overwrite", "skip"]
    assert by_type["csv"]["sink"]["modes"] == ["append", "replace"] and by_type["csv"]["whole_database"] is False
    assert by_type["sqlite"]["whole_database"] is True
    assert any(line.startswith("mysql, mariadb ") for line in text.stdout.splitlines())


def test_a_usage_error_is_json_too_when_json_was_asked_for(portl, write):
    write("job.yaml", JOB)

    result = portl("plan", "job.yaml", "--format", "json", "--colour")

    assert result.code == 2, result.log
    error = json.loads(result.stdout)["error"]
    assert (error["type"], error["exit_code"], error["message"]) == ("NoSuchOption", 2, "No such option: --colour")
    assert "No such option: --colour" in result.stderr
