import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from portl.engine.coerce import OFFSET_WARNING, accepts, coerce
from portl.types import LogicalType, parse_type


def run(values, type_name, arrow_type=None, formats=()):
    array = pa.array(values, arrow_type) if arrow_type is not None else pa.array(values)
    return coerce(array, parse_type(type_name), formats)


def messages(step):
    return {index: message for index, (_, message) in step.errors.items()}


def rejected(step):
    return sorted(step.errors)


# --- text to numbers -------------------------------------------------------------------------


def test_text_to_int_accepts_signs_and_surrounding_spaces():
    step = run(["1", " 2 ", "+3", "-4"], "int")
    assert step.array.type == pa.int32()
    assert step.array.to_pylist() == [1, 2, 3, -4]
    assert step.failed is None


def test_text_to_int_rejects_text_that_is_not_an_integer():
    step = run(["1", "12x", "1.5"], "int")
    assert step.array.to_pylist() == [1, None, None]
    assert messages(step) == {1: "'12x' is not an integer", 2: "'1.5' is not an integer"}
    assert step.failed.to_pylist() == [False, True, True]


def test_text_to_int_rejects_values_outside_the_int32_range():
    step = run(["2147483647", "3000000000", "-2147483649"], "int")
    assert step.array.to_pylist() == [2147483647, None, None]
    assert messages(step) == {1: "value 3000000000 is out of range for int",
                              2: "value -2147483649 is out of range for int"}


def test_text_to_bigint_keeps_values_beyond_int32():
    step = run(["3000000000", "-9223372036854775808"], "bigint")
    assert step.array.type == pa.int64()
    assert step.array.to_pylist() == [3000000000, -9223372036854775808]


def test_text_to_bigint_rejects_values_beyond_int64():
    step = run(["1", "99999999999999999999"], "bigint")
    assert messages(step) == {1: "value 99999999999999999999 is out of range for bigint"}


def test_text_to_float_parses_decimals_exponents_and_spaces():
    step = run(["1.5", " -2 ", "1e3", ".25"], "float")
    assert step.array.to_pylist() == [1.5, -2.0, 1000.0, 0.25]


def test_text_to_float_rejects_text_that_is_not_a_number():
    step = run(["1.5", "abc"], "float")
    assert messages(step) == {1: "'abc' is not a number"}


def test_text_to_decimal_rounds_half_away_from_zero():
    step = run(["1.005", "-1.005", "2.344", "-2.345", "0.125"], "decimal(10,2)")
    assert step.array.type == pa.decimal128(10, 2)
    assert step.array.to_pylist() == [Decimal("1.01"), Decimal("-1.01"), Decimal("2.34"), Decimal("-2.35"),
                                      Decimal("0.13")]
    assert step.failed is None


def test_text_to_decimal_keeps_values_already_at_the_scale():
    step = run(["12.50", "-3", "+0.5"], "decimal(6,2)")
    assert step.array.to_pylist() == [Decimal("12.50"), Decimal("-3.00"), Decimal("0.50")]


def test_text_to_decimal_rejects_values_beyond_the_precision():
    step = run(["123456.78", "1234567.891"], "decimal(8,2)")
    assert step.array.to_pylist() == [Decimal("123456.78"), None]
    assert messages(step) == {1: "'1234567.891' does not fit decimal(8,2)"}


def test_text_to_decimal_rejects_a_value_that_rounds_up_beyond_the_precision():
    step = run(["999999.994", "999999.995"], "decimal(8,2)")
    assert step.array.to_pylist() == [Decimal("999999.99"), None]
    assert messages(step) == {1: "'999999.995' does not fit decimal(8,2)"}


def test_text_to_decimal_rejects_text_that_is_not_a_number():
    step = run(["1.5", "1,5", "x"], "decimal(8,2)")
    assert messages(step) == {1: "'1,5' is not a decimal number", 2: "'x' is not a decimal number"}


def test_text_to_decimal_accepts_exponent_notation():
    step = run(["1.5e2", "1e-40", "2.5E-2"], "decimal(8,2)")
    assert step.array.to_pylist() == [Decimal("150.00"), Decimal("0.00"), Decimal("0.03")]


# --- text to bool, date, timestamp -----------------------------------------------------------


def test_text_to_bool_accepts_the_usual_words_in_any_case():
    values = ["true", "FALSE", " t ", "f", "Yes", "no", "Y", "n", "1", "0"]
    step = run(values, "bool")
    assert step.array.to_pylist() == [True, False, True, False, True, False, True, False, True, False]


def test_text_to_bool_rejects_other_words():
    step = run(["yes", "maybe"], "bool")
    assert step.array.to_pylist() == [True, None]
    assert messages(step) == {1: "'maybe' is not a boolean (expected true/false, yes/no, 1/0)"}


@pytest.mark.parametrize("type_name", ["int", "bigint", "float", "decimal(8,2)", "bool", "date", "timestamp",
                                       "timestamptz", "json", "uuid"])
def test_empty_and_blank_strings_become_null_for_non_text_types(type_name):
    step = run(["", "   ", None], type_name)
    assert step.array.to_pylist() == [None, None, None]
    assert step.failed is None


def test_empty_string_stays_an_empty_string_for_text():
    assert run(["", None], "text").array.to_pylist() == ["", None]


def test_text_to_date_reads_iso_dates_with_spaces():
    step = run(["2024-02-29", " 2024-03-01 "], "date")
    assert step.array.type == pa.date32()
    assert step.array.to_pylist() == [dt.date(2024, 2, 29), dt.date(2024, 3, 1)]


def test_text_to_date_rejects_impossible_and_non_iso_dates():
    step = run(["2024-01-01", "2024-02-30", "01/02/2024"], "date")
    assert step.array.to_pylist() == [dt.date(2024, 1, 1), None, None]
    assert messages(step) == {1: "'2024-02-30' is not a date (expected YYYY-MM-DD)",
                              2: "'01/02/2024' is not a date (expected YYYY-MM-DD)"}


def test_text_to_date_with_formats_uses_the_first_format_that_parses():
    step = run(["31/01/2024", "2024-02-03", "03/02/24"], "date", formats=["%d/%m/%Y", "%Y-%m-%d", "%d/%m/%y"])
    assert step.array.to_pylist() == [dt.date(2024, 1, 31), dt.date(2024, 2, 3), dt.date(2024, 2, 3)]


def test_text_to_date_with_a_format_rejects_a_day_the_month_does_not_have():
    step = run(["29/02/2024", "31/02/2024"], "date", formats=["%d/%m/%Y"])
    assert step.array.to_pylist() == [dt.date(2024, 2, 29), None]
    assert messages(step) == {1: "'31/02/2024' is not a date in format %d/%m/%Y"}


def test_text_to_date_with_a_four_digit_year_format_rejects_a_two_digit_year():
    step = run(["01/02/24"], "date", formats=["%d/%m/%Y"])
    assert messages(step) == {0: "'01/02/24' is not a date in format %d/%m/%Y"}


def test_text_to_timestamp_reads_iso_with_t_or_space_and_fractions():
    step = run(["2024-01-02T03:04:05", "2024-01-02 03:04:05.25", "2024-01-02"], "timestamp")
    assert step.array.type == pa.timestamp("us")
    assert step.array.to_pylist() == [dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 250000),
                                      dt.datetime(2024, 1, 2)]
    assert step.warnings == ()


def test_text_to_timestamp_converts_offsets_to_utc_and_warns():
    step = run(["2024-01-02T03:04:05+02:00", "2024-01-02 03:04:05Z", "2024-01-02 03:04:05"], "timestamp")
    assert step.array.to_pylist() == [dt.datetime(2024, 1, 2, 1, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5),
                                      dt.datetime(2024, 1, 2, 3, 4, 5)]
    assert step.warnings == (OFFSET_WARNING,)


def test_text_to_timestamp_rejects_what_is_not_iso_8601():
    step = run(["2024-01-02 03:04:05", "yesterday", "2024-13-01 00:00:00"], "timestamp")
    assert rejected(step) == [1, 2]
    assert messages(step)[1] == "'yesterday' is not a timestamp (expected ISO 8601, e.g. 2024-01-31T13:45:00)"


def test_text_to_timestamp_with_formats_parses_each_value_with_the_first_that_fits():
    formats = ["%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S"]
    step = run(["02/01/2024 03:04", "2024-01-02T05:06:07"], "timestamp", formats=formats)
    assert step.array.to_pylist() == [dt.datetime(2024, 1, 2, 3, 4), dt.datetime(2024, 1, 2, 5, 6, 7)]


def test_text_to_timestamptz_takes_naive_values_as_utc():
    step = run(["2024-01-02T03:04:05", "2024-01-02T03:04:05+02:00"], "timestamptz")
    assert step.array.type == pa.timestamp("us", tz="UTC")
    assert [v.replace(tzinfo=None) for v in step.array.to_pylist()] == [dt.datetime(2024, 1, 2, 3, 4, 5),
                                                                        dt.datetime(2024, 1, 2, 1, 4, 5)]
    assert step.warnings == ()


# --- text to json, uuid, bytes, text ---------------------------------------------------------


def test_text_to_json_keeps_valid_json_as_written():
    step = run(['{"a":  1}', "[1, 2]", "3"], "json")
    assert step.array.to_pylist() == ['{"a":  1}', "[1, 2]", "3"]
    assert step.failed is None


def test_text_to_json_rejects_invalid_json():
    step = run(['{"a": 1}', "{bad"], "json")
    assert messages(step) == {1: "'{bad' is not valid JSON"}


def test_text_to_uuid_gives_lowercase_canonical_form_without_braces():
    step = run(["{12345678-ABCD-abcd-1234-1234567890AB}", " 12345678-abcd-abcd-1234-1234567890ab "], "uuid")
    assert step.array.to_pylist() == ["12345678-abcd-abcd-1234-1234567890ab"] * 2


def test_text_to_uuid_rejects_other_text():
    step = run(["12345678-abcd-abcd-1234-1234567890ag"], "uuid")
    assert messages(step) == {
        0: "'12345678-abcd-abcd-1234-1234567890ag' is not a UUID (expected 8-4-4-4-12 hex digits)"}


def test_text_to_bytes_encodes_utf8():
    step = run(["abc", "é"], "bytes")
    assert step.array.type == pa.binary()
    assert step.array.to_pylist() == [b"abc", "é".encode()]


def test_text_to_text_is_the_identity():
    array = pa.array([" a ", "B"])
    assert coerce(array, LogicalType("text")).array is array


def test_large_string_becomes_string():
    step = run(["a", None], "text", pa.large_string())
    assert step.array.type == pa.string()
    assert step.array.to_pylist() == ["a", None]


def test_dictionary_encoded_text_is_decoded_first():
    step = run(["1", "x", "1"], "int", pa.dictionary(pa.int32(), pa.string()))
    assert step.array.to_pylist() == [1, None, 1]
    assert messages(step) == {1: "'x' is not an integer"}


def test_null_typed_column_becomes_nulls_of_the_target_type():
    step = run([None, None], "decimal(8,2)", pa.null())
    assert step.array.type == pa.decimal128(8, 2)
    assert step.array.null_count == 2


def test_invalid_utf8_bytes_are_rejected_for_text():
    step = run([b"ok", b"\xff"], "text")
    assert step.array.to_pylist() == ["ok", None]
    assert rejected(step) == [1]


# --- between typed values --------------------------------------------------------------------


def test_bigint_to_int_rejects_instead_of_wrapping():
    step = run([1, 2**40], "int", pa.int64())
    assert step.array.to_pylist() == [1, None]
    assert messages(step) == {1: f"value {2**40} is out of range for int"}


def test_float_to_bigint_rejects_fractions_and_keeps_whole_numbers():
    step = run([3.0, 1.5, float("nan")], "bigint")
    assert step.array.to_pylist() == [3, None, None]
    assert messages(step) == {1: "1.5 is not an integer", 2: "nan is not an integer"}


def test_decimal_to_int_rejects_fractions():
    step = run([Decimal("2.00"), Decimal("2.50")], "int")
    assert step.array.to_pylist() == [2, None]
    assert messages(step) == {1: "2.50 is not an integer"}


def test_bool_to_int_gives_one_and_zero():
    assert run([True, False, None], "int").array.to_pylist() == [1, 0, None]


def test_int_to_bool_accepts_only_zero_and_one():
    step = run([0, 1, 2], "bool", pa.int64())
    assert step.array.to_pylist() == [False, True, None]
    assert messages(step) == {2: "2 is not a boolean (expected 0 or 1)"}


def test_bigint_to_float_rejects_values_a_float_cannot_hold_exactly():
    step = run([3, 2**53 + 1], "float", pa.int64())
    assert step.array.to_pylist() == [3.0, None]
    assert rejected(step) == [1]


def test_float_to_decimal_rounds_the_decimal_value_people_see():
    step = run([0.1, 1.005, 2.675, -0.125], "decimal(10,2)")
    assert step.array.to_pylist() == [Decimal("0.10"), Decimal("1.01"), Decimal("2.68"), Decimal("-0.13")]


def test_decimal_to_smaller_scale_rounds_half_away_from_zero():
    step = run([Decimal("1.005"), Decimal("-2.345"), Decimal("2.344")], "decimal(10,2)")
    assert step.array.to_pylist() == [Decimal("1.01"), Decimal("-2.35"), Decimal("2.34")]


def test_decimal_to_smaller_precision_rejects_what_does_not_fit():
    step = run([Decimal("12.34"), Decimal("123.45")], "decimal(4,2)")
    assert messages(step) == {1: "123.45 does not fit decimal(4,2)"}


def test_numbers_and_dates_become_iso_text():
    assert run([1.5], "text").array.to_pylist() == ["1.5"]
    assert run([Decimal("1.50")], "text").array.to_pylist() == ["1.50"]
    assert run([True], "text").array.to_pylist() == ["true"]
    assert run([dt.date(2024, 1, 2)], "text").array.to_pylist() == ["2024-01-02"]


def test_timestamps_become_iso_text_without_an_empty_fraction():
    step = run([dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 500)], "text")
    assert step.array.to_pylist() == ["2024-01-02 03:04:05", "2024-01-02 03:04:05.000500"]


def test_date_to_timestamp_gives_midnight():
    assert run([dt.date(2024, 1, 2)], "timestamp").array.to_pylist() == [dt.datetime(2024, 1, 2)]


def test_timestamp_to_date_rejects_values_with_a_time_of_day():
    step = run([dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, 3)], "date")
    assert step.array.to_pylist() == [dt.date(2024, 1, 2), None]
    assert messages(step) == {1: "2024-01-02 03:00:00 is not a date (it has a time of day)"}


def test_timestamptz_to_timestamp_keeps_the_utc_time():
    step = run([dt.datetime(2024, 1, 2, 3, 4, 5)], "timestamp", pa.timestamp("us", tz="Europe/Paris"))
    assert step.array.to_pylist() == [dt.datetime(2024, 1, 2, 3, 4, 5)]


def test_struct_and_list_values_become_json_text():
    assert run([{"a": 1, "b": [1, 2]}, None], "json").array.to_pylist() == ['{"a": 1, "b": [1, 2]}', None]
    assert run([[1, 2]], "text").array.to_pylist() == ["[1, 2]"]


def test_map_values_become_json_objects():
    step = run([[("k", 1)]], "json", pa.map_(pa.string(), pa.int64()))
    assert step.array.to_pylist() == ['{"k": 1}']


def test_an_unsupported_conversion_rejects_every_value():
    step = run([dt.date(2024, 1, 1), None], "int")
    assert messages(step) == {0: "cannot convert date32[day] value 2024-01-01 to int"}


def test_accepts_tells_which_conversions_exist_at_all():
    assert accepts(pa.string(), LogicalType("int"))
    assert accepts(pa.null(), LogicalType("uuid"))
    assert accepts(pa.date32(), LogicalType("text"))
    assert not accepts(pa.date32(), LogicalType("int"))
    assert not accepts(pa.float64(), LogicalType("bool"))


# --- bytes, decimals beyond Arrow's sound arithmetic, extension types --------------------------------


def test_text_to_bytes_is_the_utf8_text_and_an_empty_string_is_zero_bytes():
    assert run(["", " é ", None], "bytes").array.to_pylist() == [b"", " é ".encode(), None]


def test_text_to_bytes_with_format_base64_decodes_and_rejects_what_is_not_base64():
    step = run(["//4AgA==", " AA== ", "", "not base64!", None], "bytes", formats=["base64"])
    assert step.array.to_pylist() == [b"\xff\xfe\x00\x80", b"\x00", b"", None, None]
    assert messages(step) == {3: "'not base64!' is not base64-encoded bytes"}


def test_text_to_bytes_with_format_base64_takes_a_batch_of_no_rows():
    # A batch whose every line the source rejected reaches the mapping with no rows.
    step = run([], "bytes", arrow_type=pa.string(), formats=["base64"])
    assert step.array.type == pa.binary() and len(step.array) == 0 and not step.errors


def test_text_to_bytes_with_format_hex_takes_an_optional_prefix_and_rejects_odd_digits():
    step = run(["00ff", "\\xDEAD", "0x0a", "abc", ""], "bytes", formats=["hex"])
    assert step.array.to_pylist() == [b"\x00\xff", b"\xde\xad", b"\x0a", None, b""]
    assert messages(step) == {3: "'abc' is not hex-encoded bytes"}


# Arrow's decimal256 division gets these wrong (2^64 - 1 rescaled by 10^20 loses digits).
EDGES = [2**64 - 1, 2**64 * 3 - 1, 2**96 - 1, 2**124 - 1]


def test_text_to_decimal_keeps_every_digit_of_values_at_the_64_bit_word_edges():
    step = run([str(v) for v in EDGES] + [f"{2**64 - 1}.5", f"-{2**64 - 1}.49"], "decimal(38,0)")
    assert step.array.to_pylist() == [Decimal(v) for v in EDGES] + [Decimal(2**64), Decimal(-(2**64 - 1))]


def test_decimal_to_a_smaller_scale_rounds_values_at_the_64_bit_word_edges_half_away_from_zero():
    values = [Decimal(v).scaleb(-10) for v in EDGES[:3]] + [Decimal("-2.5"), Decimal("0.4999999999")]
    step = run(values, "decimal(38,2)", pa.decimal128(38, 10))
    assert step.array.to_pylist() == [v.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for v in values]


def test_unsigned_64_bit_integers_convert_to_decimal_20_0_without_loss():
    step = run([2**64 - 1, 0, None], "decimal(20,0)", pa.uint64())
    assert step.array.to_pylist() == [Decimal(2**64 - 1), Decimal(0), None]


def test_decimal_to_text_writes_every_digit_never_an_exponent():
    step = run([Decimal("0"), Decimal("-0.0000000001"), Decimal("12.5")], "text", pa.decimal128(38, 10))
    assert step.array.to_pylist() == ["0.0000000000", "-0.0000000001", "12.5000000000"]


def test_arrow_uuid_values_become_lowercase_uuid_text():
    import uuid

    value = uuid.UUID("9F1C2F1E-7B5A-4C3E-8D2A-0123456789AB")
    step = run([value.bytes, None], "uuid", pa.uuid())
    assert step.array.to_pylist() == ["9f1c2f1e-7b5a-4c3e-8d2a-0123456789ab", None]
