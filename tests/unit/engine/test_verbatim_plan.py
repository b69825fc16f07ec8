"""When the engine lets a source's text go to the destination as it is, and what it checks."""

from __future__ import annotations

import pyarrow as pa

from portl.connectors.base import (
    Capabilities, ColumnInfo, ConflictStrategy, TableInfo, TextFormat, VerbatimOffer, WriteMode, WriteSpec,
)
from portl.engine.mapping import resolve_mapping
from portl.engine.verbatim import verbatim_plan
from portl.spec.models import Mapping
from portl.types import LogicalType, arrow_field, parse_type

CSV = TextFormat("csv")


class TextSource:
    """A stand-in for a source that offers its blocks as text."""

    description = "text source"

    def __init__(self, schema: pa.Schema, offer: VerbatimOffer | None):
        self._schema, self._offer = schema, offer

    def schema(self) -> pa.Schema:
        return self._schema

    def verbatim_offer(self) -> VerbatimOffer | None:
        return self._offer

    def read_verbatim(self, batch_rows, start, request):
        return iter(())

    def parse_verbatim(self, chunk):
        return chunk


class TextSink:
    """A stand-in for a sink that loads csv text; ``problems`` is what it says about the columns."""

    description = "text sink"

    def __init__(self, problems: list[str] | None = None, formats: frozenset[str] = frozenset({"csv"})):
        self.capabilities = Capabilities(modes=frozenset(WriteMode), verbatim=formats)
        self._problems = problems or []

    def verbatim_problems(self, schema, spec, fmt):
        return list(self._problems)

    def write_verbatim(self, block, columns, fmt, spec, tx):
        raise AssertionError("not written in these tests")


def text_schema(*names: str) -> pa.Schema:
    return pa.schema([(n, pa.string()) for n in names])


def csv_offer(**kwargs) -> VerbatimOffer:
    return VerbatimOffer(CSV, checks=frozenset({"bigint", "decimal", "date"}), nulls=True, **kwargs)


def decide(source, sink=None, destination: TableInfo | None = None, spec=WriteSpec(WriteMode.APPEND),
           hooks: set[str] = frozenset(), transaction: str = "batch", **mapping):
    plan = resolve_mapping(Mapping.model_validate(mapping or {"auto": True}), source.schema(), destination)
    return verbatim_plan(source, sink or TextSink(), plan, spec, destination, hooks=set(hooks), transaction=transaction)


def test_text_columns_converted_by_the_mapping_are_checked_in_each_block():
    source = TextSource(text_schema("id", "name", "amount"), csv_offer())
    plan, why = decide(source, auto=True, columns={"id": {"type": "bigint"}, "amount": {"type": "decimal(8,2)"}})
    assert why == "" and plan.columns == ("id", "name", "amount")
    assert dict(plan.request.types) == {"id": parse_type("bigint"), "amount": parse_type("decimal(8,2)")}


def test_the_copy_names_the_destination_columns_in_the_source_s_order():
    source = TextSource(text_schema("b", "a"), csv_offer())
    plan, _ = decide(source, columns={"a": {}, "first": {"from": "b"}})
    assert plan.columns == ("first", "a")


def test_a_type_the_source_cannot_check_keeps_the_job_off_the_verbatim_path():
    source = TextSource(text_schema("id", "doc"), csv_offer())
    plan, why = decide(source, auto=True, columns={"doc": {"type": "json"}})
    assert plan is None and why == "column doc: text to json cannot be checked in the source's text"


def test_a_database_source_s_own_types_need_no_check():
    schema = pa.schema([arrow_field("id", parse_type("bigint")), arrow_field("paid", parse_type("decimal(8,2)"))])
    plan, why = decide(TextSource(schema, VerbatimOffer(CSV, own_types=True)))
    assert why == "" and plan.request.types == ()


def test_a_database_source_s_values_converted_to_another_type_keep_the_job_off_the_verbatim_path():
    schema = pa.schema([arrow_field("id", parse_type("bigint"))])
    plan, why = decide(TextSource(schema, VerbatimOffer(CSV, own_types=True)), columns={"id": {"type": "text"}})
    assert plan is None and "bigint to text" in why


def test_a_source_column_left_out_keeps_the_job_off_the_verbatim_path():
    plan, why = decide(TextSource(text_schema("id", "secret"), csv_offer()), columns={"id": {}})
    assert plan is None and why == "source column secret not loaded"


def test_a_transform_or_a_default_keeps_the_job_off_the_verbatim_path():
    source = TextSource(text_schema("id", "name"), csv_offer())
    for spec in ({"transform": ["trim"]}, {"default": "x"}):
        plan, why = decide(source, columns={"id": {}, "name": spec})
        assert plan is None and why.startswith("column name is computed")


def test_a_required_column_the_destination_does_not_enforce_is_checked_for_nulls():
    source = TextSource(text_schema("id", "name"), csv_offer())
    plan, _ = decide(source, columns={"id": {}, "name": {"required": True}})
    assert plan.request.required == frozenset({"name"})


def test_a_not_null_destination_column_needs_no_null_check():
    source = TextSource(text_schema("id", "name"), csv_offer())
    table = TableInfo("t", [ColumnInfo("id", pa.string()), ColumnInfo("name", pa.string(), "text", nullable=False)])
    plan, _ = decide(source, destination=table, auto=True)
    assert plan.request.required == frozenset()


def test_a_required_column_keeps_a_source_that_cannot_count_nulls_off_the_verbatim_path():
    schema = pa.schema([arrow_field("id", LogicalType("bigint"))])
    plan, why = decide(TextSource(schema, VerbatimOffer(CSV, own_types=True)), columns={"id": {"required": True}})
    assert plan is None and "cannot check a block for NULLs" in why


def test_row_hooks_a_job_transaction_and_strategy_skip_keep_the_job_off_the_verbatim_path():
    source = TextSource(text_schema("id"), csv_offer())
    assert "row hooks" in decide(source, hooks={"before_row"})[1]
    assert "transaction: job" in decide(source, transaction="job")[1]
    skip = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.SKIP)
    assert "strategy skip" in decide(source, spec=skip)[1]
    overwrite = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    assert decide(source, spec=overwrite)[0] is not None


def test_the_destination_s_word_on_its_column_types_decides():
    source = TextSource(text_schema("x"), csv_offer())
    plan, why = decide(source, TextSink(["column x: float values into a float4 column ..."]))
    assert plan is None and why.startswith("column x: float")


def test_no_offer_or_another_format_keeps_the_job_off_the_verbatim_path():
    assert "cannot hand its rows over as text" in decide(TextSource(text_schema("x"), None))[1]
    assert "does not load csv text" in decide(TextSource(text_schema("x"), csv_offer()), TextSink(formats=frozenset()))[1]
