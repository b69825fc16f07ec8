"""The CSV/TSV connector: what a file reads as, where each row came from, and how it is written."""

from __future__ import annotations

import gzip
import os

import pyarrow as pa
import pytest

from portl.connectors import csv
from portl.connectors.base import Checkpoint, WriteMode, WriteSpec
from portl.errors import SourceError, TerminalError


def write(tmp_path, content, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return name


def open_csv(tmp_path, content, name="data.csv", **options):
    write(tmp_path, content, name)
    options.setdefault("type", "csv")
    return csv.open_source(csv.Config(path=name, **options), str(tmp_path))


def read_all(source, batch_rows=1000, start=None):
    return list(source.read(batch_rows, start))


def rows_of(chunks):
    return [row for chunk in chunks for row in chunk.data.to_pylist()]


def lines_of(chunks):
    return [chunk.line_of(i) for chunk in chunks for i in range(chunk.data.num_rows)]


def numbered_csv(count, extra=""):
    return "id,name,score\n" + "".join(f"{i},name {i}{extra},{i * 7}\n" for i in range(count))


# -- what a file reads as ----------------------------------------------------------------------


def test_header_names_become_string_columns(tmp_path):
    source = open_csv(tmp_path, "id,name\n1,ann\n2,bob\n")
    assert source.schema() == pa.schema([("id", pa.string()), ("name", pa.string())])
    assert rows_of(read_all(source)) == [{"id": "1", "name": "ann"}, {"id": "2", "name": "bob"}]


def test_file_without_header_gets_numbered_column_names(tmp_path):
    source = open_csv(tmp_path, "1,ann\n2,bob\n", header=False)
    assert source.schema().names == ["column_1", "column_2"]
    assert rows_of(read_all(source))[0] == {"column_1": "1", "column_2": "ann"}


def test_columns_name_a_file_without_header(tmp_path):
    source = open_csv(tmp_path, "1,ann\n", header=False, columns=["id", "name"])
    assert rows_of(read_all(source)) == [{"id": "1", "name": "ann"}]


def test_columns_rename_the_header(tmp_path):
    source = open_csv(tmp_path, "a,b\n1,ann\n", columns=["id", "name"])
    assert rows_of(read_all(source)) == [{"id": "1", "name": "ann"}]


def test_columns_must_match_the_header_field_count(tmp_path):
    with pytest.raises(SourceError, match=r"`columns:` lists 3 names but the header on line 1 has 2 fields"):
        open_csv(tmp_path, "a,b\n1,2\n", columns=["x", "y", "z"])


def test_tsv_splits_on_tabs(tmp_path):
    source = open_csv(tmp_path, "id\tnote\n1\ta, b\n", name="data.tsv", type="tsv")
    assert rows_of(read_all(source)) == [{"id": "1", "note": "a, b"}]


def test_custom_delimiter(tmp_path):
    source = open_csv(tmp_path, "id;note\n1;a,b\n", delimiter=";")
    assert rows_of(read_all(source)) == [{"id": "1", "note": "a,b"}]


def test_quoted_fields_keep_delimiters_newlines_and_doubled_quotes(tmp_path):
    source = open_csv(tmp_path, 'id,note\n1,"a, b"\n2,"two\nlines"\n3,"say ""hi"""\n')
    assert [r["note"] for r in rows_of(read_all(source))] == ["a, b", "two\nlines", 'say "hi"']


def test_empty_unquoted_field_is_null_and_quoted_empty_field_is_empty_string(tmp_path):
    source = open_csv(tmp_path, 'a,b\n,""\n')
    assert rows_of(read_all(source)) == [{"a": None, "b": ""}]


def test_null_values_are_read_as_null(tmp_path):
    source = open_csv(tmp_path, "a,b\nNULL,\\N\nx,\n", null_values=["NULL", "\\N"])
    assert rows_of(read_all(source)) == [{"a": None, "b": None}, {"a": "x", "b": ""}]


def test_escape_char_escapes_quotes_inside_quoted_fields(tmp_path):
    source = open_csv(tmp_path, 'a,b\n1,"say \\"hi\\""\n2,"x\\\\"\n', escape_char="\\")
    assert [r["b"] for r in rows_of(read_all(source))] == ['say "hi"', "x\\"]


def test_quote_inside_an_unquoted_field_is_literal(tmp_path):
    source = open_csv(tmp_path, 'id,size\n1,12" screen\n2,15"\n3,"quoted"\n')
    assert [r["size"] for r in rows_of(read_all(source))] == ['12" screen', '15"', "quoted"]


def test_quote_char_null_reads_quotes_as_text(tmp_path):
    source = open_csv(tmp_path, 'a,b\n"x",y\n', quote_char=None)
    assert rows_of(read_all(source)) == [{"a": '"x"', "b": "y"}]


def test_crlf_line_endings_are_not_part_of_values(tmp_path):
    source = open_csv(tmp_path, "a,b\r\n1,2\r\n3,4\r\n")
    assert source.schema().names == ["a", "b"]
    assert rows_of(read_all(source)) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_skip_rows_skips_lines_before_the_header(tmp_path):
    source = open_csv(tmp_path, "exported by tool\n\nid\n7\n", skip_rows=2)
    chunks = read_all(source)
    assert rows_of(chunks) == [{"id": "7"}]
    assert lines_of(chunks) == [4]


def test_gzip_file_is_read_through_gzip(tmp_path):
    source = open_csv(tmp_path, gzip.compress(b"id,name\n1,ann\n"), name="data.csv.gz")
    assert rows_of(read_all(source)) == [{"id": "1", "name": "ann"}]


def test_latin1_file_is_decoded(tmp_path):
    source = open_csv(tmp_path, "name\nJos\xe9\n".encode("latin-1"), encoding="latin-1")
    assert rows_of(read_all(source)) == [{"name": "José"}]


def test_utf16_file_is_transcoded(tmp_path):
    source = open_csv(tmp_path, "id,name\n1,Zoë\n2,\"a\nb\"\n".encode("utf-16"), encoding="utf-16")
    chunks = read_all(source)
    assert rows_of(chunks) == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "a\nb"}]
    assert lines_of(chunks) == [2, 3]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    source = open_csv(tmp_path, b"\xef\xbb\xbfid,name\n1,ann\n")
    assert source.schema().names == ["id", "name"]


def test_invalid_utf8_names_the_line_and_byte(tmp_path):
    source = open_csv(tmp_path, b"id,name\n1,ann\n2,Jos\xe9\n")
    with pytest.raises(SourceError) as caught:
        read_all(source)
    assert str(caught.value) == (
        "data.csv line 3: not valid utf-8 (byte 0xe9); set `encoding:` on the source, e.g. latin-1"
    )


def test_invalid_byte_in_the_header_names_line_one(tmp_path):
    with pytest.raises(SourceError, match=r"data.csv line 1: not valid utf-8 \(byte 0xff\)"):
        open_csv(tmp_path, b"id,n\xffme\n1,2\n")


# -- rows the parser cannot use ----------------------------------------------------------------


def test_ragged_rows_are_rejected_with_line_count_and_text(tmp_path):
    source = open_csv(tmp_path, "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    chunks = read_all(source)
    rejects = [r for chunk in chunks for r in chunk.rejects]
    assert [(r.line, r.record, r.error, r.original, r.source) for r in rejects] == [
        (3, 2, "expected 3 fields, found 2", "4,5", "data.csv"),
        (4, 3, "expected 3 fields, found 4", "6,7,8,9", "data.csv"),
    ]
    assert [r["a"] for r in rows_of(chunks)] == ["1", "10"]
    assert lines_of(chunks) == [2, 5]


def test_every_row_is_either_data_or_rejected(tmp_path):
    body = "".join("1,2\n" if i % 10 else "1,2,3\n" for i in range(500))
    chunks = read_all(open_csv(tmp_path, "a,b\n" + body), batch_rows=37)
    assert sum(c.data.num_rows for c in chunks) == 450
    assert sum(len(c.rejects) for c in chunks) == 50
    assert chunks[-1].checkpoint.rows == 500


# -- where each row came from ------------------------------------------------------------------


def test_line_numbers_count_the_lines_of_multiline_quoted_fields(tmp_path):
    source = open_csv(tmp_path, 'id,note\n1,"a\nb\nc"\n2,x\n3,"d\ne"\n4,y\n')
    assert lines_of(read_all(source)) == [2, 5, 6, 8]


def test_line_numbers_skip_blank_lines(tmp_path):
    source = open_csv(tmp_path, "id,x\n1,a\n\n2,b\n\n\n3,c\n")
    chunks = read_all(source)
    assert [r["id"] for r in rows_of(chunks)] == ["1", "2", "3"]
    assert lines_of(chunks) == [2, 4, 7]


def test_lines_stay_right_across_blocks_with_quoted_newlines_and_stray_quotes(tmp_path):
    lines, expected, line = ["id,v"], [], 2
    for i in range(400):
        if i % 7 == 0:
            value, text = 'size 12"', f'{i},size 12"'
        elif i % 5 == 0:
            value, text = f"two\nlines {i}", f'{i},"two\nlines {i}"'
        else:
            value, text = f"plain {i}", f"{i},plain {i}"
        lines.append(text)
        expected.append(({"id": str(i), "v": value}, line))
        line += text.count("\n") + 1
    chunks = read_all(open_csv(tmp_path, "\n".join(lines) + "\n"), batch_rows=9)
    assert len(chunks) > 10
    assert list(zip(rows_of(chunks), lines_of(chunks))) == expected
    assert not any(c.rejects for c in chunks)


def test_raw_rows_gives_the_original_text_of_rows(tmp_path):
    source = open_csv(tmp_path, 'id,note\n1,plain\n2,bad\n3,"two\nlines"\n4,x,y\n5,"q"\n')
    (chunk,) = read_all(source)
    assert source.raw_rows(chunk, [0, 2, 3]) == {0: "1,plain", 2: '3,"two\nlines"', 3: '5,"q"'}


def test_first_record_counts_data_records(tmp_path):
    chunks = read_all(open_csv(tmp_path, numbered_csv(100)), batch_rows=10)
    assert [c.first_record for c in chunks[:2]] == [1, chunks[0].data.num_rows + 1]


# -- resume and partitions ---------------------------------------------------------------------


def test_resume_from_a_checkpoint_reads_exactly_the_remaining_rows(tmp_path):
    source = open_csv(tmp_path, numbered_csv(1000))
    chunks = read_all(source, batch_rows=50)
    assert len(chunks) > 5
    k = 3
    resumed = read_all(source, batch_rows=50, start=chunks[k].checkpoint)
    assert rows_of(chunks[: k + 1]) + rows_of(resumed) == rows_of(chunks)
    assert lines_of(resumed)[0] == lines_of(chunks)[len(rows_of(chunks[: k + 1]))]


def test_resume_of_a_gzip_file_skips_what_was_read(tmp_path):
    source = open_csv(tmp_path, gzip.compress(numbered_csv(500).encode()), name="data.csv.gz")
    chunks = read_all(source, batch_rows=40)
    resumed = read_all(source, batch_rows=40, start=chunks[1].checkpoint)
    assert rows_of(chunks[:2]) + rows_of(resumed) == rows_of(chunks)


def test_last_checkpoint_marks_the_partition_done(tmp_path):
    chunks = read_all(open_csv(tmp_path, numbered_csv(10)))
    assert chunks[-1].checkpoint.done
    assert read_all(open_csv(tmp_path, numbered_csv(10)), start=chunks[-1].checkpoint) == []


def test_partitions_cover_every_row_exactly_once_with_right_lines(tmp_path):
    source = open_csv(tmp_path, numbered_csv(3000))
    parts = source.partitions(4)
    assert [p.partition for p in parts] == ["0", "1", "2", "3"]
    seen = []
    for part in parts:
        chunks = read_all(source, batch_rows=100, start=part)
        seen += [(row["id"], line) for row, line in zip(rows_of(chunks), lines_of(chunks))]
    assert seen == [(str(i), i + 2) for i in range(3000)]


def test_one_partition_is_the_whole_file(tmp_path):
    source = open_csv(tmp_path, numbered_csv(20))
    (whole,) = source.partitions(1)
    assert len(rows_of(read_all(source, start=whole))) == 20


def test_file_with_quoted_newlines_is_one_partition_and_says_why(tmp_path):
    source = open_csv(tmp_path, 'id,note\n1,"a\nb"\n' + numbered_csv(200)[14:].replace(",name", ",n"))
    assert len(source.partitions(4)) == 1
    assert any("workers: 1" in note for note in source.notes)


def test_gzip_file_is_one_partition(tmp_path):
    source = open_csv(tmp_path, gzip.compress(numbered_csv(200).encode()), name="data.csv.gz")
    assert len(source.partitions(3)) == 1
    assert any("compressed" in note for note in source.notes)


def test_estimate_gives_file_size_and_approximate_rows(tmp_path):
    source = open_csv(tmp_path, numbered_csv(1000))
    estimate = source.estimate()
    assert estimate.bytes == os.path.getsize(tmp_path / "data.csv")
    assert 900 <= estimate.rows <= 1100


# -- files that cannot be read -----------------------------------------------------------------


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match=r"source file not found: .*nope\.csv"):
        csv.open_source(csv.Config(type="csv", path="nope.csv"), str(tmp_path))


def test_directory_is_an_error(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(SourceError, match="is a directory"):
        csv.open_source(csv.Config(type="csv", path="dir.csv"), str(tmp_path))


def test_unreadable_file_is_an_error(tmp_path, monkeypatch):
    from portl.connectors import blocks

    write(tmp_path, "a\n1\n")

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(blocks, "open", refuse, raising=False)  # root could read a chmod 0 file
    with pytest.raises(SourceError, match="cannot read source file .*data.csv: Permission denied"):
        csv.open_source(csv.Config(type="csv", path="data.csv"), str(tmp_path))


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match=r"^data.csv is empty: no header and no rows$"):
        open_csv(tmp_path, "")


def test_whitespace_only_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="is empty: no header and no rows"):
        open_csv(tmp_path, " \n\n  \n")


def test_header_only_file_is_an_error(tmp_path):
    with pytest.raises(SourceError) as caught:
        open_csv(tmp_path, "id,name\n")
    assert str(caught.value) == (
        "data.csv has a header but no data rows; set allow_empty: true on the source if an empty load is expected"
    )


def test_allow_empty_accepts_a_header_only_file(tmp_path):
    source = open_csv(tmp_path, "id,name\n", allow_empty=True)
    assert source.schema().names == ["id", "name"]
    assert read_all(source) == []
    assert source.estimate().rows == 0


def test_duplicate_header_names_are_an_error(tmp_path):
    with pytest.raises(SourceError, match=r"data.csv line 1: the header repeats the column names id"):
        open_csv(tmp_path, "id,name,id\n1,2,3\n")


def test_empty_header_name_is_an_error(tmp_path):
    with pytest.raises(SourceError, match=r"data.csv line 2: column 2 of the header has no name"):
        open_csv(tmp_path, "junk\nid,,x\n1,2,3\n", skip_rows=1)


def test_bare_carriage_return_line_endings_are_an_error(tmp_path):
    with pytest.raises(SourceError, match="bare carriage return"):
        open_csv(tmp_path, "a,b\r1,2\r3,4\r")


def test_config_rejects_a_multi_character_delimiter():
    with pytest.raises(ValueError, match="exactly one character"):
        csv.Config(type="csv", path="x.csv", delimiter="||")


# -- writing -----------------------------------------------------------------------------------


def sink_for(tmp_path, name="out.csv", **options):
    options.setdefault("type", "csv")
    return csv.open_sink(csv.Config(path=name, **options), str(tmp_path))


def load(sink, batches, mode=WriteMode.REPLACE, run_id="run-1"):
    spec = WriteSpec(mode=mode)
    sink.prepare(batches[0].schema, spec, resuming=False)
    for n, batch in enumerate(batches):
        with sink.transaction() as tx:
            sink.write(batch, spec, tx)
            sink.save_checkpoint(tx, run_id, Checkpoint("0", {"n": n}), {})
    sink.finish(run_id)


def test_written_csv_keeps_null_apart_from_empty_string(tmp_path):
    sink = sink_for(tmp_path)
    load(sink, [pa.record_batch({"id": [1, 2], "note": [None, ""]})])
    assert (tmp_path / "out.csv").read_text() == 'id,note\n1,\n2,""\n'
    back = rows_of(read_all(csv.open_source(csv.Config(type="csv", path="out.csv"), str(tmp_path))))
    assert back == [{"id": "1", "note": None}, {"id": "2", "note": ""}]


def test_written_csv_has_dates_times_and_decimals_in_iso_text(tmp_path):
    import datetime as dt
    import decimal

    batch = pa.record_batch(
        {
            "d": pa.array([dt.date(2024, 1, 2)]),
            "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("s")),
            "amount": pa.array([decimal.Decimal("1.50")], pa.decimal128(10, 2)),
        }
    )
    load(sink_for(tmp_path), [batch])
    assert (tmp_path / "out.csv").read_text() == "d,ts,amount\n2024-01-02,2024-01-02 03:04:05,1.50\n"


def test_written_tsv_uses_tabs(tmp_path):
    load(sink_for(tmp_path, "out.tsv", type="tsv"), [pa.record_batch({"a": [1], "b": [2]})])
    assert (tmp_path / "out.tsv").read_text() == "a\tb\n1\t2\n"


def test_append_to_a_file_with_other_columns_is_refused(tmp_path):
    write(tmp_path, "x,y\n1,2\n", "out.csv")
    sink = sink_for(tmp_path)
    with pytest.raises(TerminalError, match="already has the columns x, y, but this load writes id"):
        sink.prepare(pa.schema([("id", pa.int64())]), WriteSpec(mode=WriteMode.APPEND), resuming=False)


def test_append_adds_rows_after_the_existing_ones_without_a_second_header(tmp_path):
    write(tmp_path, "id\n1", "out.csv")
    load(sink_for(tmp_path), [pa.record_batch({"id": [2, 3]})], mode=WriteMode.APPEND)
    assert (tmp_path / "out.csv").read_text() == "id\n1\n2\n3\n"


def test_table_info_lists_the_columns_of_an_existing_file(tmp_path):
    write(tmp_path, "id,name\n1,a\n", "out.csv")
    info = sink_for(tmp_path).table_info()
    assert [c.name for c in info.columns] == ["id", "name"]



def test_table_info_of_a_file_an_unfinished_run_created_is_none_as_it_was_for_that_run(tmp_path):
    # A resumed run plans as the run that created the file did: its columns keep their types
    # (bytes in base64), instead of becoming the text columns of an existing file.
    sink = sink_for(tmp_path)
    sink.prepare(pa.schema([("id", pa.int64())]), WriteSpec(mode=WriteMode.APPEND), resuming=False)
    with sink.transaction() as tx:
        sink.write(pa.record_batch({"id": [1]}), WriteSpec(mode=WriteMode.APPEND), tx)
    sink.close()
    assert (tmp_path / "out.csv").read_text() == "id\n1\n" and sink_for(tmp_path).table_info() is None
    write(tmp_path, "id\n0\n", "before.csv")
    before = sink_for(tmp_path, "before.csv")
    before.prepare(pa.schema([("id", pa.int64())]), WriteSpec(mode=WriteMode.APPEND), resuming=False)
    before.close()
    assert [c.name for c in sink_for(tmp_path, "before.csv").table_info().columns] == ["id"]

def test_count_rows_counts_records_not_lines(tmp_path):
    sink = sink_for(tmp_path)
    load(sink, [pa.record_batch({"note": ["a\nb", "c", None]})])
    assert sink.count_rows() == 3


def test_gzip_output_round_trips(tmp_path):
    sink = sink_for(tmp_path, "out.csv.gz")
    load(sink, [pa.record_batch({"id": [1]}), pa.record_batch({"id": [2]})])
    assert gzip.decompress((tmp_path / "out.csv.gz").read_bytes()) == b"id\n1\n2\n"
    assert sink.count_rows() == 2


def test_latin1_output_is_encoded(tmp_path):
    load(sink_for(tmp_path, encoding="latin-1"), [pa.record_batch({"name": ["José"]})])
    assert (tmp_path / "out.csv").read_bytes() == 'name\n"José"\n'.encode("latin-1")


def test_upsert_is_not_a_csv_mode(tmp_path):
    sink = sink_for(tmp_path)
    assert WriteMode.UPSERT not in sink.capabilities.modes
    with pytest.raises(TerminalError, match="cannot be written with mode upsert"):
        sink.prepare(pa.schema([("id", pa.int64())]), WriteSpec(mode=WriteMode.UPSERT), resuming=False)


def test_blank_line_in_a_one_column_file_is_a_null(tmp_path):
    chunks = read_all(open_csv(tmp_path, "note\na\n\nb\n"))
    assert rows_of(chunks) == [{"note": "a"}, {"note": None}, {"note": "b"}]
    assert lines_of(chunks) == [2, 3, 4]


def random_csv(seed, rows, escape=False):
    """A CSV file mixing every quoting form, with the values and lines Arrow must give back."""
    import random

    rng = random.Random(seed)
    text, expected, line = ["a,b,c\n"], [], 2
    for i in range(rows):
        if rng.random() < 0.05:
            text.append("\n")  # a blank line: skipped, but counted in line numbers
            line += 1
        values, fields = [], []
        for _ in range(3):
            kind = rng.choice(["plain", "stray", "quoted", "multiline", "doubled", "empty", "escaped"])
            if kind == "escaped" and not escape:
                kind = "plain"
            word = f"w{rng.randint(0, 999)}"
            if kind == "plain":
                value, field = word, word
            elif kind == "stray":
                value = field = word + '" in'
            elif kind == "quoted":
                value, field = f"{word}, x", f'"{word}, x"'
            elif kind == "multiline":
                value, field = f"{word}\nnext\n", f'"{word}\nnext\n"'
            elif kind == "doubled":
                value, field = f'say "{word}"', f'"say ""{word}"""'
            elif kind == "escaped":
                value, field = f'e"{word}\nz', f'"e\\"{word}\\\nz"'
            else:
                value, field = None, ""
            values.append(value)
            fields.append(field)
        record = ",".join(fields) + "\n"
        text.append(record)
        expected.append(({"a": values[0], "b": values[1], "c": values[2]}, line))
        line += record.count("\n")
    return "".join(text), expected


@pytest.mark.parametrize("batch_rows", [1, 7, 50, 1000])
@pytest.mark.parametrize("escape", [False, True])
def test_rows_and_lines_match_whatever_the_block_cuts(tmp_path, batch_rows, escape):
    text, expected = random_csv(seed=batch_rows, rows=600, escape=escape)
    source = open_csv(tmp_path, text, escape_char="\\" if escape else None)
    chunks = read_all(source, batch_rows=batch_rows)
    assert not any(c.rejects for c in chunks)
    assert list(zip(rows_of(chunks), lines_of(chunks))) == expected
    middle = chunks[len(chunks) // 2].checkpoint
    resumed = read_all(source, batch_rows=batch_rows, start=middle)
    assert rows_of(chunks[: len(chunks) // 2 + 1]) + rows_of(resumed) == rows_of(chunks)


def test_source_and_sink_fit_the_connector_seam(tmp_path):
    from portl.connectors.base import Sink, Source

    assert isinstance(open_csv(tmp_path, "a\n1\n"), Source)
    assert isinstance(sink_for(tmp_path), Sink)


def test_byte_undefined_in_cp1252_names_the_line(tmp_path):
    source = open_csv(tmp_path, b"id,name\n1,caf\xe9\n2,bad\x81\n", encoding="cp1252")
    with pytest.raises(SourceError, match=r"data.csv line 3: not valid cp1252 \(byte 0x81\); set `encoding:`"):
        read_all(source)


def test_plan_of_an_append_shows_a_header_mismatch(tmp_path):
    write(tmp_path, "x\n1\n", "out.csv")
    with pytest.raises(TerminalError, match="already has the columns x"):
        sink_for(tmp_path).plan(pa.schema([("id", pa.int64())]), WriteSpec(mode=WriteMode.APPEND))
