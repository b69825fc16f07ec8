"""Answers given ahead of time: the ``--answers`` file, and the short forms flags are written in.

An answers file is YAML: one key per question, named like the flag without its dashes
(``source_type: csv`` answers ``--source-type csv``; ``source-type`` is accepted too). Flags that
may be repeated have a plural key (``columns`` for ``--column``), and ``--append/--overwrite`` is
``if_exists: append`` (or ``append: true``). Flags win over the file. The values of a few
questions have a short form for the command line, parsed here and accepted in the file as well:

- ``--column DEST=SOURCE`` (repeated), or ``columns: {DEST: SOURCE}`` in the file;
- ``--column-type COL=TYPE``, ``--transform COL=SPEC``, ``--date-format COL=FORMAT``;
- a transform SPEC: ``trim,lower``, ``money``, ``date(%d/%m/%Y|%Y-%m-%d)``, ``default(n/a)``,
  ``null_if(-|n/a)``, ``concat(First|Last)``, ``coalesce(Mobile|Phone)``, ``replace(PATTERN|WITH)``,
  or ``none``;
- a hook: ``script:./notify.sh``, ``python:hooks:clean_row``, ``http:https://example.com/hook``,
  or ``none``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from typing import Any

import yaml

from portl.errors import ConfigError, Problem
from portl.spec.models import SIMPLE_TRANSFORMS, Transform

#: Answers-file keys spelt like a flag whose answer is stored under another key.
ALIASES = {"column": "columns", "column_type": "column_types", "transform": "transforms",
           "date_format": "date_formats", "append": "if_exists"}
#: Transform names the wizard offers; ``date`` and ``datetime`` take strptime formats.
TRANSFORM_NAMES = (*SIMPLE_TRANSFORMS, "date", "datetime")
HOOK_TYPES = ("script", "python", "http")


def read_answers_file(path: str, known: Iterable[str]) -> dict[str, Any]:
    """The answers in ``path``, keyed by question key; every unknown key is reported at once."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"answers file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read answers file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Problem("", path, mark.line + 1, mark.column + 1) if mark else Problem("", path)
        raise ConfigError(problems=[Problem(f"the answers file is not valid YAML: {getattr(exc, 'problem', exc)}",
                                            where.file, where.line, where.column)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(problems=[Problem("an answers file is a mapping of answers, e.g. source_type: csv", path, 1, 1)])
    known = list(known)
    answers, problems = {}, []
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = ALIASES.get(name, name)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f". Known answers: {', '.join(known)}"
            problems.append(Problem(f"unknown answer '{key}'{hint}", path))
            continue
        answers[name] = value
    if problems:
        raise ConfigError(problems=problems)
    return answers


def relative_to_answers(answers: dict[str, Any], path: str, path_keys: Iterable[str]) -> dict[str, Any]:
    """Paths in an answers file are relative to the file's folder; make them relative to here."""
    folder = os.path.dirname(os.path.abspath(path))
    fixed = dict(answers)
    for key in path_keys:
        value = fixed.get(key)
        if isinstance(value, str) and value and "${env:" not in value and "://" not in value:
            expanded = os.path.expanduser(value)
            if not os.path.isabs(expanded):
                fixed[key] = os.path.relpath(os.path.join(folder, expanded))
    return fixed


# --- short forms -------------------------------------------------------------------------------


def pairs(value: Any, what: str) -> dict[str, Any]:
    """``{KEY: VALUE}`` from a mapping, a list of ``KEY=VALUE`` texts, or one text of them joined by ``;``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return {}
    if isinstance(value, dict):
        return {str(k).strip(): v for k, v in value.items()}
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected {what} entries as KEY=VALUE")
    found: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict):
            found.update({str(k).strip(): v for k, v in item.items()})
            continue
        text = str(item).strip()
        if not text:
            continue
        key, sep, rest = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{text!r}: expected {what} as KEY=VALUE")
        found[key.strip()] = rest.strip()
    return found


def names(value: Any) -> list[str]:
    """Column names from a list or a comma-separated text; empty for ``none`` or nothing."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = [str(v).strip() for v in items if str(v).strip()]
    return [] if [o.lower() for o in out] == ["none"] else out


def transform_list(value: Any) -> list[Any]:
    """A transform pipeline in the job language's form (``["trim", {"date": [...]}]``), from the
    short form ``trim,lower`` / ``date(%d/%m/%Y|%Y-%m-%d)`` or from job-language values.

    ``date`` and ``datetime`` without formats come back as ``{"date": []}``: the caller fills in
    the formats detected from the sample. Raises ValueError naming the valid transforms.
    """
    if value is None:
        return []
    if isinstance(value, (list, dict)):
        steps = value if isinstance(value, list) else [value]
        return [_checked(step) for step in steps]
    text = str(value).strip()
    if text.lower() in ("", "none", "-"):
        return []
    return [_checked(_short(item)) for item in _split_top(text)]


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses: a format such as ``%b %d, %Y`` holds one."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _short(item: str) -> Any:
    """One transform of the short form: ``trim``, ``date(%d/%m/%Y|%Y-%m-%d)``, ``default(n/a)``,
    ``null_if(-|n/a)``, ``concat(First|Last)``, ``replace(PATTERN|WITH)``."""
    name, paren, rest = item.partition("(")
    name = name.strip().lower()
    if not paren:
        return {name: []} if name in ("date", "datetime") else name
    if not rest.endswith(")"):
        raise ValueError(f"{item!r}: a closing parenthesis is missing")
    inner = rest[:-1]
    args = [a.strip() for a in inner.split("|") if a.strip()]
    if name in SIMPLE_TRANSFORMS:
        raise ValueError(f"{item!r}: {name} takes no argument")
    if name == "default":
        return {name: inner}  # the value as written, spaces included
    if name == "replace":
        pattern, _, replacement = inner.partition("|")
        return {name: {"pattern": pattern, "with": replacement}}
    if name in ("date", "datetime", "null_if", "concat", "coalesce"):
        return {name: args}
    return name  # unknown: the model's check names the valid transforms


def _checked(step: Any) -> Any:
    if isinstance(step, dict) and len(step) == 1:
        (name, args), = step.items()
        if name in ("date", "datetime") and args in ([], None):
            return {name: []}  # formats to be filled from the sample
    try:
        return Transform.model_validate(step).model_dump()
    except Exception as exc:  # a pydantic ValidationError: keep its sentence only
        raise ValueError(_first_error(exc)) from None


def hook_value(value: Any) -> dict[str, Any] | None:
    """A hook in the job language's form from ``TYPE:TARGET`` (or a URL, or a mapping); None for none."""
    if value is None or value is False:
        return None
    if isinstance(value, dict):
        from portl.spec.models import HttpHook, PythonHook, ScriptHook

        model = {"script": ScriptHook, "python": PythonHook, "http": HttpHook}.get(value.get("type"))
        if model is None:
            raise ValueError(f"a hook's type is one of {', '.join(HOOK_TYPES)}")
        try:
            model.model_validate(value)
        except Exception as exc:
            raise ValueError(_first_error(exc)) from None
        return dict(value)
    text = str(value).strip()
    if text.lower() in ("", "none", "no"):
        return None
    if text.startswith(("http://", "https://")):
        return {"type": "http", "url": text}
    kind, sep, target = text.partition(":")
    kind = kind.strip().lower()
    target = target.strip()
    if not sep or kind not in HOOK_TYPES:
        raise ValueError(f"{text!r}: expected TYPE:TARGET with TYPE one of {', '.join(HOOK_TYPES)} "
                         "(script:./notify.sh, python:module:function, http:https://...), or none")
    if not target:
        raise ValueError(f"{text!r}: say what the {kind} hook runs after '{kind}:'")
    if kind == "script":
        return {"type": "script", "command": target}
    if kind == "python":
        module, colon, function = target.partition(":")
        if not colon or not module.strip() or not function.strip():
            raise ValueError(f"{target!r}: a python hook is module:function, e.g. python:hooks:clean_row")
        return {"type": "python", "function": target}
    if not target.startswith(("http://", "https://")):
        raise ValueError(f"{target!r}: an http hook's URL starts with http:// or https://")
    return {"type": "http", "url": target}


def hook_text(hook: dict[str, Any] | None) -> str:
    """A hook in the short form, for prompts and summaries."""
    if not hook:
        return "none"
    target = hook.get("command") or hook.get("function") or hook.get("url") or ""
    if isinstance(target, list):
        target = " ".join(target)
    return f"{hook['type']}:{target}"


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            message = str(found[0].get("msg", exc))
            return message.removeprefix("Value error, ")
    return str(exc)
