"""The ledger's copy of checkpoints is written behind the writers, newest state only."""

from __future__ import annotations

import threading

import pytest

from portl.engine.ledger_sync import LedgerSync
from portl.state.ledger import Ledger


def test_closing_writes_each_partition_s_latest_checkpoint_and_the_counts(tmp_path):
    ledger = Ledger(str(tmp_path))
    run = ledger.start_run("job", "job.yaml", "hash", {})
    sync = LedgerSync(ledger, run.id)
    for n in range(1, 6):
        sync.checkpoint("0", {"offset": n}, {"n": n}, {"read": n})
    sync.checkpoint("1", {"offset": 9}, {"n": 9}, None)
    sync.close()
    record = ledger.get(run.id)
    assert record.checkpoints["0"]["checkpoint"] == {"offset": 5}
    assert record.checkpoints["1"]["checkpoint"] == {"offset": 9}
    assert record.counts == {"read": 5}
    ledger.close()


class BrokenLedger:
    def __init__(self):
        self.attempted = threading.Event()

    def record_progress(self, *args):
        self.attempted.set()
        raise OSError("disk full")


def test_a_failed_write_is_raised_to_the_next_commit_and_at_the_close():
    ledger = BrokenLedger()
    sync = LedgerSync(ledger, "run")  # type: ignore[arg-type]
    sync.checkpoint("0", {"offset": 1}, {}, None)
    assert ledger.attempted.wait(5)
    with pytest.raises(OSError, match="disk full"):
        sync.close()
    with pytest.raises(OSError, match="disk full"):
        sync.checkpoint("0", {"offset": 2}, {}, None)


def test_checkpoints_and_counts_are_written_in_one_transaction(tmp_path):
    ledger = Ledger(str(tmp_path))
    run = ledger.start_run("job", "job.yaml", "hash", {})
    commits = []
    ledger._conn.set_trace_callback(lambda statement: commits.append(statement) if statement == "COMMIT" else None)
    ledger.record_progress(run.id, {"0": ({"offset": 1}, {}), "1": ({"offset": 2}, {})}, {"read": 3})
    record = ledger.get(run.id)
    assert len(commits) == 1 and record.counts == {"read": 3}
    assert {p: c["checkpoint"] for p, c in record.checkpoints.items()} == {"0": {"offset": 1}, "1": {"offset": 2}}
    ledger.close()


def test_closing_twice_is_harmless(tmp_path):
    ledger = Ledger(str(tmp_path))
    sync = LedgerSync(ledger, ledger.start_run("job", "job.yaml", "hash", {}).id)
    sync.close()
    sync.close()
    ledger.close()
