"""Which Postgres columns read canonical text as Portl does, and the COPY that loads text as it is."""

from __future__ import annotations

import pyarrow as pa
import pytest

pytest.importorskip("psycopg")

from portl.connectors.base import TextFormat  # noqa: E402
from portl.connectors.postgres.textcopy import copy_statement, ends_early, problems  # noqa: E402
from portl.types import arrow_field, parse_type  # noqa: E402


def schema(**types: str) -> pa.Schema:
    return pa.schema([arrow_field(name, parse_type(t)) for name, t in types.items()])


def numeric(precision: int, scale: int) -> tuple[str, int]:
    return "numeric", ((precision << 16) | scale) + 4


def test_columns_of_their_own_type_read_canonical_text():
    types = {"id": ("int8", -1), "n": ("int4", -1), "x": ("float8", -1), "on": ("bool", -1), "d": ("date", -1),
             "t": ("timestamptz", -1), "j": ("jsonb", -1), "u": ("uuid", -1), "b": ("bytea", -1), "a": numeric(12, 2)}
    s = schema(id="bigint", n="int", x="float", on="bool", d="date", t="timestamptz", j="json", u="uuid", b="bytes",
               a="decimal(12,2)")
    assert problems(s, types) == []


def test_text_goes_into_any_column_type():
    assert problems(schema(v="text"), {"v": ("interval", -1)}) == []


def test_columns_the_table_does_not_have_yet_are_created_with_portl_s_types():
    assert problems(schema(a="decimal(12,2)", x="float"), {}) == []


def test_a_real_column_does_not_read_float_text_as_portl_does():
    assert problems(schema(x="float"), {"x": ("float4", -1)}) == [
        "column x: float values into a float4 column are sent as Portl writes them, not as the source has them"]


def test_a_numeric_of_another_precision_or_scale_does_not_read_decimal_text_as_portl_does():
    s = schema(a="decimal(12,2)")
    assert problems(s, {"a": numeric(14, 2)}) and problems(s, {"a": numeric(12, 3)})
    assert problems(s, {"a": ("numeric", -1)})


def test_copy_statement_quotes_names_and_spells_the_separators_as_literals():
    fmt = TextFormat("csv", ";", "'", "NA")
    assert copy_statement('"public"."t"', ["id", 'na"me'], fmt, None) == (
        'COPY "public"."t" ("id", "na""me") FROM STDIN (FORMAT csv, DELIMITER \';\', QUOTE \'\'\'\', NULL \'NA\')')


@pytest.mark.parametrize("data", [b"\\.\n", b"a\n\\.\nb\n", b"a\n\\.", b"a\n\\.\r\nb\n"])
def test_a_line_that_is_the_end_of_data_mark_is_found(data):
    assert ends_early(data)


@pytest.mark.parametrize("data", [b"a\\.b\n", b'"\\."\n', b"x\n\\.y\n", b"plain\n"])
def test_text_holding_a_backslash_and_dot_elsewhere_is_fine(data):
    assert not ends_early(data)
