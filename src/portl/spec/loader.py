"""Loading a job file: YAML in, a validated Job out, or every problem with its file:line:column.

A job file holds one job (a mapping with ``source``, ``destination``...) or several::

    connections: {warehouse: {type: sqlite, path: w.db}}    # shared by the jobs below
    jobs:
      - {name: customers, source: ..., destination: warehouse}
      - {name: orders, ...}

Loading a job, in order: parse the YAML keeping positions; pick the job; replace named
connections by their settings; substitute ``${env:NAME}``; validate with :func:`job_model`. The
problems of every stage are reported together, sorted by place. Relative paths are left as
written: connectors resolve them against :attr:`LoadedJob.base_dir`.

A job file is read once (:func:`read_job_file`), so that a pipe, a FIFO or standard input (``-``)
works as well as a file; the loaders take the path or what was read. A job read from standard input
is called ``<stdin>`` in messages, and its relative paths are relative to the current directory.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from portl.connectors import registry
from portl.errors import ConfigError, Problem
from portl.spec.connections import ConnectionBook, resolve_references
from portl.spec.envsubst import Substitution, substitute
from portl.spec.models import JobBase, job_model
from portl.spec.positions import Positions, dotted, parse_yaml
from portl.spec.problems import Context, validation_problems
from portl.spec.rejects import reject_path_problem
from portl.spec.schema import job_json_schema

__all__ = ["JobText", "LoadedJob", "STDIN", "read_job_file", "load_job", "job_names", "job_json_schema", "file_version"]

_MULTI_KEYS = ("jobs", "connections", "version")
STDIN = "-"
"""The path that means standard input."""


@dataclass(frozen=True)
class JobText:
    """A job file's text, read once, and what messages call it."""

    path: str
    """As given: a file, a pipe (``/dev/stdin``, ``/dev/fd/63``), or ``-`` for standard input."""
    text: str
    piped: bool = False
    """Read from a pipe, a FIFO or standard input rather than a regular file: its folder means nothing."""

    @property
    def name(self) -> str:
        """The file as messages name it: its path, or ``<stdin>``."""
        return "<stdin>" if self.path == STDIN else self.path

    @property
    def absolute(self) -> str:
        return self.name if self.path == STDIN else os.path.abspath(self.path)

    @property
    def base_dir(self) -> str:
        """What relative paths inside the job are relative to: the file's folder, or for a pipe or
        standard input the current directory."""
        return os.getcwd() if self.piped else os.path.dirname(os.path.abspath(self.path))

    @property
    def stem(self) -> str:
        """The name of a job that has none: the file name without its extension."""
        return "stdin" if self.path == STDIN else _stem(self.path)


def read_job_file(path: str | JobText) -> JobText:
    """The text of the job file at ``path`` (``-``: standard input), read once."""
    if isinstance(path, JobText):
        return path
    text = _read(path)
    return JobText(path, text, piped=path == STDIN or not os.path.isfile(path))


@dataclass(frozen=True)
class LoadedJob:
    """A validated job and where it came from."""

    job: JobBase
    name: str
    path: str
    base_dir: str
    text: str
    positions: Positions | None = field(default=None, compare=False, repr=False)
    """Where each key of the job is in its file, for problems found after loading (the plan's)."""

    def located(self, path: tuple, message: str) -> str:
        """``message`` prefixed with the file:line:column of the key at ``path`` (e.g. ``('conflict', 'key')``)."""
        return str(self.positions.problem(path, message)) if self.positions is not None else message


def load_job(
    path: str | JobText,
    job_name: str | None = None,
    connections_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedJob:
    """Load and validate the job in ``path`` (or the one called ``job_name`` in a multi-job file);
    ``path`` may be a :class:`JobText` already read.

    Named connections are looked up in the file's own ``connections:``, then in
    ``connections_file``, else in the file named by ``PORTL_CONNECTIONS``, else in
    ``connections.yaml`` beside the job file. ``environ`` (default: ``os.environ``) supplies
    ``${env:NAME}`` and ``PORTL_CONNECTIONS``. Raises :class:`ConfigError` listing every problem.
    """
    environ = os.environ if environ is None else environ
    source = read_job_file(path)
    text, path, stem = source.text, source.name, source.stem
    parsed = parse_yaml(text, path)
    problems = list(parsed.problems)
    data, positions, root = _select(parsed.data, parsed.positions, path, stem, job_name, problems)
    if data.get("version") == 2:
        message = "this file is a version 2 flow of steps, not a migration job; load it with portl.spec.flow.load_flow"
        raise ConfigError(problems=[positions.problem(("version",), message)])
    if "steps" in data and "source" not in data and "destination" not in data:
        # A flow without its version would otherwise get the v1 job's complaints about source and destination.
        message = (f"this file has steps: but {'version: ' + str(data['version']) if 'version' in data else 'no version'}; "
                   "a flow of steps needs version: 2 (a migration job has a source and a destination instead)")
        raise ConfigError(problems=[positions.problem(("version",) if "version" in data else ("steps",), message)])
    if data.get("name") is None:
        data["name"] = stem

    book = ConnectionBook(data.get("connections"), positions, path, connections_file, environ)
    resolution = resolve_references(data, positions, book)
    problems += resolution.problems

    substituted = _substitute_env(data, environ)
    problems += [positions.problem(p, f"{reason} (used in {dotted(positions.shown(p))})") for p, reason in substituted.failures]

    job = _validate_with_own_connectors(data)
    if job is None:
        model = job_model()
        try:
            job = model.model_validate(data)
        except ValidationError as exc:
            ctx = Context(
                data=data,
                positions=positions,
                root=root,
                connections=resolution.used,
                hidden=frozenset(substituted.changed),
                skip=frozenset(resolution.failed | {p for p, _ in substituted.failures}),
            )
            problems += validation_problems(exc, model, ctx)
    if job is not None and (unwritable := reject_path_problem(job, source.base_dir)):
        problems.append(positions.problem(("rejects", "path"), unwritable, at_key=True))
    if problems or job is None:
        raise ConfigError(problems=_ordered(problems, path))
    return LoadedJob(job=job, name=job.name or stem, path=source.absolute, base_dir=source.base_dir, text=text,
                     positions=positions)


def file_version(path: str | JobText) -> int:
    """The language version a job file declares: 2 for a flow of steps, else 1 (also when the file
    cannot be parsed: loading it then reports why). An unreadable file raises :class:`ConfigError`."""
    try:
        data = yaml.safe_load(read_job_file(path).text)
    except yaml.YAMLError:
        return 1
    return 2 if isinstance(data, dict) and data.get("version") == 2 else 1


def job_names(path: str | JobText) -> list[str]:
    """The names of the jobs in ``path``: one for a single-job file, each entry's for a multi-job file."""
    source = read_job_file(path)
    path = source.name
    parsed = parse_yaml(source.text, path)
    data = _top_level(parsed.data, parsed.positions, path)
    if "jobs" not in data:
        name = data.get("name")
        return [str(name) if name else source.stem]
    problems: list[Problem] = []
    names = _entry_names(data, parsed.positions, problems)
    if problems:
        raise ConfigError(problems=_ordered(problems, path))
    return names


# --- stages -----------------------------------------------------------------------------------


def _read(path: str) -> str:
    shown = "<stdin>" if path == STDIN else path
    try:
        if path == STDIN:
            return sys.stdin.buffer.read().decode("utf-8-sig")
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigError(problems=[Problem(f"job file {path} does not exist", path)]) from None
    except IsADirectoryError:
        raise ConfigError(problems=[Problem(f"{path} is a folder; give the path of a job file (.yaml)", path)]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(problems=[Problem(f"the job file is not UTF-8 text ({exc.reason} at byte {exc.start})", shown)]) from None
    except OSError as exc:
        raise ConfigError(problems=[Problem(f"cannot read the job file: {exc.strerror or exc}", shown)]) from None


def _top_level(data: Any, positions: Positions, path: str) -> dict[str, Any]:
    if data is None:
        raise ConfigError(problems=[Problem("the job file is empty; a job needs at least 'source' and 'destination'", path, 1, 1)])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError(problems=[positions.problem((), f"a job file must be a mapping of keys (source:, destination:, ...), but this one holds {kind}")])
    return data


def _select(data: Any, positions: Positions, path: str, stem: str, job_name: str | None,
            problems: list[Problem]) -> tuple[dict[str, Any], Positions, str]:
    """The chosen job's data and positions (the whole file, or one entry of ``jobs:``)."""
    data = _top_level(data, positions, path)
    if "jobs" not in data:
        name = data.get("name") or stem
        if job_name is not None and job_name != name:
            raise ConfigError(problems=[Problem(f"this file holds one job ({name}), not '{job_name}'", path)])
        return dict(data), positions, "the job"

    for key in data:
        if key not in _MULTI_KEYS:
            close = difflib.get_close_matches(key, _MULTI_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; it holds only {', '.join(_MULTI_KEYS)} (job settings go inside each entry of 'jobs')"
            problems.append(positions.problem((key,), f"unknown key '{key}' in a multi-job file{hint}", at_key=True))
    names = _entry_names(data, positions, problems)
    if not names:
        raise ConfigError(problems=_ordered(problems, path))
    if job_name is None:
        if len(names) > 1:
            message = f"this file holds {len(names)} jobs ({', '.join(names)}); choose one with --job NAME"
            raise ConfigError(problems=[positions.problem(("jobs",), message, at_key=True)])
        job_name = names[0]
    if job_name not in names:
        close = difflib.get_close_matches(job_name, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        message = f"no job named '{job_name}' in this file{hint} Jobs: {', '.join(names)}"
        raise ConfigError(problems=[positions.problem(("jobs",), message, at_key=True)])
    index = names.index(job_name)

    job = dict(data["jobs"][index])
    job_positions = Positions()
    job_positions.graft((), positions, ("jobs", index), shown=())
    if "version" in data and "version" not in job:
        job["version"] = data["version"]
        job_positions.graft(("version",), positions, ("version",))
    shared = data.get("connections")
    if isinstance(shared, dict):
        own = job.get("connections")
        if own is None:
            job_positions.graft(("connections",), positions, ("connections",))
            job["connections"] = dict(shared)
        elif isinstance(own, dict):
            for name in shared:
                if name not in own:
                    job_positions.graft(("connections", name), positions, ("connections", name))
            job["connections"] = {**shared, **own}
    elif shared is not None:
        problems.append(positions.problem(("connections",), "connections: expected a mapping of names to connections"))
    return job, job_positions, f"job '{job_name}'"


def _entry_names(data: dict[str, Any], positions: Positions, problems: list[Problem]) -> list[str]:
    """Names of the entries of ``jobs:``; a problem for every entry without a usable, unique name."""
    entries = data["jobs"]
    if not isinstance(entries, list) or not entries:
        problems.append(positions.problem(("jobs",), "jobs: expected a list of jobs, each with a 'name'"))
        return []
    names: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(positions.problem(("jobs", index), f"jobs[{index}]: expected a job (a mapping with name, source, destination...)"))
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append(positions.problem(("jobs", index), f"jobs[{index}] has no 'name'; every job in a multi-job file needs one"))
            continue
        if name in names:
            problems.append(positions.problem(("jobs", index, "name"), f"jobs[{index}]: the name '{name}' is already used by another job in this file"))
            continue
        names.append(name)
    return names


def _substitute_env(data: dict[str, Any], environ: Mapping[str, str]) -> Substitution:
    """Substitute ``${env:...}`` in source, destination, connections, hook urls and headers, and
    the endpoint and keys of lambda hooks.

    A reference that cannot be substituted is reported where the job uses it. The file's other
    connections keep such text as written: a multi-job file may share connections that need
    variables only some of its jobs have.
    """
    result = Substitution()
    for key in ("source", "destination"):
        if key in data:
            data[key], _ = substitute(data[key], environ, (key,), result)
    if isinstance(data.get("connections"), dict):
        unused = Substitution()
        data["connections"], _ = substitute(data["connections"], environ, ("connections",), unused)
        result.changed |= unused.changed
    hooks = data.get("hooks")
    if isinstance(hooks, dict):
        hooks = data["hooks"] = dict(hooks)
        for event, listed in hooks.items():
            single = isinstance(listed, dict)
            entries = [listed] if single else listed
            if not isinstance(entries, list):
                continue
            changed = []
            for index, hook in enumerate(entries):
                if isinstance(hook, dict):
                    hook = dict(hook)
                    base = ("hooks", event) if single else ("hooks", event, index)
                    for field in ("url", "headers", "endpoint_url", "access_key_id", "secret_access_key"):
                        if field in hook:
                            hook[field], _ = substitute(hook[field], environ, base + (field,), result)
                changed.append(hook)
            hooks[event] = changed[0] if single else changed
    return result


def _validate_with_own_connectors(data: dict[str, Any]) -> JobBase | None:
    """The job, validated by a model of only the connectors it names, so that loading it imports
    no other connector. None when a section names no registered connector or the job is invalid:
    the model of every connector then validates it, and phrases its problems (the known types...)."""
    connections = data.get("connections", {})
    if not isinstance(connections, dict):
        return None
    types = set()
    for section in [data.get("source"), data.get("destination"), *connections.values()]:
        kind = section.get("type") if isinstance(section, dict) else None
        if not isinstance(kind, str) or not registry.is_known(kind):
            return None
        types.add(kind)
    try:
        return job_model(frozenset(types)).model_validate(data)
    except ValidationError:
        return None


def _ordered(problems: list[Problem], job_file: str) -> list[Problem]:
    """Problems without repeats, the job file's first, then by line and column."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file != job_file, p.file or "", p.line or 0, p.column or 0))


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
