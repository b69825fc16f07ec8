"""YAML parsing that remembers where every value was written.

:func:`parse_yaml` turns YAML text into plain Python data plus a :class:`Positions` index: for every
path in the document (a tuple of mapping keys and list indexes) the file, line and column of the
value and of its key. A job is assembled from pieces of several places (a multi-job file's entry, a
connection from a connections file), so an index can be grafted from another one; each entry also
keeps the path as it is written in its own file, which is what messages show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from portl.errors import ConfigError, Problem

Path = tuple[Any, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Site:
    """Where a value (and the key in front of it, if any) was written; lines and columns are 1-based."""

    file: str
    line: int
    column: int
    key_line: int | None = None
    key_column: int | None = None


@dataclass(frozen=True)
class _Entry:
    site: Site
    shown: Path


class Positions:
    """Sites of the values of one document, by path."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    def add(self, path: Path, site: Site, shown: Path | None = None) -> None:
        self._entries[path] = _Entry(site, path if shown is None else shown)

    def copy(self) -> Positions:
        twin = Positions()
        twin._entries = dict(self._entries)
        return twin

    def graft(self, dst: Path, other: Positions, src: Path, shown: Path | None = None) -> None:
        """Copy ``other``'s entries under ``src`` to under ``dst``.

        The shown paths are kept unless ``shown`` is given, in which case they are rebased onto it.
        """
        size = len(src)
        for path, entry in list(other._entries.items()):
            if path[:size] == src:
                rest = path[size:]
                self._entries[dst + rest] = _Entry(entry.site, entry.shown if shown is None else shown + rest)

    def prune(self, path: Path) -> None:
        """Forget everything below ``path``, keeping ``path`` itself."""
        size = len(path)
        for known in [p for p in self._entries if len(p) > size and p[:size] == path]:
            del self._entries[known]

    def _nearest(self, path: Path) -> tuple[Path, _Entry] | None:
        for size in range(len(path), -1, -1):
            entry = self._entries.get(path[:size])
            if entry is not None:
                return path[:size], entry
        return None

    def shown(self, path: Path) -> Path:
        """The path as written in its own file (for messages); deeper parts beyond the index are kept."""
        found = self._nearest(path)
        if found is None:
            return path
        known, entry = found
        return entry.shown + path[len(known):]

    def site(self, path: Path) -> Site | None:
        """The site of ``path``, or of its nearest written ancestor."""
        found = self._nearest(path)
        return None if found is None else found[1].site

    def problem(self, path: Path, message: str, at_key: bool = False) -> Problem:
        """A Problem located at ``path``'s value, or at its key when ``at_key`` and it has one."""
        site = self.site(path)
        if site is None:
            return Problem(message)
        if at_key and site.key_line is not None:
            return Problem(message, site.file, site.key_line, site.key_column)
        return Problem(message, site.file, site.line, site.column)


def dotted(path: Path) -> str:
    """``('mapping', 'columns', 'price', 'type')`` -> ``mapping.columns.price.type``; ``hooks.after_job[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part or any(c in part for c in ".[] \t'\""):
            text += f"[{part!r}]"
        else:
            text += ("." if text else "") + part
    return text


@dataclass
class Parsed:
    """A parsed YAML file: its data (``None`` when empty), positions, and key problems found."""

    data: Any
    positions: Positions
    problems: list[Problem]


def parse_yaml(text: str, file: str) -> Parsed:
    """Parse one YAML document, indexing positions; raise ConfigError on invalid YAML.

    Mapping keys are always strings, as written (``on:`` is the key ``'on'``, not ``True``).
    Duplicate keys are reported in ``problems`` (at the second one); the last value wins.
    """
    builder = _Builder(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if root is None else builder.value(root, (), None)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(problems=[yaml_problem(exc, file)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(problems=[Problem(f"could not parse YAML: {exc}", file)]) from exc
    return Parsed(data, builder.positions, builder.problems)


def yaml_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """A plain-words Problem for a YAML syntax error, located at the mark PyYAML gives."""
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "invalid YAML"
    context = exc.context if exc.problem else None
    if context and what.startswith("but "):
        # PyYAML splits some sentences in two: "expected a single document" / "but found another".
        what, context = f"{context}, {what}", None
    message = f"could not parse YAML: {what}"
    if "'\\t'" in what:
        message += " (YAML does not allow tabs for indentation; use spaces)"
    elif context and exc.context_mark is not None:
        message += f" ({context} on line {exc.context_mark.line + 1})"
    if mark is None:
        return Problem(message, file)
    return Problem(message, file, mark.line + 1, mark.column + 1)


class _Builder:
    """Builds plain data from composed nodes, recording a Site per path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions()
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()
        self._flattened: set[int] = set()
        self._open: set[int] = set()

    def _site(self, node: Node, key: Node | None) -> Site:
        mark = node.start_mark
        if key is None:
            return Site(self.file, mark.line + 1, mark.column + 1)
        return Site(self.file, mark.line + 1, mark.column + 1, key.start_mark.line + 1, key.start_mark.column + 1)

    def _problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(message, self.file, mark.line + 1, mark.column + 1))

    def value(self, node: Node, path: Path, key: Node | None) -> Any:
        self.positions.add(path, self._site(node, key))
        if id(node) in self._open:
            self._problem(node, f"{dotted(path) or 'the document'} refers to itself through a YAML alias")
            return None
        if isinstance(node, MappingNode):
            self._open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._open.discard(id(node))
        if isinstance(node, SequenceNode):
            self._open.add(id(node))
            try:
                return [self.value(item, path + (i,), None) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        if id(node) not in self._flattened:
            # Only the keys written in this mapping can clash; keys brought in by a YAML merge
            # (<<: *defaults) are meant to be overridden.
            seen: set[str] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                    continue
                if key_node.value in seen:
                    where = f" in {dotted(path)}" if path else ""
                    self._problem(key_node, f"duplicate key '{key_node.value}'{where}; a key may appear only once in a mapping")
                seen.add(key_node.value)
            self._constructor.flatten_mapping(node)
            self._flattened.add(id(node))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a key must be a plain value, not a mapping or a list")
                continue
            name = str(key_node.value)
            result[name] = self.value(value_node, path + (name,), key_node)
        return result
