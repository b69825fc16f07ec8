import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from portl.connectors.base import ColumnInfo, TableInfo
from portl.engine.mapping import RowError, apply_mapping, conversion_note, normalise_name, resolve_mapping
from portl.errors import ConfigError, SourceError
from portl.spec.models import Mapping
from portl.types import LogicalType, parse_type


def mapping(**fields):
    return Mapping.model_validate(fields)


def text_schema(*names):
    return pa.schema([(n, pa.string()) for n in names])


def table(*columns, name="customers"):
    return TableInfo(name, [c if isinstance(c, ColumnInfo) else ColumnInfo(c[0], c[1]) for c in columns])


def plan_for(source, destination=None, **fields):
    return resolve_mapping(mapping(**fields), source, destination)


def column(plan, name):
    return next(c for c in plan.columns if c.name == name)


def run(plan, **columns):
    return apply_mapping(plan, pa.record_batch({k: pa.array(v, pa.string()) for k, v in columns.items()}))


# --- resolving: which columns --------------------------------------------------------------


def test_normalise_name_lowercases_and_joins_spaces_hyphens_and_dots():
    assert normalise_name("  First Name ") == "first_name"
    assert normalise_name("E-Mail..Address") == "e_mail_address"


def test_auto_maps_to_existing_destination_columns_ignoring_case_and_spaces():
    destination = table(("first_name", pa.string()), ("Email", pa.string()))
    plan = plan_for(text_schema("First Name", "EMAIL"), destination, auto=True)
    assert [(c.name, c.sources) for c in plan.columns] == [("first_name", ("First Name",)), ("Email", ("EMAIL",))]
    assert [c.origin for c in plan.columns] == ["auto (type from destination)"] * 2


def test_auto_without_a_destination_names_every_column_by_its_normalised_name():
    plan = plan_for(text_schema("First Name", "E-mail"), None, auto=True)
    assert plan.schema.names == ["first_name", "e_mail"]
    assert [c.origin for c in plan.columns] == ["auto (type from source)"] * 2


def test_auto_adds_unmatched_source_columns_as_new_destination_columns():
    plan = plan_for(text_schema("Email", "Phone Number"), table(("email", pa.string())), auto=True)
    assert plan.schema.names == ["email", "phone_number"]
    assert plan.unmapped_source == ()


def test_auto_leaves_unmatched_source_columns_unmapped_when_columns_cannot_be_created():
    plan = plan_for(text_schema("Email", "Phone"), table(("email", pa.string())), auto=True,
                    create_missing_columns=False)
    assert plan.schema.names == ["email"]
    assert plan.unmapped_source == ("Phone",)


def test_explicit_columns_win_over_auto_mapping():
    plan = plan_for(text_schema("id", "Name"), None, auto=True, columns={"name": {"from": "id"}})
    assert [(c.name, c.sources, c.origin) for c in plan.columns] == [("name", ("id",), "explicit (type from source)")]
    assert plan.unmapped_source == ("Name",)


def test_explicit_columns_keep_the_position_of_the_source_column_they_read():
    plan = plan_for(text_schema("a", "b", "c"), None, auto=True, columns={"b": {"transform": "lower"}})
    assert plan.schema.names == ["a", "b", "c"]


def test_explicit_from_defaults_to_the_destination_name_exactly_then_normalised():
    plan = plan_for(text_schema("email", "Full Name"), None, columns={"email": {}, "full_name": {}})
    assert [c.sources for c in plan.columns] == [("email",), ("Full Name",)]


def test_without_auto_only_explicit_columns_are_written():
    plan = plan_for(text_schema("id", "name", "notes"), None, columns={"id": {"type": "int"}})
    assert plan.schema.names == ["id"]
    assert plan.unmapped_source == ("name", "notes")


def test_explicit_name_matching_a_destination_column_loosely_writes_that_column():
    plan = plan_for(text_schema("mail"), table(("Email", pa.string())), columns={"email": "mail"})
    assert plan.schema.names == ["Email"]


# --- resolving: types, required, warnings --------------------------------------------------


def test_type_from_the_mapping_wins():
    plan = plan_for(text_schema("n"), table(("n", pa.int64())), columns={"n": {"type": "int"}})
    assert (column(plan, "n").logical, column(plan, "n").type_source) == (LogicalType("int"), "mapping")
    assert column(plan, "n").field.type == pa.int32()


def test_type_from_an_existing_destination_column():
    plan = plan_for(text_schema("n"), table(("n", pa.decimal128(10, 2))), columns={"n": {}})
    assert (column(plan, "n").logical, column(plan, "n").type_source) == (parse_type("decimal(10,2)"), "destination")


def test_declared_json_destination_column_gets_the_json_type():
    destination = table(ColumnInfo("doc", pa.string(), declared="jsonb"))
    plan = plan_for(text_schema("doc"), destination, auto=True)
    assert column(plan, "doc").logical == LogicalType("json")


def test_type_from_the_source_field():
    plan = plan_for(pa.schema([("n", pa.int16()), ("t", pa.timestamp("ms"))]), None, auto=True)
    assert [(c.logical.name, c.type_source) for c in plan.columns] == [("int", "source"), ("timestamp", "source")]


def test_money_and_percent_transforms_without_a_type_give_decimals():
    plan = plan_for(text_schema("price", "rate"), None,
                    columns={"price": {"transform": "money"}, "rate": {"transform": "percent"}})
    assert column(plan, "price").logical == parse_type("decimal(38,4)")
    assert column(plan, "rate").logical == parse_type("decimal(38,6)")
    assert column(plan, "price").type_source == "transform"


def test_date_and_datetime_transforms_without_a_type_give_date_and_timestamp():
    plan = plan_for(text_schema("d", "t"), None,
                    columns={"d": {"transform": {"date": "%d/%m/%Y"}}, "t": {"transform": {"datetime": "%d/%m/%Y %H"}}})
    assert [c.logical.name for c in plan.columns] == ["date", "timestamp"]


def test_required_comes_from_a_not_null_destination_column_without_default():
    destination = table(ColumnInfo("a", pa.string(), nullable=False), ColumnInfo("b", pa.string(), nullable=False,
                        has_default=True), ColumnInfo("c", pa.string()))
    plan = plan_for(text_schema("a", "b", "c"), destination, auto=True)
    assert [c.required for c in plan.columns] == [True, False, False]
    assert not plan.schema.field("a").nullable


def test_lossy_conversions_are_warned_about():
    plan = plan_for(pa.schema([("x", pa.float64())]), None, columns={"x": {"type": "decimal(10,2)"}})
    assert plan.warnings == ("column 'x' (double -> decimal(10,2)): float values are rounded to 2 decimal places",)


def test_conversion_note_names_lossy_conversions_only():
    assert conversion_note(pa.timestamp("us", tz="UTC"), LogicalType("timestamp")) == (
        "converted to UTC and stored without a time zone")
    assert conversion_note(pa.int64(), LogicalType("int")) == "values outside the int range are rejected"
    assert conversion_note(pa.string(), LogicalType("int")) is None
    assert conversion_note(pa.int32(), LogicalType("bigint")) is None


def test_not_null_destination_columns_nothing_maps_to_are_warned_about():
    destination = table(("id", pa.int64()), ColumnInfo("created", pa.string(), nullable=False))
    plan = plan_for(text_schema("id"), destination, auto=True)
    assert plan.warnings == ("destination column 'created' is NOT NULL without a default, but nothing maps to it: "
                             "inserting rows will fail",)


# --- resolving: configuration errors ---------------------------------------------------------


def test_missing_from_column_suggests_the_closest_source_column():
    with pytest.raises(ConfigError) as info:
        plan_for(text_schema("email", "name"), None, columns={"mail": {"from": "emial"}})
    assert str(info.value) == ("column 'mail': the source has no column 'emial'; did you mean 'email'? "
                               "(source columns: email, name)")


def test_missing_concat_column_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="the source has no column 'last'; did you mean 'Last'"):
        plan_for(text_schema("first", "Last"), None, columns={"full": {"transform": {"concat": ["first", "last"]}}})


def test_missing_destination_column_is_an_error_when_columns_cannot_be_created():
    with pytest.raises(ConfigError) as info:
        plan_for(text_schema("email2"), table(("email", pa.string())), columns={"email2": {}},
                 create_missing_columns=False)
    assert str(info.value) == ("destination table customers has no column 'email2'; add it or set "
                               "mapping.create_missing_columns: true")


def test_extra_destination_columns_error_lists_the_columns_nothing_maps_to():
    destination = table(("id", pa.int64()), ("email", pa.string()), ("phone", pa.string()))
    with pytest.raises(ConfigError, match=r"nothing maps to destination columns 'email', 'phone' of customers"):
        plan_for(text_schema("id"), destination, auto=True, extra_destination_columns="error")


def test_two_source_columns_auto_mapping_to_one_destination_column_conflict():
    expected = "source columns 'Email' and 'email ' both auto-map to destination column 'email'"
    with pytest.raises(ConfigError, match=expected):
        plan_for(text_schema("Email", "email "), None, auto=True)


def test_two_explicit_columns_writing_one_destination_column_conflict():
    with pytest.raises(ConfigError, match="columns 'Email' and 'email' both write destination column 'email'"):
        plan_for(text_schema("a", "b"), table(("email", pa.string())), columns={"Email": "a", "email": "b"})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        plan_for(text_schema("a"), None, columns={"x": {"from": "nope"}, "y": {"from": "nada"}})
    assert [p.message.split(":")[0] for p in info.value.problems] == ["column 'x'", "column 'y'"]


def test_a_mapping_that_writes_no_columns_is_a_config_error():
    with pytest.raises(ConfigError, match="the mapping writes no columns"):
        plan_for(text_schema("a"), None)


def test_an_impossible_conversion_is_a_config_error():
    with pytest.raises(ConfigError, match="column 'd': cannot convert date32\\[day\\] values to int"):
        plan_for(pa.schema([("d", pa.date32())]), None, columns={"d": {"type": "int"}})


def test_a_default_that_does_not_fit_the_type_is_a_config_error():
    with pytest.raises(ConfigError, match="column 'n': default 'none' is not a valid int value"):
        plan_for(text_schema("n"), None, columns={"n": {"type": "int", "default": "none"}})


def test_a_bad_replace_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="column 'n': replace pattern"):
        plan_for(text_schema("n"), None, columns={"n": {"transform": {"replace": {"pattern": "("}}}})


def test_from_together_with_concat_is_a_config_error():
    with pytest.raises(ConfigError, match="give either 'from' or 'concat'"):
        plan_for(text_schema("a", "b"), None, columns={"n": {"from": "a", "transform": {"concat": ["a", "b"]}}})


# --- applying ------------------------------------------------------------------------------


def test_a_batch_without_bad_values_maps_every_row_and_rejects_none():
    plan = plan_for(text_schema("id", "amount", "day", "ok"), None,
                    columns={"id": {"type": "int"}, "amount": {"type": "decimal(8,2)"}, "day": {"type": "date"},
                             "ok": {"type": "bool"}})
    result = run(plan, id=["1", "2"], amount=["1.50", "2"], day=["2024-01-02", None], ok=["yes", "0"])
    assert result.rejects == []
    assert result.source_index.to_pylist() == [0, 1]
    assert result.data.schema == plan.schema
    assert result.data.to_pylist() == [
        {"id": 1, "amount": Decimal("1.50"), "day": dt.date(2024, 1, 2), "ok": True},
        {"id": 2, "amount": Decimal("2.00"), "day": None, "ok": False},
    ]


def test_rows_failing_in_several_columns_report_their_first_failing_column():
    plan = plan_for(text_schema("id", "amount", "ok"), None,
                    columns={"id": {"type": "int"}, "amount": {"type": "decimal(8,2)"}, "ok": {"type": "bool"}})
    result = run(plan, id=["1", "12x", "3", "4x"], amount=["1", "2", "1234567.891", "zz"],
                 ok=["maybe", "yes", "no", "nope"])
    assert result.rejects == [
        RowError(0, "ok", "maybe", "'maybe' is not a boolean (expected true/false, yes/no, 1/0)"),
        RowError(1, "id", "12x", "'12x' is not an integer"),
        RowError(2, "amount", "1234567.891", "'1234567.891' does not fit decimal(8,2)"),
        RowError(3, "id", "4x", "'4x' is not an integer"),
    ]
    assert result.data.num_rows == 0


def test_rejected_rows_are_left_out_and_source_index_points_at_the_kept_rows():
    plan = plan_for(text_schema("id"), None, columns={"id": {"type": "int"}})
    result = run(plan, id=["1", "x", "3", "y", "5"])
    assert result.data.column("id").to_pylist() == [1, 3, 5]
    assert result.source_index.type == pa.int64()
    assert result.source_index.to_pylist() == [0, 2, 4]
    assert [r.index for r in result.rejects] == [1, 3]


def test_required_rejects_rows_whose_value_is_missing_after_mapping():
    plan = plan_for(text_schema("email"), None, columns={"email": {"required": True, "transform": "null_if_empty"}})
    result = run(plan, email=["a@x", None, "  "])
    assert result.data.column("email").to_pylist() == ["a@x"]
    assert result.rejects == [RowError(1, "email", None, "required value is missing"),
                              RowError(2, "email", None, "required value is missing")]


def test_a_value_that_fails_coercion_is_not_also_reported_as_missing():
    plan = plan_for(text_schema("n"), None, columns={"n": {"type": "int", "required": True}})
    result = run(plan, n=["x"])
    assert result.rejects == [RowError(0, "n", "x", "'x' is not an integer")]


def test_default_fills_nulls_after_coercion_and_satisfies_required():
    plan = plan_for(text_schema("n"), None, columns={"n": {"type": "int", "default": "0", "required": True}})
    result = run(plan, n=["7", None, ""])
    assert result.data.column("n").to_pylist() == [7, 0, 0]
    assert result.rejects == []


def test_a_column_with_only_a_default_is_a_constant():
    plan = plan_for(text_schema("id"), None, columns={"id": {"type": "int"}, "source": {"default": "import"}})
    assert column(plan, "source").sources == ()
    result = run(plan, id=["1", "2"])
    assert result.data.column("source").to_pylist() == ["import", "import"]


def test_concat_column_joins_its_source_columns():
    plan = plan_for(text_schema("first", "last"), None,
                    columns={"name": {"transform": [{"concat": ["first", "last"], "sep": " "}, "upper"]}})
    assert column(plan, "name").sources == ("first", "last")
    result = run(plan, first=["Ann", None], last=["Lee", "Ek"])
    assert result.data.column("name").to_pylist() == ["ANN LEE", "EK"]


def test_coalesce_column_takes_the_first_non_null_source_value():
    plan = plan_for(text_schema("mobile", "home"), None,
                    columns={"phone": {"transform": {"coalesce": ["mobile", "home"]}}})
    result = run(plan, mobile=[None, "1"], home=["2", "3"])
    assert result.data.column("phone").to_pylist() == ["2", "1"]


def test_transforms_run_in_order_before_coercion():
    plan = plan_for(text_schema("price"), None,
                    columns={"price": {"type": "decimal(10,2)", "transform": ["trim", "money"]}})
    result = run(plan, price=["  $1,234.505 ", "(12)"])
    assert result.data.column("price").to_pylist() == [Decimal("1234.51"), Decimal("-12.00")]


def test_a_failing_transform_rejects_the_row_with_its_own_message():
    plan = plan_for(text_schema("price"), None, columns={"price": {"transform": "money"}})
    result = run(plan, price=["$1", "cheap"])
    assert result.rejects == [RowError(1, "price", "cheap", "'cheap' is not a money amount")]


def test_column_formats_parse_dates_given_as_text():
    plan = plan_for(text_schema("day"), None, columns={"day": {"type": "date", "format": ["%d/%m/%Y", "%Y-%m-%d"]}})
    result = run(plan, day=["31/01/2024", "2024-02-01", "31/02/2024"])
    assert result.data.column("day").to_pylist() == [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]
    assert result.rejects == [
        RowError(2, "day", "31/02/2024", "'31/02/2024' is not a date in format %d/%m/%Y or %Y-%m-%d")]


def test_timestamps_with_offsets_in_a_naive_column_produce_a_batch_warning():
    plan = plan_for(text_schema("at"), None, columns={"at": {"type": "timestamp"}})
    result = run(plan, at=["2024-01-02T03:00:00+01:00"])
    assert result.data.column("at").to_pylist() == [dt.datetime(2024, 1, 2, 2)]
    assert result.warnings == [
        "column 'at': values with a UTC offset were converted to UTC and stored without a time zone"]


def test_a_batch_missing_a_planned_source_column_is_a_source_error():
    plan = plan_for(text_schema("a"), None, auto=True)
    with pytest.raises(SourceError, match="no column 'a'"):
        run(plan, b=["x"])


def test_a_json_or_uuid_source_column_keeps_its_type_when_copied_as_it_is():
    from portl.types import arrow_field

    source = pa.schema([arrow_field("doc", LogicalType("json")), arrow_field("key", LogicalType("uuid"))])
    plan = plan_for(source, None, auto=True)
    assert [str(c.logical) for c in plan.columns] == ["json", "uuid"]
    assert [str(c.logical) for c in plan_for(source, None, columns={"doc": {"transform": "trim"}}).columns] == ["text"]


def test_the_format_of_a_bytes_column_must_be_base64_or_hex():
    with pytest.raises(ConfigError) as error:
        plan_for(text_schema("raw"), None, columns={"raw": {"type": "bytes", "format": "%Y"}})
    assert "column 'raw': the format of bytes text is one of base64, hex, not '%Y'" in str(error.value)
    plan = plan_for(text_schema("raw"), None, columns={"raw": {"type": "bytes", "format": "base64"}})
    assert run(plan, raw=["AAE="]).data.column("raw").to_pylist() == [b"\x00\x01"]
