"""Row-level checks and where: filters on Arrow batches."""

import datetime
import decimal

import pyarrow as pa
import pytest

from portl.quality.filters import FilterError, compile_filter, keep
from portl.quality.rowchecks import RowCheck
from portl.spec.quality import AcceptedValues, Length, NotNull, Pattern, Range

BATCH = pa.record_batch({
    "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
    "email": pa.array(["a@x.com", None, "  ", "bad", "e@x.com"]),
    "status": pa.array(["open", "closed", "void", None, "open"]),
    "amount": pa.array([decimal.Decimal("10.00"), decimal.Decimal("-1.50"), decimal.Decimal("0"), None,
                        decimal.Decimal("1000.01")], pa.decimal128(12, 2)),
    "day": pa.array([datetime.date(2024, 1, d) for d in (1, 2, 3, 4, 5)], pa.date32()),
})


def failing(spec) -> list[int]:
    check = RowCheck(spec, BATCH.schema)
    return check.describe(BATCH, check.failing(BATCH)).indexes


def test_not_null_fails_nulls_only_unless_blanks_count():
    assert failing(NotNull(check="not_null", columns=["email"])) == [1]
    assert failing(NotNull(check="not_null", columns=["email"], empty_is_null=True)) == [1, 2]


def test_accepted_values_lets_null_pass_and_names_the_value():
    spec = AcceptedValues(check="accepted_values", columns=["status"], values=["open", "closed"])
    check = RowCheck(spec, BATCH.schema)
    found = check.describe(BATCH, check.failing(BATCH))
    assert found.indexes == [2]
    assert found.reasons == ["check accepted_values(status): status 'void' is not one of 'open', 'closed'"]


def test_range_compares_decimals_and_dates_inclusively():
    assert failing(Range(check="range", columns=["amount"], min=0, max=1000)) == [1, 4]
    assert failing(Range(check="range", columns=["amount"], min=0, exclusive=True)) == [1, 2]
    assert failing(Range(check="range", columns=["day"], min="2024-01-02", max="2024-01-04")) == [0, 4]


def test_pattern_and_length():
    assert failing(Pattern(check="pattern", columns=["email"], regex=r"^[^@\s]+@[^@\s]+$")) == [2, 3]
    assert failing(Length(check="length", columns=["status"], min=5)) == [0, 2, 4]


def test_where_limits_a_check_to_the_rows_it_keeps():
    spec = NotNull(check="not_null", columns=["email"], where="status in ('closed', 'void')", empty_is_null=True)
    assert failing(spec) == [1, 2]


def test_a_row_failing_on_several_columns_names_the_first():
    spec = NotNull(check="not_null", columns=["status", "amount"])
    check = RowCheck(spec, BATCH.schema)
    found = check.describe(BATCH, check.failing(BATCH))
    assert found.indexes == [3] and found.columns == ["status"]


def test_a_bound_that_cannot_be_compared_says_so():
    with pytest.raises(ValueError, match="cannot be compared with column day"):
        RowCheck(Range(check="range", columns=["day"], min="yesterday"), BATCH.schema)


@pytest.mark.parametrize("text, rows", [
    ("amount > 0 and status != 'void'", [0, 4]),
    ("status = 'open' or amount is null", [0, 3, 4]),
    ("not (status = 'open') and status is not null", [1, 2]),
    ("day between '2024-01-02' and '2024-01-03'", [1, 2]),
    ("email like '%@x.com'", [0, 4]),
    ("id not in (1, 2, 3)", [3, 4]),
])
def test_filters(text, rows):
    mask = keep(compile_filter(text, BATCH.schema)(BATCH))
    assert [i for i, v in enumerate(mask.to_pylist()) if v] == rows


@pytest.mark.parametrize("text, message", [
    ("amout > 0", "unknown column 'amout' at character 1; did you mean 'amount'?"),
    ("amount >", "expected a value at the end"),
    ("amount = null", "comparing with null is never true"),
    ("status = 'open' and", "expected a column name at the end"),
    ("day > 'soon'", "cannot be compared with column 'day'"),
])
def test_filter_errors_say_what_and_where(text, message):
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        compile_filter(text, BATCH.schema)
