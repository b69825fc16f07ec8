"""Binary COPY: every value Postgres receives in the binary layout is the value a text COPY of the
same batch gives it; anything else goes as text."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pyarrow as pa
import pytest

from portl.connectors.base import WriteMode, WriteSpec
from portl.connectors.postgres import copybinary, copytext
from portl.errors import RowRefused
from tests.integration.postgres.helpers import rows_of, write_batch

APPEND = WriteSpec(WriteMode.APPEND)
D = decimal.Decimal
UTC = datetime.timezone.utc

# (column type, Arrow type, values): edge values of every pairing the binary layout takes.
CASES = {
    "i2": ("int2", pa.int64(), [-(2**15), 2**15 - 1, 0, None]),
    "i4": ("int4", pa.int32(), [-(2**31), 2**31 - 1, -1, None]),
    "i8": ("int8", pa.int64(), [-(2**63), 2**63 - 1, 7, None]),
    "u4": ("int8", pa.uint32(), [0, 2**32 - 1, 5, None]),
    "f8": ("float8", pa.float64(), [float("nan"), float("-inf"), -0.0, 0.1]),
    "f4": ("float4", pa.float32(), [float("inf"), 1.5, -3.25e-20, None]),
    "ok": ("bool", pa.bool_(), [True, False, None, True]),
    "money": ("numeric(12,2)", pa.decimal128(12, 2), [D("-1234567890.12"), D("0.00"), D("0.05"), None]),
    "whole": ("numeric(18,0)", pa.decimal128(18, 0), [D("999999999999999999"), D("-1"), D("10000"), None]),
    "fine": ("numeric(9,5)", pa.decimal128(9, 5), [D("1234.56789"), D("-0.00001"), D("9999.99999"), None]),
    "frac": ("numeric(4,4)", pa.decimal128(4, 4), [D("0.9999"), D("-0.0001"), D("0.0000"), None]),
    "loose": ("numeric", pa.decimal128(10, 3), [D("1.500"), D("-22.000"), D("0.001"), None]),
    "round": ("numeric(6,1)", pa.decimal128(8, 3), [D("12.345"), D("-0.050"), D("99.949"), None]),
    "day": ("date", pa.date32(), [datetime.date(1, 1, 1), datetime.date(1999, 12, 31), datetime.date(9999, 12, 31), None]),
    "at": ("timestamp", pa.timestamp("us"),
           [datetime.datetime(1, 1, 1), datetime.datetime(1970, 1, 1, 0, 0, 0, 1), datetime.datetime(2000, 1, 1), None]),
    "at_ms": ("timestamp", pa.timestamp("ms"), [datetime.datetime(1969, 12, 31, 23, 59, 59, 999000), None, None, None]),
    "at_tz": ("timestamptz", pa.timestamp("us", tz="UTC"),
              [datetime.datetime(2024, 2, 29, 12, 0, tzinfo=UTC), datetime.datetime(1900, 1, 1, tzinfo=UTC), None, None]),
    "name": ("text", pa.string(), ["", None, "a \"b\", c\nd \\N", "\U0001F600 ünï"]),
    "short": ("varchar(5)", pa.string(), ["abcde", "", None, "ü"]),
    "fixed": ("char(3)", pa.string(), ["a", "abc", None, ""]),
    "doc": ("json", pa.string(), ['{"b": 1, "a": [1, 2]}', "null", None, '"x"']),
    "docb": ("jsonb", pa.string(), ['{"b": 1, "a": [1, 2]}', "[]", None, '{"k": "\\u00fc"}']),
    "raw": ("bytea", pa.binary(), [b"", b"\x00\\\xff", None, b"x" * 300]),
    "nothing": ("uuid", pa.null(), [None, None, None, None]),
    "ident": ("uuid", pa.string(), ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
                                    "00000000-0000-0000-0000-000000000000"]),
}
UUIDS = [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]


def _table(pg, name: str) -> None:
    columns = ", ".join(f"{column} {typ}" for column, (typ, _, _) in CASES.items())
    pg.execute(f"CREATE TABLE {name} (row_no int, {columns})")


def _batch(rows: slice = slice(None)) -> pa.RecordBatch:
    arrays = {"row_no": pa.array(range(4), pa.int32())[rows]}
    arrays |= {column: pa.array(values, arrow)[rows] for column, (_, arrow, values) in CASES.items()}
    return pa.RecordBatch.from_pydict(arrays)


def _uuid_extension() -> pa.Array:
    storage = pa.array([u.bytes if u else None for u in UUIDS], pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _types(pg, table: str) -> dict[str, tuple[str, int]]:
    from portl.connectors.postgres import catalog

    with pg.cursor() as cur:
        oid = cur.execute("SELECT %s::regclass::oid", (table,)).fetchone()[0]
        return catalog.base_types(pg, oid)


def _copy_binary(pg, table: str, batch: pa.RecordBatch) -> None:
    layout, why = copybinary.plan(batch.schema, _types(pg, table))
    assert layout is not None, why
    encoded = layout.encode(batch)
    with pg.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(encoded.columns)}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(copybinary.SIGNATURE)
        for part in encoded.slices(7):  # slices cut inside fields
            copy.write(part)
        copy.write(copybinary.TRAILER)


def _copy_text(pg, table: str, batch: pa.RecordBatch) -> None:
    with pg.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(batch.schema.names)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(copytext.encode(batch))


def _as_text(pg, table: str) -> list[tuple]:
    return rows_of(pg, f"SELECT row_no, {', '.join(f'{c}::text' for c in CASES)} FROM {table} ORDER BY row_no")


def test_every_value_arrives_as_a_text_copy_gives_it(pg):
    _table(pg, "by_binary")
    _table(pg, "by_text")
    _copy_binary(pg, "by_binary", _batch())
    _copy_text(pg, "by_text", _batch())
    binary, text = _as_text(pg, "by_binary"), _as_text(pg, "by_text")
    assert len(binary) == 4
    for got, want in zip(binary, text):
        assert dict(zip(["row_no", *CASES], got)) == dict(zip(["row_no", *CASES], want))


def test_values_are_the_ones_written(pg):
    _table(pg, "t")
    _copy_binary(pg, "t", _batch())
    first = dict(zip(["row_no", *CASES], _as_text(pg, "t")[0]))
    assert first["i2"] == "-32768" and first["i8"] == "-9223372036854775808" and first["u4"] == "0"
    assert first["f8"] == "NaN" and first["f4"] == "Infinity" and first["ok"] == "true"
    assert first["money"] == "-1234567890.12" and first["whole"] == "999999999999999999"
    assert first["fine"] == "1234.56789" and first["frac"] == "0.9999" and first["loose"] == "1.500"
    assert first["round"] == "12.3"  # the column's scale rounds, as it rounds text
    assert first["day"] == "0001-01-01" and first["at"] == "0001-01-01 00:00:00"
    assert first["name"] == "" and first["short"] == "abcde" and first["fixed"] == "a"
    assert first["docb"] == '{"a": [1, 2], "b": 1}' and first["raw"] == "\\x" and first["nothing"] is None
    second = dict(zip(["row_no", *CASES], _as_text(pg, "t")[1]))
    assert second["name"] is None and second["round"] == "-0.1" and second["at_ms"] is None
    assert rows_of(pg, "SELECT at_ms FROM t WHERE row_no = 0") == [(datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),)]


def test_a_sliced_batch_is_laid_out_from_its_own_rows(pg):
    _table(pg, "by_binary")
    _table(pg, "by_text")
    _copy_binary(pg, "by_binary", _batch(slice(1, 3)))
    _copy_text(pg, "by_text", _batch(slice(1, 3)))
    assert _as_text(pg, "by_binary") == _as_text(pg, "by_text") and len(_as_text(pg, "by_text")) == 2


@pytest.mark.parametrize("arrow, column, reason", [
    (pa.string(), "date", "string values into a date column are sent as text"),
    (pa.string(), "inet", "string values into an inet column are sent as text"),
    (pa.decimal128(38, 10), "numeric", "decimal128(38, 10) values into a numeric column are sent as text"),
    (pa.int64(), "numeric", "int64 values into a numeric column are sent as text"),
    (pa.float64(), "float4", "double values into a float4 column are sent as text"),
    (pa.timestamp("us"), "timestamptz", "timestamp[us] values into a timestamptz column are sent as text"),
])
def test_pairings_the_server_must_parse_go_as_text(arrow, column, reason):
    layout, why = copybinary.plan(pa.schema([pa.field("c", arrow)]), {"c": (column, -1)})
    assert layout is None and why == f"column c: {reason}"


def test_arrow_uuids_go_as_their_sixteen_bytes(pg):
    pg.execute("CREATE TABLE t (u uuid)")
    batch = pa.RecordBatch.from_pydict({"u": _uuid_extension()})
    _copy_binary(pg, "t", batch)
    assert [row[0] for row in rows_of(pg, "SELECT u FROM t")] == UUIDS


def test_a_uuid_spelled_otherwise_goes_as_text():
    batch = pa.RecordBatch.from_pydict({"u": pa.array(["{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"])})
    layout, _ = copybinary.plan(batch.schema, {"u": ("uuid", -1)})
    with pytest.raises(copybinary.NotExact):
        layout.encode(batch)


def test_a_column_the_table_lacks_goes_as_text():
    layout, why = copybinary.plan(pa.schema([pa.field("c", pa.int32())]), {})
    assert layout is None and why == "column c is not in the table yet"


@pytest.mark.parametrize("arrow, column, values", [
    (pa.int64(), "int4", [1, 2**31]),
    (pa.int32(), "int2", [-(2**15) - 1]),
    (pa.date32(), "date", [datetime.date(1, 1, 1), None]),
    (pa.timestamp("ns"), "timestamp", [1_500]),
])
def test_a_value_the_layout_cannot_carry_as_text_would_is_not_encoded(arrow, column, values):
    if arrow == pa.date32():  # below Postgres' first date (4714 BC)
        values = pa.array([-2_440_589, None], pa.int32()).cast(pa.date32())
    batch = pa.RecordBatch.from_pydict({"c": pa.array(values, arrow)})
    layout, _ = copybinary.plan(batch.schema, {"c": (column, -1)})
    with pytest.raises(copybinary.NotExact):
        layout.encode(batch)


def test_the_sink_loads_binary_and_says_so_in_the_plan(pg, sink):
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("price", pa.decimal128(12, 2)), pa.field("name", pa.string())])
    s = sink("t")
    plan = s.plan(schema, APPEND)
    assert [x for x in plan.per_batch if x.startswith("COPY")] == [
        'COPY "public"."t" ("id", "price", "name") FROM STDIN (FORMAT binary)']
    s.prepare(schema, APPEND, resuming=False)
    batch = pa.RecordBatch.from_pylist([{"id": 1, "price": D("2.50"), "name": "x"}, {"id": 2, "price": None, "name": None}],
                                       schema=schema)
    assert write_batch(s, batch, APPEND).inserted == 2
    assert rows_of(pg, "SELECT id, price, name FROM t ORDER BY id") == [(1, D("2.50"), "x"), (2, None, None)]


def test_the_plan_says_why_rows_go_as_text(pg, sink):
    pg.execute("CREATE TABLE t (id bigint, day date)")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("day", pa.string())])
    plan = sink("t").plan(schema, APPEND)
    assert [x for x in plan.per_batch if x.startswith("COPY")] == [
        'COPY "public"."t" ("id", "day") FROM STDIN (FORMAT csv)  '
        "-- as text: column day: string values into a date column are sent as text"]


def test_an_integer_too_big_for_its_column_is_refused_by_the_server_with_its_message(pg, sink):
    pg.execute("CREATE TABLE t (id int4)")
    schema = pa.schema([pa.field("id", pa.int64())])
    s = sink("t")
    s.prepare(schema, APPEND, resuming=False)
    with pytest.raises(RowRefused, match="out of range for type integer") as caught:
        write_batch(s, pa.RecordBatch.from_pylist([{"id": 1}, {"id": 2**40}], schema=schema), APPEND)
    assert (caught.value.row, caught.value.column) == (1, "id")  # the binary COPY's line 2
    assert rows_of(pg, "SELECT count(*) FROM t") == [(0,)]


def test_a_batch_of_nulls_only_is_one_field_count_and_nulls_per_row():
    batch = pa.RecordBatch.from_pydict({"a": pa.nulls(3), "b": pa.nulls(3)})
    layout, _ = copybinary.plan(batch.schema, {"a": ("int4", -1), "b": ("text", -1)})
    assert bytes(layout.encode(batch).data) == (b"\x00\x02" + b"\xff\xff\xff\xff" * 2) * 3
