from portl.state.ledger import FAILED, RUNNING, SUCCEEDED, Ledger


def test_a_run_is_recorded_with_its_counts_and_status(tmp_path):
    ledger = Ledger(str(tmp_path / ".portl"))
    record = ledger.start_run("customers", "/jobs/customers.yaml", "abc", {"rows_before": 0})
    assert ledger.latest("customers", "/jobs/customers.yaml").status == RUNNING
    ledger.finish_run(record.id, SUCCEEDED, {"read": 10, "inserted": 10})
    again = ledger.get(record.id)
    assert again.status == SUCCEEDED and again.counts["inserted"] == 10 and not again.unfinished


def test_runs_are_found_by_a_unique_id_prefix(tmp_path):
    ledger = Ledger(str(tmp_path))
    record = ledger.start_run("j", "/j.yaml", "h", {})
    assert ledger.get(record.id[:17]).id == record.id


def test_checkpoints_are_kept_per_partition(tmp_path):
    ledger = Ledger(str(tmp_path))
    record = ledger.start_run("j", "/j.yaml", "h", {})
    ledger.record_progress(record.id, {"0": ({"partition": "0", "position": {"offset": 10}, "rows": 5}, {"counts": {}})})
    ledger.record_progress(record.id, {"0": ({"partition": "0", "position": {"offset": 20}, "rows": 9}, {"counts": {}})})
    ledger.record_progress(record.id, {"1": ({"partition": "1", "position": {"offset": 99}, "rows": 1}, {"counts": {}})})
    got = ledger.get(record.id).checkpoints
    assert got["0"]["checkpoint"]["rows"] == 9 and set(got) == {"0", "1"}


def test_list_is_newest_first_and_filters_by_job(tmp_path):
    ledger = Ledger(str(tmp_path))
    a = ledger.start_run("a", "/a.yaml", "h", {})
    ledger.finish_run(a.id, FAILED, {}, "boom")
    ledger.start_run("b", "/b.yaml", "h", {})
    assert [r.job for r in ledger.list()] == ["b", "a"]
    assert [r.error for r in ledger.list(job="a")] == ["boom"]
