"""Quality checks as a user meets them: the gate of a load, portl check, problems before anything loads."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_clean_failure, query, read_rejects

ROWS = """\
id,day,amount,status,email
1,2024-01-01,10.50,open,a@x.com
2,2024-01-02,20.00,closed,b@x.com
3,2024-01-03,-5.00,open,
4,2024-01-05,30.00,weird,d@x.com
5,2024-01-08,40.00,open,e@x.com
6,2024-01-09,50.00,open,f@x.com
"""

MAPPING = """\
mapping:
  columns:
    id: {type: bigint}
    day: {type: date}
    amount: {type: "decimal(12,2)"}
    status:
    email:
"""


def job_file(folder: Path, destination: str, checks: str, extra: str = "") -> Path:
    (folder / "sales.csv").write_text(ROWS)
    path = folder / "job.yaml"
    path.write_text(f"source: {{type: csv, path: sales.csv}}\ndestination: {destination}\n{MAPPING}{extra}"
                    f"quality:\n{textwrap.indent(textwrap.dedent(checks), '  ')}")
    return path


def test_batches_committed_as_they_go_end_failed_checks_with_the_rows_loaded(portl, tmp_path):
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}", """\
        - {check: accepted_values, column: status, values: [open, closed]}
        - {check: not_null, column: email, severity: warning}
        - {check: range, column: amount, min: 0, action: warn, severity: info}
        """)
    result = portl("run", "job.yaml")
    assert_clean_failure(result, 4)
    assert "1 critical quality check failed; the rows stay loaded" in result.stderr
    assert "accepted_values(status): 1 row failed (rejected)" in result.stderr
    assert query(tmp_path / "out.db", "SELECT id FROM sales ORDER BY id") == [(1,), (2,), (5,), (6,)]
    rejects = {r["record"]: r for r in read_rejects(tmp_path / "job.rejects.csv")}
    assert rejects["3"]["error"] == "check not_null(email): email is NULL"
    assert rejects["4"]["error"] == "check accepted_values(status): status 'weird' is not one of 'open', 'closed'"
    runs = json.loads(portl("runs", "--format", "json").stdout)
    assert runs[0]["status"] == "failed_checks"
    again = portl("run", "job.yaml", "--resume")  # the rows are loaded: nothing to continue
    assert again.code == 0 and "already finished" in again.stderr, again.log


def test_warnings_and_info_never_fail_a_run(portl, tmp_path):
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}", """\
        - {check: range, column: amount, min: 0, action: warn, severity: warning}
        - {check: date_completeness, column: day, weekdays_only: true, holidays: {country: US}, severity: info}
        """)
    result = portl("run", "job.yaml", "--format", "json")
    assert result.code == 0, result.log
    quality = result.report["quality"]
    assert quality["status"] == "passed_with_warnings"
    assert {f["name"]: f["severity"] for f in quality["failed"]} == {"range(amount)": "warning",
                                                                     "date_completeness(day)": "info"}
    missing = [f for f in quality["failed"] if f["name"] == "date_completeness(day)"][0]["message"]
    assert missing == "1 date missing from day: 2024-01-04"  # 01-01 is a holiday, 01-06/07 a weekend
    assert query(tmp_path / "out.db", "SELECT count(*) FROM sales") == [(6,)]


def test_one_transaction_rolls_back_on_a_critical_failure_and_writes_the_reports(portl, tmp_path, pg_url):
    job_file(tmp_path, f"{{type: postgres, url: '{pg_url}', table: sales}}", """\
        - {check: unique, columns: [status], severity: critical, name: one row per status}
        - {check: sql, query: "select count(*) from {table}", expect: ">= 6"}
        """, extra="transaction: job\nreports: {json: 'reports/{run_id}.json', junit: reports/junit.xml, html: reports/q.html}\n")
    result = portl("run", "job.yaml")
    assert_clean_failure(result, 4)
    assert "the load was rolled back: nothing was written" in result.stderr
    import psycopg

    with psycopg.connect(pg_url) as conn:
        exists = conn.execute("SELECT to_regclass('sales')").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM sales").fetchone()[0] if exists else 0
    assert rows == 0
    reports = tmp_path / "reports"
    report = json.loads(next(reports.glob("2*.json")).read_text())
    results = {r["name"]: r for r in report["results"]}
    assert results["one row per status"]["status"] == "failed"
    assert results["sql"]["status"] == "passed"  # it saw the rows of the open transaction
    assert report["gate"].startswith("nothing was loaded")
    suite = ET.parse(reports / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert int(suite.get("tests")) == 2 and int(suite.get("failures")) == 1
    assert "<html" in (reports / "q.html").read_text()[:2000].lower()


@pytest.mark.parametrize("check, message", [
    ("{check: not_null, column: emial}", "quality[0] (not_null(emial)): unknown column emial; the columns are: id, day"),
    ("{check: date_completeness, column: day, holidays: {country: XX}}", "no holiday calendar for country 'XX'"),
    ("{check: not_null, column: email, where: \"amount >\"}", "where: expected a value at the end"),
    ("{check: range, column: day, min: soon}", "'soon' cannot be compared with column day"),
])
def test_a_check_that_cannot_run_stops_the_run_before_anything_loads(portl, tmp_path, check, message):
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}", f"- {check}\n")
    result = portl("run", "job.yaml")
    assert_clean_failure(result)
    assert "job.yaml:" in result.stderr and message in result.stderr, result.log
    assert not (tmp_path / "out.db").exists() or query(tmp_path / "out.db", "SELECT count(*) FROM sqlite_master "
                                                                            "WHERE name = 'sales'") == [(0,)]


def test_a_bad_sql_rule_is_refused_before_loading_into_an_existing_table(portl, tmp_path):
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}",
             "- {check: sql, query: \"select * from {table} where amont < 0\"}\n", extra="mode: append\n")
    import sqlite3

    with sqlite3.connect(tmp_path / "out.db") as conn:
        conn.execute("CREATE TABLE sales (id INTEGER, day DATE, amount NUMERIC, status TEXT, email TEXT)")
    result = portl("run", "job.yaml")
    assert_clean_failure(result)
    assert "the destination cannot run the query" in result.stderr and "amont" in result.stderr, result.log
    assert query(tmp_path / "out.db", "SELECT count(*) FROM sales") == [(0,)]


def test_portl_check_reads_the_source_alone_and_exits_by_severity(portl, tmp_path):
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}", """\
        - {check: not_null, column: email, severity: warning}
        - {check: unique, columns: [id]}
        - {check: date_completeness, column: day, weekdays_only: true, severity: warning}
        - {check: sql, query: "select 1 from {table}"}
        """)
    result = portl("check", "job.yaml", "--format", "json")
    assert result.code == 0, result.log
    report = json.loads(result.stdout)
    statuses = {r["name"]: r["status"] for r in report["results"]}
    assert statuses == {"not_null(email)": "failed", "unique(id)": "passed", "date_completeness(day)": "failed",
                        "sql": "skipped"}
    missing = [r for r in report["results"] if r["check"] == "date_completeness"][0]["details"]["missing"]
    assert missing == ["2024-01-04"]
    assert report["rows"] == 6 and report["gate"] == "checks only: nothing was loaded"
    assert not (tmp_path / "out.db").exists()
    strict = portl("check", "job.yaml", "--fail-on", "warning")
    assert strict.code == 4, strict.log
    assert "not_null(email): 1 row failed (a load would reject them)" in strict.stdout


def test_portl_check_of_a_file_with_a_checks_file(portl, tmp_path):
    (tmp_path / "data.tsv").write_text("id\tday\n1\t2024-02-01\n2\t2024-02-02\n2\t2024-02-05\n")
    (tmp_path / "checks.yaml").write_text(
        "mapping:\n  columns:\n    id: {type: bigint}\n    day: {type: date}\n"
        "quality:\n  - {check: unique, columns: [id]}\n  - {check: date_completeness, column: day, weekdays_only: true}\n")
    result = portl("check", "data.tsv", "--checks", "checks.yaml")
    assert result.code == 4, result.log
    assert "unique(id): 1 value of (id) occur more than once, in 2 rows: 2 ×2 (records 2, 3)" in result.stdout
    (tmp_path / "checks.yaml").write_text("quality:\n  - {check: unique, colums: [id]}\n")
    typo = portl("check", "data.tsv", "--checks", "checks.yaml")
    assert_clean_failure(typo, 2)
    assert "checks.yaml:2:21: unknown key 'colums' in quality[0]; did you mean 'columns'?" in typo.stderr, typo.log


def test_volume_anomalies_compare_with_the_counts_of_earlier_runs(portl, tmp_path):
    lines = ["id,day"]
    n = 0
    for day in range(1, 29):  # four normal weeks, 100 rows a day
        for _ in range(100):
            n += 1
            lines.append(f"{n},2024-02-{day:02d}")
    (tmp_path / "history.csv").write_text("\n".join(lines) + "\n")
    spike = ["id,day"] + [f"{i},2024-03-01" for i in range(1, 901)]
    (tmp_path / "today.csv").write_text("\n".join(spike) + "\n")
    checks = ("mapping:\n  columns:\n    id: {type: bigint}\n    day: {type: date}\n"
              "quality:\n  - {check: volume_anomaly, column: day, min_rows: 50, name: daily volume}\n")
    (tmp_path / "checks.yaml").write_text(checks)
    first = portl("check", "history.csv", "--checks", "checks.yaml", "--format", "json")
    assert first.code == 0, first.log
    result = portl("check", "today.csv", "--checks", "checks.yaml", "--format", "json")
    assert result.code == 4, result.log  # judged against the 28 days checked before, with the same checks file
    judged = json.loads(result.stdout)["results"][0]
    assert judged["status"] == "failed"
    point = judged["details"]["points"][0]
    assert (point["key"], point["observed"], point["expected"], point["anomalous"]) == ("2024-03-01", 900, 100.0, True)
    assert point["references"] == 28  # four Fridays are fewer than min_history: every day of the history


def test_a_resumed_run_counts_each_rejected_row_once_and_skips_what_it_cannot_judge(portl, tmp_path, crash_hook):
    lines = ["id,day,amount,status,email"]
    for i in range(1, 1001):
        email = "" if i % 50 == 0 else f"u{i}@x.com"  # 20 rows without an email, spread over the file
        lines.append(f"{i},2024-01-{1 + i % 28:02d},1.00,open,{email}")
    (tmp_path / "sales.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "job.yaml").write_text(
        "source: {type: csv, path: sales.csv}\ndestination: {type: sqlite, path: out.db, table: sales}\n"
        + MAPPING + "batch: {size: 100}\n" + crash_hook.yaml
        + "quality:\n  - {check: not_null, column: email, max_failures: 20, name: emails}\n"
          "  - {check: unique, columns: [id], severity: warning}\n")
    crash_hook.arm()
    crashed = portl("run", "job.yaml")
    assert crashed.code != 0 and "simulated crash before batch 3" in crashed.stderr, crashed.log
    crash_hook.disarm()
    resumed = portl("run", "job.yaml", "--resume", "--format", "json")
    assert resumed.code == 0, resumed.log
    assert query(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id) FROM sales") == [(980, 980)]
    rejects = read_rejects(tmp_path / "job.rejects.csv")
    assert sorted(int(r["record"]) for r in rejects) == list(range(50, 1001, 50))
    report = json.loads(portl("report", resumed.report["run_id"], "--format", "json").stdout)
    results = {r["name"]: r for r in report["results"]}
    assert results["emails"]["status"] == "passed" and results["emails"]["failing_rows"] == 20
    assert results["unique(id)"]["status"] == "skipped"
    earlier = int(re.search(r"the run was resumed: ([\d,]+) rows were read by an earlier process",
                            results["unique(id)"]["message"]).group(1).replace(",", ""))
    assert 0 < earlier < 1000


def test_checks_that_read_the_destination_and_the_whole_input(portl, tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "out.db") as conn:
        conn.execute("CREATE TABLE statuses (code TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO statuses VALUES (?)", [("open",), ("closed",)])
    job_file(tmp_path, "{type: sqlite, path: out.db, table: sales}", """\
        - {check: referential, column: status, table: statuses, to_columns: [code], severity: warning}
        - {check: unique, columns: [day], method: destination, severity: warning}
        - {check: missing, column: email, max_percent: 10, severity: warning}
        - {check: freshness, column: day, max_age: 7d, as_of: "2024-02-01T00:00:00", severity: warning}
        - {check: schema, columns: [id, day, amount, status, email], types: {amount: "decimal(12,2)"}, exact: true}
        - {check: row_count, min: 6, max: 6, against: source}
        """)
    result = portl("run", "job.yaml", "--format", "json")
    assert result.code == 0, result.log
    report = json.loads(portl("report", result.report["run_id"], "--format", "json").stdout)
    results = {r["check"]: r for r in report["results"]}
    assert results["referential"]["status"] == "failed"
    assert results["referential"]["message"] == "1 value of (status) not found in statuses: 'weird'"
    assert results["unique"]["status"] == "passed"
    assert results["missing"]["status"] == "failed" and "email: 1 (16.67%)" in results["missing"]["observed"]
    assert results["freshness"]["status"] == "failed"
    assert results["freshness"]["message"] == "the newest day is 23.0 days old, more than 7d"
    assert results["schema"]["status"] == "passed"
    assert results["row_count"]["status"] == "passed"
    assert results["row_count"]["observed"] == "6 rows; inserted 6, destination gained 6"


def test_blocks_loaded_as_text_are_checked_as_the_parsed_ones(portl, tmp_path, pg_url):
    """Into PostgreSQL a clean block goes as its text (the verbatim path), checked from what its
    own check parsed; a block with a row to reject takes the ordinary path. Both ways give the
    same rows, rejects and results."""
    lines = ["id,day,amount,status,email"]
    for i in range(1, 3001):
        status = "weird" if i in (700, 2900) else "open"
        email = "" if i == 1500 else f"u{i}@x.com"
        lines.append(f"{i},2024-01-{1 + i % 28:02d},{i % 97}.50,{status},{email}")
    (tmp_path / "sales.csv").write_text("\n".join(lines) + "\n")
    checks = ("quality:\n  - {check: accepted_values, column: status, values: [open], severity: warning}\n"
              "  - {check: not_null, column: email, severity: warning}\n"
              "  - {check: unique, columns: [id]}\n  - {check: range, column: amount, min: 0, max: 96.5}\n")
    outcomes = []
    for table, mapping in (("as_text", MAPPING), ("parsed", MAPPING.replace("    status:\n", "    status: {transform: lower}\n"))):
        (tmp_path / f"{table}.yaml").write_text(
            f"source: {{type: csv, path: sales.csv}}\ndestination: {{type: postgres, url: '{pg_url}', table: {table}}}\n"
            f"batch: {{size: 500}}\nrejects: {{path: {table}.rejects.csv}}\n" + mapping + checks)
        plan = json.loads(portl("plan", f"{table}.yaml", "--format", "json").stdout)
        assert (plan["destination"]["verbatim"] is not None) == (table == "as_text"), plan["destination"]
        result = portl("run", f"{table}.yaml", "--format", "json")
        assert result.code == 0, result.log
        report = json.loads(portl("report", result.report["run_id"], "--format", "json").stdout)
        rejects = sorted((int(r["record"]), r["error"]) for r in read_rejects(tmp_path / f"{table}.rejects.csv"))
        outcomes.append((result.report["counts"]["inserted"], rejects,
                         {r["name"]: (r["status"], r["failing_rows"]) for r in report["results"]}))
    assert outcomes[0] == outcomes[1]
    inserted, rejects, results = outcomes[0]
    assert inserted == 2997 and [r for r, _ in rejects] == [700, 1500, 2900]
    assert results["unique(id)"] == ("passed", 0) and results["range(amount)"] == ("passed", 0)
