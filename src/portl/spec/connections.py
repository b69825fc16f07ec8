"""Named connections: ``source: warehouse`` or ``source: {connection: warehouse, table: customers}``.

A name is looked up first in the job file's own ``connections:``, then in one connections file:
the one given to :func:`~portl.spec.loader.load_job`, else the file named by ``PORTL_CONNECTIONS``,
else ``connections.yaml`` beside the job file. A connections file holds
``{connections: {name: {type: ..., ...}}}`` and is read only when a name is not found in the job.
Its connections are checked only when a job uses them, and problems in them are located in it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portl.errors import ConfigError, Problem
from portl.secrets import mask_url
from portl.spec.positions import Path, Positions, dotted, parse_yaml

CONNECTIONS_ENV = "PORTL_CONNECTIONS"
DEFAULT_FILE = "connections.yaml"
_SHAPE = "a connections file holds 'connections:' with one mapping per name, e.g. connections: {warehouse: {type: sqlite, path: w.db}}"


@dataclass(frozen=True)
class Named:
    """A connection found by name: its settings and the index that locates them."""

    settings: Any
    positions: Positions
    path: Path


@dataclass
class Resolution:
    """What resolving a job's references did.

    ``used`` maps the path of each resolved section (``('source',)``) to the connection's name;
    ``failed`` holds the sections that could not be resolved, so that validation errors about
    them are not reported on top of the reason.
    """

    problems: list[Problem] = field(default_factory=list)
    used: dict[Path, str] = field(default_factory=dict)
    failed: set[Path] = field(default_factory=set)


class ConnectionBook:
    """Finds named connections for one job."""

    def __init__(self, own: Any, positions: Positions, job_file: str, connections_file: str | None, environ: Mapping[str, str]):
        self._own = own if isinstance(own, dict) else {}
        self._positions = positions
        self._file = connections_file or environ.get(CONNECTIONS_ENV) or None
        if self._file is None:
            beside = os.path.join(os.path.dirname(job_file), DEFAULT_FILE)
            self._file = beside if os.path.isfile(beside) else None
        self._loaded: tuple[dict[str, Any], Positions] | None = None
        self.problems: list[Problem] = []
        self.usable = True

    def find(self, name: str) -> Named | None:
        """The connection called ``name``, or None (when the file is not :attr:`usable`, see :attr:`problems`)."""
        if name in self._own:
            return Named(self._own[name], self._positions, ("connections", name))
        external, positions = self._external()
        if name in external:
            return Named(external[name], positions, ("connections", name))
        return None

    def unknown(self, name: str) -> str:
        """Why ``name`` was not found: the closest known name and where we looked."""
        external, _ = self._external()
        known = list(dict.fromkeys([*self._own, *external]))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        places = ["the connections of this file" + ("" if self._own else " (it has none)")]
        if self._file:
            places.append(f"{self._file}" + ("" if external else " (no usable connections)"))
        else:
            places.append(f"no connections file ({CONNECTIONS_ENV} is not set and there is no {DEFAULT_FILE} beside the job file)")
        # Someone may write a URL where a name belongs; its password must not reach the message.
        return f"unknown connection '{mask_url(name)}'{hint or '.'} Looked in: {'; '.join(places)}"

    def _external(self) -> tuple[dict[str, Any], Positions]:
        if self._loaded is None:
            self._loaded = self._read(self._file) if self._file else ({}, Positions())
        return self._loaded

    def _read(self, path: str) -> tuple[dict[str, Any], Positions]:
        try:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except FileNotFoundError:
            return self._unusable(Problem(f"connections file {path} does not exist", path))
        except (OSError, UnicodeDecodeError) as exc:
            return self._unusable(Problem(f"cannot read connections file {path}: {exc}", path))
        try:
            parsed = parse_yaml(text, path)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return self._unusable()
        self.problems.extend(parsed.problems)
        data, positions = parsed.data, parsed.positions
        if not isinstance(data, dict) or not isinstance(data.get("connections"), dict):
            where = ("connections",) if isinstance(data, dict) and "connections" in data else ()
            return self._unusable(positions.problem(where, _SHAPE) if positions.site(where) else Problem(_SHAPE, path, 1, 1))
        for key in data:
            if key != "connections":
                self.problems.append(positions.problem((key,), f"unknown key '{key}' in the connections file; it holds only 'connections'", at_key=True))
        for name, settings in data["connections"].items():
            if not isinstance(settings, dict):
                self.problems.append(positions.problem(("connections", name), f"connections.{name}: expected a mapping with a 'type' key"))
        return data["connections"], positions

    def _unusable(self, problem: Problem | None = None) -> tuple[dict[str, Any], Positions]:
        self.usable = False
        if problem is not None:
            self.problems.append(problem)
        return {}, Positions()


def resolve_references(data: dict[str, Any], positions: Positions, book: ConnectionBook, keys: tuple[str, ...] = ("source", "destination")) -> Resolution:
    """Replace each named reference in ``data[key]`` by the connection's settings, in place.

    Inline keys beside ``connection:`` override or extend the named connection's keys. The
    positions of the merged keys point to where each was written, in whichever file.
    """
    result = Resolution()
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            name, inline, name_path = value, {}, (key,)
        elif isinstance(value, dict) and "connection" in value:
            name, name_path = value["connection"], (key, "connection")
            inline = {k: v for k, v in value.items() if k != "connection"}
            if not isinstance(name, str):
                result.problems.append(positions.problem(name_path, f"{dotted(name_path)}: expected the name of a connection"))
                result.failed.add((key,))
                continue
        else:
            continue
        named = book.find(name)
        if named is None:
            if book.usable:
                result.problems.append(positions.problem(name_path, f"{key}: " + book.unknown(name)))
            result.failed.add((key,))
            continue
        if not isinstance(named.settings, dict):
            result.failed.add((key,))  # the connection's own definition is reported where it is written
            continue
        snapshot = positions.copy()
        origin = snapshot if named.positions is positions else named.positions
        positions.prune((key,))
        for sub in named.settings:
            positions.graft((key, sub), origin, named.path + (sub,))
        for sub in inline:
            positions.graft((key, sub), snapshot, (key, sub))
        data[key] = {**named.settings, **inline}
        result.used[(key,)] = name
    result.problems.extend(book.problems)
    return result
