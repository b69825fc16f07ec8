import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from portl.engine import transforms
from portl.spec.models import Transform
from portl.types import parse_type


def run(spec, values, destination="text", arrow_type=None):
    array = pa.array(values, arrow_type) if arrow_type is not None else pa.array(values)
    return transforms.apply(Transform.model_validate(spec), array, parse_type(destination))


def messages(step):
    return {index: message for index, (_, message) in step.errors.items()}


def test_lower_lowercases_text():
    assert run("lower", ["AbC", "ÉTÉ", None]).array.to_pylist() == ["abc", "été", None]


def test_upper_uppercases_text():
    assert run("upper", ["AbC", None]).array.to_pylist() == ["ABC", None]


def test_trim_strips_surrounding_whitespace_only():
    assert run("trim", ["  a  b \t", None]).array.to_pylist() == ["a  b", None]


def test_text_transforms_read_numbers_as_text():
    step = run("trim", [1, 25], arrow_type=pa.int64())
    assert step.array.to_pylist() == ["1", "25"]


def test_null_if_empty_turns_empty_and_blank_strings_into_null():
    assert run("null_if_empty", ["", "   ", "a", None]).array.to_pylist() == [None, None, "a", None]


def test_null_if_turns_listed_values_into_null():
    step = run({"null_if": ["N/A", "-"]}, ["N/A", "-", "n/a", None])
    assert step.array.to_pylist() == [None, None, "n/a", None]


def test_null_if_compares_numbers_as_numbers_on_numeric_columns():
    step = run({"null_if": [0, -1, "x"]}, [0, 5, -1], arrow_type=pa.int64())
    assert step.array.to_pylist() == [None, 5, None]


def test_null_if_compares_yaml_numbers_as_their_text_on_text_columns():
    assert run({"null_if": [0]}, ["0", "00"]).array.to_pylist() == [None, "00"]


def test_default_fills_nulls_only():
    assert run({"default": "n/a"}, ["a", None, ""]).array.to_pylist() == ["a", "n/a", ""]


def test_default_keeps_the_column_type_when_it_can():
    step = run({"default": 0}, [7, None], arrow_type=pa.int64())
    assert step.array.type == pa.int64()
    assert step.array.to_pylist() == [7, 0]


def test_replace_substitutes_a_regular_expression_with_group_references():
    step = run({"replace": {"pattern": r"(\d+)-(\d+)", "with": r"\2-\1"}}, ["12-34", "x", None])
    assert step.array.to_pylist() == ["34-12", "x", None]


def test_replace_without_with_deletes_the_matches():
    assert run({"replace": {"pattern": r"\s+"}}, ["a b  c"]).array.to_pylist() == ["abc"]


def test_validate_refuses_an_invalid_regular_expression():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        transforms.validate(Transform.model_validate({"replace": {"pattern": "(unclosed"}}))


def test_money_reads_symbols_thousands_separators_and_spaces():
    step = run("money", ["$1,234.50", "£ 12", "¥1000", "1 234.5 €"], "decimal(12,2)")
    assert step.array.type == pa.decimal128(12, 2)
    assert step.array.to_pylist() == [Decimal("1234.50"), Decimal("12.00"), Decimal("1000.00"), Decimal("1234.50")]


def test_money_reads_parentheses_and_leading_minus_as_negative():
    step = run("money", ["(1,234.50)", "-$5", "$-5", "(€3)"], "decimal(12,2)")
    assert step.array.to_pylist() == [Decimal("-1234.50"), Decimal("-5.00"), Decimal("-5.00"), Decimal("-3.00")]


def test_money_reads_a_decimal_comma_followed_by_one_or_two_digits():
    step = run("money", ["1.234,50 €", "12,5", "1,234"], "decimal(12,2)")
    assert step.array.to_pylist() == [Decimal("1234.50"), Decimal("12.50"), Decimal("1234.00")]


def test_money_rounds_half_away_from_zero_to_the_destination_scale():
    step = run("money", ["$1.005", "($1.005)"], "decimal(12,2)")
    assert step.array.to_pylist() == [Decimal("1.01"), Decimal("-1.01")]


def test_money_without_a_decimal_destination_gives_decimal_38_4():
    step = run("money", ["$1,234.56789"], "float")
    assert step.array.type == pa.decimal128(38, 4)
    assert step.array.to_pylist() == [Decimal("1234.5679")]


def test_money_rejects_what_is_not_an_amount():
    step = run("money", ["$12", "abc", "12,34,56", "--5", ""], "decimal(12,2)")
    assert step.array.to_pylist() == [Decimal("12.00"), None, None, None, None]
    assert messages(step) == {1: "'abc' is not a money amount", 2: "'12,34,56' is not a money amount",
                              3: "'--5' is not a money amount"}


def test_money_rejects_an_amount_too_large_for_the_destination():
    step = run("money", ["$1,000,000.00"], "decimal(8,2)")
    assert messages(step) == {0: "'$1,000,000.00' does not fit decimal(8,2)"}


def test_percent_divides_by_a_hundred_with_or_without_the_sign():
    step = run("percent", ["12.5%", "12.5", " 100 % ", "-3%", ".5%"], "decimal(10,4)")
    assert step.array.to_pylist() == [Decimal("0.1250"), Decimal("0.1250"), Decimal("1.0000"), Decimal("-0.0300"),
                                      Decimal("0.0050")]


def test_percent_without_a_decimal_destination_gives_decimal_38_6():
    step = run("percent", ["12.3456789%"])
    assert step.array.type == pa.decimal128(38, 6)
    assert step.array.to_pylist() == [Decimal("0.123457")]


def test_percent_reads_numeric_columns_as_percent_points():
    assert run("percent", [12.5, 3.0], "decimal(10,4)").array.to_pylist() == [Decimal("0.1250"), Decimal("0.0300")]


def test_percent_rejects_what_is_not_a_percentage():
    step = run("percent", ["5%", "five %"], "decimal(10,4)")
    assert messages(step) == {1: "'five %' is not a percentage"}


def test_date_parses_with_the_first_format_that_fits():
    step = run({"date": ["%d/%m/%Y", "%Y-%m-%d"]}, ["31/01/2024", "2024-02-03", None])
    assert step.array.type == pa.date32()
    assert step.array.to_pylist() == [dt.date(2024, 1, 31), dt.date(2024, 2, 3), None]


def test_date_rejects_values_no_format_parses():
    step = run({"date": ["%d/%m/%Y", "%Y-%m-%d"]}, ["31/02/2024"])
    assert messages(step) == {0: "'31/02/2024' is not a date in format %d/%m/%Y or %Y-%m-%d"}


def test_datetime_parses_timestamps_with_a_format():
    step = run({"datetime": "%d/%m/%Y %H:%M"}, ["31/01/2024 10:30", "later"])
    assert step.array.type == pa.timestamp("us")
    assert step.array.to_pylist() == [dt.datetime(2024, 1, 31, 10, 30), None]
    assert messages(step) == {1: "'later' is not a timestamp in format %d/%m/%Y %H:%M"}


def test_concat_joins_columns_with_the_separator():
    joined = transforms.concat([pa.array(["Ann", "Bo"]), pa.array(["Lee", "Ek"])], " ")
    assert joined.to_pylist() == ["Ann Lee", "Bo Ek"]


def test_concat_leaves_out_null_parts_and_gives_null_when_all_are_null():
    joined = transforms.concat([pa.array(["Ann", None, None, ""]), pa.array([None, "Lee", None, "X"])], " ")
    assert joined.to_pylist() == ["Ann", "Lee", None, " X"]


def test_concat_reads_non_text_columns_as_text():
    joined = transforms.concat([pa.array([1, 2]), pa.array(["a", "b"])], "-")
    assert joined.to_pylist() == ["1-a", "2-b"]


def test_coalesce_takes_the_first_non_null_value():
    result = transforms.coalesce([pa.array([None, "b", None]), pa.array(["a", "c", None])])
    assert result.to_pylist() == ["a", "b", None]


def test_coalesce_of_different_types_compares_as_text():
    result = transforms.coalesce([pa.array([None, 2]), pa.array(["a", "c"])])
    assert result.to_pylist() == ["a", "2"]


def test_coalesce_accepts_an_all_null_column():
    result = transforms.coalesce([pa.nulls(2), pa.array([1, None])])
    assert result.type == pa.int64()
    assert result.to_pylist() == [1, None]


def test_output_type_predicts_what_each_step_produces():
    decimal = parse_type("decimal(10,2)")
    assert transforms.output_type(Transform.model_validate("money"), pa.string(), decimal) == pa.decimal128(10, 2)
    assert transforms.output_type(Transform.model_validate({"date": "%d"}), pa.string(), decimal) == pa.date32()
    assert transforms.output_type(Transform.model_validate("lower"), pa.int64(), decimal) == pa.string()
    assert transforms.output_type(Transform.model_validate("null_if_empty"), pa.int64(), decimal) == pa.int64()
