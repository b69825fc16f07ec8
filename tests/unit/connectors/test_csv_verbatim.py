"""A CSV block goes verbatim only when a database would read it as Portl reads it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from portl.connectors.base import VerbatimRequest
from portl.connectors.csv import Config, CsvSource
from portl.connectors.csv_verbatim import BlockCheck
from portl.types import parse_type

NAMES = ["id", "name", "amount"]
TYPED = VerbatimRequest((("id", parse_type("bigint")), ("amount", parse_type("decimal(10,2)"))))


def check(request: VerbatimRequest = TYPED, names: list[str] = NAMES) -> BlockCheck:
    return BlockCheck(names, ",", '"', "", request)


def rows(block: bytes, request: VerbatimRequest = TYPED, names: list[str] = NAMES, final: bool = False):
    return check(request, names).rows(block, block.count(b"\n"), final)


def test_a_block_of_canonical_values_goes_verbatim_with_its_record_count():
    assert rows(b'1,ann,1.50\n2,"bob, jr",-2\n3,,\n') == 3


def test_quoted_fields_with_doubled_quotes_go_verbatim():
    assert rows(b'1,"say ""hi""",1.00\n2,"",2\n') == 2


def test_a_final_line_without_a_newline_counts_as_a_record():
    assert rows(b"1,ann,1.50\n2,bob,2", final=True) == 2


def test_a_quote_inside_an_unquoted_field_keeps_the_block_off_the_verbatim_path():
    # Arrow reads 5" screen as text; a database toggles quoting at that quote and swallows the rest.
    assert rows(b'1,5" screen,1.00\n2,bob,2.00\n') is None


def test_text_after_a_closing_quote_keeps_the_block_off_the_verbatim_path():
    assert rows(b'1,"ann"x,1.00\n') is None


def test_a_quoted_field_holding_a_line_break_keeps_the_block_off_the_verbatim_path():
    assert rows(b'1,"two\nlines",1.00\n') is None


def test_a_blank_line_keeps_the_block_off_the_verbatim_path():
    assert rows(b"1,ann,1.00\n\n2,bob,2.00\n") is None
    assert rows(b"1,ann\n\n2,bob\n", VerbatimRequest(), ["id", "name"]) is None


def test_a_blank_line_of_a_one_column_file_is_a_record():
    assert rows(b"a\n\nb\n", VerbatimRequest(), ["name"]) == 3


@pytest.mark.parametrize("value", ["1.005", "1e400", "NaN", "one", '"1"x'])
def test_a_decimal_that_is_not_canonical_keeps_the_block_off_the_verbatim_path(value):
    assert rows(f"1,ann,{value}\n".encode()) is None


@pytest.mark.parametrize("value", ["on", "off", "tru", " true"])
def test_a_boolean_only_a_database_would_take_keeps_the_block_off_the_verbatim_path(value):
    request = VerbatimRequest((("flag", parse_type("bool")),))
    assert rows(f"1,{value}\n".encode(), request, ["id", "flag"]) is None


@pytest.mark.parametrize("value", ["2024-1-5", "Jan 5 2024", "20240105", "today"])
def test_a_date_only_a_database_would_take_keeps_the_block_off_the_verbatim_path(value):
    request = VerbatimRequest((("day", parse_type("date")),))
    assert rows(f"1,{value}\n".encode(), request, ["id", "day"]) is None


def test_a_ragged_row_keeps_a_checked_block_off_the_verbatim_path():
    assert rows(b"1,ann,1.00\n2,bob\n") is None


def test_a_null_in_a_required_column_keeps_the_block_off_the_verbatim_path():
    request = VerbatimRequest(required=frozenset({"name"}))
    assert rows(b"1,ann,1\n2,,2\n", request) is None
    assert rows(b'1,ann,1\n2,"",2\n', request) == 2  # an empty string is not NULL


def test_crlf_line_ends_go_verbatim():
    assert rows(b'1,"ann",1.00\r\n2,bob,2.00\r\n') == 2


# -- the CSV source ---------------------------------------------------------------------------


def source(tmp_path, text: str, **options) -> CsvSource:
    (tmp_path / "in.csv").write_bytes(text.encode())
    return CsvSource(Config(type="csv", path="in.csv", **options), str(tmp_path))


def test_verbatim_chunks_carry_the_checkpoints_an_ordinary_read_gives(tmp_path):
    text = "id,name,amount\n" + "".join(f"{i},n{i},{i}.50\n" for i in range(1, 301))
    src = source(tmp_path, text)
    try:
        plain = [c.checkpoint for c in src.read(70, None)]
        verbatim = list(src.read_verbatim(70, None, TYPED))
    finally:
        src.close()
    assert all(c.verbatim is not None for c in verbatim)
    assert [c.checkpoint for c in verbatim] == plain
    assert sum(c.rows_read for c in verbatim) == 300
    assert b"".join(c.verbatim.data for c in verbatim) == text.split("\n", 1)[1].encode()


def test_a_verbatim_chunk_parses_to_the_chunk_an_ordinary_read_gives(tmp_path):
    text = "id,name,amount\n1,ann,1.50\n2,bob,2.00,extra\n3,cy,3\n"
    src = source(tmp_path, text)
    try:
        plain = list(src.read(10, None))[0]
        request = VerbatimRequest()  # no checks: the ragged row is found by the destination
        chunk = list(src.read_verbatim(10, None, request))[0]
        again = src.parse_verbatim(chunk)
    finally:
        src.close()
    assert chunk.verbatim is not None and chunk.verbatim.rows == 3
    assert again.data.to_pylist() == plain.data.to_pylist()
    assert [(r.line, r.error) for r in again.rejects] == [(3, "expected 3 fields, found 4")]
    assert again.checkpoint == plain.checkpoint == chunk.checkpoint
    assert again.line_of(1) == 4


def test_a_block_that_fails_the_checks_comes_parsed(tmp_path):
    src = source(tmp_path, "id,name,amount\n1,ann,one\n")
    try:
        chunk = list(src.read_verbatim(10, None, TYPED))[0]
    finally:
        src.close()
    assert chunk.verbatim is None
    assert chunk.data.to_pylist() == [{"id": "1", "name": "ann", "amount": "one"}]


def test_latin1_text_goes_verbatim_as_utf8(tmp_path):
    (tmp_path / "in.csv").write_bytes("id,name\n1,Zoë\n".encode("latin-1"))
    src = CsvSource(Config(type="csv", path="in.csv", encoding="latin-1"), str(tmp_path))
    try:
        chunk = list(src.read_verbatim(10, None, VerbatimRequest()))[0]
    finally:
        src.close()
    assert chunk.verbatim.data == "1,Zoë\n".encode()


@pytest.mark.parametrize("options", [{"escape_char": "\\"}, {"null_values": ["", "NULL"]}, {"quote_char": None}])
def test_files_whose_syntax_a_database_reads_otherwise_offer_no_verbatim_path(tmp_path, options):
    src = source(tmp_path, "id,name\n1,ann\n", **options)
    try:
        assert src.verbatim_offer() is None
    finally:
        src.close()


def test_the_offer_names_the_file_s_separators_and_null(tmp_path):
    src = source(tmp_path, "id;name\n1;ann\n", delimiter=";", null_values=["NA"])
    try:
        offer = src.verbatim_offer()
    finally:
        src.close()
    assert (offer.format.delimiter, offer.format.quote, offer.format.null) == (";", '"', "NA")
    assert offer.nulls and "decimal" in offer.checks and not offer.own_types


def test_an_empty_batch_schema_stays_the_source_schema(tmp_path):
    src = source(tmp_path, "id,name\n1,ann\n")
    try:
        chunk = list(src.read_verbatim(10, None, VerbatimRequest()))[0]
    finally:
        src.close()
    assert chunk.data.num_rows == 0 and chunk.data.schema == pa.schema([("id", pa.string()), ("name", pa.string())])
