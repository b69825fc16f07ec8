"""A run's report from the ledger: the one it kept, or one built from its record (counts, status,
rejects by reason read from its reject file)."""

from __future__ import annotations

import pytest

from portl.quality.reports.ledger_report import reason_of, rejects_by_reason, report_for_run
from portl.state.ledger import Ledger
from tests.quality_samples import sample_report

HEADER = "source,line,record,column,value,error,original\n"


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(str(tmp_path / "state"))
    yield opened
    opened.close()


def finished_run(ledger: Ledger, rejects_file=None, status="succeeded", counts=None, error=None, job="load"):
    record = ledger.start_run(job, f"/jobs/{job}.yaml", "hash", {"rejects_file": rejects_file and str(rejects_file),
                                                                  "destination": "sqlite out.db"})
    ledger.finish_run(record.id, status, counts or {"read": 4, "inserted": 3, "updated": 0, "skipped": 0,
                                                    "skipped_by_reason": {}, "rejected": 1}, error)
    return ledger.get(record.id)


def test_a_run_that_kept_a_report_gets_it_back_as_it_was(ledger):
    record = finished_run(ledger)
    ledger.save_report(record.id, sample_report().to_json())

    assert report_for_run(ledger, record) == sample_report()


def test_a_run_without_a_report_gets_its_counts_status_and_rejects_by_reason(ledger, tmp_path):
    rejects = tmp_path / "load.rejects.csv"
    rejects.write_text(HEADER + "in.csv,2,1,price,abc,\"value 'abc' does not fit column price (decimal(10,2))\",\"1,abc\"\n"
                       "in.csv,3,2,price,x1,\"value 'x1' does not fit column price (decimal(10,2))\",\"2,x1\"\n"
                       "in.csv,4,3,name,,required value is missing,\"3,\"\n", encoding="utf-8")
    record = finished_run(ledger, rejects, counts={"read": 9, "inserted": 6, "updated": 0, "skipped": 0, "rejected": 3})

    report = report_for_run(ledger, record)

    assert (report.job, report.run_id, report.rows, report.run_status) == ("load", record.id, 9, "succeeded")
    assert report.results == [] and report.status == "passed"
    assert report.rejects_by_reason == {"value '…' does not fit column price (decimal(10,2))": 2,
                                        "name: required value is missing": 1}
    assert report.gate == "No quality checks ran for this run; it succeeded: 6 rows loaded."
    assert report.destination == "sqlite out.db" and report.counts["rejected"] == 3
    assert [e["event"] for e in report.audit] == ["run_started", "run_finished"]


def test_a_failed_run_says_why_in_its_gate_and_audit_trail(ledger):
    record = finished_run(ledger, status="failed", error="connection refused",
                          counts={"read": 0, "inserted": 0, "updated": 0, "skipped": 0, "rejected": 0})

    report = report_for_run(ledger, record)

    assert report.gate == ("No quality checks ran for this run; it failed (connection refused); 0 rows loaded in "
                           "batches committed before the failure.")
    assert report.audit[-1]["detail"] == "failed: connection refused"


def test_an_older_run_does_not_count_the_reject_file_a_later_run_replaced(ledger, tmp_path):
    rejects = tmp_path / "load.rejects.csv"
    rejects.write_text(HEADER + "in.csv,2,1,a,x,later run's reject,x\n")
    older = finished_run(ledger, rejects)
    finished_run(ledger, rejects)

    report = report_for_run(ledger, older)

    assert report.rejects_by_reason == {}
    assert any(e["event"] == "rejects_not_counted" and "a later run" in e["detail"] for e in report.audit)


def test_a_missing_reject_file_is_noted_not_fatal(ledger, tmp_path):
    record = finished_run(ledger, tmp_path / "gone.rejects.csv")

    report = report_for_run(ledger, record)

    assert report.rejects_by_reason == {}
    note = next(e["detail"] for e in report.audit if e["event"] == "rejects_not_counted")
    assert note.startswith(f"the reject file {tmp_path / 'gone.rejects.csv'} is gone")


def test_rejects_by_reason_says_when_the_file_has_no_error_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")

    assert rejects_by_reason(str(path)) == ({}, f"the reject file {path} has no error column; its rejects are not "
                                                 "counted by reason")


def test_rejects_by_reason_reads_long_fields_and_quoted_newlines(tmp_path):
    path = tmp_path / "r.csv"
    long_original = '"' + "x" * 300_000 + '"'
    path.write_text(HEADER + f"in.jsonl,1,1,,,not JSON,{long_original}\n"
                    'in.csv,2,2,a,"multi\nline","value \'multi\nline\' does not fit column a (int)",x\n')

    assert rejects_by_reason(str(path)) == ({"not JSON": 1, "value '…' does not fit column a (int)": 1}, None)


def test_a_reason_blanks_the_key_of_a_duplicate_key_message():
    assert reason_of("refused by the destination: Key (id)=(42) already exists.") == \
        "refused by the destination: Key (id)=(…) already exists."
    assert reason_of("") == "no reason given"
    assert reason_of("'ten' is not an integer", "qty") == "qty: '…' is not an integer"
    assert reason_of("invalid input", "id") == "id: invalid input"
    assert reason_of("value 'x' does not fit column qty (int64)", "qty") == "value '…' does not fit column qty (int64)"
    assert len(reason_of("x" * 1000)) == 300


def test_a_line_without_the_reject_files_columns_is_counted_and_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "in.csv,2,1,a,x,required value is missing,x\n"
                    "in.csv,3,2,a,x,extra,field,here\n"
                    "in.csv,4,3,a,y,required value is missing,y\n")

    counts, note = rejects_by_reason(str(path))

    assert counts == {"a: required value is missing": 2, "a line of the reject file that is not a reject": 1}
    assert note == (f"the reject file {path} has 1 line without its columns (line 3); they are counted as "
                    "'a line of the reject file that is not a reject'")


def test_an_empty_reject_file_counts_nothing(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER)

    assert rejects_by_reason(str(path)) == ({}, None)


def test_a_reject_longer_than_a_block_is_counted_row_by_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + 'in.jsonl,2,1,a,x,"value \'x\' does not fit column a (int)","' + "y" * 3_000_000 + '"\n'
                    "in.jsonl,3,2,a,z,value 'z' does not fit column a (int),z\n"
                    "in.jsonl,4,3,a,z,one,too,many\n")

    assert rejects_by_reason(str(path)) == (
        {"value '…' does not fit column a (int)": 2, "a line of the reject file that is not a reject": 1},
        f"the reject file {path} has 1 line without its columns (line 4); they are counted as "
        "'a line of the reject file that is not a reject'")
