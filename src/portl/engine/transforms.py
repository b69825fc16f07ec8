"""The transform steps of a column's pipeline, vectorised with ``pyarrow.compute``.

Each step takes the column's current array and returns a :class:`~portl.engine.coerce.Step`. Text
steps (lower, upper, trim, replace) read any input as text. ``concat`` and ``coalesce`` read source
columns, so they only start a pipeline (:func:`concat`, :func:`coalesce`).

- ``money`` reads amounts such as ``$1,234.50``, ``(1,234.50)``, ``-£12``, ``1.234,50 €``: currency
  symbols ($ € £ ¥) and spaces are dropped, parentheses or a leading ``-`` make it negative, ``,`` is a
  thousands separator unless it is followed by exactly one or two final digits (``1.234,50``), in
  which case it is the decimal separator and ``.`` groups thousands. The result is a decimal at the
  destination's precision and scale (``decimal(38,4)`` when the destination is not a decimal),
  rounded half away from zero.
- ``percent`` reads ``12.5%`` as 0.125. A value without ``%`` is read the same way (``12.5`` is
  0.125): the transform says the column holds percentages, so a bare number is a number of
  percent, never already a fraction. Result: the destination decimal, else ``decimal(38,6)``.
- ``date`` / ``datetime`` parse text with their strptime formats, tried in order.
- ``replace`` takes an RE2 pattern; ``with`` may refer to groups as ``\\1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.engine.coerce import (
    Step, clean_text, coerce, kind_of, null_where, parse_formats, plain, reject, show, text_to_decimal,
)
from portl.spec.models import Transform
from portl.types import LogicalType

SOURCE_TRANSFORMS = ("concat", "coalesce")
MONEY_DEFAULT = (38, 4)
PERCENT_DEFAULT = (38, 6)

_MONEY_NOISE = "[\\s\u00a0\u202f$€£¥]"
_MONEY_POINT = r"^[+-]?(\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d+)?|\.\d+)$"
_MONEY_COMMA = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d{1,2}$"
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)$"


def as_text(array: pa.Array) -> pa.Array:
    """The array as Arrow strings (numbers and dates in ISO form, nested values as JSON)."""
    array = plain(array)
    return array if pa.types.is_string(array.type) else coerce(array, LogicalType("text")).array


def concat(parts: Sequence[pa.Array], sep: str = "") -> pa.Array:
    """Join columns with ``sep``. Null parts are left out (no doubled separator); all null gives null."""
    # binary_join_element_wise(null_handling="skip") would do this, but in pyarrow 26 it drops the
    # rows whose parts are all null, shortening the array; so join pairwise and fall back.
    texts = [as_text(p) for p in parts]
    joined = texts[0]
    for part in texts[1:]:
        joined = pc.coalesce(pc.binary_join_element_wise(joined, part, sep), joined, part)
    return joined


def coalesce(parts: Sequence[pa.Array]) -> pa.Array:
    """The first non-null value across columns (read as text when their types differ)."""
    parts = [plain(p) for p in parts]
    types = {str(p.type): p.type for p in parts if not pa.types.is_null(p.type)}
    common = next(iter(types.values())) if len(types) == 1 else pa.string()
    return pc.coalesce(*[pc.cast(p, common) if pa.types.is_null(p.type) else p if p.type == common else as_text(p)
                         for p in parts])


def decimal_target(transform: str, logical: LogicalType) -> tuple[int, int]:
    """Precision and scale a money or percent step produces for a destination of type ``logical``."""
    if logical.name == "decimal":
        return logical.precision or 38, logical.scale or 0
    return MONEY_DEFAULT if transform == "money" else PERCENT_DEFAULT


def output_type(transform: Transform, input_type: pa.DataType, logical: LogicalType) -> pa.DataType:
    """The Arrow type a step produces from ``input_type``, for planning without data."""
    name = transform.name
    if name in {"lower", "upper", "trim", "replace", "concat"}:
        return pa.string()
    if name in {"money", "percent"}:
        return pa.decimal128(*decimal_target(name, logical))
    if name == "date":
        return pa.date32()
    if name == "datetime":
        return pa.timestamp("us")
    if pa.types.is_dictionary(input_type):
        return input_type.value_type
    return input_type


def validate(transform: Transform) -> None:
    """Raise ``ValueError`` for arguments that only fail when run (a bad regular expression)."""
    if transform.name == "replace":
        try:
            _replace(pa.array([""]), transform.args)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            pattern = transform.args["pattern"]
            raise ValueError(f"replace pattern {pattern!r} is not a valid regular expression: {exc}") from exc


def apply(transform: Transform, array: pa.Array, logical: LogicalType) -> Step:
    """Run one transform step on ``array``; ``logical`` is the destination column's type."""
    name = transform.name
    if name in SOURCE_TRANSFORMS:
        raise ValueError(f"{name} reads source columns and must start the pipeline")
    if name == "lower":
        return Step(pc.utf8_lower(as_text(array)))
    if name == "upper":
        return Step(pc.utf8_upper(as_text(array)))
    if name == "trim":
        return Step(pc.utf8_trim_whitespace(as_text(array)))
    if name == "replace":
        return Step(_replace(as_text(array), transform.args))
    if name == "null_if_empty":
        array = plain(array)
        if not pa.types.is_string(array.type):
            return Step(array)
        return Step(null_where(pc.equal(pc.utf8_trim_whitespace(array), ""), array))
    if name == "null_if":
        return Step(_null_if(plain(array), list(transform.args)))
    if name == "default":
        return Step(_fill(plain(array), transform.args))
    if name == "money":
        return _money(array, *decimal_target(name, logical))
    if name == "percent":
        return _percent(array, *decimal_target(name, logical))
    if name in {"date", "datetime"}:
        return _temporal(array, transform.formats, pa.date32() if name == "date" else pa.timestamp("us"))
    raise ValueError(f"unknown transform {name!r}")


def _replace(text: pa.Array, args: dict[str, Any]) -> pa.Array:
    return pc.replace_substring_regex(text, pattern=args["pattern"], replacement=str(args.get("with") or ""))


def _null_if(array: pa.Array, values: list[Any]) -> pa.Array:
    if pa.types.is_string(array.type):
        listed = pa.array([_as_str(v) for v in values if v is not None], pa.string())
    else:
        kept = []
        for value in values:
            try:
                kept.append(pa.scalar(value).cast(array.type).as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                continue  # a value this column cannot hold never matches
        listed = pa.array(kept, array.type)
    return null_where(pc.is_in(array, value_set=listed), array)


def _fill(array: pa.Array, value: Any) -> pa.Array:
    if value is None:
        return array
    if pa.types.is_null(array.type):
        return pa.repeat(pa.scalar(value), len(array))
    if not pa.types.is_string(array.type):
        try:
            return pc.fill_null(array, pa.scalar(value).cast(array.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            array = as_text(array)
    return pc.fill_null(array, _as_str(value))


def _as_str(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _money(array: pa.Array, precision: int, scale: int) -> Step:
    array = plain(array)
    if kind_of(array.type) in {"int", "float", "decimal"}:
        return coerce(array, LogicalType("decimal", precision, scale))
    text = clean_text(as_text(array))
    text = pc.replace_substring_regex(text, pattern=_MONEY_NOISE, replacement="")
    text = pc.replace_substring_regex(text, pattern=r"^\((.*)\)$", replacement=r"-\1")
    point = pc.match_substring_regex(text, _MONEY_POINT)
    comma = pc.match_substring_regex(text, _MONEY_COMMA)
    number = pc.if_else(comma, pc.replace_substring(pc.replace_substring(text, ".", ""), ",", "."),
                        pc.replace_substring(text, ",", ""))
    money = pc.or_(point, comma)
    step = reject(null_where(pc.invert(money), number), pc.invert(money), array,
                  lambda v: f"{show(v)} is not a money amount")
    return step.then(text_to_decimal(step.array, precision, scale, array, "a money amount"))


def _percent(array: pa.Array, precision: int, scale: int) -> Step:
    original = plain(array)
    text = pc.replace_substring_regex(clean_text(as_text(original)), pattern=r"\s*%$", replacement="")
    number = pc.match_substring_regex(text, _PLAIN_NUMBER)
    step = reject(null_where(pc.invert(number), text), pc.invert(number), original,
                  lambda v: f"{show(v)} is not a percentage")
    # Divide by 100 exactly by moving the decimal point two places left in the text.
    padded = pc.replace_substring_regex(step.array, pattern=r"^([+-]?)(\d*)(?:\.(\d*))?$", replacement=r"\100\2.\3")
    fraction = pc.replace_substring_regex(padded, pattern=r"^([+-]?)(\d*)(\d\d)\.(\d*)$", replacement=r"\1\2.\3\4")
    return step.then(text_to_decimal(fraction, precision, scale, original, "a percentage"))


def _temporal(array: pa.Array, formats: Sequence[str], to: pa.DataType) -> Step:
    array = plain(array)
    if kind_of(array.type) in {"date", "timestamp"}:
        return coerce(array, LogicalType("date" if pa.types.is_date(to) else "timestamp"))
    what = "date" if pa.types.is_date(to) else "timestamp"
    return parse_formats(as_text(array), formats, to, array, what)
