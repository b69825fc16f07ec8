"""The ``where:`` of a check: a small filter language compiled to Arrow compute calls.

::

    amount > 0 and status != 'void'
    country in ('FR', 'DE') or (region is not null and not region like 'X%')
    day between '2024-01-01' and '2024-12-31'

Comparisons (``= == != <> < <= > >=``), ``in``/``not in``, ``between … and …``, ``like``/``not like``
(``%`` and ``_``), ``is [not] null``, combined with ``and``, ``or``, ``not`` and parentheses.
Literals are numbers, quoted text (``'it''s'``), ``true``, ``false`` and ``null``; a literal is
cast to its column's type, so ``'2024-01-01'`` compares with a date column as a date. A row whose
comparison is NULL is not kept, as in SQL.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Mask = Callable[[pa.RecordBatch], pa.Array]

_TOKEN = re.compile(r"""\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|'(?P<str>(?:[^']|'')*)'|"(?P<qid>(?:[^"]|"")+)"|"""
                    r"""(?P<op><=|>=|<>|!=|==|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""")
_OPS = {"=": "equal", "==": "equal", "!=": "not_equal", "<>": "not_equal", "<": "less", "<=": "less_equal",
        ">": "greater", ">=": "greater_equal"}


class FilterError(ValueError):
    """A ``where:`` that cannot be read, with the position of the problem."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: Any
    at: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            raise FilterError(f"cannot read {text[pos:].strip()[:20]!r} at character {pos + 1}")
        start = found.start(found.lastgroup)
        kind = found.lastgroup
        value = found.group(kind)
        if kind == "num":
            value = float(value) if any(c in value for c in ".eE") else int(value)
        elif kind == "str":
            value = value.replace("''", "'")
        elif kind == "qid":
            kind, value = "word", value.replace('""', '"')
            out.append(_Tok("ident", value, start))
            pos = found.end()
            continue
        out.append(_Tok(kind, value, start))
        pos = found.end()
    return out


class _Parser:
    def __init__(self, text: str, columns: dict[str, pa.DataType]):
        self.text, self.columns = text, columns
        self.toks = _tokens(text)
        self.i = 0
        self.used: set[str] = set()

    def parse(self) -> Mask:
        if not self.toks:
            raise FilterError("the filter is empty")
        mask = self._or()
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            raise FilterError(f"unexpected {tok.value!r} at character {tok.at + 1}")
        return mask

    # -- grammar ---------------------------------------------------------------------------------

    def _or(self) -> Mask:
        left = self._and()
        while self._word("or"):
            right = self._and()
            left = _both(pc.or_kleene, left, right)
        return left

    def _and(self) -> Mask:
        left = self._not()
        while self._word("and"):
            right = self._not()
            left = _both(pc.and_kleene, left, right)
        return left

    def _not(self) -> Mask:
        if self._word("not"):
            inner = self._not()
            return lambda batch: pc.invert(inner(batch))
        if self._op("("):
            inner = self._or()
            self._expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Mask:
        name = self._column()
        kind = self.columns[name]
        if self._word("is"):
            negate = self._word("not")
            if not self._word("null"):
                raise self._error("expected null after 'is'")
            return (lambda b: pc.is_valid(b.column(name))) if negate else (lambda b: pc.is_null(b.column(name)))
        negate = self._word("not")
        if self._word("in"):
            self._expect("(")
            values = [self._literal()]
            while self._op(","):
                values.append(self._literal())
            self._expect(")")
            value_set = _cast(pa.array(values), kind, name)
            test = lambda b: pc.is_in(b.column(name), value_set=value_set)  # noqa: E731
            return (lambda b: pc.invert(test(b))) if negate else test
        if self._word("like"):
            pattern = self._literal()
            if not isinstance(pattern, str):
                raise self._error("like takes quoted text, e.g. 'A%'")
            regex = "^" + "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + "$"
            test = lambda b: pc.match_substring_regex(_text(b.column(name)), regex)  # noqa: E731
            return (lambda b: pc.invert(test(b))) if negate else test
        if self._word("between"):
            low = _scalar(self._literal(), kind, name)
            if not self._word("and"):
                raise self._error("expected 'and' in between … and …")
            high = _scalar(self._literal(), kind, name)
            test = lambda b: pc.and_kleene(pc.greater_equal(b.column(name), low),  # noqa: E731
                                           pc.less_equal(b.column(name), high))
            return (lambda b: pc.invert(test(b))) if negate else test
        if negate:
            raise self._error("expected in, like or between after 'not'")
        tok = self._next()
        if tok is None or tok.kind != "op" or tok.value not in _OPS:
            raise self._error("expected a comparison (=, !=, <, <=, >, >=), in, like, between or is null", tok)
        value = self._literal()
        if value is None:
            raise self._error(f"comparing with null is never true: write '{name} is null' or '{name} is not null'")
        func = getattr(pc, _OPS[tok.value])
        scalar = _scalar(value, kind, name)
        return lambda b: func(b.column(name), scalar)

    # -- tokens ----------------------------------------------------------------------------------

    def _column(self) -> str:
        tok = self._next()
        if tok is None or tok.kind not in ("word", "ident"):
            raise self._error("expected a column name", tok)
        name = tok.value
        if name not in self.columns:
            import difflib

            close = difflib.get_close_matches(name, list(self.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the columns are: {', '.join(self.columns)}"
            raise FilterError(f"unknown column {name!r} at character {tok.at + 1}{hint}")
        self.used.add(name)
        return name

    def _literal(self) -> Any:
        tok = self._next()
        if tok is None:
            raise self._error("expected a value")
        if tok.kind in ("num", "str"):
            return tok.value
        if tok.kind == "word" and tok.value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.value.lower()]
        raise self._error("expected a value: a number, 'quoted text', true, false or null", tok)

    def _word(self, word: str) -> bool:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is not None and tok.kind == "word" and tok.value.lower() == word:
            self.i += 1
            return True
        return False

    def _op(self, op: str) -> bool:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is not None and tok.kind == "op" and tok.value == op:
            self.i += 1
            return True
        return False

    def _expect(self, op: str) -> None:
        if not self._op(op):
            raise self._error(f"expected {op!r}")

    def _next(self) -> _Tok | None:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        self.i += 1
        return tok

    def _error(self, message: str, tok: _Tok | None = None) -> FilterError:
        if tok is None and self.i - 1 < len(self.toks):
            tok = self.toks[max(0, self.i - 1)] if self.i > 0 else None
        where = f" at character {tok.at + 1}" if tok is not None else " at the end"
        return FilterError(message + where)


def _both(func: Callable, left: Mask, right: Mask) -> Mask:
    return lambda batch: func(left(batch), right(batch))


def _text(column: Any) -> Any:
    return column if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) else pc.cast(column, pa.string())


def _scalar(value: Any, kind: pa.DataType, column: str) -> pa.Scalar:
    return _cast(pa.array([value]), kind, column)[0]


def _cast(values: pa.Array, kind: pa.DataType, column: str) -> pa.Array:
    try:
        if pa.types.is_decimal(kind):
            return pa.array([None if v is None else decimal.Decimal(str(v)) for v in values.to_pylist()], kind)
        if pa.types.is_date(kind) and pa.types.is_string(values.type):
            return pa.array([None if v is None else datetime.date.fromisoformat(v) for v in values.to_pylist()], kind)
        return values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, decimal.InvalidOperation, ValueError) as exc:
        shown = ", ".join(repr(v) for v in values.to_pylist())
        raise FilterError(f"{shown} cannot be compared with column {column!r} ({kind}): {exc}") from None


def compile_filter(text: str, schema: pa.Schema) -> Mask:
    """``text`` as a function of a batch giving a boolean mask (NULL read as false by the caller).
    Raises :class:`FilterError` saying what and where."""
    return _Parser(text, {f.name: f.type for f in schema}).parse()


def keep(mask: pa.Array) -> pa.Array:
    """A filter's mask with NULL (unknown) as false."""
    return pc.fill_null(mask, False)
