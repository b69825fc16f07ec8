"""A whole-database copy out of MySQL names what it leaves out: ON UPDATE clauses and triggers."""

from __future__ import annotations

import portl

from tests.integration.mysql.support import job_file, run_job


def test_on_update_clauses_and_triggers_are_named_as_not_copied_in_the_plan_and_the_report(tmp_path, sql, mysql_url,
                                                                                          pg_url):
    sql("CREATE TABLE d (id int PRIMARY KEY, label varchar(45) NOT NULL, "
        "changed timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp())")
    sql("CREATE TABLE audit (id int PRIMARY KEY AUTO_INCREMENT, what varchar(20))")
    sql("CREATE TRIGGER d_audit AFTER UPDATE ON d FOR EACH ROW INSERT INTO audit (what) VALUES (NEW.label)")
    sql("INSERT INTO d (id, label) VALUES (1, 'a'), (2, 'b')")
    path = job_file(tmp_path, f"""\
        source: {{type: mysql, url: "{mysql_url}", tables: "*"}}
        destination: {{type: postgres, url: "{pg_url}"}}
        """)

    the_plan = portl.plan(portl.load_job(path))
    try:
        planned = " ".join(the_plan.warnings)
    finally:
        the_plan.close()
    report = run_job(path, tmp_path / "state")

    on_update = "the on update current_timestamp() clause of column changed of table d is not copied"
    trigger = "trigger d_audit of table d is not copied"
    assert on_update in planned.lower() and trigger in planned, planned
    assert report.status == "succeeded" and report.counts.inserted == 2
    assert any(on_update in w.lower() for w in report.warnings) and any(trigger in w for w in report.warnings), report.warnings
