"""Conversions suggested by a text column's first values."""

from portl.types import LogicalType
from portl.wizard.samples import DATE_FORMATS, ColumnSample, detect_formats, suggest


def text_column(*values):
    return ColumnSample("c", "text", list(values))


def test_iso_dates_need_no_format():
    found = suggest(text_column("2024-01-31", "2024-02-29"))

    assert (found.type, found.formats) == ("date", ())


def test_day_first_is_preferred_when_every_value_reads_both_ways():
    formats, left = detect_formats(["01/02/2023", "03/04/2023"], DATE_FORMATS, LogicalType("date"))

    assert (formats, left) == (["%d/%m/%Y"], [])


def test_a_day_past_twelve_in_second_place_makes_the_column_month_first():
    formats, _ = detect_formats(["01/02/2023", "12/31/2023"], DATE_FORMATS, LogicalType("date"))

    assert formats == ["%m/%d/%Y"]


def test_two_date_formats_in_one_column_are_both_found_most_common_first():
    found = suggest(text_column("2023-01-15", "16/02/2023", "2023-03-01", "2023-04-02"))

    assert found.type == "date"
    assert found.formats == ("%Y-%m-%d", "%d/%m/%Y")


def test_an_impossible_date_is_named_in_the_reason_and_does_not_stop_the_suggestion():
    found = suggest(text_column("15/01/2023", "16/02/2023", "17/03/2023", "18/04/2023", "31/02/2023"))

    assert found.formats == ("%d/%m/%Y",)
    assert "1 of the sampled values would be rejected ('31/02/2023')" in found.reason


def test_a_column_that_is_mostly_not_dates_gets_no_date_suggestion():
    assert suggest(text_column("2023-01-15", "soon", "later", "never")) is None


def test_timestamps_in_a_local_format_get_their_format():
    found = suggest(text_column("02/01/2024 10:00:00", "13/01/2024 11:30:00"))

    assert (found.type, found.formats) == ("timestamp", ("%d/%m/%Y %H:%M:%S",))


def test_iso_timestamps_need_no_format():
    found = suggest(text_column("2024-01-02 10:00:00", "2024-01-03T11:00"))

    assert (found.type, found.formats) == ("timestamp", ())


def test_amounts_of_money_get_the_money_transform_and_a_decimal_with_their_scale():
    found = suggest(text_column("$1,234.50", "$980.00", "(12.125)"))

    assert found.transforms == ("money",)
    assert found.type == "decimal(18,3)"


def test_percentages_get_the_percent_transform():
    assert suggest(text_column("10%", "7.5 %", "0%")).transforms == ("percent",)


def test_yes_and_no_are_booleans():
    assert suggest(text_column("yes", "NO", "Y")).type == "bool"


def test_whole_numbers_are_bigint():
    assert suggest(text_column("1", "-20", "300")).type == "bigint"


def test_codes_with_leading_zeros_stay_text():
    assert suggest(text_column("02134", "10001")) is None


def test_decimal_numbers_get_a_decimal_with_their_scale():
    assert suggest(text_column("1.5", "22.25", "3")).type == "decimal(18,2)"


def test_padded_text_is_trimmed():
    assert suggest(text_column(" Ada ", "Alan")).transforms == ("trim",)


def test_typed_columns_get_no_suggestion():
    assert suggest(ColumnSample("c", "bigint", [1, 2])) is None


def test_empty_and_null_values_are_ignored():
    assert suggest(text_column(None, "", "  ", "2024-01-31")).type == "date"
