"""The JSON lines connector: inferred schema, rejected lines, resume, partitions, writes."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json

import pyarrow as pa
import pytest

from portl.connectors import jsonl
from portl.connectors.base import Checkpoint, WriteMode, WriteSpec
from portl.errors import SourceError


def open_jsonl(tmp_path, content, name="data.jsonl", **options):
    (tmp_path / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return jsonl.open_source(jsonl.Config(type="jsonl", path=name, **options), str(tmp_path))


def read_all(source, batch_rows=1000, start=None):
    return list(source.read(batch_rows, start))


def rows_of(chunks):
    return [row for chunk in chunks for row in chunk.data.to_pylist()]


def lines_of(chunks):
    return [chunk.line_of(i) for chunk in chunks for i in range(chunk.data.num_rows)]


def numbered(count):
    return "".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(count))


def test_schema_is_inferred_from_the_first_rows(tmp_path):
    source = open_jsonl(tmp_path, '{"id": 1, "name": "a", "ok": true, "score": 1.5}\n')
    assert source.schema() == pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("ok", pa.bool_()), ("score", pa.float64())]
    )


def test_date_like_strings_and_all_null_fields_are_read_as_strings(tmp_path):
    source = open_jsonl(tmp_path, '{"day": "2024-01-02", "gone": null}\n{"day": "soon", "gone": "x"}\n')
    assert source.schema() == pa.schema([("day", pa.string()), ("gone", pa.string())])
    assert rows_of(read_all(source)) == [{"day": "2024-01-02", "gone": None}, {"day": "soon", "gone": "x"}]


def test_missing_fields_are_null(tmp_path):
    source = open_jsonl(tmp_path, '{"a": 1, "b": "x"}\n{"a": 2}\n')
    assert rows_of(read_all(source)) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_blank_lines_are_ignored_and_lines_stay_right(tmp_path):
    chunks = read_all(open_jsonl(tmp_path, '{"a": 1}\n\n   \n{"a": 2}\n'))
    assert rows_of(chunks) == [{"a": 1}, {"a": 2}]
    assert lines_of(chunks) == [1, 4]


def test_invalid_json_line_is_rejected_with_its_line_and_error(tmp_path):
    chunks = read_all(open_jsonl(tmp_path, '{"a": 1}\n{"a": 2,,}\n{"a": 3}\n'))
    assert rows_of(chunks) == [{"a": 1}, {"a": 3}]
    assert lines_of(chunks) == [1, 3]
    (reject,) = [r for c in chunks for r in c.rejects]
    assert (reject.line, reject.original, reject.source) == (2, '{"a": 2,,}', "data.jsonl")
    assert reject.error.startswith("not valid JSON: Expecting property name")


def test_line_that_is_not_an_object_is_rejected(tmp_path):
    chunks = read_all(open_jsonl(tmp_path, '{"a": 1}\n[1, 2]\n'))
    (reject,) = [r for c in chunks for r in c.rejects]
    assert (reject.line, reject.error) == (2, "not a JSON object but an array")


def test_value_that_does_not_fit_the_inferred_type_is_rejected(tmp_path):
    chunks = read_all(open_jsonl(tmp_path, '{"a": 1}\n{"a": "one"}\n{"a": 3}\n'))
    assert rows_of(chunks) == [{"a": 1}, {"a": 3}]
    (reject,) = [r for c in chunks for r in c.rejects]
    assert (reject.line, reject.record, reject.column, reject.value) == (2, 2, "a", "one")
    assert reject.error == "field a is a string here, but a number in the first rows, which set the types"


def test_a_type_change_in_a_later_batch_is_rejected_with_its_record_in_the_file(tmp_path):
    text = "".join(f'{{"a": {i}}}\n' for i in range(1, 6)) + '\n{"a": [6]}\n{"a": 7}\n'
    chunks = read_all(open_jsonl(tmp_path, text), batch_rows=3)
    (reject,) = [r for c in chunks for r in c.rejects]
    assert (reject.line, reject.record, reject.column, reject.value) == (7, 6, "a", [6])
    assert reject.error == "field a is an array here, but a number in the first rows, which set the types"


def test_field_first_seen_after_the_sample_is_noted(tmp_path):
    sample = numbered(50000)  # more than the 1 MiB the schema is inferred from
    source = open_jsonl(tmp_path, sample + '{"id": 1, "name": "x", "late": true}\n')
    rows = rows_of(read_all(source, batch_rows=5000))
    assert len(rows) == 50001
    assert "late" not in source.schema().names
    assert any("'late'" in note for note in source.notes)


def test_every_line_is_either_data_or_rejected(tmp_path):
    content = "".join('{"a": %d}\n' % i if i % 9 else "not json\n" for i in range(300))
    chunks = read_all(open_jsonl(tmp_path, content), batch_rows=20)
    assert sum(c.data.num_rows for c in chunks) + sum(len(c.rejects) for c in chunks) == 300
    assert sorted(r.line for c in chunks for r in c.rejects) == list(range(1, 301, 9))


def test_raw_rows_gives_the_original_lines(tmp_path):
    source = open_jsonl(tmp_path, '{"a": 1}\nbad\n{"a":   2}\n')
    (chunk,) = read_all(source)
    assert source.raw_rows(chunk, [1]) == {1: '{"a":   2}'}


def test_gzip_file_is_read(tmp_path):
    source = open_jsonl(tmp_path, gzip.compress(numbered(3).encode()), name="data.jsonl.gz")
    assert [r["id"] for r in rows_of(read_all(source))] == [0, 1, 2]


def test_invalid_utf8_names_the_line(tmp_path):
    with pytest.raises(SourceError, match=r"data.jsonl line 2: not valid utf-8 \(byte 0xe9\)"):
        open_jsonl(tmp_path, b'{"a": "x"}\n{"a": "\xe9"}\n')


def test_resume_from_a_checkpoint_reads_exactly_the_remaining_rows(tmp_path):
    source = open_jsonl(tmp_path, numbered(1000))
    chunks = read_all(source, batch_rows=60)
    assert len(chunks) > 5
    resumed = read_all(source, batch_rows=60, start=chunks[4].checkpoint)
    assert rows_of(chunks[:5]) + rows_of(resumed) == rows_of(chunks)
    assert lines_of(resumed)[0] == len(rows_of(chunks[:5])) + 1


def test_partitions_cover_every_row_exactly_once(tmp_path):
    source = open_jsonl(tmp_path, numbered(2000))
    parts = source.partitions(3)
    assert len(parts) == 3
    seen = []
    for part in parts:
        chunks = read_all(source, batch_rows=100, start=part)
        seen += [(row["id"], line) for row, line in zip(rows_of(chunks), lines_of(chunks))]
    assert seen == [(i, i + 1) for i in range(2000)]


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="source file not found"):
        jsonl.open_source(jsonl.Config(type="jsonl", path="nope.jsonl"), str(tmp_path))


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="data.jsonl is empty: no rows; set allow_empty: true"):
        open_jsonl(tmp_path, "\n \n")


def test_allow_empty_accepts_an_empty_file(tmp_path):
    source = open_jsonl(tmp_path, "", allow_empty=True)
    assert read_all(source) == []


def test_file_with_no_json_object_in_the_sample_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no line of the first 2 holds a JSON object"):
        open_jsonl(tmp_path, "nope\n[1]\n")


# -- writing -----------------------------------------------------------------------------------


def write_batches(tmp_path, batches, name="out.jsonl", mode=WriteMode.REPLACE):
    sink = jsonl.open_sink(jsonl.Config(type="jsonl", path=name), str(tmp_path))
    spec = WriteSpec(mode=mode)
    sink.prepare(batches[0].schema, spec, resuming=False)
    for n, batch in enumerate(batches):
        with sink.transaction() as tx:
            sink.write(batch, spec, tx)
            sink.save_checkpoint(tx, "run-1", Checkpoint("0", {"n": n}), {})
    sink.finish("run-1")
    return sink


def test_written_lines_hold_iso_dates_exact_decimals_and_base64_bytes(tmp_path):
    batch = pa.record_batch(
        {
            "day": pa.array([dt.date(2024, 1, 2)]),
            "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 600000)], pa.timestamp("us")),
            "price": pa.array([decimal.Decimal("1.50")], pa.decimal128(10, 2)),
            "raw": pa.array([b"\x01\x02"]),
            "note": pa.array([None], pa.string()),
        }
    )
    write_batches(tmp_path, [batch])
    assert (tmp_path / "out.jsonl").read_text() == (
        '{"day":"2024-01-02","at":"2024-01-02T03:04:05.600000","price":"1.50","raw":"AQI=","note":null}\n'
    )


def test_nested_values_stay_nested(tmp_path):
    batch = pa.RecordBatch.from_pylist([{"point": {"x": 1, "when": dt.date(2024, 1, 2)}, "tags": ["a", "b"]}])
    write_batches(tmp_path, [batch])
    assert (tmp_path / "out.jsonl").read_text() == '{"point":{"x":1,"when":"2024-01-02"},"tags":["a","b"]}\n'


def test_written_file_reads_back_the_same_rows(tmp_path):
    rows = [{"id": 1, "name": "Zoë", "tags": ["a"], "ok": True}, {"id": 2, "name": None, "tags": [], "ok": False}]
    sink = write_batches(tmp_path, [pa.RecordBatch.from_pylist(rows)])
    assert sink.count_rows() == 2
    back = jsonl.open_source(jsonl.Config(type="jsonl", path="out.jsonl"), str(tmp_path))
    # nested values come back as their JSON text, in a column tagged json
    assert rows_of(read_all(back)) == [{**r, "tags": json.dumps(r["tags"])} for r in rows]


def test_nested_objects_keep_exactly_their_own_keys(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "meta": {"a": 1}}\n\n{"id": 2, "meta": {"b": null}}\n{"id": 3}\n')
    source = jsonl.open_source(jsonl.Config(type="jsonl", path="in.jsonl"), str(tmp_path))
    assert source.schema().field("meta").metadata == {b"portl.type": b"json"}
    assert [r["meta"] for r in rows_of(read_all(source))] == ['{"a": 1}', '{"b": null}', None]


def test_not_a_number_is_written_as_text(tmp_path):
    write_batches(tmp_path, [pa.record_batch({"x": [float("nan"), 1.0]})])
    assert (tmp_path / "out.jsonl").read_text() == '{"x":"NaN"}\n{"x":1.0}\n'


def test_append_adds_lines_to_an_existing_file(tmp_path):
    (tmp_path / "out.jsonl").write_text('{"id":0}\n')
    write_batches(tmp_path, [pa.record_batch({"id": [1]})], mode=WriteMode.APPEND)
    assert (tmp_path / "out.jsonl").read_text() == '{"id":0}\n{"id":1}\n'


def test_source_and_sink_fit_the_connector_seam(tmp_path):
    from portl.connectors.base import Sink, Source

    assert isinstance(open_jsonl(tmp_path, '{"a": 1}\n'), Source)
    assert isinstance(jsonl.open_sink(jsonl.Config(type="jsonl", path="out.jsonl"), str(tmp_path)), Sink)


def test_nan_and_infinities_written_as_text_read_back_as_numbers_and_text_stays_text(tmp_path):
    batch = pa.record_batch({"ratio": pa.array([1.5, float("nan"), float("inf"), float("-inf"), None]),
                             "label": pa.array(["NaN", "Infinity", "x", "-Infinity", "y"])})
    write_batches(tmp_path, [batch])
    written = (tmp_path / "out.jsonl").read_text()
    assert '{"ratio":"NaN","label":"Infinity"}' in written  # the file stays valid JSON
    rows = rows_of(read_all(jsonl.open_source(jsonl.Config(type="jsonl", path="out.jsonl"), str(tmp_path))))
    ratios = [r["ratio"] for r in rows]
    assert ratios[0] == 1.5 and ratios[1] != ratios[1] and ratios[2:] == [float("inf"), float("-inf"), None]
    assert [r["label"] for r in rows] == ["NaN", "Infinity", "x", "-Infinity", "y"]


def test_a_nan_text_beside_a_lone_surrogate_does_not_stop_the_read(tmp_path):
    source = open_jsonl(tmp_path, '{"x": 1.5, "s": "a"}\n{"x": "NaN", "s": "\\ud800"}\n{"x": "-Infinity", "s": "b"}\n')
    chunks = read_all(source)
    rows, rejects = rows_of(chunks), [r for chunk in chunks for r in chunk.rejects]
    assert rows == [{"x": 1.5, "s": "a"}, {"x": float("-inf"), "s": "b"}]
    assert [r.line for r in rejects] == [2]  # the surrogate is Arrow's to refuse, with the line
