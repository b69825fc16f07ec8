"""Templates in flows: a sandboxed Jinja environment, its helpers, and failures that say what is
missing and what is there instead.

A value written ``"{{ expr }}"`` and nothing else keeps the expression's Python type (an int stays
an int, a row stays a mapping); any other text with ``{{ }}`` renders to a string; text without
``{{`` is taken as written (None renders as empty text inside text). Mappings and lists are
templated value by value. Templates are compiled once per step and rendered per item.

A missing value fails the render with the path the template asked for and the keys that exist
(``'steps.read_csv.rows[0].cod' is undefined (steps.read_csv.rows[0] has: code, source, name)``).
Finding that path costs nothing until a render fails: the template's syntax tree is walked only
then, against the values the render saw.

In a dry-run, results that only a run can give (a query's rows, an HTTP answer) are
:class:`Placeholder` values: any attribute of one is another placeholder, and a condition that
depends on one is reported as unknown instead of being guessed.
"""

from __future__ import annotations

import base64
import contextvars
from collections import ChainMap
import datetime
import decimal
import difflib
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import missing

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
PORTL_NAMESPACE = uuid.UUID("5f1e7c52-8a6b-5d3e-9c0a-3b2f6e4d7a91")
_NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL, "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}


class TemplateFailure(Exception):
    """A template could not be rendered. ``where`` names the field (``mapping.code``)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where = where
        self.reason = reason


# --- dry-run stand-ins -------------------------------------------------------------------------

_UNKNOWN: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("portl_unknown", default=None)


def _touch() -> None:
    box = _UNKNOWN.get()
    if box is not None:
        box[0] = True


class Placeholder:
    """A value a dry-run cannot know (a query's result, an HTTP answer). Attributes, items and
    arithmetic give further placeholders; it prints as ``⟨label⟩``."""

    __slots__ = ("label",)

    def __init__(self, label: str):
        self.label = label

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{self.label}.{name}")

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder(f"{self.label}[{key!r}]")

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        return Placeholder(f"{self.label}(...)")

    def __str__(self) -> str:
        return f"⟨{self.label}⟩"

    __repr__ = __str__

    def __bool__(self) -> bool:
        _touch()
        return True

    def __iter__(self):
        _touch()
        yield Placeholder(f"{self.label}[0]")

    def __len__(self) -> int:
        _touch()
        return 1

    def __contains__(self, item: Any) -> bool:
        _touch()
        return False

    def __hash__(self) -> int:
        return id(self)

    def _op(symbol: str, reverse: bool = False):  # noqa: N805 - builds the operator methods below
        def method(self: Placeholder, other: Any) -> Placeholder:
            _touch()
            text = f"{other} {symbol} {self.label}" if reverse else f"{self.label} {symbol} {other}"
            return Placeholder(text)
        return method

    __add__, __radd__ = _op("+"), _op("+", True)
    __sub__, __rsub__ = _op("-"), _op("-", True)
    __mul__, __rmul__ = _op("*"), _op("*", True)
    __truediv__, __rtruediv__ = _op("/"), _op("/", True)
    __floordiv__, __rfloordiv__ = _op("//"), _op("//", True)
    __mod__, __rmod__ = _op("%"), _op("%", True)
    __eq__, __ne__ = _op("=="), _op("!=")  # type: ignore[assignment]
    __lt__, __le__, __gt__, __ge__ = _op("<"), _op("<="), _op(">"), _op(">=")
    del _op


def evaluate_condition(expression: Callable[[Mapping[str, Any]], Any], scope: Mapping[str, Any]) -> bool | None:
    """Whether a condition holds; None when it depends on a dry-run placeholder."""
    box = [False]
    token = _UNKNOWN.set(box)
    try:
        value = expression(scope)
        if isinstance(value, Placeholder):
            return None
        result = bool(value)
    finally:
        _UNKNOWN.reset(token)
    return None if box[0] else result


# --- the environment ---------------------------------------------------------------------------


class _MissingValue(UndefinedError):
    """An undefined value was used; carries the object looked in and the name looked for."""

    def __init__(self, obj: Any, name: Any, message: str):
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Strict(StrictUndefined):
    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None, exc: Any = UndefinedError):
        super().__init__(hint, obj, name, exc)
        self._undefined_exception = lambda message: _MissingValue(obj, name, message)


class _Environment(SandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # A key wins over a method of the same name: row.values, row.items and steps.keys are
        # the CSV columns and step results a flow means, not dict methods.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(kind: str) -> Callable[[Any], Any]:
    def digest(value: Any) -> Any:
        if isinstance(value, Placeholder):
            return Placeholder(f"{kind}({value.label})")
        return hashlib.new(kind, _text(value)).hexdigest()
    digest.__name__ = kind
    digest.__doc__ = f"The {kind} hex digest of text (UTF-8), or of other values' canonical JSON."
    return digest


def tojson(value: Any, indent: int | None = None) -> str:
    """JSON text of a value (keys sorted only when indenting); dates, decimals and UUIDs as text."""
    return json.dumps(jsonable(value), ensure_ascii=False, indent=indent, sort_keys=indent is not None)


_PATH_TOKEN = re.compile(r"\.(?P<name>[A-Za-z_][\w-]*)|\[(?P<index>-?\d+)\]|\[(?P<quote>['\"])(?P<key>.*?)(?P=quote)\]|\[\*\]|\.\*")


def json_path(value: Any, path: str, default: Any = None) -> Any:
    """A value inside nested mappings and lists: ``json_path(body, "$.items[0].id")``. ``[*]``
    collects from every element. ``default`` when a part is missing."""
    if isinstance(value, Placeholder):
        return Placeholder(f"json_path({value.label}, {path!r})")
    text = path.strip()
    text = text[1:] if text.startswith("$") else ("." + text if text and text[0] not in ".[" else text)
    current: list[Any] = [value]
    wildcard = False
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"json_path: cannot read {path!r} from position {pos + 1}; write e.g. $.items[0].id")
        pos = match.end()
        found: list[Any] = []
        for item in current:
            if match.group("name") is not None or match.group("key") is not None:
                key = match.group("name") if match.group("name") is not None else match.group("key")
                if isinstance(item, Mapping) and key in item:
                    found.append(item[key])
            elif match.group("index") is not None:
                index = int(match.group("index"))
                if isinstance(item, (list, tuple)) and -len(item) <= index < len(item):
                    found.append(item[index])
            else:
                wildcard = True
                if isinstance(item, Mapping):
                    found.extend(item.values())
                elif isinstance(item, (list, tuple)):
                    found.extend(item)
        current = found
        if not current and not wildcard:
            return default
    if wildcard:
        return current
    return current[0] if current else default


def now() -> datetime.datetime:
    """The current time in UTC (a timezone-aware datetime; text in ISO 8601 in JSON)."""
    return datetime.datetime.now(datetime.timezone.utc)


def coalesce(*values: Any) -> Any:
    """The first value that is neither None nor undefined."""
    for value in values:
        if value is not None and not isinstance(value, Undefined):
            return value
    return None


def to_int(value: Any, default: Any = missing) -> Any:
    """``int(value)``; text such as ``"12"`` or ``"12.0"`` too. ``default`` instead of failing."""
    if isinstance(value, Placeholder):
        return value
    try:
        if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
            return int(decimal.Decimal(value.strip()))
        return int(value)
    except (TypeError, ValueError, decimal.InvalidOperation, OverflowError):
        if default is not missing:
            return default
        raise ValueError(f"int: {value!r} is not a whole number") from None


def to_float(value: Any, default: Any = missing) -> Any:
    """``float(value)``; ``default`` instead of failing."""
    if isinstance(value, Placeholder):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        if default is not missing:
            return default
        raise ValueError(f"float: {value!r} is not a number") from None


def uuid5(name: Any, namespace: Any = None) -> Any:
    """A name-based UUID (text): the same name always gives the same UUID. ``namespace``: dns,
    url, oid, x500 or a UUID; default Portl's own."""
    if isinstance(name, Placeholder):
        return Placeholder(f"uuid5({name.label})")
    if namespace is None:
        space = PORTL_NAMESPACE
    elif isinstance(namespace, uuid.UUID):
        space = namespace
    elif str(namespace).lower() in _NAMESPACES:
        space = _NAMESPACES[str(namespace).lower()]
    else:
        try:
            space = uuid.UUID(str(namespace))
        except ValueError:
            raise ValueError(f"uuid5: namespace {namespace!r} is not dns, url, oid, x500 nor a UUID") from None
    text = name if isinstance(name, str) else _text(name).decode("utf-8")
    return str(uuid.uuid5(space, text))


def _is_none(value: Any) -> bool:
    if isinstance(value, Placeholder):
        _touch()
        return False
    return value is None


HELPERS: dict[str, Callable[..., Any]] = {
    "md5": _digest("md5"), "sha256": _digest("sha256"), "tojson": tojson, "json_path": json_path, "now": now,
    "coalesce": coalesce, "int": to_int, "float": to_float, "uuid5": uuid5,
}

# None inside text renders as nothing ("{{ a }}:{{ b }}" with b None is "x:"), not as "None".
ENV = _Environment(undefined=_Strict, autoescape=False, keep_trailing_newline=True,
                   finalize=lambda value: "" if value is None else value)
ENV.globals.update(HELPERS)  # ``range`` is the sandbox's own, bounded
ENV.filters.update(tojson=tojson, md5=HELPERS["md5"], sha256=HELPERS["sha256"], json_path=json_path, uuid5=uuid5)
ENV.tests["none"] = _is_none


# --- compiling and rendering -------------------------------------------------------------------

Render = Callable[[Mapping[str, Any]], Any]


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def expression_text(text: str) -> str:
    """The expression of ``text``, which may be written bare (``steps.a.rows``) or in ``{{ }}``."""
    single = _SINGLE_EXPRESSION.match(text)
    return single.group("expr").strip() if single else text.strip()


def compile_value(value: Any, where: str) -> Render:
    """A renderer of ``value``: a template string, a plain value, or mappings and lists of them."""
    if isinstance(value, Mapping):
        items = [(key, compile_value(item, f"{where}.{key}" if where else str(key))) for key, item in value.items()]
        return lambda scope: {key: render(scope) for key, render in items}
    if isinstance(value, list):
        entries = [compile_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return lambda scope: [render(scope) for render in entries]
    if not isinstance(value, str) or not has_template(value):
        return lambda _scope: value
    single = _SINGLE_EXPRESSION.match(value)
    if single:
        return compile_expression(single.group("expr"), where)
    try:
        template = ENV.from_string(value)
    except TemplateSyntaxError as exc:
        raise TemplateFailure(where, f"the template is not valid: {exc.message}") from None

    def render(scope: Mapping[str, Any]) -> Any:
        try:
            return template.render(scope)
        except Exception as exc:  # noqa: BLE001 - every template failure becomes one sentence
            raise TemplateFailure(where, explain(exc, value, scope)) from exc

    return _fast_text(value, render) or render


def compile_expression(text: str, where: str) -> Render:
    """A renderer of an expression (``steps.a.rows``, or ``{{ ... }}``), keeping its value's type."""
    source = expression_text(text)
    try:
        expression = ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateFailure(where, f"the expression is not valid: {exc.message}") from None

    def render(scope: Mapping[str, Any]) -> Any:
        try:
            value = expression(scope)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value
        except Exception as exc:  # noqa: BLE001 - every template failure becomes one sentence
            raise TemplateFailure(where, explain(exc, "{{ " + source + " }}", scope)) from exc

    return _fast_path(source, render) or render


# --- the fast path -----------------------------------------------------------------------------
# Most templates of a flow are a plain path (row.code, steps.upsert.id, rows[0]) or text joining
# a few. Those are read straight from the scope's mappings and lists, the way the sandbox would
# read them; anything else (a missing key, an object that is not a mapping or a list, a dry-run
# placeholder) goes through Jinja, so the values and the failures are the same, only faster.

_PATH = re.compile(r"(?!(?:true|false|none|True|False|None)\b)[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[[0-9]+\])*")
_PATH_PART = re.compile(r"\.([A-Za-z][A-Za-z0-9_]*)|\[([0-9]+)\]")
_TEXT_PART = re.compile(r"\{\{\s*(" + _PATH.pattern + r")\s*\}\}")


def _fast_path(source: str, slow: Render) -> Render | None:
    """A renderer reading the plain path ``source`` directly; None when it is not one."""
    call = re.fullmatch(r"([a-z_0-9]+)\(\)", source)
    if call and call.group(1) in HELPERS:
        helper = HELPERS[call.group(1)]
        return lambda scope: helper() if call.group(1) not in scope else slow(scope)
    if not _PATH.fullmatch(source):
        return None
    head = re.match(r"[A-Za-z][A-Za-z0-9_]*", source).group(0)
    parts = [name if name else int(index) for name, index in _PATH_PART.findall(source, len(head))]

    def read(scope: Mapping[str, Any]) -> Any:
        value = scope.get(head, _MISSING)
        for part in parts:
            if value is _MISSING:
                break
            kind = value.__class__
            if part.__class__ is not str:
                value = value[part] if kind is list and part < len(value) else _MISSING
            elif kind is dict:
                value = value.get(part, _MISSING)
            elif kind is ChainMap:  # steps: the item's results over the flow's
                value = next((layer[part] for layer in value.maps if part in layer), _MISSING)
            elif isinstance(value, Mapping):
                value = value.get(part, _MISSING)
            else:
                value = _MISSING
        return slow(scope) if value is _MISSING or value.__class__ is Placeholder else value

    return read


def _fast_text(text: str, slow: Render) -> Render | None:
    """A renderer of text holding only plain paths in ``{{ }}``; None for any other template."""
    pieces: list[Any] = []
    pos = 0
    for match in _TEXT_PART.finditer(text):
        pieces.append(text[pos:match.start()])
        pieces.append(_fast_path(match.group(1), lambda _scope: _MISSING))
        pos = match.end()
    pieces.append(text[pos:])
    if any(has_template(p) for p in pieces if isinstance(p, str)):
        return None

    def render(scope: Mapping[str, Any]) -> Any:
        out = []
        for piece in pieces:
            if piece.__class__ is str:
                out.append(piece)
                continue
            value = piece(scope)
            if value is _MISSING:
                return slow(scope)
            out.append("" if value is None else str(value))
        return "".join(out)

    return render


_MISSING = object()


# --- explaining failures -----------------------------------------------------------------------


class _Unresolved(Exception):
    pass


def explain(exc: BaseException, source: str, scope: Mapping[str, Any]) -> str:
    """One sentence about a failed render: the missing path and what exists there instead."""
    if isinstance(exc, _MissingValue):
        return _explain_missing(exc, source, scope)
    if isinstance(exc, UndefinedError):
        return str(exc)
    if isinstance(exc, SecurityError):
        return f"the template does something not allowed: {exc}"
    if isinstance(exc, TemplateFailure):
        return exc.reason
    if isinstance(exc, TemplateError):
        return f"the template failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _explain_missing(exc: _MissingValue, source: str, scope: Mapping[str, Any]) -> str:
    if exc.obj is missing:
        names = sorted(k for k in scope if isinstance(k, str))
        close = difflib.get_close_matches(str(exc.name), names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"'{exc.name}' is undefined{hint} (available here: {', '.join(names)})"
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError:
        return str(exc)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        try:
            key = node.attr if isinstance(node, nodes.Getattr) else _resolve(node.arg, scope)[0]
            if key != exc.name:
                continue
            parent, text = _resolve(node.node, scope)
        except _Unresolved:
            continue
        if parent is exc.obj:
            return f"'{text}{_accessor(node, key)}' is undefined ({text} {_has(parent, text)})"
    return str(exc)


def _resolve(node: nodes.Node, scope: Mapping[str, Any]) -> tuple[Any, str]:
    """The value and the written path of a simple chain: names, attributes, constant or named indexes."""
    if isinstance(node, nodes.Const):
        return node.value, repr(node.value)
    if isinstance(node, nodes.Name):
        if node.name not in scope:
            raise _Unresolved
        return scope[node.name], node.name
    if isinstance(node, nodes.Getattr):
        parent, text = _resolve(node.node, scope)
        value = ENV.getattr(parent, node.attr)
        if isinstance(value, Undefined):
            raise _Unresolved
        return value, f"{text}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        parent, text = _resolve(node.node, scope)
        key, _ = _resolve(node.arg, scope)
        value = ENV.getitem(parent, key)
        if isinstance(value, Undefined):
            raise _Unresolved
        return value, f"{text}{_accessor(node, key)}"
    raise _Unresolved


def _accessor(node: nodes.Node, key: Any) -> str:
    if isinstance(node, nodes.Getattr):
        return f".{key}"
    return f"[{key!r}]" if isinstance(key, str) else f"[{key}]"


def _has(value: Any, text: str) -> str:
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        if not keys:
            return "is empty"
        shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
        return f"has: {shown}"
    if isinstance(value, (list, tuple)):
        return f"has {len(value)} item{'' if len(value) == 1 else 's'}"
    if value is None:
        step = text.split(".")
        if len(step) == 2 and step[0] == "steps":
            return f"is None: step {step[1]} did not run (its when was false, or it is in a conditional's other branch)"
        return "is None"
    shown = repr(value)
    return f"is {type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


# --- values for JSON ---------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made plain: decimals as numbers, dates and UUIDs as
    ISO text, bytes as base64, placeholders as their label."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return str(value)
