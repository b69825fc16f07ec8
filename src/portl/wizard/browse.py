"""Finding files from the wizard's path prompts: Tab completes a path, a glob lists what it matches.

Completion goes through :mod:`readline` (the line editor ``input()`` uses), installed only while a
path is being typed on a terminal, and put back as it was afterwards. A glob's matches are listed
with their sizes (the first ten, then how many in all and how big) so that a pattern that takes
too much, or too little, shows before the job is written. The files listed are those the source
connector finds (local files or objects), so the list is what a run reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SHOWN = 10
"""Matches of a glob listed by name; the rest are counted."""


def path_completions(typed: str, cwd: str) -> list[str]:
    """The paths that complete ``typed`` (relative to ``cwd`` unless absolute or ``~``), sorted;
    folders end with ``/`` so that Tab can go on into them. Hidden entries only when asked for."""
    expanded = os.path.expanduser(typed)
    folder, start = os.path.split(expanded)
    where = os.path.join(cwd, folder) if not os.path.isabs(folder) else folder
    try:
        names = os.listdir(where or ".")
    except OSError:
        return []
    shown_folder = os.path.split(typed)[0]
    found = []
    for name in names:
        if not name.startswith(start) or (name.startswith(".") and not start.startswith(".")):
            continue
        completion = os.path.join(shown_folder, name) if shown_folder else name
        if os.path.isdir(os.path.join(where, name)):
            completion += os.sep
        found.append(completion)
    return sorted(found)


@contextmanager
def completing_paths(cwd: str) -> Iterator[None]:
    """Within ``with``: Tab completes file paths at ``input()``. Does nothing where readline is
    missing (e.g. Windows without pyreadline)."""
    try:
        import readline
    except ImportError:
        yield
        return
    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        nonlocal matches
        if state == 0:
            matches = path_completions(readline.get_line_buffer()[: readline.get_endidx()], cwd)
            # readline replaces the text since the last delimiter; the whole line is the path.
            cut = len(readline.get_line_buffer()[: readline.get_endidx()]) - len(text)
            matches = [m[cut:] for m in matches]
        return matches[state] if state < len(matches) else None

    previous = (readline.get_completer(), readline.get_completer_delims())
    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n")  # a path holds / . - : which must not end the word
    # libedit (macOS) and GNU readline spell the Tab binding differently.
    readline.parse_and_bind("bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete")
    try:
        yield
    finally:
        readline.set_completer(previous[0])
        readline.set_completer_delims(previous[1])


@dataclass(frozen=True)
class Matches:
    """The files a glob matches: the first :data:`SHOWN` with their sizes, and the totals."""

    pattern: str
    shown: list[tuple[str, int]]
    count: int
    total_bytes: int

    def lines(self) -> list[str]:
        """``12 files, 3.4 GB`` and the first files, for people."""
        if not self.count:
            return [f"{self.pattern} matches no file"]
        head = [f"{self.pattern} matches {self.count:,} {'file' if self.count == 1 else 'files'}, "
                f"{size_text(self.total_bytes)}:"]
        width = max(len(name) for name, _ in self.shown)
        head += [f"  {name:<{width}}  {size_text(size):>9}" for name, size in self.shown]
        if self.count > len(self.shown):
            head.append(f"  ... and {self.count - len(self.shown):,} more")
        return head


def matches_of(pattern: str, found: Iterable[tuple[str, int]]) -> Matches:
    """What ``pattern`` matched, from ``(name, size)`` pairs in the order the source reads them."""
    files = list(found)
    return Matches(pattern, files[:SHOWN], len(files), sum(size for _, size in files))


def size_text(size: int) -> str:
    """A byte count for people, in decimal units: ``512 B``, ``3.4 GB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
