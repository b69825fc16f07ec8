"""Exactly-once file writes: truncate on rollback, sidecar checkpoints, rename at the end."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from portl.connectors.base import Checkpoint, WriteMode, WriteSpec
from portl.connectors.filesink import ByteFileSink, text_ready
from portl.errors import TerminalError

APPEND = WriteSpec(mode=WriteMode.APPEND)
REPLACE = WriteSpec(mode=WriteMode.REPLACE)
SCHEMA = pa.schema([("v", pa.string())])


class LinesSink(ByteFileSink):
    """The smallest byte sink: a header line, then one value per line."""

    format_label = "lines"

    def header(self, schema):
        return b"#" + ",".join(schema.names).encode() + b"\n"

    def encode(self, batch):
        return "".join(f"{v}\n" for v in batch.column(0).to_pylist()).encode()


class Boom(Exception):
    pass


def make(tmp_path, name="out.txt"):
    return LinesSink(str(tmp_path / name), name, compressed=False)


def batch(*values):
    return pa.record_batch({"v": list(values)})


def commit(sink, spec, values, run_id="run-1", partition="0", n=0):
    with sink.transaction() as tx:
        sink.write(batch(*values), spec, tx)
        sink.save_checkpoint(tx, run_id, Checkpoint(partition, {"n": n}, rows=n), {"loaded": n})


def test_exception_inside_a_transaction_cuts_the_file_back_to_the_last_commit(tmp_path):
    (tmp_path / "out.txt").write_text("#v\nold\n")
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["a", "b"])
    with pytest.raises(Boom):
        with sink.transaction() as tx:
            sink.write(batch("c", "d"), APPEND, tx)
            raise Boom()
    commit(sink, APPEND, ["e"], n=1)
    sink.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\nold\na\nb\ne\n"


def test_rolled_back_transaction_leaves_the_checkpoint_as_it_was(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["a"], n=1)
    with pytest.raises(Boom):
        with sink.transaction() as tx:
            sink.write(batch("b"), APPEND, tx)
            sink.save_checkpoint(tx, "run-1", Checkpoint("0", {"n": 2}, rows=2), {})
            raise Boom()
    checkpoint, state = sink.load_checkpoints("run-1")["0"]
    assert checkpoint.position == {"n": 1}
    assert state == {"loaded": 1}


def test_sidecar_holds_run_size_and_partition_checkpoints(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, REPLACE, resuming=False)
    commit(sink, REPLACE, ["a"], partition="0", n=1)
    commit(sink, REPLACE, ["b"], partition="1", n=1)
    side = json.loads((tmp_path / "out.txt.portl-checkpoint.json").read_text())
    assert side["run_id"] == "run-1"
    assert side["data_file"] == "out.txt.portl-tmp"
    assert side["size"] == len("#v\na\nb\n")
    assert sorted(side["partitions"]) == ["0", "1"]


def test_checkpoints_of_another_run_are_not_loaded(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, REPLACE, resuming=False)
    commit(sink, REPLACE, ["a"], run_id="run-1", n=1)
    sink.close()
    reopened = make(tmp_path)
    assert reopened.load_checkpoints("run-2") == {}
    assert reopened.load_checkpoints("run-1")["0"][0] == Checkpoint("0", {"n": 1}, rows=1)


def test_resume_truncates_what_was_written_after_the_last_commit(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["a"], n=1)
    sink.close()  # the process dies mid-batch, leaving half a batch behind
    with open(tmp_path / "out.txt", "ab") as f:
        f.write(b"half-writ")
    resumed = make(tmp_path)
    assert resumed.load_checkpoints("run-1")["0"][0].position == {"n": 1}
    resumed.prepare(SCHEMA, APPEND, resuming=True)
    commit(resumed, APPEND, ["b"], n=2)
    resumed.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\na\nb\n"


def test_resume_of_a_replace_continues_the_temp_file(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, REPLACE, resuming=False)
    commit(sink, REPLACE, ["a"], n=1)
    sink.close()
    with open(tmp_path / "out.txt.portl-tmp", "ab") as f:
        f.write(b"garbage")
    resumed = make(tmp_path)
    resumed.prepare(SCHEMA, REPLACE, resuming=True)
    commit(resumed, REPLACE, ["b"], n=2)
    resumed.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\na\nb\n"


def test_crash_before_the_first_commit_resumes_from_the_prepared_file(tmp_path):
    (tmp_path / "out.txt").write_text("#v\nold\n")
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    with open(tmp_path / "out.txt", "ab") as f:
        f.write(b"never committed\n")
    sink.close()
    resumed = make(tmp_path)
    resumed.prepare(SCHEMA, APPEND, resuming=True)
    resumed.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\nold\n"


def test_replace_renames_the_temp_file_only_at_finish(tmp_path):
    (tmp_path / "out.txt").write_text("#v\nprevious\n")
    sink = make(tmp_path)
    sink.prepare(SCHEMA, REPLACE, resuming=False)
    commit(sink, REPLACE, ["new"])
    assert (tmp_path / "out.txt").read_text() == "#v\nprevious\n"
    assert (tmp_path / "out.txt.portl-tmp").read_text() == "#v\nnew\n"
    sink.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\nnew\n"
    assert not (tmp_path / "out.txt.portl-tmp").exists()


def test_sidecar_is_removed_at_finish(tmp_path):
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["a"])
    assert (tmp_path / "out.txt.portl-checkpoint.json").exists()
    sink.finish("run-1")
    assert not (tmp_path / "out.txt.portl-checkpoint.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_a_fresh_run_discards_an_interrupted_runs_temp_file(tmp_path):
    first = make(tmp_path)
    first.prepare(SCHEMA, REPLACE, resuming=False)
    commit(first, REPLACE, ["stale"])
    first.close()
    second = make(tmp_path)
    second.prepare(SCHEMA, REPLACE, resuming=False)
    assert second.load_checkpoints("run-1") == {}
    commit(second, REPLACE, ["fresh"], run_id="run-2")
    second.finish("run-2")
    assert (tmp_path / "out.txt").read_text() == "#v\nfresh\n"


def test_append_starts_a_new_line_when_the_file_lacks_a_final_newline(tmp_path):
    (tmp_path / "out.txt").write_text("#v\nold")
    sink = make(tmp_path)
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["new"])
    sink.finish("run-1")
    assert (tmp_path / "out.txt").read_text() == "#v\nold\nnew\n"


def test_append_to_a_missing_file_creates_it_with_a_header(tmp_path):
    sink = make(tmp_path, "sub/out.txt")
    sink.prepare(SCHEMA, APPEND, resuming=False)
    commit(sink, APPEND, ["a"])
    sink.finish("run-1")
    assert (tmp_path / "sub" / "out.txt").read_text() == "#v\na\n"


def test_writing_before_prepare_is_an_error(tmp_path):
    with pytest.raises(TerminalError, match="must be prepared"):
        with make(tmp_path).transaction():
            pass


def test_plan_names_the_temp_file_and_the_sidecar(tmp_path):
    plan = make(tmp_path).plan(SCHEMA, REPLACE)
    assert plan.target == "out.txt"
    assert "out.txt.portl-tmp" in plan.ddl[0]
    assert "out.txt.portl-checkpoint.json" in plan.per_batch[0]


def test_text_ready_for_json_writes_timestamps_in_iso_form_and_binary_as_base64():
    import datetime as dt

    ready = text_ready(
        pa.record_batch(
            {
                "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("s")),
                "raw": pa.array([b"\x00\xff"]),
                "tags": pa.array([["a", "b"]]),
            }
        )
    )
    assert ready.to_pylist() == [{"ts": "2024-01-02T03:04:05", "raw": "AP8=", "tags": ["a", "b"]}]


def test_text_ready_for_csv_writes_nested_values_as_json_text():
    ready = text_ready(pa.record_batch({"tags": pa.array([["a", "b"], None])}), csv=True)
    assert ready.column(0).to_pylist() == ['["a", "b"]', None]


def test_starting_over_undoes_an_interrupted_append(tmp_path):
    (tmp_path / "out.txt").write_text("#v\nold\n")
    first = make(tmp_path)
    first.prepare(SCHEMA, APPEND, resuming=False)
    commit(first, APPEND, ["a", "b"], n=2)
    first.close()  # interrupted; the next run starts over instead of resuming
    second = make(tmp_path)
    second.prepare(SCHEMA, APPEND, resuming=False)
    commit(second, APPEND, ["a", "b", "c"], run_id="run-2", n=3)
    second.finish("run-2")
    assert (tmp_path / "out.txt").read_text() == "#v\nold\na\nb\nc\n"
