"""The Parquet connector: row-group reads, resume, partitions, and writes by atomic rename."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from portl.connectors import parquet
from portl.connectors.base import Checkpoint, WriteMode, WriteSpec
from portl.errors import SourceError, TerminalError

REPLACE = WriteSpec(mode=WriteMode.REPLACE)
APPEND = WriteSpec(mode=WriteMode.APPEND)


def make_file(tmp_path, rows=1000, row_group_size=100, name="data.parquet"):
    table = pa.table({"id": list(range(rows)), "name": [f"n{i}" for i in range(rows)]})
    pq.write_table(table, tmp_path / name, row_group_size=row_group_size)
    return parquet.open_source(parquet.Config(type="parquet", path=name), str(tmp_path))


def read_all(source, batch_rows=1000, start=None):
    return list(source.read(batch_rows, start))


def ids(chunks):
    return [i for chunk in chunks for i in chunk.data.column("id").to_pylist()]


def test_schema_and_estimate_come_from_the_file(tmp_path):
    source = make_file(tmp_path, rows=250)
    assert source.schema().names == ["id", "name"]
    assert source.schema().field("id").type == pa.int64()
    assert (source.estimate().rows, source.estimate().exact) == (250, True)


def test_batches_hold_batch_rows_across_row_groups(tmp_path):
    chunks = read_all(make_file(tmp_path, rows=1000, row_group_size=70), batch_rows=150)
    assert [c.data.num_rows for c in chunks] == [150] * 6 + [100]
    assert ids(chunks) == list(range(1000))
    assert [c.first_record for c in chunks[:2]] == [1, 151]


def test_resume_from_a_checkpoint_reads_exactly_the_remaining_rows(tmp_path):
    source = make_file(tmp_path, rows=1000, row_group_size=70)
    chunks = read_all(source, batch_rows=150)
    resumed = read_all(source, batch_rows=150, start=chunks[2].checkpoint)
    assert ids(chunks[:3]) + ids(resumed) == list(range(1000))
    assert resumed[0].first_record == 451


def test_partitions_are_row_group_ranges_covering_every_row_once(tmp_path):
    source = make_file(tmp_path, rows=1000, row_group_size=100)
    parts = source.partitions(3)
    assert len(parts) == 3
    seen = [i for part in parts for i in ids(read_all(source, batch_rows=64, start=part))]
    assert seen == list(range(1000))


def test_last_checkpoint_marks_the_partition_done(tmp_path):
    chunks = read_all(make_file(tmp_path, rows=300), batch_rows=100)
    assert [c.checkpoint.done for c in chunks] == [False, False, True]


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="source file not found"):
        parquet.open_source(parquet.Config(type="parquet", path="nope.parquet"), str(tmp_path))


def test_file_that_is_not_parquet_is_an_error(tmp_path):
    (tmp_path / "data.parquet").write_text("id,name\n1,a\n")
    with pytest.raises(SourceError, match="data.parquet is not a readable Parquet file"):
        parquet.open_source(parquet.Config(type="parquet", path="data.parquet"), str(tmp_path))


def test_file_without_rows_is_an_error_unless_allowed(tmp_path):
    pq.write_table(pa.table({"id": pa.array([], pa.int64())}), tmp_path / "data.parquet")
    with pytest.raises(SourceError, match="has no rows; set allow_empty: true"):
        parquet.open_source(parquet.Config(type="parquet", path="data.parquet"), str(tmp_path))
    source = parquet.open_source(parquet.Config(type="parquet", path="data.parquet", allow_empty=True), str(tmp_path))
    assert read_all(source) == []


# -- writing -----------------------------------------------------------------------------------


def sink_for(tmp_path, name="out.parquet", **options):
    return parquet.open_sink(parquet.Config(type="parquet", path=name, **options), str(tmp_path))


def test_written_file_reads_back_the_same_rows_and_types(tmp_path):
    sink = sink_for(tmp_path)
    batches = [
        pa.record_batch({"id": [1, 2], "when": pa.array([0, 1], pa.timestamp("ms"))}),
        pa.record_batch({"id": [3], "when": pa.array([2], pa.timestamp("ms"))}),
    ]
    sink.prepare(batches[0].schema, REPLACE, resuming=False)
    for batch in batches:
        with sink.transaction() as tx:
            sink.write(batch, REPLACE, tx)
    sink.finish("run-1")
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.schema.field("when").type == pa.timestamp("ms")
    assert back.column("id").to_pylist() == [1, 2, 3]
    assert sink.count_rows() is None  # nothing independent to count for a file (see ParquetSink.count_rows)


def test_final_file_appears_only_at_finish(tmp_path):
    sink = sink_for(tmp_path)
    sink.prepare(pa.schema([("id", pa.int64())]), REPLACE, resuming=False)
    with sink.transaction() as tx:
        sink.write(pa.record_batch({"id": [1]}), REPLACE, tx)
    assert not (tmp_path / "out.parquet").exists()
    assert (tmp_path / "out.parquet.portl-tmp").exists()
    sink.finish("run-1")
    assert (tmp_path / "out.parquet").exists()
    assert not (tmp_path / "out.parquet.portl-tmp").exists()


def test_failed_transaction_writes_nothing(tmp_path):
    sink = sink_for(tmp_path)
    sink.prepare(pa.schema([("id", pa.int64())]), REPLACE, resuming=False)
    with pytest.raises(RuntimeError):
        with sink.transaction() as tx:
            sink.write(pa.record_batch({"id": [1]}), REPLACE, tx)
            raise RuntimeError("boom")
    with sink.transaction() as tx:
        sink.write(pa.record_batch({"id": [2]}), REPLACE, tx)
    sink.finish("run-1")
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == [2]


def test_resume_starts_the_file_over(tmp_path):
    sink = sink_for(tmp_path)
    assert sink.capabilities.resumable is False
    assert sink.load_checkpoints("run-1") == {}


def test_append_is_allowed_only_while_the_file_does_not_exist(tmp_path):
    assert WriteMode.APPEND in sink_for(tmp_path).capabilities.modes
    pq.write_table(pa.table({"id": [1]}), tmp_path / "out.parquet")
    sink = sink_for(tmp_path)
    assert sink.capabilities.modes == frozenset({WriteMode.REPLACE})
    with pytest.raises(TerminalError, match="cannot append to the existing Parquet file out.parquet"):
        sink.prepare(pa.schema([("id", pa.int64())]), APPEND, resuming=False)


def test_compression_from_config_is_used(tmp_path):
    sink = sink_for(tmp_path, compression="snappy")
    sink.prepare(pa.schema([("id", pa.int64())]), REPLACE, resuming=False)
    with sink.transaction() as tx:
        sink.write(pa.record_batch({"id": [1]}), REPLACE, tx)
    sink.finish("run-1")
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.row_group(0).column(0).compression == "SNAPPY"


def test_checkpoint_after_the_last_chunk_resumes_to_nothing(tmp_path):
    source = make_file(tmp_path, rows=200, row_group_size=50)
    chunks = read_all(source, batch_rows=75)
    last = chunks[-1].checkpoint
    assert read_all(source, start=Checkpoint(last.partition, last.position, last.rows)) == []


def test_source_and_sink_fit_the_connector_seam(tmp_path):
    from portl.connectors.base import Sink, Source

    assert isinstance(make_file(tmp_path, rows=3), Source)
    assert isinstance(sink_for(tmp_path), Sink)


def test_uuid_and_json_columns_are_written_as_parquets_uuid_and_json_types(tmp_path):
    from portl.types import LogicalType, arrow_field, logical_of

    schema = pa.schema([arrow_field("u", LogicalType("uuid")), arrow_field("doc", LogicalType("json"))])
    batch = pa.record_batch([pa.array(["9f1c2f1e-7b5a-4c3e-8d2a-0123456789ab", None]), pa.array(['{"a": 1}', None])],
                            schema=schema)
    sink = sink_for(tmp_path)
    sink.prepare(schema, REPLACE, resuming=False)
    with sink.transaction() as tx:
        sink.write(batch, REPLACE, tx)
    sink.finish("run-1")
    physical = pq.ParquetFile(tmp_path / "out.parquet").schema
    assert [str(physical.column(i).logical_type) for i in range(2)] == ["UUID", "JSON"]
    source = parquet.open_source(parquet.Config(type="parquet", path="out.parquet"), str(tmp_path))
    assert [str(logical_of(f)) for f in source.schema()] == ["uuid", "json"]
    back = pq.read_table(tmp_path / "out.parquet")
    assert [str(v) if v else v for v in back.column("u").to_pylist()] == ["9f1c2f1e-7b5a-4c3e-8d2a-0123456789ab", None]
    assert back.column("doc").to_pylist() == ['{"a": 1}', None]


def test_unsigned_64_bit_columns_read_as_decimal_20_0(tmp_path):
    from portl.types import logical_of

    pq.write_table(pa.table({"n": pa.array([2**64 - 1], pa.uint64())}), tmp_path / "u.parquet")
    source = parquet.open_source(parquet.Config(type="parquet", path="u.parquet"), str(tmp_path))
    assert str(logical_of(source.schema().field("n"))) == "decimal(20,0)"
