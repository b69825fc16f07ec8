"""Type coercion: turn a column into the Arrow type of its destination, vectorised.

:func:`coerce` returns a :class:`Step`: the converted array, a mask of the rows whose value could not
be converted (their value is null in the array) and, for those rows only, the offending value and a
sentence saying what was expected. The engine rejects those rows and keeps the others.

Text, the common case (every CSV column is text):

- whitespace around numbers, booleans, dates, timestamps and UUIDs is ignored;
- an empty or blank string is NULL for every type except ``text`` and ``bytes`` (a CSV cell left
  empty means "no value", whatever the column's type);
- ``int``/``bigint`` take ``[+-]digits`` only (``'12.0'`` is rejected, not truncated);
- ``decimal(p,s)`` rounds half away from zero to ``s`` digits and rejects values beyond ``p`` digits;
- ``bool`` takes true/false, t/f, yes/no, y/n, 1/0 in any case;
- ``date`` takes ``YYYY-MM-DD``; ``timestamp``/``timestamptz`` take ISO 8601 (``T`` or a space,
  optional fraction, optional offset). With ``format`` given, the strptime formats are tried in
  order instead and the first that parses a value wins. A timestamp with an offset stored in a
  ``timestamp`` column is converted to UTC (the step carries a warning); a timestamp without an
  offset stored in a ``timestamptz`` column is taken as UTC;
- ``json`` must parse as JSON and is kept as written; ``uuid`` is stored lowercase, braces removed;
- ``bytes`` are the text's UTF-8 bytes, or with ``format`` ``base64`` or ``hex`` the bytes the
  text encodes (the empty string is zero bytes, not NULL).

Between other types, numbers convert with range and precision checks (rejecting, never wrapping or
truncating), timestamps lose sub-microsecond digits, and nested values become JSON text. The only
per-value Python work is JSON and base64 (no Arrow kernels), decimals in exponent notation, and
pinning down which values made a cast fail.
"""

from __future__ import annotations

import binascii
import decimal
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.types import LogicalType, arrow_type, decimal_text, uuid_text


@dataclass
class Step:
    """One stage's output: values, rejected rows (``failed``, or None) and why each was rejected."""

    array: pa.Array
    failed: pa.Array | None = None
    errors: dict[int, tuple[Any, str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def then(self, later: Step) -> Step:
        """Chain a later stage computed on this one's array; an earlier error for a row wins."""
        return Step(later.array, or_masks(self.failed, later.failed), {**later.errors, **self.errors},
                    self.warnings + tuple(w for w in later.warnings if w not in self.warnings))


def or_masks(a: pa.Array | None, b: pa.Array | None) -> pa.Array | None:
    """OR two optional rejection masks."""
    if a is None or b is None:
        return a if b is None else b
    return pc.or_(a, b)


def null_where(mask: pa.Array, array: pa.Array) -> pa.Array:
    """``array`` with null wherever ``mask`` is true (a null mask entry also gives null)."""
    return pc.if_else(mask, pa.scalar(None, array.type), array)


def reject(array: pa.Array, mask: pa.Array, shown: pa.Array, describe: Callable[[Any], str]) -> Step:
    """Reject the rows where ``mask`` holds, describing each by its value in ``shown``."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return Step(array)
    indexes = pc.indices_nonzero(mask)
    values = shown.take(indexes).to_pylist()
    errors = {i: (v, describe(v)) for i, v in zip(indexes.to_pylist(), values)}
    return Step(null_where(mask, array), mask, errors)


def show(value: Any) -> str:
    """A value as it appears in an error message: text quoted, numbers and dates plain."""
    return repr(value) if isinstance(value, str) else str(value)


def clean_text(text: pa.Array) -> pa.Array:
    """Trim whitespace and turn empty strings into NULL."""
    trimmed = pc.utf8_trim_whitespace(text)
    return null_where(pc.equal(trimmed, ""), trimmed)


def cast_pinned(array: pa.Array, to: pa.DataType, safe: bool = True) -> pa.Array:
    """Cast, and when the cast raises, null out exactly the values that made it raise.

    Halving the array keeps this close to vectorised when only a few values are bad: callers
    filter by regular expression first, so what reaches here is almost always castable.
    """
    try:
        return pc.cast(array, to, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(array) == 1:
            return pa.nulls(1, to)
    middle = len(array) // 2
    return pa.concat_arrays([cast_pinned(array.slice(0, middle), to, safe),
                             cast_pinned(array.slice(middle), to, safe)])


def _try_cast(array: pa.Array, to: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(array, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _valid_and(array: pa.Array, condition: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(array), pc.fill_null(condition, False))


def _newly_null(before: pa.Array, after: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(before), pc.is_null(after))


# --- numbers from text -----------------------------------------------------------------------

_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_DECIMAL_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FLOAT_TEXT = r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(?i:-?(nan|inf|infinity))$"


def _unsigned(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(clean_text(text), pattern=r"^\+", replacement="")


def _text_to_int(text: pa.Array, logical: LogicalType) -> Step:
    parsed = _try_cast(text, pa.int64())
    if parsed is not None:
        step = Step(parsed)
    else:
        digits = _unsigned(text)
        ok = pc.match_substring_regex(digits, r"^-?\d+$")
        parsed = cast_pinned(null_where(pc.invert(ok), digits), pa.int64())
        step = reject(parsed, _valid_and(digits, pc.invert(ok)), text, lambda v: f"{show(v)} is not an integer")
        step = step.then(reject(step.array, pc.and_(ok, pc.is_null(parsed)), text,
                                lambda v: f"value {v.strip()} is out of range for {logical.name}"))
    return _int_range(step, logical)


def _int_range(step: Step, logical: LogicalType) -> Step:
    low, high = _INT_RANGES[logical.name]
    array = step.array
    if logical.name == "int":
        outside = pc.or_(pc.less(array, low), pc.greater(array, high))
        step = step.then(reject(array, outside, array, lambda v: f"value {v} is out of range for int"))
    return Step(pc.cast(step.array, arrow_type(logical)), step.failed, step.errors, step.warnings)


def _text_to_float(text: pa.Array) -> Step:
    parsed = _try_cast(text, pa.float64())
    if parsed is not None:
        return Step(parsed)
    number = _unsigned(text)
    ok = pc.match_substring_regex(number, _FLOAT_TEXT)
    parsed = cast_pinned(null_where(pc.invert(ok), number), pa.float64())
    return reject(parsed, _newly_null(number, parsed), text, lambda v: f"{show(v)} is not a number")


# Nothing here divides a 256-bit Arrow decimal: Arrow's decimal256 division (behind ``round`` and
# behind casts to a smaller scale) returns wrong digits for some values (rescaling
# 18446744073709551615 by 10^20 gives 18446744067371298614). So text is cut as text to one digit
# past the scale, and only that digit decides the step away from zero; a decimal128, whose
# division is sound, is truncated by a cast and stepped when the remainder is at least half a
# unit; text in exponent notation, which is rare, is rounded by Python's decimal module. The
# steps and range checks are decimal256 additions and comparisons, which are exact.

_PLAIN_DECIMAL = r"^(?P<sign>[+-]?)0*(?P<whole>\d*)(?:\.(?P<fraction>\d*))?$"
_WORK_PRECISION = 40  # a decimal(38,s) value, with room for the step and the sum


def text_to_decimal(text: pa.Array, precision: int, scale: int, shown: pa.Array | None = None,
                    what: str = "a decimal number") -> Step:
    """Parse decimal text, rounding half away from zero to ``scale``; reject what does not fit."""
    shown = text if shown is None else shown
    number = clean_text(text)
    exact = _try_cast(number, pa.decimal128(precision, scale))
    if exact is not None:  # the common case: no value has more than `scale` decimals, all fit
        return Step(exact)
    ok = pc.fill_null(pc.match_substring_regex(number, _DECIMAL_TEXT), False)
    step = reject(number, _valid_and(number, pc.invert(ok)), shown, lambda v: f"{show(v)} is not {what}")
    exponent = pc.and_(ok, pc.fill_null(pc.match_substring_regex(number, "[eE]"), False))
    rounded, too_long = _round_plain(null_where(pc.or_(pc.invert(ok), exponent), number), precision, scale)
    if pc.any(exponent).as_py():
        rounded = pc.coalesce(rounded, _round_exponent(null_where(pc.invert(exponent), number), scale))
    return step.then(fit_decimal(rounded, precision, scale, shown, too_long))


def _round_plain(number: pa.Array, precision: int, scale: int) -> tuple[pa.Array, pa.Array]:
    """Decimal text without an exponent rounded to ``scale``, and which values have more whole
    digits than ``precision - scale`` (left null here, rejected by :func:`fit_decimal`)."""
    parts = pc.extract_regex(number, pattern=_PLAIN_DECIMAL)
    sign, whole, fraction = (pc.struct_field(parts, name) for name in ("sign", "whole", "fraction"))
    too_long = pc.fill_null(pc.greater(pc.utf8_length(whole), precision - scale), False)
    whole = pc.if_else(pc.equal(whole, ""), "0", whole)
    fraction = pc.utf8_rpad(fraction, width=scale + 1, padding="0")
    kept = [whole, ".", pc.utf8_slice_codeunits(fraction, 0, scale)] if scale else [whole]
    value = pc.cast(null_where(too_long, pc.binary_join_element_wise(sign, *kept, "")), pa.decimal128(precision, scale))
    up = pc.greater_equal(pc.utf8_slice_codeunits(fraction, scale, scale + 1), "5")
    return _away_from_zero(value, up, pc.equal(sign, "-"), scale), too_long


def _round_exponent(number: pa.Array, scale: int) -> pa.Array:
    quantum, too_big = Decimal(1).scaleb(-scale), Decimal(10) ** (_WORK_PRECISION - scale)
    out = []
    with decimal.localcontext() as context:
        context.prec = 2 * _WORK_PRECISION
        for text in number.to_pylist():
            value = None if text is None else Decimal(text)
            if value is not None:
                big = value.adjusted() >= _WORK_PRECISION - scale - 1
                value = too_big if big else value.quantize(quantum, rounding=decimal.ROUND_HALF_UP)
            out.append(value)
    return pa.array(out, pa.decimal256(_WORK_PRECISION + 1, scale))


def round_decimal(array: pa.Array, scale: int) -> pa.Array:
    """A ``decimal128`` array rounded half away from zero to a smaller ``scale``."""
    truncated = pc.cast(array, pa.decimal128(38, scale), safe=False)
    wide = pa.decimal256(_WORK_PRECISION, array.type.scale)
    remainder = pc.subtract(pc.cast(array, wide), pc.cast(truncated, wide))
    half = pa.scalar(Decimal(5).scaleb(-scale - 1), pa.decimal256(_WORK_PRECISION, scale + 1))
    negative = pc.less(array, pa.scalar(Decimal(0), array.type))
    return _away_from_zero(truncated, pc.greater_equal(pc.abs(remainder), half), negative, scale)


def _away_from_zero(value: pa.Array, up: pa.Array, negative: pa.Array, scale: int) -> pa.Array:
    """``value`` plus one unit of ``scale`` away from zero where ``up`` holds."""
    unit_type = pa.decimal256(_WORK_PRECISION, scale)
    unit = Decimal(1).scaleb(-scale)
    away = pc.if_else(pc.fill_null(negative, False), pa.scalar(-unit, unit_type), pa.scalar(unit, unit_type))
    step = pc.if_else(pc.fill_null(up, False), away, pa.scalar(Decimal(0).scaleb(-scale), unit_type))
    return pc.add(pc.cast(value, unit_type), step)


def fit_decimal(wide: pa.Array, precision: int, scale: int, shown: pa.Array,
                too_long: pa.Array | None = None) -> Step:
    """Reject the values beyond ``precision`` (and those ``too_long`` marks); give the others as
    ``decimal128(precision, scale)``. ``wide`` must not have a larger scale than ``scale``."""
    at = wide.type.scale  # a bound at the values' own scale: comparing scales apart needs more digits
    bound = pa.scalar(Decimal(10) ** (precision - scale), pa.decimal256(precision - scale + at + 1, at))
    too_big = pc.fill_null(pc.greater_equal(pc.abs(wide), bound), False)
    if too_long is not None:
        too_big = pc.or_(too_big, too_long)
    step = reject(wide, too_big, shown, lambda v: f"{show(v)} does not fit decimal({precision},{scale})")
    return Step(pc.cast(step.array, pa.decimal128(precision, scale)), step.failed, step.errors)


_TRUE = pa.array(["true", "t", "yes", "y", "1"])
_FALSE = pa.array(["false", "f", "no", "n", "0"])


def _text_to_bool(text: pa.Array) -> Step:
    word = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    yes, no = pc.is_in(word, value_set=_TRUE), pc.is_in(word, value_set=_FALSE)
    out = pc.if_else(yes, True, pc.if_else(no, pa.scalar(False), pa.scalar(None, pa.bool_())))
    bad = _valid_and(word, pc.and_(pc.invert(pc.or_(yes, no)), pc.not_equal(word, "")))
    return reject(out, bad, text, lambda v: f"{show(v)} is not a boolean (expected true/false, yes/no, 1/0)")


# --- dates and timestamps from text ----------------------------------------------------------

_DIRECTIVES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"(?P<day>\d{1,2})", "e": r"\s?(?P<day>\d{1,2})",
    "H": r"\d{1,2}", "I": r"\d{1,2}", "M": r"\d{1,2}", "S": r"\d{1,2}", "j": r"\d{1,3}",
    "b": r"[A-Za-z]+\.?", "B": r"[A-Za-z]+", "h": r"[A-Za-z]+\.?", "a": r"[A-Za-z]+\.?", "A": r"[A-Za-z]+",
    "p": r"[AaPp]\.?[Mm]\.?", "z": r"(?:Z|[+-]\d{2}:?\d{2})", "%": "%",
}
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$"
_HAS_OFFSET = r"[T ]\d{2}(?::\d{2}){0,2}(?:\.\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
OFFSET_WARNING = "values with a UTC offset were converted to UTC and stored without a time zone"


def _format_regex(fmt: str) -> tuple[str | None, bool]:
    """A regular expression a value must match for ``fmt``, and whether it captures the day.

    strptime alone accepts a 2-digit year for %Y and rolls 31/02 over into March; matching the
    shape first and comparing the day afterwards rejects both. None for directives not known here.
    """
    parts, has_day, position = ["^"], False, 0
    while position < len(fmt):
        char = fmt[position]
        if char == "%" and position + 1 < len(fmt):
            code = fmt[position + 1]
            if code not in _DIRECTIVES or (code in "de" and has_day):
                return None, False
            has_day = has_day or code in "de"
            parts.append(_DIRECTIVES[code])
            position += 2
        else:
            parts.append(r"\s+" if char.isspace() else re.escape(char))
            position += 1
    return "".join(parts) + "$", has_day and "%z" not in fmt


def _strptime(text: pa.Array, fmt: str, to: pa.DataType) -> pa.Array:
    pattern, check_day = _format_regex(fmt)
    if pattern is not None:
        text = null_where(pc.invert(pc.match_substring_regex(text, pattern)), text)
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    if check_day:
        day = pc.cast(pc.struct_field(pc.extract_regex(text, pattern=pattern), "day"), pa.int8())
        parsed = null_where(pc.not_equal(day, pc.cast(pc.day(parsed), pa.int8())), parsed)
    return _temporal_to(parsed, to)


def _temporal_to(parsed: pa.Array, to: pa.DataType) -> pa.Array:
    if pa.types.is_date(to) and parsed.type.tz:
        parsed = pc.cast(parsed, pa.timestamp(parsed.type.unit))
    return pc.cast(parsed, to, safe=False)


def parse_formats(text: pa.Array, formats: Sequence[str], to: pa.DataType, shown: pa.Array, what: str) -> Step:
    """Parse text with strptime ``formats`` tried in order; the first that parses a value wins."""
    clean = clean_text(text)
    out = None
    for fmt in formats:
        parsed = _strptime(clean if out is None else null_where(pc.is_valid(out), clean), fmt, to)
        out = parsed if out is None else pc.coalesce(out, parsed)
    expected = " or ".join(formats)
    step = reject(out, _newly_null(clean, out), shown, lambda v: f"{show(v)} is not a {what} in format {expected}")
    if any("%z" in fmt for fmt in formats) and not to.equals(pa.timestamp("us", "UTC")):
        step.warnings = (OFFSET_WARNING,)
    return step


def _text_to_date(text: pa.Array, formats: Sequence[str]) -> Step:
    if formats:
        return parse_formats(text, formats, pa.date32(), text, "date")
    parsed = _try_cast(text, pa.date32())
    if parsed is not None:
        return Step(parsed)
    clean = clean_text(text)
    parsed = _strptime(null_where(pc.invert(pc.match_substring_regex(clean, r"^\d{4}-\d{2}-\d{2}$")), clean),
                       "%Y-%m-%d", pa.date32())
    return reject(parsed, _newly_null(clean, parsed), text, lambda v: f"{show(v)} is not a date (expected YYYY-MM-DD)")


def _text_to_timestamp(text: pa.Array, to: pa.DataType, formats: Sequence[str]) -> Step:
    if formats:
        return parse_formats(text, formats, to, text, "timestamp")
    parsed = _try_cast(text, to)
    if parsed is not None:
        return Step(parsed)
    clean = clean_text(text)
    shaped = null_where(pc.invert(pc.match_substring_regex(clean, _ISO_TIMESTAMP)), clean)
    shaped = pc.replace_substring_regex(shaped, pattern=r"(\.\d{6})\d+", replacement=r"\1")
    offset = pc.fill_null(pc.match_substring_regex(shaped, _HAS_OFFSET), False)
    naive = cast_pinned(null_where(offset, shaped), pa.timestamp("us"))
    aware = cast_pinned(null_where(pc.invert(offset), shaped), pa.timestamp("us", "UTC"))
    parsed = pc.if_else(offset, pc.cast(aware, to), pc.cast(naive, to))
    step = reject(parsed, _newly_null(clean, parsed), text,
                  lambda v: f"{show(v)} is not a timestamp (expected ISO 8601, e.g. 2024-01-31T13:45:00)")
    if to.tz is None and pc.any(offset).as_py():
        step.warnings = (OFFSET_WARNING,)
    return step


# --- json, uuid ------------------------------------------------------------------------------


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _text_to_json(text: pa.Array) -> Step:
    clean = clean_text(text)  # validated trimmed, kept as written
    bad = pa.array([v is not None and not _is_json(v) for v in clean.to_pylist()], pa.bool_())
    return reject(null_where(pc.is_null(clean), text), bad, text, lambda v: f"{show(v)} is not valid JSON")


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _text_to_uuid(text: pa.Array) -> Step:
    word = pc.replace_substring_regex(pc.utf8_lower(clean_text(text)), pattern=r"^\{(.*)\}$", replacement=r"\1")
    bad = _valid_and(word, pc.invert(pc.match_substring_regex(word, _UUID)))
    return reject(word, bad, text, lambda v: f"{show(v)} is not a UUID (expected 8-4-4-4-12 hex digits)")


BYTES_FORMATS = ("base64", "hex")
_HEX = r"^(?:[0-9a-fA-F]{2})*$"


def _text_to_bytes(text: pa.Array, formats: Sequence[str]) -> Step:
    encoding = formats[0] if formats else None
    if encoding is None:
        return Step(pc.cast(text, pa.binary()))  # the text's UTF-8 encoding
    clean = pc.utf8_trim_whitespace(text)
    if encoding == "hex":
        digits = pc.replace_substring_regex(clean, pattern=r"^(?:\\x|0[xX])", replacement="")
        bad = _valid_and(digits, pc.invert(pc.match_substring_regex(digits, _HEX)))
        step = reject(null_where(bad, digits), bad, text, lambda v: f"{show(v)} is not hex-encoded bytes")
        return Step(_unhex(step.array), step.failed, step.errors)
    decoded, bad = [], []
    for value in clean.to_pylist():
        try:
            decoded.append(None if value is None else binascii.a2b_base64(value, strict_mode=True))
            bad.append(False)
        except (binascii.Error, ValueError):
            decoded.append(None)
            bad.append(True)
    return reject(pa.array(decoded, pa.binary()), pa.array(bad, pa.bool_()), text,
                  lambda v: f"{show(v)} is not base64-encoded bytes")


def _unhex(digits: pa.Array) -> pa.Array:
    """Hex digits to bytes for the whole array at once: one ``unhexlify`` over the values' buffer."""
    filled = pc.fill_null(digits, "").cast(pa.large_string())
    offsets = pa.Array.from_buffers(pa.int64(), len(filled) + 1, [None, filled.buffers()[1]], offset=filled.offset)
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    data = filled.buffers()[2]
    raw = binascii.unhexlify(data[first:last].to_pybytes()) if data is not None and last > first else b""
    halved = pc.divide(pc.subtract(offsets, first), 2)
    out = pa.Array.from_buffers(pa.large_binary(), len(filled), [None, halved.buffers()[1], pa.py_buffer(raw)])
    return null_where(pc.is_null(digits), out.cast(pa.binary()))


def nested_to_json(array: pa.Array) -> pa.Array:
    """Struct, list and map values as JSON text (Arrow has no kernel for this)."""
    def dump(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, list) and pa.types.is_map(array.type):
            value = dict(value)
        return json.dumps(value, default=str, ensure_ascii=False)
    return pa.array([dump(v) for v in array.to_pylist()], pa.string())


# --- the entry points ------------------------------------------------------------------------

_NUMBERS = {"text", "binary", "int", "float", "decimal", "bool"}
_TIMES = {"text", "binary", "date", "timestamp"}
_ACCEPTS = {  # which kinds of source values each type takes; text takes every kind
    "int": _NUMBERS, "bigint": _NUMBERS, "float": _NUMBERS, "decimal": _NUMBERS, "json": _NUMBERS | {"nested"},
    "bool": {"text", "binary", "int", "bool"}, "date": _TIMES, "timestamp": _TIMES, "timestamptz": _TIMES,
    "uuid": {"text", "binary"}, "bytes": {"text", "binary"},
}


def kind_of(t: pa.DataType) -> str:
    """The family of an Arrow type as far as coercion is concerned."""
    if pa.types.is_dictionary(t):
        return kind_of(t.value_type)
    if isinstance(t, pa.BaseExtensionType):
        return "text" if t.extension_name == "arrow.uuid" else kind_of(t.storage_type)
    checks = [
        ("null", pa.types.is_null), ("text", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
        ("binary", lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x) or pa.types.is_fixed_size_binary(x)),
        ("bool", pa.types.is_boolean), ("int", pa.types.is_integer), ("float", pa.types.is_floating),
        ("decimal", pa.types.is_decimal), ("date", pa.types.is_date), ("timestamp", pa.types.is_timestamp),
        ("nested", pa.types.is_nested),
    ]
    return next((name for name, test in checks if test(t)), "other")


def accepts(source: pa.DataType, logical: LogicalType) -> bool:
    """Whether values of ``source`` can convert to ``logical`` at all (some values may still fail)."""
    kind = kind_of(source)
    return kind == "null" or kind in _ACCEPTS.get(logical.name, {kind})


def coerce(array: pa.Array, logical: LogicalType, formats: Sequence[str] = ()) -> Step:
    """Convert ``array`` to the Arrow type of ``logical``, rejecting the values that do not convert.

    ``formats`` are strptime formats for date and timestamp text (ISO 8601 when empty).
    """
    target = arrow_type(logical)
    array = plain(array)
    if array.type.equals(target) and logical.name not in {"json", "uuid"}:
        return Step(array)
    kind = kind_of(array.type)
    if kind == "null":
        return Step(pa.nulls(len(array), target))
    if kind == "binary" and logical.name != "bytes":
        text = cast_pinned(array, pa.string())
        step = reject(text, _newly_null(array, text), array, lambda v: f"{v!r} is not valid UTF-8 text")
        return step.then(_from_text(step.array, logical, target, formats))
    if kind == "text":
        return _from_text(array, logical, target, formats)
    return _from_typed(array, kind, logical, target)


def plain(array: pa.Array) -> pa.Array:
    """Decode dictionaries and narrow large and view types, so that the kernels see one layout.
    Arrow's UUID extension becomes ``uuid`` text; other extension types, their storage."""
    if isinstance(array.type, pa.BaseExtensionType):
        array = uuid_text(array) if array.type.extension_name == "arrow.uuid" else array.storage
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        return pc.cast(array, pa.string())
    if pa.types.is_large_binary(array.type) or pa.types.is_fixed_size_binary(array.type):
        return pc.cast(array, pa.binary())
    return array


def _from_text(text: pa.Array, logical: LogicalType, target: pa.DataType, formats: Sequence[str]) -> Step:
    name = logical.name
    if name == "text":
        return Step(text)
    if name in _INT_RANGES:
        return _text_to_int(text, logical)
    if name == "float":
        return _text_to_float(text)
    if name == "decimal":
        return text_to_decimal(text, target.precision, target.scale)
    if name == "bool":
        return _text_to_bool(text)
    if name == "date":
        return _text_to_date(text, formats)
    if name in {"timestamp", "timestamptz"}:
        return _text_to_timestamp(text, target, formats)
    if name == "json":
        return _text_to_json(text)
    if name == "uuid":
        return _text_to_uuid(text)
    return _text_to_bytes(text, formats)


def _from_typed(array: pa.Array, kind: str, logical: LogicalType, target: pa.DataType) -> Step:
    name = logical.name
    if not accepts(array.type, logical):
        return reject(pa.nulls(len(array), target), pc.is_valid(array), array,
                      lambda v: f"cannot convert {array.type} value {show(v)} to {logical}")
    if name == "text":
        return Step(_to_text(array, kind))
    if name == "json":
        if kind == "nested":
            return Step(nested_to_json(array))
        step = Step(array)
        if kind == "float":
            step = reject(array, pc.invert(pc.is_finite(array)), array, lambda v: f"{v} is not valid JSON")
        return Step(_to_text(step.array, kind), step.failed, step.errors)
    if name in _INT_RANGES:
        return _int_range(_to_bigint(array, kind), logical)
    if name == "float":
        out = cast_pinned(array, pa.float64())
        return reject(out, _newly_null(array, out), array, lambda v: f"value {v} cannot be stored exactly as float")
    if name == "decimal":
        return _to_decimal(array, kind, target)
    if name == "bool":
        if kind == "bool":
            return Step(array)
        bad = _valid_and(array, pc.invert(pc.is_in(array, value_set=pa.array([0, 1], array.type))))
        step = reject(array, bad, array, lambda v: f"{v} is not a boolean (expected 0 or 1)")
        return Step(pc.cast(step.array, pa.bool_()), step.failed, step.errors)
    if name == "date":
        return _to_date(array, kind)
    if name in {"timestamp", "timestamptz"}:
        if kind == "date":
            array = pc.cast(array, pa.timestamp("us"))
        elif array.type.tz and target.tz is None:
            array = pc.cast(array, pa.timestamp(array.type.unit))
        return Step(pc.cast(array, target, safe=False))
    return Step(pc.cast(array, target))  # bytes from binary


def _to_text(array: pa.Array, kind: str) -> pa.Array:
    if kind == "nested":
        return nested_to_json(array)
    if kind == "timestamp":
        if array.type.tz:
            array = pc.cast(array, pa.timestamp(array.type.unit, "UTC"))
        # Whole seconds print without a fraction of zeros.
        seconds = pc.cast(array, pa.timestamp("s", array.type.tz), safe=False)
        whole = pc.equal(pc.cast(seconds, array.type), array)
        return pc.if_else(whole, pc.cast(seconds, pa.string()), pc.cast(array, pa.string()))
    if kind == "decimal":
        return decimal_text(array)
    return pc.cast(array, pa.string())


def _to_bigint(array: pa.Array, kind: str) -> Step:
    step = Step(array)
    if kind in {"float", "decimal"}:
        whole = pc.equal(pc.floor(array), array)
        if kind == "float":
            whole = pc.and_(whole, pc.is_finite(array))
        step = reject(array, pc.invert(whole), array, lambda v: f"{v} is not an integer")
    out = cast_pinned(step.array, pa.int64())
    too_big = _newly_null(step.array, out)
    return step.then(reject(out, too_big, array, lambda v: f"value {v} is out of range for bigint"))


def _to_decimal(array: pa.Array, kind: str, target: pa.DataType) -> Step:
    if kind == "float":
        step = reject(array, pc.invert(pc.is_finite(array)), array, lambda v: f"{v} is not a decimal number")
        return step.then(text_to_decimal(pc.cast(step.array, pa.string()), target.precision, target.scale, array))
    if kind == "decimal" and array.type.precision > 38:  # wider than decimal128: through its exact text
        return text_to_decimal(pc.cast(array, pa.string()), target.precision, target.scale, array)
    if kind == "decimal":
        array = pc.cast(array, pa.decimal128(38, array.type.scale))
        wide = round_decimal(array, target.scale) if array.type.scale > target.scale else array
    else:
        wide = pc.cast(pc.cast(array, pa.int64()) if kind == "bool" else array, pa.decimal256(_WORK_PRECISION, 0))
    return fit_decimal(wide, target.precision, target.scale, array)


def _to_date(array: pa.Array, kind: str) -> Step:
    if kind == "date":
        return Step(pc.cast(array, pa.date32()))
    if array.type.tz:
        array = pc.cast(array, pa.timestamp(array.type.unit))
    days = pc.cast(array, pa.date32())
    has_time = pc.not_equal(pc.cast(days, array.type), array)
    return reject(days, has_time, array, lambda v: f"{v} is not a date (it has a time of day)")
