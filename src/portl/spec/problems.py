"""Pydantic validation errors, rephrased as located Problems a person can act on.

Pydantic reports an error at a ``loc`` such as ``('source', 'csv', 'delimeter')``. Some of its parts
are not keys of the YAML: the tag of a discriminated union (``csv``) and the member label of a plain
union (``str``, ``list[str]``). We walk the loc along the data and the model classes together, so we
know both the YAML path (for the file:line:column) and the model at each step (for the valid keys,
the allowed values, and whether the value is a secret).
"""

from __future__ import annotations

import datetime
import difflib
import enum
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from portl.connectors.config import ConnectorConfig
from portl.errors import Problem
from portl.secrets import MASK, is_sensitive_name, mask_url
from portl.spec.positions import Path, Positions, dotted


@dataclass(frozen=True)
class Context:
    """What the translation needs besides the error.

    ``connections`` maps sections resolved from a named connection to its name; values at
    ``hidden`` paths (substituted from the environment) are never shown; errors at or below a
    ``skip`` path are dropped because that section's problem was already reported.
    """

    data: Any
    positions: Positions
    root: str = "the job"
    connections: Mapping[Path, str] = field(default_factory=dict)
    hidden: frozenset[Path] = frozenset()
    skip: frozenset[Path] = frozenset()


@dataclass(frozen=True)
class _Step:
    path: Path  # the part of the loc that exists in the data
    container: Any  # the model (or other type) holding the loc's last element
    annotation: Any  # the declared type of the value the loc ends at, when known
    union: Path | None  # loc of the plain union this error is one member's failure of
    secret: bool


_EXPECTED = {
    "bool_parsing": "true or false", "bool_type": "true or false",
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "decimal_parsing": "a number", "decimal_type": "a number",
    "string_type": "text", "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "date_parsing": "a date (YYYY-MM-DD)", "date_type": "a date (YYYY-MM-DD)",
    "datetime_parsing": "a date and time", "datetime_type": "a date and time",
}
_CHOICE_TYPES = {"literal_error", "enum"}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than"),
}


def validation_problems(error: ValidationError, model: type[BaseModel], ctx: Context) -> list[Problem]:
    """Every error of ``error`` as a Problem located in the YAML, in pydantic's order."""
    steps = [(err, _walk(model, ctx.data, err["loc"], ctx)) for err in error.errors(include_url=False)]
    steps = [(err, step) for err, step in steps if not any(step.path[: len(s)] == s for s in ctx.skip)]
    groups: dict[Path, list[tuple[dict, _Step]]] = {}
    problems: list[Problem] = []
    for err, step in steps:
        if step.union is not None:
            groups.setdefault(step.union, []).append((err, step))
        else:
            problems.append(_problem(err, step, ctx))
    for members in groups.values():
        problems.extend(_union_problems(members, ctx))
    return problems


def _union_problems(members: list[tuple[dict, _Step]], ctx: Context) -> list[Problem]:
    # Each member of a plain union (str | list[str]) fails on its own; the member that got
    # deepest into the value says the most, and same-depth type mismatches merge into one line.
    deepest = max(len(step.path) for _, step in members)
    kept = [(err, step) for err, step in members if len(step.path) == deepest]
    typed = [(err, step) for err, step in kept if err["type"] in _EXPECTED or err["type"] in _CHOICE_TYPES]
    if len(typed) != len(kept) or len({step.path for _, step in kept}) != 1:
        return [_problem(err, step, ctx) for err, step in kept]
    err, step = kept[0]
    wanted = " or ".join(dict.fromkeys(_expectation(e, s) for e, s in kept))
    return [ctx.positions.problem(step.path, _where(step.path, ctx) + _mismatch(wanted, err, step))]


def _problem(err: dict, step: _Step, ctx: Context) -> Problem:
    kind, loc, positions = err["type"], err["loc"], ctx.positions
    if kind == "extra_forbidden":
        shown = positions.shown(step.path)
        key = str(loc[-1])
        return positions.problem(step.path, f"unknown key '{key}' in {dotted(shown[:-1]) or ctx.root}{_suggest_key(key, step.container)}", at_key=True)
    if kind == "missing":
        return positions.problem(step.path, f"missing required key '{loc[-1]}' in {_section(step.path, ctx)}", at_key=True)
    if kind == "union_tag_not_found":
        tags = ", ".join(_tags(err, step.annotation))
        key = _unwrap(step.annotation)[1] or "type"
        return positions.problem(step.path, f"missing required key '{key}' in {_section(step.path, ctx)}; one of: {tags}", at_key=True)
    if kind == "union_tag_invalid":
        noun = _union_noun(step.annotation)
        tag = str(err["ctx"]["tag"])
        tags = _tags(err, step.annotation)
        close = difflib.get_close_matches(tag, tags, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "."
        if noun == "connector type" and tag.lower() in _OBJECT_STORES:
            hint = ("; files in S3 and compatible object stores are read and written by their format: type: csv "
                    "(or tsv, jsonl, parquet) with path: s3://bucket/key.")
        type_path = step.path + (_unwrap(step.annotation)[1] or "type",)
        message = f"{_where(type_path, ctx)}unknown {noun} '{tag}'{hint} Known {noun}s: {', '.join(tags)}"
        return positions.problem(type_path, message)
    if kind in ("value_error", "assertion_error"):
        text = _scrub(re.sub(r"^(Value error|Assertion failed), ", "", err["msg"]), err, step)
        # A rule across a section's keys that names the key it is about is shown at that key.
        key = getattr(err.get("ctx", {}).get("error"), "key", None)
        if isinstance(err.get("input"), dict) and key in err["input"]:
            return positions.problem(step.path + (key,), _where(step.path, ctx) + text, at_key=True)
        # A rule about a whole section (table or query, not both) points at the section's key.
        return positions.problem(step.path, _where(step.path, ctx) + text, at_key=isinstance(err.get("input"), dict))
    if kind in _EXPECTED or kind in _CHOICE_TYPES:
        return positions.problem(step.path, _where(step.path, ctx) + _mismatch(_expectation(err, step), err, step))
    if kind in _BOUNDS:
        name, phrase = _BOUNDS[kind]
        got = "" if step.secret else f", got {_show(err['input'])}"
        return positions.problem(step.path, f"{_where(step.path, ctx)}must be {phrase} {err['ctx'][name]}{got}")
    if kind in ("too_short", "too_long"):
        bound = err["ctx"].get("min_length" if kind == "too_short" else "max_length")
        phrase = "at least" if kind == "too_short" else "at most"
        noun = "item" if bound == 1 else "items"
        return positions.problem(step.path, f"{_where(step.path, ctx)}needs {phrase} {bound} {noun}")
    text = _scrub(err["msg"][:1].lower() + err["msg"][1:], err, step)
    return positions.problem(step.path, _where(step.path, ctx) + text)


# --- phrasing ---------------------------------------------------------------------------------


def _where(path: Path, ctx: Context) -> str:
    shown = dotted(ctx.positions.shown(path))
    return f"{shown}: " if shown else ""


def _section(path: Path, ctx: Context) -> str:
    name = dotted(ctx.positions.shown(path)) or ctx.root
    if path in ctx.connections:
        name += f" (connection '{ctx.connections[path]}')"
    return name


def _scrub(text: str, err: dict, step: _Step) -> str:
    """``text`` without the secret value, should a validator have quoted it."""
    value = err.get("input")
    if step.secret and isinstance(value, str) and value:
        text = text.replace(value, MASK)
    return mask_url(text)


def _mismatch(wanted: str, err: dict, step: _Step) -> str:
    if step.secret:
        return f"expected {wanted}"
    value = err.get("input")
    text = f"expected {wanted}, got {_show(value)}"
    if err["type"] == "string_type" and isinstance(value, (bool, int, float, datetime.date)):
        text += "; put it in quotes to make it text"
    if err["type"] in _CHOICE_TYPES and isinstance(value, str):
        close = difflib.get_close_matches(value, [str(c) for c in _choices(err, step)], n=1)
        if close:
            text += f"; did you mean '{close[0]}'?"
    return text


def _expectation(err: dict, step: _Step) -> str:
    if err["type"] in _CHOICE_TYPES:
        choices = [str(c) for c in _choices(err, step)]
        if len(choices) <= 2:
            return " or ".join(choices)
        return "one of " + ", ".join(choices[:-1]) + " or " + choices[-1]
    if err["type"] == "model_attributes_type" and _union_noun(step.annotation) == "connector type":
        return "a connector (a mapping with a 'type' key) or the name of a connection"
    return _EXPECTED[err["type"]]


def _choices(err: dict, step: _Step) -> list[Any]:
    core, _ = _unwrap(step.annotation)
    if get_origin(core) is Literal:
        return list(get_args(core))
    if isinstance(core, type) and issubclass(core, enum.Enum):
        return [member.value for member in core]
    expected = str(err.get("ctx", {}).get("expected", ""))
    return re.findall(r"'([^']*)'", expected) or [expected]


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        text = mask_url(value)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date):
        return f"{value.isoformat()} (read as a date)"
    return f"a {type(value).__name__}"


def _suggest_key(key: str, container: Any) -> str:
    if not (isinstance(container, type) and issubclass(container, BaseModel)):
        return ""
    valid = [f.alias or name for name, f in container.model_fields.items()]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return "; valid keys: " + ", ".join(valid)


def _tags(err: dict, annotation: Any) -> list[str]:
    """The tags a discriminated union accepts, from its members (pydantic does not always say)."""
    core, discriminator = _unwrap(annotation)
    tags: list[str] = []
    if _is_union(core) and discriminator is not None:
        for member in get_args(core):
            member_core, _ = _unwrap(member)
            if isinstance(member_core, type) and issubclass(member_core, BaseModel) and discriminator in member_core.model_fields:
                tags += [str(t) for t in get_args(member_core.model_fields[discriminator].annotation)]
    return sorted(set(tags)) or sorted(re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected_tags", ""))))


_OBJECT_STORES = frozenset({"s3", "minio", "r2", "object", "objectstore", "bucket"})
"""Connector types a user may guess for an object store, which is a place for files, not a type."""


def _union_noun(annotation: Any) -> str:
    core, _ = _unwrap(annotation)
    members = [_unwrap(m)[0] for m in get_args(core)] if _is_union(core) else []
    if members and all(isinstance(m, type) and issubclass(m, ConnectorConfig) for m in members):
        return "connector type"
    if members and all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
        for suffix, noun in (("Hook", "hook type"), ("Step", "step type"), ("Call", "call type")):
            if all(m.__name__.endswith(suffix) for m in members):
                return noun
        return "type"
    return "type"


# --- walking the loc --------------------------------------------------------------------------


def _walk(model: type[BaseModel], data: Any, loc: tuple, ctx: Context) -> _Step:
    annotation: Any = model
    value_annotation: Any = model
    node, path, container, union = data, (), None, None
    for index, part in enumerate(loc):
        core, discriminator = _unwrap(annotation)
        if _is_union(core):
            # This part is not a YAML key: the tag of a discriminated union, or a member label.
            if discriminator is not None:
                annotation = _member(core, discriminator, part)
            else:
                annotation, union = None, tuple(loc[:index])
            continue
        container = core
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path += (part,)
        # A part missing from the data is a missing key, or a value a validator reshaped
        # (a single hook given without a list): the error then belongs to the nearest value.
        annotation = _child(core, part)
        value_annotation = annotation
    secret = (
        path in ctx.hidden
        or _mentions_secret(value_annotation)
        or any(isinstance(part, str) and is_sensitive_name(part) for part in path)
    )
    return _Step(path, container, annotation, union, secret)


def _unwrap(annotation: Any) -> tuple[Any, str | None]:
    """Strip Annotated and Optional; also return the discriminator an Annotated Field declares."""
    discriminator = None
    while True:
        if get_origin(annotation) is Annotated:
            for meta in annotation.__metadata__:
                if isinstance(meta, FieldInfo) and isinstance(meta.discriminator, str):
                    discriminator = meta.discriminator
            annotation = get_args(annotation)[0]
            continue
        if _is_union(annotation):
            members = [m for m in get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, discriminator


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _member(union: Any, discriminator: str, tag: Any) -> Any:
    for member in get_args(union):
        core, _ = _unwrap(member)
        if isinstance(core, type) and issubclass(core, BaseModel):
            field_info = core.model_fields.get(discriminator)
            if field_info is not None and tag in get_args(field_info.annotation):
                return core
    return None


def _child(container: Any, part: Any) -> Any:
    if isinstance(container, type) and issubclass(container, BaseModel):
        for name, info in container.model_fields.items():
            if part in (name, info.alias):
                return Annotated[info.annotation, info] if info.discriminator else info.annotation
        return None
    origin, args = get_origin(container), get_args(container)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _mentions_secret(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False
    return any(_mentions_secret(arg) for arg in get_args(annotation))
