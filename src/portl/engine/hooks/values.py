"""Column values as hooks see them (JSON-able) and back to Arrow.

A hook sees a row as a dict of JSON-able values: dates, times and timestamps as ISO text,
decimals as text (so no digit is lost to floating point), bytes as base64, durations as seconds,
lists and structs as JSON arrays and objects, nulls as ``None``. What a hook returns is decoded
back to the column's Arrow type: the same forms are accepted, as are the Python values they stand
for (a ``date``, a ``Decimal``, ``bytes``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from portl.types import META_KEY

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_FRACTION = re.compile(r"(\.\d{6})(\d{1,3})\d*")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class Codec:
    """How the values of one Arrow type travel to a hook and back.

    ``natives`` reads a column as Python values, ``encode`` turns one into its JSON form, and
    ``decode`` turns what a hook returned into a value ``pa.array(..., type)`` accepts, raising
    ``ValueError`` with a short reason when it cannot.
    """

    name: str
    natives: Callable[[pa.Array], list[Any]]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _plain(value: Any) -> Any:
    return value


def _pylist(array: pa.Array) -> list[Any]:
    return array.to_pylist()


def _int64s(array: pa.Array) -> list[Any]:
    return array.cast(pa.int64()).to_pylist()


def _fail(expected: str, value: Any) -> ValueError:
    return ValueError(f"expected {expected}, got {value!r}")


def codec_for(field: pa.Field) -> Codec:
    """The codec of one column; ``json``-tagged text columns also take objects and arrays."""
    codec = _codec(field.type)
    if (field.metadata or {}).get(META_KEY) == b"json" and codec.name == "text":
        return Codec("json text", codec.natives, codec.encode, _json_text)
    return codec


def _codec(t: pa.DataType) -> Codec:
    if pa.types.is_dictionary(t):
        inner = _codec(t.value_type)
        return Codec(inner.name, lambda a: inner.natives(a.dictionary_decode()), inner.encode, inner.decode)
    if pa.types.is_null(t):
        return Codec("null", _pylist, _plain, lambda v: _null_only(v))
    if pa.types.is_boolean(t):
        return Codec("a boolean", _pylist, _plain, _bool)
    if pa.types.is_integer(t):
        return _int_codec(t)
    if pa.types.is_floating(t):
        return Codec("a number", _pylist, _plain, _float)
    if pa.types.is_decimal(t):
        return _decimal_codec(t)
    if _is_text(t):
        return Codec("text", _pylist, _plain, _text)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        size = t.byte_width if pa.types.is_fixed_size_binary(t) else None
        return Codec("base64 bytes", _pylist, _b64, lambda v: _bytes(v, size))
    if pa.types.is_date(t):
        return Codec("a date like 2024-01-31", _pylist, _iso, _date)
    if pa.types.is_timestamp(t):
        return _timestamp_codec(t)
    if pa.types.is_time(t):
        return _time_codec(t)
    if pa.types.is_duration(t):
        return _duration_codec(t)
    if pa.types.is_struct(t):
        return _struct_codec(t)
    if pa.types.is_map(t):
        return _map_codec(t)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _list_codec(t.value_type)
    return Codec(str(t), _pylist, _plain, _plain)


def _is_text(t: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_string_view", None)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or bool(is_view and is_view(t))


# --- scalars ---------------------------------------------------------------------------------


def _null_only(value: Any) -> None:
    if value is not None:
        raise _fail("null", value)


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail("true or false", value)


def _int_codec(t: pa.DataType) -> Codec:
    signed = pa.types.is_signed_integer(t)
    low = -(2 ** (t.bit_width - 1)) if signed else 0
    high = 2 ** (t.bit_width - 1) - 1 if signed else 2**t.bit_width - 1
    name = f"a whole number between {low} and {high}"

    def decode(value: Any) -> int | None:
        if value is None:
            return None
        number: Any = value
        if isinstance(value, str):
            try:
                number = decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                raise _fail(name, value) from None
        if isinstance(number, bool) or not isinstance(number, (int, float, decimal.Decimal)):
            raise _fail(name, value)
        finite = number.is_finite() if isinstance(number, decimal.Decimal) else math.isfinite(number)
        if not finite or number != int(number) or not low <= int(number) <= high:
            raise _fail(name, value)
        return int(number)

    return Codec(name, _pylist, _plain, decode)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _fail("a number", value)
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _fail("a number", value)


def _decimal_codec(t: pa.DataType) -> Codec:
    name = f"a decimal({t.precision},{t.scale}) number, e.g. '12.50'"
    quantum = decimal.Decimal(1).scaleb(-t.scale)
    max_whole_digits = t.precision - t.scale

    def decode(value: Any) -> decimal.Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
            raise _fail(name, value)
        try:
            number = decimal.Decimal(str(value).strip() if not isinstance(value, decimal.Decimal) else value)
        except decimal.InvalidOperation:
            raise _fail(name, value) from None
        if not number.is_finite():
            raise _fail(name, value)
        # Rounding would change the value behind the hook's back, so extra digits are an error.
        if number.quantize(quantum, context=decimal.Context(prec=80)) != number:
            raise ValueError(f"{value!r} has more than {t.scale} decimal places (column is decimal({t.precision},{t.scale}))")
        if len(str(abs(int(number)))) > max_whole_digits and int(number) != 0:
            raise ValueError(f"{value!r} has too many digits for decimal({t.precision},{t.scale})")
        return number

    return Codec(name, _pylist, lambda d: None if d is None else format(d, "f"), decode)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        return str(value)
    raise _fail("text", value)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _b64(value: Any) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _bytes(value: Any, size: int | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            raise _fail("base64 text", value) from None
    else:
        raise _fail("base64 text", value)
    if size is not None and len(data) != size:
        raise ValueError(f"expected exactly {size} bytes, got {len(data)}")
    return data


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise _fail("a date without a time of day", value.isoformat())
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail("a date like 2024-01-31", value)


# --- timestamps, times and durations ---------------------------------------------------------
# Python's datetime stops at microseconds, so nanosecond columns travel as integers on the
# Python side and their extra digits are parsed and printed here.


def _split_nanos(text: str) -> tuple[str, int]:
    """``'...:05.123456789+01:00'`` -> (``'...:05.123456+01:00'``, 789)."""
    match = _FRACTION.search(text)
    if not match:
        return text, 0
    extra = int(match.group(2).ljust(3, "0"))
    return text[: match.start()] + match.group(1) + text[match.end():], extra


def _with_nanos(iso: str, nanos: int) -> str:
    """Put the sub-microsecond digits back into an ISO text made from a microsecond datetime."""
    if not nanos:
        return iso
    head, dot, rest = iso.partition(".")
    if dot:
        micro, tail = rest[:6], rest[6:]
    else:
        cut = max(iso.find("+", 11), iso.find("-", 11))
        head, micro, tail = (iso[:cut], "000000", iso[cut:]) if cut > 0 else (iso, "000000", "")
    return f"{head}.{micro}{nanos:03d}{tail}"


def _timestamp_codec(t: pa.DataType) -> Codec:
    tzinfo = pa.scalar(0, type=pa.timestamp("s", tz=t.tz)).as_py().tzinfo if t.tz else None
    name = "a timestamp like 2024-01-31T12:30:00" + ("+00:00" if t.tz else "")

    def parse(value: Any) -> tuple[dt.datetime, int]:
        if isinstance(value, dt.datetime):
            return value, 0
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(0)), 0
        if isinstance(value, str):
            text, nanos = _split_nanos(value.strip())
            try:
                return dt.datetime.fromisoformat(text), nanos
            except ValueError:
                pass
        raise _fail(name, value)

    if t.unit != "ns":
        return Codec(name, _pylist, _iso, lambda v: None if v is None else parse(v)[0])

    def decode_ns(value: Any) -> int | None:
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        moment, nanos = parse(value)
        # Naive values are wall time in UTC, as pyarrow reads them.
        since = (moment - _EPOCH_UTC) if moment.tzinfo else (moment - _EPOCH)
        return since // dt.timedelta(microseconds=1) * 1000 + nanos

    def encode_ns(value: int | None) -> str | None:
        if value is None:
            return None
        micros, nanos = divmod(value, 1000)
        moment = _EPOCH_UTC + dt.timedelta(microseconds=micros)
        moment = moment.astimezone(tzinfo) if tzinfo else moment.replace(tzinfo=None)
        return _with_nanos(moment.isoformat(), nanos)

    return Codec(name, _int64s, encode_ns, decode_ns)


def _time_codec(t: pa.DataType) -> Codec:
    name = "a time of day like 12:30:00"

    def parse(value: Any) -> tuple[dt.time, int]:
        if isinstance(value, dt.time):
            return value, 0
        if isinstance(value, str):
            text, nanos = _split_nanos(value.strip())
            try:
                return dt.time.fromisoformat(text), nanos
            except ValueError:
                pass
        raise _fail(name, value)

    if t.unit != "ns":
        return Codec(name, _pylist, _iso, lambda v: None if v is None else parse(v)[0])

    def decode_ns(value: Any) -> int | None:
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        clock, nanos = parse(value)
        micros = ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond
        return micros * 1000 + nanos

    def encode_ns(value: int | None) -> str | None:
        if value is None:
            return None
        micros, nanos = divmod(value, 1000)
        clock = (dt.datetime.min + dt.timedelta(microseconds=micros)).time()
        return _with_nanos(clock.isoformat(), nanos)

    return Codec(name, _int64s, encode_ns, decode_ns)


def _duration_codec(t: pa.DataType) -> Codec:
    per_second = _UNIT_PER_SECOND[t.unit]
    name = "a duration in seconds"

    def encode(count: int | None) -> int | float | None:
        if count is None:
            return None
        return count // per_second if count % per_second == 0 else count / per_second

    def decode(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, dt.timedelta):
            return value // dt.timedelta(microseconds=1) * per_second // 1_000_000
        if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
            raise _fail(name, value)
        try:
            return int(decimal.Decimal(str(value)) * per_second)
        except decimal.InvalidOperation:
            raise _fail(name, value) from None

    return Codec(name, _int64s, encode, decode)


# --- nested ----------------------------------------------------------------------------------


def _list_codec(item_type: pa.DataType) -> Codec:
    item = _codec(item_type)

    def decode(value: Any) -> list[Any] | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise _fail("a list", value)
        return [item.decode(v) for v in value]

    # Nested values come from to_pylist, so nanosecond items are not supported inside lists.
    return Codec(f"a list of {item.name}", _pylist, lambda v: None if v is None else [item.encode(x) for x in v], decode)


def _struct_codec(t: pa.DataType) -> Codec:
    fields = {t.field(i).name: _codec(t.field(i).type) for i in range(t.num_fields)}

    def encode(value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else {k: fields[k].encode(v) for k, v in value.items()}

    def decode(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _fail("an object", value)
        unknown = set(value) - set(fields)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}; expected {', '.join(fields)}")
        return {k: codec.decode(value.get(k)) for k, codec in fields.items()}

    return Codec("an object", _pylist, encode, decode)


def _map_codec(t: pa.DataType) -> Codec:
    key, item = _codec(t.key_type), _codec(t.item_type)

    def encode(pairs: list[tuple[Any, Any]] | None) -> list[list[Any]] | None:
        return None if pairs is None else [[key.encode(k), item.encode(v)] for k, v in pairs]

    def decode(value: Any) -> list[tuple[Any, Any]] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            value = list(value.items())
        if not isinstance(value, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            raise _fail("an object or a list of [key, value] pairs", value)
        return [(key.decode(k), item.decode(v)) for k, v in value]

    return Codec("a map", _pylist, encode, decode)
